"""cnnviz.familiarity: Mahalanobis distances against scipy, calibration, and the built-ins' flags."""

import importlib

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import mahalanobis

from cnnviz import datasets, evaldata, evaldigits

# The module, not the function of the same name that cnnviz.models exports.
fam = importlib.import_module("cnnviz.models.familiarity")


def test_distances_match_scipy_and_the_covariance_is_the_pooled_within_class_one():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 40)
    feats = rng.normal(0, 1, (120, 5)) * [1, 2, 0.5, 1, 3] + labels[:, None] * 2.0
    means, precision = fam.class_statistics(feats, labels, 3)
    # Reference: per-class means and the pooled scatter, written with loops here.
    ref_means = np.stack([feats[labels == c].mean(0) for c in range(3)])
    scatter = sum(
        np.outer(f - ref_means[c], f - ref_means[c]) for f, c in zip(feats, labels, strict=True)
    )
    sigma = scatter / len(feats)
    np.testing.assert_allclose(means, ref_means, atol=1e-12)
    # The precision inverts Sigma up to the documented ridge (1e-4 of the mean variance).
    ridge = 1e-4 * np.trace(sigma) / 5
    np.testing.assert_allclose(np.linalg.inv(precision), sigma + ridge * np.eye(5), atol=1e-9)
    queries = rng.normal(0, 2, (7, 5))
    d = fam.mahalanobis_distances(queries, means, precision)
    for i, q in enumerate(queries):
        for c in range(3):
            assert d[i, c] == pytest.approx(mahalanobis(q, means[c], precision), rel=1e-9)


def _tiny_model():
    import keras

    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(4, 3, activation="relu", name="c1"),
            keras.layers.BatchNormalization(name="bn"),
            keras.layers.MaxPooling2D(name="p1"),
            keras.layers.Conv2D(3, 2, activation="relu", name="c2"),
            keras.layers.Flatten(name="flat"),
            keras.layers.Dense(5, activation="relu", name="hidden"),
            keras.layers.Dense(2, activation="softmax", name="out"),
        ]
    )


def test_feature_layers_are_every_conv_and_pool_layer_and_the_classifier_input():
    model = _tiny_model()
    # BatchNormalization and Flatten are left out; the penultimate Dense closes the list.
    assert fam.feature_layers(model) == ("c1", "p1", "c2", "hidden")
    import keras

    shapes_like = keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            keras.layers.Conv2D(4, 3, name="conv"),
            keras.layers.GlobalAveragePooling2D(name="gap"),
            keras.layers.Dense(2, name="predictions"),
        ]
    )
    assert fam.feature_layers(shapes_like) == ("conv", "gap")


def test_layer_features_are_channel_means_and_maxima_of_the_keras_outputs():
    import keras

    model = _tiny_model()
    x = np.random.default_rng(1).uniform(0, 1, (5, 8, 8, 1)).astype(np.float32)
    feats = fam.layer_features(model, x, ("c1", "hidden"))
    # Reference: Keras' own sub-models up to each layer.
    c1 = np.asarray(keras.Model(model.inputs, model.get_layer("c1").output)(x))
    hidden = np.asarray(keras.Model(model.inputs, model.get_layer("hidden").output)(x))
    want = np.concatenate([c1.mean(axis=(1, 2)), c1.max(axis=(1, 2))], axis=1)
    np.testing.assert_allclose(feats[0], want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(feats[1], hidden, rtol=1e-5, atol=1e-6)


def _tiny_calibration(seed: int, n_held: int, **kwargs):
    """(model, rng, held-out inputs, stats) of the tiny model calibrated on uniform noise."""
    model = _tiny_model()
    rng = np.random.default_rng(seed)
    fit_x = rng.uniform(0, 1, (200, 8, 8, 1)).astype(np.float32)
    fit_y = np.arange(200) % 2
    held_x = rng.uniform(0, 1, (n_held, 8, 8, 1)).astype(np.float32)
    return model, rng, held_x, fam.calibrate(model, fit_x, fit_y, held_x, classes=2, **kwargs)


def test_calibrated_score_is_the_sum_of_standardised_per_layer_distances():
    model, rng, held_x, stats_ = _tiny_calibration(2, 300, use_doubt=False)
    assert stats_.layers == fam.feature_layers(model) and not stats_.use_doubt
    # Reference, layer by layer with scipy: the closest class mean's Mahalanobis distance.
    q = rng.uniform(0, 1, (4, 8, 8, 1)).astype(np.float32)
    feats = fam.layer_features(model, q, stats_.layers)
    ref = np.zeros(4)
    for f, m, p, c, s in zip(
        feats, stats_.means, stats_.precisions, stats_.centre, stats_.scale, strict=True
    ):
        d = np.array([min(mahalanobis(v, mu, p) for mu in m) for v in f])
        ref += (d - c) / s
    got = fam._combine(
        fam._closest(feats, stats_.means, stats_.precisions), stats_.centre, stats_.scale
    )
    np.testing.assert_allclose(got, ref, rtol=1e-8)
    # The held-out scores define the ECDF: their median is the stored 50 % quantile, and the
    # standardisation makes each layer's held-out distance mean 0, std 1.
    held = fam._closest(
        fam.layer_features(model, held_x, stats_.layers), stats_.means, stats_.precisions
    )
    z = (held - stats_.centre) / stats_.scale
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-9)
    np.testing.assert_allclose(z.std(axis=0), 1, atol=1e-9)
    assert stats_.quantiles[500] == pytest.approx(np.median(z.sum(axis=1)))


