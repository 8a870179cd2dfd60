"""AppTest for the Architecture page: every built-in and lecture model, the shared picker."""

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

keras = pytest.importorskip("keras")

from cnnviz import models  # noqa: E402

PAGE = Path(__file__).resolve().parents[1] / "pages" / "architecture.py"
P = "architecture"
LECTURE_COUNTS = {
    "lecture:mnist_cnn": "93,322",
    "lecture:mnist_cnn_base": "55,744",
    "lecture:mnist_cnn_gap": "56,394",
    "lecture:cats_dogs_cnn": "3,453,121",
    "lecture:small_cifar_cnn": "605,610",
    "lecture:vgg16_base": "14,714,688",
    "lecture:vgg16": "138,357,544",
}


def _app(model: str) -> AppTest:
    at = AppTest.from_file(str(PAGE), default_timeout=120)
    at.session_state["model.name"] = model
    return at


def _ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def _traces(at: AppTest) -> list[dict]:
    return json.loads(at.get("plotly_chart")[0].proto.spec)["data"]


@pytest.mark.parametrize("name", models.builtin_names() + list(LECTURE_COUNTS))
def test_page_loads_for_every_builtin_and_lecture_model(name):
    if name in models.builtin_names():
        # Shipped with the project: a missing file is a failure, never a skip.
        assert (models.ASSETS / f"{name}.keras").exists(), f"run: python -m cnnviz.train {name}"
    at = _app(name)
    at.run()
    _ok(at)
    assert at.session_state["model.name"] == name
    assert at.sidebar.selectbox(key="model.picker").value == name
    total = at.metric[0].value
    net = models.load(name)
    assert total == f"{net.count_params():,}"
    if name in LECTURE_COUNTS:
        assert total == LECTURE_COUNTS[name]
        assert "the same count" in at.caption[0].value
        assert any("random weights" in w.value for w in at.warning)
    table = at.dataframe[0].value
    assert len(table) == len(models.summary(name))
    assert table["parameters"].sum() == net.count_params()
    assert len(_traces(at)) >= 2


def test_receptive_field_column_and_downloads():
    at = _app("lecture:mnist_cnn")
    at.run()
    _ok(at)
    table = at.dataframe[0].value
    assert list(table["receptive field"][:5]) == ["3", "4", "8", "10", "18"]
    assert list(table["output shape"][:2]) == ["(None, 26, 26, 32)", "(None, 13, 13, 32)"]
    keys = {b.key for b in at.get("download_button")}
    assert {f"{P}.dl_csv", f"{P}.dl_json", f"{P}.dl_flow"} <= keys


def test_shape_flow_toggle_hides_layers_that_keep_the_shape():
    mine = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            keras.layers.Conv2D(4, 3, name="conv"),
            keras.layers.BatchNormalization(name="bn"),
            keras.layers.Activation("relu", name="relu"),
            keras.layers.MaxPooling2D(name="pool"),
        ],
        name="mine",
    )
    at = AppTest.from_file(str(PAGE), default_timeout=120)
    at.session_state["model._session_models"] = {"mine": mine}
    at.session_state["model.name"] = "session:mine"
    at.run()
    at.toggle(key=f"{P}.only_changes").set_value(False).run()
    _ok(at)
    assert [t["name"] for t in _traces(at)] == ["input", "conv", "bn", "relu", "pool"]
    at.toggle(key=f"{P}.only_changes").set_value(True).run()
    assert [t["name"] for t in _traces(at)] == ["input", "conv", "pool"]
    assert [t["text"] for t in _traces(at)] == ["input: 16×16×3", "conv: 14×14×4", "pool: 7×7×4"]


def test_picker_choice_persists_and_switches():
    at = _app("lecture:mnist_cnn")
    at.run()
    at.sidebar.selectbox(key="model.picker").set_value("lecture:cats_dogs_cnn").run()
    _ok(at)
    assert at.session_state["model.name"] == "lecture:cats_dogs_cnn"
    assert at.metric[0].value == "3,453,121"
    # Lecture models already have random weights: the switch is off and disabled for them.
    assert at.sidebar.toggle(key="model.random").disabled


def test_random_variant_of_a_builtin():
    assert (models.ASSETS / "digits.keras").exists(), "run: python -m cnnviz.train digits"
    at = _app("digits")
    at.run()
    at.sidebar.toggle(key="model.random").set_value(True).run()
    _ok(at)
    assert at.session_state["model.name"] == "random:digits"
    assert any("freshly initialised" in w.value for w in at.warning)


def test_session_trained_model_is_listed_and_shown():
    keras.utils.set_random_seed(0)
    base = keras.Sequential(
        [keras.Input((12, 12, 3)), keras.layers.Conv2D(2, 3, name="c")], name="base"
    )
    mine = keras.Sequential(
        [keras.Input((12, 12, 3)), base, keras.layers.Flatten(), keras.layers.Dense(2)],
        name="mine",
    )
    at = AppTest.from_file(str(PAGE), default_timeout=120)
    at.session_state["model._session_models"] = {"mine": mine}
    at.session_state["model.name"] = "session:mine"
    at.run()
    _ok(at)
    assert at.sidebar.selectbox(key="model.picker").value == "session:mine"
    assert at.metric[0].value == f"{mine.count_params():,}"
    assert list(at.dataframe[0].value["layer"])[:2] == ["base", "    base/c"]
    at.toggle(key=f"{P}.nested").set_value(False).run()
    assert "    base/c" not in list(at.dataframe[0].value["layer"])


def test_shape_flow_is_readable_and_speaks_to_students():
    at = _app("shapes").run()
    _ok(at)
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    # Few boxes: layer names level, shapes over the boxes in large type, one number per line.
    assert spec["layout"]["xaxis"]["tickangle"] == 0
    assert spec["layout"]["xaxis"]["tickfont"]["size"] >= 15
    labels = [a["text"] for a in spec["layout"]["annotations"]]
    assert "64×64<br>×16" in labels and all(
        a.get("textangle") in (None, 0) for a in spec["layout"]["annotations"]
    )
    # No developer talk about server-side export libraries.
    text = " ".join(c.value for c in at.caption) + " ".join(m.value for m in at.markdown)
    assert "kaleido" not in text.lower() and "camera icon" in text
