"""cnnviz.models: the registry, the resolve rule, predictions, summaries, random variants and
the ImageNet path with the network cut off (the model itself is never mocked)."""

import collections
import json
import socket

import numpy as np
import pytest
from PIL import Image
from scipy.special import softmax

keras = pytest.importorskip("keras")

from cnnviz import datasets, models  # noqa: E402
from cnnviz.models import applications, loading  # noqa: E402

# Seed 003's slides (and seed 001's CIFAR network): these numbers must match exactly.
LECTURE_COUNTS = {
    "lecture:mnist_cnn": 93_322,
    "lecture:mnist_cnn_base": 55_744,
    "lecture:mnist_cnn_gap": 56_394,
    "lecture:cats_dogs_cnn": 3_453_121,
    "lecture:small_cifar_cnn": 605_610,
    "lecture:vgg16_base": 14_714_688,
    "lecture:vgg16": 138_357_544,
}
# VGG16's receptive field and jump after each layer (Araujo, Norris, Sim, "Computing Receptive
# Fields of Convolutional Neural Networks", Distill 2019: conv5_3 sees 196 px, pool5 212 px).
VGG16_FIELDS = {
    "block1_conv1": ("3", "1"),
    "block1_pool": ("6", "2"),
    "block2_conv2": ("14", "2"),
    "block3_pool": ("44", "8"),
    "block4_pool": ("100", "16"),
    "block5_conv3": ("196", "16"),
    "block5_pool": ("212", "32"),
}


@pytest.fixture(scope="module")
def tiny():
    """A seeded 16×16×3 Functional model with named layers and a logits head (no softmax)."""
    keras.utils.set_random_seed(0)
    i = keras.Input((16, 16, 3), name="img")
    x = keras.layers.Conv2D(4, 3, activation="relu", name="c1")(i)
    x = keras.layers.MaxPooling2D(name="p1")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(i, keras.layers.Dense(3, name="logits")(x), name="tiny")


def _weights(model: keras.Model) -> list[np.ndarray]:
    return [np.array(w, copy=True) for w in model.get_weights()]


# ---------------------------------------------------------------------------------- registry


def test_names():
    assert models.builtin_names() == ["digits", "shapes"]
    assert set(LECTURE_COUNTS) == set(models.lecture_names())
    assert models.imagenet_names() == [
        "vgg16",
        "vgg19",
        "resnet50",
        "mobilenet_v2",
        "inception_v3",
        "xception",
        "efficientnet_b0",
        "densenet121",
    ]
    names = models.model_names(random_variants=True)
    assert names[:2] == ["digits", "shapes"]
    assert "random:vgg16" in names and "random:digits" in names


# VGG16 with its top (138 M parameters, ~550 MB, ~6 s to build) is checked once per session,
# in tests/test_page_architecture.py, both on the page and against the model.
@pytest.mark.parametrize("name", [n for n in LECTURE_COUNTS if n != "lecture:vgg16"])
def test_lecture_parameter_counts(name):
    net = models.load(name)
    assert net.count_params() == LECTURE_COUNTS[name]
    assert models.totals(name)["total"] == LECTURE_COUNTS[name]
    assert models.LECTURE_PARAMS[name] == LECTURE_COUNTS[name]
    meta = models.info(name)
    assert meta.random_weights and meta.note.startswith("random weights")
    assert meta.kind == "lecture"


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(models.ModelError, match="Expected one of: digits, shapes"):
        models.load("alexnet")
    with pytest.raises(models.ModelError, match="Received int"):
        models.info(3)


@pytest.mark.parametrize("name", ["digits", "shapes"])
def test_builtins_load_by_name(name):
    # The shipped files are part of the project: their absence is a failure, not a skip.
    assert (models.ASSETS / f"{name}.keras").exists(), f"run: python -m cnnviz.train {name}"
    card = json.loads((models.ASSETS / f"{name}.json").read_text())
    meta = models.info(name)
    assert meta.kind == "built-in" and not meta.random_weights
    assert meta.input_shape == {"digits": (28, 28, 1), "shapes": (64, 64, 3)}[name]
    expected = {"digits": datasets.DIGIT_CLASSES, "shapes": datasets.SHAPE_CLASSES}[name]
    assert meta.class_names == expected
    assert len(card) > 0
    make = {"digits": datasets.digits, "shapes": datasets.shapes}[name]
    imgs, labels = make(8, seed=123)[:2]
    probs = models.predict(name, imgs)
    assert probs.shape == (8, len(expected))
    np.testing.assert_allclose(probs.sum(axis=1), 1, atol=1e-4)


