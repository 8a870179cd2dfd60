"""AppTest for the Grad-CAM page: it loads with every built-in model and every method runs."""

import base64
import json

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from cnnviz import cam, datasets, models
from cnnviz.layers import last_conv_layer
from tests.apptest_util import assert_clean, page

P = "gradcam"


def _app(model_name: str) -> AppTest:
    at = AppTest.from_file(page("gradcam.py"), default_timeout=180)
    at.session_state["model.name"] = model_name
    at.run()
    assert_clean(at)
    return at


@pytest.fixture(scope="module", params=models.builtin_names())
def at(request):
    return _app(request.param)


def _heat(at: AppTest) -> np.ndarray:
    chart = next(c for c in at.get("plotly_chart") if c.proto.id.endswith(f"-{P}.heat_fig"))
    z = json.loads(chart.proto.spec)["data"][0]["z"]
    if isinstance(z, dict):  # plotly writes numpy data as a base64 typed array
        shape = [int(n) for n in str(z["shape"]).split(",")]
        z = np.frombuffer(base64.b64decode(z["bdata"]), dtype=z["dtype"]).reshape(shape)
    return np.asarray(z, dtype=np.float64)


def test_loads_with_a_map_top5_and_downloads(at):
    assert not at.error
    assert at.selectbox(key=f"{P}.method").value == "gradcam"
    # The default layer is the last convolution layer of the chosen model.
    net, _ = models.resolve(at.session_state["model.name"])
    assert at.selectbox(key=f"{P}.layer").value == last_conv_layer(net)
    # Top-5 bars, and the map: finite, in [0, 1], the model's input size.
    assert len(at.get("progress")) >= 5
    heat = _heat(at)
    assert heat.shape == tuple(models.info(at.session_state["model.name"]).input_shape[:2])
    assert np.isfinite(heat).all() and heat.min() >= 0 and heat.max() <= 1
    labels = [b.proto.label for b in at.get("download_button")]
    assert {"Overlay as PNG", "Map as NPY"} <= set(labels)
    # Small built-ins: the four tabs are computed at once (methods, layers, sanity, curves).
    assert len(at.tabs) == 4
    assert len(at.get("plotly_chart")) >= 6
    if at.session_state["model.name"] == "shapes":
        # The default picture is generated, and the page says whether the peak is on the object.
        _, _, masks = datasets.shapes(1, seed=5_000_000 + at.number_input(key=f"{P}.seed").value)
        on = bool(masks[0][np.unravel_index(np.argmax(heat), heat.shape)])
        text = " ".join(c.value for c in at.caption)
        assert ("brightest point is on the object" in text) == on
        assert ("brightest point is *off* the object" in text) == (not on)


def test_every_method_runs(at):
    for method in cam.METHODS:
        at.selectbox(key=f"{P}.method").set_value(method).run()
        assert_clean(at)
        assert not at.error, [e.value for e in at.error]
        # The page shows this method's map: finite, in [0, 1], equal to what it computed.
        shown = [
            v
            for v in at.session_state[f"{P}._memo"].values()
            if isinstance(v, cam.Explanation) and v.method == method
        ]
        assert shown, method
        heat = _heat(at)
        assert np.isfinite(heat).all() and 0 <= heat.min() and heat.max() <= 1
        assert any(np.allclose(heat, r.heatmap, atol=1e-6) for r in shown), method


def test_class_layer_and_overlay_controls(at):
    net, _ = models.resolve(at.session_state["model.name"])
    at.selectbox(key=f"{P}.method").set_value("gradcam").run()
    at.selectbox(key=f"{P}.class").set_value(1).run()
    assert_clean(at)
    first_conv = at.selectbox(key=f"{P}.layer").options[0]
    at.selectbox(key=f"{P}.layer").set_value(first_conv).run()
    at.slider(key=f"{P}.alpha").set_value(0.8).run()
    at.selectbox(key=f"{P}.cmap").set_value("cividis").run()
    at.number_input(key=f"{P}.seed").set_value(3).run()
    assert_clean(at)
    # A photo instead of a generated picture: resized for the model, with a note.
    at.radio(key=f"{P}.source").set_value("picker").run()
    at.selectbox(key=f"{P}.sample").set_value("coins").run()
    assert_clean(at)
    assert not at.error
    assert any("resized" in c.value for c in at.caption)
