"""Feature visualisations cached for every session: one run per (model, layer, filters, settings).

A class running the same demo should compute it once. `st.cache_data` shares results across
sessions, but a cached function that draws progress into a block made outside it cannot be
replayed (Streamlit's CacheReplayClosureError), and the Filters page wants live previews. So
the run happens outside the cache, with the page's progress callback, and `st.cache_data` only
stores and looks up the finished arrays under our own key:

- `lookup(...)` returns the stored result or None, without computing;
- `visualize(...)` returns the stored result or runs `cnnviz.featureviz.visualize` and stores it.

The key holds the model (a registry name, or a session model's identity and weights hash,
from `cnnviz.ui.cache.model_key`), the layer, the filters, every setting and the step count
after the $CNNVIZ_MAX_STEPS cap. Two sessions that miss at the same moment both compute; the
second store is a no-op.

Behind the memory cache sits the on-disk one (`cnnviz.diskcache`, under $CNNVIZ_CACHE_DIR),
keyed by the model's content hash and the same settings: a second replica of the server, or
this one after a restart, reads the pictures instead of computing them again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import keras
import numpy as np
import streamlit as st

from cnnviz import diskcache, featureviz
from cnnviz.ui.cache import content_key, model_key

__all__ = ["settings_key", "lookup", "visualize"]


class _Missing(Exception):
    """Raised inside the cached function to look up without storing (exceptions are not cached)."""


# 32 results: a few hundred kB each for the built-ins, up to ~50 MB for 64 pictures of 256².
@st.cache_data(max_entries=32, ttl=6 * 3600, show_spinner=False)
def _stored(
    key: tuple, _compute: Callable[[], tuple[np.ndarray, np.ndarray]] | None
) -> tuple[np.ndarray, np.ndarray]:
    if _compute is None:
        raise _Missing
    return _compute()


def settings_key(
    model: str | keras.Model, layer: str | None, filters: Sequence[int], settings: dict
) -> tuple:
    """The cache key: model, layer, filters, sorted settings, steps after the env cap."""
    options = dict(settings)
    options["steps"] = featureviz.capped_steps(options.get("steps", 128))
    return (model_key(model), layer, tuple(int(f) for f in filters), tuple(sorted(options.items())))


def _disk_key(model: str | keras.Model, key: tuple) -> str:
    # The memory key with the session-bound model key swapped for the content hash.
    return diskcache.make_key("featureviz", content_key(model), *key[1:])


def _from_disk(model, key: tuple) -> tuple[np.ndarray, np.ndarray] | None:
    found = diskcache.default_cache().get(_disk_key(model, key))
    if isinstance(found, dict) and {"images", "scores"} <= set(found):
        return found["images"], found["scores"]
    return None


def lookup(
    model: str | keras.Model, layer: str | None, filters: Sequence[int], **settings
) -> tuple[np.ndarray, np.ndarray] | None:
    """The stored (images, scores) for these arguments, or None if nobody has computed them
    (in this process or, through the disk cache, any other)."""
    key = settings_key(model, layer, filters, settings)
    try:
        return _stored(key, None)
    except _Missing:
        pass
    found = _from_disk(model, key)
    return None if found is None else _stored(key, lambda: found)


def visualize(
    model: str | keras.Model,
    layer: str | None,
    filters: Sequence[int],
    *,
    progress: Callable[[int, int, np.ndarray], None] | None = None,
    **settings,
) -> tuple[np.ndarray, np.ndarray]:
    """`cnnviz.featureviz.visualize`, computed once per key for every session.

    Returns copies (st.cache_data unpickles each hit), so a page may change what it gets.
    """
    found = lookup(model, layer, filters, **settings)
    if found is not None:
        return found
    key = settings_key(model, layer, filters, settings)
    images, scores = featureviz.visualize(
        model, layer, list(filters), progress=progress, **settings
    )
    diskcache.default_cache().put(_disk_key(model, key), {"images": images, "scores": scores})
    return _stored(key, lambda: (images, scores))
