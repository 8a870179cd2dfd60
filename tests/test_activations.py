"""Feature-map extraction (cnnviz.activations) and channel grids (cnnviz.grids).

References are built independently of `cnnviz.layers.feature_model`: layer by layer for
Sequential models, `keras.Model(inputs, layer.output)` on a nested base's own graph, and
explicit per-channel loops for the statistics.
"""

import gc
import io
from concurrent.futures import ThreadPoolExecutor

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from cnnviz import activations, compiled, datasets, grids, models
from cnnviz.layers import LayerError


def _base() -> keras.Model:
    i = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="c1")(i)
    x = keras.layers.MaxPooling2D(name="p1")(x)
    x = keras.layers.Conv2D(6, 3, name="c2")(x)
    x = keras.layers.ReLU(name="r2")(x)
    return keras.Model(i, x, name="base")


@pytest.fixture(scope="module")
def nets():
    """A flat Sequential CNN, and a transfer-learning model: a Functional base in a Sequential."""
    keras.utils.set_random_seed(0)
    flat = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            keras.layers.Conv2D(5, 3, activation="relu", name="conv1"),
            keras.layers.MaxPooling2D(name="pool1"),
            keras.layers.Conv2D(7, 3, name="conv2"),
            keras.layers.Activation("relu", name="act2"),
            keras.layers.Flatten(name="flat"),
            keras.layers.Dense(3, activation="softmax", name="head"),
        ],
        name="flat",
    )
    base = _base()
    nested = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            keras.layers.Rescaling(1 / 255.0, name="scale"),
            base,
            keras.layers.GlobalAveragePooling2D(name="gap"),
            keras.layers.Dense(3, activation="softmax", name="head"),
        ],
        name="transfer",
    )
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 16, 16, 3)).astype(np.float32)
    return flat, base, nested, images


def _sequential_reference(model: keras.Sequential, x: np.ndarray) -> dict[str, np.ndarray]:
    """Every top-level layer's output, by calling the layers one after another."""
    out, y = {}, keras.ops.convert_to_tensor(x)
    for layer in model.layers:
        y = layer(y, training=False)
        out[layer.name] = np.asarray(y)
    return out


def test_default_layers_are_the_map_layers_in_graph_order(nets):
    flat, _, nested, _ = nets
    assert activations.default_layers(flat) == ["conv1", "pool1", "conv2", "act2"]
    assert activations.default_layers(nested) == ["base/c1", "base/p1", "base/c2", "base/r2"]


def test_flat_model_matches_layer_by_layer_reference(nets):
    flat, _, _, images = nets
    ref = _sequential_reference(flat, images)
    got = activations.forward(flat, images, ["conv1", "pool1", "conv2", "act2", "flat"])
    for path, arr in got.maps.items():
        assert arr.shape == ref[path].shape
        np.testing.assert_allclose(arr, ref[path], atol=1e-5, err_msg=path)
    np.testing.assert_allclose(got.output, ref["head"], atol=1e-5)


def test_nested_base_matches_its_own_submodel(nets):
    _, base, nested, images = nets
    # Independent reference: the base's own graph, fed what the outer model feeds it.
    paths = ["c1", "p1", "c2", "r2"]
    sub = keras.Model(base.input, [base.get_layer(p).output for p in paths])
    ref = [np.asarray(t) for t in sub(images / 255.0)]
    got = activations.activations(nested, images)
    assert list(got) == [f"base/{p}" for p in paths]
    for p, r in zip(paths, ref, strict=True):
        np.testing.assert_allclose(got[f"base/{p}"], r, atol=1e-5, err_msg=p)


def test_mixed_top_level_and_nested_paths(nets):
    _, base, nested, images = nets
    got = activations.activations(nested, images[0], ["gap", "base/c2"])
    sub = keras.Model(base.input, base.get_layer("c2").output)
    c2 = np.asarray(sub(images[:1] / 255.0))[0]
    np.testing.assert_allclose(got["base/c2"], c2, atol=1e-5)
    # Global average pooling of the base's output, computed with numpy.
    r2 = np.maximum(c2, 0)
    np.testing.assert_allclose(got["gap"], r2.mean(axis=(0, 1)), atol=1e-5)


def test_single_image_drops_the_batch_axis(nets):
    flat, _, _, images = nets
    one = activations.forward(flat, images[1])
    batch = activations.forward(flat, images)
    assert one.maps["conv1"].shape == (14, 14, 5) and one.output.shape == (3,)
    assert batch.maps["conv1"].shape == (3, 14, 14, 5)
    assert one.inputs.shape == (1, 16, 16, 3)
    np.testing.assert_allclose(one.maps["conv2"], batch.maps["conv2"][1], atol=1e-5)


def test_extraction_model_is_built_once_per_layer_set(nets, monkeypatch):
    flat, _, _, images = nets
    built = []
    real = activations.layer_tools.feature_model

    def counting(model, paths, **kw):
        built.append(tuple(paths))
        return real(model, paths, **kw)

    monkeypatch.setattr(activations.layer_tools, "feature_model", counting)
    activations.clear_cache()
    for _ in range(3):
        activations.activations(flat, images[0], ["conv1"])
        activations.activations(flat, images, ["conv1"])
    activations.activations(flat, images[0], ["conv1", "conv2"])
    assert built == [("conv1",), ("conv1", "conv2")]


