"""The Network page with AppTest: every built-in model with every picture source, hostile
uploads, the empty canvas, and the drill-down for conv, pooling and softmax units."""

from __future__ import annotations

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from cnnviz import models
from cnnviz.ui.widgets import SOURCES
from tests.apptest_util import assert_clean, page

P = "network"


def _open(model: str, source: str) -> AppTest:
    at = AppTest.from_file(page("network.py"), default_timeout=180)
    at.query_params["model"] = model
    at.query_params["source"] = source
    at.run()
    return at


def _prediction(at: AppTest) -> str | None:
    found = [m.value for m in at.metric if m.label == "Prediction"]
    return found[0] if found else None


@pytest.mark.parametrize("model", models.builtin_names())
@pytest.mark.parametrize("source", SOURCES)
def test_opens_with_every_model_and_source(model, source):
    at = _open(model, source)
    assert_clean(at)
    assert not at.error, [e.value for e in at.error]
    assert at.radio(key=f"{P}.src").value == source
    if source in ("sample", "generated"):
        # A picture is there: the overview figure and the model's own top-1 class.
        assert _prediction(at) in models.info(model).class_names
        assert at.get("plotly_chart")
    else:
        # Nothing to look at yet: a clear message, and no prediction of a blank picture.
        assert _prediction(at) is None
        assert at.info, "an empty source must say what to do"


def test_empty_canvas_says_so():
    at = _open("digits", "draw")
    assert_clean(at)
    assert any("canvas is empty" in i.value for i in at.info)
    assert _prediction(at) is None


def test_prediction_is_the_models_own_top_class():
    at = _open("digits", "sample")
    assert_clean(at)
    # The first sample for the digits model is generated digit #1 (cnnviz.ui.models).
    from cnnviz import datasets  # noqa: PLC0415

    digit = datasets.digits(6, seed=7)[0][0]
    probs = models.predict("digits", digit)[0]
    assert _prediction(at) == models.info("digits").class_names[int(np.argmax(probs))]


@pytest.mark.parametrize(
    "data",
    [b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, b"GIF89a" + b"\xff" * 10],
)
def test_hostile_upload_is_refused_in_words(data):
    at = _open("shapes", "upload")
    at.file_uploader(key=f"{P}.upload").upload("evil.png", data, "image/png").run()
    assert_clean(at)
    assert any("Could not use" in e.value for e in at.error), [e.value for e in at.error]


def test_drill_down_conv_pool_and_softmax():
    at = _open("digits", "sample")
    assert_clean(at)
    # Default: the first conv layer, its strongest channel, at its most active unit.
    assert at.selectbox(key=f"{P}.layer").value == "conv1"
    code = "\n".join(c.value for c in at.code)
    assert "relu(" in code and "=" in code
    at.selectbox(key=f"{P}.layer").set_value("pool1").run()
    assert_clean(at)
    assert "max(" in "\n".join(c.value for c in at.code)
    at.selectbox(key=f"{P}.layer").set_value("predictions").run()
    assert_clean(at)
    assert any("Softmax" in m.value for m in at.markdown)
    # Stepping moves the window one column on.
    at.selectbox(key=f"{P}.layer").set_value("conv2").run()
    row, col = at.number_input(key=f"{P}.row").value, at.number_input(key=f"{P}.col").value
    at.button(key=f"{P}.next").click().run()
    assert_clean(at)
    w = 11
    assert (at.number_input(key=f"{P}.row").value, at.number_input(key=f"{P}.col").value) == divmod(
        (row * w + col + 1) % (w * w), w
    )
