"""Transforms: small closures `(images, seed) -> images` applied before every step.

Lucent's `transform` module: `pad`, `jitter`, `random_scale`, `random_rotate`, so the picture
must work when moved a little. Their randomness is stateless and seeded, so a run repeats.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from cnnviz.featureviz.errors import FeatureVizError

__all__ = [
    "Transform",
    "pad",
    "jitter",
    "random_scale",
    "random_rotate",
    "standard_transforms",
]

Transform = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]


def pad(width: int, *, mode: str = "constant", value: float = 0.5) -> Transform:
    """Add `width` pixels on every side (grey by default, as lucid does, or "reflect")."""
    if width < 0 or mode not in ("constant", "reflect"):
        raise FeatureVizError(
            f"Expected width >= 0 and mode 'constant' or 'reflect'. Received width={width}, mode={mode!r}."
        )

    def fn(images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        paddings = [[0, 0], [width, width], [width, width], [0, 0]]
        if mode == "reflect":
            return tf.pad(images, paddings, mode="REFLECT")
        return tf.pad(images, paddings, constant_values=value)

    return fn


def jitter(d: int) -> Transform:
    """Crop `d` pixels less on each axis at a random offset in [0, d] (the same for the batch)."""
    if d < 0:
        raise FeatureVizError(f"Expected a jitter d >= 0. Received d={d}.")

    def fn(images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        if d == 0:
            return images
        h, w = images.shape[1], images.shape[2]
        oy_ox = tf.random.stateless_uniform([2], seed, 0, d + 1, dtype=tf.int32)
        return tf.slice(
            images, tf.stack([0, oy_ox[0], oy_ox[1], 0]), [-1, h - d, w - d, images.shape[3]]
        )

    return fn


def _affine(images: tf.Tensor, matrices: tf.Tensor) -> tf.Tensor:
    # keras.ops.image.affine_transform: the projective warp Keras's RandomZoom/RandomRotation
    # use (bilinear, mirrored borders), with a gradient, one 3×3 matrix per image.
    return keras.ops.image.affine_transform(
        images, matrices, interpolation="bilinear", fill_mode="reflect"
    )


def _choose(values: Sequence[float], n: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """n values drawn uniformly from `values`, one per image."""
    pick = tf.random.stateless_uniform([n], seed, 0, len(values), dtype=tf.int32)
    return tf.gather(tf.constant(np.asarray(values, np.float32)), pick)


def random_scale(scales: Sequence[float]) -> Transform:
    """Zoom each image about its centre by a factor drawn from `scales`, keeping its size."""
    if not scales or min(scales) <= 0:
        raise FeatureVizError(f"Expected positive scale factors. Received {scales!r}.")

    def fn(images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        h, w = images.shape[1], images.shape[2]
        inv = 1.0 / _choose(scales, tf.shape(images)[0], seed)
        cy, cx = (h - 1) / 2, (w - 1) / 2
        zeros = tf.zeros_like(inv)
        # Output pixel p reads input pixel c + (p − c) / s.
        rows = [inv, zeros, cx * (1 - inv), zeros, inv, cy * (1 - inv), zeros, zeros]
        return _affine(images, tf.stack(rows, axis=1))

    return fn


def random_rotate(angles: Sequence[float]) -> Transform:
    """Rotate each image about its centre by an angle (degrees, counter-clockwise) from `angles`."""
    if not angles:
        raise FeatureVizError("Expected at least one rotation angle. Received none.")

    def fn(images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        h, w = images.shape[1], images.shape[2]
        theta = _choose(angles, tf.shape(images)[0], seed) * (math.pi / 180.0)
        cos, sin = tf.cos(theta), tf.sin(theta)
        cy, cx = (h - 1) / 2, (w - 1) / 2
        zeros = tf.zeros_like(cos)
        # Output pixel p = (x, y) reads input pixel c + R(θ)ᵀ (p − c); rows point down, so
        # positive angles turn the picture counter-clockwise as shown, as np.rot90 does.
        rows = [
            cos,
            -sin,
            cx - cos * cx + sin * cy,
            sin,
            cos,
            cy - sin * cx - cos * cy,
            zeros,
            zeros,
        ]
        return _affine(images, tf.stack(rows, axis=1))

    return fn


def standard_transforms(size: int) -> list[Transform]:
    """Lucid's robustness stack, scaled to the image size: pad, jitter, zoom ±10 %, rotate ±10°.

    Lucid uses pad 12 / jitter 8 at 224 px; here the pad is size / 16 and the jitter crops it
    back, so the model sees an image of the original size, shifted by up to ± pad pixels.
    """
    p = max(1, round(size / 16))
    return [
        pad(p),
        jitter(2 * p),
        random_scale([1 + (i - 5) / 50 for i in range(11)]),
        random_rotate(list(range(-10, 11))),
    ]