def test_never_calls_model_predict(nets, monkeypatch):
    flat, _, nested, images = nets

    def refuse(*args, **kwargs):
        raise AssertionError("model.predict is not thread-safe; activations must not use it")

    monkeypatch.setattr(keras.Model, "predict", refuse)
    activations.clear_cache()
    activations.activations(flat, images)
    activations.activations(nested, images[0])


def test_concurrent_sessions_get_the_serial_answer(nets):
    flat, _, nested, images = nets
    activations.clear_cache()
    serial = [activations.activations(m, images[i]) for m in (flat, nested) for i in range(3)]
    jobs = [(m, i) for m in (flat, nested) for i in range(3)] * 4
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda job: activations.activations(job[0], images[job[1]]), jobs))
    for k, res in enumerate(results):
        ref = serial[k % 6]
        assert list(res) == list(ref)
        for path in res:
            np.testing.assert_allclose(res[path], ref[path], atol=1e-6)


def test_a_dead_model_leaves_the_cache():
    i = keras.Input((8, 8, 1))
    model = keras.Model(i, keras.layers.Conv2D(2, 3, name="c")(i), name="temporary")
    activations.activations(model, np.zeros((8, 8, 1), np.float32))
    mid = id(model)
    assert any(key[0] == mid for key in compiled.entries())
    del model
    gc.collect()
    assert not any(key[0] == mid for key in compiled.entries())


def test_errors_say_what_was_expected(nets):
    flat, _, _, _ = nets
    with pytest.raises(activations.ActivationError, match="Expected images of shape 16×16×3"):
        activations.activations(flat, np.zeros((28, 28, 1), np.float32))
    with pytest.raises(LayerError, match="conv1"):
        activations.activations(flat, np.zeros((16, 16, 3), np.float32), ["nope"])
    with pytest.raises(activations.ActivationError, match="at least one layer"):
        activations.activations(flat, np.zeros((16, 16, 3), np.float32), [])


# --- the built-in models, by name, with their own preprocessing ------------------------------


def _builtin_reference(net: keras.Model, x: np.ndarray, paths: list[str]) -> dict[str, np.ndarray]:
    """Outputs of `paths` computed without feature_model: layer by layer for a Sequential,
    `keras.Model(net.inputs, layer.output)` for a Functional model with top-level paths."""
    if isinstance(net, keras.Sequential) and all("/" not in p for p in paths):
        ref = _sequential_reference(net, x)
    else:
        sub = keras.Model(net.inputs[0], [net.get_layer(p).output for p in paths])
        ref = dict(zip(paths, (np.asarray(t) for t in sub(x)), strict=True))
    return {p: ref[p] for p in paths}


def _builtin_image(name: str) -> np.ndarray:
    # A picture of the kind the model was trained on, as the pages get it (uint8).
    if name == "digits":
        x, _ = datasets.digits(1, seed=7)
        return x[0]
    x, _, _ = datasets.shapes(1, seed=7)
    return x[0]


@pytest.mark.parametrize("name", models.builtin_names())
def test_builtin_model_matches_an_independent_submodel(name):
    net, preprocess = models.resolve(name)
    image = _builtin_image(name)
    paths = activations.default_layers(net)
    assert paths, f"{name} should have convolution layers"
    got = activations.forward(name, image)
    assert list(got.maps) == paths
    ref = _builtin_reference(net, preprocess(image), paths)
    for p in paths:
        np.testing.assert_allclose(got.maps[p], ref[p][0], atol=1e-5, err_msg=p)
    # The model's output from the same pass is its prediction.
    np.testing.assert_allclose(got.output, models.predict(name, image)[0], atol=1e-5)


# --- channel statistics ----------------------------------------------------------------------


def test_channel_stats_on_known_arrays():
    # Three 2×2 channels: [0, 0, 1, 3], all zeros, [-1, 2, 2, 5].
    act = np.zeros((2, 2, 3), np.float32)
    act[..., 0] = [[0, 0], [1, 3]]
    act[..., 2] = [[-1, 2], [2, 5]]
    s = activations.channel_stats(act)
    np.testing.assert_allclose(s["mean"], [1.0, 0.0, 2.0])
    np.testing.assert_allclose(s["max"], [3.0, 0.0, 5.0])
    np.testing.assert_allclose(s["sparsity"], [0.5, 1.0, 0.0])
    assert s["empty"].tolist() == [False, True, False]


def test_channel_stats_of_a_dense_vector():
    s = activations.channel_stats(np.array([0.0, 2.5, 0.0, 1.0]))
    np.testing.assert_allclose(s["sparsity"], [1, 0, 1, 0])
    assert s["empty"].tolist() == [True, False, True, False]


