"""The weights themselves, as pictures: a network's kernels (seed 001's AlexNet 11×11×3 tiles).

Not gradient ascent (see `cnnviz.featureviz` for that): these read a convolution layer's
kernel and lay it out for display.
"""

from __future__ import annotations

import numpy as np

from cnnviz import layers as layer_tools
from cnnviz import models

__all__ = ["WeightsError", "conv_kernels", "first_layer_weights"]


class WeightsError(ValueError):
    """A layer that has no kernels to show; the message says what was expected."""


def conv_kernels(model, layer: str) -> np.ndarray:
    """A convolution layer's kernels, one small 2-D kernel per (filter, input channel).

    Args:
        model: a model name or a keras.Model.
        layer: path of a Conv2D, Conv2DTranspose, DepthwiseConv2D or SeparableConv2D layer
            (for a separable layer, its depthwise part: the only part with a spatial extent).

    Returns:
        (filters, in_channels, kh, kw) float32 raw weights; a depthwise layer has one input
        channel per filter.
    """
    keras_model, _ = models.resolve(model)
    lay = layer_tools.get_layer(keras_model, layer)
    kind = type(lay).__name__
    if kind == "Conv2D":
        k = np.asarray(lay.kernel)  # (kh, kw, in, out)
        return np.transpose(k, (3, 2, 0, 1)).astype(np.float32)
    if kind == "Conv2DTranspose":
        k = np.asarray(lay.kernel)  # (kh, kw, out, in)
        return np.transpose(k, (2, 3, 0, 1)).astype(np.float32)
    if kind in ("DepthwiseConv2D", "SeparableConv2D"):
        k = np.asarray(lay.kernel if kind == "DepthwiseConv2D" else lay.depthwise_kernel)
        kh, kw, cin, mult = k.shape  # output channel i·mult + j reads input channel i
        return np.transpose(k.reshape(kh, kw, cin * mult), (2, 0, 1))[:, None].astype(np.float32)
    raise WeightsError(
        f"Expected a convolution layer (Conv2D, Conv2DTranspose, DepthwiseConv2D, "
        f"SeparableConv2D). Received {kind} ({layer!r})."
    )


def first_layer_weights(model, *, normalize: str = "global") -> tuple[np.ndarray, str]:
    """The first convolution layer's kernels as small pictures (seed 001's AlexNet figure).

    Each kernel (kh, kw, 3) is an RGB tile (or a gray one for a one-channel model); zero maps
    to mid-grey, so a red tile likes red and a cyan tile dislikes it.

    Args:
        model: a model name or a keras.Model.
        normalize: "global" (one scale for all tiles: strong kernels look strong) or "each"
            (one scale per tile: every pattern visible).

    Returns:
        tiles: (filters, kh, kw, C) float32 in [0, 1], C = 3 or 1.
        path: the layer's path.

    Raises:
        WeightsError: no convolution layer, or its input is not 1 or 3 channels.
    """
    keras_model, _ = models.resolve(model)
    paths = layer_tools.conv_layer_paths(keras_model)
    if not paths:
        raise WeightsError(
            f"Expected a model with a convolution layer. Received {keras_model.name!r} without one."
        )
    k = conv_kernels(keras_model, paths[0])  # (out, in, kh, kw)
    if k.shape[1] not in (1, 3) or normalize not in ("global", "each"):
        raise WeightsError(
            f"Expected a first convolution over 1 or 3 channels and normalize 'global' or "
            f"'each'. Received {k.shape[1]} channels, normalize={normalize!r}."
        )
    tiles = np.transpose(k, (0, 2, 3, 1))  # (out, kh, kw, in)
    # Zero is grey; the largest |weight| (of all tiles, or of each) reaches black or white.
    axes = (1, 2, 3) if normalize == "each" else None
    bound = np.abs(tiles).max(axis=axes, keepdims=normalize == "each")
    tiles = 0.5 + 0.5 * tiles / np.maximum(bound, 1e-12)
    return np.clip(tiles, 0.0, 1.0).astype(np.float32), paths[0]
