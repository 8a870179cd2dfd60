"""cnnviz.network: the overview and one unit's arithmetic.

References are built independently of `cnnviz.network` and `cnnviz.layers.feature_model`:
the input each layer reads is computed by calling the model's layers one after another, the
padding with TensorFlow's SAME rule written out here, the window sums with numpy slicing, and
the pre-activation maps with a linear copy of the Keras layer.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from cnnviz import activations, datasets, layers, models, network

ATOL = 1e-4


def _same_pads(n: int, k: int, s: int, d: int) -> tuple[int, int]:
    # TensorFlow's SAME: out = ceil(n / s); the odd extra cell goes after (bottom/right).
    k_eff = (k - 1) * d + 1
    out = -(-n // s)
    total = max((out - 1) * s + k_eff - n, 0)
    return total // 2, total - total // 2


def _reference_pre(x: np.ndarray, layer: keras.layers.Conv2D, row: int, col: int, ch: int) -> float:
    """Σ window · kernel + bias for one unit, on the zero-padded input, with numpy slicing."""
    cfg = layer.get_config()
    kernel, bias = (np.asarray(w, np.float64) for w in layer.get_weights())
    kh, kw = kernel.shape[:2]
    (sh, sw), (dh, dw) = cfg["strides"], cfg["dilation_rate"]
    if cfg["padding"] == "same":
        top, bottom = _same_pads(x.shape[0], kh, sh, dh)
        left, right = _same_pads(x.shape[1], kw, sw, dw)
    else:
        top = bottom = left = right = 0
    padded = np.pad(np.asarray(x, np.float64), ((top, bottom), (left, right), (0, 0)))
    r0, c0 = row * sh, col * sw
    window = padded[r0 : r0 + (kh - 1) * dh + 1 : dh, c0 : c0 + (kw - 1) * dw + 1 : dw, :]
    return float((window * kernel[..., ch]).sum() + bias[ch])


def _layer_inputs(net: keras.Model, batch: np.ndarray) -> dict[str, np.ndarray]:
    """What every layer reads, by running the layers one by one (nested bases opened)."""
    reads: dict[str, np.ndarray] = {}

    def run(model: keras.Model, y, prefix: str):
        for layer in model.layers:
            if isinstance(layer, keras.layers.InputLayer):
                continue
            path = f"{prefix}{layer.name}"
            if isinstance(layer, keras.Model):
                y = run(layer, y, f"{path}/")
                continue
            reads[path] = np.asarray(y)[0]
            y = layer(y, training=False)
        return y

    run(net, keras.ops.convert_to_tensor(batch), "")
    return reads


def _nested_model() -> keras.Model:
    """A Functional base (SAME padding, stride 2, dilation 2) inside a Sequential, seeded."""
    keras.utils.set_random_seed(3)
    i = keras.Input((17, 15, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="c1")(i)
    x = keras.layers.Conv2D(5, 4, strides=2, padding="same", name="c2")(x)
    x = keras.layers.Conv2D(3, 3, dilation_rate=2, activation="tanh", name="c3")(x)
    base = keras.Model(i, x, name="base")
    return keras.Sequential(
        [
            keras.Input((17, 15, 3)),
            keras.layers.Rescaling(1 / 255.0, name="scale"),
            base,
            keras.layers.MaxPooling2D(padding="same", name="pool"),
            keras.layers.Flatten(name="flat"),
            keras.layers.Dense(4, activation="softmax", name="head"),
        ],
        name="nested",
    )


def _cases():
    digit = datasets.digits(1, seed=11)[0][0]
    shape = datasets.shapes(1, seed=11)[0][0]
    rng = np.random.default_rng(5)
    photo = rng.integers(0, 256, (17, 15, 3)).astype(np.float32)
    return [("digits", digit), ("shapes", shape), (None, photo)]


@pytest.fixture(scope="module")
def cases():
    nested = _nested_model()
    out = []
    for name, image in _cases():
        model = nested if name is None else name
        net, prep = models.resolve(model)
        batch = np.asarray(prep(image), np.float32)
        out.append((model, net, image, _layer_inputs(net, batch)))
    return out


@pytest.mark.parametrize("which", [0, 1, 2], ids=["digits", "shapes", "nested"])
def test_conv_units_match_activations_and_a_numpy_reference(cases, which):
    model, net, image, reads = cases[which]
    paths = layers.conv_layer_paths(net)
    assert paths, "every case has conv layers"
    if which == 2:
        assert paths == ["base/c1", "base/c2", "base/c3"]
    maps = activations.activations(model, image, paths)
    rng = np.random.default_rng(which)
    for path in paths:
        h, w, c = maps[path].shape
        layer = layers.get_layer(net, path)
        for k in range(4):
            row, col, ch = int(rng.integers(h)), int(rng.integers(w)), int(rng.integers(c))
            # Edge units too: they read padding under SAME.
            if k == 0:
                row, col = h - 1, w - 1
            t = network.explain_unit(model, image, path, ch, row, col)
            assert t.kind == "conv"
            assert t.value == pytest.approx(float(maps[path][row, col, ch]), abs=ATOL)
            assert t.terms.shape == layer.get_weights()[0].shape[:3]
            assert float(t.terms.sum()) + t.bias == pytest.approx(t.pre_activation, abs=ATOL)
            ref = _reference_pre(reads[path], layer, row, col, ch)
            assert t.pre_activation == pytest.approx(ref, abs=ATOL)
            # The activation applied to the arithmetic gives Keras's own value.
            assert t.computed == pytest.approx(t.value, abs=ATOL)
            assert t.activation == layer.get_config()["activation"]
            np.testing.assert_allclose(t.kernel, layer.get_weights()[0][..., ch], atol=0)


def test_pre_activation_equals_a_linear_copy_of_the_layer(cases):
    model, net, image, reads = cases[2]
    layer = net.get_layer("base").get_layer("c3")
    linear = keras.layers.Conv2D.from_config({**layer.get_config(), "activation": "linear"})
    linear.build((None, *reads["base/c3"].shape))
    linear.set_weights(layer.get_weights())
    pre = np.asarray(linear(reads["base/c3"][None]))[0]
    for row, col, ch in [(0, 0, 0), (2, 3, 2), (pre.shape[0] - 1, pre.shape[1] - 1, 1)]:
        t = network.explain_unit(model, image, "base/c3", ch, row, col)
        assert t.pre_activation == pytest.approx(float(pre[row, col, ch]), abs=ATOL)
        assert t.activation == "tanh"
        assert t.value == pytest.approx(np.tanh(pre[row, col, ch]), abs=ATOL)


def test_same_padding_window_reads_zeros_outside(cases):
    model, net, image, reads = cases[2]
    t = network.explain_unit(model, image, "base/c2", 0, 0, 0)
    # Kernel 4, stride 2 on 17 rows: 9 outputs need (9-1)·2 + 4 - 17 = 3 padded rows: 1 on
    # top; on 15 columns, 8 outputs need 3 too: 1 on the left.
    assert t.rows == (-1, 0, 1, 2) and t.cols == (-1, 0, 1, 2)
    assert not t.inside[0].any() and not t.inside[:, 0].any() and t.inside[1:, 1:].all()
    assert np.all(t.window[0] == 0) and np.all(t.window[:, 0] == 0)
    np.testing.assert_allclose(t.window[1:, 1:], reads["base/c2"][0:3, 0:3], atol=0)


def test_pool_and_softmax_units(cases):
    model, net, image, reads = cases[2]
    maps = activations.activations(model, image, ["pool", "head"])
    pool = maps["pool"]
    x = reads["pool"]
    for row, col, ch in [(0, 0, 0), (pool.shape[0] - 1, pool.shape[1] - 1, 2)]:
        t = network.explain_unit(model, image, "pool", ch, row, col)
        assert t.value == pytest.approx(float(pool[row, col, ch]), abs=ATOL)
        cells = x[2 * row : 2 * row + 2, 2 * col : 2 * col + 2, ch]
        assert t.pre_activation == pytest.approx(float(cells.max()), abs=ATOL)
        a, b = t.winner
        assert t.window[a, b] == pytest.approx(float(cells.max()), abs=ATOL)
    head = net.get_layer("head")
    w, b = (np.asarray(v, np.float64) for v in head.get_weights())
    logits = reads["head"].astype(np.float64) @ w + b
    for ch in range(4):
        t = network.explain_unit(model, image, "head", ch)
        assert t.kind == "dense" and t.activation == "softmax"
        np.testing.assert_allclose(t.logits, logits, atol=ATOL)
        assert float(t.terms.sum()) + t.bias == pytest.approx(t.pre_activation, abs=ATOL)
        assert t.value == pytest.approx(float(maps["head"][ch]), abs=ATOL)
        expected = np.exp(logits[ch]) / np.exp(logits).sum()
        assert t.computed == pytest.approx(expected, abs=ATOL)
        assert "softmax" in t.equation()


def test_overview_lists_every_layer_in_order(cases):
    model, net, image, _ = cases[2]
    views = network.overview(model, image, many=3)
    assert [v.name for v in views] == [
        "scale",
        "base/c1",
        "base/c2",
        "base/c3",
        "pool",
        "flat",
        "head",
    ]
    kinds = {v.name: v.kind for v in views}
    assert kinds["base/c1"] == "conv" and kinds["pool"] == "pooling" and kinds["head"] == "dense"
    assert kinds["flat"] == "reshape" and kinds["scale"] == "preprocessing"
    maps = activations.activations(model, image, [v.name for v in views])
    for v in views:
        assert v.shape == maps[v.name].shape
        np.testing.assert_allclose(v.output, maps[v.name], atol=0)
        assert sorted(v.order) == list(range(v.shape[-1]))
        if v.shape[-1] > 3:  # "many": strongest first
            strength = v.output.reshape(-1, v.shape[-1]).max(axis=0)
            assert list(strength[list(v.order)]) == sorted(strength, reverse=True)
        else:
            assert v.order == tuple(range(v.shape[-1]))


def test_overview_of_the_builtins(cases):
    for model, _net, image, _ in cases[:2]:
        views = network.overview(model, image)
        names = [v.name for v in views]
        assert names[-1] == "predictions"
        assert any(v.kind == "conv" for v in views)
        assert views[-1].shape == (len(models.info(model).class_names),)


def test_bad_units_are_refused_in_words(cases):
    model, net, image, _ = cases[2]
    with pytest.raises(network.NetworkError, match="row"):
        network.explain_unit(model, image, "base/c1", 0, 99, 0)
    with pytest.raises(network.NetworkError, match="channel"):
        network.explain_unit(model, image, "head", 9)
    with pytest.raises(network.NetworkError, match="No layer"):
        network.explain_unit(model, image, "nope", 0)
    with pytest.raises(network.NetworkError, match="Flatten"):
        network.explain_unit(model, image, "flat", 0)
