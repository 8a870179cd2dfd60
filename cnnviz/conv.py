"""2-D convolution with padding, stride and dilation, as Keras and scipy compute it.

`conv2d` is cross-correlation by default (what `keras.layers.Conv2D` and
`scipy.signal.correlate2d` compute, and what seed 001 calls "convolution without reversal");
`flip=True` turns it into true convolution ("with reversal").

Three exact engines are used, chosen by kernel shape and size (benchmarks/kernels.py):
- small 2-D kernels: `scipy.ndimage.correlate`, the fastest direct correlation available; it
  pads by itself when the padding is the centred "same" case, saving a copy.
- large 2-D kernels: FFT (`scipy.signal.fftconvolve`); 15×15 then costs about what 5×5 does.
- (kh, kw, Cin, Cout) kernels: shift-and-add, one (Cin × Cout) matrix product per kernel tap,
  strided and dilated directly, which is how Conv2D mixes channels.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

__all__ = [
    "ConvError",
    "PadSpec",
    "conv2d",
    "output_size",
    "resolve_padding",
    "pad_input",
]

PadSpec = str | int | tuple[int, int] | tuple[int, int, int, int]
PadMode = Literal["constant", "reflect", "edge", "wrap"]
_PAD_MODES = ("constant", "reflect", "edge", "wrap")
# From this many taps the FFT engine beats ndimage on 2 cores (benchmarks/kernels.py on 512²
# RGB: 7×7 ndimage 22 ms vs FFT 30 ms; 9×9 ndimage 40 ms vs FFT 22 ms).
_FFT_MIN_TAPS = 64
# scipy.ndimage's names for numpy's pad modes.
_NDIMAGE_MODE = {"constant": "constant", "reflect": "mirror", "edge": "nearest", "wrap": "grid-wrap"}


class ConvError(ValueError):
    """Invalid convolution arguments; the message says what was expected and received."""


def _pair(value: int | tuple[int, int] | list[int], name: str) -> tuple[int, int]:
    if isinstance(value, bool):
        raise ConvError(f"Invalid value for argument `{name}`. Expected an int or a pair of ints. Received {value!r}.")
    if isinstance(value, int | np.integer):
        pair = (int(value), int(value))
    else:
        try:
            pair = tuple(int(v) for v in value)  # type: ignore[union-attr]
        except (TypeError, ValueError) as err:
            raise ConvError(f"Invalid value for argument `{name}`. Expected an int or a pair of ints. Received {value!r}.") from err
        if len(pair) != 2:
            raise ConvError(f"Invalid value for argument `{name}`. Expected a pair. Received {value!r}.")
    if min(pair) < 1:
        raise ConvError(f"Invalid value for argument `{name}`. Expected a strictly positive value. Received {name}={value!r}.")
    return pair  # type: ignore[return-value]


def _pad_1d(n: int, k_eff: int, stride: int, padding: str) -> tuple[int, int]:
    """(before, after) padding along one axis for a named padding."""
    if padding == "valid":
        return 0, 0
    if padding == "full":
        return k_eff - 1, k_eff - 1
    if padding == "same":
        # TensorFlow's SAME rule: output = ceil(n / stride); the odd extra pixel goes after.
        out = -(-n // stride)
        total = max((out - 1) * stride + k_eff - n, 0)
        return total // 2, total - total // 2
    raise ConvError(f'Invalid value for argument `padding`. Expected "valid", "same", "full", an int or (top, bottom, left, right). Received {padding!r}.')


def resolve_padding(
    shape: tuple[int, int],
    kernel_shape: tuple[int, int],
    *,
    stride: int | tuple[int, int] = 1,
    padding: PadSpec = "valid",
    dilation: int | tuple[int, int] = 1,
) -> tuple[int, int, int, int]:
    """Turn any padding spec into explicit (top, bottom, left, right) pixel counts."""
    sh, sw = _pair(stride, "stride")
    dh, dw = _pair(dilation, "dilation")
    kh, kw = (int(kernel_shape[0]) - 1) * dh + 1, (int(kernel_shape[1]) - 1) * dw + 1
    if isinstance(padding, str):
        top, bottom = _pad_1d(int(shape[0]), kh, sh, padding.lower())
        left, right = _pad_1d(int(shape[1]), kw, sw, padding.lower())
        return top, bottom, left, right
    if isinstance(padding, bool):
        raise ConvError(f"Invalid value for argument `padding`. Received {padding!r}.")
    if isinstance(padding, int | np.integer):
        p = int(padding)
        pads = (p, p, p, p)
    else:
        try:
            vals = tuple(int(v) for v in padding)
        except (TypeError, ValueError) as err:
            raise ConvError(f"Invalid value for argument `padding`. Received {padding!r}.") from err
        if len(vals) == 2:
            pads = (vals[0], vals[0], vals[1], vals[1])
        elif len(vals) == 4:
            pads = vals  # type: ignore[assignment]
        else:
            raise ConvError(f"Invalid value for argument `padding`. Expected 2 or 4 ints. Received {padding!r}.")
    if min(pads) < 0:
        raise ConvError(f"Invalid value for argument `padding`. Expected non-negative amounts. Received {padding!r}.")
    return pads  # type: ignore[return-value]


def output_size(
    n: int,
    k: int,
    stride: int = 1,
    padding: str | int | tuple[int, int] = "valid",
    dilation: int = 1,
) -> tuple[int, str]:
    """Output length along one axis, and the formula with the numbers filled in.

    out = ⌊(n + p_before + p_after − d·(k − 1) − 1) / s⌋ + 1

    Returns:
        (size, formula) such as (26, "⌊(28 + 0 + 0 − 1·(3 − 1) − 1) / 1⌋ + 1 = 26").
    """
    if n < 1 or k < 1 or stride < 1 or dilation < 1:
        raise ConvError(f"Expected positive sizes. Received n={n}, k={k}, stride={stride}, dilation={dilation}.")
    k_eff = (k - 1) * dilation + 1
    if isinstance(padding, str):
        before, after = _pad_1d(n, k_eff, stride, padding.lower())
    elif isinstance(padding, int | np.integer):
        before = after = int(padding)
    else:
        before, after = (int(padding[0]), int(padding[1]))
    span = n + before + after - k_eff
    size = span // stride + 1 if span >= 0 else 0
    formula = f"⌊({n} + {before} + {after} − {dilation}·({k} − 1) − 1) / {stride}⌋ + 1 = {size}"
    return size, formula


def pad_input(x: np.ndarray, pads: tuple[int, int, int, int], pad_mode: str = "constant", cval: float = 0.0) -> np.ndarray:
    """Pad the two spatial axes of (H, W) or (H, W, C) with numpy's modes."""
    if pad_mode not in _PAD_MODES:
        raise ConvError(f"Invalid value for argument `pad_mode`. Expected one of {_PAD_MODES}. Received {pad_mode!r}.")
    top, bottom, left, right = pads
    width = [(top, bottom), (left, right)] + [(0, 0)] * (x.ndim - 2)
    if not any(pads):
        return x
    if pad_mode == "constant":
        return np.pad(x, width, mode="constant", constant_values=cval)
    if pad_mode == "reflect" and min(x.shape[:2]) < 2:
        return np.pad(x, width, mode="edge")  # reflecting a single row is that row
    return np.pad(x, width, mode=pad_mode)


