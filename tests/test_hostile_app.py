"""The bad-input suites through the running app (AppTest): every hostile image through the
image uploader, junk kernels, and hostile model files through the sidebar's model uploader.
Each shows a clear message, and the page keeps working for the next action."""

from __future__ import annotations

import io

import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from tests.apptest_util import assert_clean, page
from tests.test_images import REFUSED


def _png(color=(30, 200, 40), size=(40, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def kernels_app():
    at = AppTest.from_file(page("kernels.py"), default_timeout=120)
    at.run()
    assert_clean(at)
    return at


@pytest.mark.parametrize("name", list(REFUSED))
def test_bad_image_through_the_uploader(kernels_app, name):
    at = kernels_app
    at.file_uploader(key="kernels.upload").clear().upload(
        f"{name}.png", REFUSED[name](), "image/png"
    ).run()
    assert_clean(at)
    assert at.error and "Showing the sample image instead" in at.error[0].value
    # The next action works: a good upload is used.
    at.file_uploader(key="kernels.upload").clear().upload("good.png", _png(), "image/png").run()
    assert_clean(at)
    assert not at.error
    assert "⌊(30 + 1 + 1" in at.code[0].value  # the 30-pixel-high upload is the input now


@pytest.mark.parametrize(
    "text",
    [
        "",
        "1 2; 3",
        "nan nan",
        "1e999",
        "1/0",
        "eval('1')",
        "[[1,2],[3]]",
        "😀",
        "9 " * 300,
        "\x00\x01",
    ],
)
def test_junk_kernels_show_a_message_and_recover(kernels_app, text):
    at = kernels_app
    at.radio(key="kernels.kernel_source").set_value("Type text").run()
    at.text_area[0].set_value(text).run()
    assert_clean(at)
    assert at.error, f"no message for {text!r}"
    at.text_area[0].set_value("0 -1 0; -1 4 -1; 0 -1 0").run()
    assert_clean(at)
    assert not at.error


keras = pytest.importorskip("keras")


def _hostile_models(tmp_path) -> dict[str, bytes]:
    from tests import test_model_security as sec

    tiny = sec._tiny()
    clean = sec._save(tiny, tmp_path, "clean.keras")
    lam = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Lambda(lambda x: x * 2)])
    tiny.save(tmp_path / "m.h5")
    return {
        "lambda.keras": sec._save(lam, tmp_path, "lambda.keras"),
        "foreign.keras": sec._edit_config(
            clean, lambda c: sec._layer(c, "conv").update(module="os")
        ),
        "h5-renamed.keras": (tmp_path / "m.h5").read_bytes(),  # the browser only sends .keras names
        "garbage.keras": b"PK\x03\x04 not really a zip",
        "clean.keras": clean,
    }


def test_hostile_models_through_the_model_uploader(tmp_path):
    files = _hostile_models(tmp_path)
    at = AppTest.from_file(page("architecture.py"), default_timeout=180)
    at.run()
    assert_clean(at)
    for name in ("lambda.keras", "foreign.keras", "h5-renamed.keras", "garbage.keras"):
        at.file_uploader(key="model.upload").clear().upload(
            name, files[name], "application/octet-stream"
        ).run()
        assert_clean(at)
        assert at.error and "was refused" in at.error[0].value, name
        assert at.session_state["model.name"] != "upload"
    # The app keeps working: a clean model is accepted and shown.
    at.file_uploader(key="model.upload").clear().upload(
        "clean.keras", files["clean.keras"], "application/octet-stream"
    ).run()
    assert_clean(at)
    assert not at.error
    assert at.session_state["model.name"] == "upload"


# --------------------------------------------------------------------------------------------
# Crashes a class could hit (issue 21)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, message",
    [
        ("1e308 -1e308", "'1e308' is too large. Expected weights between"),
        ("1/1e999", "would silently become 0"),
        ("1e-999 1", "would silently become 0"),
    ],
)
def test_kernel_text_that_would_overflow_gives_a_message(kernels_app, text, message):
    # '1e308 -1e308' used to reach colorize as ±inf and show an IndexError box.
    at = kernels_app
    at.radio(key="kernels.kernel_source").set_value("Type text").run()
    at.text_area[0].set_value(text).run()
    assert_clean(at)
    assert at.error and message in at.error[0].value
    assert not any(m.value.startswith("**Output**") for m in at.markdown)  # nothing drawn
    at.text_area[0].set_value("1 0 -1").run()
    assert_clean(at)
    assert not at.error
    assert any(m.value.startswith("**Output**") for m in at.markdown)


