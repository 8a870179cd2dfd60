"""cnnviz.featureviz: shapes, numbers against Keras and scipy, properties, determinism, quality."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import ndimage

from cnnviz import datasets, layers, models
from cnnviz import featureviz as fv
from cnnviz.featureviz import feed


def _conv_net(name: str, channels: int, *, fused: bool) -> keras.Model:
    """16×16 Functional CNN; conv layers have a fused ReLU (fused=True) or a separate one."""
    keras.utils.set_random_seed(7)
    inp = keras.Input((16, 16, channels), name="img")
    act = "relu" if fused else None
    x = keras.layers.Conv2D(6, 3, padding="same", activation=act, name="c1")(inp)
    if not fused:
        x = keras.layers.ReLU(name="r1")(x)
    x = keras.layers.Conv2D(8, 3, strides=2, activation=act, name="c2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    out = keras.layers.Dense(4, activation="softmax", name="probs")(x)
    return keras.Model(inp, out, name=name)


@pytest.fixture(scope="module")
def net() -> keras.Model:
    return _conv_net("fused", 3, fused=True)


@pytest.fixture(scope="module")
def linear_net() -> keras.Model:
    return _conv_net("linear", 3, fused=False)


@pytest.fixture(scope="module")
def gray_net() -> keras.Model:
    keras.utils.set_random_seed(3)
    return keras.Sequential(
        [
            keras.Input((12, 12, 1)),
            keras.layers.Conv2D(4, 3, activation="relu", name="g1"),
            keras.layers.Flatten(name="flat"),
            keras.layers.Dense(3, activation="softmax", name="out"),
        ],
        name="gray",
    )


def _reference_means(model: keras.Model, layer: str, images: np.ndarray) -> np.ndarray:
    """Every channel's mean activation, by a plain Keras sub-model: (n, C)."""
    sub = keras.Model(model.inputs, model.get_layer(layer).output)
    return np.asarray(sub(images.astype(np.float32), training=False)).mean(axis=(1, 2))


# --------------------------------------------------------------------------------------------
# visualize: shapes, ranges, scores
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("param", ["fft", "pixel", "clipped"])
def test_visualize_shapes_range_and_scores_match_keras(net, param):
    filters = [0, 3, 5]
    imgs, scores = fv.visualize(net, "c2", filters, steps=3, param=param)
    assert imgs.shape == (3, 16, 16, 3) and imgs.dtype == np.float32
    assert scores.shape == (3,) and scores.dtype == np.float32
    assert imgs.min() >= 0.0 and imgs.max() <= 1.0
    # The score is each filter's mean activation on its final image, as Keras computes it.
    ref = _reference_means(net, "c2", imgs)[np.arange(3), filters]
    np.testing.assert_allclose(scores, ref, rtol=1e-4, atol=1e-6)


def test_size_defaults_to_the_model_input_and_is_resized_for_fixed_models(net):
    imgs, _ = fv.visualize(net, "c1", [0], steps=1)
    assert imgs.shape[1:3] == (16, 16)
    imgs, scores = fv.visualize(net, "c1", [1], steps=1, size=24, transforms="none")
    assert imgs.shape == (1, 24, 24, 3)
    # A model with a fixed 16×16 input sees the 24×24 image resized (bilinear, as TF does).
    small = keras.ops.convert_to_numpy(keras.ops.image.resize(imgs, (16, 16)))
    np.testing.assert_allclose(scores, _reference_means(net, "c1", small)[:, 1], rtol=1e-4)


def test_gray_model_gives_gray_images(gray_net):
    imgs, scores = fv.visualize(gray_net, "g1", [0, 1, 2, 3], steps=2)
    assert imgs.shape == (4, 12, 12, 1)
    np.testing.assert_allclose(
        scores, _reference_means(gray_net, "g1", imgs)[np.arange(4), [0, 1, 2, 3]], rtol=1e-4
    )


def test_nested_model_equals_its_base(net):
    # The base inside a Sequential: the nested path gives exactly what the base alone gives.
    outer = keras.Sequential([keras.Input((16, 16, 3)), net, keras.layers.Dense(2)], name="outer")
    a, sa = fv.visualize(outer, f"{net.name}/c2", [1, 4], steps=3)
    b, sb = fv.visualize(net, "c2", [1, 4], steps=3)
    np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(sa, sb, rtol=1e-4, atol=1e-6)


