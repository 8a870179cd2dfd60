"""Training for the Train page: a background job per session, a server-wide cap, live figures.

Why a thread: a Streamlit script that trains inside its own run cannot react to a Stop click
(the click only reruns the script once the run ends) and repaints nothing in between. So the
page starts a `TrainingJob`, whose thread runs `cnnviz.train.train_model` and writes progress
into the job; the page reads a `snapshot()` and redraws every second with
`st.fragment(run_every=...)`. The thread never touches Streamlit. TensorFlow releases the GIL
inside its ops, so other sessions' pages keep running while a job trains.

Why a semaphore: thirty students pressing Train at once would share two CPU cores thirty ways
and all finish late. `TRAINING_SLOTS` lets `MAX_TRAININGS` jobs run at once per server
process; the others wait, visibly ("Waiting for a free training slot"), and start by
themselves. A job stopped while waiting gives up its place at once.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from cnnviz import architectures, augment, experiments, figures, models
from cnnviz.train import train_model
from cnnviz.ui import slots

__all__ = [
    "MAX_TRAININGS",
    "TRAINING_SLOTS",
    "PRESETS",
    "OPTIMIZERS",
    "TrainSettings",
    "TrainResult",
    "Snapshot",
    "TrainingJob",
    "build_preset",
    "param_count",
    "cached_data",
    "env_max_steps",
    "busy_trainings",
    "progress_text",
    "curves_figure",
    "confusion_figure",
]

#: Trainings that may run at once in this server process (env CNNVIZ_MAX_TRAININGS; default
#: half the cores, at least 1): each training already uses every core TensorFlow can get.
MAX_TRAININGS = max(
    1, int(os.environ.get("CNNVIZ_MAX_TRAININGS", "0") or 0) or (os.cpu_count() or 2) // 2
)
#: The server-wide cap: module state is created once per process and shared by all sessions.
TRAINING_SLOTS = threading.BoundedSemaphore(MAX_TRAININGS)
_BUSY = [0]  # running trainings, for the waiting message
_BUSY_LOCK = threading.Lock()

#: Architecture presets: key -> menu title.
PRESETS: dict[str, str] = {
    "mnist_flatten": "MNIST CNN, Flatten head (seed 003)",
    "mnist_gap": "MNIST CNN, GlobalAveragePooling head (seed 003)",
    "small_cifar": "Small CIFAR CNN (seed 001), with BN / dropout switches",
    "cats_dogs": "Cats-vs-dogs CNN, 4 blocks (seed 003, same padding)",
}
_SHORT_NAMES = {
    "mnist_flatten": "MNIST CNN (Flatten)",
    "mnist_gap": "MNIST CNN (GAP)",
    "small_cifar": "Small CIFAR CNN",
    "cats_dogs": "Cats-vs-dogs-style CNN",
}
#: Optimisers offered, as Keras classes.
OPTIMIZERS: dict[str, type] = {
    "adam": keras.optimizers.Adam,
    "rmsprop": keras.optimizers.RMSprop,
    "sgd": keras.optimizers.SGD,
}


@contextlib.contextmanager
def held_slots(stopped: Callable[[], bool]) -> Iterator[bool]:
    """Hold a training slot, then one of the server's heavy-work slots, for the `with` body.

    Yields True once both are held (released when the body ends), or False, holding
    nothing, when `stopped()` turns true while waiting: a student who presses Stop leaves
    the queue at once. The Train and Transfer pages' jobs both queue through here.
    """
    while not TRAINING_SLOTS.acquire(timeout=0.2):
        if stopped():
            yield False
            return
    try:
        if not slots.acquire(cancelled=stopped):
            yield False
            return
        try:
            yield True
        finally:
            slots.release()
    finally:
        TRAINING_SLOTS.release()


def build_preset(
    preset: str,
    input_shape: tuple[int, int, int],
    classes: int,
    *,
    batch_norm: bool = False,
    dropout: bool = False,
) -> keras.Model:
    """A fresh, untrained preset sized for the data: takes 0..255 pixels (Rescaling inside).

    Raises:
        ValueError: unknown preset, or an input too small for the architecture.
    """
    shape = tuple(int(d) for d in input_shape)
    if preset == "mnist_flatten":
        return architectures.mnist_cnn("flatten", shape, classes, rescale=True)
    if preset == "mnist_gap":
        return architectures.mnist_cnn("gap", shape, classes, rescale=True)
    if preset == "small_cifar":
        return architectures.small_cifar_cnn(batch_norm, dropout, shape, classes, rescale=True)
    if preset == "cats_dogs":
        # Seed 003's four blocks (32, 64, 128, 128) with "same" padding so 28×28 survives four
        # poolings, and a softmax over this data set's classes instead of one sigmoid.
        return architectures.cats_dogs_cnn(
            shape, classes=classes, padding="same", dropout=dropout, rescale=True
        )
    raise ValueError(f"Expected a preset in {list(PRESETS)}. Received {preset!r}.")


@st.cache_data(max_entries=64, show_spinner=False)
def param_count(
    preset: str, input_shape: tuple[int, int, int], classes: int, batch_norm: bool, dropout: bool
) -> int:
    """Parameters of a preset for this input (cached: building a model takes a moment)."""
    model = build_preset(preset, input_shape, classes, batch_norm=batch_norm, dropout=dropout)
    return int(model.count_params())


@st.cache_resource(max_entries=4, ttl=3600, show_spinner=False)
def cached_data(name: str, n_train: int, n_test: int, seed: int = 0) -> experiments.LabData:
    """`experiments.load_data`, once per server for every session; the arrays are read-only."""
    data = experiments.load_data(name, n_train, n_test, seed)
    for arr in data[:4]:
        arr.setflags(write=False)
    return data


def env_max_steps() -> int | None:
    """CNNVIZ_MAX_STEPS (tests set it): a cap on batches per epoch, or None."""
    raw = os.environ.get("CNNVIZ_MAX_STEPS", "").strip()
    return int(raw) if raw.isdigit() and int(raw) > 0 else None


@dataclass(frozen=True)
class TrainSettings:
    """Everything a run uses; the experiment table shows these."""

    dataset: str
    preset: str
    n_train: int
    epochs: int
    batch_size: int
    optimizer: str
    learning_rate: float
    validation_split: float
    augmentation: augment.Augmentation | None = None
    batch_norm: bool = False
    dropout: bool = False
    seed: int = 0

    def architecture(self) -> str:
        """The preset's short name with its switches, e.g. "Small CIFAR CNN + BN + dropout"."""
        name = _SHORT_NAMES[self.preset]
        if self.preset == "small_cifar":
            name += "".join(
                s for s, on in ((" + BN", self.batch_norm), (" + dropout", self.dropout)) if on
            )
        return name


