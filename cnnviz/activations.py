"""Feature maps: what every layer of a network computes for one image.

Seed 003 builds an "activation model" whose outputs are the outputs of the first layers
(`models.Model(inputs=model.input, outputs=[layer.output for layer in ...])`) and shows each
layer's channels for a cat: edge detectors first, then eyes and ears, then abstract patterns,
with some maps empty because the image lacks what that filter looks for. Seed 001 adds that
hidden layers are sparse: many coefficients are exactly zero.

This module does that for any Sequential, Functional or nested model:

- `activations(model, image)` runs ONE forward pass through an extraction model built by
  `cnnviz.layers.feature_model` (which reaches inside nested bases) and returns every
  requested layer's output, keyed by layer path ("conv1", "base/block1_conv1").
- The extraction model is built and compiled once per (model, layer set) and kept in the
  shared, thread-safe `cnnviz.compiled` cache: many browser sessions share one model, so building it per call would
  waste seconds, and `model.predict` is not safe to call from several threads at once.
- `channel_stats` gives each channel's mean, max and sparsity (fraction of exact zeros).

The shared model is never changed: the extraction model only reads its layers.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import keras
import numpy as np
import tensorflow as tf

from cnnviz import compiled, models
from cnnviz import layers as layer_tools

__all__ = [
    "ActivationError",
    "Forward",
    "MAP_LAYER_TYPES",
    "default_layers",
    "forward",
    "activations",
    "channel_stats",
    "empty_channels",
    "clear_cache",
    "to_npz",
]

#: Layer classes whose outputs `activations` returns by default, when their output is a stack
#: of feature maps (N, H, W, C): convolutions, spatial pooling and activation layers.
MAP_LAYER_TYPES: frozenset[str] = frozenset(
    {
        "Conv2D",
        "SeparableConv2D",
        "DepthwiseConv2D",
        "Conv2DTranspose",
        "MaxPooling2D",
        "AveragePooling2D",
        "Activation",
        "ReLU",
        "LeakyReLU",
        "PReLU",
        "ELU",
    }
)


class ActivationError(ValueError):
    """Invalid input for `activations`; the message says what was expected."""


@dataclass(frozen=True)
class Forward:
    """The result of one forward pass.

    Attributes:
        maps: layer path -> output for that layer, without the batch axis when one image was
            given: (H', W', C) for a feature-map layer, (units,) for a dense one.
        output: the model's own output for the image(s): (classes,) or (N, classes).
        inputs: the preprocessed batch the model saw, (N, h, w, c) float32.
        layer_inputs: layer path -> what that layer read (its input tensor), for the paths
            asked for with `inputs_of`; shaped like `maps`.
    """

    maps: dict[str, np.ndarray]
    output: np.ndarray
    inputs: np.ndarray
    layer_inputs: dict[str, np.ndarray] = field(default_factory=dict)


def default_layers(model: keras.Model) -> list[str]:
    """Paths of the layers whose outputs are feature maps, in graph order (nested bases too).

    These are the convolution, spatial pooling and activation layers (`MAP_LAYER_TYPES`) with a
    4-D output (N, H, W, C). Dense and global-pooling layers are left out: their outputs are
    vectors, not maps; ask for them by name if you want them.
    """
    return [
        info.path
        for info in layer_tools.list_layers(model)
        if info.class_name in MAP_LAYER_TYPES
        and info.output_shape is not None
        and len(info.output_shape) == 4
    ]


def clear_cache() -> None:
    """Drop every cached extraction function (tests and memory pressure)."""
    compiled.clear("activations")


def _extractor(
    model: keras.Model, paths: tuple[str, ...], inputs_of: tuple[str, ...] = ()
) -> Callable:
    """The compiled function image batch -> [outputs of paths..., inputs of inputs_of...,
    model output], built once per (model, layer set) and kept in `cnnviz.compiled` (weak on
    the model, thread-safe)."""

    def build() -> Callable:
        extraction = layer_tools.feature_model(
            model, list(paths), include_output=True, inputs_of=list(inputs_of)
        )
        # A compiled graph call, never model.predict (not thread-safe, and slow for one image);
        # reduce_retracing lets one trace serve every batch size.
        return tf.function(
            lambda x: extraction(x, training=False), reduce_retracing=True, autograph=False
        )

    return compiled.get(model, ("activations", paths, inputs_of), build)


def _check_input(model: keras.Model, batch: np.ndarray) -> None:
    """Fail early, in words, when the preprocessed batch does not fit the model's input."""
    expected = tuple(model.input_shape[1:])
    received = tuple(batch.shape[1:])
    fits = len(expected) == len(received) and all(
        e is None or e == r for e, r in zip(expected, received, strict=True)
    )
    if not fits:
        shape = "×".join("any" if e is None else str(e) for e in expected)
        raise ActivationError(
            f"Expected images of shape {shape} for model {model.name!r}. "
            f"Received a batch of shape {batch.shape}."
        )


