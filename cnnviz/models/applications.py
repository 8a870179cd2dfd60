"""ImageNet models from keras.applications: the weights download and its offline fallback.

Keras downloads with urllib, which waits forever on an unreachable network; every download
here runs under a short socket timeout and a failure is remembered for a while, so an offline
page neither hangs nor waits again on every rerun.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import keras
import numpy as np

from cnnviz.models.errors import ModelError, ModelUnavailable
from cnnviz.models.registry import _entry, imagenet_names

# Seconds a socket may wait during a weights download before we call the network unreachable.
_NET_TIMEOUT_S = 10.0
# After a failed ImageNet download, do not try again for this long (every rerun would wait).
_RETRY_AFTER_S = 600.0
# ImageNet names whose download failed, with the time and the message (no retry for a while).
_failed: dict[str, tuple[float, str]] = {}


def load_imagenet(name: str) -> keras.Model:
    """An ImageNet model with its trained weights, downloaded once into the Keras cache.

    `load(name)` is what pages use: it falls back to random weights, labelled in `info`.

    Args:
        name: one of `imagenet_names()`.

    Raises:
        ModelUnavailable: the weights could not be downloaded; the message names the file and
            where to put it by hand. A failure is remembered for 10 minutes (no new attempt).
    """
    entry, _ = _entry(name)
    if entry.kind != "imagenet":
        raise ModelError(f"Expected one of {', '.join(imagenet_names())}. Received {name!r}.")
    failed = _failed.get(name)
    if failed is not None and time.monotonic() - failed[0] < _RETRY_AFTER_S:
        reason = failed[1]
    else:
        try:
            model = _fetch_imagenet(entry.build, entry.weights_file)
            _failed.pop(name, None)
            return model
        except Exception as err:  # noqa: BLE001 - keras raises a bare Exception on URL failures
            reason = f"{type(err).__name__}: {err}"
            _failed[name] = (time.monotonic(), reason)
    target = _weights_dir() / entry.weights_file
    raise ModelUnavailable(
        f"The ImageNet weights for {entry.title.removeprefix('ImageNet: ')} could not be "
        f"downloaded ({reason[:300]}). To use the trained network offline, download "
        f"{entry.weights_url} on a computer with internet access and put it, with that exact "
        f"name, at {target} (that is ~/.keras/models/{entry.weights_file}), or run "
        f"`python -m cnnviz.prefetch {name}` there the night before. Until then the "
        "same architecture is shown with random weights"
    )


def weights_dir() -> Path:
    """Where ImageNet weights are looked for: `CNNVIZ_WEIGHTS_DIR` when set (filled by
    `python -m cnnviz.prefetch`), else Keras' own cache (KERAS_HOME/models, else ~/.keras/models)."""
    own = os.environ.get("CNNVIZ_WEIGHTS_DIR", "").strip()
    if own:
        return Path(os.path.expanduser(own))
    try:
        from keras.src.backend.config import keras_home

        home = keras_home()
    except ImportError:  # pragma: no cover - older/newer Keras layouts
        home = os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras"))
    return Path(os.path.expanduser(home)) / "models"


_weights_dir = weights_dir


_socket_lock = threading.Lock()


@contextlib.contextmanager
def _short_socket_timeout() -> Iterator[None]:
    """Keras downloads with urllib, which waits forever by default on an unreachable network.

    A default socket timeout (process-wide, so downloads take turns) makes it fail in seconds.
    """
    with _socket_lock:
        old = socket.getdefaulttimeout()
        socket.setdefaulttimeout(_NET_TIMEOUT_S)
        try:
            yield
        finally:
            socket.setdefaulttimeout(old)


def _fetch_imagenet(
    builder: Callable[..., keras.Model], weights_file: str | None = None
) -> keras.Model:
    """Build with the local weights file when it is in `weights_dir()` (no network at all),
    else with weights="imagenet": Keras downloads the file into its cache the first time.

    This is the only function that fetches weights from the network (tests cut it off).
    """
    local = weights_dir() / weights_file if weights_file else None
    if local is not None and local.is_file():
        return builder(weights=str(local))
    with _short_socket_timeout():
        return builder(weights="imagenet")


_class_index: list[str] | None = None
_class_index_failed_at: float | None = None


def _imagenet_class_names() -> list[str] | None:
    """The 1000 ImageNet class names via keras' decode_predictions, or None when offline.

    decode_predictions downloads imagenet_class_index.json into the Keras cache once; a failure
    is remembered for a while so an offline page does not wait on every rerun.
    """
    global _class_index, _class_index_failed_at
    if _class_index is not None:
        return _class_index
    if (
        _class_index_failed_at is not None
        and time.monotonic() - _class_index_failed_at < _RETRY_AFTER_S
    ):
        return None
    local = weights_dir() / "imagenet_class_index.json"  # put there by cnnviz.prefetch
    if local.is_file():
        try:
            index = json.loads(local.read_text())
            _class_index = [index[str(i)][1].replace("_", " ") for i in range(1000)]
            return _class_index
        except (OSError, ValueError, KeyError, IndexError, TypeError):
            pass  # a damaged file: fall back to Keras' own download
    from keras.applications.imagenet_utils import decode_predictions

    try:
        with _short_socket_timeout():
            # One-hot rows: the top-1 decoding of row i is class i.
            rows = decode_predictions(np.eye(1000, dtype=np.float32), top=1)
    except Exception:  # noqa: BLE001 - keras raises a bare Exception on URL failures
        _class_index_failed_at = time.monotonic()
        return None
    _class_index = [row[0][1].replace("_", " ") for row in rows]
    return _class_index
