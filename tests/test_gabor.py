"""cnnviz.gabor against scikit-image and scipy, a grating property test, and the Gabor page."""

import base64
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.signal import convolve2d
from skimage.filters import gabor as sk_gabor
from skimage.filters import gabor_kernel as sk_gabor_kernel
from streamlit.testing.v1 import AppTest

from cnnviz import conv, datasets, gabor, images, kernels
from tests.apptest_util import assert_clean, imports_tensorflow, page


def _image(h: int = 40, w: int = 53, seed: int = 0) -> np.ndarray:
    """A smooth ramp plus noise: structure at every scale, not symmetric, float64."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    return 100.0 * rng.random((h, w)) + 2.0 * xx - 1.5 * yy


def _skimage_bank(x, freqs, thetas, *, sigma=None, mode="reflect", cval=0.0, **kw) -> np.ndarray:
    """The reference: skimage.filters.gabor in a loop, real + 1j * imag."""
    out = np.empty((len(freqs), len(thetas), *x.shape), dtype=np.complex128)
    for i, f in enumerate(freqs):
        for j, t in enumerate(thetas):
            re, im = sk_gabor(x, f, t, sigma_x=sigma, sigma_y=sigma, mode=mode, cval=cval, **kw)
            out[i, j] = re + 1j * im
    return out


def _rel_err(a: np.ndarray, ref: np.ndarray) -> float:
    return float(np.abs(a - ref).max() / np.abs(ref).max())


# --------------------------------------------------------------------------------------------
# Kernels
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "frequency, theta, kw",
    [
        (0.46, 1.5, {"sigma": 2.5}),
        (0.1, 0.3, {}),
        (0.02, 2.0, {"bandwidth": 1.5}),
        (0.2, np.pi / 4, {"sigma_x": 2.0, "sigma_y": 4.0, "n_stds": 2, "offset": 0.7}),
    ],
)
def test_kernel_is_skimages(frequency, theta, kw):
    ours = gabor.gabor_kernel(frequency, theta, **kw)
    sk_kw = dict(kw)
    if "sigma" in sk_kw:
        sk_kw["sigma_x"] = sk_kw["sigma_y"] = sk_kw.pop("sigma")
    ref = sk_gabor_kernel(frequency, theta, **sk_kw)
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("frequency, bandwidth", [(0.05, 1.0), (0.3, 0.5), (0.12, 2.0)])
def test_sigma_from_bandwidth_is_skimages_rule(frequency, bandwidth):
    sigma = gabor.sigma_from_bandwidth(frequency, bandwidth)
    ref = sk_gabor_kernel(frequency, 0.4, bandwidth=bandwidth)
    ours = sk_gabor_kernel(frequency, 0.4, sigma_x=sigma, sigma_y=sigma)
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-15)


def test_bank_kernels_centres_every_kernel_in_the_largest_footprint():
    freqs, thetas = [0.05, 0.3], [0.0, np.pi / 4]
    bank = gabor.bank_kernels(freqs, thetas)
    big = sk_gabor_kernel(0.05, 0.0)
    assert bank.shape == (2, 2, *big.shape)
    small = sk_gabor_kernel(0.3, np.pi / 4)
    r0, c0 = (big.shape[0] - small.shape[0]) // 2, (big.shape[1] - small.shape[1]) // 2
    np.testing.assert_array_equal(
        bank[1, 1, r0 : r0 + small.shape[0], c0 : c0 + small.shape[1]], small
    )
    assert np.abs(bank[1, 1]).sum() == pytest.approx(np.abs(small).sum())


def test_even_thetas_cover_half_a_turn():
    np.testing.assert_allclose(gabor.even_thetas(4), [0, np.pi / 4, np.pi / 2, 3 * np.pi / 4])


# --------------------------------------------------------------------------------------------
# The bank equals skimage.filters.gabor
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["reflect", "constant"])
@pytest.mark.parametrize(
    "freqs, thetas, sigma, shape",
    [
        ([0.46], [1.5], 2.5, (40, 53)),  # the seed's widget defaults
        ([0.1, 0.25, 0.4], [0.0, 0.5, np.pi / 2, 2.6], None, (40, 53)),  # sizes differ
        ([0.02, 0.3], [0.2, 1.1], 1.5, (40, 53)),
        ([0.015], [0.0, np.pi / 4], None, (29, 36)),  # very low frequency: 227×227 kernel
        ([0.01], [2.0], 4.0, (40, 53)),  # very low frequency, small σ: stripes wider than σ
    ],
)
def test_bank_equals_skimage(freqs, thetas, sigma, shape, mode):
    x = _image(*shape)
    ours = gabor.gabor_bank(x, freqs, thetas, sigma=sigma, mode=mode)
    ref = _skimage_bank(x, freqs, thetas, sigma=sigma, mode=mode)
    assert ours.shape == (len(freqs), len(thetas), *x.shape)
    assert ours.dtype == np.complex128
    assert _rel_err(ours, ref) <= 1e-6


@pytest.mark.parametrize("mode", gabor.MODES)
@pytest.mark.parametrize("engine", ["fft", "direct"])
def test_every_mode_and_engine_equals_skimage(mode, engine):
    x = _image(31, 24, seed=3)
    freqs, thetas = [0.15, 0.45], [0.3, 2.0]
    kw = {"n_stds": 2.5, "offset": 0.4, "bandwidth": 1.4}
    ours = gabor.gabor_bank(x, freqs, thetas, mode=mode, cval=7.0, engine=engine, **kw)
    ref = _skimage_bank(x, freqs, thetas, mode=mode, cval=7.0, **kw)
    assert _rel_err(ours, ref) <= 1e-6


@pytest.mark.parametrize(
    "mode, boundary", [("reflect", "symm"), ("wrap", "wrap"), ("constant", "fill")]
)
def test_kernel_far_wider_than_the_image_equals_scipy_signal(mode, boundary):
    # A 227×227 kernel on 20×27: the border extension repeats the image many times. Here
    # skimage.filters.gabor is no reference: scipy.ndimage's n-D convolve (scipy 1.17) returns
    # uninitialised memory near the border once the kernel's half-width reaches 4× the image
    # side. scipy.signal.convolve2d extends correctly for any kernel size (scipy PR #16134).
    x = _image(20, 27)
    g = sk_gabor_kernel(0.015, 0.0)
    ref = convolve2d(x, g, mode="same", boundary=boundary)
    assert _rel_err(gabor.gabor_response(x, 0.015, 0.0, mode=mode), ref) <= 1e-6


@pytest.mark.parametrize("mode", ["reflect", "constant"])
@pytest.mark.parametrize("engine", ["fft", "direct"])
def test_elongated_windows_equal_skimage(mode, engine):
    # sigma_x != sigma_y: the kernel is not separable, so the FFT engine takes its 2-D path.
    x = _image(36, 45, seed=5)
    freqs, thetas = [0.08, 0.3], [0.4, 2.0]
    ours = gabor.gabor_bank(
        x, freqs, thetas, sigma_x=2.0, sigma_y=5.0, offset=0.3, mode=mode, engine=engine
    )
    ref = np.empty_like(ours)
    for i, f in enumerate(freqs):
        for j, t in enumerate(thetas):
            re, im = sk_gabor(x, f, t, sigma_x=2.0, sigma_y=5.0, offset=0.3, mode=mode)
            ref[i, j] = re + 1j * im
    assert _rel_err(ours, ref) <= 1e-6


def test_float32_image_gives_complex64_close_to_skimage():
    x = _image().astype(np.float32)
    ours = gabor.gabor_bank(x, [0.2], [0.7])
    assert ours.dtype == np.complex64
    re, im = sk_gabor(x, 0.2, 0.7)
    assert _rel_err(ours[0, 0].astype(np.complex128), re + 1j * im.astype(np.float64)) <= 1e-4


def test_integer_image_is_filtered_as_float64():
    x = np.round(_image()).clip(0, 255).astype(np.uint8)
    np.testing.assert_array_equal(
        gabor.gabor_bank(x, [0.2], [0.7]), gabor.gabor_bank(x.astype(np.float64), [0.2], [0.7])
    )


def test_response_is_the_single_filter_bank():
    x = _image()
    one = gabor.gabor_response(x, 0.3, 1.0, sigma=2.0, mode="constant")
    re, im = sk_gabor(x, 0.3, 1.0, sigma_x=2.0, sigma_y=2.0, mode="constant")
    assert _rel_err(one, re + 1j * im) <= 1e-6


def test_batch_equals_one_image_at_a_time():
    xs = np.stack([_image(20, 22, seed=s) for s in range(3)])
    batch = gabor.gabor_bank_batch(xs, [0.1, 0.4], [0.0, 1.0])
    assert batch.shape == (3, 2, 2, 20, 22)
    for i in range(3):
        np.testing.assert_allclose(
            batch[i], gabor.gabor_bank(xs[i], [0.1, 0.4], [0.0, 1.0]), atol=1e-9
        )


def test_kernels_module_reexports_the_bank():
    assert kernels.gabor_bank is gabor.gabor_bank
    assert kernels.gabor_kernel is gabor.gabor_kernel


def test_progress_reports_every_filter():
    calls = []
    gabor.gabor_bank(
        _image(), [0.1, 0.2], gabor.even_thetas(3), progress=lambda d, t: calls.append((d, t))
    )
    assert calls[-1] == (6, 6)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


# --------------------------------------------------------------------------------------------
# Padding and stride, as cnnviz.conv defines them
# --------------------------------------------------------------------------------------------


def test_full_padding_equals_scipy_full_convolution():
    x = _image()
    g = sk_gabor_kernel(0.2, 0.9, sigma_x=2.0, sigma_y=2.0)
    ours = gabor.gabor_response(x, 0.2, 0.9, sigma=2.0, padding="full", mode="constant")
    np.testing.assert_allclose(ours, convolve2d(x, g, mode="full"), atol=1e-9)


@pytest.mark.parametrize("pad", [0, 3, (1, 2, 4, 0)])
def test_explicit_padding_equals_a_crop_of_the_full_convolution(pad):
    x = _image()
    g = sk_gabor_kernel(0.3, 2.2, sigma_x=1.5, sigma_y=1.5)
    kh, kw = g.shape
    top, bottom, left, right = conv.resolve_padding(x.shape, g.shape, padding=pad)
    full = convolve2d(x, g, mode="full")  # zero padding of kh-1, kw-1 on every side
    ref = full[
        kh - 1 - top : full.shape[0] - (kh - 1 - bottom),
        kw - 1 - left : full.shape[1] - (kw - 1 - right),
    ]
    ours = gabor.gabor_response(x, 0.3, 2.2, sigma=1.5, padding=pad, mode="constant")
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, atol=1e-9)


@pytest.mark.parametrize("mode", ["reflect", "wrap"])
def test_valid_padding_crops_skimage_by_the_banks_largest_kernel(mode):
    x = _image(60, 64)
    freqs, thetas = [0.15, 0.4], [0.0, np.pi / 4]
    kh, kw = gabor.bank_kernels(freqs, thetas).shape[2:]
    ours = gabor.gabor_bank(x, freqs, thetas, padding="valid", mode=mode)
    ref = _skimage_bank(x, freqs, thetas, mode=mode)[
        :, :, kh // 2 : 60 - kh // 2, kw // 2 : 64 - kw // 2
    ]
    assert ours.shape == ref.shape == (2, 2, 60 - kh + 1, 64 - kw + 1)
    assert _rel_err(ours, ref) <= 1e-6


@pytest.mark.parametrize("stride", [2, 3, (2, 3)])
@pytest.mark.parametrize("engine", ["fft", "direct"])
def test_same_padding_with_stride_samples_skimage(stride, engine):
    x = _image(41, 50)
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    g = sk_gabor_kernel(0.35, 0.6, sigma_x=1.2, sigma_y=1.2)
    top, _, left, _ = conv.resolve_padding(x.shape, g.shape, stride=stride, padding="same")
    ho, _ = conv.output_size(41, g.shape[0], sh, "same")
    wo, _ = conv.output_size(50, g.shape[1], sw, "same")
    re, im = sk_gabor(x, 0.35, 0.6, sigma_x=1.2, sigma_y=1.2, mode="mirror")
    # Output pixel i of a stride-s "same" convolution is centred on input pixel
    # i·s + (k // 2 − pad_before).
    ref = (re + 1j * im)[g.shape[0] // 2 - top :: sh, g.shape[1] // 2 - left :: sw][:ho, :wo]
    ours = gabor.gabor_response(
        x, 0.35, 0.6, sigma=1.2, mode="mirror", stride=stride, engine=engine
    )
    assert ours.shape == (ho, wo) == (-(-41 // sh), -(-50 // sw))
    assert _rel_err(ours, ref) <= 1e-6


# --------------------------------------------------------------------------------------------
# Properties: gratings, energy and orientation maps
# --------------------------------------------------------------------------------------------

BANK_FREQS = [0.05, 0.1, 0.2, 0.4]
BANK_THETAS = gabor.even_thetas(8)


def _grating(
    size: int, frequency: float, theta: float, phase: float, amplitude: float, dc: float
) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size].astype(np.float64)
    return dc + amplitude * np.cos(
        2 * np.pi * frequency * (xx * np.cos(theta) + yy * np.sin(theta)) + phase
    )


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    fi=st.integers(0, len(BANK_FREQS) - 1),
    ti=st.integers(0, len(BANK_THETAS) - 1),
    phase=st.floats(0, 2 * np.pi),
    amplitude=st.floats(0.2, 5.0),
    dc=st.floats(-1.0, 1.0),
    f_jitter=st.floats(0.95, 1.05),
    t_jitter=st.floats(-0.05, 0.05),
)
def test_matched_filter_responds_most_to_a_grating(
    fi, ti, phase, amplitude, dc, f_jitter, t_jitter
):
    x = _grating(160, BANK_FREQS[fi] * f_jitter, BANK_THETAS[ti] + t_jitter, phase, amplitude, dc)
    mag = np.abs(gabor.gabor_bank(x, BANK_FREQS, BANK_THETAS))
    # Judge away from the border, where every filter sees only the grating.
    centre = mag[:, :, 40:120, 40:120].mean(axis=(2, 3))
    assert np.unravel_index(centre.argmax(), centre.shape) == (fi, ti)


def test_orientation_and_energy_maps_find_stripes():
    # Left: vertical stripes (the wave runs along x: theta 0). Right: horizontal (theta π/2).
    # Bottom rows: flat grey, where no filter should respond.
    x = np.zeros((96, 128))
    x[:64, :64] = _grating(64, 0.2, 0.0, 0.0, 1.0, 0.0)
    x[:64, 64:] = _grating(64, 0.2, np.pi / 2, 0.0, 1.0, 0.0)
    thetas = gabor.even_thetas(4)
    r = gabor.gabor_bank(x, [0.2], thetas, mode="reflect")
    ori = gabor.orientation_map(r)
    energy = gabor.energy_map(r)
    assert ori.shape == energy.shape == x.shape
    assert np.all(ori[10:50, 10:50] == 0)
    assert np.all(ori[10:50, 78:118] == 2)
    np.testing.assert_allclose(energy, np.abs(r).max(axis=(0, 1)))
    assert energy[20:40, 20:40].min() > 0.4
    assert energy[80:, :].max() < 0.05 * energy.max()


# --------------------------------------------------------------------------------------------
# Errors say what was expected
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, words",
    [
        (lambda: gabor.gabor_bank(np.zeros((8, 8, 3)), [0.1], [0.0]), "to_gray"),
        (lambda: gabor.gabor_bank(np.full((8, 8), np.nan), [0.1], [0.0]), "finite pixel"),
        (lambda: gabor.gabor_bank(np.zeros((8, 8)), [0.0], [0.0]), "frequency"),
        (lambda: gabor.gabor_bank(np.zeros((8, 8)), [], [0.0]), "frequencies"),
        (lambda: gabor.gabor_bank(np.zeros((8, 8)), [0.1], [0.0], mode="symmetric"), "mode"),
        (lambda: gabor.gabor_bank(np.zeros((8, 8)), [0.1], [0.0], sigma=-1), "sigma"),
        (lambda: gabor.gabor_bank(np.zeros((8, 8)), [0.1], [0.0], stride=0), "stride"),
        (lambda: gabor.gabor_bank(np.zeros((8, 8)), [0.05], [0.0], padding="valid"), "larger than"),
        (lambda: gabor.gabor_kernel(1e-5), "n_stds"),
        (lambda: gabor.even_thetas(0), "Expected an int"),
        (lambda: gabor.orientation_map(np.zeros((4, 4))), "(F, T, H, W)"),
    ],
)
def test_errors_say_what_was_expected(call, words):
    with pytest.raises(gabor.GaborError) as info:
        call()
    assert isinstance(info.value, ValueError)
    assert words in str(info.value)
    assert "Expected" in str(info.value)


# --------------------------------------------------------------------------------------------
# The Gabor page (AppTest)
# --------------------------------------------------------------------------------------------

VIEW = "gabor.view"


def _run_page(view: str | None = None, **state) -> AppTest:
    at = AppTest.from_file(page("gabor.py"), default_timeout=120)
    if view is not None:
        at.session_state[VIEW] = view
    for key, value in state.items():
        at.session_state[f"gabor.{key}"] = value
    at.run()
    assert_clean(at)
    return at


def _chart(at: AppTest, key: str) -> dict:
    """The plotly figure with this widget key, as JSON."""
    chart = next(c for c in at.get("plotly_chart") if c.proto.id.endswith(f"-{key}"))
    return json.loads(chart.proto.spec)


def _z(trace: dict) -> np.ndarray:
    """A trace's z, decoding plotly's base64 typed arrays."""
    z = trace["z"]
    if isinstance(z, dict):
        shape = [int(v) for v in str(z["shape"]).split(",")]
        return np.frombuffer(base64.b64decode(z["bdata"]), dtype=z["dtype"]).reshape(shape)
    return np.array(z, dtype=np.float64)


def _working_image(name: str = "camera", side: int = 128) -> np.ndarray:
    """What the page filters: the sample in gray, [0, 1], longest side `side`."""
    gray = images.to_gray(images.sample_image(name)) / 255.0
    h, w = gray.shape
    scale = side / max(h, w)
    return images.resize(gray, (round(h * scale), round(w * scale))).astype(np.float32)


def test_page_defaults_show_stripes_a_class_can_see():
    # Issue 20: the seed's 0.46 cycles/px in sigma 2.5 looks like a checkered blob on a
    # projector; the page opens on 0.12 (a stripe pair every 8 px) in sigma 4.
    at = _run_page()
    assert at.slider(key="gabor.frequency").value == pytest.approx(0.12)
    assert at.slider(key="gabor.theta").value == pytest.approx(1.5)
    assert at.slider(key="gabor.sigma").value == pytest.approx(4.0)
    kernel = sk_gabor_kernel(0.12, 1.5, sigma_x=4.0, sigma_y=4.0)
    np.testing.assert_allclose(_z(_chart(at, "gabor.fig_kre")["data"][0]), kernel.real, atol=1e-12)
    np.testing.assert_allclose(_z(_chart(at, "gabor.fig_kim")["data"][0]), kernel.imag, atol=1e-12)
    x = _working_image()
    re, im = sk_gabor(x.astype(np.float64), 0.12, 1.5, sigma_x=4.0, sigma_y=4.0)
    real = _z(_chart(at, "gabor.fig_real")["data"][0])
    assert _rel_err(real, re) <= 1e-4
    assert _rel_err(_z(_chart(at, "gabor.fig_mag")["data"][0]), np.hypot(re, im)) <= 1e-4
    # Clear stripes: the real part's spectrum peaks at the filter's frequency and angle.
    power = np.abs(np.fft.fft2(real - real.mean()))
    iy, ix = np.unravel_index(power.argmax(), power.shape)
    fy, fx = np.fft.fftfreq(real.shape[0])[iy], np.fft.fftfreq(real.shape[1])[ix]
    # A low frequency passes a wider band, pulled down by the photo's own low frequencies.
    assert np.hypot(fx, fy) == pytest.approx(0.12, abs=0.04)
    angle = np.arctan2(fy, fx) % np.pi
    assert abs(angle - 1.5) < 0.25  # FFT bins are coarse in angle this close to 0 frequency
    assert len(at.get("download_button")) >= 6


def test_every_control_reruns_without_exception():
    at = _run_page()
    one_filter = [
        ("slider", "frequency", 0.2),
        ("slider", "theta", 0.0),
        ("slider", "sigma", 4.0),
        ("radio", "width_by", "bandwidth"),
        ("slider", "bandwidth", 1.8),
        ("slider", "offset", 1.57),
        ("slider", "n_stds", 2.0),
        ("selectbox", "padding", "valid"),
        ("slider", "stride", 3),
        ("selectbox", "padding", "full"),
        ("selectbox", "padding", "custom"),
        ("number_input", "pad_amount", 9),
        ("selectbox", "mode", "constant"),
        ("selectbox", "mode", "wrap"),
        ("toggle", "surface", True),
        ("select_slider", "side", 64),
        ("selectbox", "sample", "astronaut"),
    ]
    bank = [
        ("slider", "n_thetas", 3),
        ("multiselect", "freqs", ["0.1", "0.28"]),
        ("radio", "bank_width_by", "sigma"),
        ("slider", "bank_sigma", 3.0),
        ("radio", "bank_width_by", "bandwidth"),
        ("slider", "bank_bandwidth", 2.0),
        ("selectbox", "bank_mode", "nearest"),
        ("toggle", "shared", False),
        ("toggle", "hide_weak", False),
    ]
    dataset = [
        ("radio", "dataset", "shapes"),
        ("slider", "n_images", 8),
        ("number_input", "seed", 3),
        ("radio", "apply", "bank"),
        ("slider", "ds_pick", 5),
        ("radio", "dataset", "digits"),
    ]
    for view, steps in (
        ("One filter", one_filter),
        ("A bank of filters", bank),
        ("On a dataset", dataset),
    ):
        at.session_state[VIEW] = view
        at.run()
        assert_clean(at)
        for kind, key, value in steps:
            getattr(at, kind)(key=f"gabor.{key}").set_value(value).run()
            assert_clean(at)
            assert not at.error, (key, [e.value for e in at.error])
    # The one-filter sliders were remembered while their tab was closed.
    at.session_state[VIEW] = "One filter"
    at.run()
    assert at.slider(key="gabor.frequency").value == pytest.approx(0.2)


def test_padding_and_stride_follow_cnnviz_conv():
    at = _run_page(padding="valid", stride=2)
    size, formula = conv.output_size(128, 25, 2, "valid")  # sigma 4: a 25×25 kernel
    assert formula in at.code[0].value
    assert _z(_chart(at, "gabor.fig_real")["data"][0]).shape == (size, size)


def test_a_kernel_larger_than_a_valid_image_is_explained():
    at = _run_page(side=32, padding="valid", sigma=10.0, n_stds=5.0)
    assert at.error and "larger than the padded image" in at.error[0].value


def test_a_typed_frequency_that_is_not_a_number_is_explained():
    at = _run_page("A bank of filters")
    at.multiselect(key="gabor.freqs").set_value(["0.1", "lots"]).run()
    assert_clean(at)
    assert at.error and "not a frequency" in at.error[0].value
    assert len(_chart(at, "gabor.fig_bank_r")["data"]) == 8  # only 0.1 remains: 1 × 8 filters


def test_bank_view_shows_the_library_results():
    at = _run_page("A bank of filters")
    x = _working_image()
    ref = gabor.gabor_bank(x.astype(np.float64), [0.05, 0.1, 0.2, 0.4], gabor.even_thetas(8))
    assert len(_chart(at, "gabor.fig_bank_k")["data"]) == 32
    assert len(_chart(at, "gabor.fig_bank_r")["data"]) == 32
    energy = _z(_chart(at, "gabor.fig_energy")["data"][0])
    assert _rel_err(energy, gabor.energy_map(ref)) <= 1e-4
    orient = _z(_chart(at, "gabor.fig_orient")["data"][0])
    strong = np.isfinite(orient)
    assert strong.mean() > 0.2
    expected = np.degrees(gabor.even_thetas(8))[gabor.orientation_map(ref)]
    assert np.mean(orient[strong] == expected[strong]) > 0.99  # float32 vs float64 near-ties


def test_dataset_view_filters_the_offline_digits():
    at = _run_page("On a dataset")
    images_fig = _chart(at, "gabor.fig_ds_in")
    assert len(images_fig["data"]) == 16
    digits, labels = datasets.digits(16, seed=0)
    np.testing.assert_allclose(_z(images_fig["data"][3]), digits[3] / 255.0, atol=1e-6)
    resp = _z(_chart(at, "gabor.fig_ds_out")["data"][3])
    ref = gabor.gabor_response(digits[3] / 255.0, 0.12, 1.5, sigma=4.0)
    np.testing.assert_allclose(resp, np.abs(ref), atol=1e-5)


def test_page_imports_no_tensorflow():
    setup = (
        "at.run()\n"
        f"at.session_state[{VIEW!r}] = 'A bank of filters'\n"
        "at.run()\n"
        f"at.session_state[{VIEW!r}] = 'On a dataset'"
    )
    assert not imports_tensorflow("gabor.py", setup)


def test_dataset_tab_shows_no_image_picker_or_working_size():
    # Those controls filter the picked photo; the dataset tab filters generated images.
    at = _run_page("On a dataset")
    assert_clean(at)
    keys = {w.key for kind in ("selectbox", "select_slider") for w in at.get(kind)}
    assert "gabor.sample" not in keys and "gabor.side" not in keys
    assert _chart(at, "gabor.fig_ds_in")["data"]
    # Back on a photo tab they are there again, with the working size remembered.
    at = _run_page("One filter", side=64)
    at.session_state[VIEW] = "On a dataset"
    at.run()
    at.session_state[VIEW] = "One filter"
    at.run()
    assert at.select_slider(key="gabor.side").value == 64
    assert at.selectbox(key="gabor.sample").value


def test_border_mode_labels_say_what_scipy_does():
    # scipy's reflect repeats the edge pixel (numpy's symmetric); scipy's mirror does not.
    at = _run_page("One filter")
    labels = dict(zip(gabor.MODES, at.selectbox(key="gabor.mode").options, strict=True))
    assert "c b a | a b c d" in labels["reflect"] and "numpy symmetric" in labels["reflect"]
    assert "d c b | a b c d" in labels["mirror"] and "numpy reflect" in labels["mirror"]
    # ...and the library pads exactly so: "a b c d" = 1 2 3 4, three pixels on the left.
    x = np.arange(1.0, 5.0)[None, None, :]
    np.testing.assert_array_equal(
        gabor._pad(x, (0, 0, 3, 0), "reflect", 0.0)[0, 0], [3, 2, 1, 1, 2, 3, 4]
    )
    np.testing.assert_array_equal(
        gabor._pad(x, (0, 0, 3, 0), "mirror", 0.0)[0, 0], [4, 3, 2, 1, 2, 3, 4]
    )