def test_sequential_model_and_all_filters_together_equal_one_by_one(gray_net):
    # Batching must not couple the images: with no shared random transform, optimising
    # filters together gives each filter the image it gets alone.
    together, s_together = fv.visualize(gray_net, "g1", [0, 2, 3], steps=3, transforms="none")
    for i, f in enumerate([0, 2, 3]):
        alone, s_alone = fv.visualize(gray_net, "g1", [f], steps=3, transforms="none")
        np.testing.assert_allclose(together[i], alone[0], atol=1e-5)
        np.testing.assert_allclose(s_together[i], s_alone[0], rtol=1e-4, atol=1e-6)


def test_batch_size_splits_into_chunks_with_the_same_result(gray_net):
    full, s_full = fv.visualize(gray_net, "g1", [0, 1, 2], steps=2, transforms="none")
    split, s_split = fv.visualize(
        gray_net, "g1", [0, 1, 2], steps=2, transforms="none", batch_size=2
    )
    np.testing.assert_allclose(full, split, atol=1e-5)
    np.testing.assert_allclose(s_full, s_split, rtol=1e-4, atol=1e-6)


def test_determinism_same_seed_same_images(net):
    a, sa = fv.visualize(net, "c2", [0, 1, 2], steps=3, seed=5)
    b, sb = fv.visualize(net, "c2", [0, 1, 2], steps=3, seed=5)
    c, _ = fv.visualize(net, "c2", [0, 1, 2], steps=3, seed=6)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(sa, sb)
    assert not np.allclose(a, c)


def test_progress_is_called_every_step_with_previews_and_the_env_cap(net, monkeypatch):
    monkeypatch.setenv(fv.MAX_STEPS_ENV, "4")
    calls = []
    fv.visualize(
        net, "c1", [0, 1], steps=500, progress=lambda s, t, p: calls.append((s, t, p.shape))
    )
    assert [c[0] for c in calls] == [1, 2, 3, 4]
    assert all(c[1] == 4 and c[2] == (2, 16, 16, 3) for c in calls)


def test_capped_steps_reads_the_environment(monkeypatch):
    monkeypatch.setenv(fv.MAX_STEPS_ENV, "7")
    assert fv.capped_steps(100) == 7 and fv.capped_steps(3) == 3
    monkeypatch.delenv(fv.MAX_STEPS_ENV)
    assert fv.capped_steps(100) == 100
    monkeypatch.setenv(fv.MAX_STEPS_ENV, "many")
    with pytest.raises(fv.FeatureVizError, match="Expected"):
        fv.capped_steps(10)


def test_nan_stops_with_a_clear_error():
    keras.utils.set_random_seed(0)
    bad = _conv_net("nan", 3, fused=False)
    kernel = bad.get_layer("c1").kernel
    kernel.assign(np.full(kernel.shape, np.nan, np.float32))
    with pytest.raises(fv.FeatureVizError, match="NaN"):
        fv.visualize(bad, "c2", [0], steps=2)


# --------------------------------------------------------------------------------------------
# Objectives
# --------------------------------------------------------------------------------------------


@settings(
    max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seed=st.integers(0, 10_000), f=st.integers(0, 7), param=st.sampled_from(["fft", "pixel"]))
def test_five_steps_raise_the_objective(linear_net, monkeypatch, seed, f, param):
    # Property (lucent's assert_gradient_descent): a few ascent steps raise the filter's mean.
    # No random transforms here: with them, the steps raise the mean over transformed copies.
    monkeypatch.setenv(fv.MAX_STEPS_ENV, "5")
    maker = fv.fft_image if param == "fft" else fv.pixel_image
    start = maker(1, 16, 16, 3, seed=seed).image_fn().numpy()
    before = _reference_means(linear_net, "c2", start)[0, f]
    _, after = fv.render(
        linear_net,
        fv.channel("c2", f),
        maker(1, 16, 16, 3, seed=seed),
        steps=5,
        seed=seed,
    )
    assert after[0] > before


def test_revive_wakes_a_silent_relu_filter(net, monkeypatch):
    monkeypatch.setenv(fv.MAX_STEPS_ENV, "30")
    # Find a filter of c2 that is exactly 0 on grey: after its ReLU it has no gradient.
    grey = np.full((1, 16, 16, 3), 0.5, np.float32)
    dead = [f for f in range(8) if _reference_means(net, "c2", grey)[0, f] == 0.0]
    assert dead, "the fixture should have a filter that is silent on grey"
    opts = {"steps": 30, "transforms": "none", "param": "pixel"}
    _, plain = fv.visualize(net, "c2", dead[:1], revive=False, **opts)
    _, ours = fv.visualize(net, "c2", dead[:1], revive=True, **opts)
    assert plain[0] == 0.0 < ours[0]


