"""Server-wide slots for heavy work, so thirty students cannot starve the server.

Grad-CAM, feature visualisation, training and big Gabor banks each take a slot from one
bounded semaphore shared by every browser session of this server process. Light pages never
take one. A session that has to wait sees "Waiting for a free slot" until one frees up.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator

import streamlit as st

__all__ = ["HEAVY_SLOTS", "heavy_slot", "busy_slots"]

#: How many heavy jobs may run at once (env CNNVIZ_HEAVY_SLOTS; default: the core count, ≥ 2).
HEAVY_SLOTS = max(2, int(os.environ.get("CNNVIZ_HEAVY_SLOTS", "0")) or (os.cpu_count() or 2))


@st.cache_resource
def _semaphore() -> tuple[threading.BoundedSemaphore, list[int], threading.Lock]:
    # cache_resource makes this one object per server process, shared by all sessions.
    return threading.BoundedSemaphore(HEAVY_SLOTS), [0], threading.Lock()


def busy_slots() -> int:
    """How many heavy jobs are running right now."""
    return _semaphore()[1][0]


@contextlib.contextmanager
def heavy_slot(what: str = "this computation", *, poll_s: float = 0.25) -> Iterator[None]:
    """Hold one heavy-work slot for the duration of the block, showing a waiting status.

    Example:
        with heavy_slot("Grad-CAM"):
            cam = compute(...)
    """
    sem, counter, lock = _semaphore()
    if not sem.acquire(blocking=False):
        with st.status(f"Waiting for a free slot to run {what}…", expanded=False) as status:
            while not sem.acquire(timeout=poll_s):
                pass
            status.update(label=f"Slot free: running {what}", state="complete")
    with lock:
        counter[0] += 1
    try:
        yield
    finally:
        with lock:
            counter[0] -= 1
        sem.release()
