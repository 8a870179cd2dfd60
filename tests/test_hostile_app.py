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
