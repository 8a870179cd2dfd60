"""Grad-CAM family, saliency and the honesty tools (cnnviz.cam).

References are independent of `cnnviz.cam`: CAM (Zhou 2016) from the Dense kernel and a
`keras.Model` on the conv layer; a float64 NumPy forward pass written here; finite
differences for gradients; IG's completeness axiom; scipy for ranks; fresh generated data and
the shipped model cards for the built-ins.
"""

import json
import threading
from pathlib import Path

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from cnnviz import cam, datasets, models
from cnnviz.cam import base as cam_base
from cnnviz.layers import LayerError

ROOT = Path(__file__).resolve().parents[1]
FAST = {"smoothgrad": {"samples": 4}, "integrated_gradients": {"steps": 8}}


def _minmax(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    span = a.max() - a.min()
    return np.zeros_like(a) if span == 0 else (a - a.min()) / span


# --------------------------------------------------------------------------------------------
# Small seeded models
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gap_model():
    """Conv → Conv → GAP → Dense(softmax), 'same' padding: the map has the input's size."""
    keras.utils.set_random_seed(1)
    m = keras.Sequential(
        [
            keras.Input((12, 12, 3)),
            keras.layers.Conv2D(5, 3, padding="same", activation="relu", name="c1"),
            keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="last"),
            keras.layers.GlobalAveragePooling2D(name="gap"),
            keras.layers.Dense(4, activation="softmax", name="head"),
        ],
        name="gapnet",
    )
    # Give every class positive and negative channel weights, so that every map has content.
    kernel, bias = m.get_layer("head").get_weights()
    kernel[0] = np.abs(kernel[0]) + 0.2
    m.get_layer("head").set_weights([kernel, bias])
    image = np.random.default_rng(1).random((12, 12, 3)).astype(np.float32)
    return m, image


def _numpy_forward_64(m: keras.Model, image: np.ndarray) -> np.ndarray:
    """The two 'same' 3×3 conv + ReLU layers of `gap_model` in float64 NumPy: (12, 12, 6)."""
    x = image.astype(np.float64)
    for name in ("c1", "last"):
        k, b = (w.astype(np.float64) for w in m.get_layer(name).get_weights())
        h, w = x.shape[:2]
        xp = np.pad(x, ((1, 1), (1, 1), (0, 0)))
        out = np.zeros((h, w, k.shape[-1]))
        for di in range(3):
            for dj in range(3):
                out += np.einsum("hwc,co->hwo", xp[di : di + h, dj : dj + w], k[di, dj])
        x = np.maximum(out + b, 0.0)
    return x


def _three_kinds():
    """One architecture as Sequential, Functional, and a Functional base nested in a Sequential."""

    def layers():
        return [
            keras.layers.Conv2D(6, 3, activation="relu", name="c1"),
            keras.layers.MaxPooling2D(name="p1"),
            keras.layers.Conv2D(8, 3, activation="relu", name="c2"),
        ]

    def head():
        return [
            keras.layers.GlobalAveragePooling2D(name="gap"),
            keras.layers.Dense(16, activation="relu", name="d1"),
            keras.layers.Dense(5, activation="softmax", name="out"),
        ]

    keras.utils.set_random_seed(2)
    seq = keras.Sequential([keras.Input((16, 16, 3)), *layers(), *head()], name="seq")
    i = keras.Input((16, 16, 3))
    x = i
    for layer in layers() + head():
        x = layer(x)
    fun = keras.Model(i, x, name="fun")
    bi = keras.Input((16, 16, 3))
    y = bi
    for layer in layers():
        y = layer(y)
    base = keras.Model(bi, y, name="base")
    nested = keras.Sequential([keras.Input((16, 16, 3)), base, *head()], name="nested")
    # Same weights everywhere, copied layer by layer by name.
    for target in (fun, base, nested):
        for layer in target.layers:
            if layer.weights and not isinstance(layer, keras.Model):
                layer.set_weights(seq.get_layer(layer.name).get_weights())
    return seq, fun, nested


@pytest.fixture(scope="module")
def kinds():
    seq, fun, nested = _three_kinds()
    image = np.random.default_rng(2).random((16, 16, 3)).astype(np.float32)
    return seq, fun, nested, image


