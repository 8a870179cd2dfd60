"""A session's recent results, and a progress bar for the library's `progress` callbacks.

The explainers (`cnnviz.cam`) take a model and an image that may be this session's own (an
upload, a model trained in this session), so their results are kept per session rather than
in a server-wide cache: moving a slider does not recompute a map, and no other student's
session holds them.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from typing import Any

import streamlit as st

from cnnviz.ui.slots import heavy_slot

__all__ = ["SessionMemo", "progress_bar"]


class SessionMemo:
    """Results of heavy work for one (model, image), newest last, at most `limit` of them.

    Args:
        name: the session-state key of the store (page-prefixed, e.g. "gradcam._memo").
        scope: what every result depends on, e.g. (model key, image key).
        slot_label: the work's name in the "waiting for a free slot" message; the work runs
            in one of the server's heavy slots, so a full class cannot starve the CPU.
        limit: the most results kept.
    """

    def __init__(self, name: str, scope: tuple, *, slot_label: str, limit: int = 24) -> None:
        self.name, self.scope, self.slot_label, self.limit = name, scope, slot_label, limit

    def __call__(self, key: tuple[Hashable, ...], compute: Callable[[], Any] | None = None):
        """The stored result for `key`; computed with `compute` when missing and given.

        Without `compute`, returns the stored result or None.
        """
        store = st.session_state.setdefault(self.name, {})
        full = (*self.scope, *key)
        if full not in store and compute is not None:
            with heavy_slot(self.slot_label):
                store[full] = compute()
            while len(store) > self.limit:
                store.pop(next(iter(store)))
        return store.get(full)


@contextmanager
def progress_bar(text: str) -> Iterator[Callable[[int, int], None]]:
    """A progress bar for the block; yields the `progress(done, total)` callback the library
    calls. The bar is removed when the block ends, also on an error."""
    bar = st.progress(0.0, text=text)
    try:
        yield lambda done, total: bar.progress(min(1.0, done / max(total, 1)), text=text)
    finally:
        bar.empty()
