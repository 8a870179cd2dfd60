"""The Transfer page's caches, state and training job.

Pictures of the student's own classes live in session state as PNG/JPEG bytes, one list per
class (`pictures_key(i)`), added from uploads and camera snapshots; every one goes through
`cnnviz.images.load_image` (cached by its hash) before it is used.

Training runs in a `TransferJob`, a background thread like the Train page's `TrainingJob`
(`cnnviz.ui.training`, reused here, not copied: its server-wide `TRAINING_SLOTS` and the heavy
`slots`), so a Stop click reaches it between two batches: a script that trained inside its own
run would only see the click after the run ended.
"""

from __future__ import annotations

import hashlib
import posixpath
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import streamlit as st

from cnnviz import images, imageset, models, transfer
from cnnviz.ui import training

__all__ = [
    "P",
    "IMAGENET_SIDES",
    "cached_task",
    "cached_cats_dogs",
    "cached_zip_task",
    "pictures_key",
    "add_picture",
    "decode_class",
    "imagenet_base",
    "JobSnapshot",
    "TransferJob",
    "WAITING",
    "compare_job",
    "own_job",
]

P = "transfer"
#: Sides MobileNetV2 is rebuilt at for the online base (96–160 px is quick on a CPU).
IMAGENET_SIDES = (96, 128, 160)
#: The default of those.
IMAGENET_SIDE = 128


@dataclass
class JobSnapshot:
    """A consistent copy of a job's state for one redraw."""

    status: str  # "waiting" | "running" | "done" | "stopped" | "error"
    fraction: float
    text: str
    steps_done: int
    result: Any
    error: str | None

    @property
    def finished(self) -> bool:
        return self.status in ("done", "stopped", "error")


