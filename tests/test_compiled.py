"""cnnviz.compiled: one cache of compiled pieces per model, shared by activations, cam and
featureviz; built once, weak on the model, bounded."""

from __future__ import annotations

import gc

import keras
import numpy as np
import pytest

from cnnviz import activations, cam, compiled, featureviz, layers
from cnnviz.cam import base as cam_base


def _net(name: str) -> keras.Model:
    keras.utils.set_random_seed(0)
    inp = keras.Input((12, 12, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="c1")(inp)
    x = keras.layers.Conv2D(5, 3, activation="relu", name="c2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    out = keras.layers.Dense(3, activation="softmax", name="probs")(x)
    return keras.Model(inp, out, name=name)


def _kinds(model: keras.Model) -> set[str]:
    return {key[0] for mid, key in compiled.entries() if mid == id(model)}


@pytest.fixture
def count_feature_models(monkeypatch):
    """Every call of cnnviz.layers.feature_model, as (model name, paths)."""
    built = []
    real = layers.feature_model

    def counting(model, paths, **kw):
        built.append((model.name, tuple(paths)))
        return real(model, paths, **kw)

    monkeypatch.setattr(layers, "feature_model", counting)
    return built


def test_two_calls_on_one_model_reuse_one_traced_function():
    net = _net("twice")
    images = np.random.default_rng(0).random((2, 12, 12, 3)).astype(np.float32)
    activations.activations(net, images, ["c1"])
    fn = activations._extractor(net, ("c1",))
    activations.activations(net, images, ["c1"])
    assert activations._extractor(net, ("c1",)) is fn
    assert fn.experimental_get_tracing_count() == 1
    # Grad-CAM twice, and Grad-CAM++ on the same layer: one explainer, one trace of its step.
    cam.compute("gradcam", net, images[0])
    step = cam_base.get_explainer(net, "c2")
    cam.compute("gradcam", net, images[1])
    cam.compute("gradcam++", net, images[0])
    assert cam_base.get_explainer(net, "c2") is step
    assert step.cam_step.experimental_get_tracing_count() == 1


def test_featureviz_builds_its_feed_once_for_all_chunks_and_calls(count_feature_models):
    net = _net("chunks")
    # Three filters one at a time: three chunks, three optimisation loops, one extraction model.
    featureviz.visualize(net, "c2", [0, 1, 2], steps=2, batch_size=1, transforms="none")
    featureviz.visualize(net, "c2", [3, 4], steps=2, transforms="none")
    assert [b for b in count_feature_models if b[0] == "chunks"] == [("chunks", ("c1",))]


def test_every_kind_shares_the_cache_and_leaves_it_with_its_model():
    net = _net("temporary")
    image = np.random.default_rng(1).random((12, 12, 3)).astype(np.float32)
    activations.activations(net, image)
    cam.compute("gradcam", net, image)
    featureviz.visualize(net, "c1", [0], steps=1, transforms="none")
    assert _kinds(net) == {"activations", "cam", "featureviz"}
    mid = id(net)
    del net
    gc.collect()
    # No cached piece kept the model alive, and its finaliser dropped all of them.
    assert not any(m == mid for m, _ in compiled.entries())


def test_clear_drops_one_kind_only():
    net = _net("clearing")
    image = np.zeros((12, 12, 3), np.float32)
    activations.activations(net, image)
    cam.compute("gradcam", net, image)
    activations.clear_cache()
    assert _kinds(net) == {"cam"}
    cam.clear_cache()
    assert _kinds(net) == set()


class _Owner:
    """A stand-in for a model: anything that can be weakly referenced."""


def test_least_recently_used_entry_leaves_first(monkeypatch):
    monkeypatch.setattr(compiled, "MAX_ENTRIES", 2)
    compiled.clear()
    owners = [_Owner() for _ in range(3)]
    builds = []

    def build(i):
        builds.append(i)
        return f"value {i}"

    assert compiled.get(owners[0], ("test",), lambda: build(0)) == "value 0"
    compiled.get(owners[1], ("test",), lambda: build(1))
    assert compiled.get(owners[0], ("test",), lambda: build(9)) == "value 0"  # a hit: no build
    compiled.get(owners[2], ("test",), lambda: build(2))  # evicts owners[1], the least recent
    assert [m for m, _ in compiled.entries()] == [id(owners[0]), id(owners[2])]
    assert builds == [0, 1, 2]
    compiled.clear()
