"""The offline data the project generates, and keras.datasets when a network is there.

Pretrained weights and `keras.datasets` download at run time, which fails offline, so the
project makes its own data:

- `shapes`: 64×64 RGB pictures with one object from `SHAPE_CLASSES` (filled circle, square,
  triangle, star, cross, hexagon, diamond, heart) at a random position, size, rotation and
  colour, on flat, gradient, texture or stripe backgrounds, with thin lines and small dots as
  distractors, and a mask of the object's pixels (for checking where a CAM looks). Every
  object is one filled region without holes, so that "the CAM's peak lies inside the object"
  (the pointing game) has one meaning; an earlier ring class had background at its centre.
- `digits`: MNIST-style 28×28 white-on-black digits. Each one is either a glyph of the font
  Pillow bundles or a pen-stroke skeleton with jittered control points, drawn with a random
  stroke width, then bent by a random affine map and an elastic field (Simard et al., 2003),
  with noise, so that a CNN trained on it also reads handwritten-looking digits.

Both are deterministic for a seed and vectorised: the only per-sample Python loop draws the
shape outlines with Pillow's C rasteriser; everything else is whole-batch numpy/scipy.
This module imports neither TensorFlow nor Keras (the Gabor page uses it without a model);
`load_keras_dataset` imports Keras only when called.

References:
    Simard, Steinkraus, Platt, "Best practices for convolutional neural networks applied to
    visual document analysis", ICDAR 2003 (elastic distortions).
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

__all__ = [
    "DatasetError",
    "DatasetUnavailable",
    "SHAPE_CLASSES",
    "DIGIT_CLASSES",
    "KERAS_DATASETS",
    "KerasDataset",
    "shapes",
    "digits",
    "load_keras_dataset",
]

#: Class names of `shapes`, in label order.
SHAPE_CLASSES: list[str] = [
    "circle",
    "square",
    "triangle",
    "star",
    "cross",
    "hexagon",
    "diamond",
    "heart",
]
#: Class names of `digits`, in label order.
DIGIT_CLASSES: list[str] = [str(d) for d in range(10)]
#: keras.datasets that `load_keras_dataset` knows, with their class names.
KERAS_DATASETS: dict[str, list[str]] = {
    "mnist": DIGIT_CLASSES,
    "fashion_mnist": [
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ],
    "cifar10": [
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ],
}

# Largest batch one call generates (about 2 GB of float32 intermediates for 64×64 shapes).
_MAX_N = 200_000
# Object radius as a fraction of the picture side: at least 14 px at 64×64 (28 px across, seven
# 4-px cells of the shapes model's 16×16 Grad-CAM map), at most 24 px so the object fits.
_RADIUS = (0.22, 0.38)
# Shapes are rasterised at this many times the output resolution, then box-averaged (anti-aliasing).
_SUPER = 4
# Digits: template canvas and digit box at 4× MNIST's 28×28 canvas and 20×20 box.
_DIGIT_SIDE = 28
_T_SCALE = 4
_T_SIDE = _DIGIT_SIDE * _T_SCALE
_T_BOX = 20 * _T_SCALE
# Samples are painted in chunks of this many, so that the float32 intermediates stay in cache
# (measured: 64×64 shapes run 2× faster in chunks of 256 than of 4096).
_CHUNK_SHAPES = 256
_CHUNK_DIGITS = 2048


class DatasetError(ValueError):
    """Invalid arguments for a dataset generator; the message says what was expected."""


class DatasetUnavailable(DatasetError):
    """A keras.datasets download failed (usually: no network); the message says what to do."""


class KerasDataset(NamedTuple):
    """A keras.datasets split: images uint8 (N, H, W) or (N, H, W, 3), labels int64 (N,)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: list[str]