# --------------------------------------------------------------------------------------------
# Grad-CAM = CAM on GAP → Dense
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["gradcam", "hirescam"])
def test_gradcam_equals_cam_and_a_float64_reference(gap_model, method):
    m, image = gap_model
    kernel = m.get_layer("head").get_weights()[0]
    features = keras.Model(m.inputs[0], m.get_layer("last").output)
    acts = np.asarray(features(image[None]))[0].astype(np.float64)
    acts64 = _numpy_forward_64(m, image)
    np.testing.assert_allclose(acts, acts64, atol=1e-4)  # the reference forward pass is right
    for c in range(4):
        heat = cam.compute(method, m, image, class_index=c)
        assert heat.reason is None and heat.heatmap.shape == (12, 12)
        # CAM (Zhou et al. 2016): M_c = sum_k w_kc A_k; Grad-CAM keeps its positive part.
        cam_map = np.maximum(acts @ kernel[:, c], 0)
        assert np.corrcoef(heat.heatmap.ravel(), cam_map.ravel())[0, 1] >= 0.999
        reference = _minmax(np.maximum(acts64 @ kernel[:, c].astype(np.float64), 0))
        np.testing.assert_allclose(heat.heatmap, reference, atol=1e-5)


def test_default_is_top1_class_and_last_conv(gap_model):
    m, image = gap_model
    result = cam.compute("gradcam", m, image)
    probs = np.asarray(m(image[None]))[0]
    assert result.class_index == int(np.argmax(probs))
    assert result.layer == "last"
    np.testing.assert_allclose(result.probabilities, probs, atol=1e-5)


def test_score_is_pre_softmax_and_model_untouched(gap_model):
    m, image = gap_model
    head = m.get_layer("head")
    before = [w.copy() for w in m.get_weights()]
    result = cam.compute("gradcam", m, image, class_index=2)
    # Independent logits: a twin head without activation, same kernel and bias.
    pre = keras.Model(m.inputs[0], m.get_layer("gap").output)(image[None])
    twin = keras.layers.Dense(4)
    twin.build((None, 6))
    twin.set_weights(head.get_weights())
    logits = np.asarray(twin(pre))[0]
    assert result.score == pytest.approx(float(logits[2]), abs=1e-5)
    # The shared model is unchanged: same activation, same weights, same outputs.
    assert head.activation is keras.activations.softmax
    for a, b in zip(before, m.get_weights(), strict=True):
        assert np.array_equal(a, b)


def _body() -> list:
    return [
        keras.Input((10, 10, 1)),
        keras.layers.Conv2D(4, 3, activation="relu", name="c"),
        keras.layers.GlobalAveragePooling2D(name="g"),
    ]


def test_softmax_as_its_own_layer_and_sigmoid_unit():
    keras.utils.set_random_seed(3)
    soft = keras.Sequential([*_body(), keras.layers.Dense(3, name="z"), keras.layers.Softmax()])
    image = np.random.default_rng(3).random((10, 10)).astype(np.float32)
    z = np.asarray(keras.Model(soft.inputs[0], soft.get_layer("z").output)(image[None, ..., None]))[
        0
    ]
    r = cam.compute("gradcam", soft, image, class_index=1)
    assert r.score == pytest.approx(float(z[1]), abs=1e-5)
    # One sigmoid unit becomes two classes, as cnnviz.models.predict reports them.
    sig = keras.Sequential([*_body(), keras.layers.Dense(1, activation="sigmoid", name="p")])
    probs = models.predict(sig, image)[0]
    both = [cam.compute("gradcam", sig, image, class_index=c) for c in (0, 1)]
    for r in both:
        np.testing.assert_allclose(r.probabilities, probs, atol=1e-5)
    assert both[0].score == pytest.approx(-both[1].score)


# --------------------------------------------------------------------------------------------
# Every model kind, every method
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", list(cam.METHODS))
def test_same_map_on_sequential_functional_and_nested(kinds, method):
    seq, fun, nested, image = kinds
    results = [
        cam.compute(method, m, image, class_index=1, **FAST.get(method, {}))
        for m in (seq, fun, nested)
    ]
    if cam.METHODS[method].uses_layer:
        assert [r.layer for r in results] == ["c2", "c2", "base/c2"]
    for r in results:
        assert r.heatmap.shape == (16, 16) and r.heatmap.dtype == np.float32
        assert np.isfinite(r.heatmap).all() and r.heatmap.min() >= 0 and r.heatmap.max() <= 1
        np.testing.assert_allclose(r.heatmap, results[0].heatmap, atol=1e-5)


