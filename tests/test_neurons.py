"""Dataset examples and the feature map, checked against independent computations."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from cnnviz import activations, datasets, layers, models, neurons


@pytest.fixture(scope="module")
def shapes_set():
    # A seed the shapes model never trained or validated on (train 0, validation 1).
    imgs, labels, _ = datasets.shapes(60, seed=4321)
    return imgs, labels


def _first_last_conv():
    paths = layers.conv_layer_paths(models.load("shapes"))
    return [paths[0], paths[-1]]


@pytest.mark.parametrize("layer", _first_last_conv())
@pytest.mark.parametrize("lowest", [False, True])
def test_values_are_the_maxima_of_activations(shapes_set, layer, lowest):
    imgs, _ = shapes_set
    # The reference: every image's full map from activations(), one at a time, maxed in numpy.
    ref = np.stack(
        [activations.activations("shapes", im, [layer])[layer].max(axis=(0, 1)) for im in imgs]
    )
    for channel in (0, 5):
        ex = neurons.top_examples("shapes", layer, channel, imgs, n=9, lowest=lowest)
        col = ref[:, channel]
        want = np.sort(col)[:9] if lowest else np.sort(col)[::-1][:9]
        np.testing.assert_allclose(ex.values, want, atol=1e-3)
        np.testing.assert_allclose(col[ex.indices], ex.values, atol=1e-3)
        assert len(set(ex.indices.tolist())) == 9
        # The position holds that maximum in the reference map.
        for i, (r, c), v in zip(ex.indices, ex.positions, ex.values, strict=True):
            m = activations.activations("shapes", imgs[i], [layer])[layer][..., channel]
            assert abs(m[r, c] - v) < 1e-3
        assert ex.fire_rate == pytest.approx(float((col > 0).mean()))


@pytest.mark.parametrize("layer", _first_last_conv())
def test_patches_have_the_receptive_field_size(shapes_set, layer):
    imgs, _ = shapes_set
    rows = {r["layer"]: r for r in models.summary("shapes")}
    rf = int(rows[layer]["receptive_field"])
    ex = neurons.top_examples("shapes", layer, 1, imgs, n=7)
    assert ex.patches.shape == (7, rf, rf, 3)
    assert ex.patches.dtype == np.uint8
    assert ex.boxes.shape == (7, 4)
    for i, patch, box in zip(ex.indices, ex.patches, ex.boxes, strict=True):
        top, left, bottom, right = box
        assert 0 <= top < bottom <= 64 and 0 <= left < right <= 64
        # The clipped box's pixels appear inside the patch unchanged.
        inside = imgs[i][top:bottom, left:right]
        found = any(
            np.array_equal(patch[a : a + inside.shape[0], b : b + inside.shape[1]], inside)
            for a in range(rf - inside.shape[0] + 1)
            for b in range(rf - inside.shape[1] + 1)
        )
        assert found


def test_receptive_box_analytic():
    # A 3x3 'valid' conv on 10x10: unit (r, c) sees input rows r..r+2.
    g = neurons.Geometry((3, 3), (1, 1), (1.0, 1.0), (10, 10), (8, 8))
    assert neurons.receptive_box(g, (0, 0), (10, 10)) == (0, 0, 3, 3)
    assert neurons.receptive_box(g, (7, 2), (10, 10)) == (7, 2, 10, 5)
    # 'same' 3x3 then 2x2 pool: field 4, jump 2, unit 0 centred at 0.5 -> rows -1..2.
    g = neurons.Geometry((4, 4), (2, 2), (0.5, 0.5), (64, 64), (32, 32))
    assert neurons.receptive_box(g, (0, 31), (64, 64)) == (-1, 61, 3, 65)
    # The same field on an image twice the model's size is twice as big.
    assert neurons.receptive_box(g, (0, 0), (128, 128)) == (-2, -2, 6, 6)


def test_crop_patch_fills_outside():
    img = np.arange(25, dtype=np.uint8).reshape(5, 5)
    p = neurons.crop_patch(img, (-1, 3, 2, 6), fill=0)
    np.testing.assert_array_equal(p, [[0, 0, 0], [3, 4, 0], [8, 9, 0]])


def test_geometry_matches_a_hand_built_valid_chain():
    # conv 5 valid -> pool 2 -> conv 3 valid on 20x20: field 5, then 6, then 6+2*2=10; jump 2.
    net = keras.Sequential(
        [
            keras.Input((20, 20, 1)),
            keras.layers.Conv2D(2, 5, name="c1"),
            keras.layers.MaxPooling2D(2, name="p1"),
            keras.layers.Conv2D(2, 3, name="c2"),
        ]
    )
    g = neurons.layer_geometry(net, "c2")
    assert g.receptive_field == (10, 10) and g.jump == (2, 2) and g.map_size == (6, 6)
    # Unit 0 of c2 sees input rows 0..9 exactly.
    assert neurons.receptive_box(g, (0, 0), (20, 20)) == (0, 0, 10, 10)
    assert neurons.receptive_box(g, (5, 5), (20, 20)) == (10, 10, 20, 20)


def test_bare_model_gets_float_images_and_chunks(shapes_set):
    # A bare model whose conv1 is the identity on channel 0: the maximum is the brightest red.
    net = keras.Sequential([keras.Input((64, 64, 3)), keras.layers.Conv2D(1, 1, name="id")])
    net.layers[-1].set_weights([np.array([[[[1.0], [0.0], [0.0]]]], np.float32), np.zeros(1)])
    imgs, _ = shapes_set
    calls = []
    ex = neurons.top_examples(net, "id", 0, imgs, n=3, progress=lambda d, t: calls.append((d, t)))
    ref = imgs[..., 0].reshape(len(imgs), -1).max(axis=1).astype(np.float32)
    np.testing.assert_allclose(ex.values, np.sort(ref)[::-1][:3])
    assert calls[-1] == (len(imgs), len(imgs))
    small = neurons.layer_maxima(net, "id", imgs, batch_size=7)
    np.testing.assert_allclose(small.values[:, 0], ref)


def test_gray_batches_and_a_one_image_chunk():
    imgs, _ = datasets.digits(17, seed=99)
    m = neurons.layer_maxima("digits", "conv1", imgs, batch_size=16)  # last chunk: 1 image
    assert m.values.shape == (17, 32)
    ref = activations.activations("digits", imgs[16:17], ["conv1"])["conv1"]
    np.testing.assert_allclose(m.values[16], ref.reshape(-1, 32).max(axis=0), atol=1e-4)
    ex = neurons.examples_from_maxima(m, neurons.layer_geometry("digits", "conv1"), 0, imgs, n=2)
    assert ex.patches.shape == (2, 3, 3)


def test_bad_inputs_say_what_was_expected(shapes_set):
    imgs, _ = shapes_set
    with pytest.raises(neurons.NeuronError, match="channel from 0 to 15"):
        neurons.top_examples("shapes", "conv1", 16, imgs)
    with pytest.raises(neurons.NeuronError, match="feature maps"):
        neurons.top_examples("shapes", "gap", 0, imgs)
    with pytest.raises(neurons.NeuronError, match="non-empty batch"):
        neurons.top_examples("shapes", "conv1", 0, imgs[:0])
    with pytest.raises(neurons.NeuronError, match="method"):
        neurons.embedding("shapes", imgs, method="mds")


def test_penultimate_layers():
    assert neurons.penultimate_layer("shapes") == "gap"
    assert neurons.penultimate_layer("digits") == "dense1"
    f = neurons.features("shapes", np.zeros((3, 64, 64, 3), np.uint8))
    assert f.shape == (3, 64)


def _knn_agreement(points: np.ndarray, labels: np.ndarray, k: int = 5) -> float:
    """Share of points whose k nearest neighbours (in 2-D, brute force) all have its class."""
    d = ((points[:, None, :] - points[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    nearest = np.argsort(d, axis=1)[:, :k]
    return float((labels[nearest] == labels[:, None]).all(axis=1).mean())


@pytest.fixture(scope="module")
def shapes_map():
    imgs, labels, _ = datasets.shapes(400, seed=2468)
    pts = neurons.embedding("shapes", imgs, method="tsne", seed=0)
    return imgs, labels, pts


def _nearest(points: np.ndarray, k: int = 5) -> np.ndarray:
    d = ((points[:, None, :] - points[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    return np.argsort(d, axis=1)[:, :k]


def test_shapes_embedding_keeps_classes_apart(shapes_map):
    imgs, labels, pts = shapes_map
    assert pts.shape == (400, 2) and np.isfinite(pts).all()
    agreement = _knn_agreement(pts, labels)
    print(f"5-NN class agreement of the shapes t-SNE map: {agreement:.3f}")
    # The 36,000 × 8 shapes model of issue 14: 0.917 here, 0.917-0.922 on two other sets of
    # 400 (the 24,000 × 7 model before it: 0.875-0.880). Issue 17's bar is in the test below;
    # this floor guards against a map that falls apart.
    assert agreement >= 0.85
    # And it is the network that separates them: the same map of raw pixels does far worse.
    raw = neurons.embed(imgs.reshape(len(imgs), -1).astype(np.float32), "pca")
    assert _knn_agreement(raw, labels) < 0.5


def test_shapes_embedding_is_faithful_where_the_network_is_right(shapes_map):
    # What issue 17's bar misses is the network's own errors, not the map: a misclassified
    # picture lies among the class the network took it for, and spoils its neighbours' count.
    # Away from those (no misclassified picture among a point and its 5 neighbours), the map
    # keeps the classes apart almost everywhere.
    imgs, labels, pts = shapes_map
    wrong = models.predict("shapes", imgs).argmax(axis=1) != labels
    nearest = _nearest(pts)
    same = (labels[nearest] == labels[:, None]).all(axis=1)
    clean = ~(wrong | wrong[nearest].any(axis=1))
    print(f"misclassified {wrong.sum()}; all-5 agreement away from them {same[clean].mean():.3f}")
    # 0.97 on the 24,000 × 7 model, 0.94 on the shipped 36,000 × 8 one.
    assert clean.sum() >= 300 and same[clean].mean() >= 0.92
    # The usual 5-NN classifier reading (the majority of the 5 neighbours has the point's class).
    votes = np.array(
        [np.bincount(row, minlength=labels.max() + 1).argmax() for row in labels[nearest]]
    )
    assert (votes == labels).mean() >= 0.95


def test_shapes_embedding_meets_issue_17_bar(shapes_map):
    # Issue 17: all 5 nearest neighbours in 2-D share the point's class in >= 90 % of points.
    _, labels, pts = shapes_map
    assert _knn_agreement(pts, labels) >= 0.90


def test_umap_is_optional():
    try:
        import umap  # noqa: F401
    except ImportError:
        with pytest.raises(neurons.NeuronError, match="umap-learn"):
            neurons.embed(np.random.default_rng(0).normal(size=(20, 4)), "umap")
    else:
        pts = neurons.embed(np.random.default_rng(0).normal(size=(30, 4)), "umap")
        assert pts.shape == (30, 2)


def test_place_puts_a_training_image_on_its_own_point():
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(50, 6))
    points = rng.normal(size=(50, 2))
    np.testing.assert_allclose(neurons.place(feats[7], feats, points, k=1)[0], points[7], atol=1e-6)
    three = neurons.place(feats[:2], feats, points, k=3)
    assert three.shape == (2, 2)


def test_default_neuron_prefers_a_class_pure_channel():
    # Channel 1 fires only on class 2; channel 0 fires on everything at random.
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 25)
    values = np.stack([rng.uniform(0, 1, 100), (labels == 2) * 5.0 + rng.uniform(0, 0.1, 100)], 1)
    m = neurons.LayerMaxima("x", values.astype(np.float32), np.zeros((100, 2, 2), np.int32))
    assert neurons.default_neuron(m, labels) == 1
    assert neurons.default_neuron(m, None) == 1
