"""Evaluation-only digits: handwriting drawn by code that shares nothing with `cnnviz.datasets`.

`drawn_digits` stands in for what a student writes on paper and photographs, and is used to
*evaluate* the digits model, never to train it or to choose its settings (the MNIST habit of
a held-out test set, here also held out in how the data is made). Where the training
generator traces Catmull-Rom curves and straight pieces and draws them with Pillow's lines
in MNIST's normalised frame, this one:

- defines every digit again, from scratch, as cubic Bézier segments (its own glyphs, with
  their own variants);
- moves the control points by a random perspective tilt and an affine map (no elastic field);
- draws the pen as disks stamped along the curve with `skimage.draw.disk`, their radius
  swelling and thinning like a pressed pen;
- puts the digit at a random size and place on a sheet of paper (uneven light, grain), darker
  ink on lighter paper, blurs it like a camera and shrinks it with scikit-image's
  anti-aliased resize, as a user's picture, not normalised: the model's own preprocessing
  has to find the digit.

Only the class order (0-9) is shared with the training data.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from PIL import Image
from skimage import draw, filters, transform

from cnnviz.datasets import DatasetError

__all__ = ["drawn_digits", "as_user_pictures", "sklearn_digits", "real_input_rows"]

_MAX_N = 20_000
_GLYPH = 160  # the digit is drawn in a box this many pixels high, then shrunk onto the sheet


def _ellipse(cx: float, cy: float, rx: float, ry: float) -> list[np.ndarray]:
    """An ellipse as four cubic Bézier segments, from the top, anticlockwise on screen."""
    k = 0.5523  # the usual cubic approximation of a quarter circle
    top, left, bottom, right = (cx, cy - ry), (cx - rx, cy), (cx, cy + ry), (cx + rx, cy)
    return [
        np.array([top, (cx - k * rx, cy - ry), (cx - rx, cy - k * ry), left]),
        np.array([left, (cx - rx, cy + k * ry), (cx - k * rx, cy + ry), bottom]),
        np.array([bottom, (cx + k * rx, cy + ry), (cx + rx, cy + k * ry), right]),
        np.array([right, (cx + rx, cy - k * ry), (cx + k * rx, cy - ry), top]),
    ]


def _seg(*pts: tuple[float, float]) -> np.ndarray:
    """A cubic segment; two points make a straight one."""
    p = np.asarray(pts, dtype=np.float64)
    if len(p) == 2:
        p = np.stack([p[0], p[0] + (p[1] - p[0]) / 3, p[0] + 2 * (p[1] - p[0]) / 3, p[1]])
    return p


# Each digit: variants, each a list of pen strokes, each stroke a list of cubic segments
# (4 control points (x, y) in a box 1 high, y down).
_DIGITS: dict[int, list[list[list[np.ndarray]]]] = {
    0: [
        [_ellipse(0.5, 0.5, 0.4, 0.5)],
        [_ellipse(0.5, 0.5, 0.32, 0.5) + [_seg((0.5, 0.0), (0.62, 0.02), (0.68, 0.1), (0.7, 0.2))]],
    ],
    1: [
        [[_seg((0.55, 0.0), (0.5, 1.0))]],
        [
            [
                _seg((0.25, 0.3), (0.45, 0.15), (0.55, 0.05), (0.6, 0.0)),
                _seg((0.6, 0.0), (0.52, 1.0)),
            ]
        ],
    ],
    2: [
        [
            [
                _seg((0.12, 0.25), (0.2, -0.05), (0.85, -0.05), (0.78, 0.35)),
                _seg((0.78, 0.35), (0.72, 0.6), (0.3, 0.8), (0.05, 1.0)),
                _seg((0.05, 1.0), (0.95, 0.98)),
            ]
        ],
        [
            [
                _seg((0.1, 0.2), (0.3, -0.05), (0.95, 0.0), (0.7, 0.4)),
                _seg((0.7, 0.4), (0.5, 0.7), (0.05, 0.85), (0.2, 0.98)),
                _seg((0.2, 0.98), (0.35, 1.05), (0.3, 0.8), (0.15, 0.88)),
                _seg((0.15, 0.88), (0.5, 1.0), (0.8, 0.95), (0.95, 0.9)),
            ]
        ],
    ],
    3: [
        [
            [
                _seg((0.1, 0.1), (0.5, -0.1), (1.0, 0.2), (0.4, 0.47)),
                _seg((0.4, 0.47), (1.1, 0.5), (0.95, 1.05), (0.05, 0.9)),
            ]
        ],
        [
            [
                _seg((0.1, 0.02), (0.85, 0.02)),
                _seg((0.85, 0.02), (0.35, 0.42)),
                _seg((0.35, 0.42), (1.0, 0.4), (1.0, 1.0), (0.1, 0.92)),
            ]
        ],
    ],
    4: [
        [
            [_seg((0.3, 0.0), (0.1, 0.65)), _seg((0.1, 0.65), (0.95, 0.65))],
            [_seg((0.75, 0.3), (0.75, 1.0))],
        ],
        [
            [_seg((0.72, 0.0), (0.0, 0.7)), _seg((0.0, 0.7), (1.0, 0.7))],
            [_seg((0.72, 0.0), (0.72, 1.0))],
        ],
    ],
    5: [
        [
            [
                _seg((0.9, 0.0), (0.3, 0.0)),
                _seg((0.3, 0.0), (0.22, 0.45)),
                _seg((0.22, 0.45), (0.7, 0.3), (1.05, 0.7), (0.6, 0.98)),
                _seg((0.6, 0.98), (0.35, 1.05), (0.1, 0.95), (0.05, 0.85)),
            ]
        ],
        [
            [
                _seg((0.3, 0.02), (0.2, 0.48)),
                _seg((0.2, 0.48), (0.9, 0.25), (1.1, 0.95), (0.1, 0.95)),
            ],
            [_seg((0.3, 0.02), (0.92, 0.04))],
        ],
    ],
    6: [
        [
            [
                _seg((0.8, 0.0), (0.3, 0.1), (0.05, 0.6), (0.25, 0.9)),
                _seg((0.25, 0.9), (0.45, 1.1), (0.9, 0.95), (0.8, 0.7)),
                _seg((0.8, 0.7), (0.7, 0.45), (0.3, 0.5), (0.15, 0.75)),
            ]
        ],
        [
            [_seg((0.7, 0.0), (0.18, 0.72))]
            + _ellipse(0.5, 0.72, 0.32, 0.27)[1:]
            + [_seg((0.5, 0.45), (0.18, 0.72))]
        ],
    ],
    7: [
        [
            [
                _seg((0.05, 0.05), (0.95, 0.05)),
                _seg((0.95, 0.05), (0.7, 0.35), (0.5, 0.6), (0.4, 1.0)),
            ]
        ],
        [
            [_seg((0.05, 0.02), (0.95, 0.02)), _seg((0.95, 0.02), (0.42, 1.0))],
            [_seg((0.3, 0.5), (0.85, 0.5))],
        ],
    ],
    8: [
        [_ellipse(0.5, 0.26, 0.3, 0.25), _ellipse(0.5, 0.74, 0.4, 0.26)],
        [
            [
                _seg((0.8, 0.1), (0.3, -0.15), (0.0, 0.35), (0.5, 0.5)),
                _seg((0.5, 0.5), (1.05, 0.7), (0.75, 1.05), (0.45, 1.0)),
                _seg((0.45, 1.0), (0.0, 0.95), (0.2, 0.55), (0.5, 0.48)),
                _seg((0.5, 0.48), (0.9, 0.35), (0.95, 0.0), (0.6, 0.02)),
            ]
        ],
    ],
    9: [
        [_ellipse(0.45, 0.3, 0.35, 0.28)[::-1] + [_seg((0.8, 0.3), (0.75, 1.0))]],
        [
            _ellipse(0.45, 0.3, 0.35, 0.28)
            + [_seg((0.8, 0.3), (0.85, 0.8), (0.6, 1.05), (0.25, 0.92))]
        ],
    ],
}


def _bezier(ctrl: np.ndarray, k: int) -> np.ndarray:
    """k points of a cubic Bézier segment (Bernstein form)."""
    t = np.linspace(0, 1, k)[:, None]
    b = [(1 - t) ** 3, 3 * t * (1 - t) ** 2, 3 * t**2 * (1 - t), t**3]
    return sum(bi * ci for bi, ci in zip(b, ctrl, strict=True))


def _check_n(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or not 0 <= n <= _MAX_N:
        raise DatasetError(f"Expected n to be an integer in [0, {_MAX_N}]. Received n={n!r}.")
    return int(n)


def drawn_digits(n: int, *, seed: int = 0, size: int = 140) -> tuple[np.ndarray, np.ndarray]:
    """`n` photographed handwritten digits, dark ink on light paper, for evaluation only.

    Args:
        n: number of pictures (classes balanced: n // 10 or n // 10 + 1 each).
        seed: seed; the same seed gives the same arrays.
        size: side of the square pictures in pixels (56-512).

    Returns:
        images: (n, size, size) uint8 gray, dark ink on light paper, the digit 35-85 % of
            the picture high, anywhere in it.
        labels: (n,) int64 digits 0..9.

    Raises:
        DatasetError: n or size out of range.
    """
    n = _check_n(n)
    if isinstance(size, bool) or not isinstance(size, int | np.integer) or not 56 <= size <= 512:
        raise DatasetError(f"Expected size to be an integer in [56, 512]. Received size={size!r}.")
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % 10).astype(np.int64)
    images = np.empty((n, size, size), dtype=np.uint8)
    for i, digit in enumerate(labels.tolist()):
        images[i] = _photo(_glyph(digit, rng), rng, int(size))
    return images, labels


def _glyph(digit: int, rng: np.random.Generator) -> np.ndarray:
    """One digit's ink coverage, (h, w) float in [0, 1], about `_GLYPH` pixels high."""
    variants = _DIGITS[digit]
    strokes = variants[rng.integers(len(variants))]
    # The hand: a perspective tilt and an affine map (slant, width, rotation) of the controls.
    src = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], float)
    tilt = transform.ProjectiveTransform.from_estimate(src, src + rng.uniform(-0.07, 0.07, (4, 2)))
    angle = math.radians(rng.uniform(-8, 8))
    hand = transform.AffineTransform(
        scale=(rng.uniform(0.6, 1.1), 1.0), shear=math.radians(rng.uniform(-20, 5)), rotation=angle
    )
    paths = []
    for stroke in strokes:
        ctrl = [tilt(hand(seg + rng.normal(0, 0.02, seg.shape))) for seg in stroke]
        paths.append(np.concatenate([_bezier(c, 40) for c in ctrl]))
    pts = np.concatenate(paths)
    lo, hi = pts.min(0), pts.max(0)
    scale = _GLYPH / max(hi[1] - lo[1], 0.3 * (hi[0] - lo[0]), 1e-3)
    radius = _GLYPH * rng.uniform(0.035, 0.1)
    pad = int(radius) + 3
    shape = (int((hi[1] - lo[1]) * scale) + 2 * pad + 1, int((hi[0] - lo[0]) * scale) + 2 * pad + 1)
    ink = np.zeros(shape, dtype=np.float32)
    for path in paths:
        xy = (path - lo) * scale + pad
        # Pen pressure: the radius swells and thins slowly along the stroke.
        phase = rng.uniform(0, 2 * math.pi)
        r = radius * (1 + 0.25 * np.sin(np.linspace(0, rng.uniform(2, 7), len(xy)) + phase))
        for (x, y), ri in zip(xy.tolist(), r.tolist(), strict=True):
            rr, cc = draw.disk((y, x), max(ri, 1.0), shape=shape)
            ink[rr, cc] = 1.0
    return ink