def test_any_layer_inside_a_nested_base(kinds):
    seq, _, nested, image = kinds
    inner = cam.compute("gradcam", nested, image, layer="base/c1", class_index=0)
    flat = cam.compute("gradcam", seq, image, layer="c1", class_index=0)
    assert inner.raw.shape == (14, 14)
    np.testing.assert_allclose(inner.heatmap, flat.heatmap, atol=1e-5)


def test_gradient_matches_finite_differences():
    keras.utils.set_random_seed(4)
    m = keras.Sequential(
        [
            keras.Input((6, 6, 2)),
            keras.layers.Conv2D(3, 3, activation="tanh", name="c"),
            keras.layers.Flatten(),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    x = np.random.default_rng(4).normal(size=(6, 6, 2)).astype(np.float32)
    r = cam.compute("gradient", m, x, class_index=2)
    flat = keras.Model(m.inputs[0], m.layers[-1].input)
    w, b = (a.astype(np.float64) for a in m.layers[-1].get_weights())

    def score(v: np.ndarray) -> float:
        return float((np.asarray(flat(v[None].astype(np.float32)), np.float64) @ w + b)[0, 2])

    eps = 1e-2
    fd = np.zeros((6, 6, 2))
    for idx in np.ndindex(6, 6, 2):
        up, down = x.astype(np.float64), x.astype(np.float64)
        up[idx] += eps
        down[idx] -= eps
        fd[idx] = (score(up) - score(down)) / (2 * eps)
    np.testing.assert_allclose(r.raw, fd.sum(axis=-1), atol=2e-3)
    np.testing.assert_allclose(r.heatmap, _minmax(np.abs(fd).max(axis=-1)), atol=2e-3)
    # SmoothGrad without noise is the plain gradient.
    s = cam.compute("smoothgrad", m, x, class_index=2, samples=3, noise=0.0)
    np.testing.assert_allclose(s.heatmap, r.heatmap, atol=1e-6)


def test_integrated_gradients_completeness(kinds):
    seq, _, _, image = kinds
    r = cam.compute("integrated_gradients", seq, image, class_index=3, steps=64)
    logit = keras.Model(seq.inputs[0], seq.get_layer("out").input)
    w, b = seq.get_layer("out").get_weights()
    s_x = float((np.asarray(logit(image[None])) @ w + b)[0, 3])
    s_0 = float((np.asarray(logit(np.zeros((1, 16, 16, 3), np.float32))) @ w + b)[0, 3])
    # Axiom of completeness (Prop. 1 of arXiv:1703.01365): attributions add up to S(x) - S(0).
    assert float(r.raw.sum()) == pytest.approx(s_x - s_0, rel=0.02, abs=1e-3)


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**16), method=st.sampled_from(list(cam.METHODS)), c=st.integers(0, 4))
def test_maps_are_finite_sized_and_in_unit_range(kinds, seed, method, c):
    seq, _, _, _ = kinds
    image = np.random.default_rng(seed).normal(0, 3, (16, 16, 3)).astype(np.float32)
    r = cam.compute(method, seq, image, class_index=c, **FAST.get(method, {}))
    assert r.heatmap.shape == (16, 16)
    assert np.isfinite(r.heatmap).all() and 0 <= r.heatmap.min() and r.heatmap.max() <= 1
    assert (r.reason is None) == (r.heatmap.max() == 1.0)


# --------------------------------------------------------------------------------------------
# Empty maps: zeros and a reason, never NaN
# --------------------------------------------------------------------------------------------


def test_all_negative_class_gives_zeros_and_a_reason(gap_model):
    m, image = gap_model
    neg = keras.models.clone_model(m)
    weights = m.get_weights()
    weights[-2] = weights[-2].copy()
    weights[-2][:, 3] = -np.abs(weights[-2][:, 3]) - 0.1  # class 3: every channel lowers it
    neg.set_weights(weights)
    for method in ("gradcam", "gradcam++", "hirescam", "layercam"):
        r = cam.compute(method, neg, image, class_index=3)
        assert np.array_equal(r.heatmap, np.zeros((12, 12), np.float32)), method
        assert r.reason and "negative" in r.reason
    with pytest.warns(cam.EmptyMapWarning, match="negative"):
        out = cam.grad_cam(neg, image, class_index=3)
    assert not np.isnan(out).any() and out.max() == 0