def test_revive_uses_the_pre_activation_only_while_silent(net):
    # On a grey image (learning rate 0: it stays grey), a firing filter's revive value is its
    # mean activation; a silent one's is its largest plus its mean pre-activation, computed
    # here by a twin Conv2D without the ReLU.
    def revive_value(f: int) -> float:
        param = fv.pixel_image(1, 16, 16, 3, sd=0.0)
        objective = fv.channel("c2", f, revive=True)
        return fv.render(net, objective, param, steps=1, learning_rate=0.0)[1][0]

    grey = np.full((1, 16, 16, 3), 0.5, np.float32)
    means = _reference_means(net, "c2", grey)[0]
    firing, silent = int(np.argmax(means)), int(np.argmin(means))
    assert means[firing] > 0.0 == means[silent]
    twin = keras.layers.Conv2D(8, 3, strides=2)
    twin.build((None, 16, 16, 6))
    twin.set_weights(net.get_layer("c2").get_weights())
    c1 = keras.Model(net.inputs, net.get_layer("c1").output)(grey)
    pre = np.asarray(twin(c1))[0, :, :, silent]
    np.testing.assert_allclose(revive_value(firing), means[firing], rtol=1e-4)
    np.testing.assert_allclose(revive_value(silent), pre.max() + pre.mean(), rtol=1e-4, atol=1e-6)


def test_objectives_compose_linearly(linear_net):
    # Same seed, same images; only the reported objective differs.
    def score(objective):
        param = fv.pixel_image(2, 16, 16, 3, seed=1)
        return fv.render(linear_net, fv.channel("c2", [2, 5]), param, steps=2, score=objective)[1]

    ch, tv, l2 = (
        score(fv.channel("c2", [2, 5])),
        score(fv.total_variation()),
        score(fv.l2_penalty()),
    )
    np.testing.assert_allclose(
        score(fv.channel("c2", [2, 5]) - 0.5 * fv.total_variation() + 2 * fv.l2_penalty() + 1),
        ch - 0.5 * tv + 2 * l2 + 1,
        rtol=1e-5,
    )
    images = fv.render(
        linear_net, fv.channel("c2", [2, 5]), fv.pixel_image(2, 16, 16, 3, seed=1), steps=2
    )[0]
    ref_tv = np.abs(np.diff(images, axis=1)).mean(axis=(1, 2, 3)) + np.abs(
        np.diff(images, axis=2)
    ).mean(axis=(1, 2, 3))
    np.testing.assert_allclose(tv, ref_tv, rtol=1e-5)
    np.testing.assert_allclose(l2, ((images - 0.5) ** 2).mean(axis=(1, 2, 3)), rtol=1e-5)


def test_neuron_is_the_centre_unit(linear_net):
    imgs, scores = fv.visualize(linear_net, "c2", [1, 6], steps=2, objective="neuron")
    sub = keras.Model(linear_net.inputs, linear_net.get_layer("c2").output)
    maps = np.asarray(sub(imgs))  # (2, 7, 7, 8): the centre is (3, 3)
    np.testing.assert_allclose(scores, maps[[0, 1], 3, 3, [1, 6]], rtol=1e-4, atol=1e-6)


