"""Layer addressing and feature extraction on Sequential, Functional and nested models."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from cnnviz.layers import (  # noqa: E402
    LayerError,
    conv_layer_paths,
    feature_model,
    get_layer,
    last_conv_layer,
    list_layers,
)


def _base() -> keras.Model:
    i = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="c1")(i)
    x = keras.layers.MaxPooling2D(name="p1")(x)
    x = keras.layers.Conv2D(6, 3, name="c2")(x)
    return keras.Model(i, x, name="base")


@pytest.fixture(scope="module")
def models():
    keras.utils.set_random_seed(0)
    base = _base()
    seq = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            base,
            keras.layers.GlobalAveragePooling2D(name="gap"),
            keras.layers.Dense(3, name="head"),
        ],
        name="seq",
    )
    i = keras.Input((16, 16, 3))
    y = keras.layers.Dense(3, name="head")(keras.layers.GlobalAveragePooling2D(name="gap")(base(i)))
    fun = keras.Model(i, y, name="fun")
    x = np.random.default_rng(0).random((2, 16, 16, 3)).astype("float32")
    return base, seq, fun, x


def test_list_layers_descends_into_nested_base(models):
    _, seq, fun, _ = models
    for m in (seq, fun):
        paths = [info.path for info in list_layers(m)]
        assert paths == ["base", "base/c1", "base/p1", "base/c2", "gap", "head"]
        info = {i.path: i for i in list_layers(m)}
        assert info["base/c1"].output_shape == (None, 14, 14, 4)
        assert info["base/c1"].params == 3 * 3 * 3 * 4 + 4
        assert info["base/c1"].depth == 1 and info["base"].is_model
        assert conv_layer_paths(m) == ["base/c1", "base/c2"]
        assert last_conv_layer(m) == "base/c2"


def test_nested_features_equal_the_base_submodel(models):
    base, seq, fun, x = models
    reference = keras.Model(base.input, [base.get_layer("c1").output, base.get_layer("c2").output])
    ref_c1, ref_c2 = (np.asarray(t) for t in reference(x))
    for m in (seq, fun):
        c1, c2, out = (np.asarray(t) for t in feature_model(m, ["base/c1", "base/c2"])(x))
        np.testing.assert_allclose(c1, ref_c1, atol=1e-6)
        np.testing.assert_allclose(c2, ref_c2, atol=1e-6)
        np.testing.assert_allclose(out, np.asarray(m(x)), atol=1e-6)


def test_top_level_features_and_output(models):
    _, seq, _, x = models
    gap, out = feature_model(seq, ["gap"])(x)
    assert tuple(gap.shape) == (2, 6)
    np.testing.assert_allclose(np.asarray(out), np.asarray(seq(x)), atol=1e-6)


def test_unknown_layer_names_what_exists(models):
    _, seq, _, _ = models
    with pytest.raises(LayerError, match="base/c1"):
        get_layer(seq, "nope")
    with pytest.raises(LayerError):
        feature_model(seq, ["base/nope"])


def test_model_without_conv_is_reported():
    m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with pytest.raises(LayerError, match="no convolution"):
        last_conv_layer(m)


def test_loaded_sequential_features_are_on_the_gradient_path(tmp_path):
    import tensorflow as tf

    keras.utils.set_random_seed(1)
    m = keras.Sequential(
        [
            keras.Input((12, 12, 3)),
            keras.layers.Conv2D(4, 3, name="c"),
            keras.layers.Flatten(name="f"),
            keras.layers.Dense(2, name="d"),
        ]
    )
    path = tmp_path / "m.keras"
    m.save(path)
    loaded = keras.saving.load_model(path, compile=False)
    fm = feature_model(loaded, ["c"])
    x = tf.constant(np.random.default_rng(0).random((1, 12, 12, 3)), tf.float32)
    with tf.GradientTape() as tape:
        conv, out = fm(x)
        score = out[:, 0]
    grad = tape.gradient(score, conv)
    assert grad is not None  # the captured tensor feeds the output
    np.testing.assert_allclose(np.asarray(out), np.asarray(loaded(x)), atol=1e-6)