# ------------------------------------------------------------------------------ resolve rule


def test_bare_model_is_fed_unchanged(tiny):
    net, prep = models.resolve(tiny)
    assert net is tiny
    img = np.arange(16 * 16 * 3, dtype=np.uint8).reshape(16, 16, 3)
    x = prep(img)
    assert x.dtype == np.float32 and x.shape == (1, 16, 16, 3)
    np.testing.assert_array_equal(x[0], img.astype(np.float32))
    assert prep(np.zeros((16, 16))).shape == (1, 16, 16, 1)
    assert prep(np.zeros((5, 16, 16, 3))).shape == (5, 16, 16, 3)
    assert models.prepare_note(tiny, img) is None


def test_name_preprocessing_matches_pil_reference():
    # A dark digit on white paper, in colour and the wrong size.
    rgb = np.full((56, 40, 3), 250, np.uint8)
    rgb[10:46, 17:23] = (20, 30, 40)
    _, prep = models.resolve("lecture:mnist_cnn")
    x = prep(rgb)
    assert x.shape == (1, 28, 28, 1) and x.dtype == np.float32
    # Reference by another route: Pillow's gray conversion, resize, invert, /255.
    gray = Image.fromarray(rgb).convert("L").resize((28, 28), Image.Resampling.BICUBIC)
    ref = (255.0 - np.asarray(gray, np.float32)) / 255.0
    np.testing.assert_allclose(x[0, :, :, 0], ref, atol=3 / 255)
    note = models.prepare_note("lecture:mnist_cnn", rgb)
    assert "resized 40×56 → 28×28" in note and "converted to gray" in note
    assert "inverted" in note


def test_white_on_black_digits_are_not_inverted():
    imgs, _ = datasets.digits(4, seed=5)
    _, prep = models.resolve("lecture:mnist_cnn")
    np.testing.assert_allclose(prep(imgs)[..., 0], imgs.astype(np.float32) / 255.0, atol=1e-6)
    assert models.prepare_note("lecture:mnist_cnn", imgs[0]) is None


def test_imagenet_preprocessing_is_caffe_style_for_vgg():
    img = np.random.default_rng(0).integers(0, 256, (224, 224, 3), dtype=np.uint8)
    _, prep = models.resolve("lecture:vgg16_base")
    # VGG16 was trained on BGR images with the ImageNet channel means subtracted.
    ref = img[..., ::-1].astype(np.float32) - np.array([103.939, 116.779, 123.68], np.float32)
    np.testing.assert_allclose(prep(img)[0], ref, atol=1e-4)
    gray = prep(img[..., 0])
    assert gray.shape == (1, 224, 224, 3)


def test_info_of_bare_and_handed_out_models(tiny):
    meta = models.info(tiny)
    assert meta.name == "tiny" and meta.input_shape == (16, 16, 3)
    assert meta.class_names == ["class 0", "class 1", "class 2"]
    assert not meta.random_weights and meta.kind == "model"
    net = models.load("lecture:cats_dogs_cnn")
    handed = models.info(net)
    assert handed.class_names == ["cat", "dog"] and handed.random_weights
    assert handed.name == net.name
    assert models.info("lecture:cats_dogs_cnn").input_shape == (150, 150, 3)
    assert models.info("lecture:mnist_cnn_base").class_names == []


# -------------------------------------------------------------------------------- prediction


def test_predict_softmaxes_logits(tiny):
    x = np.random.default_rng(1).random((3, 16, 16, 3)).astype(np.float32) * 255
    probs = models.predict(tiny, x)
    np.testing.assert_allclose(probs, softmax(np.asarray(tiny(x)), axis=1), rtol=1e-5, atol=1e-6)
    ranked = models.top_k(tiny, probs[0], k=2)
    assert [name for name, _ in ranked] == [f"class {i}" for i in np.argsort(-probs[0])[:2]]