def _photo(ink: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    """The digit shrunk onto a photographed sheet of paper: (size, size) uint8 gray."""
    # The digit's height on the picture, and where it sits (fully inside).
    h = rng.uniform(0.35, 0.85) * size
    w = min(h * ink.shape[1] / ink.shape[0], 0.95 * size)
    h = w * ink.shape[0] / ink.shape[1] if w < h * ink.shape[1] / ink.shape[0] else h
    small = transform.resize(ink, (max(4, int(h)), max(2, int(w))), anti_aliasing=True)
    top = rng.integers(0, size - small.shape[0] + 1)
    left = rng.integers(0, size - small.shape[1] + 1)
    cover = np.zeros((size, size), dtype=np.float64)
    cover[top : top + small.shape[0], left : left + small.shape[1]] = small
    # Paper: a light level with uneven light across the sheet and a little grain.
    yy, xx = np.mgrid[0:size, 0:size] / size
    paper = (
        rng.uniform(185, 250)
        + rng.uniform(-15, 15) * (xx - 0.5)
        + rng.uniform(-15, 15) * (yy - 0.5)
    )
    ink_level = rng.uniform(5, 90)
    img = paper + (ink_level - paper) * cover
    img = filters.gaussian(img, sigma=rng.uniform(0.3, 1.2), preserve_range=True)
    img += rng.normal(0, rng.uniform(0, 6), img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------------------------
# Real handwriting, fed as users' pictures
# --------------------------------------------------------------------------------------------


def as_user_pictures(images: np.ndarray, side: int, *, dark_on_light: bool) -> np.ndarray:
    """White-on-black digits (N, h, w) uint8 resized to side×side as a user would give them.

    Resized with Pillow's bicubic filter (a photo or a screen capture, not MNIST's own
    normalisation); `dark_on_light` inverts them into dark ink on light paper.
    """
    out = np.empty((len(images), side, side), dtype=np.uint8)
    for i, img in enumerate(np.asarray(images, dtype=np.uint8)):
        big = np.asarray(Image.fromarray(img).resize((side, side), Image.Resampling.BICUBIC))
        out[i] = 255 - big if dark_on_light else big
    return out


def sklearn_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled handwritten digits (1,797 from 43 writers, UCI optdigits).

    Returns:
        images: (1797, 8, 8) uint8 white on black (0-16 scaled to 0-255);
        labels: (1797,) int64.
    """
    from sklearn.datasets import load_digits  # bundled with scikit-learn: no download

    bunch = load_digits()
    images = np.rint(bunch.images * (255 / 16)).astype(np.uint8)
    return images, bunch.target.astype(np.int64)


def real_input_rows(
    classify: Callable[[np.ndarray], np.ndarray],
    *,
    mnist_heldout: tuple[np.ndarray, np.ndarray] | None = None,
    n_drawn: int = 1000,
    seed: int = 0,
) -> dict[str, dict]:
    """Accuracy of a digit classifier on real and independently drawn handwriting.

    Every set is fed as users' pictures (`as_user_pictures`), so the classifier's own
    preprocessing must find, normalise and, on paper, invert the digit.

    Args:
        classify: maps a batch of pictures (N, H, W) uint8 to predicted digits (N,).
        mnist_heldout: real MNIST digits (N, 28, 28) and labels never used in training.
        n_drawn: how many `drawn_digits` pictures (seed `seed`) to score.
        seed: seed of the drawn digits.

    Returns:
        {row name: {"data", "feed", "n", "accuracy"}}.
    """
    sets = []
    if mnist_heldout is not None:
        mx, my = mnist_heldout
        sets.append(("mnist_heldout_28", "MNIST digits held out of training", mx, my, 28, False))
        sets.append(("mnist_heldout_140_paper", "the same", mx, my, 140, True))
    sx, sy = sklearn_digits()
    sets.append(("sklearn_digits_28", "scikit-learn digits (8×8, 43 writers)", sx, sy, 28, False))
    sets.append(("sklearn_digits_140_paper", "the same", sx, sy, 140, True))
    rows = {}
    for name, data, x, y, side, paper in sets:
        feed = f"{side}×{side}, " + ("dark ink on light paper" if paper else "white on black")
        pred = np.asarray(classify(as_user_pictures(x, side, dark_on_light=paper)))
        rows[name] = {"data": data, "feed": feed, "n": int(y.size), "accuracy": _mean(pred, y)}
    dx, dy = drawn_digits(n_drawn, seed=seed)
    rows["drawn_digits_140_paper"] = {
        "data": f"cnnviz.evaldigits.drawn_digits(seed={seed}), never trained on",
        "feed": "140×140, dark ink on photographed paper, any size and place",
        "n": int(dy.size),
        "accuracy": _mean(np.asarray(classify(dx)), dy),
    }
    return rows


def _mean(pred: np.ndarray, y: np.ndarray) -> float:
    return round(float(np.mean(pred == y)), 5) if y.size else float("nan")
