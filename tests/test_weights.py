"""cnnviz.weights: a convolution layer's kernels, raw and as pictures."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from cnnviz import weights


@pytest.fixture(scope="module")
def net() -> keras.Model:
    """16×16 Functional CNN, the one tests/test_featureviz.py optimises."""
    keras.utils.set_random_seed(7)
    inp = keras.Input((16, 16, 3), name="img")
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="c1")(inp)
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu", name="c2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    out = keras.layers.Dense(4, activation="softmax", name="probs")(x)
    return keras.Model(inp, out, name="fused")


def test_conv_kernels_and_first_layer_tiles(net):
    k = net.get_layer("c2").get_weights()[0]  # (3, 3, 6, 8)
    out = weights.conv_kernels(net, "c2")
    assert out.shape == (8, 6, 3, 3)
    np.testing.assert_array_equal(out[5, 2], k[:, :, 2, 5])
    tiles, path = weights.first_layer_weights(net)
    k1 = net.get_layer("c1").get_weights()[0]  # (3, 3, 3, 6)
    assert path == "c1" and tiles.shape == (6, 3, 3, 3)
    np.testing.assert_allclose(tiles[4], 0.5 + 0.5 * k1[..., 4] / np.abs(k1).max(), rtol=1e-6)
    each, _ = weights.first_layer_weights(net, normalize="each")
    assert np.isclose(np.abs(each[4] - 0.5).max(), 0.5)


def test_depthwise_kernels():
    keras.utils.set_random_seed(1)
    m = keras.Sequential(
        [keras.Input((8, 8, 2)), keras.layers.DepthwiseConv2D(3, depth_multiplier=2, name="dw")]
    )
    k = m.get_layer("dw").get_weights()[0]  # (3, 3, 2, 2)
    out = weights.conv_kernels(m, "dw")
    assert out.shape == (4, 1, 3, 3)
    np.testing.assert_array_equal(out[3, 0], k[:, :, 1, 1])  # input 1, multiplier 1


def test_errors_say_what_was_expected(net):
    with pytest.raises(weights.WeightsError, match="Expected a convolution layer"):
        weights.conv_kernels(net, "gap")
    flat = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="d")], name="flat")
    with pytest.raises(weights.WeightsError, match="Expected a model with a convolution layer"):
        weights.first_layer_weights(flat)