class TransferJob:
    """Run `work(progress, stop)` in a background thread; poll `snapshot()`, `stop()` it.

    `work` gets `progress(fraction, text)` to report and `stop()` to poll after every batch
    (pass it to `transfer.fit` / `transfer.compare`); what it returns becomes the result. A
    stopped job still returns: the models keep the weights learnt so far. A ValueError's
    message is shown as it is; any other exception as its type and message, never a traceback.
    `kind` tells the page which panel the job belongs to; `info` is the page's own record.
    """

    def __init__(
        self,
        kind: str,
        work: Callable[[Callable[[float, str], None], Callable[[], bool]], Any],
        info: dict | None = None,
    ) -> None:
        self.kind, self.info, self._work = kind, dict(info or {}), work
        #: Set by the page once it has recorded the result.
        self.finalised = False
        self._status, self._fraction, self._text = "waiting", 0.0, "Starting…"
        self._steps, self._result, self._error = 0, None, None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"transfer-{kind}", daemon=True)

    def start(self) -> TransferJob:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Ask the job to stop after the current batch; the weights so far are kept."""
        self._stop.set()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def snapshot(self) -> JobSnapshot:
        with self._lock:
            return JobSnapshot(
                self._status, self._fraction, self._text, self._steps, self._result, self._error
            )

    def _set(self, **changes: Any) -> None:
        with self._lock:
            for k, v in changes.items():
                setattr(self, f"_{k}", v)

    def _progress(self, fraction: float, text: str) -> None:
        self._set(fraction=min(1.0, max(0.0, float(fraction))), text=text)

    def _poll_stop(self) -> bool:
        with self._lock:
            self._steps += 1
        return self._stop.is_set()

    def _run(self) -> None:
        try:
            # The Train page's server-wide caps; Stop while waiting leaves the queue at once.
            with training.held_slots(self._stop.is_set) as held:
                if not held:
                    self._set(status="stopped")
                    return
                self._set(status="running")
                result = self._work(self._progress, self._poll_stop)
            status = "stopped" if self._stop.is_set() else "done"
            self._set(result=result, status=status, fraction=1.0)
        except ValueError as err:
            self._set(status="error", error=str(err))
        except Exception as err:  # noqa: BLE001 - shown on the page, never a traceback
            self._set(status="error", error=f"{type(err).__name__}: {str(err)[:300]}")


WAITING = (
    "Waiting for a free training slot: other students are training. Your run starts by itself."
)


def compare_job(
    kind: str,
    base: str,
    task: transfer.NovelTask,
    *,
    steps: int,
    titles: dict[str, str],
    input_size: int | None = None,
    info: dict | None = None,
) -> TransferJob:
    """A started job (of `kind`: the page's section) that runs `transfer.compare` over
    `titles`' modes; its result is {mode: {"history", "accuracy"}} for the modes that
    trained (all, unless stopped)."""
    order = list(titles)

    def work(progress: Callable[[float, str], None], stop: Callable[[], bool]) -> dict:
        def on_epoch(mode: str, epoch: int, epochs: int, logs: dict) -> None:
            done = (order.index(mode) + (epoch + 1) / epochs) / len(order)
            acc = logs.get("val_accuracy", 0.0)
            progress(done, f"{titles[mode]}: epoch {epoch + 1}/{epochs}, validation {acc:.0%}")

        results = transfer.compare(
            base,
            task,
            modes=tuple(order),
            steps=steps,
            progress=on_epoch,
            stop=stop,
            input_size=input_size,
        )
        # The models themselves are not kept: three per run would fill the session.
        return {m: {"history": r["history"], "accuracy": r["accuracy"]} for m, r in results.items()}

    return TransferJob(kind, work, info).start()


def own_job(
    model: Any, data: transfer.OwnData, *, epochs: int, info: dict | None = None
) -> TransferJob:
    """A started job that trains `model`'s head on the student's classes (in place, so a
    stopped job keeps what it learnt); its result is the per-epoch history."""

    def work(progress: Callable[[float, str], None], stop: Callable[[], bool]) -> dict:
        return transfer.fit(
            model,
            data.x,
            data.y,
            epochs=epochs,
            batch_size=16,
            validation_data=(data.x_val, data.y_val),
            progress=lambda e, logs: progress(
                (e + 1) / epochs,
                f"epoch {e + 1}/{epochs}, validation {logs.get('val_accuracy', 0.0):.0%}",
            ),
            stop=stop,
        )

    return TransferJob(
        "own", work, {"model": model, "data": data, "epochs": epochs, **(info or {})}
    ).start()


@st.cache_data(max_entries=6, ttl=3600, show_spinner=False)
def cached_task(per_class: int, seed: int = 0, size: int = 64) -> transfer.NovelTask:
    """The new-classes task (`transfer.novel_task`), generated once per size."""
    return transfer.novel_task(per_class, seed=seed, size=size)


# Few entries: one task at 160 px with 100 photos per class is about 140 MB of float32.
@st.cache_data(max_entries=3, ttl=3600, show_spinner=False)
def cached_cats_dogs(per_class: int, size: int, seed: int = 0) -> transfer.NovelTask:
    """Seed 003's cats vs dogs (`transfer.cats_vs_dogs`), downloaded and decoded once."""
    return transfer.cats_vs_dogs(per_class, size=size, seed=seed)


# Two entries: a full zip (2,000 pictures at 160 px) decodes to about 150 MB.
@st.cache_data(max_entries=2, ttl=1800, show_spinner=False)
def _zip_set(digest: str, _data: bytes, size: int) -> imageset.ImageSet:
    # Keyed by the hash: a rerun does not unpack and decode the same zip again.
    return imageset.load_zip(_data, size=(size, size))


def cached_zip_task(
    data: bytes, size: int, per_class: int, seed: int = 0
) -> tuple[transfer.NovelTask, list[str]]:
    """An uploaded zip of class folders as a few-shot task, and the members it skipped.

    Raises:
        imageset.ImageSetError: the zip is refused (size, bomb, names, no pictures).
        transfer.PhotoError: not 2..5 class folders, or a class with one picture.
    """
    found = _zip_set(hashlib.sha256(data).hexdigest(), data, int(size))
    folders = [posixpath.dirname(n) for n in found.names]
    return transfer.folder_task(found.images, folders, per_class, seed=seed), found.skipped


def pictures_key(i: int) -> str:
    """Session-state key of class i's list of picture bytes."""
    return f"{P}._pictures{i}"


def add_picture(i: int, data: bytes) -> bool:
    """Append a picture's bytes to class i (a repeat of the same bytes is ignored)."""
    pics = st.session_state.setdefault(pictures_key(i), [])
    if len(pics) >= transfer.MAX_IMAGES_PER_CLASS or data in pics:
        return False
    pics.append(bytes(data))
    return True


@st.cache_data(max_entries=512, ttl=3600, show_spinner=False)
def _decode(digest: str, _data: bytes) -> np.ndarray:
    # Keyed by the hash: the same picture is checked and decoded once.
    return images.load_image(_data)


def decode_class(i: int) -> tuple[list[np.ndarray], list[str]]:
    """Class i's pictures as RGB arrays, and one message per picture that was refused."""
    good, errors = [], []
    for n, data in enumerate(st.session_state.get(pictures_key(i), []), start=1):
        try:
            good.append(_decode(hashlib.sha256(data).hexdigest(), data))
        except images.ImageError as err:
            errors.append(f"picture {n}: {err}")
    return good, errors


def imagenet_base() -> tuple[bool, str]:
    """(usable, message): whether MobileNetV2's ImageNet weights are here (downloading them
    once when online; offline the download fails fast and the base has random weights)."""
    from cnnviz.ui.models import cached_model  # noqa: PLC0415

    try:
        cached_model("mobilenet_v2")
        meta = models.info("mobilenet_v2")
    except ValueError as err:
        return False, str(err)
    if meta.random_weights:
        return False, (
            "MobileNetV2's ImageNet weights could not be loaded (no network here?), and a "
            "base with random weights knows nothing. Use the shapes base below; "
            f"{meta.note or ''}"
        )
    return True, "MobileNetV2 with its ImageNet weights is ready."
