"""Server-wide slots for heavy work, so thirty students cannot starve the server.

Grad-CAM, feature visualisation, training and big Gabor banks each take a slot from one
bounded semaphore shared by every browser session of this server process (a module-level
object: Python imports a module once per process). Light pages never take one. A page that
has to wait shows "Waiting for a free slot" until one frees up; a background training thread
uses `acquire`/`release`, which need no Streamlit.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator

import streamlit as st

__all__ = ["HEAVY_SLOTS", "acquire", "release", "busy_slots", "heavy_slot"]

#: How many heavy jobs may run at once (env CNNVIZ_HEAVY_SLOTS; default: the core count, ≥ 2).
HEAVY_SLOTS = max(2, int(os.environ.get("CNNVIZ_HEAVY_SLOTS", "0") or 0) or (os.cpu_count() or 2))

_SEMAPHORE = threading.BoundedSemaphore(HEAVY_SLOTS)
_BUSY = [0]
_LOCK = threading.Lock()


def acquire(*, cancelled: Callable[[], bool] | None = None, poll_s: float = 0.2) -> bool:
    """Block until a slot is free; False (holding nothing) if `cancelled()` turns true first."""
    while not _SEMAPHORE.acquire(timeout=poll_s):
        if cancelled is not None and cancelled():
            return False
    with _LOCK:
        _BUSY[0] += 1
    return True


def release() -> None:
    """Give back a slot taken with `acquire`."""
    with _LOCK:
        _BUSY[0] -= 1
    _SEMAPHORE.release()


def busy_slots() -> int:
    """How many heavy jobs are running right now."""
    return _BUSY[0]


@contextlib.contextmanager
def heavy_slot(what: str = "this computation") -> Iterator[None]:
    """Hold one heavy-work slot for the block, showing a waiting status when all are taken.

    Example:
        with heavy_slot("Grad-CAM"):
            cam = compute(...)
    """
    if _SEMAPHORE.acquire(blocking=False):
        with _LOCK:
            _BUSY[0] += 1
    else:
        with st.status(f"Waiting for a free slot to run {what}…", expanded=False) as status:
            acquire()
            status.update(label=f"Slot free: running {what}", state="complete")
    try:
        yield
    finally:
        release()