def test_constant_image_and_dead_network_never_nan(gap_model):
    m, _ = gap_model
    dead = keras.models.clone_model(m)
    dead.set_weights([np.zeros_like(w) for w in m.get_weights()])
    for method in cam.METHODS:
        r = cam.compute(method, dead, np.ones((12, 12, 3), np.float32), **FAST.get(method, {}))
        assert np.isfinite(r.heatmap).all() and r.heatmap.max() == 0 and r.reason


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


def test_errors_say_what_was_expected(gap_model):
    m, image = gap_model
    with pytest.raises(cam.CamError, match="Expected one of"):
        cam.compute("guided", m, image)
    with pytest.raises(cam.CamError, match=r"class_index in \[0, 3\]"):
        cam.compute("gradcam", m, image, class_index=4)
    with pytest.raises(cam.CamError, match="Expected one image of shape 12×12×3"):
        cam.compute("gradcam", m, np.zeros((10, 12, 3), np.float32))
    with pytest.raises(cam.CamError, match="spatial output"):
        cam.compute("gradcam", m, image, layer="gap")
    with pytest.raises(cam.CamError, match="Unknown option"):
        cam.compute("gradcam", m, image, samples=3)
    with pytest.raises(LayerError):
        cam.compute("gradcam", m, image, layer="nope")
    # Keras gives no gradient to a Rescaling layer's output: a clear error, not a crash.
    scaled = keras.Sequential([keras.Input((12, 12, 3)), keras.layers.Rescaling(0.5, name="r"), m])
    with pytest.raises(cam.CamError, match="gives no gradient"):
        cam.compute("gradcam", scaled, image, layer="r")


# --------------------------------------------------------------------------------------------
# Speed structure: built once, thread-safe
# --------------------------------------------------------------------------------------------


def test_compiled_step_is_built_once_per_model_and_layer(kinds):
    seq, _, _, image = kinds
    cam.compute("gradcam", seq, image)
    first = cam_base.get_explainer(seq, "c2")
    cam.compute("gradcam++", seq, image)
    assert cam_base.get_explainer(seq, "c2") is first
    assert first.cam_step.experimental_get_tracing_count() == 1
    assert cam_base.get_explainer(seq, "c1") is not first


def test_concurrent_calls_agree(kinds):
    _, fun, _, image = kinds
    expected = cam.grad_cam(fun, image, class_index=2)
    results, errors = [], []

    def work():
        try:
            results.append(cam.grad_cam(fun, image, class_index=2))
        except Exception as err:  # noqa: BLE001 - collected and asserted below
            errors.append(err)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(results) == 6 and all(np.array_equal(r, expected) for r in results)


# --------------------------------------------------------------------------------------------
# Randomization test
# --------------------------------------------------------------------------------------------


def test_randomization_cascade_on_a_copy(kinds):
    _, _, nested, image = kinds
    before = [w.copy() for w in nested.get_weights()]
    result = cam.randomization_test(nested, image, method="gradcam", seed=5)
    # Stage 0: the untouched copy gives the same map.
    assert result.stages[0].randomized == ()
    assert result.stages[0].spearman == pytest.approx(1.0)
    np.testing.assert_array_equal(result.stages[0].heatmap, result.original)
    # One stage per weighted layer, from the output down to the input, inside the base too.
    assert [s.randomized[-1] for s in result.stages[1:]] == ["out", "d1", "base/c2", "base/c1"]
    for s in result.stages:
        assert np.isfinite(s.heatmap).all()
        assert s.spearman is None or -1 <= s.spearman <= 1
    # The shared model is bit-identical afterwards.
    after = nested.get_weights()
    assert all(a.tobytes() == b.tobytes() for a, b in zip(before, after, strict=True))
    # The last stage is the fully randomized copy.
    copy = cam.randomized_copy(nested, seed=5)
    last = cam.compute("gradcam", copy, image, class_index=result.class_index, layer="base/c2")
    np.testing.assert_allclose(result.stages[-1].heatmap, last.heatmap, atol=1e-6)
    assert not any(
        np.array_equal(a, b) for a, b in zip(before, copy.get_weights(), strict=True) if a.ndim > 1
    )


