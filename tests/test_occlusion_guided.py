"""Occlusion sensitivity, guided backprop and deconvnet (cnnviz.cam).

References are written here: a plain loop over patch positions that calls the model one
picture at a time; a NumPy backward pass through a small Dense-ReLU network with the guided
and deconvnet rules of Springenberg et al. 2015 (Fig. 1).
"""

import keras
import numpy as np
import pytest

from cnnviz import cam, datasets, models


def _reference_occlusion(net, image, class_index, patch, stride):
    """Zeiler & Fergus's loop: one occluded picture per model call, drops averaged per pixel."""
    h, w = image.shape[:2]
    fill = np.rint(image.reshape(-1, image.shape[-1]).astype(np.float64).mean(axis=0))
    fill = (
        fill.astype(image.dtype) if np.issubdtype(image.dtype, np.integer) else image.mean((0, 1))
    )

    def prob(img):
        return float(np.asarray(net(img[None].astype(np.float32), training=False))[0, class_index])

    p0 = prob(image)
    total, count = np.zeros((h, w)), np.zeros((h, w))
    top = 0
    while top + patch <= h:
        left = 0
        while left + patch <= w:
            covered = image.copy()
            covered[top : top + patch, left : left + patch] = fill
            total[top : top + patch, left : left + patch] += p0 - prob(covered)
            count[top : top + patch, left : left + patch] += 1
            left += stride
        top += stride
    return np.where(count > 0, total / np.maximum(count, 1), 0.0)


@pytest.mark.parametrize(("patch", "stride"), [(8, 4), (10, 7)])
def test_occlusion_map_matches_a_loop_over_patches(patch, stride):
    images, labels, _ = datasets.shapes(2, seed=321)
    net, _ = models.resolve("shapes")  # its preprocessing is a float cast; scaling is inside
    for image, label in zip(images, labels, strict=True):
        got = cam.occlusion_map("shapes", image, class_index=int(label), patch=patch, stride=stride)
        want = _reference_occlusion(net, image, int(label), patch, stride)
        assert got.shape == (64, 64)
        np.testing.assert_allclose(got, want, atol=2e-3)
    if (64 - patch) % stride:
        last = (64 - patch) // stride * stride + patch
        assert not got[last:].any() and not got[:, last:].any()  # uncovered pixels are 0


@pytest.fixture(scope="module")
def mlp():
    """Flatten → Dense(relu) → Dense(relu) → Dense(softmax) on 4×4×1 pictures."""
    keras.utils.set_random_seed(3)
    m = keras.Sequential(
        [
            keras.Input((4, 4, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(12, activation="relu", name="d1"),
            keras.layers.Dense(10, name="d2"),
            keras.layers.ReLU(name="r2"),
            keras.layers.Dense(3, activation="softmax", name="head"),
        ],
        name="mlp",
    )
    image = np.random.default_rng(4).normal(size=(4, 4, 1)).astype(np.float32)
    return m, image


def _reference_backward(m, image, class_index, rule):
    (w1, b1), (w2, b2), (w3, _) = (m.get_layer(n).get_weights() for n in ("d1", "d2", "head"))
    x = image.reshape(-1).astype(np.float64)
    a1 = x @ w1 + b1
    a2 = np.maximum(a1, 0) @ w2 + b2
    g = w3[:, class_index].astype(np.float64)  # d logit / d relu(a2)

    def through_relu(g, a):
        if rule == "guided":
            return g * (a > 0) * (g > 0)
        return np.maximum(g, 0)  # deconvnet: the forward mask is ignored

    g = through_relu(g, a2) @ w2.T
    g = through_relu(g, a1) @ w1.T
    return g.reshape(4, 4)


@pytest.mark.parametrize(
    ("method", "rule"), [("guided_backprop", "guided"), ("deconvnet", "deconv")]
)
def test_relu_rules_match_a_numpy_backward_pass(mlp, method, rule):
    m, image = mlp
    for c in range(3):
        result = cam.compute(method, m, image, class_index=c)
        np.testing.assert_allclose(result.raw, _reference_backward(m, image, c, rule), atol=1e-5)
        assert (
            result.heatmap.shape == (4, 4)
            and 0 <= result.heatmap.min() <= result.heatmap.max() <= 1
        )


def test_guided_backprop_leaves_the_shared_model_alone(mlp):
    m, image = mlp
    weights = [w.copy() for w in m.get_weights()]
    before = cam.compute("gradient", m, image, class_index=1).raw
    cam.compute("guided_backprop", m, image, class_index=1)
    after = cam.compute("gradient", m, image, class_index=1).raw
    np.testing.assert_array_equal(before, after)  # plain gradients still pass negatives
    assert m.get_layer("d1").activation is keras.activations.relu
    for a, b in zip(weights, m.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert (before < 0).any() and "guided_backprop" in cam.METHODS and "deconvnet" in cam.METHODS


def test_guided_backprop_runs_through_the_randomization_test():
    images, _, _ = datasets.shapes(1, seed=99)
    result = cam.randomization_test("shapes", images[0], method="guided_backprop")
    assert result.stages[0].spearman == pytest.approx(1.0)
    spearman = [s.spearman for s in result.stages[1:]]
    assert len(spearman) == 9 and all(s is None or -1 <= s <= 1 for s in spearman)
    # The copy follows the randomised weights: the last stage's map is not the first one.
    assert spearman[-1] is not None and spearman[-1] < 0.99


def test_occlusion_method_is_normalised_like_the_others():
    images, labels, _ = datasets.shapes(1, seed=7)
    raw = cam.occlusion_map("shapes", images[0], class_index=int(labels[0]))
    result = cam.compute("occlusion", "shapes", images[0], class_index=int(labels[0]))
    positive = np.maximum(raw, 0)
    want = (positive - positive.min()) / (positive.max() - positive.min())
    # The method occludes the model-ready picture with its unrounded mean: close, not equal.
    assert np.corrcoef(result.heatmap.ravel(), want.ravel())[0, 1] > 0.98
    assert result.heatmap.min() == 0 and result.heatmap.max() == 1
    net, _ = models.resolve("shapes")
    np.testing.assert_allclose(
        result.probabilities, net(images[:1].astype(np.float32))[0], atol=1e-5
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"patch": 0}, "patch"),
        ({"stride": -1}, "stride"),
        ({"patch": 65}, "fit"),
        ({"fill": "zeros"}, "fill"),
    ],
)
def test_occlusion_bad_arguments_say_what_was_expected(kwargs, message):
    images, _, _ = datasets.shapes(1, seed=7)
    with pytest.raises(cam.CamError, match=message):
        cam.occlusion_map("shapes", images[0], **kwargs)
