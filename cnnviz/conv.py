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

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = [
    "ConvError",
    "PadSpec",
    "conv2d",
    "output_size",
    "resolve_padding",
    "pad_input",
    "Step",
    "StepTrace",
    "conv2d_steps",
    "pool2d",
    "pool2d_steps",
    "MAX_PADDED_VALUES",
    "MAX_TRACE_VALUES",
]

#: Most values a padded input may hold (2**26 = 67,108,864, 512 MiB as float64). Padding and
#: dilation are typed by users, so without a bound `padding=10**6` would ask numpy for terabytes;
#: a 40-megapixel grey image (the upload cap) with its padding still fits.
MAX_PADDED_VALUES = 2**26
#: Most numbers a step-by-step trace may hold (its products array, 2**24 = 16,777,216, 128 MiB):
#: a trace keeps every product of every window, so it is meant for small inputs.
MAX_TRACE_VALUES = 2**24

PadSpec = str | int | tuple[int, int] | tuple[int, int, int, int]
# numpy.pad's names: "reflect" mirrors without repeating the edge pixel (d c b|a b c d),
# "symmetric" repeats it (d c b a|a b c d, scipy.ndimage's "reflect").
PadMode = Literal["constant", "reflect", "symmetric", "edge", "wrap"]
_PAD_MODES = ("constant", "reflect", "symmetric", "edge", "wrap")
# From this many taps the FFT engine beats ndimage on 2 cores (benchmarks/kernels.py on 512²
# RGB: 7×7 ndimage 22 ms vs FFT 30 ms; 9×9 ndimage 40 ms vs FFT 22 ms).
_FFT_MIN_TAPS = 64
# scipy.ndimage's names for numpy's pad modes.
_NDIMAGE_MODE = {
    "constant": "constant",
    "reflect": "mirror",
    "symmetric": "reflect",
    "edge": "nearest",
    "wrap": "grid-wrap",
}


class ConvError(ValueError):
    """Invalid convolution arguments; the message says what was expected and received."""


def _real_finite(a: np.ndarray, name: str) -> np.ndarray:
    """Refuse complex, non-numeric and non-finite arrays; return `a` as float64.

    One behaviour for every engine: without this check a NaN kernel tap vanished on the
    ndimage path but spread over the whole output on the FFT path, an inf pixel did the same,
    and complex input silently lost its imaginary part.
    """
    a = np.asarray(a)
    if np.issubdtype(a.dtype, np.complexfloating):
        raise ConvError(
            f"Expected `{name}` to be real. Received a complex array (dtype {a.dtype}); "
            f"convolve its .real and .imag parts separately."
        )
    if a.dtype == bool or not np.issubdtype(a.dtype, np.number):
        raise ConvError(f"Expected `{name}` to be a real numeric array. Received dtype {a.dtype}.")
    a = a.astype(np.float64, copy=False)
    finite = np.isfinite(a)
    if not finite.all():
        bad = int(finite.size - np.count_nonzero(finite))
        raise ConvError(
            f"Expected `{name}` to hold finite numbers only. Received {bad} NaN or infinite "
            f"value(s); replace them (for example with np.nan_to_num) first."
        )
    return a


def _check_padded(shape: tuple[int, ...], pads: tuple[int, int, int, int]) -> tuple[int, int]:
    """(Hp, Wp) of the padded input, refused before anything is allocated when too large."""
    hp, wp = shape[0] + pads[0] + pads[1], shape[1] + pads[2] + pads[3]
    values = hp * wp * (int(np.prod(shape[2:])) if len(shape) > 2 else 1)
    if values > MAX_PADDED_VALUES:
        raise ConvError(
            f"The padded input would be {hp:,}×{wp:,} ({values:,} values). Expected at most "
            f"{MAX_PADDED_VALUES:,} values: use less padding or dilation, or a smaller image."
        )
    return hp, wp


def _check_output(out: np.ndarray) -> np.ndarray:
    """Finite inputs can still overflow float64 (1e308 · 255); say so instead of returning inf."""
    if not np.isfinite(out).all():
        raise ConvError(
            "The result overflows float64 (the products of the kernel and the image exceed "
            "about 1.8e308). Use smaller kernel values or a smaller image range."
        )
    return out


