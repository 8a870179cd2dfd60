"""Caches for the "When it fails" page: occlusion maps, sanity checks and attacks.

Keyed like `cnnviz.ui.cache`: a registry model by name, a keras.Model by identity and a hash
of its weights, a picture by a hash of its bytes. Results are shared read-only by sessions.

The slow results live in a small lock-guarded LRU here rather than in `st.cache_resource`:
they report progress to a bar the page drew, and Streamlit cannot replay a cached function's
calls on an element created outside it (CacheReplayClosureError).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

import keras
import numpy as np
import streamlit as st

from cnnviz import adversarial, cam, datasets, evaldata
from cnnviz.ui.cache import image_key, model_key

__all__ = ["shape_picture", "scene", "occlusion", "randomization", "attack", "flip", "ProgressBar"]

ProgressBar = Callable[[int, int], None] | None


_LOCK = threading.Lock()
_RESULTS: OrderedDict[Hashable, object] = OrderedDict()
_MAX_RESULTS = 48


def _cached(key: Hashable, build: Callable[[], object]):
    """The result for `key`, built once (outside the lock, so sessions do not queue here)."""
    with _LOCK:
        if key in _RESULTS:
            _RESULTS.move_to_end(key)
            return _RESULTS[key]
    value = build()
    with _LOCK:
        _RESULTS[key] = value
        while len(_RESULTS) > _MAX_RESULTS:
            _RESULTS.popitem(last=False)
    return value


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    a.setflags(write=False)
    return a


@st.cache_data(max_entries=32, show_spinner=False)
def shape_picture(seed: int) -> tuple[np.ndarray, int]:
    """A fresh `datasets.shapes` picture and its label."""
    images, labels, _ = datasets.shapes(1, seed=seed)
    return images[0], int(labels[0])


@st.cache_data(max_entries=32, show_spinner=False)
def scene(seed: int, *, hand_drawn: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One two-shape picture: (image, labels (2,), masks (2, H, W)), from `datasets.scenes`
    or, hand-drawn, from `evaldata.drawn_scenes` (code the model never trained on)."""
    make = evaldata.drawn_scenes if hand_drawn else datasets.scenes
    images, labels, masks = make(1, seed=seed)
    return images[0], labels[0], masks[0]


def occlusion(
    model: str | keras.Model,
    image: np.ndarray,
    *,
    patch: int,
    stride: int,
    class_index: int | None,
    progress: ProgressBar = None,
) -> np.ndarray:
    """`cam.occlusion_map`, once per (model, picture, patch, stride, class)."""
    key = ("occlusion", model_key(model), image_key(image), patch, stride, class_index)
    return _cached(
        key,
        lambda: _frozen(
            cam.occlusion_map(
                model, image, class_index=class_index, patch=patch, stride=stride, progress=progress
            )
        ),
    )


def randomization(
    model: str | keras.Model, image: np.ndarray, method: str, progress: ProgressBar = None
) -> cam.RandomizationResult:
    """`cam.randomization_test` of one method, once per (model, picture, method)."""
    key = ("randomization", model_key(model), image_key(image), method)
    return _cached(
        key, lambda: cam.randomization_test(model, image, method=method, progress=progress)
    )


def attack(
    model: str | keras.Model,
    image: np.ndarray,
    *,
    method: str,
    epsilon: float,
    target: int | None = None,
    progress: ProgressBar = None,
) -> np.ndarray:
    """The adversarial picture of `adversarial.fgsm` or `adversarial.pgd`, cached."""

    def build() -> np.ndarray:
        if method == "fgsm":
            return _frozen(adversarial.fgsm(model, image, epsilon=epsilon))
        return _frozen(
            adversarial.pgd(model, image, epsilon=epsilon, target=target, progress=progress)
        )

    return _cached(("attack", model_key(model), image_key(image), method, epsilon, target), build)


def flip(
    model: str | keras.Model, image: np.ndarray, *, method: str, progress: ProgressBar = None
) -> adversarial.FlipResult:
    """`adversarial.smallest_flipping_epsilon`, once per (model, picture, method)."""
    key = ("flip", model_key(model), image_key(image), method)
    return _cached(
        key,
        lambda: adversarial.smallest_flipping_epsilon(
            model, image, method=method, progress=progress
        ),
    )
