"""Cached forward passes for the pages: one per (model, image), shared by every session.

Switching layer, view or channel reruns the page script; the forward pass must not rerun with
it. `forward` caches `cnnviz.activations.forward` under keys we compute ourselves:

- the image by a BLAKE2 hash of all its bytes (Streamlit's own hashing of a large numpy array
  looks at a random sample of its values, so two different photos could collide);
- a registry model by its name; a session-trained keras.Model by its identity and a hash of
  its weights, so training it further gives new maps instead of stale ones.

`st.cache_resource` rather than `st.cache_data`: cache_data unpickles a copy of every hit,
which for VGG16's maps (~60 MB) would cost more than the forward pass it saves. The arrays are
made read-only instead, so no session can change what another sees.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import keras
import numpy as np
import streamlit as st

from cnnviz import activations, diskcache, models, network
from cnnviz.ui.keys import image_key

__all__ = ["image_key", "model_key", "content_key", "forward", "overview", "explain_unit"]


def model_key(model: str | keras.Model) -> str:
    """A registry name as it is; a keras.Model as its name, identity and a hash of its weights."""
    if isinstance(model, str):
        return model
    h = hashlib.blake2b(digest_size=16)
    for w in model.weights:
        h.update(np.ascontiguousarray(keras.ops.convert_to_numpy(w)).tobytes())
    return f"{model.name}@{id(model)}:{h.hexdigest()}"


@st.cache_resource(max_entries=16, show_spinner=False)
def _registry_fingerprint(name: str) -> str:
    # A registry model is shared and read-only: hash its weights once per process.
    return diskcache.model_fingerprint(models.resolve(name)[0])


def content_key(model: str | keras.Model) -> str:
    """A key that means the same in every process: for the on-disk cache (cnnviz.diskcache).

    A registry name keeps its name (it decides the preprocessing) plus a hash of the loaded
    weights, so a retrained shipped model gets new entries; a keras.Model is its content hash.
    """
    if isinstance(model, str):
        return f"{model}:{_registry_fingerprint(model)}"
    return f"model:{diskcache.model_fingerprint(model)}"


@st.cache_resource(max_entries=8, ttl=3600, show_spinner=False)
def _forward(
    _model: str | keras.Model,
    _image: np.ndarray,
    _layers: tuple[str, ...] | None,
    model_id: str,
    image_id: str,
    layers_id: tuple[str, ...] | None,
) -> activations.Forward:
    # Underscored arguments are not hashed by Streamlit; the *_id ones are the cache key.
    result = activations.forward(_model, _image, _layers)
    for arr in (*result.maps.values(), result.output, result.inputs):
        arr.setflags(write=False)
    return result


def forward(
    model: str | keras.Model, image: np.ndarray, layers: Sequence[str] | None = None
) -> activations.Forward:
    """`cnnviz.activations.forward`, computed once per (model, image, layers) for all sessions.

    The returned arrays are read-only and shared: copy before changing them.
    """
    layer_key = None if layers is None else tuple(layers)
    return _forward(model, image, layer_key, model_key(model), image_key(image), layer_key)


@st.cache_resource(max_entries=16, ttl=3600, show_spinner=False)
def _overview(
    _model: str | keras.Model, _image: np.ndarray, model_id: str, image_id: str
) -> list[network.LayerView]:
    views = network.overview(_model, _image)
    for v in views:
        v.output.setflags(write=False)
    return views


def overview(model: str | keras.Model, image: np.ndarray) -> list[network.LayerView]:
    """`cnnviz.network.overview`, once per (model, image) for all sessions (read-only arrays).

    A new stroke on the canvas is a new image and computes afresh; stepping or clicking on
    the same picture reads the cache.
    """
    return _overview(model, image, model_key(model), image_key(image))


@st.cache_resource(max_entries=64, ttl=3600, show_spinner=False)
def _unit(
    _model: str | keras.Model,
    _image: np.ndarray,
    layer: str,
    unit: tuple[int, int, int],
    model_id: str,
    image_id: str,
) -> network.UnitTrace:
    return network.explain_unit(_model, _image, layer, *unit)


def explain_unit(
    model: str | keras.Model, image: np.ndarray, layer: str, channel: int, row: int, col: int
) -> network.UnitTrace:
    """`cnnviz.network.explain_unit`, cached per (model, image, layer, unit)."""
    return _unit(model, image, layer, (channel, row, col), model_key(model), image_key(image))
