"""cnnviz.transfer: frozen bases stay bit-identical, fine-tuning moves only what it should,
scratch starts fresh, the shared model is never touched; and the novel shapes generator."""

import keras
import numpy as np
import pytest

from cnnviz import datasets, models, transfer


def _weights(model: keras.Model) -> list[np.ndarray]:
    return [np.array(w) for w in model.get_weights()]


def _same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.fixture(scope="module")
def shared():
    """The shared built-in model and a snapshot of its weights before any test here."""
    model = models.load("shapes")
    return model, _weights(model)


@pytest.fixture(scope="module")
def data():
    x, y = datasets.novel_shapes(96, seed=3)
    return x.astype(np.float32), y


def _layer_weights(model: keras.Model, name: str) -> list[np.ndarray]:
    return [np.array(w) for w in model.get_layer(name).get_weights()]


def _base_layers(model: keras.Model) -> list[str]:
    return [layer.name for layer in transfer.base_of(model).layers if layer.weights]


def _train(model, x, y):
    # Capped by CNNVIZ_MAX_STEPS=3 (conftest): a few real gradient steps.
    return transfer.fit(model, x, y, epochs=2, batch_size=16, validation_data=(x[:32], y[:32]))


def test_frozen_base_is_bit_identical_and_shared_model_untouched(shared, data):
    base, before = shared
    model = transfer.build("shapes", 4, mode="frozen")
    head_before = _layer_weights(model, "predictions")
    history = _train(model, *data)
    assert len(history["loss"]) == 2 and "val_accuracy" in history
    # Every base weight, batch-norm statistics included, equals the shipped model's.
    names = _base_layers(model)
    cut = [layer.name for layer in base.layers].index(transfer.cut_layer(base))
    assert names == [layer.name for layer in base.layers[: cut + 1] if layer.weights]
    assert "conv4" in names and len(names) >= 4
    for name in names:
        assert _same(_layer_weights(transfer.base_of(model), name), _layer_weights(base, name)), (
            name
        )
    # The head did learn (so the check above is not vacuous) ...
    assert not _same(_layer_weights(model, "predictions"), head_before)
    # ... and the shared cached model is exactly as it was.
    assert models.load("shapes") is base
    assert _same(_weights(base), before)
    assert not any(layer.trainable is False for layer in base.layers)


def test_finetune_changes_only_layers_from_finetune_from_on(shared, data):
    base, before = shared
    model = transfer.build("shapes", 4, mode="finetune", finetune_from="conv3")
    start = {n: _layer_weights(transfer.base_of(model), n) for n in _base_layers(model)}
    _train(model, *data)
    after = {n: _layer_weights(transfer.base_of(model), n) for n in _base_layers(model)}
    for name in ("conv1", "bn1", "conv2", "bn2"):
        assert _same(after[name], start[name]), name
        assert _same(after[name], _layer_weights(base, name)), name
    for name in ("conv3", "conv4"):
        assert not np.array_equal(after[name][0], start[name][0]), name  # the kernels moved
    assert _same(_weights(base), before)
    # A ten times smaller step than the head-only and scratch models.
    lr = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
    assert lr == pytest.approx(transfer.FINETUNE_LEARNING_RATE)
    assert transfer.learning_rate("frozen") == pytest.approx(10 * lr)


def test_finetune_default_starts_at_the_last_convolution():
    model = transfer.build("shapes", 3, mode="finetune")
    trainable = [layer.name for layer in transfer.base_of(model).layers if layer.trainable]
    assert trainable == ["conv4", "bn4"]


def test_scratch_has_the_same_architecture_with_fresh_weights(shared, data):
    base, before = shared
    model = transfer.build("shapes", 4, mode="scratch")
    for name in ("conv1", "conv2", "conv3", "conv4"):
        fresh, trained = _layer_weights(transfer.base_of(model), name), _layer_weights(base, name)
        assert [w.shape for w in fresh] == [w.shape for w in trained]
        assert not np.array_equal(fresh[0], trained[0]), name
    assert all(layer.trainable for layer in transfer.base_of(model).layers)
    _train(model, *data)
    assert _same(_weights(base), before)


@pytest.mark.parametrize("n", [2, 5])
def test_n_classes_and_probabilities(n, data):
    model = transfer.build("shapes", n, mode="frozen")
    probs = model.predict(data[0][:4], verbose=0)
    assert probs.shape == (4, n)
    np.testing.assert_allclose(probs.sum(axis=1), 1, atol=1e-5)
    assert models.info(model).class_names == [f"class {i}" for i in range(n)]


