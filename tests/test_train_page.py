"""The Train page in AppTest: short capped runs train, report curves, stop, wait for a slot,
and hand a model to the other pages; another session's Kernels page keeps running meanwhile."""

import json
import time
from pathlib import Path

import keras
import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from cnnviz import augment, models
from cnnviz.ui import training

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ROOT / "pages" / "train.py"
TIMEOUT = 180


def no_errors(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def wait_for(at: AppTest, job: training.TrainingJob, until, timeout: float = TIMEOUT) -> None:
    """Rerun the page (as the browser's timer would) until `until(snapshot)` holds."""
    t0 = time.monotonic()
    while not until(job.snapshot()):
        assert time.monotonic() - t0 < timeout, f"job stuck: {job.snapshot()}"
        time.sleep(0.3)
        at.run()


def start(at: AppTest, **state) -> training.TrainingJob:
    for k, v in state.items():
        at.session_state[k] = v
    at.run()
    at.button(key="train.start").click().run()
    no_errors(at)
    return at.session_state["train.job"]


@pytest.fixture(scope="module")
def trained():
    """One short run through the router (app.py), as a student would click it."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    at.switch_page("pages/train.py").run()
    no_errors(at)
    job = start(at, **{"train.n_train": 500, "train.epochs": 2})
    wait_for(at, job, lambda s: s.finished)
    at.run()
    no_errors(at)
    return at, job


def test_first_load_shows_the_seed_parameter_counts():
    at = AppTest.from_file(str(TRAIN), default_timeout=TIMEOUT).run()
    no_errors(at)
    # Seed 003: 93,322 parameters with the Flatten head, 56,394 with GlobalAveragePooling.
    assert at.metric[0].value == "93,322"
    at.selectbox(key="train.preset").set_value("mnist_gap").run()
    assert at.metric[0].value == "56,394"
    # Seed 001's CIFAR network on 28×28×1 digits, with batch norm adding its 2·(32+800+512)
    # trainable scales and offsets plus as many moving statistics.
    at.selectbox(key="train.preset").set_value("small_cifar").run()
    plain = int(at.metric[0].value.replace(",", ""))
    at.toggle(key="train.bn").set_value(True).run()
    assert int(at.metric[0].value.replace(",", "")) - plain == 4 * (32 + 800 + 512)
    # The augmentation preset button fills in seed 003's generator settings.
    at.button(key="train.aug_seed003").click().run()
    assert at.slider(key="train.aug_rotation").value == 40
    assert at.selectbox(key="train.aug_flip").value == "horizontal"
    no_errors(at)


def test_short_run_reports_curves_results_and_the_experiment(trained):
    at, job = trained
    snap = job.snapshot()
    assert snap.status == "done" and snap.epoch == 2
    # Curves: one point per epoch for training and validation loss and accuracy.
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert len(snap.history[key]) == 2 and all(np.isfinite(snap.history[key]))
    fig = at.get("plotly_chart")[0]
    assert "Loss" in fig.proto.spec and "validation" in fig.proto.spec
    # Results: test accuracy equals the confusion matrix's diagonal share.
    res = snap.result
    cm = res.confusion
    assert cm.sum() == len(job.data.y_test)
    assert res.test_accuracy == pytest.approx(np.trace(cm) / cm.sum())
    assert [m.label for m in at.metric][-3:] == [
        "Training accuracy",
        "Validation accuracy",
        "Test accuracy",
    ]
    # The run is in the session's experiment table with its settings and accuracies.
    table = at.dataframe[0].value
    assert table["dataset"].tolist() == ["digits"]
    assert table["epochs"].tolist() == ["2/2"]
    assert table["test acc"][0] == f"{100 * res.test_accuracy:.1f}%"


def test_curves_are_drawn_per_batch_with_epoch_marks(trained):
    at, job = trained
    snap = job.snapshot()
    bs = job.settings.batch_size
    # CNNVIZ_MAX_STEPS=3 caps each epoch at 3 batches: 2 epochs give 6 points, not 2.
    assert snap.steps_per_epoch == 3
    for key in ("loss", "accuracy"):
        assert len(snap.batches[key]) == snap.steps_done == 6 > len(snap.history[key])
    # A batch's own accuracy is a count of right answers out of its samples.
    right = np.asarray(snap.batches["accuracy"]) * bs
    assert np.allclose(right, np.round(right), atol=1e-2) and np.all(
        (right > -0.01) & (right < bs + 0.01)
    )
    # The batches of an epoch average (by samples) to Keras' own epoch-end figures.
    for e in range(2):
        for key in ("loss", "accuracy"):
            got = np.mean(snap.batches[key][3 * e : 3 * e + 3])  # full batches: equal weights
            assert got == pytest.approx(snap.history[key][e], rel=1e-4, abs=1e-5)
    fig = at.get("plotly_chart")[0]
    spec = fig.proto.spec
    data = json.loads(spec)
    train_traces = [t for t in data["data"] if t["name"].startswith("training")]
    assert max(len(t["x"]) for t in train_traces) == 6
    # One dotted mark per finished epoch on each of the two plots.
    marks = [s for s in data["layout"]["shapes"] if s["line"].get("dash") == "dot"]
    assert sorted({m["x0"] for m in marks}) == [1, 2] and len(marks) == 4
    # Room above the plots for the "Loss" / "Accuracy" titles.
    assert data["layout"]["margin"]["t"] >= 40


def test_batch_values_undo_the_epoch_to_date_mean():
    # Three batches of sizes 4, 4, 2 with their own losses 1, 3 and 6: Keras reports the
    # running sample-weighted means 1, 2 and (4 + 12 + 12) / 10 = 2.8.
    own = []
    before, seen = {}, 0
    for size, running in ((4, 1.0), (4, 2.0), (2, 2.8)):
        own.append(training.batch_values({"loss": running}, before, seen=seen, size=size)["loss"])
        before, seen = {"loss": running}, seen + size
    assert own == pytest.approx([1.0, 3.0, 6.0])
    assert training.batch_values({"loss": 1.0}, {}, seen=0, size=0) == {}


def test_trained_model_joins_the_picker_and_other_pages_accept_it(trained):
    at, job = trained
    value = at.session_state["model.name"]
    assert value.startswith("session:run 1")
    assert at.session_state["model._session_models"][value.removeprefix("session:")] is job.model
    # The picker's model predicts exactly what the job measured on the test set.
    probs = models.predict(job.model, job.data.x_test)
    np.testing.assert_allclose(probs, job.snapshot().result.probs, atol=1e-6)
    # The .keras download passes the safe-upload checks and gives the same answers.
    loaded = models.load_uploaded(job.keras_bytes())
    np.testing.assert_allclose(
        models.predict(loaded, job.data.x_test[:64]), probs[:64], rtol=1e-5, atol=1e-6
    )
    # The same session's other lessons explore it (those pages that exist in this checkout).
    pages = [
        p for p in ("activations.py", "filters.py", "gradcam.py") if (ROOT / "pages" / p).exists()
    ]
    for page in pages:
        at.switch_page(f"pages/{page}").run()
        no_errors(at)
        assert at.session_state["model.name"] == value, page
        assert at.sidebar.selectbox(key="model.picker").value == value


def test_stop_keeps_weights_while_another_session_reruns_kernels(monkeypatch):
    # A long run (30 epochs, no practical step cap) that only Stop ends.
    monkeypatch.setenv("CNNVIZ_MAX_STEPS", "100000")
    at = AppTest.from_file(str(TRAIN), default_timeout=TIMEOUT)
    job = start(at, **{"train.n_train": 2000, "train.epochs": 30, "train.batch": 32})
    # Past the first epoch's end: Keras traces the validation step there once, a pause of a
    # second or more on a loaded machine during which no batch runs. A Kernels rerun that fell
    # inside that pause saw "no progress" (the flaky failure: steps_done stuck at 50 = one epoch).
    wait_for(at, job, lambda s: s.status == "running" and s.epoch >= 1 and s.steps_done >= 55)
    at.run()  # drawn after the first steps: the bar counts epochs and steps, with time left
    assert at.get("progress")[0].proto.text.startswith("epoch ")
    assert "left" in at.get("progress")[0].proto.text
    before = job.snapshot().steps_done

    # Another student's Kernels page: a first run and a rerun both complete meanwhile.
    kernels = AppTest.from_file(str(ROOT / "pages" / "kernels.py"), default_timeout=TIMEOUT).run()
    no_errors(kernels)
    kernels.slider(key="kernels.stride").set_value(2).run()
    no_errors(kernels)
    during = job.snapshot()
    assert during.status == "running", "training ended before the Kernels page finished"
    assert during.steps_done > before, "training made no progress while Kernels ran"

    wait_for(at, job, lambda s: s.steps_done >= 40)
    at.button(key="train.stop").click().run()
    job.join(TIMEOUT)
    wait_for(at, job, lambda s: s.finished)
    at.run()
    no_errors(at)
    snap = job.snapshot()
    assert snap.status == "stopped" and snap.steps_done < snap.steps_total
    assert "The weights learnt so far are kept" in at.warning[0].value
    # The kept weights are trained: well above the 10 % of guessing on fresh test digits.
    assert snap.result.test_accuracy > 0.3
    assert at.session_state["train.runs"][-1].stopped
    assert at.session_state["model._session_models"]  # the stopped model joined the picker


def test_waiting_for_a_free_slot_is_visible_and_then_runs():
    taken = [
        training.TRAINING_SLOTS.acquire(timeout=TIMEOUT) for _ in range(training.MAX_TRAININGS)
    ]
    assert all(taken)
    try:
        at = AppTest.from_file(str(TRAIN), default_timeout=TIMEOUT)
        job = start(at, **{"train.n_train": 500, "train.epochs": 1})
        time.sleep(0.5)
        at.run()
        assert job.snapshot().status == "waiting" and job.snapshot().steps_done == 0
        assert any("Waiting for a free training slot" in i.value for i in at.info)
    finally:
        for _ in taken:
            training.TRAINING_SLOTS.release()
    # A freed slot starts the waiting run by itself.
    wait_for(at, job, lambda s: s.status != "waiting")
    assert job.snapshot().status in ("running", "done")
    at.button(key="train.stop").click().run()
    job.join(TIMEOUT)
    assert job.snapshot().finished


def test_stop_while_waiting_leaves_the_queue_without_training():
    data = training.cached_data("digits", 500, 100)
    model = training.build_preset("mnist_gap", (28, 28, 1), 10)
    before = [w.copy() for w in model.get_weights()]
    settings = training.TrainSettings("digits", "mnist_gap", 500, 1, 64, "adam", 1e-3, 0.2)
    taken = [
        training.TRAINING_SLOTS.acquire(timeout=TIMEOUT) for _ in range(training.MAX_TRAININGS)
    ]
    try:
        job = training.TrainingJob(settings, model, data, run=1, max_steps=3)
        job.start()
        job.stop()
        job.join(10)
        assert job.snapshot().status == "stopped" and job.snapshot().steps_done == 0
    finally:
        for _ in taken:
            training.TRAINING_SLOTS.release()
    for w0, w1 in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(w0, w1)


def test_augmented_training_keeps_augmentation_out_of_the_model():
    data = training.cached_data("digits", 500, 100)
    model = training.build_preset("mnist_gap", (28, 28, 1), 10)
    aug = augment.SEED_003
    settings = training.TrainSettings(
        "digits", "mnist_gap", 500, 1, 64, "rmsprop", 1e-3, 0.2, augmentation=aug
    )
    job = training.TrainingJob(settings, model, data, run=1, max_steps=2)
    job.start()
    job.join(TIMEOUT)
    snap = job.snapshot()
    assert snap.status == "done" and snap.steps_done == 2
    assert not any(isinstance(layer, keras.layers.RandomRotation) for layer in model.layers)
    # Called twice, the trained model answers the same: nothing random is left inside it.
    x = data.x_test[:8].astype(np.float32)
    np.testing.assert_array_equal(np.asarray(model(x)), np.asarray(model(x)))
    assert "rotate ±40°" in job.experiment().augmentation


def test_offline_keras_dataset_shows_a_clear_message(monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)
    at = AppTest.from_file(str(TRAIN), default_timeout=TIMEOUT).run()
    at.selectbox(key="train.dataset").set_value("mnist").run()
    assert not at.exception
    assert "MNIST is not available" in at.error[0].value
    assert "Digits or Shapes" in at.error[0].value
    assert at.button(key="train.start").disabled