def _check_n(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or not 0 <= n <= _MAX_N:
        raise DatasetError(f"Expected n to be an integer in [0, {_MAX_N}]. Received n={n!r}.")
    return int(n)


def _balanced_labels(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    """n labels in [0, k), each class appearing n // k or n // k + 1 times, in random order."""
    return rng.permutation(np.arange(n) % k).astype(np.int64)


# --------------------------------------------------------------------------------------------
# Shapes
# --------------------------------------------------------------------------------------------


def _regular_polygon(k: int, radius: float, phase: float = -math.pi / 2) -> np.ndarray:
    """(k, 2) vertices of a regular k-gon with circumradius `radius`, first vertex at `phase`."""
    a = phase + 2 * math.pi * np.arange(k) / k
    return radius * np.stack([np.cos(a), np.sin(a)], axis=1)


def _star(points: int = 5, outer: float = 1.0, inner: float = 0.42) -> np.ndarray:
    """(2*points, 2) vertices alternating between the outer and inner radius."""
    r = np.where(np.arange(2 * points) % 2 == 0, outer, inner)
    a = -math.pi / 2 + math.pi * np.arange(2 * points) / points
    return np.stack([r * np.cos(a), r * np.sin(a)], axis=1)


def _plus(arm: float = 0.95, half_width: float = 0.27) -> np.ndarray:
    """(12, 2) vertices of a plus sign with arms reaching `arm`."""
    a, w = arm, half_width
    return np.array(
        [
            [-w, -a],
            [w, -a],
            [w, -w],
            [a, -w],
            [a, w],
            [w, w],
            [w, a],
            [-w, a],
            [-w, w],
            [-a, w],
            [-a, -w],
            [-w, -w],
        ]
    )


def _heart(k: int = 48) -> np.ndarray:
    """(k, 2) vertices of the classic parametric heart, centred and scaled to radius ~1."""
    t = np.linspace(0, 2 * math.pi, k, endpoint=False)
    x = 16 * np.sin(t) ** 3
    y = -(
        13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t)
    )  # image y points down
    pts = np.stack([x, y], axis=1)
    pts -= (pts.max(0) + pts.min(0)) / 2
    return pts / np.linalg.norm(pts, axis=1).max()  # circumradius 1, like the polygons


def _rhombus(half_width: float = 0.62) -> np.ndarray:
    """(4, 2) vertices of a playing-card diamond: tall (1.0) and narrow (`half_width`)."""
    w = half_width
    return np.array([[0.0, -1.0], [w, 0.0], [0.0, 1.0], [-w, 0.0]])


# Each class is a list of (outline, fill) polygons drawn in order, in units of the object's
# radius (fill 0 would cut a hole). Sizes are chosen so the classes cover similar areas.
# Every class is a filled region without holes, so "inside the object" (the mask) is well
# defined for localisation checks: a ring, whose centre is background, was replaced by the
# diamond, which is narrower than a square, so no rotation turns one into the other.
_SHAPE_POLYGONS: dict[str, list[tuple[np.ndarray, int]]] = {
    "circle": [(_regular_polygon(64, 0.9), 255)],
    "square": [(_regular_polygon(4, 1.0, math.pi / 4), 255)],
    "triangle": [(_regular_polygon(3, 1.0), 255)],
    "star": [(_star(), 255)],
    "cross": [(_plus(), 255)],
    "hexagon": [(_regular_polygon(6, 0.95), 255)],
    "diamond": [(_rhombus(), 255)],
    "heart": [(_heart(), 255)],
}


def shapes(n: int, *, seed: int = 0, size: int = 64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Generate `n` pictures of one shape each, with labels and object masks.

    Each picture holds one object of a class in `SHAPE_CLASSES`, fully inside the frame, with
    a random centre, radius (22-38 % of `size`: 14-24 px at 64×64, so even the smallest object
    spans several cells of a 16×16 Grad-CAM map), rotation and colour. Every object is one
    filled region without holes (its mask is "inside the object" for localisation checks). Objects are light on a
    dark background or dark on a light one, so colour alone never gives the class away. The
    background is flat, a gradient, a smooth texture or faint stripes; up to three thin lines
    and four small dots (far thinner and smaller than any object) are drawn under the object.
    Gaussian pixel noise comes last. Classes are balanced (n // 8 or n // 8 + 1 each).

    Args:
        n: number of pictures.
        seed: seed of the generator; the same seed gives the same arrays.
        size: side of the square pictures in pixels (at least 32).

    Returns:
        images: (n, size, size, 3) uint8 RGB.
        labels: (n,) int64 indices into `SHAPE_CLASSES`.
        masks: (n, size, size) bool, True on the object's pixels (at least half covered).

    Raises:
        DatasetError: n or size out of range.
    """
    n = _check_n(n)
    if isinstance(size, bool) or not isinstance(size, int | np.integer) or not 32 <= size <= 512:
        raise DatasetError(f"Expected size to be an integer in [32, 512]. Received size={size!r}.")
    size = int(size)
    rng = np.random.default_rng(seed)
    labels = _balanced_labels(rng, n, len(SHAPE_CLASSES))

    # Draw every random number up front, per sample, so each array is one vectorised draw.
    radius = rng.uniform(*_RADIUS, n) * size
    # Every outline lies within its radius, so this keeps the object (plus a pixel) in the frame.
    centre = rng.uniform(radius[:, None] + 1, size - 1 - radius[:, None], (n, 2))
    angle = rng.uniform(0, 2 * math.pi, n)
    light_object = rng.random(n) < 0.5

    # Rasterise the objects and the distractors with Pillow at 4× and box-average them.
    alpha, distract = _rasterise_shapes(rng, labels, centre, radius, angle, size)
    masks = alpha >= 0.5

    # Background, object colour and distractor colour, then composite (all float32 in 0..255).
    images = np.empty((n, size, size, 3), dtype=np.uint8)
    for lo in range(0, n, _CHUNK_SHAPES):
        sl = slice(lo, min(n, lo + _CHUNK_SHAPES))
        images[sl] = _paint_shapes(rng, light_object[sl], alpha[sl], distract[sl], size)
    return images, labels, masks


def _rasterise_shapes(
    rng: np.random.Generator,
    labels: np.ndarray,
    centre: np.ndarray,
    radius: np.ndarray,
    angle: np.ndarray,
    size: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Object coverage and distractor coverage, both (n, size, size) float32 in [0, 1]."""
    n = labels.shape[0]
    big = size * _SUPER
    # Distractors: 0-3 thin lines (1 px wide at output scale) and 0-4 dots (radius <= 1.5 px).
    n_lines = rng.integers(0, 4, n)
    n_dots = rng.integers(0, 5, n)
    lines = rng.uniform(0, big, (n, 3, 4))
    dots = rng.uniform(0, big, (n, 4, 2))
    dot_r = rng.uniform(0.6, 1.5, (n, 4)) * _SUPER
    alpha = np.empty((n, size, size), dtype=np.float32)
    distract = np.empty((n, size, size), dtype=np.float32)
    cos, sin = np.cos(angle), np.sin(angle)
    for i in range(n):
        # Rotate, scale and move the class outline (+0.5: Pillow's pixel centres).
        rot = np.array([[cos[i], -sin[i]], [sin[i], cos[i]]])
        canvas = Image.new("L", (big, big), 0)
        draw = ImageDraw.Draw(canvas)
        for poly, fill in _SHAPE_POLYGONS[SHAPE_CLASSES[labels[i]]]:
            pts = (poly @ rot.T * radius[i] + centre[i]) * _SUPER
            draw.polygon([tuple(p) for p in pts.tolist()], fill=fill)
        alpha[i] = np.asarray(canvas.reduce(_SUPER), dtype=np.float32) / 255.0

        canvas = Image.new("L", (big, big), 0)
        draw = ImageDraw.Draw(canvas)
        for x0, y0, x1, y1 in lines[i, : n_lines[i]].tolist():
            draw.line((x0, y0, x1, y1), fill=255, width=_SUPER)
        for (x, y), r in zip(
            dots[i, : n_dots[i]].tolist(), dot_r[i, : n_dots[i]].tolist(), strict=True
        ):
            draw.ellipse((x - r, y - r, x + r, y + r), fill=255)
        distract[i] = np.asarray(canvas.reduce(_SUPER), dtype=np.float32) / 255.0
    return alpha, distract


def _paint_shapes(
    rng: np.random.Generator,
    light_object: np.ndarray,
    alpha: np.ndarray,
    distract: np.ndarray,
    size: int,
) -> np.ndarray:
    """Composite background, distractors and object for one chunk: (m, size, size, 3) uint8."""
    m = light_object.shape[0]
    f32 = np.float32
    yy, xx = (np.mgrid[0:size, 0:size].astype(f32) / f32(size - 1))[:, None]  # (1, size, size) each

    # Colours: a light object (channels in 160..255) on a dark background (0..95), or the reverse.
    light = rng.uniform(160, 255, (m, 3)).astype(f32)
    dark = rng.uniform(0, 95, (m, 3)).astype(f32)
    obj_rgb = np.where(light_object[:, None], light, dark)
    bg_rgb = np.where(light_object[:, None], dark, light)

    # Background pattern in [-1, 1]: flat, linear gradient, smooth texture or faint stripes.
    kind = rng.integers(0, 4, m)
    phi = rng.uniform(0, 2 * math.pi, m).astype(f32)[:, None, None]
    along = xx * np.cos(phi) + yy * np.sin(phi)  # (m, size, size), a ramp in a random direction
    lo, hi = along.min(axis=(1, 2), keepdims=True), along.max(axis=(1, 2), keepdims=True)
    pattern = np.zeros((m, size, size), dtype=f32)
    pattern[kind == 1] = ((along - lo) / (hi - lo) * 2 - 1)[kind == 1]
    coarse = rng.normal(0, 1, (m, 8, 8)).astype(f32)
    up = _upsampler(8, size)
    texture = up @ coarse @ up.T  # bicubic upsampling of an 8×8 noise grid
    texture /= np.abs(texture).max(axis=(1, 2), keepdims=True) + f32(1e-6)
    pattern[kind == 2] = texture[kind == 2]
    freq = rng.uniform(3, 8, m).astype(f32)[:, None, None]
    pattern[kind == 3] = np.sin(f32(2 * math.pi) * freq * along)[kind == 3]
    tint = rng.uniform(0.7, 1.3, (m, 3)).astype(f32)  # slightly coloured patterns
    amp = rng.uniform(8, 20, m).astype(f32)[:, None]
    bg = bg_rgb[:, None, None, :] + pattern[..., None] * (amp * tint)[:, None, None, :]

    # Distractors in a random colour of either range, partly transparent, under the object.
    d_rgb = rng.uniform(0, 255, (m, 3)).astype(f32)
    d_alpha = distract[..., None] * rng.uniform(0.4, 0.9, m).astype(f32)[:, None, None, None]
    bg += (d_rgb[:, None, None, :] - bg) * d_alpha

    # Object: its colour with a mild shading gradient (+-10), composited by its coverage.
    psi = rng.uniform(0, 2 * math.pi, m).astype(f32)[:, None, None]
    shade = (xx * np.cos(psi) + yy * np.sin(psi) - f32(0.5)) * f32(20)
    obj = obj_rgb[:, None, None, :] + shade[..., None]
    img = bg + (obj - bg) * alpha[..., None]

    # Sensor noise with a per-picture strength (one value for the three channels: 3× cheaper).
    sigma = rng.uniform(0, 10, m).astype(f32)[:, None, None, None]
    img += rng.standard_normal((m, size, size, 1), dtype=f32) * sigma
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


@functools.lru_cache(maxsize=8)
def _upsampler(coarse: int, size: int) -> np.ndarray:
    """(size, coarse) matrix U: U @ g @ U.T is `ndimage.zoom` of a coarse grid g (cubic, wrapped).

    Zooming is linear, so zooming the identity's columns once gives the operator, and a batch
    of grids then costs two small matrix products instead of one spline fit per sample.
    """
    eye = np.eye(coarse)
    cols = [
        ndimage.zoom(eye[j], size / coarse, order=3, mode="grid-wrap", grid_mode=True)
        for j in range(coarse)
    ]
    return np.stack(cols, axis=1).astype(np.float32)


# --------------------------------------------------------------------------------------------
# Digits
# --------------------------------------------------------------------------------------------


def _arc(
    cx: float, cy: float, rx: float, ry: float, a0: float, a1: float, k: int = 24
) -> list[tuple[float, float]]:
    """Points of an elliptic arc from angle a0 to a1 (degrees; 0 = right, 90 = down)."""
    a = np.radians(np.linspace(a0, a1, k))
    return list(zip((cx + rx * np.cos(a)).tolist(), (cy + ry * np.sin(a)).tolist(), strict=True))


# Pen-stroke skeletons of handwritten digits, several styles per digit: each style is a list
# of strokes, each stroke a polyline in a unit box (x right, y down).
_SKELETONS: dict[int, list[list[list[tuple[float, float]]]]] = {
    0: [[_arc(0.5, 0.5, 0.42, 0.5, -90, 270, 40)], [_arc(0.5, 0.5, 0.36, 0.5, -100, 265, 40)]],
    1: [
        [[(0.5, 0.0), (0.5, 1.0)]],
        [[(0.25, 0.22), (0.55, 0.0), (0.5, 1.0)]],
        [[(0.25, 0.2), (0.55, 0.0), (0.55, 1.0)], [(0.25, 1.0), (0.85, 1.0)]],
    ],
    2: [
        [_arc(0.5, 0.3, 0.4, 0.3, 190, 380) + [(0.05, 1.0), (0.95, 1.0)]],
        [
            _arc(0.5, 0.3, 0.4, 0.3, 200, 390)
            + [(0.1, 0.95), (0.2, 0.85), (0.35, 0.92), (0.95, 1.0)]
        ],
    ],
    3: [
        [_arc(0.48, 0.26, 0.38, 0.26, 200, 450) + _arc(0.48, 0.74, 0.44, 0.26, 270, 520)],
        [[(0.1, 0.0), (0.85, 0.0), (0.4, 0.42)] + _arc(0.48, 0.7, 0.42, 0.3, 280, 520)],
    ],
    4: [
        [[(0.7, 0.0), (0.05, 0.68), (0.95, 0.68)], [(0.7, 0.0), (0.7, 1.0)]],
        [[(0.2, 0.0), (0.12, 0.6), (0.92, 0.6)], [(0.72, 0.2), (0.72, 1.0)]],
    ],
    5: [
        [[(0.85, 0.0), (0.25, 0.0), (0.18, 0.45)] + _arc(0.5, 0.68, 0.4, 0.32, 225, 515)],
        [
            [(0.2, 0.02), (0.15, 0.45)] + _arc(0.5, 0.68, 0.4, 0.32, 225, 515),
            [(0.2, 0.02), (0.9, 0.0)],
        ],
    ],
    6: [
        [_arc(0.62, 0.6, 0.5, 0.6, 265, 170, 16) + _arc(0.5, 0.72, 0.36, 0.28, 180, 540, 32)],
        [[(0.75, 0.0), (0.3, 0.45)] + _arc(0.5, 0.72, 0.36, 0.28, 200, 560, 32)],
    ],
    7: [
        [[(0.05, 0.0), (0.95, 0.0), (0.35, 1.0)]],
        [[(0.05, 0.0), (0.95, 0.0), (0.4, 1.0)], [(0.3, 0.5), (0.85, 0.5)]],
        [[(0.05, 0.1), (0.1, 0.0), (0.95, 0.02), (0.55, 0.55), (0.45, 1.0)]],
    ],
    8: [
        [_arc(0.5, 0.25, 0.32, 0.25, 90, 450, 32), _arc(0.5, 0.73, 0.42, 0.27, -90, 270, 32)],
        [
            _arc(0.5, 0.25, 0.34, 0.25, 45, 315, 24)
            + _arc(0.5, 0.73, 0.42, 0.27, 225, -45, 32)
            + [(0.78, 0.1)]
        ],
    ],
    9: [
        [_arc(0.45, 0.3, 0.4, 0.3, 0, 360, 32) + [(0.85, 0.3), (0.8, 1.0)]],
        [
            _arc(0.45, 0.3, 0.4, 0.3, 0, 360, 32)
            + [(0.85, 0.3), (0.78, 0.8)]
            + _arc(0.5, 0.8, 0.28, 0.2, 0, 130, 8)
        ],
    ],
}


def _centre_and_fit(img: np.ndarray) -> np.ndarray:
    """Scale a glyph so its longer side is the digit box, then centre its mass, MNIST-style."""
    ys, xs = np.nonzero(img > 0)
    crop = Image.fromarray(img[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1])
    h, w = crop.height, crop.width
    s = _T_BOX / max(h, w)
    crop = crop.resize((max(1, round(w * s)), max(1, round(h * s))), Image.Resampling.BILINEAR)
    out = np.zeros((_T_SIDE, _T_SIDE), dtype=np.float32)
    arr = np.asarray(crop, dtype=np.float32) / 255.0
    cy, cx = ndimage.center_of_mass(arr)
    top = int(round(_T_SIDE / 2 - cy))
    left = int(round(_T_SIDE / 2 - cx))
    top = min(max(top, 0), _T_SIDE - arr.shape[0])
    left = min(max(left, 0), _T_SIDE - arr.shape[1])
    out[top : top + arr.shape[0], left : left + arr.shape[1]] = arr
    return out


@functools.lru_cache(maxsize=1)
def _font_templates() -> tuple[np.ndarray, np.ndarray]:
    """Glyphs of Pillow's bundled font (Aileron) at four stroke widths: (40, T, T) and labels."""
    # ImageFont.load_default(size=...) is Pillow's own scalable font (>= 10.1), the same on
    # every machine, so the data does not depend on which system fonts are installed.
    font = ImageFont.load_default(size=120)
    templates, labels = [], []
    for digit in range(10):
        for stroke in (0, 2, 4, 6):
            canvas = Image.new("L", (200, 200), 0)
            ImageDraw.Draw(canvas).text(
                (40, 10), str(digit), font=font, fill=255, stroke_width=stroke, stroke_fill=255
            )
            templates.append(_centre_and_fit(np.asarray(canvas)))
            labels.append(digit)
    return np.stack(templates), np.array(labels)


def _wobble(
    rng: np.random.Generator, pts: np.ndarray, step: float = 0.01, amp: float = 0.04
) -> np.ndarray:
    """Resample a polyline every `step` units and bend it by smooth noise (corners stay sharp)."""
    # Resample along the arc length, so every stroke gets the same density of wobble.
    seg = np.linalg.norm(np.diff(pts, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    t = np.linspace(0.0, s[-1], max(2, int(s[-1] / step) + 1))
    dense = np.stack([np.interp(t, s, pts[:, 0]), np.interp(t, s, pts[:, 1])], axis=1)
    # Low-frequency displacement: white noise smoothed along the stroke, scaled to `amp`.
    noise = ndimage.gaussian_filter1d(
        rng.normal(0, 1, dense.shape), sigma=8, axis=0, mode="nearest"
    )
    noise *= amp / (np.abs(noise).max() + 1e-9) * rng.uniform(0.3, 1.0)
    return dense + noise


def _pen_templates(rng: np.random.Generator, per_digit: int) -> tuple[np.ndarray, np.ndarray]:
    """Hand-drawn-looking digits: jittered skeletons drawn with a random pen width."""
    templates, labels = [], []
    side = 200
    for digit in range(10):
        styles = _SKELETONS[digit]
        for _ in range(per_digit):
            strokes = styles[rng.integers(len(styles))]
            # A narrower or wider box per sample ("1" stays thin), and a random pen width.
            width = rng.uniform(0.2, 0.35) if digit == 1 else rng.uniform(0.55, 0.85)
            pen = float(rng.uniform(9, 26))
            canvas = Image.new("L", (side, side), 0)
            draw = ImageDraw.Draw(canvas)
            for stroke in strokes:
                pts = _wobble(rng, np.asarray(stroke, dtype=np.float64))
                xy = np.stack([40 + pts[:, 0] * 120 * width / 0.7, 30 + pts[:, 1] * 140], axis=1)
                draw.line([tuple(p) for p in xy.tolist()], fill=255, width=round(pen))
                # Round pen caps.
                for x, y in (xy[0], xy[-1]):
                    draw.ellipse((x - pen / 2, y - pen / 2, x + pen / 2, y + pen / 2), fill=255)
            templates.append(_centre_and_fit(np.asarray(canvas)))
            labels.append(digit)
    return np.stack(templates), np.array(labels)


def digits(n: int, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Generate `n` MNIST-style digits: white strokes on black, 28×28, centred by mass.

    A third of the digits come from the font Pillow bundles (at four stroke widths), the rest
    from pen-stroke skeletons (several handwriting styles per digit: open and closed 4, 7 with
    or without a bar, 1 with or without a flag...) with jittered control points and a random
    pen width. Each is then rotated (±15°), slanted (shear ±0.3), stretched, shifted (±1.5 px)
    and bent by a smooth random elastic field, sampled at 28×28, given a random contrast and,
    for half of them, Gaussian noise. Classes are balanced (n // 10 or n // 10 + 1 each).

    Args:
        n: number of digits.
        seed: seed of the generator; the same seed gives the same arrays.

    Returns:
        images: (n, 28, 28) uint8, 0 = background, 255 = ink.
        labels: (n,) int64 digits 0..9.

    Raises:
        DatasetError: n out of range.
    """
    n = _check_n(n)
    rng = np.random.default_rng(seed)
    labels = _balanced_labels(rng, n, 10)
    font_t, font_l = _font_templates()
    pen_t, pen_l = _pen_templates(rng, per_digit=40)
    # Blur the 4× templates so sampling them at 1× does not alias (sigma ~ half the step).
    bank = ndimage.gaussian_filter(np.concatenate([font_t, pen_t]), sigma=(0, 1.6, 1.6))
    bank_labels = np.concatenate([font_l, pen_l])

    # Pick a template of the right digit per sample: font with probability 1/3, else pen.
    use_font = rng.random(n) < 1 / 3
    pick = np.empty(n, dtype=np.int64)
    for d in range(10):
        rows = np.flatnonzero(labels == d)
        font_rows = np.flatnonzero(bank_labels[: len(font_l)] == d)
        pen_rows = len(font_l) + np.flatnonzero(pen_l == d)
        pick[rows] = np.where(
            use_font[rows], rng.choice(font_rows, rows.size), rng.choice(pen_rows, rows.size)
        )

    images = np.empty((n, _DIGIT_SIDE, _DIGIT_SIDE), dtype=np.uint8)
    for lo in range(0, n, _CHUNK_DIGITS):
        sl = slice(lo, min(n, lo + _CHUNK_DIGITS))
        images[sl] = _warp_digits(rng, bank, pick[sl])
    return images, labels


def _warp_digits(rng: np.random.Generator, bank: np.ndarray, pick: np.ndarray) -> np.ndarray:
    """Affine + elastic warp of the picked templates, sampled at 28×28: (m, 28, 28) uint8."""
    m = pick.shape[0]
    s = _DIGIT_SIDE
    # Output pixel centres relative to the canvas centre, (2, s, s) as (y, x).
    grid = np.mgrid[0:s, 0:s].astype(np.float32) - (s - 1) / 2

    # Inverse affine per sample: rotation, shear (slant), anisotropic scale, shift.
    rot = np.radians(rng.uniform(-15, 15, m))
    shear = rng.uniform(-0.3, 0.3, m)
    zoom = rng.uniform(0.85, 1.1, m)
    aspect = rng.uniform(0.85, 1.15, m)
    shift = rng.uniform(-1.5, 1.5, (m, 2))
    c, sn = np.cos(rot), np.sin(rot)
    one, zero = np.ones(m), np.zeros(m)
    # Forward map on (y, x): A = R @ H @ S (rotate, slant x by y, scale); we sample with A^-1.
    r_mat = np.stack([np.stack([c, -sn], -1), np.stack([sn, c], -1)], axis=1)
    h_mat = np.stack([np.stack([one, zero], -1), np.stack([shear, one], -1)], axis=1)
    s_mat = np.stack([np.stack([zoom, zero], -1), np.stack([zero, zoom * aspect], -1)], axis=1)
    a = r_mat @ h_mat @ s_mat
    inv = np.linalg.inv(a).astype(np.float32)
    yx = grid[None] - shift[:, :, None, None].astype(np.float32)  # (m, 2, s, s)
    src = np.einsum("mij,mjhw->mihw", inv, yx)

    # Elastic field: smooth random displacements (Simard et al. smooth white noise with a
    # Gaussian; cubic upsampling of a 7×7 noise grid gives the same kind of field, cheaper).
    up = _upsampler(7, s)
    field = up @ rng.uniform(-1, 1, (m, 2, 7, 7)).astype(np.float32) @ up.T
    field /= np.abs(field).max(axis=(1, 2, 3), keepdims=True) + 1e-6
    src += field * rng.uniform(0, 2.0, m).astype(np.float32)[:, None, None, None]

    # To template pixel coordinates, then sample every sample's own template in one call.
    src = src * _T_SCALE + (_T_SIDE - 1) / 2
    idx = np.broadcast_to(pick[:, None, None].astype(np.float32), (m, s, s))
    out = ndimage.map_coordinates(
        bank, [idx, src[:, 0], src[:, 1]], order=1, mode="constant", cval=0.0
    )

    # Contrast: MNIST strokes have a saturated core; then noise for half of the samples.
    out = out * rng.uniform(1.2, 1.8, m).astype(np.float32)[:, None, None]
    sigma = np.where(rng.random(m) < 0.5, rng.uniform(0, 0.08, m), 0).astype(np.float32)
    out += rng.normal(0, 1, out.shape).astype(np.float32) * sigma[:, None, None]
    return np.clip(np.rint(out * 255), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------------------------
# keras.datasets
# --------------------------------------------------------------------------------------------


def load_keras_dataset(name: str) -> KerasDataset:
    """Load MNIST, Fashion-MNIST or CIFAR-10 through `keras.datasets` (downloads once).

    Keras is imported here, not at module level, so that importing this module stays free of
    TensorFlow.

    Args:
        name: "mnist", "fashion_mnist" or "cifar10".

    Returns:
        A `KerasDataset`: uint8 images ((N, 28, 28) or (N, 32, 32, 3)), int64 labels (N,) and
        the class names.

    Raises:
        DatasetError: unknown name.
        DatasetUnavailable: the download failed (no network and no cached copy).
    """
    if name not in KERAS_DATASETS:
        raise DatasetError(f"Expected one of {sorted(KERAS_DATASETS)}. Received name={name!r}.")
    import keras

    loader = getattr(keras.datasets, name)
    try:
        (x_train, y_train), (x_test, y_test) = loader.load_data()
    except Exception as err:  # noqa: BLE001 - Keras wraps network failures in a bare Exception
        raise DatasetUnavailable(
            f"Could not load {name!r} through keras.datasets ({type(err).__name__}: {err}). "
            "Expected network access to the Keras dataset server, or the file already in the "
            "Keras cache (~/.keras/datasets). Offline, use the generated data instead: "
            "cnnviz.datasets.digits() or cnnviz.datasets.shapes()."
        ) from err
    return KerasDataset(
        np.asarray(x_train, dtype=np.uint8),
        np.asarray(y_train, dtype=np.int64).reshape(-1),
        np.asarray(x_test, dtype=np.uint8),
        np.asarray(y_test, dtype=np.int64).reshape(-1),
        list(KERAS_DATASETS[name]),
    )


# --- Novel shapes for the transfer-learning lesson (classes the shapes model never saw). ---

#: Class names of `novel_shapes`, in label order: new classes for the shapes base to learn.
NOVEL_CLASSES: list[str] = ["pentagon", "arrow", "crescent", "ring"]
__all__ += ["NOVEL_CLASSES", "novel_shapes"]  # noqa: PLE0605


def _novel_outline(
    draw: ImageDraw.ImageDraw, kind: str, cx: float, cy: float, r: float, angle: float
) -> None:
    """Draw one novel shape (value 255 on 0) of radius r, rotated by angle, with Pillow."""

    def rotated(points: np.ndarray) -> list[tuple[float, float]]:
        c, s = math.cos(angle), math.sin(angle)
        return [(cx + r * (c * x - s * y), cy + r * (s * x + c * y)) for x, y in points]

    if kind == "pentagon":
        t = -math.pi / 2 + np.arange(5) * 2 * math.pi / 5
        draw.polygon(rotated(np.stack([np.cos(t), np.sin(t)], 1)), fill=255)
    elif kind == "arrow":
        # A shaft and a triangular head, pointing along +x before the rotation.
        pts = np.array(
            [(-1, -0.22), (0.1, -0.22), (0.1, -0.6), (1, 0), (0.1, 0.6), (0.1, 0.22), (-1, 0.22)]
        )
        draw.polygon(rotated(pts), fill=255)
    elif kind == "crescent":
        # A disc with a second, shifted disc cut out of it.
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=255)
        ox, oy = cx + 0.55 * r * math.cos(angle), cy + 0.55 * r * math.sin(angle)
        q = 0.85 * r
        draw.ellipse((ox - q, oy - q, ox + q, oy + q), fill=0)
    elif kind == "ring":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=255)
        q = r * 0.55
        draw.ellipse((cx - q, cy - q, cx + q, cy + q), fill=0)
    else:  # pragma: no cover - guarded by novel_shapes
        raise DatasetError(f"Unknown novel shape {kind!r}.")


def novel_shapes(
    n: int, *, seed: int = 0, size: int = 64, classes: list[str] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Pictures of shapes the built-in shapes model never saw, for the transfer lesson.

    The look follows `shapes` (drawn here by its own small code, so the two generators evolve
    separately): one coloured object, light on dark or dark on light, of random radius
    (22-38 % of the side), position and rotation, on a flat or gradient background with
    Gaussian noise. Outlines are drawn with Pillow at 4× and box-averaged (anti-aliasing).
    Classes are balanced.

    Args:
        n: number of pictures.
        seed: the same seed gives the same arrays.
        size: side in pixels, 32..512.
        classes: a subset of `NOVEL_CLASSES`, in the label order wanted (default: all four).

    Returns:
        images: (n, size, size, 3) uint8 RGB; labels: (n,) int64 indices into `classes`.

    Raises:
        DatasetError: n, size or classes out of range.
    """
    n = _check_n(n)
    if isinstance(size, bool) or not isinstance(size, int | np.integer) or not 32 <= size <= 512:
        raise DatasetError(f"Expected size to be an integer in [32, 512]. Received size={size!r}.")
    classes = list(NOVEL_CLASSES if classes is None else classes)
    unknown = [c for c in classes if c not in NOVEL_CLASSES]
    if len(classes) < 2 or unknown or len(set(classes)) != len(classes):
        raise DatasetError(
            f"Expected two or more distinct classes from {', '.join(NOVEL_CLASSES)}. "
            f"Received {classes!r}."
        )
    size = int(size)
    rng = np.random.default_rng(seed)
    labels = _balanced_labels(rng, n, len(classes))
    radius = rng.uniform(0.22, 0.38, n) * size
    centre = rng.uniform(radius[:, None] + 1, size - 1 - radius[:, None], (n, 2))
    angle = rng.uniform(0, 2 * math.pi, n)
    light_object = rng.random(n) < 0.5
    big = size * 4
    alpha = np.empty((n, size, size), np.float32)
    for i in range(n):
        canvas = Image.new("L", (big, big), 0)
        _novel_outline(
            ImageDraw.Draw(canvas),
            classes[labels[i]],
            centre[i, 0] * 4,
            centre[i, 1] * 4,
            radius[i] * 4,
            angle[i],
        )
        a = np.asarray(canvas, np.float32) / 255
        alpha[i] = a.reshape(size, 4, size, 4).mean(axis=(1, 3))
    # Colours as in `shapes`: light object (160..255) on dark (0..95), or the reverse.
    light = rng.uniform(160, 255, (n, 3)).astype(np.float32)
    dark = rng.uniform(0, 95, (n, 3)).astype(np.float32)
    obj = np.where(light_object[:, None], light, dark)[:, None, None, :]
    bg = np.where(light_object[:, None], dark, light)[:, None, None, :]
    # Background: flat or a gradient of +-15 in a random direction.
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / (size - 1)
    phi = rng.uniform(0, 2 * math.pi, n)[:, None, None]
    ramp = (xx * np.cos(phi) + yy * np.sin(phi)) * rng.uniform(0, 30, n)[:, None, None]
    bg = bg + (ramp - ramp.mean(axis=(1, 2), keepdims=True))[..., None]
    img = bg + (obj - bg) * alpha[..., None]
    img += rng.standard_normal((n, size, size, 1)).astype(np.float32) * rng.uniform(0, 10, n)[
        :, None, None, None
    ].astype(np.float32)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8), labels.astype(np.int64)
