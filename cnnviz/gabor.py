"""Gabor kernels and fast Gabor filter banks (seed 003, "Image convolution in practice").

A Gabor kernel is a Gaussian envelope times a complex plane wave: the real part is an even
(cosine) stripe pattern, the imaginary part an odd (sine) one. Three numbers shape it, as in the
seed's widget: `frequency` (stripes per pixel), `theta` (the direction the wave travels, in
radians) and `sigma` (the width of the Gaussian window, in pixels).

The kernels come from `skimage.filters.gabor_kernel`; nothing here re-derives them.

`gabor_bank` returns what looping `skimage.filters.gabor` over frequencies × thetas returns, but
computed in one batch. `skimage.filters.gabor` calls `scipy.ndimage.convolve` twice per filter
(real and imaginary part), which costs kh·kw multiply-adds per pixel: a 69×69 kernel at
frequency 0.05 takes seconds on a 512² image. Here the image is padded once and Fourier
transformed once (`scipy.fft`, the pocketfft library that numpy and scipy ship); each kernel
then costs one inverse FFT. Its spectrum is nearly free: with σx = σy the kernel is the outer
product of a column and a row, so two 1-D FFTs give its 2-D spectrum.

Border handling follows `scipy.ndimage` names, as `skimage.filters.gabor(mode=...)` does:

=========== ========================= =====================
ndimage      extends "a b c d" as       numpy.pad mode
=========== ========================= =====================
reflect      d c b a | a b c d | d c b a  symmetric
mirror       d c b | a b c d | c b a      reflect
nearest      a a a | a b c d | d d d      edge
wrap         b c d | a b c d | a b c      wrap
constant     k k k | a b c d | k k k      constant (k = cval)
=========== ========================= =====================

Padding and stride work as on the Kernels page (`cnnviz.conv`): "same" with stride 1 (the
default) gives exactly skimage's output; "valid", "full", explicit pixel counts and strides
shrink or grow it by the usual formula.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np

from cnnviz import conv

__all__ = [
    "GaborError",
    "MODES",
    "MAX_KERNEL_HALF",
    "sigma_from_bandwidth",
    "gabor_kernel",
    "even_thetas",
    "bank_kernels",
    "gabor_bank",
    "gabor_bank_batch",
    "gabor_response",
    "energy_map",
    "orientation_map",
]

#: Border modes, with scipy.ndimage's (and skimage.filters.gabor's) meaning.
MODES = ("reflect", "constant", "nearest", "mirror", "wrap")
#: Largest kernel half-side we build: 2·1024 + 1 = 2049 pixels (64 MB complex), enough for
#: frequency 0.002 at bandwidth 1; anything larger is a typo, not a lesson.
MAX_KERNEL_HALF = 1024
#: Largest bank output we allocate (bytes); 4×8 filters on 1024² is 537 MB.
MAX_BANK_BYTES = 1 << 30
#: Most frequencies × thetas in one bank.
MAX_FILTERS = 256

# numpy.pad's name (as `conv.pad_input` takes it) for each ndimage mode: ndimage's "reflect"
# repeats the edge pixel, which numpy calls "symmetric"; ndimage's "mirror" is numpy's "reflect".
_NUMPY_PAD = {
    "constant": "constant",
    "reflect": "symmetric",
    "nearest": "edge",
    "mirror": "reflect",
    "wrap": "wrap",
}
# Direct correlation (cnnviz.conv) beats the FFT only for one filter of at most 5×5 taps, where
# the image's own FFT is not shared. Measured on 512², float64: one 3×3 filter 22 ms direct vs
# 34 ms FFT, 5×5 15 vs 16 ms, 7×7 56 vs 30 ms; a bank of eight 3×3 filters 123 vs 92 ms.
_DIRECT_MAX_TAPS = 25
# Filters transformed together: the (chunk, N, M) complex work array stays near cache size.
# Many small images' filters go together; at 512² it is one filter at a time, which measured
# ~2× faster than 96 MB chunks (less memory traffic, no page faults).
_CHUNK_BYTES = 8 << 20

Engine = Literal["auto", "fft", "direct"]
Progress = Callable[[int, int], None]


class GaborError(ValueError):
    """Invalid Gabor arguments; the message says what was expected and what was received."""


# --------------------------------------------------------------------------------------------
# Kernels
# --------------------------------------------------------------------------------------------


def _positive(name: str, value: float) -> float:
    """A finite, strictly positive float, or GaborError naming the argument."""
    try:
        v = float(value)
    except (TypeError, ValueError) as err:
        raise GaborError(
            f"Invalid value for argument `{name}`. Expected a number. Received {value!r}."
        ) from err
    if not math.isfinite(v) or v <= 0:
        raise GaborError(
            f"Invalid value for argument `{name}`. Expected a finite, strictly positive value. "
            f"Received {name}={value!r}."
        )
    return v


def _finite(name: str, value: float) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError) as err:
        raise GaborError(
            f"Invalid value for argument `{name}`. Expected a number. Received {value!r}."
        ) from err
    if not math.isfinite(v):
        raise GaborError(
            f"Invalid value for argument `{name}`. Expected a finite number. Received {name}={value!r}."
        )
    return v


def sigma_from_bandwidth(frequency: float, bandwidth: float = 1.0) -> float:
    """The Gaussian σ (pixels) that `skimage.filters.gabor_kernel` uses for a bandwidth.

    The half-response spatial-frequency bandwidth b (octaves) fixes σ·f:
    σ = (1/π)·√(ln 2 / 2)·(2^b + 1)/(2^b − 1) / f. This is the formula in skimage's
    `_sigma_prefactor` (a private function, hence repeated here for display and size checks;
    tests compare the two kernels).

    Args:
        frequency: cycles per pixel, > 0.
        bandwidth: octaves, > 0. One octave (the default) gives σ ≈ 0.56 / f.

    Returns:
        σ in pixels.
    """
    f = _positive("frequency", frequency)
    b = _positive("bandwidth", bandwidth)
    return (1.0 / math.pi) * math.sqrt(math.log(2) / 2.0) * (2.0**b + 1) / (2.0**b - 1) / f


def gabor_kernel(
    frequency: float,
    theta: float = 0.0,
    *,
    bandwidth: float = 1.0,
    sigma: float | None = None,
    sigma_x: float | None = None,
    sigma_y: float | None = None,
    n_stds: float = 3.0,
    offset: float = 0.0,
) -> np.ndarray:
    """A complex Gabor kernel from `skimage.filters.gabor_kernel`, with checked arguments.

    Args:
        frequency: cycles per pixel of the plane wave (0.5 is the finest a pixel grid shows).
        theta: direction the wave travels, radians; 0 gives vertical stripes.
        bandwidth: octaves; sets σ = `sigma_from_bandwidth(frequency, bandwidth)` when no σ is given.
        sigma: σx = σy, in pixels (the seed's single "sigma" slider).
        sigma_x, sigma_y: σ along and across the wave before rotation; override `sigma`.
        n_stds: the kernel extends n_stds·σ from its centre (3 keeps 99.7 % of the envelope).
        offset: phase of the wave in radians (π/2 swaps cosine for sine).

    Returns:
        (kh, kw) complex128 array, both sides odd, centre at (kh // 2, kw // 2).

    Raises:
        GaborError: a non-positive or non-finite size, or a kernel wider than
            2·MAX_KERNEL_HALF + 1 pixels.
    """
    from skimage.filters import gabor_kernel as _skimage_gabor_kernel  # noqa: PLC0415 - slow import

    f = _positive("frequency", frequency)
    t = _finite("theta", theta)
    n = _positive("n_stds", n_stds)
    off = _finite("offset", offset)
    default = sigma_from_bandwidth(f, bandwidth) if sigma is None else _positive("sigma", sigma)
    sx = default if sigma_x is None else _positive("sigma_x", sigma_x)
    sy = default if sigma_y is None else _positive("sigma_y", sigma_y)
    # skimage's half-side is ceil(n_stds · σ · |cos or sin|) <= n_stds · max(σ) + 1: check first.
    if n * max(sx, sy) > MAX_KERNEL_HALF:
        raise GaborError(
            f"This Gabor kernel would be about {2 * math.ceil(n * max(sx, sy)) + 1} pixels wide. "
            f"Expected n_stds·σ ≤ {MAX_KERNEL_HALF}. Received n_stds={n:g}, σ={max(sx, sy):.4g} "
            f"(frequency={f:g}). Raise the frequency or give a smaller sigma."
        )
    return _skimage_gabor_kernel(f, t, sigma_x=sx, sigma_y=sy, n_stds=n, offset=off)


def even_thetas(n: int) -> np.ndarray:
    """n orientations evenly spaced over [0, π): k·π/n for k = 0..n-1.

    A Gabor filter at θ + π has the same stripes as at θ (its wave just runs the other way),
    so half a turn covers every orientation.
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or not 1 <= int(n) <= MAX_FILTERS:
        raise GaborError(
            f"Invalid value for argument `n`. Expected an int from 1 to {MAX_FILTERS}. Received {n!r}."
        )
    return np.arange(int(n)) * (np.pi / int(n))


def _values(name: str, values: float | Sequence[float] | np.ndarray) -> np.ndarray:
    """A non-empty 1-D float64 array of finite values."""
    try:
        arr = np.atleast_1d(np.asarray(values, dtype=np.float64))
    except (TypeError, ValueError) as err:
        raise GaborError(
            f"Invalid value for argument `{name}`. Expected a list of numbers. Received {values!r}."
        ) from err
    if arr.ndim != 1 or arr.size == 0 or not np.all(np.isfinite(arr)):
        raise GaborError(
            f"Invalid value for argument `{name}`. Expected a non-empty 1-D list of finite numbers. "
            f"Received shape {arr.shape}."
        )
    return arr


def _kernel_grid(
    frequencies: Sequence[float] | np.ndarray,
    thetas: Sequence[float] | np.ndarray,
    **kwargs,
) -> list[list[np.ndarray]]:
    """skimage's kernel for every (frequency, theta), each at its own size."""
    freqs, angles = _values("frequencies", frequencies), _values("thetas", thetas)
    if freqs.size * angles.size > MAX_FILTERS:
        raise GaborError(
            f"Expected at most {MAX_FILTERS} filters in a bank. Received {freqs.size} frequencies × "
            f"{angles.size} thetas = {freqs.size * angles.size}."
        )
    return [[gabor_kernel(f, t, **kwargs) for t in angles] for f in freqs]


def _embed(grid: list[list[np.ndarray]]) -> np.ndarray:
    """Centre every kernel in the grid's largest (odd) footprint: (F, T, Kh, Kw)."""
    kh = max(k.shape[0] for row in grid for k in row)
    kw = max(k.shape[1] for row in grid for k in row)
    out = np.zeros((len(grid), len(grid[0]), kh, kw), dtype=np.complex128)
    for i, row in enumerate(grid):
        for j, k in enumerate(row):
            # Both sizes are odd, so the margins are whole pixels.
            r0, c0 = (kh - k.shape[0]) // 2, (kw - k.shape[1]) // 2
            out[i, j, r0 : r0 + k.shape[0], c0 : c0 + k.shape[1]] = k
    return out


def bank_kernels(
    frequencies: Sequence[float] | np.ndarray,
    thetas: Sequence[float] | np.ndarray,
    *,
    sigma: float | None = None,
    sigma_x: float | None = None,
    sigma_y: float | None = None,
    bandwidth: float = 1.0,
    n_stds: float = 3.0,
    offset: float = 0.0,
) -> np.ndarray:
    """Every kernel of a bank, each centred in the bank's largest footprint.

    Kernel sizes differ across the bank (low frequencies and diagonal thetas change the
    extent); zero-padding each one around its centre changes no response, and lets the whole
    bank share one array and one padded image.

    Returns:
        (F, T, Kh, Kw) complex128, Kh and Kw odd: the largest kernel height and width.
    """
    grid = _kernel_grid(
        frequencies,
        thetas,
        sigma=sigma,
        sigma_x=sigma_x,
        sigma_y=sigma_y,
        bandwidth=bandwidth,
        n_stds=n_stds,
        offset=offset,
    )
    return _embed(grid)


# --------------------------------------------------------------------------------------------
# Responses
# --------------------------------------------------------------------------------------------


def _as_images(images: np.ndarray, *, batch: bool) -> np.ndarray:
    """Check (H, W) or (N, H, W) real input and return a float64 (or float32) stack (N, H, W)."""
    arr = np.asarray(images)
    want = 3 if batch else 2
    if arr.ndim != want:
        hint = (
            " Convert colour images with cnnviz.images.to_gray first."
            if arr.ndim == want + 1
            else ""
        )
        shape = "(N, H, W)" if batch else "(H, W)"
        raise GaborError(
            f"Expected a grayscale image batch of shape {shape}. Received shape {arr.shape}.{hint}"
        )
    if arr.size == 0:
        raise GaborError(f"Expected a non-empty image. Received shape {arr.shape}.")
    if arr.dtype.kind not in "biuf":
        raise GaborError(f"Expected real pixel values. Received dtype {arr.dtype}.")
    # skimage keeps integer images as integers and truncates the filtered values; we compute in
    # float64 (float32 input stays float32, as in skimage).
    arr = arr.astype(np.float32 if arr.dtype == np.float32 else np.float64, copy=False)
    if not np.all(np.isfinite(arr)):
        raise GaborError("Expected finite pixel values. Received NaN or infinity.")
    return arr if batch else arr[None]


def _pad(x: np.ndarray, pads: tuple[int, int, int, int], mode: str, cval: float) -> np.ndarray:
    """Pad the last two axes of (N, H, W) the way scipy.ndimage extends an image in `mode`."""
    # conv.pad_input pads the two leading axes of (H, W, C): move the batch axis last.
    xp = conv.pad_input(np.moveaxis(x, 0, -1), pads, _NUMPY_PAD[mode], cval)
    return np.moveaxis(xp, -1, 0)


def _check_mode(mode: str) -> str:
    if mode not in MODES:
        raise GaborError(
            f"Invalid value for argument `mode`. Expected one of {MODES}. Received {mode!r}."
        )
    return mode


def gabor_bank_batch(
    images: np.ndarray,
    frequencies: Sequence[float] | np.ndarray,
    thetas: Sequence[float] | np.ndarray,
    *,
    sigma: float | None = None,
    sigma_x: float | None = None,
    sigma_y: float | None = None,
    bandwidth: float = 1.0,
    n_stds: float = 3.0,
    offset: float = 0.0,
    mode: str = "reflect",
    cval: float = 0.0,
    padding: conv.PadSpec = "same",
    stride: int | tuple[int, int] = 1,
    engine: Engine = "auto",
    progress: Progress | None = None,
) -> np.ndarray:
    """`gabor_bank` for a batch of same-sized images, sharing the kernels' spectra.

    Args:
        images: (N, H, W) real array.
        (the rest): as `gabor_bank`.

    Returns:
        (N, F, T, H', W') complex array.
    """
    x = _as_images(images, batch=True)
    mode = _check_mode(mode)
    cval = _finite("cval", cval)
    if engine not in ("auto", "fft", "direct"):
        raise GaborError(
            f'Invalid value for argument `engine`. Expected "auto", "fft" or "direct". Received {engine!r}.'
        )
    # 1. skimage's kernels, and the bank's common footprint (Kh, Kw).
    grid = _kernel_grid(
        frequencies,
        thetas,
        sigma=sigma,
        sigma_x=sigma_x,
        sigma_y=sigma_y,
        bandwidth=bandwidth,
        n_stds=n_stds,
        offset=offset,
    )
    nf, nt = len(grid), len(grid[0])
    kh = max(k.shape[0] for row in grid for k in row)
    kw = max(k.shape[1] for row in grid for k in row)
    # 2. Output geometry from cnnviz.conv, exactly as on the Kernels page (it also checks stride).
    try:
        pads = conv.resolve_padding(x.shape[1:], (kh, kw), stride=stride, padding=padding)
        sh, sw = (
            (stride, stride)
            if isinstance(stride, int | np.integer)
            else (int(stride[0]), int(stride[1]))
        )
        ho, _ = conv.output_size(x.shape[1], kh, sh, (pads[0], pads[1]))
        wo, _ = conv.output_size(x.shape[2], kw, sw, (pads[2], pads[3]))
    except conv.ConvError as err:
        raise GaborError(str(err)) from err
    if ho < 1 or wo < 1:
        raise GaborError(
            f"The Gabor kernel ({kh}×{kw}) is larger than the padded image "
            f"({x.shape[1] + pads[0] + pads[1]}×{x.shape[2] + pads[2] + pads[3]}). "
            'Expected padding "same" or "full", a higher frequency or a smaller sigma.'
        )
    out_dtype = np.complex64 if x.dtype == np.float32 else np.complex128
    nbytes = x.shape[0] * nf * nt * ho * wo * np.dtype(out_dtype).itemsize
    if nbytes > MAX_BANK_BYTES:
        raise GaborError(
            f"The responses would take {nbytes / 2**20:.0f} MB. Expected at most "
            f"{MAX_BANK_BYTES / 2**20:.0f} MB: use fewer filters, a smaller image or a stride."
        )
    # 3. Pad once, with the border the mode asks for.
    xp = _pad(x, pads, mode, cval)
    # 4. Filter: direct correlation for one tiny kernel, else one batched FFT.
    flat = [k for row in grid for k in row]
    tiny = len(flat) * x.shape[0] == 1 and flat[0].size <= _DIRECT_MAX_TAPS
    if engine == "direct" or (engine == "auto" and tiny):
        out = _direct(xp, flat, (kh, kw), (int(sh), int(sw)), (ho, wo), out_dtype, progress)
    else:
        out = _fft(xp, flat, (kh, kw), (int(sh), int(sw)), (ho, wo), out_dtype, progress)
    return out.reshape(x.shape[0], nf, nt, ho, wo)


def gabor_bank(
    image: np.ndarray,
    frequencies: Sequence[float] | np.ndarray,
    thetas: Sequence[float] | np.ndarray,
    *,
    sigma: float | None = None,
    sigma_x: float | None = None,
    sigma_y: float | None = None,
    bandwidth: float = 1.0,
    n_stds: float = 3.0,
    offset: float = 0.0,
    mode: str = "reflect",
    cval: float = 0.0,
    padding: conv.PadSpec = "same",
    stride: int | tuple[int, int] = 1,
    engine: Engine = "auto",
    progress: Progress | None = None,
) -> np.ndarray:
    """Responses of a whole Gabor bank (frequencies × thetas) to one grayscale image.

    With the default padding="same" and stride=1, element [i, j] equals
    `real + 1j * imag` of `skimage.filters.gabor(image, frequencies[i], thetas[j],
    sigma_x=sigma, sigma_y=sigma, bandwidth=bandwidth, n_stds=n_stds, offset=offset,
    mode=mode, cval=cval)` for float images (tests check this to 1e-6 of the largest magnitude).

    Args:
        image: (H, W) real array. Integer images are filtered in float64 (skimage would
            truncate the result to the integer type).
        frequencies: F cycles-per-pixel values.
        thetas: T orientations in radians (see `even_thetas`).
        sigma: σx = σy in pixels for every filter; None derives σ from `bandwidth` per frequency.
        sigma_x, sigma_y: σ along and across the wave (before rotation); override `sigma`.
            Unequal ones make an elongated window, as in `skimage.filters.gabor`.
        bandwidth, n_stds, offset: as `gabor_kernel`.
        mode: border extension, scipy.ndimage names (see `MODES` and the module docstring).
        cval: the fill value for mode="constant".
        padding: "same" (default), "valid", "full", an int, (rows, cols) or
            (top, bottom, left, right), as `cnnviz.conv.conv2d`; computed for the bank's largest
            kernel so that every response has the same shape.
        stride: keep every stride-th output pixel (an int or (rows, cols)).
        engine: "fft" (one batched FFT), "direct" (cnnviz.conv per filter) or "auto" (direct
            only for a single filter of at most 5×5 taps, where it is faster).
        progress: called as progress(filters_done, filters_total) after each batch of filters.

    Returns:
        (F, T, H', W') complex128 (complex64 for float32 input); H', W' follow
        `cnnviz.conv.output_size`, so (H, W) for "same" and stride 1.

    Raises:
        GaborError: bad arguments, a kernel larger than a "valid" image, or a result over
            MAX_BANK_BYTES.
    """
    x = _as_images(image, batch=False)
    return gabor_bank_batch(
        x,
        frequencies,
        thetas,
        sigma=sigma,
        sigma_x=sigma_x,
        sigma_y=sigma_y,
        bandwidth=bandwidth,
        n_stds=n_stds,
        offset=offset,
        mode=mode,
        cval=cval,
        padding=padding,
        stride=stride,
        engine=engine,
        progress=progress,
    )[0]


def gabor_response(image: np.ndarray, frequency: float, theta: float = 0.0, **kwargs) -> np.ndarray:
    """One filter's complex response: `gabor_bank(image, [frequency], [theta], **kwargs)[0, 0]`.

    Returns:
        (H', W') complex array: real part = even (cosine) response, imaginary = odd (sine).
    """
    return gabor_bank(image, [frequency], [theta], **kwargs)[0, 0]


def _rank_one(k: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(column, row) with outer(column, row) == k, when the kernel is separable.

    With σx = σy the Gaussian is round and the plane wave factorises, so skimage's kernel is
    exactly u(y)·v(x) (to rounding): the column and the row through its centre, divided once by
    the centre value. Anisotropic kernels are not separable; they return None.
    """
    r, c = k.shape[0] // 2, k.shape[1] // 2
    col, row = k[:, c], k[r, :] / k[r, c]
    if np.abs(np.outer(col, row) - k).max() > 1e-12 * np.abs(k).max():
        return None
    return col, row


def _kernel_spectra(
    kernels: list[np.ndarray], footprint: tuple[int, int], shape: tuple[int, int], dtype: type
) -> tuple[np.ndarray | None, np.ndarray]:
    """FFTs of the kernels centred in the footprint and zero-padded to `shape` (fh, fw).

    Returns:
        (column factors (K, fh, 1), row factors (K, 1, fw)) whose product is the spectrum, for
        separable kernels; (None, spectra (K, fh, fw)) otherwise.
    """
    import scipy.fft as sfft  # noqa: PLC0415 - keep module import light

    fh, fw = shape
    factors = [_rank_one(k) for k in kernels]
    if all(f is not None for f in factors):
        # Separable: two short 1-D FFTs per kernel instead of a full 2-D one.
        cols = np.zeros((len(kernels), footprint[0]), dtype=np.complex128)
        rows = np.zeros((len(kernels), footprint[1]), dtype=np.complex128)
        for i, (col, row) in enumerate(factors):
            r0, c0 = (footprint[0] - col.size) // 2, (footprint[1] - row.size) // 2
            cols[i, r0 : r0 + col.size], rows[i, c0 : c0 + row.size] = col, row
        cspec = sfft.fft(cols, n=fh, axis=-1).astype(dtype)
        rspec = sfft.fft(rows, n=fw, axis=-1).astype(dtype)
        return cspec[:, :, None], rspec[:, None, :]
    # General case: transform the kernel's rows first (padded to fw), then the columns, so the
    # fh - kh rows of zero padding cost nothing in the first pass.
    k = _embed([kernels]).reshape(len(kernels), *footprint).astype(dtype)
    return None, sfft.fft(sfft.fft(k, n=fw, axis=-1, workers=-1), n=fh, axis=-2, workers=-1)


def _fft(
    xp: np.ndarray,
    kernels: list[np.ndarray],
    footprint: tuple[int, int],
    stride: tuple[int, int],
    out_hw: tuple[int, int],
    dtype: type,
    progress: Progress | None,
) -> np.ndarray:
    """True convolution of each padded image with each kernel, keeping valid windows.

    xp (N, Hp, Wp), K kernels centred in `footprint` (kh, kw) -> (N, K, ho, wo). A circular
    convolution of length ≥ Hp leaves the valid part (rows kh-1 .. Hp-1) untouched by
    wrap-around, so the FFT only needs the padded image's size, not Hp + kh - 1.
    """
    import scipy.fft as sfft  # noqa: PLC0415 - keep module import light

    n, hp, wp = xp.shape
    nk = len(kernels)
    kh, kw = footprint
    sh, sw = stride
    ho, wo = out_hw
    fh, fw = sfft.next_fast_len(hp, real=False), sfft.next_fast_len(wp, real=False)
    # The image's spectrum, once for the whole bank.
    spec = sfft.fft2(xp, s=(fh, fw), workers=-1)[:, None]
    out = np.empty((n, nk, ho, wo), dtype=dtype)
    chunk = max(1, min(nk, _CHUNK_BYTES // (n * fh * fw * np.dtype(dtype).itemsize)))
    prod = np.empty((n, chunk, fh, fw), dtype=dtype)  # reused: no page faults per chunk
    for start in range(0, nk, chunk):
        c = min(chunk, nk - start)
        colf, rowf = _kernel_spectra(kernels[start : start + c], footprint, (fh, fw), dtype)
        # Multiply spectra = convolve; a separable kernel's spectrum is applied factor by
        # factor, two light passes instead of building the (c, fh, fw) outer product.
        np.multiply(spec, rowf[None], out=prod[:, :c])
        if colf is not None:
            prod[:, :c] *= colf[None]
        # Back to pixels: rows first, then only the columns we keep (valid, every stride-th).
        rows = sfft.ifft(prod[:, :c], axis=-1, workers=-1, overwrite_x=True)
        kept = rows[..., kw - 1 : kw - 1 + sw * (wo - 1) + 1 : sw]
        cols = sfft.ifft(kept, axis=-2, workers=-1)
        out[:, start : start + c] = cols[:, :, kh - 1 : kh - 1 + sh * (ho - 1) + 1 : sh]
        if progress is not None:
            progress(start + c, nk)
    return out


def _direct(
    xp: np.ndarray,
    kernels: list[np.ndarray],
    footprint: tuple[int, int],
    stride: tuple[int, int],
    out_hw: tuple[int, int],
    dtype: type,
    progress: Progress | None,
) -> np.ndarray:
    """Per filter and image, `cnnviz.conv.conv2d` on the real and imaginary parts.

    flip=True because ndimage.convolve (what skimage calls) is a true convolution. A kernel
    smaller than the bank's footprint sees the padded image minus the same margin.
    """
    n = xp.shape[0]
    ho, wo = out_hw
    out = np.empty((n, len(kernels), ho, wo), dtype=dtype)
    for j, k in enumerate(kernels):
        r0, c0 = (footprint[0] - k.shape[0]) // 2, (footprint[1] - k.shape[1]) // 2
        for i in range(n):
            xi = xp[i, r0 : xp.shape[1] - r0, c0 : xp.shape[2] - c0]
            re = conv.conv2d(xi, k.real, stride=stride, padding="valid", flip=True)
            im = conv.conv2d(xi, k.imag, stride=stride, padding="valid", flip=True)
            out[i, j] = re + 1j * im
        if progress is not None:
            progress(j + 1, len(kernels))
    return out


# --------------------------------------------------------------------------------------------
# Summaries of a bank
# --------------------------------------------------------------------------------------------


def energy_map(responses: np.ndarray) -> np.ndarray:
    """Per pixel, the largest response magnitude over the whole bank.

    Args:
        responses: (F, T, H, W) complex, from `gabor_bank`.

    Returns:
        (H, W) float: high where some filter found its stripes, low on flat regions.
    """
    r = _bank(responses)
    return np.abs(r).max(axis=(0, 1))


def orientation_map(responses: np.ndarray) -> np.ndarray:
    """Per pixel, the index of the theta whose filter (at any frequency) responded most.

    Args:
        responses: (F, T, H, W) complex, from `gabor_bank`.

    Returns:
        (H, W) int array of theta indices in 0..T-1 (map them to angles with the bank's thetas).
    """
    r = _bank(responses)
    nf, nt = r.shape[:2]
    # Best filter over the flattened (F·T) bank, then its theta index.
    best = np.abs(r).reshape(nf * nt, *r.shape[2:]).argmax(axis=0)
    return best % nt


def _bank(responses: np.ndarray) -> np.ndarray:
    r = np.asarray(responses)
    if r.ndim != 4 or r.shape[0] < 1 or r.shape[1] < 1:
        raise GaborError(
            f"Expected bank responses of shape (F, T, H, W). Received shape {r.shape}."
        )
    return r
