"""Named convolution kernels and a strict parser for typed kernels.

Every preset is a small float64 array meant for cross-correlation (what Keras' Conv2D and
`scipy.signal.correlate2d` compute). Kernels with "x"/"y" in the name follow seed 001's
Sobel convention: Gx = [[1, 0, -1], [2, 0, -2], [1, 0, -1]].
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np

__all__ = [
    "KernelError",
    "MAX_KERNEL_SIDE",
    "MAX_KERNEL_VALUE",
    "check_kernel",
    "preset_names",
    "preset",
    "preset_description",
    "gaussian",
    "box",
    "motion_blur",
    "parse_kernel",
    "format_kernel",
    "gabor_kernel",
    "gabor_bank",
]

#: Largest typed kernel side (odd or even sizes up to this are accepted).
MAX_KERNEL_SIDE = 15
#: Largest weight magnitude a typed or edited kernel may have. A 15×15 kernel of such weights
#: on 0–255 pixels sums to at most 225 · 255 · 1e6 ≈ 5.7e10: finite, and exact in float64 for
#: whole numbers. Weights like 1e308 would overflow float64 (and break every picture) instead.
MAX_KERNEL_VALUE = 1e6


class KernelError(ValueError):
    """A kernel could not be built or parsed; the message says what was expected."""


def gaussian(size: int = 9, sigma: float = 3.0) -> np.ndarray:
    """A normalised (size, size) Gaussian, as seed 001's `gauss_kernel` (sums to 1)."""
    if size < 1 or sigma <= 0:
        raise KernelError(f"Expected size >= 1 and sigma > 0. Received size={size}, sigma={sigma}.")
    r = (np.arange(size) - (size - 1) / 2.0) ** 2
    g = np.exp(-(r[:, None] + r[None, :]) / (2.0 * sigma**2))
    return g / g.sum()


def box(size: int = 3) -> np.ndarray:
    """A uniform (size, size) averaging kernel: seed 001's G_unif = ones / (kx * ky)."""
    if size < 1:
        raise KernelError(f"Expected size >= 1. Received size={size}.")
    return np.full((size, size), 1.0 / (size * size))


def motion_blur(size: int = 9) -> np.ndarray:
    """Averaging along the main diagonal: what a camera shaken diagonally records."""
    return np.eye(size) / size


_SOBEL_X = np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]], dtype=np.float64)
_PREWITT_X = np.array([[1, 0, -1], [1, 0, -1], [1, 0, -1]], dtype=np.float64)
_SCHARR_X = np.array([[3, 0, -3], [10, 0, -10], [3, 0, -3]], dtype=np.float64)

_PRESETS: dict[str, tuple[Callable[[], np.ndarray], str]] = {
    "identity": (
        lambda: np.array([[0, 0, 0], [0, 1, 0], [0, 0, 0]], dtype=np.float64),
        "Copies each pixel: the output equals the input (apart from the border).",
    ),
    "box blur 3×3": (lambda: box(3), "Averages each 3×3 neighbourhood: a mild blur."),
    "gaussian 5×5 (σ=1)": (
        lambda: gaussian(5, 1.0),
        "Weighted average, heavier at the centre: a smooth blur without box artefacts.",
    ),
    "sharpen": (
        lambda: np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]], dtype=np.float64),
        "Adds the difference from the neighbours back to the pixel: edges get crisper.",
    ),
    "sobel x": (
        lambda: _SOBEL_X.copy(),
        "Horizontal gradient (seed 001's Gx): responds to vertical edges. Sums to 0.",
    ),
    "sobel y": (
        lambda: _SOBEL_X.T.copy(),
        "Vertical gradient (seed 001's Gy): responds to horizontal edges. Sums to 0.",
    ),
    "prewitt x": (lambda: _PREWITT_X.copy(), "Like Sobel x with equal row weights."),
    "prewitt y": (lambda: _PREWITT_X.T.copy(), "Like Sobel y with equal column weights."),
    "scharr x": (lambda: _SCHARR_X.copy(), "A Sobel variant with better rotation symmetry."),
    "scharr y": (lambda: _SCHARR_X.T.copy(), "The vertical Scharr gradient."),
    "laplacian": (
        lambda: np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], dtype=np.float64),
        "Second derivative: lights up edges in every direction. Sums to 0.",
    ),
    "emboss": (
        lambda: np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]], dtype=np.float64),
        "A directional gradient plus the pixel itself: looks like a relief.",
    ),
    "outline": (
        lambda: np.array([[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]], dtype=np.float64),
        "Pixel minus its 8 neighbours: only outlines survive. Sums to 0.",
    ),
    "motion blur 9×9": (lambda: motion_blur(9), "Averages along a diagonal line."),
    "uniform 9×9 (seed 001)": (
        lambda: box(9),
        "Seed 001's local averaging kernel G_unif = ones((9, 9)) / 81.",
    ),
    "gaussian 9×9 σ=3 (seed 001)": (
        lambda: gaussian(9, 3.0),
        "Seed 001's 9×9 Gaussian blur kernel with σ = 3.",
    ),
}


