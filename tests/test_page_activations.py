"""AppTest for the Activations page: every view, every switch, uploads, one forward pass."""

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from cnnviz import activations, images, models
from cnnviz.ui import cache
from cnnviz.ui.models import default_model

PAGE = Path(__file__).resolve().parents[1] / "pages" / "activations.py"
P = "activations"


def _app(model: str) -> AppTest:
    at = AppTest.from_file(str(PAGE), default_timeout=120)
    at.session_state["model.name"] = model  # the shared model picker's choice
    return at


def _ok(at: AppTest) -> None:
    assert not at.exception, at.exception[0].message if at.exception else ""
    assert not at.error, [e.value for e in at.error]


def _grid(at: AppTest):
    return at.get("plotly_chart")[0]


def _n_traces(chart) -> int:
    return len(json.loads(chart.proto.spec)["data"])


@pytest.fixture
def counted(monkeypatch):
    """Count real forward passes; start from an empty page cache."""
    calls = []
    real = activations.forward

    def counting(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(activations, "forward", counting)
    cache._forward.clear()
    yield calls
    cache._forward.clear()


@pytest.mark.parametrize("name", models.builtin_names())
def test_page_loads_with_each_builtin_model(name):
    at = _app(name)
    at.run()
    _ok(at)
    net, _ = models.resolve(name)
    first = at.selectbox(key=f"{P}.layer").value
    assert first in activations.default_layers(net)
    # A light square on black: not blank (the digits model refuses a blank picture).
    probe = np.pad(np.full((4, 4, 3), 255, np.uint8), ((2, 2), (2, 2), (0, 0)))
    channels = activations.activations(name, probe)[first].shape[-1]
    assert _n_traces(_grid(at)) == min(channels, 64)
    # Its five best guesses are shown.
    assert len(at.get("progress")) == min(5, len(models.info(name).class_names))


def _shown_image(at, name: str) -> np.ndarray:
    """The picker's current image: a generated example matching the model, or a sample."""
    from cnnviz.ui.models import model_samples

    value = at.selectbox(key=f"{P}.sample").value
    extra = model_samples(models.info(name))
    return np.asarray(extra[value]()) if value in extra else images.sample_image(value)


def test_switching_layer_view_channel_and_image_reuses_the_forward_pass(counted):
    name = default_model()
    net, _ = models.resolve(name)
    paths = activations.default_layers(net)
    at = _app(name)
    at.run()
    _ok(at)
    assert len(counted) == 1

    # Another layer: the grid has that layer's channels, and nothing is recomputed.
    maps = cache.forward(name, _shown_image(at, name)).maps
    at.selectbox(key=f"{P}.layer").set_value(paths[-1]).run()
    _ok(at)
    assert _n_traces(_grid(at)) == min(maps[paths[-1]].shape[-1], 64)
    at.slider(key=f"{P}.channel").set_value(2).run()
    _ok(at)
    at.radio(key=f"{P}.scale").set_value("shared").run()
    _ok(at)
    assert len(counted) == 1

    at.radio(key=f"{P}.view").set_value("hierarchy").run()
    _ok(at)
    per_layer = at.slider(key=f"{P}.per_layer").value
    assert _n_traces(_grid(at)) == len(paths) * min(
        per_layer, min(m.shape[-1] for m in maps.values())
    )
    assert len(counted) == 1

    # Compare: one more pass, for the second image only.
    at.radio(key=f"{P}.view").set_value("compare").run()
    _ok(at)
    assert len(counted) == 2
    assert len(at.get("plotly_chart")) == 3  # two grids and the scatter of channel means

    # Back to one layer, same layer as before the detour.
    at.radio(key=f"{P}.view").set_value("layer").run()
    _ok(at)
    assert at.selectbox(key=f"{P}.layer").value == paths[-1]
    assert len(counted) == 2

    # Another image: a new pass.
    at.selectbox(key=f"{P}.sample").set_value("chelsea").run()
    _ok(at)
    assert len(counted) == 3


def test_uploading_an_image_runs_it_through_the_model(counted):
    name = default_model()
    at = _app(name)
    at.run()
    _ok(at)
    rgb = np.zeros((40, 60, 3), np.uint8)
    rgb[10:30, 20:40] = (255, 200, 0)  # a yellow square
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    at.file_uploader(key=f"{P}.upload").upload("square.png", buf.getvalue(), "image/png").run()
    _ok(at)
    assert len(counted) == 2
    # The upload is what the model saw: its forward pass is in the cache (no new pass), and
    # its input is the upload through the model's own preprocessing.
    got = cache.forward(name, rgb)
    assert len(counted) == 2
    _, preprocess = models.resolve(name)
    np.testing.assert_allclose(got.inputs, preprocess(rgb))
    assert any("60×40" in c.value for c in at.caption)


def test_a_bad_upload_is_refused_in_words():
    at = _app(default_model())
    at.run()
    at.file_uploader(key=f"{P}.upload").upload("evil.png", b"not an image", "image/png").run()
    assert not at.exception
    assert at.error and "Showing the sample image instead" in at.error[0].value
    assert len(at.get("plotly_chart")) >= 1  # the sample is shown


def _session_model_page(model, page):
    # The Train page registers its models like this; then the Activations page runs.
    import runpy

    from cnnviz.ui.models import register_session_model

    register_session_model("wide", model)
    runpy.run_path(page, run_name="__main__")


@pytest.fixture(scope="module")
def wide_model():
    """A session-trained-like bare model: 16×16 colour input, 80 channels, rescaling inside."""
    import keras

    keras.utils.set_random_seed(1)
    return keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            keras.layers.Rescaling(1 / 255.0, name="scale"),
            keras.layers.Conv2D(80, 3, activation="relu", name="wide"),
            keras.layers.GlobalAveragePooling2D(name="gap"),
            keras.layers.Dense(4, activation="softmax", name="head"),
        ],
        name="wide_net",
    )