def _slider_app():
    import streamlit as st

    from cnnviz.ui.widgets import safe_slider

    lo, hi = st.session_state.get("bounds", (0, 5))
    st.session_state["got"] = safe_slider("Pick", lo, hi, key="pick")
    st.session_state["got_range"] = safe_slider("Span", lo, hi, (lo, hi), key="span")


def test_safe_slider_one_choice_no_choice_and_stale_values():
    at = AppTest.from_function(_slider_app)
    at.run()
    assert_clean(at)
    assert at.session_state["got"] == 0 and at.session_state["got_range"] == (0, 5)
    at.slider(key="pick").set_value(5).run()
    at.slider(key="span").set_value((3, 5)).run()
    # The range shrinks under a remembered value: clamped, not StreamlitValueAboveMaxError.
    at.session_state["bounds"] = (0, 2)
    at.run()
    assert_clean(at)
    assert at.session_state["got"] == 2 and at.session_state["got_range"] == (2, 2)
    # One choice: a caption instead of a slider (st.slider raises when min == max).
    at.session_state["bounds"] = (0, 0)
    at.run()
    assert_clean(at)
    assert at.session_state["got"] == 0 and at.session_state["got_range"] == (0, 0)
    assert "Pick: 0, the only choice here." in [c.value for c in at.caption]
    assert not [s for s in at.slider if s.key in ("pick", "span")]
    # No choice at all.
    at.session_state["bounds"] = (0, -1)
    at.run()
    assert_clean(at)
    assert at.session_state["got"] is None and at.session_state["got_range"] is None


def _one_filter_model(tmp_path) -> bytes:
    keras.utils.set_random_seed(1)
    model = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            keras.layers.Rescaling(1 / 255.0, name="rescale"),
            keras.layers.Conv2D(1, 3, activation="relu", name="conv1"),
            keras.layers.MaxPooling2D(name="pool"),
            keras.layers.GlobalAveragePooling2D(name="gap"),
            keras.layers.Dense(2, activation="softmax", name="out"),
        ],
        name="one_filter",
    )
    path = tmp_path / "one_filter.keras"
    model.save(path)
    return path.read_bytes()


def test_one_filter_model_on_activations(tmp_path):
    # A perfectly legitimate model: its conv layer has one channel, so the channel slider had
    # min = max = 0 and Streamlit raised.
    at = AppTest.from_file(page("activations.py"), default_timeout=180)
    at.run()
    assert_clean(at)
    at.file_uploader(key="model.upload").upload(
        "one_filter.keras", _one_filter_model(tmp_path), "application/octet-stream"
    ).run()
    assert_clean(at)
    assert not at.error, [e.value for e in at.error]
    assert at.session_state["model.name"] == "upload"
    assert at.session_state["activations.layer"] == "conv1"
    assert "Channel to see large: 0, the only choice here." in [c.value for c in at.caption]
    assert "**Channel 0** of conv1" in " ".join(m.value for m in at.markdown)
    # The page keeps working: the other views and layers draw without an exception.
    for view in ("hierarchy", "compare", "layer"):
        at.radio(key="activations.view").set_value(view).run()
        assert_clean(at)
    at.selectbox(key="activations.layer").set_value("pool").run()
    assert_clean(at)
    assert "**Channel 0** of pool" in " ".join(m.value for m in at.markdown)


def test_one_filter_model_on_filters_range_choice(tmp_path):
    # The filter-range slider ran 0..max(1, n - 1): a one-filter layer offered a filter #1.
    at = AppTest.from_file(page("filters.py"), default_timeout=180)
    at.session_state["filters.how"] = "range"
    at.run()
    assert_clean(at)
    at.file_uploader(key="model.upload").upload(
        "one_filter.keras", _one_filter_model(tmp_path), "application/octet-stream"
    ).run()
    assert_clean(at)
    assert at.session_state["model.name"] == "upload"
    assert "Filter numbers: 0, the only choice here." in [c.value for c in at.caption]
    assert not [s for s in at.slider if s.key == "filters.range"]
