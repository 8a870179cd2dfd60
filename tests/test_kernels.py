"""cnnviz.kernels: presets and the strict kernel parser."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnviz import kernels
from cnnviz.kernels import KernelError, parse_kernel


@pytest.mark.parametrize("name", kernels.preset_names())
def test_presets_are_finite_2d_and_fresh_copies(name):
    k = kernels.preset(name)
    assert k.ndim == 2 and np.isfinite(k).all() and k.dtype == np.float64
    k[...] = 99  # mutating a returned preset must not change the library's copy
    assert not np.all(kernels.preset(name) == 99)
    assert kernels.preset_description(name)


def test_required_presets_exist():
    names = " ".join(kernels.preset_names())
    for required in (
        "identity",
        "box blur",
        "gaussian",
        "sharpen",
        "sobel x",
        "sobel y",
        "prewitt",
        "scharr",
        "laplacian",
        "emboss",
        "outline",
        "motion blur",
        "uniform 9×9",
        "9×9 σ=3",
    ):
        assert required in names


def test_seed_kernels():
    np.testing.assert_allclose(kernels.preset("uniform 9×9 (seed 001)"), np.ones((9, 9)) / 81)
    np.testing.assert_array_equal(kernels.preset("sobel x"), [[1, 0, -1], [2, 0, -2], [1, 0, -1]])
    np.testing.assert_array_equal(kernels.preset("sobel y"), [[1, 2, 1], [0, 0, 0], [-1, -2, -1]])
    g = kernels.preset("gaussian 9×9 σ=3 (seed 001)")
    assert g.shape == (9, 9) and abs(g.sum() - 1) < 1e-12 and g[4, 4] == g.max()
    # Separable Gaussian: the outer product of the 1-D profile, exp(-r²/2σ²).
    r = np.arange(9) - 4.0
    one = np.exp(-(r**2) / 18.0)
    np.testing.assert_allclose(g, np.outer(one, one) / np.outer(one, one).sum())


def test_edge_kernels_sum_to_zero_blurs_to_one():
    for name in ("sobel x", "sobel y", "laplacian", "outline", "prewitt x", "scharr y"):
        assert abs(kernels.preset(name).sum()) < 1e-12
    for name in ("box blur 3×3", "gaussian 5×5 (σ=1)", "motion blur 9×9", "identity"):
        assert abs(kernels.preset(name).sum() - 1) < 1e-12


@pytest.mark.parametrize(
    "text, expected",
    [
        ("1 0 -1; 2 0 -2; 1 0 -1", [[1, 0, -1], [2, 0, -2], [1, 0, -1]]),
        ("[[1,0,-1],[2,0,-2],[1,0,-1]]", [[1, 0, -1], [2, 0, -2], [1, 0, -1]]),
        ("1/9 1/9\n1/9 1/9", [[1 / 9, 1 / 9], [1 / 9, 1 / 9]]),
        ("  .5, -2e-1 ,3\n", [[0.5, -0.2, 3]]),
        ("7", [[7]]),
    ],
)
def test_parse_kernel_accepts(text, expected):
    np.testing.assert_allclose(parse_kernel(text), expected)


@pytest.mark.parametrize(
    "text, match",
    [
        ("", "empty"),
        ("   \n ; ", "empty"),
        ("1 2; 3", "same number"),
        ("1 2; x 3", "not a number"),
        ("__import__('os').system('touch /tmp/pwned')", "not a number"),
        ("1 nan", "not a number"),
        ("1 inf", "not a number"),
        ("1e999 1", "too large for a float64 number"),
        ("1/0", "divides by zero"),
        ("\n".join(" ".join("1" for _ in range(16)) for _ in range(16)), "at most 15"),
        ("1 " * 16, "at most 15"),
        ("1" * 30000, "too long"),
    ],
)
def test_parse_kernel_rejects(text, match):
    with pytest.raises(KernelError, match=match):
        parse_kernel(text)


def test_parse_kernel_rejects_non_text():
    with pytest.raises(KernelError):
        parse_kernel(None)  # type: ignore[arg-type]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.lists(st.integers(-1000, 1000), min_size=1, max_size=15), min_size=1, max_size=15)
)
def test_format_then_parse_round_trips(rows):
    width = len(rows[0])
    rows = [(r * width)[:width] for r in rows]
    k = np.array(rows, dtype=np.float64) / 8.0
    np.testing.assert_allclose(parse_kernel(kernels.format_kernel(k, decimals=12)), k)


@settings(max_examples=80, deadline=None)
@given(st.text(max_size=200))
def test_parse_kernel_never_raises_anything_but_kernel_error(text):
    try:
        k = parse_kernel(text)
    except KernelError:
        return
    assert np.isfinite(k).all() and k.ndim == 2


# --------------------------------------------------------------------------------------------
# Numbers that overflow, underflow or would overflow an image's sums (issue 21)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, match",
    [
        ("1e308 -1e308", "'1e308' is too large. Expected weights between −1,000,000 and 1,000,000"),
        ("1000001", "between −1,000,000 and 1,000,000"),
        ("1/1e999", "the denominator 1e999 is too large.*fraction would silently become 0"),
        ("1e999/2", "the number 1e999 is too large"),
        ("1e-999", "too small for a float64 number.*silently become 0. Type 0"),
        ("1/1e-999", "the denominator 1e-999 is too small"),
        ("1e-300/1e300", "too small for a float64 number and would silently become 0"),
        ("1e300/1e-300", "too large. Expected weights between"),
        ("4e6/2", "too large"),
    ],
)
def test_parse_kernel_refuses_overflow_and_silent_underflow(text, match):
    with pytest.raises(KernelError, match=match):
        parse_kernel(text)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("1e6 -1e6", [[1e6, -1e6]]),
        ("0e-999 0.000", [[0.0, 0.0]]),  # a zero typed as zero is not an underflow
        ("1e-300/1e-300", [[1.0]]),
        ("5e-324", [[5e-324]]),  # the smallest subnormal is a real, nonzero float64
        ("2e6/4", [[5e5]]),
    ],
)
def test_parse_kernel_accepts_the_edges(text, expected):
    np.testing.assert_array_equal(parse_kernel(text), expected)


@settings(max_examples=200, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_every_float_in_bounds_parses_exactly_and_others_are_refused(v):
    # repr() gives the shortest text that reads back as the same float64.
    text = repr(v)
    if abs(v) <= kernels.MAX_KERNEL_VALUE:
        assert parse_kernel(text)[0, 0] == v
    else:
        with pytest.raises(KernelError, match="too large"):
            parse_kernel(text)


def test_bounded_kernel_on_any_uint8_image_cannot_overflow():
    # The reason for the bound, checked: the largest allowed 15×15 kernel on white pixels.
    from cnnviz.conv import conv2d

    k = parse_kernel("\n".join(" ".join(["1e6"] * 15) for _ in range(15)))
    out = conv2d(np.full((20, 20), 255.0), k)
    assert np.isfinite(out).all() and out.max() == 225 * 255 * 1e6


def test_check_kernel_validates_kernels_from_any_source():
    k = kernels.check_kernel(np.array([[1, 2], [3, 4]], dtype=np.int64))
    assert k.dtype == np.float64 and k.tolist() == [[1, 2], [3, 4]]
    for bad, match in [
        (np.array([[1.0, np.nan]]), "NaN or infinite"),
        (np.array([[np.inf]]), "NaN or infinite"),
        (np.array([[1e308, -1e308]]), "1e\\+308 in size. Expected weights between"),
        (np.array([[1j]]), "real numbers"),
        (np.array([[True]]), "real numbers"),
        (np.array(["1"]), "real numbers"),
        (np.ones(3), "2-D"),
        (np.ones((0, 3)), "2-D"),
        (np.ones((16, 3)), "at most 15×15"),
    ]:
        with pytest.raises(KernelError, match=match):
            kernels.check_kernel(bad)