def test_predict_keeps_softmax_and_expands_sigmoid():
    imgs, _ = datasets.digits(2, seed=1)
    probs = models.predict("lecture:mnist_cnn", imgs)
    net, prep = models.resolve("lecture:mnist_cnn")
    np.testing.assert_allclose(probs, np.asarray(net(prep(imgs))), atol=1e-6)
    photo = np.random.default_rng(2).integers(0, 256, (2, 90, 120, 3), dtype=np.uint8)
    two = models.predict("lecture:cats_dogs_cnn", photo)
    net, prep = models.resolve("lecture:cats_dogs_cnn")
    p = np.asarray(net(prep(photo)))[:, 0]
    np.testing.assert_allclose(two, np.stack([1 - p, p], axis=1), atol=1e-6)
    assert [n for n, _ in models.top_k("lecture:cats_dogs_cnn", two[0], k=2)] == (
        ["dog", "cat"] if p[0] > 0.5 else ["cat", "dog"]
    )


def test_predict_refuses_a_model_without_head():
    with pytest.raises(models.ModelError, match="no head"):
        models.predict("lecture:mnist_cnn_base", np.zeros((28, 28), np.uint8))


# --------------------------------------------------------------------------------- summaries


def test_sequential_summary_is_the_seed_table():
    rows = models.summary("lecture:mnist_cnn")
    assert [(r["type"], r["output_shape"], r["params"]) for r in rows] == [
        ("Conv2D", (None, 26, 26, 32), 320),
        ("MaxPooling2D", (None, 13, 13, 32), 0),
        ("Conv2D", (None, 11, 11, 64), 18496),
        ("MaxPooling2D", (None, 5, 5, 64), 0),
        ("Conv2D", (None, 3, 3, 64), 36928),
        ("Flatten", (None, 576), 0),
        ("Dense", (None, 64), 36928),
        ("Dense", (None, 10), 650),
    ]
    assert [r["receptive_field"] for r in rows[:5]] == ["3", "4", "8", "10", "18"]
    assert [r["jump"] for r in rows[:5]] == ["1", "2", "2", "4", "4"]
    assert rows[-1]["receptive_field"] == "whole input"
    assert all(r["trainable"] for r in rows)
    assert models.shape_flow("lecture:mnist_cnn")[:3] == [
        ("input", (28, 28, 1)),
        ("conv1", (26, 26, 32)),
        ("pool1", (13, 13, 32)),
    ]


def test_vgg16_receptive_fields_match_the_literature():
    rows = {r["layer"]: r for r in models.summary("lecture:vgg16_base")}
    for layer, (field, jump) in VGG16_FIELDS.items():
        assert (rows[layer]["receptive_field"], rows[layer]["jump"]) == (field, jump), layer


def _empirical_field(model: keras.Model, size: int) -> tuple[int, int]:
    """Rows and columns of input pixels that move the centre output (gradient ≠ 0)."""
    import tensorflow as tf

    x = tf.Variable(np.random.default_rng(0).random((1, size, size, 1)).astype(np.float32))
    with tf.GradientTape() as tape:
        y = model(x)
        c = y.shape[1] // 2
        out = tf.reduce_sum(y[0, c, c, :])
    g = np.abs(tape.gradient(out, x).numpy()[0, :, :, 0]) > 0
    rows, cols = np.flatnonzero(g.any(axis=1)), np.flatnonzero(g.any(axis=0))
    return rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1


def test_functional_receptive_field_equals_the_gradient_footprint():
    # Branches of different reach meet in an Add; dilation, average pooling and stride follow.
    keras.utils.set_random_seed(1)
    i = keras.Input((64, 64, 1))
    a = keras.layers.Conv2D(2, 3, padding="same", name="a3")(i)
    b = keras.layers.Conv2D(2, (5, 3), padding="same", name="b5")(i)
    x = keras.layers.Add(name="add")([a, b])
    x = keras.layers.Conv2D(2, 3, dilation_rate=2, padding="same", name="dil")(x)
    x = keras.layers.AveragePooling2D(2, name="avg")(x)
    x = keras.layers.Conv2D(2, 3, strides=2, padding="same", name="s2")(x)
    model = keras.Model(i, x, name="branches")
    rows = {r["layer"]: r for r in models.summary(model)}
    assert rows["add"]["receptive_field"] == "5×3"
    h, w = _empirical_field(model, 64)
    assert rows["s2"]["receptive_field"] == f"{h}×{w}"
    assert rows["s2"]["jump"] == "4"