def _pair(value: int | tuple[int, int] | list[int], name: str) -> tuple[int, int]:
    if isinstance(value, bool):
        raise ConvError(
            f"Invalid value for argument `{name}`. Expected an int or a pair of ints. Received {value!r}."
        )
    if isinstance(value, int | np.integer):
        pair = (int(value), int(value))
    else:
        try:
            pair = tuple(int(v) for v in value)  # type: ignore[union-attr]
        except (TypeError, ValueError) as err:
            raise ConvError(
                f"Invalid value for argument `{name}`. Expected an int or a pair of ints. Received {value!r}."
            ) from err
        if len(pair) != 2:
            raise ConvError(
                f"Invalid value for argument `{name}`. Expected a pair. Received {value!r}."
            )
    if min(pair) < 1:
        raise ConvError(
            f"Invalid value for argument `{name}`. Expected a strictly positive value. Received {name}={value!r}."
        )
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
    raise ConvError(
        f'Invalid value for argument `padding`. Expected "valid", "same", "full", an int or (top, bottom, left, right). Received {padding!r}.'
    )


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
            raise ConvError(
                f"Invalid value for argument `padding`. Expected 2 or 4 ints. Received {padding!r}."
            )
    if min(pads) < 0:
        raise ConvError(
            f"Invalid value for argument `padding`. Expected non-negative amounts. Received {padding!r}."
        )
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
        raise ConvError(
            f"Expected positive sizes. Received n={n}, k={k}, stride={stride}, dilation={dilation}."
        )
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


