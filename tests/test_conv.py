"""cnnviz.conv.conv2d against independent references: scipy.signal.correlate2d,
scipy.ndimage, keras.layers.Conv2D, analytic cases and seed 001's numbers."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.signal import convolve2d, correlate2d

from cnnviz import conv, images, kernels
from cnnviz.conv import ConvError, conv2d, output_size, resolve_padding

SEED_X = np.array(
    [[3, 3, 2, 1, 0], [0, 0, 1, 3, 1], [3, 1, 2, 2, 3], [2, 0, 0, 2, 2], [2, 0, 0, 0, 1]]
)
SEED_K = np.array([[0, 1, 2], [2, 2, 0], [0, 1, 2]])


def test_seed_001_five_by_five_example():
    np.testing.assert_array_equal(conv2d(SEED_X, SEED_K), [[12, 12, 17], [10, 17, 19], [9, 6, 14]])


def test_seed_001_camera_box_9x9_shapes():
    cam = images.to_gray(images.sample_image("camera"))
    g = kernels.preset("uniform 9×9 (seed 001)")
    shapes = {mode: conv2d(cam, g, padding=mode).shape for mode in ("full", "same", "valid")}
    assert shapes == {"full": (520, 520), "same": (512, 512), "valid": (504, 504)}
    for mode in ("full", "same", "valid"):
        np.testing.assert_allclose(
            conv2d(cam, g, padding=mode), correlate2d(cam, g, mode=mode), atol=1e-6
        )


@pytest.mark.parametrize("mode", ["valid", "same", "full"])
@pytest.mark.parametrize("kshape", [(1, 1), (3, 3), (2, 4), (5, 3), (9, 9), (11, 11)])
def test_equals_correlate2d(mode, kshape):
    rng = np.random.default_rng(hash((mode, kshape)) % 2**32)
    x = rng.normal(size=(23, 19))
    k = rng.normal(size=kshape)
    # For even kernels scipy's "same" also puts the smaller half of the padding first,
    # exactly TensorFlow's SAME rule, so one comparison covers every case.
    np.testing.assert_allclose(conv2d(x, k, padding=mode), correlate2d(x, k, mode=mode), atol=1e-9)


def test_flip_is_true_convolution():
    rng = np.random.default_rng(5)
    x, k = rng.normal(size=(12, 14)), rng.normal(size=(3, 4))
    np.testing.assert_allclose(
        conv2d(x, k, padding="full", flip=True), convolve2d(x, k, mode="full"), atol=1e-9
    )


@settings(max_examples=60, deadline=None)
@given(
    h=st.integers(1, 20),
    w=st.integers(1, 20),
    kh=st.integers(1, 7),
    kw=st.integers(1, 7),
    mode=st.sampled_from(["valid", "same", "full"]),
    seed=st.integers(0, 2**16),
)
def test_hypothesis_equals_correlate2d(h, w, kh, kw, mode, seed):
    rng = np.random.default_rng(seed)
    x, k = rng.normal(size=(h, w)), rng.normal(size=(kh, kw))
    if mode == "valid" and (kh > h or kw > w):
        with pytest.raises(ConvError):
            conv2d(x, k, padding=mode)
        return
    np.testing.assert_allclose(conv2d(x, k, padding=mode), correlate2d(x, k, mode=mode), atol=1e-9)


def test_per_channel_equals_each_channel():
    rng = np.random.default_rng(2)
    x, k = rng.normal(size=(15, 16, 3)), rng.normal(size=(3, 3))
    out = conv2d(x, k, padding="same", stride=2)
    assert out.shape == (8, 8, 3)
    for c in range(3):
        np.testing.assert_allclose(
            out[..., c], conv2d(x[..., c], k, padding="same", stride=2), atol=1e-12
        )


@pytest.mark.parametrize(
    "pad_mode, np_mode",
    [("reflect", "reflect"), ("symmetric", "symmetric"), ("edge", "edge"), ("wrap", "wrap")],
)
@pytest.mark.parametrize("ksize", [3, 9])
def test_pad_modes_equal_explicit_numpy_padding(pad_mode, np_mode, ksize):
    rng = np.random.default_rng(7)
    x, k = rng.normal(size=(20, 18)), rng.normal(size=(ksize, ksize))
    p = ksize // 2
    ref = correlate2d(np.pad(x, p, mode=np_mode), k, mode="valid")
    np.testing.assert_allclose(conv2d(x, k, padding="same", pad_mode=pad_mode), ref, atol=1e-9)
    np.testing.assert_allclose(conv2d(x, k, padding=p, pad_mode=pad_mode), ref, atol=1e-9)


def test_reflect_and_symmetric_say_what_they_do():
    # One row "a b c d" = 1 2 3 4 padded by 3 on the left, read off an identity kernel that
    # picks each padded cell: numpy reflect "d c b|a b c d", symmetric "c b a|a b c d".
    x = np.array([[1.0, 2.0, 3.0, 4.0]])
    pick = np.array([[1.0]])
    reflect = conv2d(x, pick, padding=(0, 0, 3, 0), pad_mode="reflect")
    symmetric = conv2d(x, pick, padding=(0, 0, 3, 0), pad_mode="symmetric")
    np.testing.assert_array_equal(reflect, [[4, 3, 2, 1, 2, 3, 4]])
    np.testing.assert_array_equal(symmetric, [[3, 2, 1, 1, 2, 3, 4]])


@pytest.mark.parametrize("ksize", [3, 4, 9])
@pytest.mark.parametrize("stride, dilation", [(1, 1), (2, 1), (1, 2), (3, 2)])
@pytest.mark.parametrize("padding", ["same", "full", 2, (1, 3, 0, 2)])
def test_symmetric_equals_numpy_symmetric_then_correlate2d(ksize, stride, dilation, padding):
    # The reference: numpy.pad(mode="symmetric"), then scipy's valid correlation with the
    # dilated kernel, then every stride-th value.
    rng = np.random.default_rng(11)
    x, k = rng.normal(size=(21, 19)), rng.normal(size=(ksize, ksize))
    top, bottom, left, right = resolve_padding(
        x.shape, k.shape, stride=stride, padding=padding, dilation=dilation
    )
    kd = np.zeros(((ksize - 1) * dilation + 1,) * 2)
    kd[::dilation, ::dilation] = k
    xp = np.pad(x, [(top, bottom), (left, right)], mode="symmetric")
    ref = correlate2d(xp, kd, mode="valid")[::stride, ::stride]
    out = conv2d(x, k, stride=stride, padding=padding, dilation=dilation, pad_mode="symmetric")
    np.testing.assert_allclose(out, ref, atol=1e-9)


def test_symmetric_pads_a_single_row_and_more_than_the_image():
    x = np.array([[5.0, 7.0]])
    out = conv2d(x, np.ones((1, 1)), padding=(2, 2, 3, 3), pad_mode="symmetric")
    np.testing.assert_array_equal(out, np.pad(x, [(2, 2), (3, 3)], mode="symmetric"))


def test_explicit_asymmetric_padding_and_dilation_analytic():
    x = np.zeros((5, 5))
    x[2, 2] = 1.0
    k = np.arange(1, 10, dtype=float).reshape(3, 3)
    # Correlating an impulse with a dilated kernel places the flipped kernel, spread by 2.
    out = conv2d(x, k, padding=2, dilation=2)
    assert out.shape == (5, 5)
    np.testing.assert_array_equal(out[::2, ::2], k[::-1, ::-1])
    assert out[1::2].sum() == 0 and out[:, 1::2].sum() == 0
    out2 = conv2d(x, np.ones((1, 1)), padding=(1, 0, 0, 2))
    assert out2.shape == (6, 7) and out2[3, 2] == 1.0


def test_constant_image_and_zero_kernel_never_nan():
    flat = np.full((10, 10, 3), 128.0)
    assert np.all(conv2d(flat, kernels.preset("sobel x"), padding="valid") == 0)
    zero = conv2d(flat, np.zeros((3, 3)), padding="same")
    assert np.all(zero == 0) and not np.isnan(zero).any()


def test_output_size_formula():
    assert output_size(28, 3) == (26, "⌊(28 + 0 + 0 − 1·(3 − 1) − 1) / 1⌋ + 1 = 26")
    assert output_size(512, 9, padding="full")[0] == 520
    assert output_size(7, 3, stride=2, padding="same")[0] == 4
    assert output_size(224, 3, padding=1)[0] == 224
    assert output_size(5, 3, dilation=2)[0] == 1
    assert output_size(2, 5)[0] == 0


def test_same_padding_is_asymmetric_as_in_tensorflow():
    # n=6, k=3, s=2: out 3, total pad (3-1)*2+3-6 = 1 -> 0 on top, 1 at the bottom.
    assert resolve_padding((6, 6), (3, 3), stride=2, padding="same") == (0, 1, 0, 1)
    assert resolve_padding((5, 5), (4, 4), padding="same") == (1, 2, 1, 2)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"stride": 0}, "stride"),
        ({"dilation": -1}, "dilation"),
        ({"padding": "wide"}, "padding"),
        ({"padding": -1}, "non-negative"),
        ({"padding": (1, 2, 3)}, "padding"),
        ({"pad_mode": "zeros"}, "pad_mode"),
        ({"stride": True}, "stride"),
    ],
)
def test_bad_arguments_raise_conv_error(kwargs, match):
    with pytest.raises(ConvError, match=match):
        conv2d(np.ones((5, 5)), np.ones((3, 3)), **kwargs)


def test_bad_shapes_raise_conv_error():
    with pytest.raises(ConvError):
        conv2d(np.ones((5,)), np.ones((3, 3)))
    with pytest.raises(ConvError):
        conv2d(np.ones((5, 5, 2)), np.ones((3, 3, 3, 4)))
    with pytest.raises(ConvError, match="larger"):
        conv2d(np.ones((2, 2)), np.ones((3, 3)))
    with pytest.raises(ConvError):
        conv2d(np.array([["a"]]), np.ones((1, 1)))


# --------------------------------------------------------------------------------------------
# keras.layers.Conv2D (channels-last, no bias)
# --------------------------------------------------------------------------------------------

keras = pytest.importorskip("keras")
_LAYERS: dict = {}


def _keras_conv(
    x: np.ndarray, k: np.ndarray, stride: int, dilation: int, padding: str
) -> np.ndarray:
    key = (x.shape, k.shape, stride, dilation, padding)
    if key not in _LAYERS:  # build each layer configuration once
        layer = keras.layers.Conv2D(
            k.shape[3],
            k.shape[:2],
            strides=stride,
            dilation_rate=dilation,
            padding=padding,
            use_bias=False,
        )
        layer.build((1,) + x.shape)
        _LAYERS[key] = layer
    layer = _LAYERS[key]
    layer.set_weights([k.astype("float32")])
    return np.asarray(layer(x[None].astype("float32")))[0]


# TensorFlow's Conv2D does not allow stride > 1 together with dilation > 1.
GRID = [(s, 1) for s in (1, 2, 3)] + [(1, 2)]


@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("stride, dilation", GRID)
@pytest.mark.parametrize("hw, ks", [((13, 11), (3, 3)), ((10, 10), (2, 4)), ((9, 12), (5, 5))])
def test_equals_keras_conv2d(padding, stride, dilation, hw, ks):
    rng = np.random.default_rng(11)
    x = rng.normal(size=hw + (3,)).astype("float32")
    k = rng.normal(size=ks + (3, 4)).astype("float32")
    ref = _keras_conv(x, k, stride, dilation, padding)
    out = conv2d(x, k, stride=stride, dilation=dilation, padding=padding)
    assert out.shape == ref.shape
    np.testing.assert_allclose(out, ref, atol=1e-5, rtol=1e-5)


@settings(max_examples=25, deadline=None)
@given(
    h=st.integers(5, 12),
    w=st.integers(5, 12),
    cin=st.integers(1, 3),
    cout=st.integers(1, 3),
    k=st.integers(1, 4),
    sd=st.sampled_from(GRID),
    padding=st.sampled_from(["valid", "same"]),
    seed=st.integers(0, 2**16),
)
def test_hypothesis_equals_keras_conv2d(h, w, cin, cout, k, sd, padding, seed):
    stride, dilation = sd
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(h, w, cin)).astype("float32")
    kern = rng.normal(size=(k, k, cin, cout)).astype("float32")
    if padding == "valid" and (k - 1) * dilation + 1 > min(h, w):
        with pytest.raises(ConvError, match="larger"):
            conv2d(x, kern, stride=stride, dilation=dilation, padding=padding)
        return
    ref = _keras_conv(x, kern, stride, dilation, padding)
    np.testing.assert_allclose(
        conv2d(x, kern, stride=stride, dilation=dilation, padding=padding),
        ref,
        atol=1e-5,
        rtol=1e-5,
    )


# --------------------------------------------------------------------------------------------
# Hostile numbers (issue 21): one behaviour on every engine, refused before any allocation
# --------------------------------------------------------------------------------------------
# (kernel side, padding) that reach each engine: 3×3 same = ndimage, centred; 3×3 valid =
# ndimage on the padded copy; 9×9 (81 taps) = FFT; (3, 3, 1, 2) = shift-and-add.
ENGINES = [((3, 3), "same"), ((3, 3), "valid"), ((9, 9), "same"), ((3, 3, 1, 2), "valid")]


def _case(kshape):
    x = np.arange(144.0).reshape(12, 12)
    if len(kshape) == 4:
        x = x[..., None]
    return x, np.ones(kshape)


@pytest.mark.parametrize("kshape, padding", ENGINES)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_kernel_tap_is_refused_on_every_engine(kshape, padding, bad):
    x, k = _case(kshape)
    k[(0,) * k.ndim] = bad
    with pytest.raises(ConvError, match="finite numbers only.*1 NaN or infinite"):
        conv2d(x, k, padding=padding)


@pytest.mark.parametrize("kshape, padding", ENGINES)
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_pixel_is_refused_on_every_engine(kshape, padding, bad):
    x, k = _case(kshape)
    x[5, 5] = bad
    with pytest.raises(ConvError, match="`x` to hold finite numbers only"):
        conv2d(x, k, padding=padding)


@pytest.mark.parametrize("which", ["x", "kernel"])
def test_complex_input_is_refused_not_truncated(which):
    x, k = np.ones((6, 6)), np.ones((3, 3))
    args = {"x": x, "kernel": k}
    args[which] = args[which] + 1j
    with pytest.raises(ConvError, match=f"`{which}` to be real.*complex"):
        conv2d(args["x"], args["kernel"])


def test_boolean_arrays_are_refused():
    with pytest.raises(ConvError, match="numeric arrays"):
        conv2d(np.ones((5, 5), dtype=bool), np.ones((3, 3)))


def _peak_bytes(fn) -> int:
    """Peak Python/numpy allocation while fn runs (numpy reports its buffers to tracemalloc)."""
    import tracemalloc

    tracemalloc.start()
    try:
        fn()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


@pytest.mark.parametrize(
    "kwargs",
    [
        {"padding": 10**6},
        {"padding": (0, 10**9, 0, 0)},
        {"padding": "full", "dilation": 10**6},
        {"padding": "same", "dilation": (1, 10**7)},
        {"padding": (5000, 5000, 5000, 5000)},  # 10,005² = 100 M values: just over the cap
    ],
)
def test_huge_padding_or_dilation_is_refused_with_the_cap_before_allocating(kwargs):
    x = np.ones((5, 5))

    def run():
        with pytest.raises(ConvError, match=f"at most {conv.MAX_PADDED_VALUES:,} values"):
            conv2d(x, np.ones((3, 3)), **kwargs)

    assert _peak_bytes(run) < 1_000_000


def test_the_cap_is_on_the_padded_values(monkeypatch):
    # The bound is exact: with a cap of 100 values a 10×10 padded input works, 10×11 does not.
    monkeypatch.setattr(conv, "MAX_PADDED_VALUES", 100)
    x = np.arange(16.0).reshape(4, 4)
    np.testing.assert_allclose(conv2d(x, np.ones((1, 1)), padding=3), np.pad(x, 3), atol=0)
    with pytest.raises(ConvError, match="10×11 \\(110 values\\). Expected at most 100"):
        conv2d(x, np.ones((1, 1)), padding=(3, 3, 3, 4))
    with pytest.raises(ConvError, match="at most 100 values"):  # channels count too
        conv2d(np.ones((4, 4, 2)), np.ones((1, 1)), padding=3)


def test_huge_dilation_without_padding_is_a_clear_error():
    with pytest.raises(ConvError, match="larger than the padded input 5×5"):
        conv2d(np.ones((5, 5)), np.ones((3, 3)), dilation=10**9)


@pytest.mark.parametrize("kshape, padding", ENGINES)
def test_overflowing_result_is_a_clear_error_not_inf(kshape, padding):
    x, k = _case(kshape)
    with np.errstate(over="ignore", invalid="ignore"):
        with pytest.raises(ConvError, match="overflows float64"):
            conv2d(x + 255.0, k * 1e308, padding=padding)


def test_largest_finite_values_that_do_not_overflow_still_work():
    # 9 taps of 1e300 on a ones image: 9e300, finite, exact to float64's precision.
    out = conv2d(np.ones((5, 5)), np.full((3, 3), 1e300))
    np.testing.assert_allclose(out, np.full((3, 3), 9e300), rtol=1e-15)
