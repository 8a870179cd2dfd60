"""AppTest for the Filters page: a short run, the comparison, objectives, weights, the cache."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import keras
import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from cnnviz import featureviz, models, weights
from cnnviz.ui import featureviz_cache

PAGE = Path(__file__).resolve().parents[1] / "pages" / "filters.py"
P = "filters"


def _app(model: str = "shapes", **state) -> AppTest:
    at = AppTest.from_file(str(PAGE), default_timeout=120)
    at.session_state["model.name"] = model  # the shared model picker's choice
    for key, value in state.items():
        at.session_state[key] = value
    return at


def _ok(at: AppTest) -> None:
    assert not at.exception, at.exception[0].message if at.exception else ""
    assert not at.error, [e.value for e in at.error]


def _captions(at: AppTest, index: int = 0) -> list[str]:
    return [img.caption for img in at.get("image")[index].proto.imgs]


def _array(value) -> np.ndarray:
    """A plotly figure array: a plain list, or plotly's base64 typed-array encoding."""
    if isinstance(value, dict) and "bdata" in value:
        shape = tuple(int(v) for v in str(value.get("shape", "-1")).split(","))
        return np.frombuffer(base64.b64decode(value["bdata"]), value["dtype"]).reshape(shape)
    return np.asarray(value)


@pytest.fixture
def counted(monkeypatch, tmp_path):
    """Count real optimisations (and their progress calls); start from an empty cache."""
    runs, ticks = [], []
    real = featureviz.visualize

    def counting(*args, progress=None, **kwargs):
        runs.append(args[:3])

        def tick(step, total, preview):
            ticks.append((step, total, preview.shape))
            progress(step, total, preview)

        return real(*args, progress=tick if progress else None, **kwargs)

    monkeypatch.setattr(featureviz, "visualize", counting)
    featureviz_cache._stored.clear()
    # And an empty disk cache (cnnviz.diskcache), which would otherwise serve earlier tests' runs.
    monkeypatch.setenv("CNNVIZ_CACHE_DIR", str(tmp_path / "cache"))
    yield runs, ticks
    featureviz_cache._stored.clear()


def test_page_runs_a_short_visualisation_with_previews_and_scores(counted):
    runs, ticks = counted
    at = _app()
    at.run()
    _ok(at)
    # One batched run of the first 8 filters of the last conv layer, with progress previews.
    assert len(runs) == 1 and runs[0][1] == "conv4" and runs[0][2] == list(range(8))
    steps = featureviz.capped_steps(64)
    assert [t[0] for t in ticks] == list(range(1, steps + 1))
    assert ticks[-1][2] == (8, 64, 64, 3)
    # The grid shows each filter's score, the same numbers the library returned.
    images, scores = featureviz_cache.lookup("shapes", "conv4", range(8), **_settings(at))
    assert _captions(at) == [f"#{f}: {s:.3g}" for f, s in enumerate(scores)]
    assert images.shape == (8, 64, 64, 3)
    # The large view is the chosen picture, pixel for pixel.
    at.selectbox(key=f"{P}.large").set_value(3)
    at.run()
    _ok(at)
    z = _array(json.loads(at.get("plotly_chart")[0].proto.spec)["data"][0]["z"])
    np.testing.assert_array_equal(z, np.round(images[3] * 255).astype(np.uint8))
    assert len(runs) == 1  # choosing a tile reruns nothing
    assert {b.proto.label for b in at.get("download_button")} >= {
        "Grid as PNG",
        "This picture as PNG",
    }


def _settings(at: AppTest) -> dict:
    """The settings the page passes, rebuilt from its widgets' defaults."""
    return {
        "steps": 64,
        "size": 64,
        "seed": 0,
        "objective": "channel",
        "param": "fft",
        "decorrelate": True,
        "transforms": "standard",
        "polish": 0.3,
        "tv": 0.0,
        "l2": 0.0,
        "blur_every": 0,
        "optimizer": "adam",
        "learning_rate": 0.2,
        "revive": True,
        "input_range": None,
        "batch_size": None,
    }


