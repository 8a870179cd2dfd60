"""Parameterisations: how the image is made from what is optimised (lucent's `param`).

`pixel_image` optimises pixels (through a sigmoid, or clipped: seed 003's plain ascent);
`fft_image` optimises a Fourier spectrum scaled by 1/frequency, so low frequencies move as fast
as high ones, and mixes colours through a decorrelated basis. Both return an `ImageParam`,
which unpacks as lucent's `(params, image_fn)`; `image_fn()` gives (n, H, W, C) in [0, 1].

References:
    Mordvintsev, Pezzotti, Schubert, Olah, "Differentiable Image Parameterizations", Distill
    2018 (FFT parameterisation, decorrelated colour).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from cnnviz.featureviz.errors import FeatureVizError

__all__ = ["ImageParam", "pixel_image", "fft_image"]

# Lucid's square root of ImageNet's colour covariance (columns: a decorrelated basis). Mixing
# the three optimised channels through it makes colour changes as easy as brightness changes.
_COLOR_SQRT = np.array(
    [[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], dtype=np.float32
)
_COLOR_SQRT /= np.max(np.linalg.norm(_COLOR_SQRT, axis=0))


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