def forward(
    model: str | keras.Model,
    image: np.ndarray,
    layers: Sequence[str] | None = None,
    *,
    inputs_of: Sequence[str] = (),
) -> Forward:
    """One forward pass that returns the outputs of the chosen layers and the model's output.

    Args:
        model: a registry name (its own preprocessing is applied, see `cnnviz.models.resolve`)
            or a bare keras.Model (the image is fed as float32, unchanged).
        image: one image (H, W[, C]) or a batch (N, H, W, C), as `cnnviz.images.load_image`
            returns them for a name; already model-ready for a bare keras.Model.
        layers: layer paths ("name" or "base/name"); None means `default_layers(model)`.
        inputs_of: layer paths whose inputs (what the layer reads) to return as well, in
            `Forward.layer_inputs`, from the same pass.

    Returns:
        A `Forward` with one array per layer (batch axis dropped for a single image).

    Raises:
        ActivationError: the image does not fit the model, or no layers were asked for.
        cnnviz.layers.LayerError: a layer path does not exist.
    """
    # The zoo's rule: the loaded model and the function that makes images model-ready.
    net, preprocess = models.resolve(model)
    paths = tuple(default_layers(net) if layers is None else layers)
    if not paths:
        raise ActivationError(
            f"Expected at least one layer to read. Received none for model {net.name!r}."
        )
    batch = np.asarray(preprocess(image), dtype=np.float32)
    # One image in, arrays without a batch axis out ((N, H, W) is a batch of gray images).
    single = np.ndim(image) < 4 and len(batch) == 1
    _check_input(net, batch)
    # One compiled call computes every requested layer and the model's output together.
    reads = tuple(inputs_of)
    outputs = _extractor(net, paths, reads)(tf.constant(batch))
    arrays = [np.asarray(t) for t in outputs]
    if single:
        arrays = [a[0] for a in arrays]
    n = len(paths)
    return Forward(
        maps=dict(zip(paths, arrays[:n], strict=True)),
        output=arrays[-1],
        inputs=batch,
        layer_inputs=dict(zip(reads, arrays[n:-1], strict=True)),
    )


def activations(
    model: str | keras.Model, image: np.ndarray, layers: Sequence[str] | None = None
) -> dict[str, np.ndarray]:
    """The outputs of `layers` for `image`, keyed by layer path, from one forward pass.

    Args:
        model: a registry name or a bare keras.Model, see `forward`.
        image: one image (H, W[, C]) or a batch (N, H, W, C).
        layers: layer paths; None means every convolution, pooling and activation layer with a
            feature-map output (`default_layers`).

    Returns:
        {path: array}: (H', W', C) per feature-map layer for one image, (N, H', W', C) for a
        batch; a nested base's layer is keyed "base_name/layer_name".
    """
    return forward(model, image, layers).maps


def channel_stats(act: np.ndarray) -> dict[str, np.ndarray]:
    """Per-channel statistics of one layer's output (channels last).

    Args:
        act: (H, W, C), (N, H, W, C) or (C,); every axis but the last is reduced.

    Returns:
        {"mean": (C,), "max": (C,), "sparsity": (C,) fraction of exact zeros in [0, 1],
        "empty": (C,) bool, see `empty_channels`}, all float64 except "empty".
    """
    a = np.asarray(act, dtype=np.float64)
    if a.ndim == 0:
        raise ActivationError("Expected an array with a channel axis. Received a scalar.")
    # Flatten everything but the channel axis, then reduce over it.
    flat = a.reshape(-1, a.shape[-1])
    return {
        "mean": flat.mean(axis=0),
        "max": flat.max(axis=0),
        # Seed 001: after a ReLU, many coefficients are exactly zero.
        "sparsity": (flat == 0).mean(axis=0),
        "empty": empty_channels(a),
    }


def empty_channels(act: np.ndarray) -> np.ndarray:
    """Which channels are flat (the same value everywhere): (C,) bool.

    A flat map carries no information about where anything is. After a ReLU it is all zeros:
    the filter found nothing it looks for in this image (seed 003's empty maps). A channel
    that is flat for every image is "dead". With one value per channel (a dense layer's (C,)
    output) nothing can be flat, so there "empty" means exactly zero.
    """
    flat = np.asarray(act, dtype=np.float64).reshape(-1, np.shape(act)[-1])
    if flat.shape[0] == 1:
        return flat[0] == 0.0
    return flat.max(axis=0) - flat.min(axis=0) <= 0.0


def to_npz(maps: dict[str, np.ndarray]) -> bytes:
    """Layer outputs as one compressed .npz file (`np.load(f)["base/conv1"]` reads one back)."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **{path: np.asarray(a) for path, a in maps.items()})
    return buf.getvalue()
