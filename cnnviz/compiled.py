"""The one cache of compiled pieces built for a model: extraction functions, CAM steps, feeds.

Many browser sessions share one cached model, and building a feature model and tracing a
`tf.function` over it costs seconds, so `activations`, `cam` and `featureviz` each build what
they need once per (model, key) and keep it here.

- Keyed by `id(model)` with a weak reference beside it: a dead model's id can be reused by a
  new object, so a hit counts only while the weak reference still points at the very same
  model, and the reference's finaliser drops a dead model's entries at once (its layers and
  graphs can then be freed). A cached value must not hold the model itself, or it would
  never die: hold its layers or a new functional model over them.
- Bounded, least recently used first out; each entry holds only references to the shared
  layers (no copies of weights), so the bound is about tracing time, not memory.
- Thread-safe: a value is built while holding the lock, so two sessions asking for the same
  thing build it once, and Keras never records call nodes on the shared layers from two
  threads at a time. Re-entrant, because a weak reference's callback may fire while this
  thread holds the lock, and a builder may ask the cache for another piece.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TypeVar

__all__ = ["MAX_ENTRIES", "get", "clear", "entries"]

T = TypeVar("T")

#: How many compiled pieces to keep, over all models and kinds.
MAX_ENTRIES = 64

_LOCK = threading.RLock()
# (id(model), key) -> (weak reference to the model, value)
_ENTRIES: OrderedDict[tuple[int, Hashable], tuple[weakref.ref, object]] = OrderedDict()


def _forget(model_id: int) -> None:
    with _LOCK:
        for entry in [e for e in _ENTRIES if e[0] == model_id]:
            del _ENTRIES[entry]


def _forget_on_death(model_id: int) -> Callable[[weakref.ref], None]:
    # The weak reference's callback: drop the dead model's entries so its layers can be freed.
    return lambda _ref: _forget(model_id)


def get(model: object, key: Hashable, build: Callable[[], T]) -> T:
    """The value cached for (model, key), built by `build()` on the first call.

    Args:
        model: the model the value belongs to (any object that can be weakly referenced).
        key: what is built, e.g. ("activations", ("conv1", "conv2")); start it with the
            caller's name so that kinds never collide.
        build: makes the value; must not keep a reference to `model` itself.
    """
    entry = (id(model), key)
    with _LOCK:
        hit = _ENTRIES.get(entry)
        if hit is not None and hit[0]() is model:
            _ENTRIES.move_to_end(entry)
            return hit[1]  # type: ignore[return-value]
        value = build()
        _ENTRIES[entry] = (weakref.ref(model, _forget_on_death(id(model))), value)
        while len(_ENTRIES) > MAX_ENTRIES:
            _ENTRIES.popitem(last=False)
        return value


def clear(kind: str | None = None) -> None:
    """Drop the cached values whose key starts with `kind` (all of them for None)."""
    with _LOCK:
        for entry in list(_ENTRIES):
            key = entry[1]
            if kind is None or (isinstance(key, tuple) and key and key[0] == kind):
                del _ENTRIES[entry]


def entries() -> list[tuple[int, Hashable]]:
    """(id(model), key) of every cached value, oldest first (tests and diagnostics)."""
    with _LOCK:
        return list(_ENTRIES)
