"""Layer addressing and feature extraction on Sequential, Functional and nested models."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from cnnviz.layers import (  # noqa: E402
    LayerError,
    conv_layer_paths,
    feature_model,
    final_layer,
    get_layer,
    inbound_layers,
    input_source,
    last_conv_layer,
    list_layers,
    logits_head,
    output_layer,
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


# --------------------------------------------------------------------------------------------
# The graph helpers behind the Keras fence
# --------------------------------------------------------------------------------------------


def test_final_and_output_layer_of_flat_and_nested_models(models):
    base, seq, fun, _ = models
    for m in (seq, fun):
        path, layer = final_layer(m)
        assert path == "head" and layer is m.get_layer("head")
        assert output_layer(m) is m.get_layer("head")
    assert output_layer(base) is base.get_layer("c2")
    # A model that ends in a nested model: the nested model at the top, its layer below.
    i = keras.Input((16, 16, 3))
    outer = keras.Model(i, base(i), name="ends_nested")
    assert output_layer(outer) is base
    path, layer = final_layer(outer)
    assert path == "base/c2" and layer is base.get_layer("c2")


def test_inbound_layers_follow_branches_and_inputs():
    i = keras.Input((8, 8, 3), name="img")
    a = keras.layers.Conv2D(2, 3, padding="same", name="a")(i)
    b = keras.layers.Conv2D(2, 1, name="b")(i)
    s = keras.layers.Add(name="sum")([a, b])
    m = keras.Model(i, s)
    assert [layer.name for layer in inbound_layers(m.get_layer("sum"))] == ["a", "b"]
    (first,) = inbound_layers(m.get_layer("a"))
    assert isinstance(first, keras.layers.InputLayer) and first.name == "img"
    assert inbound_layers(keras.layers.Dense(2)) == []  # never called: no graph
    with pytest.raises(LayerError, match="one input"):
        input_source(m, "sum")


def test_input_source_crosses_nested_model_borders(models):
    _, seq, fun, _ = models
    for m in (seq, fun):
        assert input_source(m, "base/c2") == "base/p1"
        assert input_source(m, "gap") == "base"
        assert input_source(m, "head") == "gap"
        # The base's first layer reads the base's input, which is the outer model's input.
        assert input_source(m, "base/c1") is None


def test_logits_head_of_a_softmax_dense_is_its_kernel_and_bias():
    keras.utils.set_random_seed(2)
    i = keras.Input((5,))
    h = keras.layers.Dense(4, activation="relu", name="hidden")(i)
    m = keras.Model(i, keras.layers.Dense(3, activation="softmax", name="probs")(h))
    head = logits_head(m)
    assert (head.kind, head.path, head.source) == ("softmax", "probs", "hidden")
    x = np.random.default_rng(3).random((2, 4)).astype("float32")
    kernel, bias = m.get_layer("probs").get_weights()
    np.testing.assert_allclose(np.asarray(head.logits(x)), x @ kernel + bias, rtol=1e-5)


def test_logits_head_kinds():
    i = keras.Input((6,))
    d = keras.layers.Dense(3, name="d")(i)
    plain = keras.Model(i, keras.layers.Softmax(name="sm")(d))
    head = logits_head(plain)
    assert (head.kind, head.source, head.dense) == ("softmax", "d", None)
    x = np.ones((1, 3), "float32")
    np.testing.assert_array_equal(np.asarray(head.logits(x)), x)  # a Softmax's input is the logits
    assert logits_head(keras.Model(i, d)).kind == "linear"
    # A sigmoid straight on the input cannot be undone from a layer's output: log-probabilities.
    assert logits_head(keras.Model(i, keras.layers.Activation("sigmoid")(i))).kind == "log"
    # Inside a nested head, the source path carries the nested model's name.
    inner_in = keras.Input((6,))
    inner = keras.Model(
        inner_in,
        keras.layers.Dense(2, activation="sigmoid", name="p")(
            keras.layers.Dense(4, name="h")(inner_in)
        ),
        name="top",
    )
    j = keras.Input((6,))
    head = logits_head(keras.Model(j, inner(j)))
    assert (head.kind, head.path, head.source) == ("sigmoid", "top/p", "top/h")