@dataclass
class TrainResult:
    """What the finished job measured on the test set."""

    test_accuracy: float
    confusion: np.ndarray  # (K, K) counts, rows = true class
    worst: experiments.Worst
    probs: np.ndarray  # (N_test, K)


@dataclass
class Snapshot:
    """A consistent copy of a job's state for one redraw."""

    status: str  # "waiting" | "running" | "done" | "stopped" | "error"
    history: dict[str, list[float]]
    steps_done: int
    steps_total: int
    epoch: int  # full epochs completed
    elapsed: float  # seconds of training so far
    eta: float | None  # seconds left, None before the first step
    error: str | None
    result: TrainResult | None
    #: Training loss and accuracy of every batch so far ("loss", "accuracy"), in step order.
    batches: dict[str, list[float]] = field(default_factory=dict)
    steps_per_epoch: int = 1

    @property
    def finished(self) -> bool:
        return self.status in ("done", "stopped", "error")

    @property
    def fraction(self) -> float:
        return 0.0 if self.steps_total <= 0 else min(1.0, self.steps_done / self.steps_total)


class TrainingJob:
    """One training run in a background thread. Create, `start()`, poll `snapshot()`, `stop()`.

    `model` is the network being trained (trained in place, so a stopped job keeps the
    weights learnt so far). Augmentation layers wrap it only for `fit`, so the model that
    joins the picker never augments.
    """

    def __init__(
        self,
        settings: TrainSettings,
        model: keras.Model,
        data: experiments.LabData,
        run: int,
        *,
        max_steps: int | None = None,
    ) -> None:
        # max_steps caps batches per epoch; None reads CNNVIZ_MAX_STEPS (unset: no cap).
        self.settings, self.model, self.data, self.run = settings, model, data, run
        self.max_steps = max_steps
        #: Set by the page once the run is recorded and the model registered.
        self.finalised = False
        self._status = "waiting"
        self._history: dict[str, list[float]] = {}
        self._steps = 0
        self._steps_total = 0
        self._t_start: float | None = None
        self._t_end: float | None = None
        self._error: str | None = None
        self._result: TrainResult | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._keras_bytes: bytes | None = None
        self._split: tuple[np.ndarray, ...] = ()
        self._steps_per_epoch = 1
        self._n_fit = 0  # training samples per epoch (after the step cap)
        self._batches: dict[str, list[float]] = {}
        self._running: dict[str, float] = {}  # Keras' epoch-to-date means after the last batch
        self._fit_model: keras.Model | None = None

    def start(self) -> None:
        """Start the background thread (it first waits for a free training slot)."""
        s = self.settings
        # Split once here so the step count (and the progress bar) is known before training.
        self._split = experiments.split_validation(
            self.data.x_train, self.data.y_train, s.validation_split, seed=s.seed
        )
        n = len(self._split[0])
        # The same cap train_model applies: batches per epoch (CNNVIZ_MAX_STEPS in tests).
        if self.max_steps is None:
            self.max_steps = env_max_steps()
        if self.max_steps is not None:
            n = min(n, self.max_steps * s.batch_size)
        self._n_fit = n
        self._steps_per_epoch = math.ceil(n / s.batch_size)
        self._steps_total = s.epochs * self._steps_per_epoch
        self._thread = threading.Thread(target=self._run, name=f"train-{self.run}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Ask the job to stop after the current batch; the weights so far are kept."""
        self._stop.set()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the thread to end (tests and shutdown)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def snapshot(self) -> Snapshot:
        """The job's state now, copied under the lock."""
        with self._lock:
            elapsed = 0.0
            if self._t_start is not None:
                elapsed = (self._t_end or time.monotonic()) - self._t_start
            eta = None
            if self._status == "running" and self._steps > 0:
                eta = elapsed / self._steps * max(0, self._steps_total - self._steps)
            return Snapshot(
                status=self._status,
                history={k: list(v) for k, v in self._history.items()},
                steps_done=self._steps,
                steps_total=self._steps_total,
                # Keras reports a stopped partial epoch too; count only the full ones.
                epoch=min(len(self._history.get("loss", [])), self._steps // self._steps_per_epoch),
                elapsed=elapsed,
                eta=eta,
                error=self._error,
                result=self._result,
                batches={k: list(v) for k, v in self._batches.items()},
                steps_per_epoch=self._steps_per_epoch,
            )

    def experiment(self) -> experiments.Experiment:
        """This run as a row of the experiment table."""
        snap, s = self.snapshot(), self.settings
        aug = s.augmentation.describe() if s.augmentation is not None else "none"
        return experiments.Experiment(
            run=self.run,
            dataset=s.dataset,
            architecture=s.architecture(),
            params=int(self.model.count_params()),
            epochs=s.epochs,
            epochs_done=snap.epoch,
            batch_size=s.batch_size,
            optimizer=s.optimizer,
            learning_rate=s.learning_rate,
            validation_split=s.validation_split,
            augmentation=aug,
            train_accuracy=experiments.last_value(snap.history, "accuracy"),
            val_accuracy=experiments.last_value(snap.history, "val_accuracy"),
            test_accuracy=snap.result.test_accuracy if snap.result else None,
            seconds=snap.elapsed,
            stopped=snap.status == "stopped",
        )

    def keras_bytes(self) -> bytes:
        """The trained model as a `.keras` file (made once, on the first download)."""
        if self._keras_bytes is None:
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "model.keras"
                self.model.save(path)
                self._keras_bytes = path.read_bytes()
        return self._keras_bytes

    # ---- the background thread ------------------------------------------------------------

    def _set(self, **changes: Any) -> None:
        with self._lock:
            for k, v in changes.items():
                setattr(self, f"_{k}", v)

    def _poll_stop(self) -> bool:
        # train_model polls this after every batch (in the training thread): count the batch
        # for the progress bar and record its loss and accuracy for the live curves.
        running = {}
        if self._fit_model is not None:
            running = {
                k: float(v)
                for k, v in self._fit_model.get_metrics_result().items()
                if k in ("loss", "accuracy")
            }
        with self._lock:
            j = self._steps % self._steps_per_epoch  # this batch's index within its epoch
            self._steps += 1
            values = batch_values(
                running,
                {} if j == 0 else self._running,
                seen=j * self.settings.batch_size,
                size=min(self.settings.batch_size, self._n_fit - j * self.settings.batch_size),
            )
            self._running = running
            for k, v in values.items():
                self._batches.setdefault(k, []).append(v)
        return self._stop.is_set()

    def _on_epoch(self, epoch: int, logs: dict[str, float]) -> None:
        with self._lock:
            for k, v in logs.items():
                self._history.setdefault(k, []).append(float(v))

    def _run(self) -> None:
        try:
            # Wait for a free training slot, then for one of the server's heavy-work slots
            # (shared with Grad-CAM and feature visualisation); Stop leaves the queue.
            with held_slots(self._stop.is_set) as held:
                if not held:
                    self._set(status="stopped")
                    return
                with _BUSY_LOCK:
                    _BUSY[0] += 1
                try:
                    self._set(status="running", t_start=time.monotonic())
                    self._train()
                finally:
                    with _BUSY_LOCK:
                        _BUSY[0] -= 1
        except Exception as err:  # noqa: BLE001 - shown on the page, never a traceback
            self._set(status="error", error=f"{type(err).__name__}: {err}", t_end=time.monotonic())

    def _train(self) -> None:
        s = self.settings
        x_tr, y_tr, x_val, y_val = self._split
        # Augmentation only during fit: a wrapper whose first layers are the Keras random layers.
        aug = s.augmentation or augment.Augmentation()
        fit_model = keras.Sequential(
            [augment.augmentation_layers(aug, s.seed), self.model], name="training"
        )
        fit_model.compile(
            optimizer=OPTIMIZERS[s.optimizer](learning_rate=s.learning_rate),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        self._fit_model = fit_model  # read by _poll_stop after every batch
        train_model(
            fit_model,
            x_tr,
            y_tr,
            epochs=s.epochs,
            batch_size=s.batch_size,
            validation_data=(x_val, y_val) if len(x_val) else None,
            progress=self._on_epoch,
            stop=self._poll_stop,
            max_steps=self.max_steps,
        )
        stopped = self._stop.is_set()
        # Test set: probabilities from the trained network itself (no augmentation).
        probs = models.predict(self.model, self.data.x_test)
        y_test = self.data.y_test
        result = TrainResult(
            test_accuracy=float(np.mean(probs.argmax(axis=1) == y_test)),
            confusion=experiments.confusion_matrix(
                y_test, probs.argmax(axis=1), len(self.data.classes)
            ),
            worst=experiments.worst_examples(probs, y_test, k=16),
            probs=probs,
        )
        self._set(result=result, status="stopped" if stopped else "done", t_end=time.monotonic())


def batch_values(
    running: dict[str, float], before: dict[str, float], *, seen: int, size: int
) -> dict[str, float]:
    """One batch's own loss and accuracy, from Keras' epoch-to-date means.

    During `fit` Keras reports, after each batch, the mean over the epoch so far, weighted by
    samples (its loss tracker is a `Mean` updated with sample_weight = batch size). So the
    batch's own value is what it added to the sum:
    (mean_after · (seen + size) − mean_before · seen) / size.

    Args:
        running: the means after this batch ({"loss": ..., "accuracy": ...}).
        before: the means after the previous batch of the same epoch ({} for the first).
        seen: samples in the earlier batches of this epoch.
        size: samples in this batch.

    Returns:
        {"loss": ..., "accuracy": ...} for this batch alone (keys present in `running`).
    """
    if size <= 0:
        return {}
    return {k: (v * (seen + size) - before.get(k, 0.0) * seen) / size for k, v in running.items()}


def busy_trainings() -> int:
    """How many trainings are running in this server process now."""
    with _BUSY_LOCK:
        return _BUSY[0]


def _fmt_seconds(s: float) -> str:
    s = max(0, round(s))
    return f"{s // 60} min {s % 60:02d} s" if s >= 60 else f"{s} s"


def progress_text(snap: Snapshot, epochs: int) -> str:
    """ "epoch 2 of 3 · step 40 of 120 · about 12 s left" for the progress bar."""
    if snap.steps_done == 0:
        return "getting ready: TensorFlow compiles the network before the first step…"
    parts = [f"epoch {min(snap.epoch + 1, epochs)} of {epochs}"]
    parts.append(f"step {snap.steps_done} of {snap.steps_total}")
    if snap.eta is not None:
        parts.append(f"about {_fmt_seconds(snap.eta)} left")
    return " · ".join(parts)


# ---- figures ------------------------------------------------------------------------------

_TRAIN_COLOUR, _VAL_COLOUR = "#1f77b4", "#ff7f0e"  # plotly blue / orange: colour-blind safe pair


def curves_figure(
    history: dict[str, list[float]],
    *,
    batches: dict[str, list[float]] | None = None,
    steps_per_epoch: int = 1,
    smooth: float | None = None,
    height: int = 360,
) -> go.Figure:
    """Loss and accuracy: training per batch (solid), validation per epoch (dashed).

    The x axis counts epochs; batch i of a run sits at (i + 1) / steps_per_epoch, so the
    validation point of epoch e sits where its last batch ends, and a dotted line marks
    every epoch's end. Without `batches` the training curve is Keras' per-epoch history.

    With `smooth`, seed 003's running average (`experiments.smooth_curve(points, smooth)`) is
    drawn on top and the raw points are faded.
    """
    # Room above the plots for the subplot titles (figures.style leaves none without a title).
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Loss", "Accuracy"), horizontal_spacing=0.1)
    width = 4 if figures.projector_mode() else 2
    n_epochs = len(history.get("loss", []))
    # Per batch whenever batches are given, even none yet: the empty axes are drawn from the
    # start of a run, so the browser has the chart ready before the first batch arrives.
    per_batch = batches is not None
    spe = max(1, int(steps_per_epoch))
    for col, metric in ((1, "loss"), (2, "accuracy")):
        for prefix, label, colour, dash in (
            ("", "training", _TRAIN_COLOUR, "solid"),
            ("val_", "validation", _VAL_COLOUR, "dash"),
        ):
            if prefix == "" and per_batch:
                ys = batches.get(metric, [])
                xs = [(i + 1) / spe for i in range(len(ys))]
                name, mode = f"{label} (per batch)", "lines"
            else:
                ys = history.get(prefix + metric, [])
                xs = list(range(1, len(ys) + 1))
                name, mode = f"{label} (per epoch)", "lines+markers"
            if not ys:
                continue
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=ys,
                    name=name,
                    legendgroup=label,
                    showlegend=col == 1,
                    mode=mode,
                    opacity=0.35 if smooth else 1.0,
                    line=dict(color=colour, dash=dash, width=1 if mode == "lines" else width),
                ),
                row=1,
                col=col,
            )
            if smooth:
                fig.add_trace(
                    go.Scatter(
                        x=xs,
                        y=experiments.smooth_curve(ys, smooth).tolist(),
                        name=f"{label} (smoothed)",
                        legendgroup=label,
                        showlegend=col == 1,
                        mode="lines",
                        line=dict(color=colour, dash=dash, width=width + 1),
                    ),
                    row=1,
                    col=col,
                )
    # Epoch marks: a dotted line where each finished epoch ends (on both plots).
    done = max(n_epochs, len(batches.get("loss", [])) // spe if per_batch else 0)
    for e in range(1, done + 1):
        fig.add_vline(x=e, line=dict(color="#999", width=1, dash="dot"), row="all", col="all")
    span = len(batches.get("loss", [])) / spe if per_batch else n_epochs
    fig.update_xaxes(
        title_text="epoch",
        dtick=1 if span <= 15 else None,
        range=[0 if per_batch else 0.5, max(1.0, span) + (0.05 if per_batch else 0.5)],
    )
    fig.update_yaxes(rangemode="tozero", row=1, col=1)
    fig.update_layout(legend=dict(orientation="h", y=-0.3))
    figures.style(fig, height=height)
    fig.update_layout(margin=dict(t=56 if figures.projector_mode() else 40))
    return fig


def confusion_figure(cm: np.ndarray, classes: list[str]) -> go.Figure:
    """The confusion matrix with its counts, class names on the axes (rows = true class)."""
    fig = figures.heatmap(cm, colorscale="Blues", show_values=len(classes) <= 12, height=420)
    ticks = list(range(len(classes)))
    fig.update_xaxes(title_text="predicted", tickvals=ticks, ticktext=classes, showticklabels=True)
    fig.update_yaxes(title_text="true", tickvals=ticks, ticktext=classes, showticklabels=True)
    return fig