def preset_names() -> list[str]:
    """Names of the preset kernels, in display order."""
    return list(_PRESETS)


def preset(name: str) -> np.ndarray:
    """A fresh copy of the named preset kernel as float64.

    Raises:
        KernelError: unknown name.
    """
    if name not in _PRESETS:
        raise KernelError(
            f"Unknown kernel preset {name!r}. Expected one of: {', '.join(_PRESETS)}."
        )
    return np.array(_PRESETS[name][0](), dtype=np.float64)


def preset_description(name: str) -> str:
    """One sentence on what the preset does, for the page."""
    return _PRESETS[name][1]


# A number: optional sign, digits with optional decimals or a leading-dot decimal, optional
# exponent; or a simple fraction such as 1/9. Nothing else is accepted (no eval, no names).
_NUMBER = re.compile(
    r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?(/[+]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?)?$"
)


def parse_kernel(text: str, *, max_side: int = MAX_KERNEL_SIDE) -> np.ndarray:
    """Parse a typed kernel strictly, without eval.

    Rows are separated by newlines or ';', values by spaces or commas; square brackets are
    ignored, so both "1 0 -1; 2 0 -2; 1 0 -1" and "[[1,0,-1],[2,0,-2],[1,0,-1]]" work.
    Simple fractions such as "1/9" are allowed.

    Returns:
        (rows, cols) float64 array.

    Raises:
        KernelError: empty text, ragged rows, a non-number, a value that overflows float64,
            silently underflows to 0 or exceeds MAX_KERNEL_VALUE, or a side larger than
            `max_side`.
    """
    if not isinstance(text, str):
        raise KernelError(f"Expected the kernel as text. Received {type(text).__name__}.")
    if len(text) > 20_000:
        raise KernelError("The kernel text is far too long. Expected at most 15×15 numbers.")
    # "[[1,2],[3,4]]" has its row breaks between "]" and "[": turn "] , [" into a row break.
    body = re.sub(r"\s*\]\s*,\s*\[\s*", ";", text.strip())
    body = body.replace("[", " ").replace("]", " ")
    lines = [ln.strip().strip(",") for ln in re.split(r"[;\n]", body)]
    lines = [ln for ln in lines if ln.strip()]
    if not lines:
        raise KernelError(
            "The kernel is empty. Expected rows of numbers such as '1 0 -1; 2 0 -2; 1 0 -1'."
        )
    rows: list[list[float]] = []
    for r, line in enumerate(lines, start=1):
        tokens = [t for t in re.split(r"[,\s]+", line) if t]
        row = []
        for tok in tokens:
            if not _NUMBER.match(tok):
                raise KernelError(
                    f"Row {r}: {tok[:20]!r} is not a number. Expected numbers such as 1, -0.5, 2e-3 or 1/9."
                )
            row.append(_token_value(tok, f"Row {r}"))
        rows.append(row)
    widths = {len(row) for row in rows}
    if len(widths) != 1:
        raise KernelError(
            f"Every row needs the same number of values. Received rows of lengths {[len(r) for r in rows]}."
        )
    kh, kw = len(rows), widths.pop()
    if kh > max_side or kw > max_side:
        raise KernelError(f"The kernel is {kh}×{kw}. Expected at most {max_side}×{max_side}.")
    return np.array(rows, dtype=np.float64)


