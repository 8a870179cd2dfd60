"""AppTest: the Transfer page opens, runs the seeds' experiment, and the own-classes flow trains a
model that the Grad-CAM page's picker then offers (CNNVIZ_MAX_STEPS=3 caps every loop); Stop
keeps what was trained; photos come from a zip of class folders, and offline say so."""

import io
import time
import zipfile
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


def wait_job(at: AppTest, until=lambda s: s.finished, timeout: float = TIMEOUT):
    """Rerun the page (as the live panel's timer would) until the job's snapshot satisfies
    `until`; then once more, so a finished job is recorded."""
    job = at.session_state["transfer._job"]
    t0 = time.monotonic()
    while not until(job.snapshot()):
        assert time.monotonic() - t0 < timeout, f"job stuck: {job.snapshot()}"
        time.sleep(0.3)
        at.run()
    at.run()
    return job


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
    at.button(key="transfer.compare_train").click().run()
    no_errors(at)
    job = wait_job(at)
    assert job.snapshot().status == "done"
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
    assert wait_job(at).snapshot().status == "done"
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


def test_offline_imagenet_check_says_so_and_keeps_the_offline_path(offline):
    at = open_page()
    at.button(key="transfer.imagenet_check").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("could not be loaded" in w.value for w in at.warning)
    assert at.radio(key="transfer.exp_base").options == ["the shapes base (offline)"]
    assert len(at.radio(key="transfer.own_base").options) == 1
    assert len(at.radio(key="transfer.photo_base").options) == 1


def test_stop_keeps_the_weights_trained_so_far_and_the_model_joins_the_picker(monkeypatch):
    # A long run (100 epochs, no practical step cap) that only Stop ends.
    monkeypatch.setenv("CNNVIZ_MAX_STEPS", "100000")
    at = open_page()
    at.text_input(key="transfer.name0").set_value("ring")
    at.text_input(key="transfer.name1").set_value("arrow")
    at.session_state["transfer._pictures0"] = stand_in_pictures("ring", 100, seed=5)[:40]
    at.session_state["transfer._pictures1"] = stand_in_pictures("arrow", 100, seed=6)[:40]
    at.slider(key="transfer.own_epochs").set_value(100)
    at.button(key="transfer.own_train").click().run()
    no_errors(at)
    job = at.session_state["transfer._job"]
    assert at.button(key="transfer.own_stop").disabled is False
    assert at.button(key="transfer.own_train").disabled  # one training at a time
    # Past two epochs (32 training pictures per class: 4 batches an epoch).
    t0 = time.monotonic()
    while job.snapshot().steps_done < 9:
        assert time.monotonic() - t0 < TIMEOUT and not job.snapshot().finished, job.snapshot()
        time.sleep(0.2)
    at.run()
    assert at.get("progress")[0].proto.text.startswith("epoch ")
    at.button(key="transfer.own_stop").click().run()
    job.join(TIMEOUT)
    at.run()
    no_errors(at)
    snap = job.snapshot()
    assert snap.status == "stopped"
    assert 2 <= len(snap.result["loss"]) < 100
    assert any("The weights trained so far are kept" in w.value for w in at.warning)
    # The stopped model is the one that trained, in the picker, with what it learnt: its loss
    # on the training pictures now is below the first epoch's mean (a head reset to random
    # weights, or the one from before training, would score about that or worse).
    value = at.session_state["model.name"]
    model = at.session_state["model._session_models"][value.removeprefix("session:")]
    assert model is job.info["model"]
    data = job.info["data"]
    loss_now = model.evaluate(data.x, data.y, verbose=0)[0]
    assert loss_now < snap.result["loss"][0], (loss_now, snap.result["loss"])
    assert at.session_state["transfer._own"]["history"] is snap.result
    assert at.button(key="transfer.own_stop").disabled  # nothing runs any more