def test_frozen_features_equal_the_base_models_features(shared, data):
    # Reference: the shipped model's own bn4 output, read with a plain Keras sub-model.
    base, _ = shared
    model = transfer.build("shapes", 4, mode="frozen")
    ref = keras.Model(base.inputs, base.get_layer("bn4").output)
    got = transfer.base_of(model).predict(data[0][:4], verbose=0)
    np.testing.assert_allclose(got, ref.predict(data[0][:4], verbose=0), atol=1e-5)


def test_a_bare_keras_model_base():
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, name="c1")(inputs)
    x = keras.layers.ReLU(name="r1")(x)
    x = keras.layers.Flatten(name="flat")(x)
    mine = keras.Model(inputs, keras.layers.Dense(2, name="out")(x))
    assert transfer.cut_layer(mine) == "r1"
    model = transfer.build(mine, 3, mode="frozen")
    assert "preprocess" not in [layer.name for layer in model.layers]  # fed as it is
    assert _same(_layer_weights(transfer.base_of(model), "c1"), _layer_weights(mine, "c1"))
    assert transfer.base_of(model).get_layer("c1") is not mine.get_layer("c1")  # a copy


def test_imagenet_base_keeps_its_preprocessing_inside(no_network):
    # MobileNetV2 at 96 px (random weights offline: the arithmetic is the same). Reference:
    # keras.applications.mobilenet_v2.preprocess_input, then the copied base, GAP and Dense.
    model = transfer.build("mobilenet_v2", 2, mode="frozen", input_size=96)
    assert model.input_shape == (None, 96, 96, 3)
    x = np.random.default_rng(0).integers(0, 256, (2, 96, 96, 3)).astype(np.float32)
    feats = transfer.base_of(model)(keras.applications.mobilenet_v2.preprocess_input(x.copy()))
    w, b = model.get_layer("predictions").get_weights()
    logits = np.asarray(feats).mean(axis=(1, 2)) @ w + b
    ref = np.exp(logits - logits.max(1, keepdims=True))
    ref /= ref.sum(1, keepdims=True)
    np.testing.assert_allclose(model.predict(x, verbose=0), ref, atol=1e-4)
    # The shared 224 px model's weights were copied by name.
    shared = models.load("mobilenet_v2")
    assert _same(_layer_weights(transfer.base_of(model), "Conv1"), _layer_weights(shared, "Conv1"))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(base="shapes", n_classes=4, mode="thaw"), "Expected mode"),
        (dict(base="shapes", n_classes=1), "between 2 and"),
        (dict(base="shapes", n_classes=True), "integer"),
        (dict(base="shapes", n_classes=4, mode="finetune", finetune_from="nope"), "Unknown layer"),
        (
            dict(base="shapes", n_classes=4, mode="frozen", finetune_from="conv3"),
            "is for mode=.finetune. only",
        ),
        (dict(base=3, n_classes=4), "registry name or a keras.Model"),
        (dict(base="shapes", n_classes=4, input_size=96), "input_size"),
        (dict(base="no-such-model", n_classes=4), "Unknown model"),
    ],
)
def test_bad_arguments_raise_a_clear_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        transfer.build(kwargs.pop("base"), kwargs.pop("n_classes"), **kwargs)


def test_a_base_without_convolution_is_refused():
    inputs = keras.Input((8,))
    dense = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    with pytest.raises(transfer.TransferError, match="convolution"):
        transfer.build(dense, 2)


def test_fit_refuses_labels_out_of_range(data):
    model = transfer.build("shapes", 2, mode="frozen")
    with pytest.raises(transfer.TransferError, match="labels in 0..1"):
        transfer.fit(model, data[0][:8], np.arange(8) % 3)


# ------------------------------------------------------------------ novel shapes


def test_novel_shapes_are_balanced_deterministic_and_new():
    x, y = datasets.novel_shapes(40, seed=5)
    assert x.shape == (40, 64, 64, 3) and x.dtype == np.uint8
    assert np.bincount(y).tolist() == [10, 10, 10, 10]
    x2, y2 = datasets.novel_shapes(40, seed=5)
    assert np.array_equal(x, x2) and np.array_equal(y, y2)
    assert not np.array_equal(x, datasets.novel_shapes(40, seed=6)[0])
    assert not set(datasets.NOVEL_CLASSES) & set(datasets.SHAPE_CLASSES)
    # Every picture holds an object: the object colour differs from the background's.
    spread = x.reshape(40, -1, 3).astype(float).std(axis=1).max(axis=1)
    assert (spread > 20).all()