# --------------------------------------------------------------------------------------------
# Faithfulness
# --------------------------------------------------------------------------------------------


def test_deletion_insertion_endpoints(kinds):
    seq, _, _, image = kinds
    f = cam.deletion_insertion(seq, image, class_index=1, steps=8, random_repeats=1)
    p = models.predict(seq, np.stack([image, np.zeros_like(image)]))[:, 1]
    assert f.fractions[0] == 0 and f.fractions[-1] == 1 and f.deletion.shape == (9,)
    # Deletion starts at the image and ends at the all-zero image; insertion ends at the image.
    assert f.deletion[0] == pytest.approx(p[0], abs=1e-5)
    assert f.deletion[-1] == pytest.approx(p[1], abs=1e-5)
    assert f.insertion[-1] == pytest.approx(p[0], abs=1e-5)
    assert f.random_deletion[0] == pytest.approx(p[0], abs=1e-5)
    assert f.deletion_auc == pytest.approx(np.trapezoid(f.deletion, f.fractions))


# --------------------------------------------------------------------------------------------
# The built-in models, by name
# --------------------------------------------------------------------------------------------


def _card(name: str) -> dict:
    return json.loads((ROOT / "assets" / "models" / f"{name}.json").read_text())


def _fresh_seed(name: str) -> int:
    """A data seed the model card does not list as used in training."""
    text = json.dumps(_card(name))
    seed = 8_812_345
    assert str(seed) not in text
    return seed


@pytest.fixture(scope="module")
def fresh_shapes():
    return datasets.shapes(200, seed=_fresh_seed("shapes"))


@pytest.mark.parametrize("name", ["digits", "shapes"])
def test_builtins_no_nan_for_any_class(name):
    net, _ = models.resolve(name)
    classes = int(net.outputs[0].shape[-1])
    image = (
        datasets.shapes(1, seed=_fresh_seed(name))[0][0]
        if name == "shapes"
        else datasets.digits(1, seed=_fresh_seed(name))[0][0]
    )
    for c in range(classes):
        heat = cam.compute("gradcam", name, image, class_index=c).heatmap
        assert heat.shape == tuple(models.info(name).input_shape[:2])
        assert np.isfinite(heat).all() and heat.min() >= 0 and heat.max() <= 1
    # The same model with one class's last-layer weights all negative: still finite.
    neg = keras.models.clone_model(net)
    weights = net.get_weights()
    weights[-2] = weights[-2].copy()
    weights[-2][:, 0] = -np.abs(weights[-2][:, 0]) - 0.01
    neg.set_weights(weights)
    _, prep = models.resolve(name)
    for method in cam.METHODS:
        r = cam.compute(method, neg, prep(image)[0], class_index=0, **FAST.get(method, {}))
        assert np.isfinite(r.heatmap).all() and r.heatmap.min() >= 0 and r.heatmap.max() <= 1


@pytest.fixture(scope="module")
def pointing(fresh_shapes) -> tuple[float, float, float]:
    """(strict hit rate, hit rate of a uniformly random peak, hit rate with tolerance).

    The peak of Grad-CAM for the true class at the default (last conv) layer must lie inside
    the object's mask (pointing game, Zhang et al. 2016, without tolerance), or within the
    tolerance of it. A random peak hits with probability equal to the mask's area fraction.
    On 800 fresh pictures (the 200 of `fresh_shapes` and 600 more): a sample of 200 moves by
    about ±1.5 points, and the issue's 95 % bar is about the model, not one sample. (The
    shipped model, trained to keep its evidence on the object, scores 100 % on `fresh_shapes`;
    the same recipe without that term scored 94.5 % there and 96-97.5 % on three other sets.)
    """
    more = [datasets.shapes(200, seed=_fresh_seed("shapes") + k) for k in (1, 2, 3)]
    images, labels, masks = (
        np.concatenate([fresh_shapes[i]] + [m[i] for m in more]) for i in range(3)
    )
    hits = near = 0
    for img, label, mask in zip(images, labels, masks, strict=True):
        heat = cam.grad_cam("shapes", img, class_index=int(label))
        peak = np.unravel_index(np.argmax(heat), heat.shape)
        hits += bool(mask[peak])
        # Zhang et al.'s tolerance: 15 px at 224×224, i.e. 15 * 64 / 224 px here (scipy EDT).
        near += bool(ndimage.distance_transform_edt(~mask)[peak] <= 15 * 64 / 224)
    chance = float(np.mean([m.mean() for m in masks]))
    return hits / len(images), chance, near / len(images)