def test_class_logit_is_pre_softmax_and_the_model_is_untouched(gray_net):
    weights = [w.copy() for w in gray_net.get_weights()]
    imgs, scores = fv.visualize(gray_net, None, [0, 2], steps=3, objective="class")
    # Reference: a twin model whose last layer has no softmax, with the same weights.
    twin = keras.Sequential(
        [
            keras.Input((12, 12, 1)),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(3),
        ]
    )
    twin.set_weights(gray_net.get_weights())
    logits = np.asarray(twin(imgs))
    np.testing.assert_allclose(scores, logits[[0, 1], [0, 2]], rtol=1e-4, atol=1e-5)
    assert gray_net.layers[-1].activation.__name__ == "softmax"
    for a, b in zip(weights, gray_net.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_input_range_maps_unit_images_like_rescaling_inside(net):
    # A model with Rescaling(1/255) in front, fed input_range=(0, 255), sees what `net` sees.
    wrapped = keras.Sequential(
        [keras.Input((16, 16, 3)), keras.layers.Rescaling(1 / 255, name="rescale"), net]
    )
    assert fv.suggested_input_range(wrapped) == (0.0, 255.0)
    assert fv.suggested_input_range(net) is None
    a, sa = fv.visualize(wrapped, f"{net.name}/c2", [3], steps=2, input_range=(0, 255))
    b, sb = fv.visualize(net, "c2", [3], steps=2)
    np.testing.assert_allclose(a, b, atol=1e-4)
    np.testing.assert_allclose(sa, sb, rtol=1e-3)


def test_probed_preprocessing_matches_vgg16_caffe_mode():
    # keras.applications.vgg16.preprocess_input: RGB -> BGR, minus the ImageNet mean.
    from keras.applications import vgg16

    def prep(x):
        return np.asarray(vgg16.preprocess_input(np.asarray(x, np.float32)))

    a, b = feed._probe_affine(prep, 32, 32, 3)
    np.testing.assert_allclose(a, 255.0 * np.eye(3)[:, ::-1], atol=1e-3)
    np.testing.assert_allclose(b, [-103.939, -116.779, -123.68], atol=1e-3)


# --------------------------------------------------------------------------------------------
# Parameterisations and transforms, against scipy
# --------------------------------------------------------------------------------------------


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p / (1 - p))


def test_fft_blur_is_a_periodic_gaussian_blur():
    param = fv.fft_image(1, 32, 32, 1, seed=2, sd=0.05, decorrelate=False)
    before = _logit(param.image_fn().numpy().astype(np.float64))[0, :, :, 0]
    param.blur(1.5)
    after = _logit(param.image_fn().numpy().astype(np.float64))[0, :, :, 0]
    ref = ndimage.gaussian_filter(before, 1.5, mode="wrap", truncate=6.0)
    np.testing.assert_allclose(after, ref, atol=2e-3 * np.abs(before).max())


def test_pixel_blur_is_a_mirrored_gaussian_blur():
    param = fv.pixel_image(2, 20, 20, 3, seed=4, sd=0.5)
    before = param.params[0].numpy()
    param.blur(1.0)
    ref = ndimage.gaussian_filter(before, (0, 1.0, 1.0, 0), mode="mirror", truncate=3.0)
    np.testing.assert_allclose(param.params[0].numpy(), ref, atol=1e-5)


def test_clipped_pixels_start_grey_and_stay_in_range(net):
    param = fv.pixel_image(2, 16, 16, 3, seed=0, sigmoid=False)
    start = param.image_fn().numpy()
    assert np.all(np.abs(start - 0.5) <= 10 / 255 + 1e-6)
    objective = fv.channel("c1", [0, 1], pre_activation=True)
    # Unit-RMS steps of 1: far past the bounds, so the projection must clip.
    imgs, _ = fv.render(
        net, objective, param, steps=2, learning_rate=1.0, optimizer="sgd", normalize_gradients=True
    )
    assert imgs.min() >= 0.0 and imgs.max() <= 1.0
    assert (imgs == 1.0).any() or (imgs == 0.0).any()  # the big steps hit the bounds


def _ramp(h: int = 17, w: int = 17) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.random((2, h, w, 3)).astype(np.float32)


def test_pad_and_jitter_shapes_and_content():
    x = _ramp()
    seed = np.array([1, 2], np.int32)
    padded = fv.pad(3)(x, seed).numpy()
    assert padded.shape == (2, 23, 23, 3)
    np.testing.assert_array_equal(padded[:, 3:-3, 3:-3], x)
    assert np.all(padded[:, :3] == 0.5)
    cropped = fv.jitter(4)(x, seed).numpy()
    assert cropped.shape == (2, 13, 13, 3)
    # The crop is a window of the input at one offset in [0, 4] for the whole batch.
    hits = [
        (oy, ox)
        for oy in range(5)
        for ox in range(5)
        if np.array_equal(cropped, x[:, oy : oy + 13, ox : ox + 13])
    ]
    assert len(hits) == 1


def test_random_rotate_by_90_degrees_is_rot90():
    x = _ramp()
    out = fv.random_rotate([90])(x, np.array([0, 0], np.int32)).numpy()
    np.testing.assert_allclose(out, np.rot90(x, k=1, axes=(1, 2)), atol=1e-5)