def _class_zip(layout: dict[str, tuple[str, int]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for folder, (kind, n) in layout.items():
            for i, png in enumerate(stand_in_pictures(kind, 2 * n + 8, seed=len(folder))[:n]):
                z.writestr(f"{folder}/{i}.png", png)
        z.writestr("notes.txt", b"not a picture")
    return buf.getvalue()


def test_photos_from_a_zip_of_class_folders_fill_their_own_table():
    at = open_page()
    at.radio(key="transfer.photo_source").set_value("zip").run()
    data = _class_zip({"pets/cats": ("ring", 12), "pets/dogs": ("arrow", 12)})
    at.file_uploader(key="transfer.photo_zip").upload("pets.zip", data, "application/zip").run()
    at.select_slider(key="transfer.photo_per_class").set_value(5)
    at.slider(key="transfer.photo_steps").set_value(50)
    at.button(key="transfer.photos_train").click().run()
    assert not at.exception
    assert any("Skipped in the zip: notes.txt" in w.value for w in at.warning)
    assert wait_job(at).snapshot().status == "done"
    runs = at.session_state["transfer._photo_runs"]
    assert list(runs) == [("zip: cats, dogs", "shapes", 5)]
    assert set(runs[("zip: cats, dogs", "shapes", 5)]) == {"scratch", "frozen", "finetune"}
    assert at.dataframe[-1].value.index.tolist() == [("zip: cats, dogs", "shapes", 5)]


def test_a_zip_with_one_class_folder_gets_a_clear_message():
    at = open_page()
    at.radio(key="transfer.photo_source").set_value("zip").run()
    data = _class_zip({"cats": ("ring", 6)})
    at.file_uploader(key="transfer.photo_zip").upload("one.zip", data, "application/zip").run()
    at.button(key="transfer.photos_train").click().run()
    assert not at.exception
    assert any("Expected 2 to 5 class folders" in e.value for e in at.error)
    assert "transfer._job" not in at.session_state
    at.file_uploader(key="transfer.photo_zip").clear()
    at.file_uploader(key="transfer.photo_zip").upload(
        "x.zip", b"PK\x03\x04 junk", "application/zip"
    )
    at.run()
    at.button(key="transfer.photos_train").click().run()
    assert not at.exception
    assert any("cannot be read" in e.value for e in at.error)


@pytest.fixture
def offline(no_network, monkeypatch, tmp_path):
    """No network (conftest's no_network), and empty Keras / weights caches."""
    import collections

    import keras.src.backend.config as keras_config

    from cnnviz.models import applications, loading

    monkeypatch.setattr(keras_config, "_KERAS_DIR", str(tmp_path))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setenv("CNNVIZ_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.setattr(loading, "_cache", collections.OrderedDict())
    monkeypatch.setattr(loading, "_status", {})
    monkeypatch.setattr(applications, "_failed", {})
    return tmp_path


def test_offline_cats_vs_dogs_says_so_in_one_message(offline):
    at = open_page()
    at.button(key="transfer.photos_train").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.error) == 1
    assert "Could not download seed 003's cats-vs-dogs photos" in at.error[0].value
    assert "Upload a zip" in at.error[0].value
    assert "transfer._job" not in at.session_state
    assert not list(offline.rglob("*.zip"))


def test_with_mobilenetv2_weights_here_the_imagenet_base_learns_own_classes_at_96_px(offline):
    import h5py
    import keras
    from keras.src.legacy.saving import legacy_h5_format

    # A stand-in for the prefetched file: MobileNetV2's weights in Keras' own .h5 layout, at
    # the name and place `python -m cnnviz.prefetch mobilenet_v2` gives it (no network used).
    stand_in = keras.applications.MobileNetV2(weights=None)
    with h5py.File(
        offline / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5", "w"
    ) as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, stand_in)
    at = open_page()
    at.button(key="transfer.imagenet_check").click().run()
    no_errors(at)
    assert any("ImageNet weights is ready" in s.value for s in at.success)
    assert "MobileNetV2 (ImageNet) at 128 px" in at.radio(key="transfer.photo_base").options
    at.select_slider(key="transfer.side").set_value(96)
    at.radio(key="transfer.own_base").set_value("mobilenet_v2")
    at.session_state["transfer._pictures0"] = stand_in_pictures("ring", 12, seed=1)
    at.session_state["transfer._pictures1"] = stand_in_pictures("arrow", 12, seed=2)
    at.slider(key="transfer.own_epochs").set_value(2)
    at.button(key="transfer.own_train").click().run()
    no_errors(at)
    assert wait_job(at).snapshot().status == "done"
    no_errors(at)
    model = at.session_state["transfer._own"]["model"]
    assert model.input_shape == (None, 96, 96, 3)
    # The base is the loaded file's weights, copied by name, and frozen.
    conv1 = model.get_layer("base").get_layer("Conv1").get_weights()[0]
    np.testing.assert_array_equal(conv1, stand_in.get_layer("Conv1").get_weights()[0])
    assert at.session_state["model.name"].startswith("session:my classes 1")


def test_stop_during_the_experiment_measures_the_models_as_they_were(monkeypatch):
    monkeypatch.setenv("CNNVIZ_MAX_STEPS", "100000")
    at = open_page()
    at.select_slider(key="transfer.per_class").set_value(100)
    at.slider(key="transfer.steps").set_value(400)
    at.button(key="transfer.compare_train").click().run()
    no_errors(at)
    job = at.session_state["transfer._job"]
    t0 = time.monotonic()
    while job.snapshot().steps_done < 30:  # inside the first (scratch) model's 400 steps
        assert time.monotonic() - t0 < TIMEOUT and not job.snapshot().finished, job.snapshot()
        time.sleep(0.2)
    at.button(key="transfer.compare_stop").click().run()
    job.join(TIMEOUT)
    at.run()
    no_errors(at)
    snap = job.snapshot()
    assert snap.status == "stopped" and snap.steps_done < 3 * 400
    # Only the model that was training when Stop came is in the table, measured as it was.
    row = at.session_state["transfer._runs"][("shapes", 100)]
    assert list(row) == ["scratch"] and 0.0 <= row["scratch"]["accuracy"] <= 1.0
    assert any("The weights trained so far are kept" in w.value for w in at.warning)
    assert at.dataframe[0].value.index.tolist() == [("shapes", 100)]