@pytest.mark.xfail(
    strict=True,
    reason="Issue 8's localisation bar (>= 95 %) is not met yet: the shipped shapes model's "
    "Grad-CAM peaks sit on object outlines (68.5 % inside the mask on issue 14's 36,000 × 8 "
    "model, 49.5 % on the 24,000 × 7 one). Issue 8 stays open; "
    "strict, so this turns red the day the bar is met and the mark must go.",
)
def test_pointing_game_meets_the_issue_bar(pointing):
    rate, _, _ = pointing
    assert rate >= 0.95, f"pointing game {rate:.1%}"


def test_pointing_game_is_far_above_a_random_peak(pointing):
    # A floor that guards what the map does achieve today: well above chance, and no worse
    # than the shipped model's measured rate minus a margin. Issue 14's 36,000 × 8 model (pen
    # outlines, whose mask is the enclosed region) measured 68.5 % strict on `fresh_shapes`
    # (the 24,000 × 7 one 49.5 %, issue 8's filled-only one 74 %), so the floor is 0.55.
    rate, chance, _ = pointing
    assert rate >= 0.55 and rate >= 2.5 * chance, f"pointing game {rate:.1%}, random {chance:.1%}"


def test_pointing_game_with_tolerance_meets_the_issue_bar(pointing):
    _, _, near = pointing
    assert near >= 0.95, f"pointing game with tolerance {near:.1%}"


def test_pointing_game_with_tolerance_floor(pointing):
    _, _, near = pointing
    assert near >= 0.9, f"pointing game with tolerance {near:.1%}"


@pytest.mark.parametrize("name", ["digits", "shapes"])
def test_full_randomization_is_at_chance_and_shared_model_untouched(name):
    net, prep = models.resolve(name)
    before = [w.copy() for w in net.get_weights()]
    if name == "shapes":
        images, labels, _ = datasets.shapes(400, seed=_fresh_seed(name))
    else:
        images, labels = datasets.digits(400, seed=_fresh_seed(name))
    result = cam.randomization_test(name, images[0], method="gradcam", seed=0)
    assert result.stages[0].spearman == pytest.approx(1.0)
    assert all(a.tobytes() == b.tobytes() for a, b in zip(before, net.get_weights(), strict=True))
    # Trained: far above chance. Fully randomized copy: at chance (within 10 points).
    classes = int(net.outputs[0].shape[-1])
    trained = (models.predict(name, images).argmax(axis=1) == labels).mean()
    random_copy = cam.randomized_copy(name, seed=0)
    x = prep(images)
    random_acc = (np.asarray(random_copy(x, training=False)).argmax(axis=1) == labels).mean()
    assert trained > 0.9
    assert abs(random_acc - 1 / classes) <= 0.10, random_acc


def test_pointing_game_measures_the_peaks_distance_to_the_object():
    mask = np.zeros((64, 64), bool)
    mask[20:30, 20:30] = True
    heat = np.zeros((64, 64))
    heat[25, 25] = 1.0  # on the object
    assert cam.pointing(heat, mask) == (True, 0.0)
    heat[:] = 0
    heat[25, 33] = 1.0  # 4 columns right of the last object column (29): within 15·64/224
    hit, distance = cam.pointing(heat, mask)
    assert hit and distance == pytest.approx(4.0)
    heat[:] = 0
    heat[34, 34] = 1.0  # 5 px down and 5 px right of the corner (29, 29): sqrt(50) away
    hit, distance = cam.pointing(heat, mask)
    assert not hit and distance == pytest.approx(np.sqrt(50))
    assert cam.pointing_tolerance(224) == 15 and cam.pointing_tolerance(64) == pytest.approx(
        15 * 64 / 224
    )
    with pytest.raises(cam.CamError, match="non-empty"):
        cam.pointing(heat, np.zeros((64, 64), bool))
