"""Step-by-step convolution and pooling (issue 4): traces equal Keras, the page steps correctly.

References: keras.layers.Conv2D (with bias), MaxPooling2D and AveragePooling2D, built once per
shape configuration and imported lazily, so collecting this module does not load TensorFlow
(other modules check that their pages do not import it). The page's own TensorFlow check runs
in a subprocess for the same reason.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from streamlit.testing.v1 import AppTest

from cnnviz import conv, images
from tests.apptest_util import imports_tensorflow

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "pages" / "steps.py"

# Seed 001's worked example, its kernel and its output (valid padding, stride 1).
SEED_X = np.array(
    [[3, 3, 2, 1, 0], [0, 0, 1, 3, 1], [3, 1, 2, 2, 3], [2, 0, 0, 2, 2], [2, 0, 0, 0, 1]]
)
SEED_K = np.array([[0, 1, 2], [2, 2, 0], [0, 1, 2]])
SEED_Z = np.array([[12, 12, 17], [10, 17, 19], [9, 6, 14]])
# Seed 001's max-pooling picture and its 2×2, stride-2 result.
SEED_POOL_X = np.array([[2, 3, 4, 0], [1, 5, 3, 2], [0, 4, 2, 3], [1, 0, 6, 1]])
SEED_POOL_Z = np.array([[5, 4], [4, 6]])

HYPOTHESIS = settings(
    max_examples=40,
    deadline=None,  # the first Keras call of a shape builds a layer
    derandomize=True,  # a fixed seed: the same cases on every run
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


# ------------------------------------------------------------------------------------------
# Keras references, one layer per shape configuration
# ------------------------------------------------------------------------------------------

_LAYERS: dict[tuple, object] = {}


def _keras():
    import keras  # noqa: PLC0415 - TensorFlow only for the references, and only when needed

    return keras


def keras_conv(x, k4, b, stride, padding, dilation) -> np.ndarray:
    """keras.layers.Conv2D with the given weights and bias, channels-last, float32."""
    key = ("conv", k4.shape, stride, padding, dilation)
    if key not in _LAYERS:
        layer = _keras().layers.Conv2D(
            k4.shape[3], k4.shape[:2], strides=stride, padding=padding, dilation_rate=dilation
        )
        layer.build((None, None, None, k4.shape[2]))
        _LAYERS[key] = layer
    layer = _LAYERS[key]
    layer.set_weights([k4.astype(np.float32), b.astype(np.float32)])
    return np.asarray(layer(x[None].astype(np.float32)))[0]


def keras_pool(x3, size, stride, padding, op) -> np.ndarray:
    """keras.layers.MaxPooling2D / AveragePooling2D, channels-last, float32."""
    key = (op, size, stride, padding)
    if key not in _LAYERS:
        cls = _keras().layers.MaxPooling2D if op == "max" else _keras().layers.AveragePooling2D
        _LAYERS[key] = cls(pool_size=size, strides=stride, padding=padding)
    return np.asarray(_LAYERS[key](x3[None].astype(np.float32)))[0]


def dyadic(rng: np.random.Generator, shape) -> np.ndarray:
    """Multiples of 1/8 in [−2, 2]: float32 sums of their products are exact."""
    return rng.integers(-16, 17, shape) / 8.0


# ------------------------------------------------------------------------------------------
# Convolution
# ------------------------------------------------------------------------------------------


class ConvCase(NamedTuple):
    h: int
    w: int
    cin: int
    cout: int
    kh: int
    kw: int
    stride: tuple[int, int]
    dilation: tuple[int, int]
    padding: str
    seed: int


@st.composite
def conv_cases(draw) -> ConvCase:
    padding = draw(st.sampled_from(["valid", "same"]))
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    # Keras's Conv2D raises for dilation > 1 together with stride > 1 ("`strides > 1` not
    # supported in conjunction with `dilation_rate > 1`"), so dilation is drawn at stride 1 only.
    if stride == (1, 1):
        dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    else:
        dilation = (1, 1)
    # VALID needs the dilated kernel to fit (an empty output is an error here).
    h = draw(st.integers((kh - 1) * dilation[0] + 1 if padding == "valid" else 1, 12))
    w = draw(st.integers((kw - 1) * dilation[1] + 1 if padding == "valid" else 1, 12))
    cin, cout = draw(st.integers(1, 3)), draw(st.integers(1, 2))
    return ConvCase(h, w, cin, cout, kh, kw, stride, dilation, padding, draw(st.integers(0, 2**31)))


# SAME with an odd total padding: TensorFlow puts the extra row/column at the bottom/right.
ASYMMETRIC_CONV = [
    ConvCase(6, 7, 2, 1, 2, 4, (1, 1), (1, 1), "same", 1),  # even kernels: pads (0, 1), (1, 2)
    ConvCase(6, 6, 3, 2, 3, 3, (2, 2), (1, 1), "same", 2),  # stride 2: total 1 -> (0, 1)
    ConvCase(5, 8, 1, 1, 2, 2, (1, 1), (1, 2), "same", 3),  # dilated columns: (0, 1), (1, 1)
]


def check_conv(case: ConvCase) -> None:
    rng = np.random.default_rng(case.seed)
    x = dyadic(rng, (case.h, case.w, case.cin))
    k4 = dyadic(rng, (case.kh, case.kw, case.cin, case.cout))
    b = dyadic(rng, (case.cout,))
    trace = conv.conv2d_steps(
        x, k4, bias=b, stride=case.stride, padding=case.padding, dilation=case.dilation
    )
    ref = keras_conv(x, k4, b, case.stride, case.padding, case.dilation)
    assert trace.output.shape == ref.shape
    np.testing.assert_allclose(trace.output, ref, atol=1e-5, rtol=0)
    # One step per output value, row-major, output channel last; each value is its own sum.
    values = np.array([s.value for s in trace]).reshape(ref.shape)
    np.testing.assert_allclose(values, ref, atol=1e-5, rtol=0)
    # The library's conv2d (another engine: shift-and-add) gives the same numbers.
    plain = conv.conv2d(x, k4, stride=case.stride, padding=case.padding, dilation=case.dilation)
    np.testing.assert_allclose(plain + b, ref, atol=1e-5, rtol=0)
    for k in {0, len(trace) // 2, len(trace) - 1}:
        s = trace[k]
        assert s.out == tuple(int(v) for v in np.unravel_index(k, ref.shape))
        # The window's cells are the padded input under the (dilated) taps.
        np.testing.assert_array_equal(s.inputs, trace.padded[np.ix_(s.rows, s.cols)])
        np.testing.assert_array_equal(s.weights, k4[:, :, :, s.out[2]])
        np.testing.assert_array_equal(s.products, s.inputs * s.weights)
        np.testing.assert_allclose(s.partial_sums, s.products.sum(axis=(0, 1)))
        assert s.value == pytest.approx(s.partial_sums.sum() + s.bias, abs=1e-9)
        assert s.window == (s.rows[0], s.cols[0])
        assert s.rows[0] == s.out[0] * case.stride[0]


@HYPOTHESIS
@given(conv_cases())
@example(ASYMMETRIC_CONV[0])
@example(ASYMMETRIC_CONV[2])
def test_conv_steps_equal_keras_conv2d(case: ConvCase) -> None:
    check_conv(case)


@pytest.mark.parametrize("case", ASYMMETRIC_CONV)
def test_conv_steps_equal_keras_with_asymmetric_same_padding(case: ConvCase) -> None:
    top, bottom, left, right = conv.resolve_padding(
        (case.h, case.w),
        (case.kh, case.kw),
        stride=case.stride,
        padding="same",
        dilation=case.dilation,
    )
    assert top != bottom or left != right, "this case must pad unevenly"
    assert bottom >= top and right >= left  # the odd pixel goes bottom/right, as in TensorFlow
    check_conv(case)


def test_conv_steps_reproduce_seed_001_example() -> None:
    trace = conv.conv2d_steps(SEED_X, SEED_K)
    np.testing.assert_array_equal(trace.output[:, :, 0], SEED_Z)
    np.testing.assert_array_equal(conv.conv2d(SEED_X, SEED_K), SEED_Z)
    assert len(trace) == 9
    assert trace[0].equation() == "3·0 + 3·1 + 2·2 + 0·2 + 0·2 + 1·0 + 3·0 + 1·1 + 2·2 = 12"
    assert trace[-1].equation().endswith("= 14")
    assert [s.value for s in trace] == SEED_Z.ravel().tolist()


def test_conv_step_equation_shows_bias_channels_and_long_sums() -> None:
    x = np.stack([SEED_X, 2 * SEED_X, np.zeros_like(SEED_X)], axis=2)
    k = np.repeat(SEED_K[:, :, None], 3, axis=2)
    s = conv.conv2d_steps(x, k, bias=-2.0)[0]
    # Seed 001's formula: per-channel sums, added over the channels, plus the bias.
    np.testing.assert_array_equal(s.partial_sums, [12, 24, 0])
    assert s.value == 34
    assert s.equation(1) == "6·0 + 6·1 + 4·2 + 0·2 + 0·2 + 2·0 + 6·0 + 2·1 + 4·2 = 24"
    assert s.equation(by_channel=True) == "12 + 24 + 0 + (−2) = 34"
    long = s.equation()  # 27 terms: shortened around "…"
    assert "…" in long and long.startswith("3·0 + 3·1") and long.endswith(" + (−2) = 34")


def test_conv_steps_2d_kernel_equals_conv2d() -> None:
    x = np.random.default_rng(0).integers(0, 10, (9, 8)).astype(float)
    k = np.array([[1.0, 0, -1], [2, 0, -2], [1, 0, -1]])
    for kwargs in (dict(padding="same", stride=2), dict(padding="valid", dilation=2)):
        trace = conv.conv2d_steps(x, k, **kwargs)
        np.testing.assert_allclose(trace.output[:, :, 0], conv.conv2d(x, k, **kwargs), atol=1e-12)


def test_conv_steps_bad_arguments_raise_clear_errors() -> None:
    with pytest.raises(conv.ConvError, match="Expected a kernel with 3 input channel"):
        conv.conv2d_steps(np.zeros((5, 5, 3)), np.ones((3, 3)))
    with pytest.raises(conv.ConvError, match="to fit in the padded input"):
        conv.conv2d_steps(np.zeros((3, 3)), np.ones((5, 5)))
    with pytest.raises(conv.ConvError, match="one bias per output channel"):
        conv.conv2d_steps(np.zeros((3, 3)), np.ones((2, 2)), bias=[1.0, 2.0])
    with pytest.raises(ValueError, match="Received"):
        conv.conv2d_steps(np.zeros((3, 3)), np.ones((2, 2)), stride=0)
    with pytest.raises(IndexError):
        conv.conv2d_steps(SEED_X, SEED_K)[9]


# ------------------------------------------------------------------------------------------
# Pooling
# ------------------------------------------------------------------------------------------


class PoolCase(NamedTuple):
    h: int
    w: int
    c: int
    size: tuple[int, int]
    stride: tuple[int, int]
    padding: str
    op: str
    seed: int


@st.composite
def pool_cases(draw) -> PoolCase:
    padding = draw(st.sampled_from(["valid", "same"]))
    size = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    # VALID needs the window to fit inside the input.
    h = draw(st.integers(size[0] if padding == "valid" else 1, 12))
    w = draw(st.integers(size[1] if padding == "valid" else 1, 12))
    c, op = draw(st.integers(1, 3)), draw(st.sampled_from(["max", "avg"]))
    return PoolCase(h, w, c, size, stride, padding, op, draw(st.integers(0, 2**31)))


ASYMMETRIC_POOL = [
    PoolCase(5, 5, 1, (2, 2), (2, 2), "same", "avg", 4),  # pads (0, 1, 0, 1)
    PoolCase(7, 6, 3, (4, 2), (1, 3), "same", "max", 5),  # pads (1, 2, 0, 0)
]


def check_pool(case: PoolCase) -> None:
    x = dyadic(np.random.default_rng(case.seed), (case.h, case.w, case.c))
    ref = keras_pool(x, case.size, case.stride, case.padding, case.op)
    args = dict(stride=case.stride, padding=case.padding, op=case.op)
    np.testing.assert_allclose(conv.pool2d(x, case.size, **args), ref, atol=1e-5, rtol=0)
    trace = conv.pool2d_steps(x, case.size, **args)
    np.testing.assert_allclose(trace.output, ref, atol=1e-5, rtol=0)
    values = np.array([s.value for s in trace]).reshape(ref.shape)
    np.testing.assert_allclose(values, ref, atol=1e-5, rtol=0)
    for k in {0, len(trace) // 2, len(trace) - 1}:
        s = trace[k]
        c = s.out[2]
        np.testing.assert_array_equal(s.inputs, trace.padded[np.ix_(s.rows, s.cols)][:, :, c])
        np.testing.assert_array_equal(s.inside, trace.inside[np.ix_(s.rows, s.cols)])
        assert s.count == s.inside.sum() >= 1  # every window holds a real cell
        if case.op == "max":
            # The winner is a real cell holding the window's largest real value.
            assert s.inside[s.winner] and s.inputs[s.winner] == s.value
            assert s.value == s.inputs[s.inside].max()
        else:
            assert s.winner is None
            assert s.value == pytest.approx(s.inputs[s.inside].mean())


@HYPOTHESIS
@given(pool_cases())
@example(ASYMMETRIC_POOL[0])
@example(ASYMMETRIC_POOL[1])
def test_pool_steps_equal_keras_pooling(case: PoolCase) -> None:
    check_pool(case)


@pytest.mark.parametrize("case", ASYMMETRIC_POOL)
def test_pool_steps_equal_keras_with_asymmetric_same_padding(case: PoolCase) -> None:
    top, bottom, left, right = conv.resolve_padding(
        (case.h, case.w), case.size, stride=case.stride, padding="same"
    )
    assert top != bottom or left != right, "this case must pad unevenly"
    check_pool(case)


def test_average_pooling_leaves_padding_out_of_the_count() -> None:
    x = np.arange(25.0).reshape(5, 5)
    out = conv.pool2d(x, 2, padding="same", op="avg")  # pads one row below, one column right
    assert out[2, 2] == 24.0  # the corner window holds one real cell
    assert out[0, 2] == (4 + 9) / 2  # the right edge windows hold two
    steps = conv.pool2d_steps(x, 2, padding="same", op="avg")
    assert steps[-1].count == 1 and steps[-1].equation() == "(24) / 1 = 24"


def test_pool_steps_reproduce_seed_001_max_pooling() -> None:
    np.testing.assert_array_equal(conv.pool2d(SEED_POOL_X, 2), SEED_POOL_Z)
    trace = conv.pool2d_steps(SEED_POOL_X, 2)
    np.testing.assert_array_equal(trace.output[:, :, 0], SEED_POOL_Z)
    assert [s.winner for s in trace] == [(1, 1), (0, 0), (0, 1), (1, 0)]
    assert trace[0].equation() == "max(2, 3, 1, 5) = 5"
    assert conv.pool2d(SEED_POOL_X, 2, op="avg").tolist() == [[2.75, 2.25], [1.25, 3.0]]


def test_pool_bad_arguments_raise_clear_errors() -> None:
    with pytest.raises(conv.ConvError, match='Expected "valid" or "same"'):
        conv.pool2d(SEED_POOL_X, 2, padding="full")
    with pytest.raises(conv.ConvError, match='Expected "max" or "avg"'):
        conv.pool2d_steps(SEED_POOL_X, 2, op="min")
    with pytest.raises(conv.ConvError, match="to fit in the padded input"):
        conv.pool2d(SEED_POOL_X, 5)


STEP_FUNCTIONS = {
    "conv2d_steps": lambda x: conv.conv2d_steps(x, np.ones((2, 2))),
    "pool2d max": lambda x: conv.pool2d(x, 2),
    "pool2d avg": lambda x: conv.pool2d(x, 2, op="avg"),
    "pool2d_steps": lambda x: conv.pool2d_steps(x, 2, op="avg"),
}


@pytest.mark.parametrize("name", list(STEP_FUNCTIONS))
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_inputs_are_refused(name, bad) -> None:
    # Max pooling would otherwise let a NaN win or lose depending on where it sits.
    x = SEED_POOL_X.astype(float)
    x[1, 2] = bad
    with pytest.raises(conv.ConvError, match="finite numbers only"):
        STEP_FUNCTIONS[name](x)


@pytest.mark.parametrize("name", list(STEP_FUNCTIONS))
def test_complex_inputs_are_refused(name) -> None:
    with pytest.raises(conv.ConvError, match="to be real.*complex"):
        STEP_FUNCTIONS[name](SEED_POOL_X + 1j)


def test_conv_steps_refuse_non_finite_or_complex_kernels_and_bias() -> None:
    with pytest.raises(conv.ConvError, match="`kernel` to hold finite"):
        conv.conv2d_steps(SEED_X, np.array([[1.0, np.nan], [0, 1]]))
    with pytest.raises(conv.ConvError, match="`kernel` to be real"):
        conv.conv2d_steps(SEED_X, np.ones((2, 2)) * 1j)
    with pytest.raises(conv.ConvError, match="`bias` to hold finite"):
        conv.conv2d_steps(SEED_X, np.ones((2, 2)), bias=np.inf)


def test_overflowing_steps_are_a_clear_error() -> None:
    with np.errstate(over="ignore", invalid="ignore"):
        with pytest.raises(conv.ConvError, match="overflows float64"):
            conv.conv2d_steps(SEED_X + 1.0, np.full((3, 3), 1e308))
        with pytest.raises(conv.ConvError, match="overflows float64"):
            conv.pool2d(np.full((4, 4), 1e308), 2, op="avg")
        with pytest.raises(conv.ConvError, match="overflows float64"):
            conv.pool2d_steps(np.full((4, 4), 1e308), 2, op="avg")
    # Max pooling of the largest floats is exact: nothing is added.
    np.testing.assert_array_equal(conv.pool2d(np.full((4, 4), 1e308), 2), np.full((2, 2), 1e308))


@pytest.mark.parametrize(
    "call",
    [
        lambda: conv.conv2d_steps(np.ones((3, 3)), np.ones((2, 2)), padding=10**6),
        lambda: conv.conv2d_steps(np.ones((3, 3)), np.ones((2, 2)), padding="full", dilation=10**6),
        lambda: conv.pool2d(np.ones((1, 10**8)), (1, 1)),
    ],
)
def test_huge_padding_or_dilation_is_refused_with_the_cap(call) -> None:
    with pytest.raises(conv.ConvError, match=f"at most {conv.MAX_PADDED_VALUES:,} values"):
        call()


def test_trace_size_is_bounded_before_it_is_built() -> None:
    # 1000×1000 windows of 3×3 × 8 filters = 72 M products: refused with the numbers that count.
    x = np.zeros((1002, 1002))
    with pytest.raises(
        conv.ConvError, match=f"72,000,000 numbers.*at most {conv.MAX_TRACE_VALUES:,}"
    ):
        conv.conv2d_steps(x, np.ones((3, 3, 1, 8)))
    # 281×281 windows of 20×20 cells: 31.6 M numbers for a 300×300 input.
    with pytest.raises(conv.ConvError, match="31,584,400 numbers"):
        conv.pool2d_steps(np.zeros((300, 300)), 20, stride=1)
    # pool2d keeps no trace, so the same input is fine there.
    assert conv.pool2d(np.zeros((300, 300)), 20, stride=1).shape == (281, 281)


# ------------------------------------------------------------------------------------------
# The Step-by-step page
# ------------------------------------------------------------------------------------------


def run_page(**state) -> AppTest:
    at = AppTest.from_file(str(PAGE), default_timeout=120)
    for key, value in state.items():
        at.session_state[f"steps.{key}"] = value
    return at.run()


def shown_value(at: AppTest) -> float:
    """The value the page shows for the current step."""
    assert not at.exception, at.exception
    return float(at.metric[0].value.replace("−", "-"))


def figure(at: AppTest, title_start: str) -> dict:
    """The plotly figure whose title starts with `title_start`, as JSON."""
    for el in at.get("plotly_chart"):
        spec = json.loads(el.proto.spec)
        if spec["layout"].get("title", {}).get("text", "").startswith(title_start):
            return spec
    raise AssertionError(f"no figure titled {title_start!r}")


def z_of(spec: dict) -> np.ndarray:
    """A heat map's z, decoding plotly's base64 typed arrays."""
    z = spec["data"][0]["z"]
    if isinstance(z, dict):
        shape = [int(v) for v in str(z["shape"]).split(",")]
        return np.frombuffer(base64.b64decode(z["bdata"]), dtype=z["dtype"]).reshape(shape)
    return np.array(z, dtype=float)


def test_page_loads_on_the_seed_example() -> None:
    at = run_page()
    assert shown_value(at) == 12
    assert any(
        "3·0 + 3·1 + 2·2 + 0·2 + 0·2 + 1·0 + 3·0 + 1·1 + 2·2 = 12" in c.value for c in at.code
    )
    assert any("⌊(5 + 0 + 0 − 1·(3 − 1) − 1) / 1⌋ + 1 = 3" in c.value for c in at.code)
    out = z_of(figure(at, "Output"))
    assert out[0, 0] == 12 and np.isnan(out.ravel()[1:]).all()  # the output fills in
    np.testing.assert_array_equal(z_of(figure(at, "Input")), SEED_X)
    np.testing.assert_array_equal(z_of(figure(at, "Kernel")), SEED_K)


def test_stepping_forward_and_back_shows_the_library_values() -> None:
    at = run_page()
    at.button(key="steps.next").click().run()
    assert at.session_state["steps.step"] == 2 and shown_value(at) == SEED_Z[0, 1]
    at.button(key="steps.next").click().run()
    assert shown_value(at) == SEED_Z[0, 2]
    at.button(key="steps.prev").click().run()
    assert at.session_state["steps.step"] == 2 and shown_value(at) == SEED_Z[0, 1]
    for k in (5, 9, 1):
        at.slider(key="steps.step").set_value(k).run()
        assert shown_value(at) == SEED_Z.ravel()[k - 1]
        rect = [s for s in figure(at, "Input")["layout"]["shapes"] if s["line"]["color"] == "black"]
        i, j = divmod(k - 1, 3)
        assert (rect[0]["y0"], rect[0]["x0"]) == (i - 0.5, j - 0.5)  # the window is outlined
    at.slider(key="steps.step").set_value(9).run()
    np.testing.assert_array_equal(z_of(figure(at, "Output")), SEED_Z)


def check_steps(at: AppTest, trace: conv.StepTrace) -> None:
    """The page has as many steps as the library and shows its values: at the step it kept
    after the switch, and at the last step."""
    assert not at.exception, at.exception
    n = len(trace)
    k = at.session_state["steps.step"]
    assert 1 <= k <= n
    assert shown_value(at) == pytest.approx(trace[k - 1].value, abs=1e-9)
    if n == 1:  # a single output value: no slider, one step
        assert not [w for w in at.slider if w.key == "steps.step"]
        return
    assert at.slider(key="steps.step").max == n
    at.slider(key="steps.step").set_value(n).run()
    assert shown_value(at) == pytest.approx(trace[n - 1].value, abs=1e-9)


def test_switching_padding_stride_and_conv_or_pool() -> None:
    at = run_page(step=4)
    at.radio(key="steps.padding").set_value("same").run()
    check_steps(at, conv.conv2d_steps(SEED_X, SEED_K, padding="same"))
    at.slider(key="steps.stride").set_value(2).run()
    check_steps(at, conv.conv2d_steps(SEED_X, SEED_K, padding="same", stride=2))
    at.radio(key="steps.op").set_value("Max pooling").run()
    check_steps(at, conv.pool2d_steps(SEED_X, 2, stride=2, padding="same"))
    # 5 cells, window 2, stride 2: one padded row and column, both after, and the page says so.
    note = next(c.value for c in at.caption if c.value.startswith("SAME"))
    assert "rows: (3 − 1)·2 + 2 − 5 = 1 → 0 on top, 1 at the bottom" in note
    assert "**asymmetric**" in note
    at.radio(key="steps.op").set_value("Average pooling").run()
    at.slider(key="steps.pool_stride").set_value(1).run()
    check_steps(at, conv.pool2d_steps(SEED_X, 2, stride=1, padding="same", op="avg"))
    at.radio(key="steps.padding").set_value("valid").run()
    check_steps(at, conv.pool2d_steps(SEED_X, 2, stride=1, op="avg"))
    at.radio(key="steps.op").set_value("Convolution").run()
    at.slider(key="steps.dilation").set_value(2).run()
    at.number_input(key="steps.bias").set_value(-15.0).run()
    check_steps(at, conv.conv2d_steps(SEED_X, SEED_K, dilation=2, bias=-15.0))  # 1×1 output
    at.radio(key="steps.padding").set_value("same").run()
    check_steps(at, conv.conv2d_steps(SEED_X, SEED_K, padding="same", dilation=2, bias=-15.0))


def test_seed_pooling_example_sets_the_controls_and_outlines_the_winner() -> None:
    at = run_page()
    at.selectbox(key="steps.input").set_value("Seed 001: the 4×4 max-pooling example").run()
    assert at.radio(key="steps.op").value == "Max pooling"
    got = []
    for k in range(1, 5):
        at.slider(key="steps.step").set_value(k).run()
        got.append(shown_value(at))
    assert got == SEED_POOL_Z.ravel().tolist()
    window = figure(at, "Window")
    np.testing.assert_array_equal(z_of(window), [[2, 3], [6, 1]])  # the last window
    winner = [s for s in window["layout"]["shapes"] if s["line"]["color"] == "black"][0]
    assert (winner["y0"], winner["x0"]) == (0.5, -0.5)  # the 6 at row 1, column 0
    np.testing.assert_array_equal(z_of(figure(at, "Output")), SEED_POOL_Z)


def test_rgb_input_shows_per_channel_partial_sums_and_relu() -> None:
    at = run_page(
        input="Random small integers",
        rand_side=5,
        rand_seed=3,
        rand_channels=3,
        padding="same",
        bias=-40.0,
        relu=True,
    )
    x = np.random.default_rng(3).integers(0, 10, (5, 5, 3)).astype(float)
    trace = conv.conv2d_steps(
        x, np.repeat(SEED_K[:, :, None], 3, axis=2), padding="same", bias=-40.0
    )
    for k in (1, 13, 25):
        at.slider(key="steps.step").set_value(k).run()
        assert shown_value(at) == max(trace[k - 1].value, 0.0)
        text = "\n".join(c.value for c in at.code)
        s = trace[k - 1]
        for c, name in enumerate("RGB"):
            assert f"{name}: {s.equation(c)}" in text
        assert "sum: " + s.equation(by_channel=True) in text
        assert "ReLU(" in text


def test_digit_sized_image_hides_dense_numbers() -> None:
    at = run_page(input="An image at digit size (28×28)")
    at.slider(key="steps.step").set_value(400).run()
    small = images.resize(images.sample_image("camera"), (28, 28))
    x = np.round(images.to_gray(small))
    assert shown_value(at) == pytest.approx(conv.conv2d_steps(x, SEED_K)[399].value, abs=1e-9)
    spec = figure(at, "Input")
    assert not spec["data"][0].get("texttemplate")  # too dense for numbers: hover shows them
    assert z_of(spec).shape == (28, 28)


def test_play_moves_one_step_per_rerun_and_errors_are_messages() -> None:
    at = run_page()
    at.toggle(key="steps.play").set_value(True).run()
    assert at.session_state["steps.step"] == 2
    at.run()
    assert at.session_state["steps.step"] == 3 and shown_value(at) == SEED_Z.ravel()[2]
    at.toggle(key="steps.play").set_value(False).run()
    at.selectbox(key="steps.preset").set_value("uniform 9×9 (seed 001)").run()
    assert not at.exception
    assert "to fit in the padded input" in at.error[0].value


def test_page_imports_no_tensorflow() -> None:
    # A fresh interpreter: this module itself loads TensorFlow for the Keras references.
    setup = (
        "at.run()\n"
        "at.radio(key='steps.op').set_value('Max pooling').run()\n"
        "at.selectbox(key='steps.input').set_value('An image at digit size (28×28)')"
    )
    assert not imports_tensorflow("steps.py", setup)
