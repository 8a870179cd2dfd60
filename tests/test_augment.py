"""Augmentation: the preview equals the Keras preprocessing layers' output for the same seed."""

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnviz.augment import (
    FILL_MODES,
    SEED_003,
    SEED_OFFSETS,
    Augmentation,
    AugmentError,
    augment_preview,
    augmentation_layers,
)


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    # A 24×20 RGB image with distinct values everywhere, so any transform shows.
    return (np.arange(24 * 20 * 3).reshape(24, 20, 3) % 251).astype(np.uint8)


def keras_reference(img: np.ndarray, s: Augmentation, n: int, seed: int) -> np.ndarray:
    """The seed's ImageDataGenerator settings written directly as Keras layers."""
    f = s.fill_mode
    layers = []
    if s.rotation:
        layers.append(keras.layers.RandomRotation(s.rotation / 360, fill_mode=f, seed=seed + 0))
    if s.shift:
        layers.append(keras.layers.RandomTranslation(s.shift, s.shift, fill_mode=f, seed=seed + 1))
    if s.shear:
        layers.append(keras.layers.RandomShear(s.shear, s.shear, fill_mode=f, seed=seed + 2))
    if s.zoom:
        layers.append(keras.layers.RandomZoom(s.zoom, fill_mode=f, seed=seed + 3))
    if s.flip != "none":
        layers.append(keras.layers.RandomFlip(s.flip, seed=seed + 4))
    x = np.repeat(img[None].astype(np.float32), n, axis=0)
    for layer in layers:
        x = layer(x, training=True)
    return np.asarray(x)


def test_seed_offsets_are_the_documented_ones():
    assert SEED_OFFSETS == {"rotation": 0, "shift": 1, "shear": 2, "zoom": 3, "flip": 4}


@pytest.mark.parametrize(
    "s",
    [
        SEED_003,
        Augmentation(rotation=30, fill_mode="constant"),
        Augmentation(shift=0.3, fill_mode="wrap"),
        Augmentation(shear=0.4, zoom=0.3, fill_mode="reflect"),
        Augmentation(zoom=0.5, flip="horizontal_and_vertical"),
    ],
    ids=["seed003", "rotation", "shift", "shear+zoom", "zoom+flip"],
)
def test_preview_equals_keras_layers(image, s):
    got = augment_preview(image, s, 6, seed=7)
    ref = keras_reference(image, s, 6, seed=7)
    assert got.shape == (6, 24, 20, 3) and got.dtype == np.float32
    np.testing.assert_allclose(got, ref, atol=1e-4)


def test_preview_is_deterministic_per_seed_and_varies(image):
    a = augment_preview(image, SEED_003, 4, seed=3)
    b = augment_preview(image, SEED_003, 4, seed=3)
    c = augment_preview(image, SEED_003, 4, seed=4)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    # Each variant in a batch draws its own transform.
    assert not np.allclose(a[0], a[1])


def test_no_augmentation_is_identity(image):
    out = augment_preview(image, Augmentation(), 3, seed=0)
    np.testing.assert_array_equal(out, np.repeat(image[None].astype(np.float32), 3, axis=0))
    assert not Augmentation().active and SEED_003.active


def test_grayscale_gets_a_channel_axis():
    gray = np.arange(100, dtype=np.uint8).reshape(10, 10)
    assert augment_preview(gray, Augmentation(rotation=10), 2, seed=0).shape == (2, 10, 10, 1)


def test_horizontal_flip_gives_the_image_or_its_mirror(image):
    out = augment_preview(image, Augmentation(flip="horizontal"), 16, seed=1)
    plain, mirror = image.astype(np.float32), image[:, ::-1].astype(np.float32)
    kinds = [np.array_equal(v, plain) or np.array_equal(v, mirror) for v in out]
    assert all(kinds)
    # 16 fair coin flips: both outcomes appear (fixed seed, so this is deterministic).
    assert any(np.array_equal(v, mirror) for v in out)
    assert any(np.array_equal(v, plain) for v in out)


def test_layers_are_inactive_at_inference(image):
    x = image[None].astype(np.float32)
    layers = augmentation_layers(SEED_003, 0)
    np.testing.assert_array_equal(np.asarray(layers(x, training=False)), x)
    np.testing.assert_array_equal(layers.predict(x, verbose=0), x)


@settings(max_examples=10, deadline=None)
@given(
    shift=st.floats(0.05, 0.5),
    fill=st.sampled_from(sorted(FILL_MODES)),
    seed=st.integers(0, 1000),
)
def test_shift_keeps_range_and_shape(shift, fill, seed):
    # Property: a shift only moves and fills pixels, so values stay within the input's range.
    img = np.linspace(10, 200, 12 * 12).reshape(12, 12).astype(np.uint8)
    out = augment_preview(img, Augmentation(shift=shift, fill_mode=fill), 3, seed=seed)
    assert out.shape == (3, 12, 12, 1)
    low = 0.0 if fill == "constant" else 10.0
    assert out.min() >= low - 1e-3 and out.max() <= 200 + 1e-3


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"rotation": -1}, "Expected rotation in"),
        ({"shift": 0.8}, "Expected shift in"),
        ({"zoom": True}, "Expected zoom to be a number"),
        ({"flip": "diagonal"}, "Expected flip in"),
        ({"fill_mode": "mirror"}, "Expected fill_mode in"),
    ],
)
def test_bad_settings_say_what_was_expected(kwargs, match):
    with pytest.raises(AugmentError, match=match):
        Augmentation(**kwargs)


def test_bad_preview_inputs(image):
    with pytest.raises(AugmentError, match="Expected n"):
        augment_preview(image, SEED_003, 0)
    with pytest.raises(AugmentError, match="Expected an"):
        augment_preview(np.zeros((2, 3, 4, 5)), SEED_003, 1)


def test_describe_names_the_transforms():
    assert Augmentation().describe() == "none"
    text = SEED_003.describe()
    assert "rotate ±40°" in text and "flip horizontal" in text and "fill nearest" in text