def test_nested_summary_lists_the_base_layers(tiny):
    base = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            keras.layers.Conv2D(4, 3, name="c1"),
            keras.layers.MaxPooling2D(name="p1"),
        ],
        name="base",
    )
    base.trainable = False
    outer = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            base,
            keras.layers.Flatten(name="f"),
            keras.layers.Dense(2, name="d"),
        ],
        name="outer",
    )
    rows = models.summary(outer)
    # Explicit names: Keras' automatic ones ("dense_5") depend on what else the session built.
    assert [r["layer"] for r in rows] == ["base", "base/c1", "base/p1", "f", "d"]
    by = {r["layer"]: r for r in rows}
    assert by["base"]["receptive_field"] == "4" and by["base/p1"]["receptive_field"] == "4"
    assert by["base/c1"]["depth"] == 1 and not by["base/c1"]["trainable"]
    assert by["base"]["params"] == by["base/c1"]["params"] == 3 * 3 * 3 * 4 + 4
    t = models.totals(outer)
    assert t == {
        "total": outer.count_params(),
        "trainable": 7 * 7 * 4 * 2 + 2,
        "non_trainable": 112,
    }
    assert [s for _, s in models.shape_flow(outer)] == [
        (16, 16, 3),
        (14, 14, 4),
        (7, 7, 4),
        (196,),
        (2,),
    ]


# ---------------------------------------------------------------------------- random weights


def test_random_variant_leaves_the_original_bit_identical(tiny):
    before = _weights(tiny)
    a = models.random_variant(tiny, seed=0)
    assert all(np.array_equal(x, y) for x, y in zip(before, _weights(tiny), strict=True))
    kernels = [w for w in a.get_weights() if w.ndim > 1]
    assert all(
        not np.array_equal(k, o)
        for k, o in zip(kernels, [w for w in before if w.ndim > 1], strict=True)
    )
    b = models.random_variant(tiny, seed=0)
    c = models.random_variant(tiny, seed=1)
    assert all(np.array_equal(x, y) for x, y in zip(a.get_weights(), b.get_weights(), strict=True))
    assert not np.array_equal(a.get_weights()[0], c.get_weights()[0])
    x = np.ones((1, 16, 16, 3), np.float32)
    assert not np.allclose(np.asarray(a(x)), np.asarray(tiny(x)))


def test_random_name_clones_the_shared_model():
    shared = models.load("lecture:mnist_cnn_gap")
    before = _weights(shared)
    variant = models.load("random:lecture:mnist_cnn_gap")
    assert variant is not shared and variant.count_params() == shared.count_params()
    assert all(np.array_equal(x, y) for x, y in zip(before, _weights(shared), strict=True))
    assert not np.array_equal(variant.get_weights()[0], before[0])
    meta = models.info("random:lecture:mnist_cnn_gap")
    assert meta.random_weights and meta.kind == "random" and "freshly initialised" in meta.note


# ------------------------------------------------------------------ ImageNet, network cut off


@pytest.fixture
def offline(no_network, monkeypatch, tmp_path):
    """No network (see conftest's no_network) and an empty Keras cache."""
    import keras.src.backend.config as keras_config

    monkeypatch.setattr(keras_config, "_KERAS_DIR", str(tmp_path))
    # Forget what this process already knows about downloads.
    monkeypatch.setattr(loading, "_cache", collections.OrderedDict())
    monkeypatch.setattr(applications, "_failed", {})
    monkeypatch.setattr(loading, "_status", {})
    monkeypatch.setattr(applications, "_class_index", None)
    monkeypatch.setattr(applications, "_class_index_failed_at", None)
    return no_network, tmp_path


