"""Loading registry models (a few kept in memory) and random-weight variants."""

from __future__ import annotations

import collections
import itertools
import threading
import weakref
from typing import Any

import keras

from cnnviz.models.applications import load_imagenet
from cnnviz.models.errors import ModelUnavailable
from cnnviz.models.registry import _Entry, _entry

# Models kept in memory by `load` (VGG16 with its top alone is ~550 MB of float32).
_CACHE_SIZE = 3

_lock = threading.RLock()
_cache: collections.OrderedDict[str, keras.Model] = collections.OrderedDict()
# Per name: (random_weights, note) decided at load time (an ImageNet fallback is only known then).
_status: dict[str, tuple[bool, str | None]] = {}
# Models this module handed out, so info(model) can still say "random weights" for them.
_known: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def load(name: str) -> keras.Model:
    """The model for a registry name, built or loaded once and kept (a few at a time).

    ImageNet names try weights="imagenet"; if the download fails, the same architecture with
    random weights is returned and `info(name).note` explains how to get the real weights.

    Raises:
        ModelError: unknown name.
        ModelUnavailable: a built-in file is missing, or a lecture builder is not available.
    """
    entry, random = _entry(name)
    with _lock:
        if name in _cache:
            _cache.move_to_end(name)
            return _cache[name]
        model, random_weights, note = _build(entry, random)
        _cache[name] = model
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
        _status[name] = (random_weights, note)
        _known[model] = name
        return model


def _build(entry: _Entry, random: bool) -> tuple[keras.Model, bool, str | None]:
    """(model, random_weights, note) for an entry, or its random variant."""
    if random:
        # ImageNet: the architecture alone (no download); others: clone the loaded model.
        source = entry.build(weights=None) if entry.kind == "imagenet" else load(entry.name)
        note = (
            f"random weights: the {entry.name} architecture with freshly initialised weights; "
            "it has learned nothing (a baseline for sanity checks)"
        )
        return random_variant(source), True, note
    if entry.kind == "imagenet":
        try:
            return load_imagenet(entry.name), False, None
        except ModelUnavailable as err:
            note = f"random weights: {err}"
            return entry.build(weights=None), True, note
    try:
        model = entry.build()
    except ImportError as err:
        raise ModelUnavailable(
            f"The lecture model {entry.name!r} needs cnnviz.architectures, which could not be "
            f"imported ({err})."
        ) from err
    return model, entry.kind == "lecture", entry.note


def random_variant(model: keras.Model, *, seed: int = 0) -> keras.Model:
    """A clone of `model` with freshly initialised weights; `model` itself is not touched.

    Each layer is rebuilt from its config with every initializer given its own seed (derived
    from `seed`), so the variant is the same on every run.

    Args:
        model: a Sequential or Functional model (nested models are re-initialised too).
        seed: base seed.

    Returns:
        A new keras.Model with the same architecture and new weights.
    """
    counter = itertools.count()

    def fresh(layer: keras.layers.Layer) -> keras.layers.Layer:
        # Re-create the layer from its (seeded) config: new variables, new initial values.
        config = _seed_initializers(layer.get_config(), seed, counter)
        return layer.__class__.from_config(config)

    return keras.models.clone_model(model, clone_function=fresh)


def _seed_initializers(config: Any, seed: int, counter: itertools.count) -> Any:
    """A copy of a layer config in which every initializer has a distinct, fixed seed."""
    if isinstance(config, dict):
        out = {k: _seed_initializers(v, seed, counter) for k, v in config.items()}
        inner = out.get("config")
        if (
            out.get("module") == "keras.initializers"
            and isinstance(inner, dict)
            and "seed" in inner
        ):
            out["config"] = {**inner, "seed": seed * 100_003 + next(counter)}
        return out
    if isinstance(config, list):
        return [_seed_initializers(v, seed, counter) for v in config]
    return config
