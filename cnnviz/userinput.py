"""Users' pictures as the built-in models were trained: MNIST's normalisation, drawings cropped.

A student's digit arrives as a photo of paper, a screenshot or a canvas drawing: any size,
dark on light or light on dark, small in a corner of a big canvas. The digits model was
trained on MNIST-normalised digits, the shapes model on objects filling 15-80 % of the frame,
so these functions turn a picture into exactly that before it is resized and fed:

- `digit_input`: gray, the paper's level read from the border, ink whichever way is farther
  from it, then `cnnviz.datasets.mnist_normalize` (soft threshold, crop, 20×20, centre of
  mass in 28×28).
- `drawing_input`: the drawing's box (pixels that differ from the border's colour), a square
  crop around it with a margin, so that a small drawing still fills the frame.

Pure numpy/scipy/Pillow (no TensorFlow): `cnnviz.models.preprocess` calls them for the
built-in models, and the training command and the benchmarks feed evaluation pictures the
same way. Inverting a picture gives the same result (only the distance from the paper counts).
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage

__all__ = ["BlankPicture", "digit_input", "drawing_input"]


class BlankPicture(ValueError):
    """Nothing stands out from the paper: there is no digit or drawing to feed."""


# Pictures are shrunk to at most this side before looking for the ink (bounded work).
_FIT_MAX_SIDE = 512
# Ink weaker than this (of 255) against the paper is no ink: the picture is blank.
_MIN_CONTRAST = 32.0
# Shapes: a drawing fills this fraction of the square frame it is cropped to (training
# objects span 15-80 % of the frame).
_DRAWING_FILL = 0.6


def _gray(image: np.ndarray) -> np.ndarray:
    """(H, W[, C]) -> (H, W) float32 luminance (ITU-R 601, as Pillow's "L")."""
    x = np.asarray(image, dtype=np.float32)
    if x.ndim == 3:
        x = (
            x[..., 0]
            if x.shape[-1] < 3
            else x[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32)
        )
    return x


def _shrink(x: np.ndarray, side: int = _FIT_MAX_SIDE) -> np.ndarray:
    """Shrink so the longer side is at most `side` (Pillow's antialiased bilinear), per plane."""
    h, w = x.shape[:2]
    if max(h, w) <= side:
        return x
    s = side / max(h, w)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    planes = x[..., None] if x.ndim == 2 else x
    out = np.stack(
        [
            np.asarray(
                Image.fromarray(np.ascontiguousarray(p, np.float32)).resize(
                    size, Image.Resampling.BILINEAR
                )
            )
            for p in np.moveaxis(planes, -1, 0)
        ],
        axis=-1,
    )
    return out[..., 0] if x.ndim == 2 else out


def _border(x: np.ndarray) -> np.ndarray:
    """The pixels of a frame 2 % of the longer side wide (at least 1), as (k, ...) rows."""
    b = max(1, round(0.02 * max(x.shape[:2])))
    return np.concatenate(
        [x[:b].reshape(-1, *x.shape[2:]), x[-b:].reshape(-1, *x.shape[2:]),
         x[:, :b].reshape(-1, *x.shape[2:]), x[:, -b:].reshape(-1, *x.shape[2:])]
    )  # fmt: skip


def digit_input(image: np.ndarray) -> np.ndarray:
    """A user's picture of one digit -> the 28×28 input the digits model was trained on.

    Works for an upload, a camera picture or a canvas drawing, dark ink on light paper or
    light on dark: the picture is turned gray, the paper's level is read from its border and
    the ink is whatever differs from it in the stronger direction (so inverting a picture
    gives the same input); then `cnnviz.datasets.mnist_normalize` thresholds softly, crops to
    the ink, fits it into 20×20 and centres its mass in 28×28, as MNIST was made. A 28×28
    picture already in that form (an MNIST digit, white on black) is used as it is.

    Args:
        image: (H, W) or (H, W, 3|4) array, 0-255.

    Returns:
        (28, 28) float32 in 0..255, white ink on black.

    Raises:
        BlankPicture: no ink stands out from the paper.
    """
    from cnnviz.datasets import mnist_normalize

    x = _shrink(_gray(image))
    if _in_mnist_form(x):
        return x.astype(np.float32)  # MNIST's own digits (and the generator's) as they are
    paper = float(np.median(_border(x)))
    # Dark ink on light paper when the ink reaches further below the paper's level than above
    # it. Compare how far each side reaches (the 99.9th percentile), not how much lies there:
    # the grain of paper spreads evenly to both sides and its total can outweigh a small digit,
    # but it never strays as far from the paper as ink does. Totals only break an exact tie.
    below, above = np.clip(paper - x, 0.0, None), np.clip(x - paper, 0.0, None)
    reach_below = float(np.percentile(below, 99.9)) if below.size else 0.0
    reach_above = float(np.percentile(above, 99.9)) if above.size else 0.0
    if reach_below != reach_above:
        dark_ink = reach_below > reach_above
    else:
        dark_ink = below.sum() > above.sum()
    ink = below if dark_ink else above
    strength = max(reach_below, reach_above)
    if not strength >= _MIN_CONTRAST:
        raise BlankPicture(
            f"Expected a picture of a digit: ink that stands out from the paper by at least "
            f"{_MIN_CONTRAST:.0f} of 255. Received a blank picture (contrast {strength:.0f}): "
            "draw or upload a digit."
        )
    return mnist_normalize(ink).astype(np.float32)


def _in_mnist_form(x: np.ndarray) -> bool:
    """A 28×28 white-on-black digit already normalised as MNIST: a black border, the ink's
    box at most 20 pixels on its longer side, the centre of mass within half a pixel of
    (14, 14). Every one of MNIST's digits in `cnnviz.datasets.mnist_sample` passes."""
    if x.shape != (28, 28) or np.median(_border(x)) > 0 or x.max() < _MIN_CONTRAST:
        return False
    rows, cols = np.flatnonzero(x.any(axis=1)), np.flatnonzero(x.any(axis=0))
    if max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 > 20:
        return False
    cy, cx = ndimage.center_of_mass(x)
    return abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5


def drawing_input(image: np.ndarray) -> np.ndarray:
    """A user's drawing -> a square crop around it with a margin, in the picture's own colours.

    The background colour is the median of the border; the drawing is every pixel that
    differs from it by more than a quarter of the strongest difference (specks under 2 % of
    it dropped). The crop is the square, centred on the drawing's box, in which the drawing
    spans `_DRAWING_FILL` of the side, never smaller than the box and, where it reaches past
    the picture, filled with the background colour. A photo whose content fills the frame
    comes back as its centred square (the shorter side padded with the border's colour).

    Args:
        image: (H, W, 3) or (H, W) array, 0-255.

    Returns:
        (S, S, C) float32 (C as given; (S, S) for gray), 0..255.

    Raises:
        BlankPicture: nothing differs from the background.
    """
    x = np.asarray(image, dtype=np.float32)
    planes = x[..., None] if x.ndim == 2 else x[..., :3]
    x = _shrink(planes)
    x = x[..., None] if x.ndim == 2 else x
    background = np.median(_border(x), axis=0)
    diff = np.abs(x - background).max(axis=-1)
    strength = float(np.percentile(diff, 99.9))
    if not strength >= _MIN_CONTRAST:
        raise BlankPicture(
            f"Expected a picture of a drawing: lines or colours that stand out from the "
            f"background by at least {_MIN_CONTRAST:.0f} of 255. Received a blank picture "
            f"(contrast {strength:.0f}): draw or upload a shape."
        )
    mask = diff > 0.25 * strength
    labels, count = ndimage.label(mask, structure=np.ones((3, 3)))
    if count > 1:
        mass = ndimage.sum_labels(mask, labels, index=np.arange(1, count + 1))
        mask = np.concatenate([[False], mass >= 0.02 * mass.sum()])[labels]
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    cy, cx = (rows[0] + rows[-1] + 1) / 2, (cols[0] + cols[-1] + 1) / 2
    extent = max(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1)
    side = int(np.ceil(min(extent / _DRAWING_FILL, max(x.shape[:2]))))
    side = max(side, extent)
    top, left = int(round(cy - side / 2)), int(round(cx - side / 2))
    out = np.empty((side, side, x.shape[-1]), dtype=np.float32)
    out[:] = background
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + side, x.shape[0]), min(left + side, x.shape[1])
    out[y0 - top : y1 - top, x0 - left : x1 - left] = x[y0:y1, x0:x1]
    return out[..., 0] if np.asarray(image).ndim == 2 else out
