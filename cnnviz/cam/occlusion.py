"""Occlusion sensitivity: cover part of the picture and watch the class probability fall.

Zeiler & Fergus (2014, Sec. 4.2) slid a grey square over the picture and recorded how the
correct class's probability changed. Here every patch position is one image of a batch, so a
64×64 map with 8-px patches every 4 px (225 positions) costs a few batched forward passes.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from cnnviz import models
from cnnviz.cam.base import CamError, Explainer, Method, Progress, Step, get_explainer

__all__ = ["occlusion_map", "Occlusion", "patch_positions"]


def patch_positions(size: int, patch: int, stride: int) -> list[int]:
    """Top-left corners along one axis: 0, stride, ... while the patch stays inside."""
    return list(range(0, size - patch + 1, stride))


def _check(image: np.ndarray, patch: int, stride: int, fill: str | float) -> None:
    h, w = image.shape[:2]
    for name, v, hi in (("patch", patch, min(h, w)), ("stride", stride, None)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
            raise CamError(f"Expected {name} to be a positive integer. Received {name}={v!r}.")
        if hi is not None and v > hi:
            raise CamError(
                f"Expected patch to fit in the {w}×{h} picture (at most {hi}). Received {v}."
            )
    if isinstance(fill, str) and fill != "mean":
        raise CamError(f'Expected fill="mean" or a pixel value. Received fill={fill!r}.')


def _fill_value(image: np.ndarray, fill: str | float) -> np.ndarray:
    """The per-channel mean (or the given value), rounded to the image's dtype."""
    value = image.reshape(-1, image.shape[-1]).mean(axis=0) if fill == "mean" else fill
    value = np.broadcast_to(np.asarray(value, np.float64), image.shape[-1:])
    if np.issubdtype(image.dtype, np.integer):
        info = np.iinfo(image.dtype)
        value = np.clip(np.rint(value), info.min, info.max)
    return value.astype(image.dtype)


def occlude(
    image: np.ndarray, top: int, left: int, patch: int, fill: str | float = "mean"
) -> np.ndarray:
    """A copy of `image` (H, W[, C]) with a patch×patch square at (top, left) filled."""
    img = np.asarray(image)
    planes = img[..., None] if img.ndim == 2 else img
    out = planes.copy()
    out[top : top + patch, left : left + patch] = _fill_value(planes, fill)
    return out[..., 0] if img.ndim == 2 else out


def _sensitivity(
    explainer: Explainer,
    image: np.ndarray,
    to_model: Callable[[np.ndarray], np.ndarray],
    class_index: int,
    patch: int,
    stride: int,
    fill: str | float,
    batch_size: int,
    progress: Progress | None,
) -> tuple[np.ndarray, np.ndarray, int]:
    """(map (H, W) float64, original probabilities, class) for an (H, W, C) pixel image."""
    h, w = image.shape[:2]
    value = _fill_value(image, fill)
    # The original picture's probabilities, and by default its top-1 class.
    p0 = np.asarray(explainer.probabilities(tf.constant(to_model(image[None]))))[0]
    if class_index < 0:
        class_index = int(np.argmax(p0))
    rows, cols = patch_positions(h, patch, stride), patch_positions(w, patch, stride)
    corners = [(top, left) for top in rows for left in cols]
    drops = np.empty(len(corners))
    for start in range(0, len(corners), batch_size):
        chunk = corners[start : start + batch_size]
        # One occluded copy of the picture per patch position, in the picture's own pixels.
        batch = np.repeat(image[None], len(chunk), axis=0)
        for i, (top, left) in enumerate(chunk):
            batch[i, top : top + patch, left : left + patch] = value
        probs = np.asarray(explainer.probabilities(tf.constant(to_model(batch))))
        # How much covering this square lowers the class's probability.
        drops[start : start + len(chunk)] = p0[class_index] - probs[:, class_index]
        if progress is not None:
            progress(min(start + batch_size, len(corners)), len(corners))
    # Each pixel: the average drop over the patches that cover it (0 where none does).
    total = np.zeros((h, w))
    count = np.zeros((h, w))
    for (top, left), d in zip(corners, drops, strict=True):
        total[top : top + patch, left : left + patch] += d
        count[top : top + patch, left : left + patch] += 1
    return np.divide(total, count, out=np.zeros_like(total), where=count > 0), p0, class_index