def test_novel_shapes_subset_and_bad_arguments():
    x, y = datasets.novel_shapes(6, seed=0, size=32, classes=["ring", "arrow"])
    assert x.shape == (6, 32, 32, 3) and set(y.tolist()) == {0, 1}
    for bad in (["ring"], ["ring", "ring"], ["ring", "cat"]):
        with pytest.raises(datasets.DatasetError, match="two or more distinct"):
            datasets.novel_shapes(4, classes=bad)
    with pytest.raises(datasets.DatasetError, match="size"):
        datasets.novel_shapes(4, size=8)


# ------------------------------------------------------------------ your own classes


def _pics(n: int, side: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (side, side + i, 3), dtype=np.uint8) for i in range(n)]


def test_own_classes_resize_split_and_label():
    data = transfer.own_classes(
        {"cups": _pics(5, 50, 0), " pens ": _pics(10, 120, 1)}, (64, 64, 3), seed=0
    )
    assert data.classes == ["cups", "pens"]
    # One in five of each class (at least one) is held back for validation.
    assert np.bincount(data.y_val).tolist() == [1, 2]
    assert np.bincount(data.y).tolist() == [4, 8]
    assert data.x.shape == (12, 64, 64, 3) and data.x.dtype == np.float32
    gray = transfer.own_classes({"a": _pics(2, 30, 2), "b": _pics(2, 30, 3)}, (28, 28, 1))
    assert gray.x.shape == (2, 28, 28, 1)


@pytest.mark.parametrize(
    ("pictures", "match"),
    [
        ({"a": _pics(3, 20, 0)}, "Expected 2 to 5 classes"),
        ({str(i): _pics(2, 20, i) for i in range(6)}, "Expected 2 to 5 classes"),
        ({"a": _pics(3, 20, 0), "A ": _pics(3, 20, 1)}, "own, non-empty name"),
        ({"a": _pics(3, 20, 0), "b": _pics(1, 20, 1)}, "'b' has 1 picture"),
        ({"a": _pics(3, 20, 0), "b": [np.zeros((9, 9), np.uint8)] * 2}, r"\(H, W, 3\) uint8"),
        ({"a": _pics(3, 20, 0), "b": _pics(2, 8, 1) * 31}, "at most 60"),
    ],
)
def test_own_classes_bad_input_gets_a_clear_message(pictures, match):
    with pytest.raises(transfer.TransferError, match=match):
        transfer.own_classes(pictures, (64, 64, 3))


def test_near_chance_uses_two_binomial_standard_errors():
    # 2 classes, 100 pictures: chance 0.5, standard error sqrt(0.25 / 100) = 0.05.
    assert transfer.near_chance(0.5, 2, 100)
    assert transfer.near_chance(0.6, 2, 100)
    assert not transfer.near_chance(0.61, 2, 100)
    # 4 classes, 3 pictures: 0.25 + 2 * sqrt(0.1875 / 3) = 0.75.
    assert transfer.near_chance(0.66, 4, 3) and not transfer.near_chance(1.0, 4, 3)


def test_compare_finetunes_in_two_phases_and_keeps_the_shared_model(shared):
    base, before = shared
    task = transfer.novel_task(4)
    res = transfer.compare("shapes", task, modes=("frozen", "finetune"), steps=8)
    tuned = transfer.base_of(res["finetune"]["model"])
    # Phase 2 restored build's flags: conv4 onwards learns, earlier layers never moved.
    assert [layer.name for layer in tuned.layers if layer.trainable] == ["conv4", "bn4"]
    assert _same(_layer_weights(tuned, "conv3"), _layer_weights(base, "conv3"))
    assert not np.array_equal(
        tuned.get_layer("conv4").get_weights()[0], base.get_layer("conv4").get_weights()[0]
    )
    assert len(res["finetune"]["history"]["loss"]) == len(res["frozen"]["history"]["loss"])
    for r in res.values():
        assert 0 <= r["accuracy"] <= 1
    assert _same(_weights(base), before)
