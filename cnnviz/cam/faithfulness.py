"""Faithfulness: deletion and insertion curves (RISE, Petsiuk et al. 2018), and the pointing game.

`deletion_insertion` measures how fast the class probability falls when the "important" pixels
are removed (and rises when they are inserted), against random maps. `pointing` asks whether a
map's brightest point lies on the object (Zhang et al. 2016).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from scipy import ndimage

from cnnviz.cam.base import CamError, Explainer, Progress, get_explainer
from cnnviz.cam.explain import explain, prepare

__all__ = ["Faithfulness", "deletion_insertion", "pointing", "pointing_tolerance"]


def pointing_tolerance(side: int) -> float:
    """The pointing game's tolerance for a side×side map: 15 px at 224×224 (Zhang et al. 2016)."""
    return 15.0 * side / 224.0


def pointing(heatmap: np.ndarray, mask: np.ndarray) -> tuple[bool, float]:
    """(hit, distance): does the map's brightest point lie within the tolerance of the object?

    distance is in pixels from the peak to the nearest object pixel (0 on the object), by
    scipy's exact Euclidean distance transform; hit is distance <= `pointing_tolerance` of the
    map's longer side (Zhang et al., "Top-down Neural Attention by Excitation Backprop", 2016).

    Raises:
        CamError: the map and the mask differ in shape, or the mask is empty.
    """
    heat = np.asarray(heatmap)
    obj = np.asarray(mask, bool)
    if heat.shape != obj.shape or heat.ndim != 2 or not obj.any():
        raise CamError(
            f"Expected a 2-D map and a non-empty object mask of the same shape. Received map "
            f"{heat.shape} and mask {obj.shape} with {int(obj.sum())} object pixels."
        )
    peak = np.unravel_index(np.argmax(heat), heat.shape)
    distance = float(ndimage.distance_transform_edt(~obj)[peak])
    return distance <= pointing_tolerance(max(heat.shape)), distance


@dataclass(frozen=True)
class Faithfulness:
    """Deletion and insertion curves of one map, and of random maps for comparison.

    Attributes:
        fractions: (steps + 1,) fraction of pixels removed (deletion) or inserted (insertion).
        deletion, insertion: (steps + 1,) the class probability along the way for the map.
        random_deletion, random_insertion: the same for random maps (mean over repeats).
        *_auc: areas under the curves (trapezoid rule over fractions in [0, 1]). A faithful map
            has a LOWER deletion AUC and a HIGHER insertion AUC than the random maps.
    """

    method: str
    class_index: int
    fractions: np.ndarray
    deletion: np.ndarray
    insertion: np.ndarray
    random_deletion: np.ndarray
    random_insertion: np.ndarray
    deletion_auc: float
    insertion_auc: float
    random_deletion_auc: float
    random_insertion_auc: float
    blur_sigma: float = 0.0  # the Gaussian blur (pixels of the model's input) insertion starts from


def _curves(
    explainer: Explainer,
    x: np.ndarray,
    blurred: np.ndarray,
    order: np.ndarray,
    steps: int,
    class_index: int,
    batch: int,
    tick: Callable[[], None],
) -> tuple[np.ndarray, np.ndarray]:
    """Deletion and insertion curves for one pixel order (most important first)."""
    h, w = x.shape[1:3]
    counts = np.round(np.linspace(0, h * w, steps + 1)).astype(np.int64)
    rank = np.empty(h * w, dtype=np.int64)
    rank[order] = np.arange(h * w)
    rank = rank.reshape(h, w)
    curves = []
    for start_img, end_img in ((x[0], np.zeros_like(x[0])), (blurred, x[0])):
        # Image k: pixels ranked below counts[k] switched from the start to the end picture.
        switched = rank[None] < counts[:, None, None]  # (steps + 1, h, w)
        batch_imgs = np.where(switched[..., None], end_img[None], start_img[None])
        probs = []
        for lo in range(0, steps + 1, batch):
            p = explainer.probabilities(tf.constant(batch_imgs[lo : lo + batch], tf.float32))
            probs.append(np.asarray(p)[:, class_index])
        curves.append(np.concatenate(probs).astype(np.float64))
        tick()
    return curves[0], curves[1]