def occlusion_map(
    model: str | keras.Model,
    image: np.ndarray,
    *,
    class_index: int | None = None,
    patch: int = 8,
    stride: int = 4,
    fill: str | float = "mean",
    progress: Progress | None = None,
) -> np.ndarray:
    """Occlusion sensitivity of one picture (Zeiler & Fergus 2014), the raw map.

    Every patch×patch square with top-left corners 0, stride, 2·stride, ... (inside the
    picture) is filled with `fill`, in the picture's own pixels before the model's
    preprocessing, and the occluded pictures go through the model in batches.

    Args:
        model: a registry name (its preprocessing is applied to every occluded copy) or a bare
            keras.Model (fed float32, unchanged).
        image: one picture (H, W[, C]) in the model's input size, as `compute` takes it.
        class_index: the class; None means the original picture's top-1 class.
        patch: side of the square in pixels.
        stride: step between square positions in pixels.
        fill: "mean" (the picture's per-channel mean, rounded to its dtype) or a pixel value.
        progress: progress(positions done, positions total).

    Returns:
        (H, W) float32: at each pixel, the average over the squares covering it of
        p(class | picture) − p(class | picture with the square covered), p the softmax
        probability. Positive where covering hurts the class; 0 where no square reaches.

    References:
        Zeiler, Fergus, "Visualizing and Understanding Convolutional Networks", ECCV 2014,
        arXiv:1311.2901 (Sec. 4.2, Fig. 7).
    """
    from cnnviz.cam.explain import check_class, prepare

    net, x = prepare(model, image)
    # The squares are placed in the pixels the model reads: no picture fitting (a digit's
    # crop and centring would move with each square); `models.fit_picture` does it first.
    _, preprocess = models.resolve(model, pictures=False)
    img = np.asarray(image)
    planes = img[..., None] if img.ndim == 2 else img
    _check(planes, patch, stride, fill)
    if planes.shape[:2] != x.shape[1:3]:
        raise CamError(
            f"Expected a picture of the model's input size {x.shape[2]}×{x.shape[1]} "
            f"(occlusion squares are placed in its pixels). Received {img.shape[1]}×{img.shape[0]}."
        )
    explainer = get_explainer(net, None)
    check_class(explainer, net, class_index)
    result, _, _ = _sensitivity(
        explainer,
        planes,
        lambda batch: np.asarray(preprocess(batch), np.float32),
        -1 if class_index is None else int(class_index),
        int(patch),
        int(stride),
        fill,
        64,
        progress,
    )
    return result.astype(np.float32)


class Occlusion(Method):
    """Occlusion sensitivity as a method of `cam.compute`, on the model-ready picture."""

    name = "occlusion"
    title = "Occlusion"
    reference = "Zeiler & Fergus, ECCV 2014 (arXiv:1311.2901)"
    explanation = (
        "Occlusion slides a grey square over the picture and asks, at every position, how much "
        "the class's probability drops when that part is hidden. Where hiding hurts, the "
        "network was looking. It needs no gradients at all, only many forward passes, and its "
        "resolution is the size of the square."
    )
    uses_layer = False
    defaults = {"patch": 8, "stride": 4, "batch_size": 64}

    def run(self, step: Step) -> tuple[np.ndarray, np.ndarray]:
        x = step.x[0]
        patch, stride = step.options["patch"], step.options["stride"]
        _check(x, patch, stride, "mean")
        raw, _, class_index = _sensitivity(
            step.explainer,
            x,
            lambda batch: batch,
            step.class_index,
            int(patch),
            int(stride),
            "mean",
            max(1, int(step.options["batch_size"])),
            step.progress,
        )
        # `explain` reports the class's pre-softmax score: one more pass gives the logits.
        _, logits, _ = step.explainer.input_gradients(
            tf.constant(step.x), tf.constant([class_index], tf.int32)
        )
        step.logits = np.asarray(logits[0])
        step.class_index = class_index
        return raw, np.maximum(raw, 0.0)