def _tail_share(reference: np.ndarray, values: np.ndarray) -> np.ndarray:
    # Share of the reference scores at or above each value (an empirical p-value), floored
    # at half a step of the 1001 stored quantiles as the module documents.
    ref = np.sort(reference)
    return np.maximum(1 - np.searchsorted(ref, values, side="left") / len(ref), 0.5 / 1000)


def test_with_the_doubt_the_score_merges_distance_and_softmax_tail_shares_by_fisher():
    model, rng, held_x, stats_ = _tiny_calibration(3, 2000)
    assert stats_.use_doubt

    # Reference: D from the distances, C = -log max softmax from Keras' own predict, and
    # their empirical tail shares over the held-out pictures, merged as -log p - log p.
    def evidence(x):
        feats = fam.layer_features(model, x, stats_.layers)
        d = fam._closest(feats, stats_.means, stats_.precisions)
        total = ((d - stats_.centre) / stats_.scale).sum(axis=1)
        probs = model.predict(x, verbose=0)
        return total, -np.log(probs.max(axis=1))

    held_d, held_c = evidence(held_x)
    assert stats_.confidence_quantiles[500] == pytest.approx(np.median(held_c), rel=1e-5)
    q = rng.uniform(0, 1.5, (50, 8, 8, 1)).astype(np.float32)
    qd, qc = evidence(q)
    ref = -np.log(_tail_share(held_d, qd)) - np.log(_tail_share(held_c, qc))
    got = fam._score(stats_, *_distances_and_doubt(model, q, stats_))
    # The module reads the tail share off 1001 stored quantiles: within a step or two of
    # the exact empirical share (2,000 held-out pictures), so compare p, not -log p.
    np.testing.assert_allclose(np.exp(-got), np.exp(-ref), atol=3e-3)
    # And familiarity ranks by it: a less familiar picture never gets a higher familiarity.
    assert np.all(np.diff(np.interp(np.sort(got), stats_.quantiles, fam._LEVELS)) >= 0)


def _distances_and_doubt(model, x, stats_):
    feats, probs = fam._features_and_output(model, x, stats_.layers)
    return fam._closest(feats, stats_.means, stats_.precisions), fam.doubt(probs)


@pytest.fixture(scope="module", params=["digits", "shapes"])
def builtin(request):
    name = request.param
    try:
        fam.stats_for(name)
    except fam.FamiliarityUnavailable as err:  # a retrained model must be recalibrated
        pytest.fail(str(err))
    return name


def _fresh(name: str, n: int) -> np.ndarray:
    # Seeds no card lists (training 0, validation 1, held-out 10000, calibration 20000).
    if name == "shapes":
        return datasets.shapes(n, seed=4_242_424)[0]
    # Digits learnt from generated digits AND real MNIST training digits, and both are
    # calibrated on (4,000 : 1,500); so is this mixture, its real part the MNIST digits held
    # out of training (never seen by the model or the calibration).
    n_real = n * 3 // 11
    real = datasets.mnist_sample_split(seed=0, heldout_per_class=100)[2]
    real = real[np.random.default_rng(5).permutation(len(real))[:n_real]]
    return np.concatenate([datasets.digits(n - n_real, seed=4_242_424)[0], real])


def test_in_distribution_familiarity_is_about_uniform(builtin):
    f = fam.familiarity(builtin, _fresh(builtin, 440))
    assert f.shape == (440,) and f.min() >= 0 and f.max() <= 1
    # Loose: the calibration set has thousands of pictures, these 440.
    assert stats.kstest(f, "uniform").statistic < 0.1
    # About the threshold's share of typical pictures is flagged (a false alarm rate).
    threshold = fam.stats_for(builtin).threshold
    assert (f < threshold).mean() <= threshold + 0.04