def test_a_session_model_gets_a_fitted_image_and_its_channels_are_paged(wide_model):
    at = AppTest.from_function(
        _session_model_page, args=(wide_model, str(PAGE)), default_timeout=120
    )
    at.run()
    _ok(at)
    # The 512×512 sample was resized to the model's 16×16 input, and the page says so.
    assert any("→ 16×16" in c.value for c in at.caption)
    assert _n_traces(_grid(at)) == 64  # channels 0–63 of 80
    at.selectbox(key=f"{P}.page64").set_value((64, 80)).run()
    _ok(at)
    assert _n_traces(_grid(at)) == 16
    at.slider(key=f"{P}.channel").set_value(70).run()
    _ok(at)
    # The grid matches an independent run of the layer on the fitted image.
    fed = images.resize(images.sample_image(at.selectbox(key=f"{P}.sample").value), (16, 16))
    import keras

    sub = keras.Model(wide_model.inputs[0], wide_model.get_layer("wide").output)
    ref = np.asarray(sub(fed[None].astype(np.float32)))[0]
    z = json.loads(_grid(at).proto.spec)["data"][6]["z"]
    np.testing.assert_allclose(_decode(z), ref[..., 70], atol=1e-5)


def _decode(z) -> np.ndarray:
    """A plotly JSON array: a nested list, or plotly's base64 typed array {"dtype", "bdata"}."""
    if isinstance(z, dict):
        import base64

        flat = np.frombuffer(base64.b64decode(z["bdata"]), dtype=np.dtype(z["dtype"]))
        return flat.reshape(tuple(int(n) for n in str(z["shape"]).split(",")))
    return np.asarray(z, dtype=np.float64)


def _heatmaps(chart) -> list[dict]:
    return [t for t in json.loads(chart.proto.spec)["data"] if t["type"] == "heatmap"]


def _one_colour_map(at: AppTest) -> set[str]:
    """The colour scales of every heat map on the page; each centred on 0 (white)."""
    scales = set()
    for chart in at.get("plotly_chart"):
        for t in _heatmaps(chart):
            assert t["zmin"] == pytest.approx(-t["zmax"]), t.get("hovertemplate")
            scales.add(json.dumps(t["colorscale"]))
    return scales


def test_one_colour_map_and_flat_maps_shown_as_what_they_are():
    at = _app("shapes")
    at.run()
    _ok(at)
    net, _ = models.resolve("shapes")
    maps = cache.forward("shapes", _shown_image(at, "shapes")).maps
    # The same colour map in the layer view (grid and large map), hierarchy and compare.
    scales = _one_colour_map(at)
    for view in ("hierarchy", "compare", "layer"):
        at.radio(key=f"{P}.view").set_value(view).run()
        _ok(at)
        scales |= _one_colour_map(at)
    assert len(scales) == 1

    # conv1's empty channels are all zero: white (the middle of a range centred on 0), titled ∅.
    conv1 = maps["conv1"]
    empty = np.flatnonzero(activations.empty_channels(conv1))
    assert len(empty) and np.all(conv1[..., empty] == 0.0)
    at.selectbox(key=f"{P}.layer").set_value("conv1").run()
    cells = _heatmaps(_grid(at))
    c = int(empty[0])
    assert cells[c]["zmin"] < 0 < cells[c]["zmax"]
    titles = [a["text"] for a in json.loads(_grid(at).proto.spec)["layout"]["annotations"]]
    assert titles[c] == f"#{c} ∅"

    # After bn1 and pooling the same channels are flat at a constant: titled with it, scaled
    # with the whole layer (not stretched to a solid extreme), and the caption says why.
    pool1 = maps["pool1"]
    value = float(pool1[..., c].flat[0])
    assert value != 0.0 and activations.empty_channels(pool1)[c]
    at.selectbox(key=f"{P}.layer").set_value("pool1").run()
    _ok(at)
    cells = _heatmaps(_grid(at))
    assert cells[c]["zmax"] == pytest.approx(float(np.abs(pool1).max()), rel=1e-5)
    assert abs(value) < cells[c]["zmax"]
    titles = [a["text"] for a in json.loads(_grid(at).proto.spec)["layout"]["annotations"]]
    assert titles[c] == f"#{c} ∅={value:.2g}"
    assert any("batch normalisation" in cap.value for cap in at.caption)


def test_what_to_look_for_describes_the_model_shown():
    at = _app("shapes")
    at.run()
    _ok(at)
    notes = " ".join(m.value for m in at.expander[0].markdown)
    assert "cat" not in notes  # the seed's ImageNet cat is not in an offline model
    conv1 = cache.forward("shapes", _shown_image(at, "shapes")).maps["conv1"]
    n_empty = int(activations.empty_channels(conv1).sum())
    assert "conv1" in notes and f"{n_empty} of its {conv1.shape[-1]} maps are empty" in notes
    assert "shapes was trained to tell" in notes