def conv2d(
    x: np.ndarray,
    kernel: np.ndarray,
    *,
    stride: int | tuple[int, int] = 1,
    padding: PadSpec = "valid",
    dilation: int | tuple[int, int] = 1,
    pad_mode: PadMode = "constant",
    flip: bool = False,
) -> np.ndarray:
    """Slide a kernel over an image: cross-correlation (default) or true convolution.

    Input shape / kernel shape / output shape:
        (H, W) with (kh, kw) -> (H', W')
        (H, W, C) with (kh, kw) -> (H', W', C), each channel filtered separately
        (H, W, Cin) with (kh, kw, Cin, Cout) -> (H', W', Cout), equal to keras Conv2D (no bias)

    H' = ⌊(H + p_top + p_bottom − dilation·(kh − 1) − 1) / stride⌋ + 1, see `output_size`.

    Args:
        x: the image, any real dtype; computed in float64.
        kernel: the weights.
        stride: step between windows, an int or (sh, sw).
        padding: "valid", "same" (TensorFlow's rule: the extra pixel goes bottom/right),
            "full", an int for all sides, or (top, bottom, left, right).
        dilation: gap between kernel taps, an int or (dh, dw).
        pad_mode: how padded pixels are filled: "constant" (zeros), "reflect", "edge", "wrap".
        flip: True for convolution with reversal (kernel rotated 180°).

    Returns:
        float64 array of the output shape above.
    """
    x = np.asarray(x)
    k = np.asarray(kernel)
    if not np.issubdtype(x.dtype, np.number) or not np.issubdtype(k.dtype, np.number):
        raise ConvError(f"Expected numeric arrays. Received x of dtype {x.dtype} and kernel of dtype {k.dtype}.")
    if x.ndim not in (2, 3):
        raise ConvError(f"Expected x of shape (H, W) or (H, W, C). Received shape {x.shape}.")
    if k.ndim not in (2, 4):
        raise ConvError(f"Expected a kernel of shape (kh, kw) or (kh, kw, Cin, Cout). Received shape {k.shape}.")
    if k.ndim == 4 and (x.ndim != 3 or k.shape[2] != x.shape[2]):
        raise ConvError(f"A (kh, kw, Cin, Cout) kernel needs x of shape (H, W, Cin). Received x {x.shape} and kernel {k.shape}.")
    if min(x.shape[:2]) < 1 or min(k.shape) < 1:
        raise ConvError(f"Expected non-empty arrays. Received x {x.shape} and kernel {k.shape}.")
    x = x.astype(np.float64, copy=False)
    k = k.astype(np.float64, copy=False)
    if flip:
        k = k[::-1, ::-1]
    sh, sw = _pair(stride, "stride")
    dh, dw = _pair(dilation, "dilation")
    pads = resolve_padding(x.shape[:2], k.shape[:2], stride=(sh, sw), padding=padding, dilation=(dh, dw))
    kh_eff, kw_eff = (k.shape[0] - 1) * dh + 1, (k.shape[1] - 1) * dw + 1
    if pad_mode not in _PAD_MODES:
        raise ConvError(f"Invalid value for argument `pad_mode`. Expected one of {_PAD_MODES}. Received {pad_mode!r}.")
    taps = k.shape[0] * k.shape[1]
    centred = (
        kh_eff % 2 == 1
        and kw_eff % 2 == 1
        and pads == (kh_eff // 2, kh_eff // 2, kw_eff // 2, kw_eff // 2)
        and max(pads) < min(x.shape[:2])
    )
    if k.ndim == 2 and taps < _FFT_MIN_TAPS and centred:
        # Centred padding: ndimage pads internally with the same rule, no copy needed.
        out = _ndimage_correlate(x, _dilate(k, dh, dw), _NDIMAGE_MODE[pad_mode])
        return np.ascontiguousarray(out[::sh, ::sw])
    xp = pad_input(x, pads, pad_mode)
    ho = (xp.shape[0] - kh_eff) // sh + 1
    wo = (xp.shape[1] - kw_eff) // sw + 1
    if xp.shape[0] < kh_eff or xp.shape[1] < kw_eff:
        raise ConvError(
            f"The kernel (effective size {kh_eff}×{kw_eff} with dilation) is larger than the padded "
            f"input {xp.shape[0]}×{xp.shape[1]}. Use more padding, a smaller kernel or less dilation."
        )
    if k.ndim == 4:
        return _conv_shift_add(xp, k, (sh, sw), (dh, dw), ho, wo)
    kd = _dilate(k, dh, dw)
    if taps >= _FFT_MIN_TAPS:
        full = _fft_valid(xp, kd)
    else:
        # Correlate the padded input, then keep only windows that lie fully inside it.
        r0, c0 = kd.shape[0] // 2, kd.shape[1] // 2
        full = _ndimage_correlate(xp, kd, "constant")[
            r0 : r0 + xp.shape[0] - kd.shape[0] + 1, c0 : c0 + xp.shape[1] - kd.shape[1] + 1
        ]
    return np.ascontiguousarray(full[: sh * (ho - 1) + 1 : sh, : sw * (wo - 1) + 1 : sw])


def _dilate(k: np.ndarray, dh: int, dw: int) -> np.ndarray:
    """Insert dh-1 / dw-1 zeros between kernel taps (a dilated kernel is a sparse bigger one)."""
    if dh == 1 and dw == 1:
        return k
    kd = np.zeros(((k.shape[0] - 1) * dh + 1, (k.shape[1] - 1) * dw + 1))
    kd[::dh, ::dw] = k
    return kd


def _ndimage_correlate(x: np.ndarray, k: np.ndarray, mode: str) -> np.ndarray:
    from scipy.ndimage import correlate  # noqa: PLC0415 - keep module import light

    kernel = k[:, :, None] if x.ndim == 3 else k
    return correlate(x, kernel, mode=mode, cval=0.0)


def _fft_valid(xp: np.ndarray, k: np.ndarray) -> np.ndarray:
    """FFT engine (scipy.signal.fftconvolve): correlation = convolution with the kernel reversed."""
    from scipy.signal import fftconvolve  # noqa: PLC0415 - keep module import light

    kr = k[::-1, ::-1]
    if xp.ndim == 3:
        kr = kr[:, :, None]
    return fftconvolve(xp, kr, mode="valid", axes=(0, 1))


def _conv_shift_add(xp, k, stride, dilation, ho, wo) -> np.ndarray:
    """Sum over kernel taps of the strided input slice under that tap times its Cin×Cout weights."""
    sh, sw = stride
    dh, dw = dilation
    out = np.zeros((ho, wo, k.shape[3]), dtype=np.float64)
    for a in range(k.shape[0]):
        for b in range(k.shape[1]):
            r0, c0 = a * dh, b * dw
            window = xp[r0 : r0 + sh * (ho - 1) + 1 : sh, c0 : c0 + sw * (wo - 1) + 1 : sw]
            out += window @ k[a, b]  # (ho, wo, Cin) @ (Cin, Cout)
    return out