def test_imagenet_offline_gives_a_clear_message(offline):
    seen, home = offline
    with pytest.raises(models.ModelUnavailable) as err:
        models.load_imagenet("mobilenet_v2")
    file = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5"
    msg = str(err.value)
    assert f"{home}/models/{file}" in msg and f"~/.keras/models/{file}" in msg
    # The file name we tell the user is the one Keras itself tried to download.
    assert (
        f"URL fetch failure on https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/{file}"
        in msg
    )
    # The download went through the (mocked) network with a finite timeout: it cannot hang.
    assert seen and all(t == applications._NET_TIMEOUT_S for t in seen)
    assert socket.getdefaulttimeout() is None
    assert isinstance(err.value, ValueError)


def test_imagenet_offline_falls_back_to_random_weights(offline):
    net = models.load("mobilenet_v2")
    meta = models.info("mobilenet_v2")
    assert meta.random_weights and meta.note.startswith("random weights:")
    assert "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5" in meta.note
    assert "class names could not be downloaded" in meta.note
    assert meta.class_names[:2] == ["class 0", "class 1"] and len(meta.class_names) == 1000
    assert net.count_params() == 3_538_984 and meta.input_shape == (224, 224, 3)
    photo = np.random.default_rng(3).integers(0, 256, (100, 150, 3), dtype=np.uint8)
    probs = models.predict("mobilenet_v2", photo)
    assert probs.shape == (1, 1000)
    np.testing.assert_allclose(probs.sum(), 1, atol=1e-4)
    assert len(models.top_k("mobilenet_v2", probs[0], k=3)) == 3


# ------------------------------------------------------------------ one source of truth


@pytest.mark.parametrize("name", ["digits", "shapes"])
def test_builtin_facts_have_one_source(name):
    from cnnviz import train

    facts = models.BUILTINS[name]
    spec = train.SPECS[name]
    # The trainer reads the registry's facts, and the shipped card agrees with both.
    assert spec.input_shape == facts.input_shape == models.info(name).input_shape
    assert spec.preprocessing == facts.card_preprocessing()
    card = json.loads((models.ASSETS / f"{name}.json").read_text())
    assert card["preprocessing"] == facts.card_preprocessing()
    assert card["input_shape"] == list(facts.input_shape)
    assert card["classes"] == facts.default_classes() == models.info(name).class_names


def test_prepare_returns_the_batch_and_its_note_from_one_pass():
    photo = np.random.default_rng(5).integers(0, 256, (40, 30, 3), dtype=np.uint8)
    batch, note = models.prepare("digits", photo)
    _, prep = models.resolve("digits")
    np.testing.assert_array_equal(batch, prep(photo))
    # The digits model normalises any picture as MNIST first (issue 14), in the same pass.
    assert note == models.prepare_note("digits", photo)
    assert note.startswith("normalised as MNIST") and batch.shape == (1, 28, 28, 1)
    raw, none = models.prepare(keras.Sequential([keras.Input((8, 8, 3))]), photo[:8, :8])
    assert raw.shape == (1, 8, 8, 3) and raw.dtype == np.float32 and none is None


def test_the_package_keeps_every_public_name():
    import importlib

    # `import cnnviz.models.summary as m` would give the function (the package attribute):
    # the module is reached through sys.modules.
    summary_module = importlib.import_module("cnnviz.models.summary")
    for name in models.__all__:
        assert hasattr(models, name), name
    # The `summary` function, not its module, is what `models.summary` means.
    assert callable(models.summary) and models.summary is summary_module.summary


def test_an_image_is_preprocessed_once_for_its_note_and_its_prediction(monkeypatch):
    from cnnviz.models import preprocess

    calls = []
    real = preprocess._preprocess

    def counting(entry, images, *args):
        calls.append(entry.name)
        return real(entry, images, *args)

    monkeypatch.setattr(preprocess, "_preprocess", counting)
    photo = np.random.default_rng(11).integers(0, 256, (50, 70, 3), dtype=np.uint8)
    _, note = models.prepare("shapes", photo)
    probs = models.predict("shapes", photo)
    assert note and calls == ["shapes"]
    # The stored batch is handed out as a copy: changing it changes nothing stored.
    batch, _ = models.prepare("shapes", photo)
    batch[:] = 0
    np.testing.assert_allclose(models.predict("shapes", photo), probs)
    assert calls == ["shapes"]
    models.prepare("shapes", 255 - photo)
    assert calls == ["shapes", "shapes"]
