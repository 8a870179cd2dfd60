"""cnnviz.familiarity: Mahalanobis distances against scipy, calibration, and the built-ins' flags."""

import importlib

import numpy as np
import pytest
from PIL import Image
from scipy import stats
from scipy.spatial.distance import mahalanobis

from cnnviz import datasets, evaldata

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
    if name == "digits":
        return datasets.digits(n, seed=4_242_424)[0]
    return datasets.shapes(n, seed=4_242_424)[0]


def test_in_distribution_familiarity_is_about_uniform(builtin):
    f = fam.familiarity(builtin, _fresh(builtin, 400))
    assert f.shape == (400,) and f.min() >= 0 and f.max() <= 1
    # Loose: the calibration set is 4,000 pictures, the fresh ones 400.
    assert stats.kstest(f, "uniform").statistic < 0.1
    assert fam.unfamiliar(builtin, _fresh(builtin, 400)).mean() <= 0.05


def _real(name: str) -> np.ndarray:
    if name == "shapes":
        return evaldata.drawn_shapes(160, seed=99)[0]
    from sklearn.datasets import load_digits

    out = []
    for im in load_digits().images[:300]:
        # Real handwriting (43 writers, 8×8): white on black, upscaled into MNIST's 20×20 box.
        big = Image.fromarray((im / 16 * 255).astype(np.uint8)).resize((20, 20), Image.BILINEAR)
        canvas = np.zeros((28, 28), np.uint8)
        canvas[4:24, 4:24] = np.asarray(big)
        out.append(canvas)
    return np.stack(out)


def test_real_drawings_and_handwriting_are_rarely_flagged(builtin):
    assert fam.unfamiliar(builtin, _real(builtin)).mean() <= 0.10


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


@pytest.mark.xfail(
    strict=True,
    reason="Issue 14 asks >= 90 % of photo crops flagged; penultimate-layer Mahalanobis alone "
    "flags about 49 % (shapes) and 7 % (issue-8 digits) at the 1 % threshold. Strict: turns red when met.",
)
def test_photo_crops_are_flagged(builtin):
    assert np.mean(_photo_familiarity(builtin) < fam.stats_for(builtin).threshold) >= 0.9


def test_photo_crops_are_less_familiar_than_drawings(builtin):
    # What the flag does achieve: photos sit far lower than typical pictures.
    photos = _photo_familiarity(builtin)
    typical = fam.familiarity(builtin, _fresh(builtin, 200))
    assert np.median(photos) < 0.1 < np.median(typical)


def test_unknown_models_and_stale_statistics_say_what_to_do(tmp_path, monkeypatch):
    import keras

    with pytest.raises(fam.FamiliarityUnavailable, match="built-in"):
        fam.familiarity("random:shapes", np.zeros((64, 64, 3), np.uint8))
    bare = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(2)])
    with pytest.raises(fam.FamiliarityUnavailable):
        fam.familiarity(bare, np.zeros((4, 4, 1), np.float32))
    # Statistics for another version of the model file are refused, with the fix.
    stats_ = fam.stats_for("shapes")
    stale = tmp_path / "shapes.familiarity.npz"
    fam.save_stats(
        fam.FamiliarityStats(
            stats_.layer, stats_.means, stats_.precision, stats_.quantiles, 0.01, "0" * 64
        ),
        stale,
    )
    monkeypatch.setattr(fam, "stats_path", lambda name: stale)
    with pytest.raises(fam.FamiliarityUnavailable, match="--calibrate-only"):
        fam.stats_for("shapes")


def test_save_and_load_round_trip(tmp_path):
    s = fam.FamiliarityStats(
        "gap", np.eye(3), np.eye(3) * 2, np.linspace(0, 5, 1001), 0.02, "ab" * 32
    )
    fam.save_stats(s, tmp_path / "x.npz")
    t = fam.load_stats(tmp_path / "x.npz")
    assert t.layer == "gap" and t.threshold == 0.02 and t.model_sha256 == "ab" * 32
    np.testing.assert_allclose(t.precision, s.precision)
    np.testing.assert_allclose(t.quantiles, s.quantiles, atol=1e-6)