def _nonzero(literal: str) -> bool:
    """Whether a number literal such as '0.00e5' or '3e-999' has a nonzero digit."""
    return any(ch in "123456789" for ch in re.split(r"[eE]", literal)[0])


def _token_value(tok: str, where: str) -> float:
    """One checked number: no overflow, no silent underflow to 0, within MAX_KERNEL_VALUE."""
    shown = repr(tok[:20])
    num, _, den = tok.partition("/")
    for part, role in ((num, "the number"), (den, "the denominator")):
        if not part:
            continue
        what = f"in {shown}, {role} {part[:20]}" if den else shown
        if not np.isfinite(float(part)):
            raise KernelError(
                f"{where}: {what} is too large for a float64 number (above about 1.8e308)"
                + (
                    ", so the fraction would silently become 0."
                    if role == "the denominator"
                    else "."
                )
            )
        if float(part) == 0.0 and _nonzero(part):
            raise KernelError(
                f"{where}: {what} is too small for a float64 number (below about 5e-324) and "
                "would silently become 0. Type 0 if you mean zero."
            )
    if den and float(den) == 0.0:
        raise KernelError(f"{where}: {shown} divides by zero.")
    value = float(num) / float(den) if den else float(num)
    if value == 0.0 and float(num) != 0.0:
        raise KernelError(
            f"{where}: {shown} is too small for a float64 number and would silently become 0."
        )
    if not abs(value) <= MAX_KERNEL_VALUE:  # also catches an overflowing fraction (inf)
        raise KernelError(
            f"{where}: {shown} is too large. Expected weights between −{MAX_KERNEL_VALUE:,.0f} "
            f"and {MAX_KERNEL_VALUE:,.0f}, so that the sums of products with pixel values "
            "stay finite and precise."
        )
    return value


def check_kernel(kernel: np.ndarray, *, max_side: int = MAX_KERNEL_SIDE) -> np.ndarray:
    """Validate a kernel from any source (a grid editor, a file): 2-D, real, finite, bounded.

    Returns:
        the kernel as a (rows, cols) float64 array.

    Raises:
        KernelError: what is wrong, and what is expected.
    """
    k = np.asarray(kernel)
    if k.dtype == bool or not np.issubdtype(k.dtype, np.number) or np.iscomplexobj(k):
        raise KernelError(f"Expected a kernel of real numbers. Received dtype {k.dtype}.")
    if k.ndim != 2 or min(k.shape) < 1:
        raise KernelError(f"Expected a 2-D kernel of rows and columns. Received shape {k.shape}.")
    if max(k.shape) > max_side:
        raise KernelError(
            f"The kernel is {k.shape[0]}×{k.shape[1]}. Expected at most {max_side}×{max_side}."
        )
    k = k.astype(np.float64)
    if not np.isfinite(k).all():
        raise KernelError("The kernel holds NaN or infinite values. Expected finite numbers.")
    if np.abs(k).max() > MAX_KERNEL_VALUE:
        raise KernelError(
            f"A weight of the kernel is {np.abs(k).max():.3g} in size. Expected weights between "
            f"−{MAX_KERNEL_VALUE:,.0f} and {MAX_KERNEL_VALUE:,.0f}, so that the sums of products "
            "with pixel values stay finite and precise."
        )
    return k


def format_kernel(kernel: np.ndarray, *, decimals: int = 4) -> str:
    """Format a 2-D kernel as text that `parse_kernel` reads back."""
    k = np.asarray(kernel, dtype=np.float64)
    fmt = []
    for row in k:
        fmt.append(" ".join(f"{v:.{decimals}g}" for v in row))
    return "\n".join(fmt)


# Gabor kernels and banks live in cnnviz.gabor (it imports cnnviz.conv, not this module, so
# there is no import cycle); re-exported so that `cnnviz.kernels.gabor_bank` works too.
from cnnviz.gabor import gabor_bank, gabor_kernel  # noqa: E402
