"""Activation maximisation: the picture a filter, a neuron or a class likes best.

Seed 003 finds what a filter looks for by gradient ascent in input space: start from a grey,
slightly noisy image x and repeat x ← x + η ∂L/∂x, where L is the filter's mean activation
(40 plain steps). The keras.io recipe does the same with normalised gradients, 30 steps, one
filter at a time. Plain ascent finds high-frequency noise that the network likes but a person
cannot read. Lucid (Olah et al., 2017) gets far cleaner pictures by changing three things, and
this module keeps them apart the way lucent's `optvis` does:

- **param**: *how the image is made* from what is optimised. `pixel_image` optimises pixels;
  `fft_image` optimises a Fourier spectrum scaled by 1/frequency (so low frequencies move as
  fast as high ones) and mixes colours through a decorrelated basis. Both return an
  `ImageParam`, which unpacks as lucent's `(params, image_fn)`; `image_fn()` gives
  (n, H, W, C) floats in [0, 1].
- **objectives**: *what is optimised*, composable with + - and scalars:
  `channel(layer, filters) - 0.05 * total_variation()`. `channel` (the default) is a filter's
  mean activation, `neuron` its centre unit, `class_logit` a class's pre-softmax score. A
  ReLU filter that is silent on the starting image has no gradient; `revive=True` ascends its
  value before the ReLU until it fires (the purpose of lucid's "redirected ReLU").
- **transform**: small closures `(images, seed) -> images` applied before every step (`pad`,
  `jitter`, `random_scale`, `random_rotate`), so the picture must work when moved a little.
  Their randomness is stateless and seeded, so a run is repeatable.
- **regularisers** (Yosinski et al., 2015): an L2 pull towards grey and total variation are
  objectives; periodic blur is a step of the loop (`blur_every`).
- `render` is only the loop: one compiled `tf.function` step that optimises every requested
  filter at once, as one batch (image i is optimised for filter i), with a Keras optimiser
  (Adam by default). The last `polish` fraction of the steps skips the transforms, so the
  picture the transforms shaped is finally fitted exactly as it is scored.

`visualize(model, layer, filters)` puts these together with sensible defaults.
`first_layer_weights` and `conv_kernels` show the weights themselves (seed 001's AlexNet
11×11×3 kernels).

Input range: the image is made in [0, 1]. For a model given by name (a built-in or a registry
model), `cnnviz.models.resolve` supplies the preprocessing that data goes through; that
function is per-pixel affine (0..255 for the built-ins, which rescale inside; the ImageNet
families' own channel order, mean and scale), so we measure it once on a few probe pictures
and apply it as a differentiable map. For a bare `keras.Model` the image is fed as it is, in
[0, 1], unless `input_range=(lo, hi)` says otherwise. The shared model is never changed:
activations and logits come from new functional models over its layers.

References:
    Olah, Mordvintsev, Schubert, "Feature Visualization", Distill 2017.
    Mordvintsev, Pezzotti, Schubert, Olah, "Differentiable Image Parameterizations", Distill
    2018 (FFT parameterisation, decorrelated colour).
    Yosinski, Clune, Nguyen, Fuchs, Lipson, "Understanding Neural Networks Through Deep
    Visualization", ICML Deep Learning Workshop 2015 (L2 decay, periodic blur).
    Chollet, "Visualizing what convnets learn", keras.io (the plain recipe).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from cnnviz import layers as layer_tools

__all__ = [
    "FeatureVizError",
    "MAX_STEPS_ENV",
    "ImageParam",
    "pixel_image",
    "fft_image",
    "Objective",
    "channel",
    "neuron",
    "class_logit",
    "total_variation",
    "l2_penalty",
    "pad",
    "jitter",
    "random_scale",
    "random_rotate",
    "standard_transforms",
    "capped_steps",
    "render",
    "visualize",
    "plain_gradient_ascent",
    "PLAIN_OPTIONS",
    "suggested_input_range",
    "first_layer_weights",
    "conv_kernels",
]

#: Environment variable that caps every optimisation loop (tests set it to keep runs short).
MAX_STEPS_ENV = "CNNVIZ_MAX_STEPS"

# Lucid's square root of ImageNet's colour covariance (columns: a decorrelated basis). Mixing
# the three optimised channels through it makes colour changes as easy as brightness changes.
_COLOR_SQRT = np.array(
    [[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], dtype=np.float32
)
_COLOR_SQRT /= np.max(np.linalg.norm(_COLOR_SQRT, axis=0))

# Key of the model's pre-softmax scores in an objective's context.
_LOGITS = "__logits__"


class FeatureVizError(ValueError):
    """Invalid arguments, an unsupported model, or an optimisation that diverged."""


def capped_steps(steps: int) -> int:
    """`steps`, lowered to $CNNVIZ_MAX_STEPS when that variable is set (tests keep runs short)."""
    cap = os.environ.get(MAX_STEPS_ENV, "").strip()
    if cap:
        try:
            return max(1, min(int(steps), int(cap)))
        except ValueError as err:
            raise FeatureVizError(
                f"Expected ${MAX_STEPS_ENV} to be an integer. Received {cap!r}."
            ) from err
    return int(steps)


# --------------------------------------------------------------------------------------------
# Parameterisation: what is optimised, and how it becomes an image
# --------------------------------------------------------------------------------------------


class ImageParam:
    """The variables being optimised and the function that turns them into images.

    Unpacks like lucent's parameterisations: `params, image_fn = fft_image(...)`.

    Attributes:
        params: list of `keras.Variable`, each with the batch on axis 0.
        image_fn: () -> (n, H, W, C) float32 tensor in [0, 1].
        shape: (n, H, W, C) of the images.
        blur: (sigma) -> None, blurs the current image in place (periodic blur); acts on the
            values before the squashing sigmoid.
        project: () -> None, pulls the variables back into the valid set after a step (used by
            plain pixels, which are clipped to [0, 1]); a no-op for the other kinds.
    """

    def __init__(
        self,
        params: list,
        image_fn: Callable[[], tf.Tensor],
        shape: tuple[int, int, int, int],
        blur: Callable[[float], None],
        project: Callable[[], None] | None = None,
    ) -> None:
        self.params = params
        self.image_fn = image_fn
        self.shape = shape
        self.blur = blur
        self.project = project or (lambda: None)

    def __iter__(self):
        return iter((self.params, self.image_fn))


def _noise(seed, n: int, draw: Callable[[np.random.Generator], np.ndarray]) -> np.ndarray:
    """n draws stacked: from one generator for an int seed, from seed[i] for a list of n seeds.

    Per-image seeds make an image independent of which other images share its batch.
    """
    if isinstance(seed, list | tuple) and len(seed) == n:
        return np.stack([draw(np.random.default_rng(s)) for s in seed])
    rng = np.random.default_rng(seed)
    return np.stack([draw(rng) for _ in range(n)])


def _check_shape(n: int, h: int, w: int, c: int) -> None:
    if min(n, h, w, c) < 1 or h < 4 or w < 4:
        raise FeatureVizError(
            f"Expected at least one image of at least 4×4 pixels with at least one channel. "
            f"Received n={n}, size {h}×{w}, channels={c}."
        )


def _to_valid(t: tf.Tensor, decorrelate: bool) -> tf.Tensor:
    """Unbounded values (n, H, W, C) -> an image in [0, 1] (lucid's `to_valid_rgb`)."""
    if decorrelate:
        # Mix the channels through the decorrelated colour basis.
        t = tf.einsum("nhwc,kc->nhwk", t, tf.constant(_COLOR_SQRT))
    return tf.sigmoid(t)


def _gaussian_1d(sigma: float) -> np.ndarray:
    radius = max(1, math.ceil(3 * sigma))
    x = np.arange(-radius, radius + 1, dtype=np.float32)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def _blur_spatial(x: tf.Tensor, sigma: float) -> tf.Tensor:
    """Separable Gaussian blur of (n, H, W, C) with mirrored borders."""
    k = _gaussian_1d(sigma)
    r = k.size // 2
    c = x.shape[-1]
    x = tf.pad(x, [[0, 0], [r, r], [r, r], [0, 0]], mode="REFLECT")
    ky = tf.constant(np.tile(k[:, None, None, None], (1, 1, c, 1)))
    kx = tf.constant(np.tile(k[None, :, None, None], (1, 1, c, 1)))
    x = tf.nn.depthwise_conv2d(x, ky, strides=[1, 1, 1, 1], padding="VALID")
    return tf.nn.depthwise_conv2d(x, kx, strides=[1, 1, 1, 1], padding="VALID")


def pixel_image(
    n: int,
    h: int,
    w: int,
    c: int = 3,
    *,
    sd: float = 0.01,
    seed: int | Sequence = 0,
    sigmoid: bool = True,
    decorrelate: bool = False,
) -> ImageParam:
    """Optimise the pixels directly.

    With `sigmoid=True` (lucid's "naive" parameterisation) the variables are unbounded and
    pass through a sigmoid, so every value is a valid image. With `sigmoid=False` the
    variables *are* the image: it starts as seed 003's grey with a little noise and is
    clipped to [0, 1] after every step (plain, projected gradient ascent).

    Args:
        n, h, w, c: number of images, their height, width and channels.
        sd: standard deviation of the initial noise (sigmoid case).
        seed: seeds the initial noise; a list of n seeds gives each image its own.
        sigmoid: squash unbounded variables (True) or clip the image itself (False).
        decorrelate: mix 3 channels through the decorrelated colour basis.

    Returns:
        An `ImageParam` with one variable of shape (n, h, w, c).
    """
    _check_shape(n, h, w, c)
    decorrelate = decorrelate and c == 3
    if sigmoid:
        init = _noise(seed, n, lambda rng: rng.normal(0.0, sd, (h, w, c)))
    else:
        # Seed 003 starts at 128 + 20·U(0, 1) on a 0..255 scale: grey with faint noise.
        init = 0.5 + (_noise(seed, n, lambda rng: rng.random((h, w, c))) - 0.5) * (20 / 255)
    var = keras.Variable(init.astype(np.float32), name="pixels")

    def image_fn() -> tf.Tensor:
        v = tf.convert_to_tensor(var)
        return _to_valid(v, decorrelate) if sigmoid else v

    def blur(sigma: float) -> None:
        var.assign(_blur_spatial(tf.convert_to_tensor(var), sigma))

    def project() -> None:
        var.assign(tf.clip_by_value(var, 0.0, 1.0))

    return ImageParam([var], image_fn, (n, h, w, c), blur, None if sigmoid else project)


def _rfft2d_freqs(h: int, w: int) -> np.ndarray:
    """|f| in cycles per pixel of every coefficient of a real 2-D FFT: (h, w // 2 + 1)."""
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    return np.sqrt(fx * fx + fy * fy)


def fft_image(
    n: int,
    h: int,
    w: int,
    c: int = 3,
    *,
    sd: float = 0.01,
    decay_power: float = 1.0,
    seed: int | Sequence = 0,
    decorrelate: bool = True,
) -> ImageParam:
    """Optimise a Fourier spectrum whose coefficients are scaled by 1 / |f|^decay_power.

    A pixel gradient is mostly high frequency; scaling the spectrum whitens the gradient so
    broad structure forms as fast as detail (Mordvintsev et al., 2018, "Differentiable image
    parameterizations", section 2). The image is the inverse real FFT, mixed through the
    decorrelated colour basis (3 channels) and squashed by a sigmoid into [0, 1].

    Args:
        n, h, w, c: number of images, their height, width and channels.
        sd: standard deviation of the initial spectrum.
        decay_power: 1 gives lucid's default 1/f scaling; 0 is plain pixels in a Fourier basis.
        seed: seeds the initial spectrum; a list of n seeds gives each image its own.
        decorrelate: mix 3 channels through the decorrelated colour basis.

    Returns:
        An `ImageParam` with one variable of shape (n, c, h, w // 2 + 1, 2) (real, imaginary).
    """
    _check_shape(n, h, w, c)
    freqs = _rfft2d_freqs(h, w)
    # Lucid: 1/f with the DC term treated like the lowest non-zero frequency; √(hw) undoes
    # irfft2d's 1/(hw) so the pixel scale does not depend on the size.
    scale = 1.0 / np.maximum(freqs, 1.0 / max(h, w)) ** decay_power * np.sqrt(h * w)
    scale_t = tf.constant(scale.astype(np.float32))
    init = _noise(seed, n, lambda rng: rng.normal(0.0, sd, (c, *freqs.shape, 2)))
    var = keras.Variable(init.astype(np.float32), name="spectrum")
    decorrelate = decorrelate and c == 3

    def image_fn() -> tf.Tensor:
        v = tf.convert_to_tensor(var)
        # Scale each coefficient, then back to pixels: (n, c, h, w) -> (n, h, w, c).
        spectrum = tf.complex(v[..., 0] * scale_t, v[..., 1] * scale_t)
        img = tf.signal.irfft2d(spectrum, fft_length=[h, w])
        img = tf.transpose(img, [0, 2, 3, 1]) / 4.0  # lucid's "magic" 4: a sigmoid-friendly range
        return _to_valid(img, decorrelate)

    # A Gaussian blur of σ pixels multiplies frequency f by exp(−2π²σ²f²): blur in place, exactly
    # (and periodically, as the FFT image itself is periodic).
    def blur(sigma: float) -> None:
        gain = np.exp(-2.0 * math.pi**2 * sigma**2 * freqs**2).astype(np.float32)
        var.assign(tf.convert_to_tensor(var) * tf.constant(gain[..., None]))

    return ImageParam([var], image_fn, (n, h, w, c), blur)


# --------------------------------------------------------------------------------------------
# Objectives: what is optimised, per image
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Context:
    """What an objective sees: layer outputs by path (and `_LOGITS`), and the image in [0, 1]."""

    activations: dict
    image: tf.Tensor


class Objective:
    """A function of the context giving one value per image, (n,), to be maximised.

    Objectives compose: `channel("conv3", f) - 0.1 * total_variation()` is an objective whose
    layers are the union of its parts'.
    """

    def __init__(
        self,
        fn: Callable[[_Context], tf.Tensor],
        *,
        name: str,
        layers: frozenset[str] = frozenset(),
        needs_logits: bool = False,
    ) -> None:
        self.fn = fn
        self.name = name
        self.layers = frozenset(layers)
        self.needs_logits = needs_logits

    def __call__(self, ctx: _Context) -> tf.Tensor:
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
        return frozenset([layer, layer + _PRE])
    return frozenset([layer + _PRE if pre_activation else layer])


def _value(
    ctx: _Context,
    layer: str,
    pre_activation: bool,
    revive: bool,
    reduce: Callable[[tf.Tensor], tf.Tensor],
    wake: Callable[[tf.Tensor], tf.Tensor],
) -> tf.Tensor:
    """reduce(activations) for the right tensor; with `revive`, wake(pre-activation) while silent."""
    if not revive:
        return reduce(ctx.activations[layer + _PRE if pre_activation else layer])
    post = reduce(ctx.activations[layer])
    pre = wake(ctx.activations[layer + _PRE])
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

    def fn(ctx: _Context) -> tf.Tensor:
        return _pick(ctx.activations[_LOGITS], idx)

    return Objective(fn, name=f"class_logit({classes})", needs_logits=True)


def total_variation() -> Objective:
    """Mean absolute difference between neighbouring pixels, per image (subtract it to smooth)."""

    def fn(ctx: _Context) -> tf.Tensor:
        img = ctx.image
        dy = tf.reduce_mean(tf.abs(img[:, 1:] - img[:, :-1]), axis=[1, 2, 3])
        dx = tf.reduce_mean(tf.abs(img[:, :, 1:] - img[:, :, :-1]), axis=[1, 2, 3])
        return dx + dy

    return Objective(fn, name="tv")


def l2_penalty() -> Objective:
    """Mean squared distance from mid-grey, per image (subtract it: L2 decay towards grey)."""

    def fn(ctx: _Context) -> tf.Tensor:
        return tf.reduce_mean(tf.square(ctx.image - 0.5), axis=[1, 2, 3])

    return Objective(fn, name="l2")


# --------------------------------------------------------------------------------------------
# Transforms: (images, seed) -> images, with seeded stateless randomness
# --------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------
# The model side: from an image in [0, 1] to activations and logits
# --------------------------------------------------------------------------------------------


def _resolve(model) -> tuple[keras.Model, Callable | None]:
    """keras.Model and, for a model given by name, the zoo's preprocessing function."""
    if isinstance(model, keras.Model):
        return model, None
    if isinstance(model, str):
        from cnnviz import models  # only names need the zoo

        return models.resolve(model, pictures=False)  # it optimises inputs, not pictures
    raise FeatureVizError(
        f"Expected a model name or a keras.Model. Received {type(model).__name__}."
    )


def _input_shape(model: keras.Model) -> tuple[int | None, int | None, int]:
    shape = model.input_shape
    if isinstance(shape, list):
        shape = shape[0]
    if len(shape) != 4:
        raise FeatureVizError(
            f"Expected a model that takes images (batch, height, width, channels). "
            f"Received input shape {shape}."
        )
    return shape[1], shape[2], int(shape[3])


def suggested_input_range(model) -> tuple[float, float] | None:
    """(0, 255) for a keras.Model whose first layer is Rescaling(1/255), else None.

    The project's own models (built-in and trained on the Train page) rescale inside, so they
    expect 0..255; a page can pass this as `input_range` for a session-trained model.
    """
    if not isinstance(model, keras.Model):
        return None
    first = next((lay for _, lay, _ in layer_tools.iter_layers(model)), None)
    if type(first).__name__ == "Rescaling":
        scale, offset = np.asarray(first.scale, float), np.asarray(first.offset, float)
        if np.allclose(scale, 1 / 255) and np.allclose(offset, 0):
            return (0.0, 255.0)
    return None


def _probe_affine(prep: Callable, h: int, w: int, c_img: int) -> tuple[np.ndarray, np.ndarray]:
    """Measure a per-pixel affine preprocessing y = x·A + b for x in [0, 1] ((c_img, c), (c,)).

    Probes: black, and black with a large centred square of 255 in one channel (all three for
    a gray model: a light blob on dark, which no digit-inversion rule touches). The corner
    of every probe must come out as black does, or the preprocessing is not per-pixel affine.
    """
    probes = [np.zeros((h, w, 3), np.uint8)]
    for k in range(c_img):
        img = np.zeros((h, w, 3), np.uint8)
        sl = (slice(h // 4, h - h // 4), slice(w // 4, w - w // 4))
        if c_img == 3:
            img[sl + (k,)] = 255
        else:
            img[sl] = 255
        probes.append(img)
    out = np.asarray(prep(np.stack(probes)), np.float64)
    if out.ndim != 4:
        raise FeatureVizError(
            f"Expected the model's preprocessing to return (n, h, w, c). Received shape {out.shape}."
        )
    b = out[0, 0, 0]
    a = np.stack([out[k + 1, out.shape[1] // 2, out.shape[2] // 2] - b for k in range(c_img)])
    corners_ok = np.allclose(out[1:, 0, 0], b, atol=1e-3 * (1 + np.abs(b).max()))
    if not corners_ok or np.abs(a).max() < 1e-6:
        raise FeatureVizError(
            "Expected the model's preprocessing to be a per-pixel affine map (scale, shift, "
            "channel order). Received one that depends on the image; pass input_range=(lo, hi)."
        )
    return a.astype(np.float32), b.astype(np.float32)


def _source_path(model: keras.Model, path: str) -> str | None:
    """Path of the layer whose output feeds the layer at `path`; None for the model's input."""
    parts = path.split("/")
    lay = layer_tools.get_layer(model, path)
    try:
        source = lay.input._keras_history.operation  # noqa: SLF001 - Keras' graph link
    except (AttributeError, ValueError) as err:
        raise FeatureVizError(
            f"Expected layer {path!r} to have one input. Received a layer with several."
        ) from err
    if not isinstance(source, keras.layers.InputLayer):
        return "/".join([*parts[:-1], source.name])
    # The input of a nested model is whatever feeds that nested model.
    return None if len(parts) == 1 else _source_path(model, "/".join(parts[:-1]))


def _pre_activation(lay: keras.layers.Layer) -> Callable[[tf.Tensor], tf.Tensor] | None:
    """For a Conv2D or Dense layer with a built-in non-linearity: input -> pre-activation."""
    name = getattr(getattr(lay, "activation", None), "__name__", "linear")
    kind = type(lay).__name__
    if name == "linear" or kind not in ("Conv2D", "Dense"):
        return None
    if getattr(lay, "data_format", "channels_last") != "channels_last":
        return None

    # The layer's own weights, composed without its activation: the shared layer is untouched.
    def fn(x: tf.Tensor) -> tf.Tensor:
        z = lay.convolution_op(x, lay.kernel) if kind == "Conv2D" else tf.matmul(x, lay.kernel)
        return z + lay.bias if lay.use_bias else z

    return fn


def _logits_source(model: keras.Model) -> tuple[str | None, Callable[[tf.Tensor], tf.Tensor]]:
    """(path of what feeds the class scores, fn: its output -> pre-softmax scores)."""
    last = model.layers[-1]
    kind = type(last).__name__
    if kind == "Dense":
        fn = _pre_activation(last)
        path = _source_path(model, last.name) if fn is not None else last.name
        return path, fn or _identity
    if kind == "Softmax" or (kind == "Activation" and last.activation.__name__ == "softmax"):
        return _source_path(model, last.name), _identity
    raise FeatureVizError(
        f"Expected the model to end in a Dense layer or a softmax layer to read class scores "
        f"from. Received {kind} ({last.name!r})."
    )


_PRE = "#pre"


def _identity(t: tf.Tensor) -> tf.Tensor:
    return t


@dataclass
class _Feed:
    """Image in [0, 1] -> model input -> the tensors objectives ask for, by key."""

    extractor: keras.Model | None
    targets: tuple[str, ...]  # layer paths the extractor returns, in order
    derived: dict  # key -> (source: layer path, derived key or None (model input), fn)
    size: tuple[int, int] | None  # fixed input size of the model, or None
    colour: np.ndarray  # (c_img, c_model)
    offset: np.ndarray  # (c_model,)

    def __call__(self, x: tf.Tensor, image: tf.Tensor | None = None) -> _Context:
        """Context for images `x` (n, H, W, C) in [0, 1]; `image` is what regularisers see."""
        image = x if image is None else image
        # Resize to the model's input size when it has one and the image differs.
        if self.size is not None and tuple(x.shape[1:3]) != self.size:
            x = tf.image.resize(x, self.size, method="bilinear")
        # Map [0, 1] through the model's own preprocessing (a per-pixel affine map).
        x = tf.einsum("nhwc,ck->nhwk", x, tf.constant(self.colour)) + tf.constant(self.offset)
        # One forward pass to every layer we need, then pre-activations and logits from those.
        captured: dict = {None: x}
        if self.extractor is not None:
            outs = self.extractor(x, training=False)
            outs = outs if isinstance(outs, list | tuple) else [outs]
            captured.update(zip(self.targets, outs, strict=True))
        values = dict(captured)

        def value(key):
            # Each derived tensor once, after its source (a pre-activation before its output).
            if key not in values:
                src, fn = self.derived[key]
                values[key] = fn(value(src))
            return values[key]

        return _Context({k: value(k) for k in self.derived}, image)


def _build_feed(
    model, objectives: Sequence[Objective], input_range: tuple[float, float] | None, c_img: int
) -> _Feed:
    keras_model, prep = _resolve(model)
    h, w, c_model = _input_shape(keras_model)
    keys = sorted(set().union(*(o.layers for o in objectives)))
    if any(o.needs_logits for o in objectives):
        keys.append(_LOGITS)
    # Each key is fn(output of a source layer); None as the source is the model's input.
    derived: dict = {}
    for key in keys:
        if key == _LOGITS:
            derived[key] = _logits_source(keras_model)
            continue
        path = key.removesuffix(_PRE)
        lay = layer_tools.get_layer(keras_model, path)
        pre = _pre_activation(lay)
        if pre is None:
            # A layer without a built-in activation: its output is its pre-activation.
            derived[key] = (path, _identity)
            continue
        # The pre-activation from the layer's input, once; the output as activation(pre).
        derived[path + _PRE] = (_source_path(keras_model, path), pre)
        if key == path:
            derived[key] = (path + _PRE, lay.activation)
    # Layer outputs the extractor must return: every source not computed here.
    targets = list(
        dict.fromkeys(
            src for src, _ in derived.values() if src is not None and not src.endswith(_PRE)
        )
    )
    extractor = (
        layer_tools.feature_model(keras_model, targets, include_output=False) if targets else None
    )
    if input_range is not None:
        lo, hi = (float(v) for v in input_range)
        if not hi > lo:
            raise FeatureVizError(
                f"Expected input_range=(lo, hi) with hi > lo. Received {input_range!r}."
            )
        colour = np.eye(c_img, c_model, dtype=np.float32) * (hi - lo)
        offset = np.full(c_model, lo, np.float32)
    elif prep is not None:
        colour, offset = _probe_affine(prep, h or 64, w or 64, c_img)
    else:
        colour, offset = np.eye(c_img, c_model, dtype=np.float32), np.zeros(c_model, np.float32)
    size = (h, w) if h is not None and w is not None else None
    return _Feed(extractor, tuple(targets), derived, size, colour, offset)


# --------------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------------


def _normalise_per_image(g: tf.Tensor) -> tf.Tensor:
    # keras.io's recipe: a unit-RMS gradient, here for each image of the batch separately.
    rms = tf.sqrt(tf.reduce_mean(tf.square(g), axis=list(range(1, g.shape.rank)), keepdims=True))
    return g / (rms + 1e-8)


def render(
    model,
    objective: Objective,
    param: ImageParam,
    *,
    transforms: Sequence[Transform] = (),
    optimizer: str | keras.optimizers.Optimizer = "adam",
    learning_rate: float = 0.2,
    steps: int = 128,
    blur_every: int = 0,
    blur_sigma: float = 0.5,
    polish: float = 0.0,
    normalize_gradients: bool = False,
    input_range: tuple[float, float] | None = None,
    score: Objective | None = None,
    seed: int = 0,
    progress: Callable[[int, int, np.ndarray], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Maximise `objective` over `param`'s images: the optimisation loop and nothing else.

    Every step is one compiled call: make the images, transform them, run the model, and take
    one optimiser step on the negated sum of the per-image objectives (images do not interact,
    so this is n independent ascents).

    Args:
        model: a model name (`cnnviz.models`) or a keras.Model.
        objective: what to maximise, one value per image.
        param: the parameterisation (`pixel_image`, `fft_image`).
        transforms: applied in order before every step; their randomness is seeded by `seed`
            and the step number.
        optimizer: a Keras optimiser or its name ("adam", "sgd", "rmsprop", ...).
        learning_rate: used when `optimizer` is a name.
        steps: number of steps (capped by $CNNVIZ_MAX_STEPS when set).
        blur_every: blur the image every this many steps (0: never).
        blur_sigma: the blur's standard deviation in pixels.
        polish: fraction of the steps, at the end, taken without the transforms: the image
            keeps the structure the transforms gave it and is then fitted to the objective
            exactly as it is scored.
        normalize_gradients: scale each image's gradient to unit RMS before the step.
        input_range: map [0, 1] linearly to (lo, hi) before the model; default: the zoo's
            preprocessing for a name, [0, 1] unchanged for a keras.Model.
        score: objective evaluated on the final images, untransformed (default: `objective`).
        seed: seeds the transforms.
        progress: called as progress(step, total, preview) after every step, preview being
            the images (n, H, W, C) in [0, 1] before that step's update.

    Returns:
        images: (n, H, W, C) float32 in [0, 1].
        scores: (n,) float32, `score` on the final images.

    Raises:
        FeatureVizError: the objective or the image became NaN or infinite.
    """
    n, h, w, c = param.shape
    steps = capped_steps(steps)
    if not 0.0 <= polish <= 1.0:
        raise FeatureVizError(f"Expected polish between 0 and 1. Received polish={polish!r}.")
    score = score or objective
    feed = _build_feed(model, [objective, score], input_range, c)
    params, image_fn = param
    if isinstance(optimizer, str):
        try:
            # A fresh optimiser of the named kind: its state belongs to this run only.
            opt = type(keras.optimizers.get(optimizer))(learning_rate=learning_rate)
        except ValueError as err:
            raise FeatureVizError(
                f"Expected an optimiser name such as 'adam' or 'sgd'. Received {optimizer!r}."
            ) from err
    else:
        opt = optimizer
    opt.build(params)
    seed_t = tf.constant(int(seed) % (2**31 - 1), tf.int32)

    transformed_steps = steps - round(polish * steps) if transforms else 0

    def transformed(img: tf.Tensor, step: tf.Tensor) -> tf.Tensor:
        x = img
        for k, transform in enumerate(transforms):
            x = transform(x, tf.stack([seed_t, step * 16 + k]))
        # Back to the image's size, so every step feeds the model the same shape.
        return x if tuple(x.shape[1:3]) == (h, w) else tf.image.resize(x, (h, w))

    # autograph=False: the bodies branch on Python values only (tf.cond where a tensor decides),
    # and autograph would re-read this file's source at trace time.
    @tf.function(autograph=False, reduce_retracing=True)
    def step_fn(step: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        with tf.GradientTape() as tape:
            # Make the images from the parameters.
            img = image_fn()
            # Move them a little, with randomness fixed by (seed, step, transform); the last
            # `polish` part of the run optimises the image exactly as it will be scored.
            x = img
            if transforms:
                x = tf.cond(step < transformed_steps, lambda: transformed(img, step), lambda: img)
            # Ask the model how much each image excites its filter; ascend on the sum.
            values = objective(feed(x, image=img))
            loss = -tf.reduce_sum(values)
        grads = tape.gradient(loss, params)
        if normalize_gradients:
            grads = [_normalise_per_image(g) for g in grads]
        opt.apply_gradients(zip(grads, params, strict=True))
        param.project()
        return values, img

    blur = tf.function(lambda: param.blur(blur_sigma), autograph=False) if blur_every else None
    for i in range(steps):
        values, preview = step_fn(tf.constant(i, tf.int32))
        values = values.numpy()
        if not np.all(np.isfinite(values)):
            raise FeatureVizError(
                f"The objective became NaN or infinite at step {i + 1} of {steps}. Expected "
                f"finite activations; try a smaller learning rate (now {learning_rate:g})."
            )
        if blur is not None and (i + 1) % blur_every == 0:
            blur()
        if progress is not None:
            progress(i + 1, steps, preview.numpy())
    # Score the final images as they are (one eager forward pass: no second trace to pay).
    final = image_fn()
    images, scores = final.numpy(), score(feed(final)).numpy()
    if not (np.all(np.isfinite(images)) and np.all(np.isfinite(scores))):
        raise FeatureVizError(
            "The image or its score became NaN or infinite. Expected finite values; try a "
            f"smaller learning rate (now {learning_rate:g})."
        )
    return images.astype(np.float32), scores.astype(np.float32)


# --------------------------------------------------------------------------------------------
# visualize: the defaults put together
# --------------------------------------------------------------------------------------------

#: Seed 003's method as `visualize` options (Chollet, Deep Learning with Python, 5.4.2, which
#: the seed's code follows): the image itself is optimised from grey with faint noise, with
#: gradient steps of unit RMS and size 1 on the 0..255 scale (1/255 here, where the image is
#: in [0, 1]), on the layer's own output after its ReLU; no transforms, no regularisers. We
#: clip to [0, 1] after each step so that the image stays a valid picture.
PLAIN_OPTIONS: dict = {
    "param": "clipped",
    "decorrelate": False,
    "transforms": "none",
    "tv": 0.0,
    "l2": 0.0,
    "blur_every": 0,
    "optimizer": "sgd",
    "learning_rate": 1 / 255,
    "normalize_gradients": True,
    "revive": False,
}

_PARAMS = ("fft", "pixel", "clipped")
_OBJECTIVES = ("channel", "neuron", "class")


def _size_pair(size: int | tuple[int, int] | None, keras_model: keras.Model) -> tuple[int, int]:
    h, w, _ = _input_shape(keras_model)
    if size is None:
        # The model's own input size; 128 for models that take any size (cheap on a CPU).
        return (h or 128, w or 128)
    pair = (size, size) if isinstance(size, int | np.integer) else tuple(size)
    if len(pair) != 2 or not all(isinstance(v, int | np.integer) and 8 <= v <= 1024 for v in pair):
        raise FeatureVizError(
            f"Expected size to be an integer or (height, width) between 8 and 1024. Received {size!r}."
        )
    return int(pair[0]), int(pair[1])


def _channels_of(keras_model: keras.Model, layer: str | None, objective: str) -> int:
    if objective == "class":
        return int(keras_model.output_shape[-1])
    out = layer_tools.get_layer(keras_model, layer).output
    return int(out.shape[-1])


def _filter_list(filters: int | Sequence[int] | range, count: int, what: str) -> list[int]:
    arr = np.atleast_1d(np.asarray(list(filters) if isinstance(filters, range) else filters))
    if arr.ndim != 1 or arr.size == 0 or not np.issubdtype(arr.dtype, np.integer):
        raise FeatureVizError(
            f"Expected {what} as an integer, a range or a list of integers. Received {filters!r}."
        )
    bad = [int(f) for f in arr if not 0 <= f < count]
    if bad:
        raise FeatureVizError(
            f"Expected {what} between 0 and {count - 1}. Received {bad[:5]}{' …' if len(bad) > 5 else ''}."
        )
    return [int(f) for f in arr]


def visualize(
    model,
    layer: str | None,
    filters: int | Sequence[int] | range,
    *,
    steps: int = 128,
    size: int | tuple[int, int] | None = None,
    seed: int = 0,
    progress: Callable[[int, int, np.ndarray], None] | None = None,
    objective: str = "channel",
    param: str = "fft",
    decorrelate: bool = True,
    transforms: str | Sequence[Transform] = "standard",
    tv: float = 0.0,
    l2: float = 0.0,
    blur_every: int = 0,
    blur_sigma: float = 0.5,
    polish: float = 0.3,
    optimizer: str = "adam",
    learning_rate: float = 0.2,
    normalize_gradients: bool = False,
    input_range: tuple[float, float] | None = None,
    revive: bool = True,
    batch_size: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The image each filter of `layer` responds to most, all filters optimised as one batch.

    Args:
        model: a model name (built-in, registry) or a Sequential, Functional or nested
            keras.Model.
        layer: layer path ("conv3", "base/block3_conv1"); ignored for objective="class".
        filters: channel indices (or class indices for objective="class").
        steps: optimisation steps (capped by $CNNVIZ_MAX_STEPS when set).
        size: image side, or (height, width); default the model's input size (128 for models
            that take any size). Models with a fixed input size see the image resized to it.
        seed: seeds the initial image and the transforms: same seed, same images.
        progress: progress(step, total, preview) after every step; preview is (n, H, W, C).
        objective: "channel" (mean activation, default), "neuron" (the centre unit) or
            "class" (the class's pre-softmax score).
        param: "fft" (lucid's spectrum), "pixel" (pixels through a sigmoid) or "clipped"
            (seed 003: the image itself, clipped to [0, 1]).
        decorrelate: mix colours through the decorrelated basis ("fft" and "pixel").
        transforms: "standard" (`standard_transforms`), "none", or a list of transforms.
        tv: weight of the total-variation penalty.
        l2: weight of the L2 pull towards grey.
        blur_every: blur the image every this many steps (0: never); blur_sigma in pixels.
        polish: fraction of the steps, at the end, without transforms (see `render`).
        optimizer: Keras optimiser name; learning_rate its step size.
        normalize_gradients: unit-RMS gradient per image before each step.
        input_range: (lo, hi) the model expects for [0, 1]; default: the zoo's preprocessing
            for a name, the image unchanged for a keras.Model (see the module docstring).
        revive: while a filter is silent after its built-in ReLU (no gradient), optimise it
            before the ReLU (see `channel`); the score is always taken after it.
        batch_size: optimise at most this many filters at once (memory); default all.

    Returns:
        images: (n, H, W, C) float32 in [0, 1]; C is 1 for one-channel models (gray).
        scores: (n,) float32 per image on its final image: the filter's mean activation over
            its whole map ("channel"), the centre unit ("neuron") or the logit ("class").

    Raises:
        FeatureVizError, cnnviz.layers.LayerError: bad arguments; an optimisation that
            diverged (NaN).
    """
    if param not in _PARAMS or objective not in _OBJECTIVES:
        raise FeatureVizError(
            f"Expected param in {_PARAMS} and objective in {_OBJECTIVES}. "
            f"Received param={param!r}, objective={objective!r}."
        )
    keras_model, _ = _resolve(model)
    h, w = _size_pair(size, keras_model)
    c = _input_shape(keras_model)[2]
    what = "classes" if objective == "class" else f"filters of {layer!r}"
    wanted = _filter_list(filters, _channels_of(keras_model, layer, objective), what)
    if isinstance(transforms, str):
        if transforms not in ("standard", "none"):
            raise FeatureVizError(
                f"Expected transforms 'standard', 'none' or a list. Received {transforms!r}."
            )
        transforms = standard_transforms(min(h, w)) if transforms == "standard" else []
    batch = len(wanted) if batch_size is None else max(1, int(batch_size))
    per_chunk = capped_steps(steps)
    total = per_chunk * math.ceil(len(wanted) / batch)
    images = np.full((len(wanted), h, w, c), 0.5, np.float32)
    scores = np.zeros(len(wanted), np.float32)

    for lo in range(0, len(wanted), batch):
        chunk = wanted[lo : lo + batch]
        # What to maximise: the filter (revived while silent), minus the regularisers'
        # penalties; what to report: the filter's own output.
        if objective == "class":
            main = full = class_logit(chunk)
        elif objective == "neuron":
            main = neuron(layer, chunk)
            full = neuron(layer, chunk, revive=revive)
        else:
            main = channel(layer, chunk)
            full = channel(layer, chunk, revive=revive)
        if tv:
            full = full - float(tv) * total_variation()
        if l2:
            full = full - float(l2) * l2_penalty()
        # How the image is made, seeded per chunk.
        # Each image's start depends on (seed, its filter) only, not on its batch-mates.
        chunk_seed = [(int(seed), f) for f in chunk]
        if param == "fft":
            made = fft_image(len(chunk), h, w, c, seed=chunk_seed, decorrelate=decorrelate)
        else:
            made = pixel_image(
                len(chunk),
                h,
                w,
                c,
                seed=chunk_seed,
                sigmoid=param == "pixel",
                decorrelate=decorrelate,
            )

        def report(step: int, _total: int, preview: np.ndarray, lo: int = lo) -> None:
            # Show the whole grid: finished chunks, this chunk's preview, grey for the rest.
            images[lo : lo + preview.shape[0]] = preview
            progress(lo // batch * per_chunk + step, total, images)

        imgs, vals = render(
            model,
            full,
            made,
            transforms=transforms,
            optimizer=optimizer,
            learning_rate=learning_rate,
            steps=steps,
            blur_every=blur_every,
            blur_sigma=blur_sigma,
            polish=polish,
            normalize_gradients=normalize_gradients,
            input_range=input_range,
            score=main,
            seed=seed + lo,
            progress=report if progress is not None else None,
        )
        images[lo : lo + len(chunk)] = imgs
        scores[lo : lo + len(chunk)] = vals
    return images, scores


def plain_gradient_ascent(
    model,
    layer: str | None,
    filters: int | Sequence[int] | range,
    *,
    steps: int = 40,
    size: int | tuple[int, int] | None = None,
    seed: int = 0,
    progress: Callable[[int, int, np.ndarray], None] | None = None,
    **options,
) -> tuple[np.ndarray, np.ndarray]:
    """Seed 003's naive method (`PLAIN_OPTIONS`) through `visualize`, for comparison."""
    return visualize(
        model,
        layer,
        filters,
        steps=steps,
        size=size,
        seed=seed,
        progress=progress,
        **{**PLAIN_OPTIONS, **options},
    )


# --------------------------------------------------------------------------------------------
# The weights themselves
# --------------------------------------------------------------------------------------------


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
    keras_model, _ = _resolve(model)
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
    raise FeatureVizError(
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
        FeatureVizError: no convolution layer, or its input is not 1 or 3 channels.
    """
    keras_model, _ = _resolve(model)
    paths = layer_tools.conv_layer_paths(keras_model)
    if not paths:
        raise FeatureVizError(
            f"Expected a model with a convolution layer. Received {keras_model.name!r} without one."
        )
    k = conv_kernels(keras_model, paths[0])  # (out, in, kh, kw)
    if k.shape[1] not in (1, 3) or normalize not in ("global", "each"):
        raise FeatureVizError(
            f"Expected a first convolution over 1 or 3 channels and normalize 'global' or "
            f"'each'. Received {k.shape[1]} channels, normalize={normalize!r}."
        )
    tiles = np.transpose(k, (0, 2, 3, 1))  # (out, kh, kw, in)
    # Zero is grey; the largest |weight| (of all tiles, or of each) reaches black or white.
    axes = (1, 2, 3) if normalize == "each" else None
    bound = np.abs(tiles).max(axis=axes, keepdims=normalize == "each")
    tiles = 0.5 + 0.5 * tiles / np.maximum(bound, 1e-12)
    return np.clip(tiles, 0.0, 1.0).astype(np.float32), paths[0]
