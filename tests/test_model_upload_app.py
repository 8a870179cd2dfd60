"""Uploaded models through the running app (AppTest): a model that answers NaN gets a clear
message on Grad-CAM and Activations, and a refused file is remembered by its hash."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from tests.apptest_util import assert_clean, page

keras = pytest.importorskip("keras")


def _nan_model_bytes(tmp_path) -> bytes:
    # A finite config that passes every check, but 255 · 1e38 overflows float32 to inf and the
    # convolution then adds +inf and −inf: NaN.
    keras.utils.set_random_seed(0)
    L = keras.layers
    model = keras.Sequential(
        [keras.Input((16, 16, 3)), L.Rescaling(1e38, name="huge"), L.Conv2D(2, 3, name="conv"),
         L.GlobalAveragePooling2D(name="gap"), L.Dense(2, activation="softmax", name="out")],
        name="overflows",
    )  # fmt: skip
    path = tmp_path / "nan.keras"
    model.save(path)
    return path.read_bytes()


@pytest.mark.parametrize("page_file", ["gradcam.py", "activations.py"])
def test_a_nan_model_gives_a_clear_message(tmp_path, page_file):
    at = AppTest.from_file(page(page_file), default_timeout=240)
    at.run()
    assert_clean(at)
    at.file_uploader(key="model.upload").upload(
        "nan.keras", _nan_model_bytes(tmp_path), "application/octet-stream"
    ).run()
    assert_clean(at)
    assert at.session_state["model.name"] == "upload"
    assert any("produces NaN for this image" in e.value for e in at.error), [
        e.value for e in at.error
    ]


def test_a_refused_upload_is_remembered_by_its_hash(tmp_path, monkeypatch):
    from cnnviz import models
    from cnnviz.ui import models as ui_models
    from tests.test_model_caps import HOSTILE, _archive

    calls = []
    real = models.load_uploaded

    def counting(data, **kwargs):
        calls.append(len(data))
        return real(data, **kwargs)

    monkeypatch.setattr(models, "load_uploaded", counting)
    monkeypatch.setattr(ui_models, "_REFUSED", type(ui_models._REFUSED)())
    bomb = _archive(HOSTILE["UpSampling2D(1000) after 28x28"])
    at = AppTest.from_file(page("architecture.py"), default_timeout=180)
    at.run()
    for _ in range(2):
        at.file_uploader(key="model.upload").clear().upload(
            "bomb.keras", bomb, "application/octet-stream"
        ).run()
        assert_clean(at)
        assert at.error and "was refused" in at.error[0].value
        assert "the cap is 64 MB" in at.error[0].value
    # The second upload of the same bytes never reached the checker.
    assert len(calls) == 1 and len(ui_models._REFUSED) == 1