def pad_input(
    x: np.ndarray, pads: tuple[int, int, int, int], pad_mode: str = "constant", cval: float = 0.0
) -> np.ndarray:
    """Pad the two spatial axes of (H, W) or (H, W, C) with numpy's modes."""
    if pad_mode not in _PAD_MODES:
        raise ConvError(
            f"Invalid value for argument `pad_mode`. Expected one of {_PAD_MODES}. Received {pad_mode!r}."
        )
    top, bottom, left, right = pads
    width = [(top, bottom), (left, right)] + [(0, 0)] * (x.ndim - 2)
    if not any(pads):
        return x
    if pad_mode == "constant":
        return np.pad(x, width, mode="constant", constant_values=cval)
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
        pad_mode: how padded pixels are filled, with numpy.pad's names: "constant" (zeros),
            "reflect" (mirror, edge pixel once: d c b|a b c d), "symmetric" (mirror, edge pixel
            repeated: d c b a|a b c d, scipy.ndimage's "reflect"), "edge", "wrap".
        flip: True for convolution with reversal (kernel rotated 180°).

    Returns:
        float64 array of the output shape above.
    """
    x = np.asarray(x)
    k = np.asarray(kernel)
    if not np.issubdtype(x.dtype, np.number) or not np.issubdtype(k.dtype, np.number):
        raise ConvError(
            f"Expected numeric arrays. Received x of dtype {x.dtype} and kernel of dtype {k.dtype}."
        )
    x, k = _real_finite(x, "x"), _real_finite(k, "kernel")
    if x.ndim not in (2, 3):
        raise ConvError(f"Expected x of shape (H, W) or (H, W, C). Received shape {x.shape}.")
    if k.ndim not in (2, 4):
        raise ConvError(
            f"Expected a kernel of shape (kh, kw) or (kh, kw, Cin, Cout). Received shape {k.shape}."
        )
    if k.ndim == 4 and (x.ndim != 3 or k.shape[2] != x.shape[2]):
        raise ConvError(
            f"A (kh, kw, Cin, Cout) kernel needs x of shape (H, W, Cin). Received x {x.shape} and kernel {k.shape}."
        )
    if min(x.shape[:2]) < 1 or min(k.shape) < 1:
        raise ConvError(f"Expected non-empty arrays. Received x {x.shape} and kernel {k.shape}.")
    if flip:
        k = k[::-1, ::-1]
    sh, sw = _pair(stride, "stride")
    dh, dw = _pair(dilation, "dilation")
    pads = resolve_padding(
        x.shape[:2], k.shape[:2], stride=(sh, sw), padding=padding, dilation=(dh, dw)
    )
    kh_eff, kw_eff = (k.shape[0] - 1) * dh + 1, (k.shape[1] - 1) * dw + 1
    if pad_mode not in _PAD_MODES:
        raise ConvError(
            f"Invalid value for argument `pad_mode`. Expected one of {_PAD_MODES}. Received {pad_mode!r}."
        )
    taps = k.shape[0] * k.shape[1]
    centred = (
        kh_eff % 2 == 1
        and kw_eff % 2 == 1
        and pads == (kh_eff // 2, kh_eff // 2, kw_eff // 2, kw_eff // 2)
        and max(pads) < min(x.shape[:2])
    )
    # Both checks come before any allocation: a huge padding or dilation is refused, not tried.
    hp, wp = _check_padded(x.shape, pads)
    if hp < kh_eff or wp < kw_eff:
        raise ConvError(
            f"The kernel (effective size {kh_eff}×{kw_eff} with dilation) is larger than the padded "
            f"input {hp}×{wp}. Use more padding, a smaller kernel or less dilation."
        )
    if k.ndim == 2 and taps < _FFT_MIN_TAPS and centred:
        # Centred padding: ndimage pads internally with the same rule, no copy needed.
        out = _ndimage_correlate(x, _dilate(k, dh, dw), _NDIMAGE_MODE[pad_mode])
        return _check_output(np.ascontiguousarray(out[::sh, ::sw]))
    xp = pad_input(x, pads, pad_mode)
    ho = (xp.shape[0] - kh_eff) // sh + 1
    wo = (xp.shape[1] - kw_eff) // sw + 1
    if k.ndim == 4:
        return _check_output(_conv_shift_add(xp, k, (sh, sw), (dh, dw), ho, wo))
    kd = _dilate(k, dh, dw)
    if taps >= _FFT_MIN_TAPS:
        full = _fft_valid(xp, kd)
    else:
        # Correlate the padded input, then keep only windows that lie fully inside it.
        r0, c0 = kd.shape[0] // 2, kd.shape[1] // 2
        full = _ndimage_correlate(xp, kd, "constant")[
            r0 : r0 + xp.shape[0] - kd.shape[0] + 1, c0 : c0 + xp.shape[1] - kd.shape[1] + 1
        ]
    out = full[: sh * (ho - 1) + 1 : sh, : sw * (wo - 1) + 1 : sw]
    return _check_output(np.ascontiguousarray(out))


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


# --------------------------------------------------------------------------------------------
# Step-by-step traces: every output value with the numbers that made it (the Step-by-step page)
# --------------------------------------------------------------------------------------------

PoolOp = Literal["max", "avg"]


@dataclass(frozen=True, eq=False)
class Step:
    """One output value of a convolution or pooling, with every number that made it.

    Tap (a, b) of the window sits at padded-input cell (rows[a], cols[b]).

    Attributes:
        index: position in the trace (row-major over the output, output channel last).
        op: "conv", "max" or "avg".
        out: (row, col, channel) of this value in the output.
        window: (row, col) of the window's top-left tap in the padded input.
        rows: the padded-input rows of the kh tap rows (spaced by the dilation).
        cols: the padded-input columns of the kw tap columns.
        inputs: the cells under the taps: (kh, kw, Cin) for conv, (kh, kw) for pooling.
        inside: (kh, kw) bool, False where a tap lies on padding rather than on the input.
        weights: conv only, the kernel for this output channel, (kh, kw, Cin).
        products: conv only, inputs · weights element-wise, (kh, kw, Cin).
        partial_sums: conv only, the sum of the products per input channel, (Cin,).
        bias: the bias added (0 for pooling).
        value: the output value: Σ products + bias, the max, or the average.
        winner: max pooling only, the tap (a, b) holding the largest real cell.
        count: how many cells enter the value (pooling leaves padded cells out).
    """

    index: int
    op: str
    out: tuple[int, int, int]
    window: tuple[int, int]
    rows: tuple[int, ...]
    cols: tuple[int, ...]
    inputs: np.ndarray
    inside: np.ndarray
    weights: np.ndarray | None
    products: np.ndarray | None
    partial_sums: np.ndarray | None
    bias: float
    value: float
    winner: tuple[int, int] | None
    count: int

    def equation(
        self, channel: int | None = None, *, by_channel: bool = False, max_terms: int = 12
    ) -> str:
        """The arithmetic written out, e.g. "3·0 + 3·1 + 2·2 + … = 12" or "max(2, 3, 1, 5) = 5".

        Args:
            channel: conv only: write out one input channel's partial sum.
            by_channel: conv only: the per-channel partial sums plus the bias, "5 + 7 + 2 = 14".
            max_terms: longer sums show their first and last terms around "…".
        """
        if self.op == "conv":
            assert self.products is not None and self.partial_sums is not None
            assert self.weights is not None
            if by_channel:
                terms = [_num(v, paren=True) for v in self.partial_sums]
            else:
                chans = range(self.inputs.shape[2]) if channel is None else [channel]
                terms = [
                    f"{_num(self.inputs[a, b, c])}·{_num(self.weights[a, b, c], paren=True)}"
                    for c in chans
                    for a in range(self.inputs.shape[0])
                    for b in range(self.inputs.shape[1])
                ]
            if channel is not None:
                return f"{_join(terms, ' + ', max_terms)} = {_num(self.partial_sums[channel])}"
            bias = f" + {_num(self.bias, paren=True)}" if self.bias != 0 else ""
            return f"{_join(terms, ' + ', max_terms)}{bias} = {_num(self.value)}"
        # Pooling: only the real cells take part; padded taps are left out (TensorFlow's rule).
        cells = [_num(v) for v in self.inputs[self.inside]]
        if self.op == "max":
            return f"max({_join(cells, ', ', max_terms)}) = {_num(self.value)}"
        return f"({_join(cells, ' + ', max_terms)}) / {self.count} = {_num(self.value)}"


def _num(v: float, *, paren: bool = False) -> str:
    """A number as a student writes it: 12, 0.5, −3 (in brackets after a '·' or '+')."""
    s = f"{float(v):.4g}".replace("-", "−")
    if s in ("−0", "0"):
        s = "0"
    return f"({s})" if paren and s.startswith("−") else s


def _join(terms: list[str], sep: str, max_terms: int) -> str:
    if len(terms) <= max_terms:
        return sep.join(terms)
    head = max(1, max_terms - 2)
    return sep.join([*terms[:head], "…", *terms[-2:]])


class StepTrace(Sequence[Step]):
    """All steps of one convolution or pooling: a sequence of `Step`, built on access.

    The numbers are computed once, vectorised, when the trace is made; `trace[k]` only
    slices them, so a 28×28 trace costs a few milliseconds and a step almost nothing.

    Attributes:
        op: "conv", "max" or "avg".
        padded: the padded input, (Hp, Wp, C); padded cells hold 0.
        inside: (Hp, Wp) bool, True on the real input cells.
        pads: (top, bottom, left, right) padding.
        size: (kh, kw) taps of the kernel or pooling window.
        stride: (sh, sw); dilation: (dh, dw) (always (1, 1) for pooling).
        kernel: conv only, (kh, kw, Cin, Cout); bias: conv only, (Cout,).
        output: (H', W', Cout) for conv, (H', W', C) for pooling; step k is
            output.flat[k] (row-major, channel last).
    """

    def __init__(
        self,
        *,
        op: str,
        padded: np.ndarray,
        inside: np.ndarray,
        pads: tuple[int, int, int, int],
        size: tuple[int, int],
        stride: tuple[int, int],
        dilation: tuple[int, int],
        patches: np.ndarray,
        output: np.ndarray,
        kernel: np.ndarray | None = None,
        bias: np.ndarray | None = None,
        products: np.ndarray | None = None,
        partial: np.ndarray | None = None,
        winner: np.ndarray | None = None,
        count: np.ndarray | None = None,
    ) -> None:
        self.op = op
        self.padded = padded
        self.inside = inside
        self.pads = pads
        self.size = size
        self.stride = stride
        self.dilation = dilation
        self.kernel = kernel
        self.bias = bias
        self.output = output
        self._patches = patches  # (H', W', kh, kw, C)
        self._products = products  # conv: (H', W', kh, kw, Cin, Cout)
        self._partial = partial  # conv: (H', W', Cin, Cout)
        self._winner = winner  # max: (H', W', C) flat tap index
        self._count = count  # (H', W') real cells per window
        self._inside_taps = _gather(inside, self._tap_rows(), self._tap_cols())  # (H', W', kh, kw)

    def __len__(self) -> int:
        return self.output.size

    def __getitem__(self, k):  # type: ignore[override]
        if isinstance(k, slice):
            return [self[i] for i in range(*k.indices(len(self)))]
        k = int(k)
        if k < 0:
            k += len(self)
        if not 0 <= k < len(self):
            raise IndexError(f"Step {k} is out of range. Expected 0 ≤ k < {len(self)}.")
        i, j, m = (int(v) for v in np.unravel_index(k, self.output.shape))
        (kh, kw), (sh, sw), (dh, dw) = self.size, self.stride, self.dilation
        rows = tuple(i * sh + a * dh for a in range(kh))
        cols = tuple(j * sw + b * dw for b in range(kw))
        inside = self._inside_taps[i, j]
        common = dict(
            index=k,
            op=self.op,
            out=(i, j, m),
            window=(rows[0], cols[0]),
            rows=rows,
            cols=cols,
            inside=inside,
        )
        if self.op == "conv":
            assert self.kernel is not None and self.bias is not None
            assert self._products is not None and self._partial is not None
            return Step(
                **common,
                inputs=self._patches[i, j],
                weights=self.kernel[:, :, :, m],
                products=self._products[i, j, :, :, :, m],
                partial_sums=self._partial[i, j, :, m],
                bias=float(self.bias[m]),
                value=float(self.output[i, j, m]),
                winner=None,
                count=kh * kw * self._patches.shape[-1],
            )
        winner = None
        if self._winner is not None:
            a, b = divmod(int(self._winner[i, j, m]), kw)
            winner = (a, b)
        assert self._count is not None
        return Step(
            **common,
            inputs=self._patches[i, j, :, :, m],
            weights=None,
            products=None,
            partial_sums=None,
            bias=0.0,
            value=float(self.output[i, j, m]),
            winner=winner,
            count=int(self._count[i, j]),
        )

    def _tap_rows(self) -> np.ndarray:
        """(H', kh) padded-input row of every tap row of every window row."""
        return _tap_index(self.output.shape[0], self.size[0], self.stride[0], self.dilation[0])

    def _tap_cols(self) -> np.ndarray:
        return _tap_index(self.output.shape[1], self.size[1], self.stride[1], self.dilation[1])


def _tap_index(n_out: int, k: int, stride: int, dilation: int) -> np.ndarray:
    """(n_out, k): window i's tap a sits at i·stride + a·dilation."""
    return (np.arange(n_out) * stride)[:, None] + np.arange(k)[None, :] * dilation


def _gather(a: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """All windows at once: (Hp, Wp, ...) -> (H', W', kh, kw, ...) by fancy indexing."""
    return a[rows[:, None, :, None], cols[None, :, None, :]]


def _as_channels(x: np.ndarray, name: str = "x") -> np.ndarray:
    """Validate an image (real, finite, non-empty) and return it as float64 (H, W, C)."""
    x = _real_finite(x, name)
    if x.ndim not in (2, 3) or min(x.shape) < 1:
        raise ConvError(
            f"Expected `{name}` of shape (H, W) or (H, W, C), non-empty. Received shape {x.shape}."
        )
    return x[:, :, None] if x.ndim == 2 else x


def _windows(
    x3: np.ndarray,
    size: tuple[int, int],
    stride: tuple[int, int],
    padding: PadSpec,
    dilation: tuple[int, int],
    what: str,
    trace_channels: int | None = 1,
) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int, int], int, int]:
    """Pad the input and work out the output size: (padded, inside mask, pads, H', W').

    `trace_channels` is the number of output channels a trace keeps per window cell (Cout for
    conv2d_steps, 1 for pool2d_steps); None for pool2d, which keeps no trace.
    """
    pads = resolve_padding(x3.shape[:2], size, stride=stride, padding=padding, dilation=dilation)
    hp, wp = _check_padded(x3.shape, pads)
    k_eff = [(k - 1) * d + 1 for k, d in zip(size, dilation, strict=True)]
    if hp < k_eff[0] or wp < k_eff[1]:
        raise ConvError(
            f"Expected the {what} (effective size {k_eff[0]}×{k_eff[1]}) to fit in the padded input. "
            f"Received a padded input of {hp}×{wp}: use 'same' padding or a smaller {what}."
        )
    ho = (hp - k_eff[0]) // stride[0] + 1
    wo = (wp - k_eff[1]) // stride[1] + 1
    # A trace keeps every window's cells (and, for conv, their products): bound it up front.
    values = ho * wo * size[0] * size[1] * x3.shape[2] * (trace_channels or 0)
    if values > MAX_TRACE_VALUES:
        raise ConvError(
            f"A step-by-step trace of this {what} would hold {values:,} numbers "
            f"({ho}×{wo} windows of {size[0]}×{size[1]}×{x3.shape[2]}"
            + (f", {trace_channels} filters" if trace_channels > 1 else "")
            + f"). Expected at most {MAX_TRACE_VALUES:,}: use a smaller input, a larger stride "
            f"or conv2d / pool2d for the result alone."
        )
    padded = pad_input(x3, pads)
    inside = pad_input(np.ones(x3.shape[:2], dtype=bool), pads)
    return padded, inside, pads, ho, wo


def conv2d_steps(
    x: np.ndarray,
    kernel: np.ndarray,
    *,
    bias: float | np.ndarray = 0.0,
    stride: int | tuple[int, int] = 1,
    padding: PadSpec = "valid",
    dilation: int | tuple[int, int] = 1,
) -> StepTrace:
    """Convolution (Keras's, i.e. cross-correlation with zero padding) one output value at a time.

    Seed 001: Z[i1, i2, m] = Σk1 Σk2 Σn W[k1, k2, n, m] · U[i1 + k1, i2 + k2, n] + b[m],
    with the window at i·stride and tap k at k·dilation.

    Input shape / kernel shape / output shape:
        (H, W) or (H, W, 1) with (kh, kw) -> (H', W', 1)
        (H, W, Cin) with (kh, kw, Cin) -> (H', W', 1): one filter over all channels
        (H, W, Cin) with (kh, kw, Cin, Cout) -> (H', W', Cout), equal to keras Conv2D

    Args:
        x: the input.
        kernel: the weights, shaped as above.
        bias: a number, or one per output channel (Cout,).
        stride: step between windows, an int or (sh, sw).
        padding: "valid", "same" (TensorFlow's rule), "full", an int or (top, bottom, left, right).
        dilation: gap between kernel taps, an int or (dh, dw).

    Returns:
        A `StepTrace`: len = H'·W'·Cout steps in row-major order, output channel last;
        `trace.output` is the (H', W', Cout) result.
    """
    x3 = _as_channels(x)
    k = np.asarray(kernel)
    if not np.issubdtype(k.dtype, np.number) or k.ndim not in (2, 3, 4) or min(k.shape) < 1:
        raise ConvError(
            f"Expected a numeric kernel of shape (kh, kw), (kh, kw, Cin) or (kh, kw, Cin, Cout). Received shape {k.shape}, dtype {k.dtype}."
        )
    k = _real_finite(k, "kernel")
    # Every kernel becomes (kh, kw, Cin, Cout), the Conv2D layout.
    k4 = k.reshape(k.shape[0], k.shape[1], *(k.shape[2:] + (1,) * (4 - k.ndim)))
    if k4.shape[2] != x3.shape[2]:
        raise ConvError(
            f"The kernel's input channels must match the image's. Expected a kernel with {x3.shape[2]} "
            f"input channel(s). Received x of shape {np.shape(x)} and kernel of shape {k.shape}."
        )
    b = _real_finite(bias, "bias")
    b = np.broadcast_to(b, (k4.shape[3],)) if b.ndim == 0 else b
    if b.shape != (k4.shape[3],):
        raise ConvError(
            f"Expected one bias per output channel, shape ({k4.shape[3]},). Received shape {b.shape}."
        )
    stride2, dilation2 = _pair(stride, "stride"), _pair(dilation, "dilation")
    size = (k4.shape[0], k4.shape[1])
    padded, inside, pads, ho, wo = _windows(
        x3, size, stride2, padding, dilation2, "kernel", trace_channels=k4.shape[3]
    )
    # Cut out every window at once: (H', W', kh, kw, Cin).
    patches = _gather(
        padded,
        _tap_index(ho, size[0], stride2[0], dilation2[0]),
        _tap_index(wo, size[1], stride2[1], dilation2[1]),
    )
    # Multiply each window by each filter, element by element: (H', W', kh, kw, Cin, Cout).
    products = patches[..., None] * k4
    # Add up over the window per input channel, then over the channels, then add the bias.
    partial = products.sum(axis=(2, 3))
    output = _check_output(partial.sum(axis=2) + b)
    return StepTrace(
        op="conv",
        padded=padded,
        inside=inside,
        pads=pads,
        size=size,
        stride=stride2,
        dilation=dilation2,
        patches=patches,
        output=output,
        kernel=k4,
        bias=np.array(b),
        products=products,
        partial=partial,
    )


def _pool_args(
    x, size, stride, padding, op
) -> tuple[np.ndarray, tuple[int, int], tuple[int, int], str]:
    x3 = _as_channels(x)
    size2 = _pair(size, "size")
    stride2 = size2 if stride is None else _pair(stride, "stride")
    if not isinstance(padding, str) or padding.lower() not in ("valid", "same"):
        raise ConvError(
            f'Invalid value for argument `padding`. Expected "valid" or "same". Received {padding!r}.'
        )
    if op not in ("max", "avg"):
        raise ConvError(
            f'Invalid value for argument `op`. Expected "max" or "avg". Received {op!r}.'
        )
    return x3, size2, stride2, padding.lower()


def pool2d(
    x: np.ndarray,
    size: int | tuple[int, int] = 2,
    *,
    stride: int | tuple[int, int] | None = None,
    padding: str = "valid",
    op: PoolOp = "max",
) -> np.ndarray:
    """Max or average pooling, as keras MaxPooling2D / AveragePooling2D compute it.

    SAME padding follows TensorFlow: output = ⌈n / stride⌉, the odd padded pixel goes
    bottom/right, and padded cells never win a max nor count in an average.

    Input shape / output shape:
        (H, W) -> (H', W'); (H, W, C) -> (H', W', C), every channel pooled separately.

    Args:
        x: the input.
        size: the pooling window, an int or (kh, kw).
        stride: step between windows; None means the window size (Keras's default).
        padding: "valid" or "same".
        op: "max" or "avg".

    Returns:
        float64 array of the output shape above.
    """
    x3, size2, stride2, padding = _pool_args(x, size, stride, padding, op)
    padded, inside, _, ho, wo = _windows(
        x3, size2, stride2, padding, (1, 1), "pooling window", trace_channels=None
    )
    (sh, sw) = stride2
    out = np.full((ho, wo, x3.shape[2]), -np.inf if op == "max" else 0.0)
    count = np.zeros((ho, wo, 1))
    # Shift and reduce: one strided slice per window tap, padded cells masked out.
    for a in range(size2[0]):
        for b in range(size2[1]):
            sl = (slice(a, a + sh * (ho - 1) + 1, sh), slice(b, b + sw * (wo - 1) + 1, sw))
            real = inside[sl][..., None]
            if op == "max":
                out = np.maximum(out, np.where(real, padded[sl], -np.inf))
            else:
                out += padded[sl]  # padded cells hold 0 and add nothing
                count += real
    if op == "avg":
        out = _check_output(out / count)  # divide by the real cells only, as TensorFlow does
    return out[:, :, 0] if np.ndim(x) == 2 else out


def pool2d_steps(
    x: np.ndarray,
    size: int | tuple[int, int] = 2,
    *,
    stride: int | tuple[int, int] | None = None,
    padding: str = "valid",
    op: PoolOp = "max",
) -> StepTrace:
    """`pool2d` one output value at a time; max pooling records which cell won.

    Returns:
        A `StepTrace` of H'·W'·C steps, row-major, channel last; `trace.output` is (H', W', C).
    """
    x3, size2, stride2, padding = _pool_args(x, size, stride, padding, op)
    padded, inside, pads, ho, wo = _windows(x3, size2, stride2, padding, (1, 1), "pooling window")
    rows, cols = _tap_index(ho, size2[0], stride2[0], 1), _tap_index(wo, size2[1], stride2[1], 1)
    # Every window at once, and which of its taps lie on real cells: (H', W', kh, kw[, C]).
    patches = _gather(padded, rows, cols)
    real = _gather(inside, rows, cols)
    count = real.sum(axis=(2, 3))
    flat = patches.reshape(ho, wo, -1, x3.shape[2])
    real_flat = real.reshape(ho, wo, -1, 1)
    winner = None
    if op == "max":
        # The winner is the first largest real cell in row-major order; padding never wins.
        masked = np.where(real_flat, flat, -np.inf)
        winner = masked.argmax(axis=2)
        output = np.take_along_axis(masked, winner[:, :, None, :], axis=2)[:, :, 0, :]
    else:
        output = _check_output(flat.sum(axis=2) / count[..., None])
    return StepTrace(
        op=op,
        padded=padded,
        inside=inside,
        pads=pads,
        size=size2,
        stride=stride2,
        dilation=(1, 1),
        patches=patches,
        output=output,
        winner=winner,
        count=count,
    )