def test_random_rotate_matches_scipy_inside_the_image():
    x = _ramp(33, 33)
    out = fv.random_rotate([20])(x, np.array([0, 0], np.int32)).numpy()
    ref = np.stack(
        [ndimage.rotate(x[i], 20, axes=(1, 0), reshape=False, order=1) for i in range(2)]
    )
    inner = (slice(None), slice(10, 23), slice(10, 23))
    np.testing.assert_allclose(out[inner], ref[inner], atol=1e-4)


def test_random_scale_matches_scipy_zoom_about_the_centre():
    x = _ramp(33, 33)
    out = fv.random_scale([1.25])(x, np.array([0, 0], np.int32)).numpy()
    c = 16.0
    # Output pixel p reads input pixel c + (p - c) / 1.25.
    ref = np.stack(
        [
            ndimage.affine_transform(
                x[i], [1 / 1.25, 1 / 1.25, 1], offset=[c - c / 1.25, c - c / 1.25, 0], order=1
            )
            for i in range(2)
        ]
    )
    np.testing.assert_allclose(out, ref, atol=1e-4)


def test_transform_randomness_is_seeded():
    x = _ramp(33, 33)
    t = fv.random_rotate(list(range(-10, 11)))
    a = t(x, np.array([3, 9], np.int32)).numpy()
    np.testing.assert_array_equal(a, t(x, np.array([3, 9], np.int32)).numpy())
    assert not np.array_equal(a, t(x, np.array([3, 10], np.int32)).numpy())


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


def test_errors_say_what_was_expected(net):
    with pytest.raises(
        fv.FeatureVizError, match=r"Expected filters of 'c2' between 0 and 7.*\[8\]"
    ):
        fv.visualize(net, "c2", [1, 8], steps=1)
    with pytest.raises(layers.LayerError, match="Expected one of"):
        fv.visualize(net, "nope", [0], steps=1)
    with pytest.raises(fv.FeatureVizError, match="Expected param"):
        fv.visualize(net, "c2", [0], steps=1, param="wavelets")
    with pytest.raises(fv.FeatureVizError, match="Expected size"):
        fv.visualize(net, "c2", [0], steps=1, size=3)
    with pytest.raises(fv.FeatureVizError, match="Expected an optimiser"):
        fv.visualize(net, "c2", [0], steps=1, optimizer="warp-drive")
    headless = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Conv2D(2, 3, name="k")])
    with pytest.raises(fv.FeatureVizError, match="Expected the model to end in a Dense"):
        fv.visualize(headless, None, [0], steps=1, objective="class")


# --------------------------------------------------------------------------------------------
# The quality bar, on the shipped shapes model
# --------------------------------------------------------------------------------------------

QUALITY_STEPS = 64
QUALITY_FILTERS = list(range(8))


def _seeds(card) -> list[int]:
    """Every integer stored under a key containing "seed", anywhere in the model card."""
    found = []
    for key, value in card.items() if isinstance(card, dict) else []:
        if isinstance(value, dict):
            found += _seeds(value)
        elif "seed" in key and isinstance(value, int):
            found.append(value)
    return found


@pytest.fixture(scope="module")
def shapes_bar():
    """Last conv layer of the built-in shapes model; each filter's 99th percentile on data."""
    card = json.loads((models.ASSETS / "shapes.json").read_text())
    # Fresh pictures: a seed above every seed the model card lists (training, validation, ...).
    seed = max(_seeds(card), default=0) + 1
    net, prep = models.resolve("shapes")
    layer = layers.last_conv_layer(net)
    x, _, _ = datasets.shapes(500, seed=seed)
    sub = layers.feature_model(net, [layer], include_output=False)
    out = sub(prep(x), training=False)
    maps = np.asarray(out[0] if isinstance(out, list | tuple) else out)
    p99 = np.percentile(maps.mean(axis=(1, 2)), 99, axis=0)
    return layer, p99


def test_quality_bar_on_the_shapes_model(shapes_bar, monkeypatch):
    # Real steps: this test sets its own count instead of the suite's cap.
    monkeypatch.delenv(fv.MAX_STEPS_ENV, raising=False)
    layer, p99 = shapes_bar
    _, ours = fv.visualize("shapes", layer, QUALITY_FILTERS, steps=QUALITY_STEPS, seed=0)
    _, plain = fv.plain_gradient_ascent("shapes", layer, QUALITY_FILTERS, steps=QUALITY_STEPS)
    print("ours", ours.round(2), "\nplain", plain.round(2), "\np99", p99[QUALITY_FILTERS].round(2))
    assert np.all(ours >= p99[QUALITY_FILTERS])
    assert np.all(ours > plain)