@settings(max_examples=40, deadline=None)
@given(
    arrays(
        np.float32,
        st.tuples(st.integers(1, 3), st.integers(1, 5), st.integers(1, 5), st.integers(1, 4)),
        elements=st.sampled_from([0.0, 0.0, -1.5, 0.25, 3.0]),
    )
)
def test_channel_stats_match_a_loop_over_channels(act):
    s = activations.channel_stats(act)
    for c in range(act.shape[-1]):
        values = act[..., c].ravel().tolist()
        assert s["mean"][c] == pytest.approx(sum(values) / len(values), abs=1e-6)
        assert s["max"][c] == max(values)
        assert s["sparsity"][c] == pytest.approx(values.count(0.0) / len(values))
        assert 0.0 <= s["sparsity"][c] <= 1.0
        assert bool(s["empty"][c]) == (len(set(values)) == 1 if len(values) > 1 else values[0] == 0)


def test_npz_round_trip_keeps_nested_names():
    maps = {"conv1": np.arange(6.0).reshape(1, 2, 3), "base/c1": np.ones((2, 2, 1))}
    back = np.load(io.BytesIO(activations.to_npz(maps)))
    assert sorted(back.files) == ["base/c1", "conv1"]
    np.testing.assert_array_equal(back["conv1"], maps["conv1"])


# --- grids -----------------------------------------------------------------------------------


def test_channel_grid_has_one_heatmap_per_map_with_its_values():
    maps = np.arange(5 * 4 * 6, dtype=np.float32).reshape(5, 4, 6)
    fig = grids.channel_grid(maps, [f"#{i}" for i in range(5)], cols=2, marked=[0, 1, 0, 0, 0])
    assert len(fig.data) == 5
    for i in range(5):
        np.testing.assert_array_equal(np.asarray(fig.data[i].z), maps[i])
        assert fig.data[i].zmin == maps[i].min() and fig.data[i].zmax == maps[i].max()
    # Three rows of two: cell 4 sits in row 3, column 1.
    assert fig.layout.xaxis5.domain[0] == 0.0 and fig.layout.yaxis5.domain[0] == pytest.approx(0)
    assert len(fig.layout.shapes) == 1  # the marked cell's outline


def test_channel_grid_shared_scale_and_signed_maps():
    maps = np.stack([np.full((3, 3), -2.0), np.full((3, 3), 1.0)]).astype(np.float32)
    fig = grids.channel_grid(maps, shared_scale=True)
    assert fig.layout.coloraxis.cmin == -2.0 and fig.layout.coloraxis.cmax == 2.0
    assert all(trace.coloraxis == "coloraxis" for trace in fig.data)


def test_channel_grid_shrinks_large_maps_for_display():
    fig = grids.channel_grid(np.random.default_rng(0).random((2, 200, 100)), max_side=50)
    assert np.asarray(fig.data[0].z).shape == (50, 25)
    # Hover coordinates still refer to the full map.
    trace = fig.data[0]
    assert trace.x0 + 24 * trace.dx == pytest.approx(97.5)  # last column: centre of pixels 96..99
    assert trace.y0 == pytest.approx(1.5)  # first row: centre of pixels 0..3


def test_channel_grid_escapes_titles():
    fig = grids.channel_grid(np.zeros((1, 2, 2)), ["<b onmouseover=x>"])
    assert "<b" not in fig.layout.annotations[0].text


def test_tile_images_places_each_image():
    imgs = np.arange(5 * 2 * 3).reshape(5, 2, 3).astype(np.uint8)
    out = grids.tile_images(imgs, cols=3, gap=1, fill=255)
    assert out.shape == (2 * 2 + 1, 3 * 3 + 2)
    np.testing.assert_array_equal(out[3:5, 4:7], imgs[4])  # row 1, column 1
    assert (out[2] == 255).all() and (out[3:5, 8:] == 255).all()  # gap row, empty last cell


def test_tile_maps_colours_with_the_grid_scale():
    maps = np.stack([np.zeros((2, 2)), np.eye(2)]).astype(np.float32)
    rgb = grids.tile_maps(maps, cols=2, gap=0)
    assert rgb.shape == (2, 4, 3) and rgb.dtype == np.uint8
    # Per-map scale: the 1 of the identity map gets the top colour, the zeros the bottom one.
    assert (rgb[0, 2] == rgb[1, 3]).all() and not (rgb[0, 2] == rgb[0, 3]).all()
    assert (rgb[0, 0] == rgb[0, 3]).all()


def test_tile_maps_enlarges_small_maps_without_blurring():
    rgb = grids.tile_maps([np.eye(4), np.array([[0.0, 1.0], [1.0, 0.0]])], cols=2, gap=0)
    assert rgb.shape == (4, 8, 3)
    right = rgb[:, 4:]
    assert (right[:2, :2] == right[2:, 2:]).all() and (right[:2, 2:] == right[2:, :2]).all()


def test_grid_errors_say_what_was_expected():
    with pytest.raises(grids.GridError, match="Expected 2 titles"):
        grids.channel_grid(np.zeros((2, 3, 3)), ["a"])
    with pytest.raises(grids.GridError, match="Expected an \\(n, h, w\\)"):
        grids.channel_grid(np.zeros((3, 3)))