def test_results_are_shared_by_a_second_session(counted):
    runs, _ = counted
    first = _app()
    first.run()
    _ok(first)
    second = _app()
    second.run()
    _ok(second)
    assert len(runs) == 1
    assert _captions(first) == _captions(second)


def test_compare_with_plain_gradient_ascent(counted):
    runs, _ = counted
    at = _app(**{f"{P}.compare": True})
    at.run()
    _ok(at)
    assert len(runs) == 2
    texts = " ".join(m.value for m in at.markdown)
    assert "Plain gradient ascent" in texts and "of 8" in texts
    assert len(at.get("image")) >= 2 and len(_captions(at, 1)) == 8


@pytest.mark.parametrize("objective", ["neuron", "class"])
def test_other_objectives_run(objective, counted):
    at = _app(**{f"{P}.objective": objective})
    at.run()
    _ok(at)
    names = [c.split(":")[0] for c in _captions(at)]
    if objective == "class":
        assert names == models.info("shapes").class_names[:8]
    else:
        assert names == [f"#{f}" for f in range(8)]


def test_a_range_of_filters_and_a_gray_model(counted):
    at = _app("digits", **{f"{P}.how": "range", f"{P}.range": (2, 5)})
    at.run()
    _ok(at)
    caps = _captions(at)
    assert [c.split(":")[0] for c in caps] == ["#2", "#3", "#4", "#5"]


def test_a_session_trained_model_uses_its_input_range(counted):
    keras.utils.set_random_seed(0)
    tiny = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            keras.layers.Rescaling(1 / 255),
            keras.layers.Conv2D(4, 3, activation="relu", name="k1"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(2, activation="softmax"),
        ],
        name="tiny",
    )
    at = _app("session:tiny", **{"model._session_models": {"tiny": tiny}})
    at.run()
    _ok(at)
    assert at.radio(key=f"{P}.input_range").value == "0-255"
    assert len(_captions(at)) == 4


def test_a_big_model_waits_for_the_button(counted, monkeypatch):
    runs, _ = counted
    monkeypatch.setenv(featureviz.MAX_STEPS_ENV, "1000")  # the real work decides
    at = _app("lecture:cats_dogs_cnn", **{f"{P}.how": "32"})
    at.run()
    _ok(at)
    assert runs == []
    assert at.button(key=f"{P}.run").proto.label == "Find the pictures"
    # The weights tab still draws while the run waits.
    assert "kernels of 3×3×3" in at.get("image")[-1].proto.imgs[0].caption


def test_weights_tab_shows_first_layer_tiles_and_any_layer_kernels(counted):
    at = _app(**{f"{P}.k_layer": "conv2", f"{P}.k_filter": 5})
    at.run()
    _ok(at)
    net, _ = models.resolve("shapes")
    kernels = weights.conv_kernels("shapes", "conv2")
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    grid = charts[-1]
    assert len(grid["data"]) == 16  # conv2 reads the 16 channels of conv1
    np.testing.assert_allclose(_array(grid["data"][7]["z"]), kernels[5, 7], rtol=1e-5)
    sheet = at.get("image")[-1].proto.imgs[0]
    assert "conv1: 16 kernels of 3×3×3" in sheet.caption
    assert net.get_layer("conv1").kernel.shape == (3, 3, 3, 16)


def test_switching_model_keeps_the_page_working(counted):
    # Choices remembered from the shapes model (classes, a range past digits' conv1) must not
    # break the page when the student switches to the digits model.
    at = _app(**{f"{P}.how": "range", f"{P}.range": (40, 60), f"{P}.layer": "conv4"})
    at.run()
    _ok(at)
    at.session_state["model.name"] = "digits"
    at.session_state[f"{P}.layer"] = "conv1"
    at.run()
    _ok(at)
    assert len(_captions(at)) == 8  # the range fell back to filters 0-7
    at.session_state["model.name"] = "shapes"
    at.radio(key=f"{P}.objective").set_value("class")
    at.run()
    _ok(at)
    at.session_state["model.name"] = "digits"
    at.run()
    _ok(at)
    assert [c.split(":")[0] for c in _captions(at)] == models.info("digits").class_names[:8]
