"""Objectives: what is optimised, one value per image, composable (lucent's `objectives`).

`channel(layer, filters) - 0.05 * total_variation()` is an objective whose layers are the union
of its parts'. `channel` is a filter's mean activation (seed 003's loss), `neuron` its centre
unit, `class_logit` a class's pre-softmax score; `total_variation` and `l2_penalty` are the
regularisers of Yosinski et al. (2015), subtracted to smooth the picture or pull it to grey.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from cnnviz.featureviz.errors import FeatureVizError

__all__ = [
    "Context",
    "Objective",
    "channel",
    "neuron",
    "class_logit",
    "total_variation",
    "l2_penalty",
    "LOGITS",
    "PRE",
]

#: Key of the model's pre-softmax scores in an objective's context.
LOGITS = "__logits__"
#: Suffix of a layer's key for its value before its own activation ("conv3#pre").
PRE = "#pre"


@dataclass(frozen=True)
class Context:
    """What an objective sees: layer outputs by path (and `LOGITS`), and the image in [0, 1]."""

    activations: dict
    image: tf.Tensor


class Objective:
    """A function of the context giving one value per image, (n,), to be maximised.

    Objectives compose: `channel("conv3", f) - 0.1 * total_variation()` is an objective whose
    layers are the union of its parts'.
    """

    def __init__(
        self,
        fn: Callable[[Context], tf.Tensor],
        *,
        name: str,
        layers: frozenset[str] = frozenset(),
        needs_logits: bool = False,
    ) -> None:
        self.fn = fn
        self.name = name
        self.layers = frozenset(layers)
        self.needs_logits = needs_logits

    def __call__(self, ctx: Context) -> tf.Tensor:
        return self.fn(ctx)

    def __repr__(self) -> str:
        return f"Objective({self.name})"

    @staticmethod
    def _lift(other: Objective | float) -> Objective:
        if isinstance(other, Objective):
            return other
        if isinstance(other, int | float) and not isinstance(other, bool):
            value = float(other)
            return Objective(lambda ctx: tf.fill([tf.shape(ctx.image)[0]], value), name=str(value))
        raise FeatureVizError(
            f"Expected an Objective or a number to combine with. Received {type(other).__name__}."
        )

    def _combine(self, other: Objective, fn, symbol: str) -> Objective:
        return Objective(
            lambda ctx: fn(self(ctx), other(ctx)),
            name=f"({self.name} {symbol} {other.name})",
            layers=self.layers | other.layers,
            needs_logits=self.needs_logits or other.needs_logits,
        )

    def __add__(self, other: Objective | float) -> Objective:
        return self._combine(self._lift(other), tf.add, "+")

    def __radd__(self, other: float) -> Objective:
        return self._lift(other)._combine(self, tf.add, "+")

    def __sub__(self, other: Objective | float) -> Objective:
        return self._combine(self._lift(other), tf.subtract, "-")

    def __rsub__(self, other: float) -> Objective:
        return self._lift(other)._combine(self, tf.subtract, "-")

    def __neg__(self) -> Objective:
        return -1.0 * self

    def __mul__(self, factor: float) -> Objective:
        if not isinstance(factor, int | float) or isinstance(factor, bool):
            raise FeatureVizError(
                f"Expected a number to scale an objective by. Received {type(factor).__name__}."
            )
        f = float(factor)
        return Objective(
            lambda ctx: f * self(ctx),
            name=f"{f:g}·{self.name}",
            layers=self.layers,
            needs_logits=self.needs_logits,
        )

    __rmul__ = __mul__


def _indices(filters: int | Sequence[int], name: str) -> np.ndarray:
    """One index, or one per image, as an int32 array (0-d or 1-d)."""
    arr = np.asarray(filters)
    if arr.ndim > 1 or arr.size == 0 or not np.issubdtype(arr.dtype, np.integer):
        raise FeatureVizError(
            f"Expected {name} to be an integer or a non-empty list of integers. Received {filters!r}."
        )
    return arr.astype(np.int32)


def _pick(values: tf.Tensor, idx: np.ndarray) -> tf.Tensor:
    """values (n, C); idx one index for all images or one per image -> (n,)."""
    if idx.ndim == 0:
        return values[:, int(idx)]
    return tf.gather(values, tf.constant(idx), axis=1, batch_dims=1)


def _keys(layer: str, pre_activation: bool, revive: bool) -> frozenset[str]:
    if revive:
        return frozenset([layer, layer + PRE])
    return frozenset([layer + PRE if pre_activation else layer])


def _value(
    ctx: Context,
    layer: str,
    pre_activation: bool,
    revive: bool,
    reduce: Callable[[tf.Tensor], tf.Tensor],
    wake: Callable[[tf.Tensor], tf.Tensor],
) -> tf.Tensor:
    """reduce(activations) for the right tensor; with `revive`, wake(pre-activation) while silent."""
    if not revive:
        return reduce(ctx.activations[layer + PRE if pre_activation else layer])
    post = reduce(ctx.activations[layer])
    pre = wake(ctx.activations[layer + PRE])
    # Where the filter is silent after its ReLU it has no gradient: ascend the value before
    # the ReLU until it wakes up, then the value after it (a simple "redirected ReLU").
    return tf.where(post > 0, post, pre)


def channel(
    layer: str,
    filters: int | Sequence[int],
    *,
    pre_activation: bool = False,
    revive: bool = False,
) -> Objective:
    """A filter's mean activation over its whole feature map (seed 003's loss).

    Args:
        layer: layer path ("conv3" or "base/block3_conv1").
        filters: one channel for every image, or one per image (image i maximises filters[i]).
        pre_activation: use the value before the layer's own activation (Conv2D/Dense with
            e.g. activation="relu"), as lucid does with its "pre_relu" tensors.
        revive: use the value after the activation, except for images whose filter is silent
            there (all zero: a ReLU filter that never fires on grey has no gradient); for
            those, use the value before it. Lucid's "redirected ReLU" serves the same purpose.
    """
    idx = _indices(filters, "filters")

    def reduce(act: tf.Tensor) -> tf.Tensor:
        # Average over every position: (n, [h, w,] C) -> (n, C), then take each image's filter.
        return _pick(tf.reduce_mean(act, axis=list(range(1, act.shape.rank - 1))), idx)

    def wake(act: tf.Tensor) -> tf.Tensor:
        # To wake a silent filter one position above zero is enough: raise the largest, and
        # the mean too, whose gradient reaches every position (the largest may have none).
        axes = list(range(1, act.shape.rank - 1))
        return _pick(tf.reduce_max(act, axis=axes) + tf.reduce_mean(act, axis=axes), idx)

    keys = _keys(layer, pre_activation, revive)
    return Objective(
        lambda ctx: _value(ctx, layer, pre_activation, revive, reduce, wake),
        name=f"channel({'|'.join(sorted(keys))}, {filters})",
        layers=keys,
    )


def neuron(
    layer: str,
    filters: int | Sequence[int],
    *,
    x: int | None = None,
    y: int | None = None,
    pre_activation: bool = False,
    revive: bool = False,
) -> Objective:
    """One unit of a filter's map: by default the centre one, which sees the image's centre.

    Args:
        layer: layer path.
        filters: one channel for every image, or one per image.
        x, y: the unit's column and row in the feature map; default the centre.
        pre_activation, revive: as for `channel`.
    """
    idx = _indices(filters, "filters")

    def reduce(act: tf.Tensor) -> tf.Tensor:
        if act.shape.rank == 4:
            # Pick the unit at (y, x) of every map: (n, h, w, C) -> (n, C).
            h, w = act.shape[1], act.shape[2]
            row = h // 2 if y is None else y
            col = w // 2 if x is None else x
            if not (0 <= row < h and 0 <= col < w):
                raise FeatureVizError(
                    f"Expected the neuron inside the {h}×{w} map of {layer!r}. Received x={col}, y={row}."
                )
            act = act[:, row, col, :]
        return _pick(act, idx)

    keys = _keys(layer, pre_activation, revive)
    return Objective(
        lambda ctx: _value(ctx, layer, pre_activation, revive, reduce, reduce),
        name=f"neuron({'|'.join(sorted(keys))}, {filters})",
        layers=keys,
    )


def class_logit(classes: int | Sequence[int]) -> Objective:
    """A class's pre-softmax score ("what does the model think a star looks like?").

    The logit, not the probability: maximising a probability can be done by lowering the other
    classes instead of raising this one. The logit is computed by composing the last Dense
    layer's weights with the layer before it; the model itself is not changed.
    """
    idx = _indices(classes, "classes")

    def fn(ctx: Context) -> tf.Tensor:
        return _pick(ctx.activations[LOGITS], idx)

    return Objective(fn, name=f"class_logit({classes})", needs_logits=True)


def total_variation() -> Objective:
    """Mean absolute difference between neighbouring pixels, per image (subtract it to smooth)."""

    def fn(ctx: Context) -> tf.Tensor:
        img = ctx.image
        dy = tf.reduce_mean(tf.abs(img[:, 1:] - img[:, :-1]), axis=[1, 2, 3])
        dx = tf.reduce_mean(tf.abs(img[:, :, 1:] - img[:, :, :-1]), axis=[1, 2, 3])
        return dx + dy

    return Objective(fn, name="tv")


def l2_penalty() -> Objective:
    """Mean squared distance from mid-grey, per image (subtract it: L2 decay towards grey)."""

    def fn(ctx: Context) -> tf.Tensor:
        return tf.reduce_mean(tf.square(ctx.image - 0.5), axis=[1, 2, 3])

    return Objective(fn, name="l2")
