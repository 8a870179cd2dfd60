"""FGSM, PGD and the smallest flipping ε (cnnviz.adversarial), on fresh generated pictures."""

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnviz import adversarial, datasets, models


@pytest.fixture(scope="module")
def tiny():
    keras.utils.set_random_seed(5)
    return keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            keras.layers.Rescaling(1 / 255),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )


@settings(max_examples=12, deadline=None)
@given(eps=st.floats(0, 0.3), seed=st.integers(0, 1000), which=st.sampled_from(["fgsm", "pgd"]))
def test_attacks_never_leave_the_ball_uint8(tiny, eps, seed, which):
    image = np.random.default_rng(seed).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    if which == "fgsm":
        adv = adversarial.fgsm(tiny, image, epsilon=eps)
    else:
        adv = adversarial.pgd(tiny, image, epsilon=eps, steps=3)
    assert adv.dtype == np.uint8 and adv.shape == image.shape
    assert np.abs(adv.astype(int) - image.astype(int)).max() <= eps * 255 + 1


@settings(max_examples=8, deadline=None)
@given(eps=st.floats(0, 0.3), seed=st.integers(0, 1000))
def test_attacks_never_leave_the_ball_float(tiny, eps, seed):
    # A float picture in 0..1 fed to a model that expects 0..255 is fine for the ball check.
    image = np.random.default_rng(seed).random((8, 8, 3)).astype(np.float32)
    adv = adversarial.pgd(tiny, image, epsilon=eps, steps=3)
    assert adv.dtype == np.float32
    assert np.abs(adv - image).max() <= eps + 1e-6 and adv.min() >= 0 and adv.max() <= 1


@pytest.fixture(scope="module")
def fresh_shapes():
    # A seed no training or validation split of the shapes model used (0, 1 and 10000).
    return datasets.shapes(60, seed=4242)


def _accuracy(images, labels):
    return float((models.predict("shapes", images).argmax(axis=1) == labels).mean())


def test_pgd_breaks_the_shapes_model_at_8_levels(fresh_shapes):
    images, labels, _ = fresh_shapes
    assert _accuracy(images, labels) > 0.9
    attacked = np.stack([adversarial.pgd("shapes", im, epsilon=8 / 255) for im in images])
    assert np.abs(attacked.astype(int) - images.astype(int)).max() <= 8
    assert _accuracy(attacked, labels) < 0.2
    fgsm = np.stack([adversarial.fgsm("shapes", im, epsilon=8 / 255) for im in images[:20]])
    assert _accuracy(fgsm, labels[:20]) < _accuracy(images[:20], labels[:20])


def test_a_targeted_attack_reaches_its_target(fresh_shapes):
    images, labels, _ = fresh_shapes
    star = datasets.SHAPE_CLASSES.index("star")
    others = images[labels != star][:15]
    attacked = np.stack(
        [adversarial.pgd("shapes", im, epsilon=8 / 255, target=star) for im in others]
    )
    assert (models.predict("shapes", attacked).argmax(axis=1) == star).mean() >= 0.6


def test_the_gradient_goes_through_the_preprocessing():
    # Digits: RGB→gray, inverted when dark on light, /255. The affine map equals preprocessing.
    images, _ = datasets.digits(2, seed=3)
    paper = (255 - images[0]).astype(np.uint8)  # a dark digit on light paper
    rgb = np.repeat(paper[..., None], 3, axis=-1)
    target = adversarial._target("digits", rgb)
    other = np.clip(
        rgb.astype(np.float64) + np.random.default_rng(0).integers(-8, 9, rgb.shape), 0, 255
    )
    # The pixels the model reads: its preprocessing without the picture fitting.
    want = models.resolve("digits", pictures=False)[1](other.astype(np.float32))
    np.testing.assert_allclose(target.to_model(other[None]), want, rtol=1e-4, atol=1e-3)
    adv = adversarial.fgsm("digits", rgb, epsilon=4 / 255)
    assert adv.shape == rgb.shape and np.abs(adv.astype(int) - rgb).max() <= 4


def test_smallest_flipping_epsilon_brackets_the_flip(fresh_shapes):
    images, _, _ = fresh_shapes
    result = adversarial.smallest_flipping_epsilon("shapes", images[0], tolerance=1 / 255)
    assert result.epsilon is not None and 0 < result.epsilon <= 32 / 255
    assert result.new_class != result.original_class
    assert models.predict("shapes", result.image).argmax() == result.new_class
    flipped = sorted(e for e, f in result.tried if f)
    kept = sorted(e for e, f in result.tried if not f)
    assert flipped[0] == result.epsilon
    assert not kept or result.epsilon - kept[-1] <= 1 / 255 + 1e-12


@pytest.mark.parametrize(
    ("image", "kwargs", "message"),
    [
        (np.zeros((8, 8, 3), np.uint8), {"epsilon": 2.0}, "epsilon"),
        (np.zeros((9, 9, 3), np.uint8), {"epsilon": 0.1}, "input size"),
        (np.full((8, 8, 3), 300.0, np.float32), {"epsilon": 0.1}, "0..1 or 0..255"),
        (np.zeros((8, 8, 3), np.uint8), {"epsilon": 0.1, "target": 7}, "target"),
    ],
)
def test_bad_input_says_what_was_expected(tiny, image, kwargs, message):
    with pytest.raises(adversarial.AdversarialError, match=message):
        adversarial.pgd(tiny, image, **kwargs)
