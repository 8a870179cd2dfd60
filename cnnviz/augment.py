"""Data augmentation from Keras preprocessing layers, for a preview grid and for training.

Seed 003 augments cats vs dogs with `ImageDataGenerator(rotation_range=40,
width_shift_range=0.2, height_shift_range=0.2, shear_range=0.2, zoom_range=0.2,
horizontal_flip=True, fill_mode='nearest')`. Keras 3 has no ImageDataGenerator; its
preprocessing layers (`RandomRotation`, `RandomTranslation`, `RandomShear`, `RandomZoom`,
`RandomFlip`) do the same jobs, draw fresh parameters per image, and are active only when
called with `training=True`, so the same layers serve the preview and the training loop.

Seeds: layer k of the pipeline gets the seed `seed + SEED_OFFSETS[kind]`, whether or not the
other layers are switched on, so switching one transform off never changes another's draws.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

__all__ = [
    "AugmentError",
    "Augmentation",
    "FILL_MODES",
    "FLIP_MODES",
    "SEED_OFFSETS",
    "SEED_003",
    "augmentation_layers",
    "augment_preview",
]

FillMode = Literal["nearest", "reflect", "wrap", "constant"]
FlipMode = Literal["none", "horizontal", "vertical", "horizontal_and_vertical"]
#: Fill modes of the Keras layers, with what each puts into pixels that did not exist before.
FILL_MODES: dict[str, str] = {
    "nearest": "repeat the nearest edge pixel (seed 003's choice)",
    "reflect": "mirror the image at its edge",
    "wrap": "continue with the opposite side",
    "constant": "black (zeros)",
}
#: Flip modes of `keras.layers.RandomFlip`, plus "none".
FLIP_MODES: tuple[str, ...] = ("none", "horizontal", "vertical", "horizontal_and_vertical")
#: Added to the base seed for each layer kind (fixed, so the layers are independent).
SEED_OFFSETS: dict[str, int] = {"rotation": 0, "shift": 1, "shear": 2, "zoom": 3, "flip": 4}


class AugmentError(ValueError):
    """Invalid augmentation settings; the message says what was expected."""


@dataclass(frozen=True)
class Augmentation:
    """Augmentation settings, in ImageDataGenerator's units where it has one.

    Attributes:
        rotation: largest rotation in degrees, either way (0-180); `rotation_range`.
        shift: largest shift as a fraction of height and width (0-0.5);
            `width_shift_range` = `height_shift_range`.
        shear: largest shear as a fraction of the image, either way, along x and y (0-0.5);
            `keras.layers.RandomShear`'s factor, not ImageDataGenerator's angle.
        zoom: largest zoom in or out as a fraction (0-0.9); `zoom_range`.
        flip: "none", "horizontal", "vertical" or "horizontal_and_vertical".
        fill_mode: how pixels that come from outside the image are filled (`FILL_MODES`).
    """

    rotation: float = 0.0
    shift: float = 0.0
    shear: float = 0.0
    zoom: float = 0.0
    flip: FlipMode = "none"
    fill_mode: FillMode = "nearest"

    def __post_init__(self) -> None:
        for name, top in (("rotation", 180.0), ("shift", 0.5), ("shear", 0.5), ("zoom", 0.9)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float | np.number):
                raise AugmentError(f"Expected {name} to be a number. Received {name}={value!r}.")
            if not 0.0 <= float(value) <= top:
                raise AugmentError(f"Expected {name} in [0, {top:g}]. Received {name}={value!r}.")
        if self.flip not in FLIP_MODES:
            raise AugmentError(f"Expected flip in {list(FLIP_MODES)}. Received flip={self.flip!r}.")
        if self.fill_mode not in FILL_MODES:
            raise AugmentError(
                f"Expected fill_mode in {list(FILL_MODES)}. Received fill_mode={self.fill_mode!r}."
            )

    @property
    def active(self) -> bool:
        """True when at least one transform changes images."""
        return bool(self.rotation or self.shift or self.shear or self.zoom or self.flip != "none")

    def describe(self) -> str:
        """A short human summary, e.g. "rotate ±40°, shift ±0.2, flip horizontal"."""
        if not self.active:
            return "none"
        parts = []
        if self.rotation:
            parts.append(f"rotate ±{self.rotation:g}°")
        if self.shift:
            parts.append(f"shift ±{self.shift:g}")
        if self.shear:
            parts.append(f"shear ±{self.shear:g}")
        if self.zoom:
            parts.append(f"zoom ±{self.zoom:g}")
        if self.flip != "none":
            parts.append(f"flip {self.flip.replace('_and_', '+')}")
        parts.append(f"fill {self.fill_mode}")
        return ", ".join(parts)

    def to_dict(self) -> dict[str, float | str]:
        """The settings as a plain dict (for tables and model cards)."""
        return asdict(self)


#: Seed 003's ImageDataGenerator for cats vs dogs, in these units (shear as a Keras factor).
SEED_003 = Augmentation(
    rotation=40.0, shift=0.2, shear=0.2, zoom=0.2, flip="horizontal", fill_mode="nearest"
)


def augmentation_layers(settings: Augmentation, seed: int = 0, name: str = "augmentation"):
    """The Keras preprocessing layers for `settings`, as one `keras.Sequential`.

    Only the switched-on transforms get a layer; with none switched on the model is one
    `Identity` layer. Each layer is seeded with `seed + SEED_OFFSETS[kind]`. The layers change images
    in `fit` and whenever called directly; `predict`, `evaluate` and `training=False` pass
    images through unchanged (Keras's random layers default to `training=True` when called).

    Args:
        settings: what to apply.
        seed: base seed.
        name: name of the returned model.

    Returns:
        keras.Sequential mapping (N, H, W, C) float images to (N, H, W, C), same value range.
    """
    # Keras is imported here so that importing this module stays free of TensorFlow.
    import keras

    s, fill = settings, settings.fill_mode
    layers = []
    # The order of ImageDataGenerator.apply_transform: rotate, shift, shear, zoom, then flip.
    if s.rotation:
        # RandomRotation's factor is a fraction of a full turn.
        layers.append(
            keras.layers.RandomRotation(
                s.rotation / 360.0, fill_mode=fill, seed=seed + SEED_OFFSETS["rotation"]
            )
        )
    if s.shift:
        layers.append(
            keras.layers.RandomTranslation(
                s.shift, s.shift, fill_mode=fill, seed=seed + SEED_OFFSETS["shift"]
            )
        )
    if s.shear:
        layers.append(
            keras.layers.RandomShear(
                x_factor=s.shear,
                y_factor=s.shear,
                fill_mode=fill,
                seed=seed + SEED_OFFSETS["shear"],
            )
        )
    if s.zoom:
        # A float factor f zooms in or out by up to f, the same on both axes (zoom_range).
        layers.append(
            keras.layers.RandomZoom(s.zoom, fill_mode=fill, seed=seed + SEED_OFFSETS["zoom"])
        )
    if s.flip != "none":
        layers.append(keras.layers.RandomFlip(s.flip, seed=seed + SEED_OFFSETS["flip"]))
    # An empty Sequential cannot be built; Identity keeps "no augmentation" a valid model.
    return keras.Sequential(layers or [keras.layers.Identity()], name=name)


def augment_preview(image: np.ndarray, settings: Augmentation, n: int, seed: int = 0) -> np.ndarray:
    """`n` augmented variants of one image, as training would see them.

    Args:
        image: (H, W) or (H, W, C) image, any numeric dtype (uint8 0..255 typically).
        settings: what to apply.
        n: number of variants (1-64).
        seed: base seed; the same seed gives the same variants.

    Returns:
        (n, H, W, C) float32 in the image's value range (C = 1 for a 2-D image). Variant i is
        the i-th image of one batch through `augmentation_layers(settings, seed)` with
        `training=True`.

    Raises:
        AugmentError: bad image shape or n.
    """
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or min(arr.shape[:2]) < 2:
        raise AugmentError(
            f"Expected an (H, W) or (H, W, C) image of at least 2×2. Received shape {np.shape(image)}."
        )
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or not 1 <= n <= 64:
        raise AugmentError(f"Expected n to be an integer in [1, 64]. Received n={n!r}.")
    # One batch of n copies: each copy draws its own random parameters.
    batch = np.repeat(arr[None].astype(np.float32), int(n), axis=0)
    layers = augmentation_layers(settings, seed)
    return np.asarray(layers(batch, training=True), dtype=np.float32)
