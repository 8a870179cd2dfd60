"""AppTest: the Transfer page opens, runs the seeds' experiment, and the own-classes flow trains a
model that the Grad-CAM page's picker then offers (CNNVIZ_MAX_STEPS=3 caps every loop)."""

from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from cnnviz import datasets, images

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 300


def no_errors(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def stand_in_pictures(kind: str, n: int, seed: int) -> list[bytes]:
    """Generated stand-ins for camera snapshots: PNG bytes of one novel shape, 96×96 px."""
    x, _ = datasets.novel_shapes(n, seed=seed, size=96, classes=[kind, "pentagon"])
    _, y = datasets.novel_shapes(n, seed=seed, size=96, classes=[kind, "pentagon"])
    return [images.to_png_bytes(im) for im, label in zip(x, y, strict=True) if label == 0]


def open_page() -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    at.switch_page("pages/transfer.py").run()
    no_errors(at)
    return at


def test_page_opens_and_the_experiment_fills_the_table():
    at = open_page()
    assert at.title[0].value.startswith("Transfer learning")
    at.select_slider(key="transfer.per_class").set_value(5)
    at.slider(key="transfer.steps").set_value(50)
    at.button(key="transfer.compare").click().run()
    no_errors(at)
    runs = at.session_state["transfer._runs"]
    assert set(runs[("shapes", 5)]) == {"scratch", "frozen", "finetune"}
    for r in runs[("shapes", 5)].values():
        assert 0.0 <= r["accuracy"] <= 1.0 and r["history"]["val_accuracy"]
    assert len(at.dataframe) == 1
    assert at.dataframe[0].value.index.tolist() == [("shapes", 5)]


@pytest.fixture(scope="module")
def own_trained():
    at = open_page()
    at.text_input(key="transfer.name0").set_value("ring")
    at.text_input(key="transfer.name1").set_value("arrow")
    at.session_state["transfer._pictures0"] = stand_in_pictures("ring", 12, seed=1)
    at.session_state["transfer._pictures1"] = stand_in_pictures("arrow", 12, seed=2)
    at.slider(key="transfer.own_epochs").set_value(2)
    at.button(key="transfer.own_train").click().run()
    no_errors(at)
    return at


def test_own_classes_train_and_join_the_gradcam_picker(own_trained):
    at = own_trained
    value = at.session_state["model.name"]
    assert value == "session:my classes 1: ring, arrow"
    model = at.session_state["model._session_models"][value.removeprefix("session:")]
    assert model.output_shape == (None, 2)
    assert at.session_state["model._session_classes"][value.removeprefix("session:")] == [
        "ring",
        "arrow",
    ]
    assert len(at.session_state["transfer._own"]["history"]["loss"]) == 2
    at.switch_page("pages/gradcam.py").run()
    no_errors(at)  # Grad-CAM explains the new model (its nested base included)
    picker = at.sidebar.selectbox(key="model.picker")
    assert "Trained here: my classes 1: ring, arrow" in picker.options
    assert picker.value == value
    # The other explaining lessons that exist in this checkout take it too.
    for other in ("activations.py", "network.py"):
        if (ROOT / "pages" / other).exists():
            at.switch_page(f"pages/{other}").run()
            no_errors(at)
            assert at.session_state["model.name"] == value, other


def test_hostile_picture_and_one_picture_class_get_clear_messages():
    at = open_page()
    at.session_state["transfer._pictures0"] = [b"<script>not a picture</script>"] + (
        stand_in_pictures("ring", 6, seed=3)
    )
    at.session_state["transfer._pictures1"] = stand_in_pictures("arrow", 2, seed=4)[:1]
    at.run()
    assert not at.exception
    assert any("Refused and left out" in e.value and "picture 1" in e.value for e in at.error)
    at.button(key="transfer.own_train").click().run()
    assert not at.exception
    assert any("has 1 picture(s)" in e.value and "at least 2" in e.value for e in at.error)
    assert "transfer._own" not in at.session_state


def test_own_classes_export_loads_back_with_its_class_names(own_trained):
    import json

    from cnnviz import models, transfer

    own = own_trained.session_state["transfer._own"]
    keras_file, card = transfer.export(own["model"], own["classes"])
    loaded = models.load_uploaded(keras_file)
    x = np.zeros((2, 64, 64, 3), np.float32) + 128
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), own["model"].predict(x, verbose=0), atol=1e-6
    )
    assert json.loads(card)["classes"] == ["ring", "arrow"]


def test_offline_imagenet_check_says_so_and_keeps_the_offline_path(monkeypatch, tmp_path):
    import collections
    import socket

    import keras.src.backend.config as keras_config

    from cnnviz.models import applications, loading

    def refuse(*args, **kwargs):
        raise socket.gaierror(-3, "mocked: no network")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(keras_config, "_KERAS_DIR", str(tmp_path))
    monkeypatch.setenv("CNNVIZ_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.setattr(loading, "_cache", collections.OrderedDict())
    monkeypatch.setattr(loading, "_status", {})
    monkeypatch.setattr(applications, "_failed", {})
    at = open_page()
    at.button(key="transfer.imagenet_check").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("could not be loaded" in w.value for w in at.warning)
    assert at.radio(key="transfer.exp_base").options == ["the shapes base (offline)"]
    assert len(at.radio(key="transfer.own_base").options) == 1