def _real(name: str) -> dict[str, np.ndarray]:
    """Real handwriting and real-looking drawings, fed as users' pictures; never fitted on."""
    if name == "shapes":
        return {"drawn_shapes": evaldata.drawn_shapes(200, seed=99)[0]}
    sx = evaldigits.sklearn_digits()[0]
    sx = sx[np.random.default_rng(0).permutation(len(sx))[:600]]
    return {
        # Real handwriting (43 writers, 8×8), upscaled as a screenshot or a photo would be.
        "sklearn_28_white_on_black": evaldigits.as_user_pictures(sx, 28, dark_on_light=False),
        "sklearn_140_dark_on_light": evaldigits.as_user_pictures(sx, 140, dark_on_light=True),
        "drawn_digits_140": evaldigits.drawn_digits(200, seed=99)[0],
    }


def test_real_drawings_and_handwriting_are_rarely_flagged(builtin):
    shares = {k: fam.unfamiliar(builtin, x).mean() for k, x in _real(builtin).items()}
    assert all(v <= 0.10 for v in shares.values()), shares


def _photo_familiarity(name: str) -> np.ndarray:
    # One at a time: a picture the preprocessing refuses (digits: a blank, low-contrast
    # crop raises BlankImage) never reaches the model, so it has no familiarity.
    from cnnviz import models

    out = []
    for photo in evaldata.photo_crops(200, seed=11):
        try:
            out.append(fam.familiarity(name, photo)[0])
        except models.ModelError:
            continue
    assert len(out) >= 100
    return np.array(out)


@pytest.mark.parametrize("name", ["digits", "shapes"])
def test_photo_crops_are_flagged(name):
    assert np.mean(_photo_familiarity(name) < fam.stats_for(name).threshold) >= 0.9


def test_photo_crops_are_less_familiar_than_drawings(builtin):
    # What the flag achieves on both: photos sit far lower than typical pictures.
    photos = _photo_familiarity(builtin)
    typical = fam.familiarity(builtin, _fresh(builtin, 220))
    assert np.median(photos) < 0.1 < np.median(typical)


def test_unknown_models_and_stale_statistics_say_what_to_do(tmp_path, monkeypatch):
    import dataclasses

    import keras

    with pytest.raises(fam.FamiliarityUnavailable, match="built-in"):
        fam.familiarity("random:shapes", np.zeros((64, 64, 3), np.uint8))
    bare = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(2)])
    with pytest.raises(fam.FamiliarityUnavailable):
        fam.familiarity(bare, np.zeros((4, 4, 1), np.float32))
    # Statistics for another version of the model file are refused, with the fix.
    stale = tmp_path / "shapes.familiarity.npz"
    fam.save_stats(dataclasses.replace(fam.stats_for("shapes"), model_sha256="0" * 64), stale)
    monkeypatch.setattr(fam, "stats_path", lambda name: stale)
    with pytest.raises(fam.FamiliarityUnavailable, match="--calibrate-only"):
        fam.stats_for("shapes")


def _two_layer_stats() -> "fam.FamiliarityStats":
    return fam.FamiliarityStats(
        layers=("conv1", "gap"),
        means=(np.eye(3), np.ones((3, 2))),
        precisions=(np.eye(3) * 2, np.eye(2) * 3),
        centre=np.array([1.0, 2.0]),
        scale=np.array([0.5, 0.25]),
        distance_quantiles=np.linspace(-3, 9, 1001),
        confidence_quantiles=np.linspace(0, 0.7, 1001),
        quantiles=np.linspace(0, 5, 1001),
        threshold=0.02,
        model_sha256="ab" * 32,
        use_doubt=False,
    )


def test_save_and_load_round_trip(tmp_path):
    s = _two_layer_stats()
    fam.save_stats(s, tmp_path / "x.npz")
    t = fam.load_stats(tmp_path / "x.npz")
    assert t.layers == ("conv1", "gap") and t.threshold == 0.02 and t.model_sha256 == "ab" * 32
    assert t.use_doubt is False
    for a, b in zip(t.means + t.precisions, s.means + s.precisions, strict=True):
        np.testing.assert_allclose(a, b)
    np.testing.assert_allclose(t.centre, s.centre)
    np.testing.assert_allclose(t.scale, s.scale)
    np.testing.assert_allclose(t.quantiles, s.quantiles, atol=1e-6)
    np.testing.assert_allclose(t.distance_quantiles, s.distance_quantiles, atol=1e-5)
    np.testing.assert_allclose(t.confidence_quantiles, s.confidence_quantiles, atol=1e-6)


def test_statistics_in_the_old_single_layer_format_ask_for_a_recalibration(tmp_path):
    old = tmp_path / "old.npz"
    np.savez(old, layer=np.array("gap"), means=np.eye(2), precision=np.eye(2))
    with pytest.raises(fam.FamiliarityUnavailable, match="--calibrate-only"):
        fam.load_stats(old)


def test_a_class_without_fitting_pictures_is_refused():
    with pytest.raises(fam.FamiliarityUnavailable, match=r"classes \[2\]"):
        fam.class_statistics(np.zeros((4, 2)), np.array([0, 1, 0, 1]), 3)