def deletion_insertion(
    model: str | keras.Model,
    image: np.ndarray,
    *,
    method: str = "gradcam",
    class_index: int | None = None,
    layer: str | None = None,
    heatmap: np.ndarray | None = None,
    steps: int = 20,
    random_repeats: int = 2,
    seed: int = 0,
    batch_size: int = 32,
    blur_sigma: float | None = None,
    progress: Progress | None = None,
    **options: Any,
) -> Faithfulness:
    """Deletion and insertion curves and their AUC for a method's map, with a random baseline.

    Deletion removes the pixels the map ranks highest first (sets them to 0, black for the
    built-ins) and follows the class probability down: a faithful map makes it fall fast
    (low AUC). Insertion starts from a blurred copy and puts the top-ranked pixels back first:
    the probability should rise fast (high AUC). Random maps give the baseline to beat.

    Args:
        model: a registry name or a bare keras.Model (see `compute`).
        image: one image (H, W[, C]).
        method: the method whose map is tested (ignored when `heatmap` is given).
        class_index: the class; None means the top-1 class.
        layer: the layer for CAM methods.
        heatmap: an already computed (H, W) map at the model's input size, to skip recomputing.
        steps: points on each curve after the start (resolution of the curve).
        random_repeats: how many random maps to average for the baseline.
        seed: seed of the random maps and of the tie-breaking between equal map values.
        batch_size: images per forward pass.
        blur_sigma: the Gaussian blur, in pixels of the model's input, of insertion's starting
            picture; None means RISE's 5 px at 224 px, scaled to the input. Big, simple objects
            (the built-ins' 64×64 shapes) survive that blur: the curve then starts at the
            final probability and measures nothing, and a larger blur makes it informative.
        progress: progress(curves done, curves total).
        **options: method options, see `compute`.

    Returns:
        `Faithfulness`.

    References:
        Petsiuk, Das, Saenko, "RISE: Randomized Input Sampling for Explanation of Black-box
        Models", BMVC 2018, arXiv:1806.07421 (Sec. 4.1, deletion and insertion metrics).
    """
    if blur_sigma is not None and not (np.isfinite(blur_sigma) and blur_sigma > 0):
        raise CamError(f"Expected blur_sigma > 0 (pixels). Received blur_sigma={blur_sigma}.")
    if steps < 1 or random_repeats < 1 or batch_size < 1:
        raise CamError(
            "Expected steps, random_repeats and batch_size >= 1. "
            f"Received steps={steps}, random_repeats={random_repeats}, batch_size={batch_size}."
        )
    net, x = prepare(model, image)
    size = x.shape[1:3]
    if heatmap is None:
        result = explain(
            net, x, method, class_index=class_index, layer=layer, progress=None, options=options
        )
        heatmap, class_index = result.heatmap, result.class_index
    heatmap = np.asarray(heatmap, dtype=np.float64)
    if heatmap.shape != size:
        raise CamError(f"Expected a heat map of shape {size}. Received {heatmap.shape}.")
    explainer = get_explainer(net, None)
    if class_index is None:
        class_index = int(np.argmax(np.asarray(explainer.probabilities(tf.constant(x)))[0]))
    rng = np.random.default_rng(seed)
    # Insertion's starting canvas: the image blurred (RISE: sigma 5 px at 224 px).
    sigma = max(1.0, 5.0 * max(size) / 224.0) if blur_sigma is None else float(blur_sigma)
    blurred = ndimage.gaussian_filter(x[0], sigma=(sigma, sigma, 0))
    total = 2 * (1 + random_repeats)
    done = [0]

    def tick() -> None:
        done[0] += 1
        if progress is not None:
            progress(done[0], total)

    # Most important pixels first; equal values (e.g. the zeros of a CAM) in random order.
    order = np.lexsort((rng.random(heatmap.size), -heatmap.ravel()))
    args = (explainer, x, blurred)
    deletion, insertion = _curves(*args, order, steps, class_index, batch_size, tick)
    randoms = [
        _curves(*args, rng.permutation(heatmap.size), steps, class_index, batch_size, tick)
        for _ in range(random_repeats)
    ]
    random_deletion = np.mean([r[0] for r in randoms], axis=0)
    random_insertion = np.mean([r[1] for r in randoms], axis=0)
    fractions = np.linspace(0.0, 1.0, steps + 1)
    auc = lambda curve: float(np.trapezoid(curve, fractions))  # noqa: E731
    return Faithfulness(
        method=method,
        class_index=int(class_index),
        fractions=fractions,
        deletion=deletion,
        insertion=insertion,
        random_deletion=random_deletion,
        random_insertion=random_insertion,
        deletion_auc=auc(deletion),
        insertion_auc=auc(insertion),
        random_deletion_auc=auc(random_deletion),
        random_insertion_auc=auc(random_insertion),
        blur_sigma=sigma,
    )
