"""cnnviz.architectures: the lecture models' parameter counts and shapes, as on the slides."""

import keras
import numpy as np
import pytest

from cnnviz import architectures as arch
from cnnviz.architectures import ArchitectureError


@pytest.fixture(scope="module")
def models():
    return {
        "mnist_base": arch.mnist_cnn(head=None),
        "mnist_flatten": arch.mnist_cnn(head="flatten"),
        "mnist_gap": arch.mnist_cnn(head="gap"),
        "cats_dogs": arch.cats_dogs_cnn(),
        "cifar": arch.small_cifar_cnn(),
        "cifar_bn_dropout": arch.small_cifar_cnn(batch_norm=True, dropout=True),
        "shapes": arch.shapes_cnn(),
    }


# Seed 003's printed summaries: total parameters.
@pytest.mark.parametrize(
    ("key", "total"),
    [
        ("mnist_base", 55_744),
        ("mnist_flatten", 93_322),
        ("mnist_gap", 56_394),
        ("cats_dogs", 3_453_121),
    ],
)
def test_parameter_counts_match_seed_003(models, key, total):
    assert models[key].count_params() == total


def test_mnist_layers_match_the_seed_summary(models):
    # Seed 003: (26,26,32) 320 / (13,13,32) / (11,11,64) 18496 / (5,5,64) / (3,3,64) 36928 /
    # flatten 576 / dense 64 36928 / dense 10 650.
    m = models["mnist_flatten"]
    got = [(layer.name, tuple(layer.output.shape[1:]), layer.count_params()) for layer in m.layers]
    assert got == [
        ("conv1", (26, 26, 32), 320),
        ("pool1", (13, 13, 32), 0),
        ("conv2", (11, 11, 64), 18_496),
        ("pool2", (5, 5, 64), 0),
        ("conv3", (3, 3, 64), 36_928),
        ("flatten", (576,), 0),
        ("dense1", (64,), 36_928),
        ("predictions", (10,), 650),
    ]
    assert [layer.name for layer in models["mnist_gap"].layers][-2:] == ["gap", "predictions"]
    assert models["mnist_base"].output_shape == (None, 3, 3, 64)


def test_cats_dogs_layers_match_the_seed_summary(models):
    m = models["cats_dogs"]
    got = [(tuple(layer.output.shape[1:]), layer.count_params()) for layer in m.layers]
    assert got == [
        ((148, 148, 32), 896),
        ((74, 74, 32), 0),
        ((72, 72, 64), 18_496),
        ((36, 36, 64), 0),
        ((34, 34, 128), 73_856),
        ((17, 17, 128), 0),
        ((15, 15, 128), 147_584),
        ((7, 7, 128), 0),
        ((6272,), 0),
        ((512,), 3_211_776),
        ((1,), 513),
    ]
    assert arch.cats_dogs_cnn(dropout=True).count_params() == 3_453_121


def test_small_cifar_counts(models):
    # Seed 001's create_mod: conv (3·9+1)·32, conv (32·9+1)·32, dense (6·6·32+1)·512, (512+1)·10;
    # batch norm adds 4 numbers per feature at 32, 1152 and 512 features.
    base = 896 + 9_248 + 590_336 + 5_130
    assert models["cifar"].count_params() == base == 605_610
    assert models["cifar_bn_dropout"].count_params() == base + 4 * (32 + 1152 + 512)
    names = [layer.name for layer in models["cifar_bn_dropout"].layers]
    assert names == [
        "conv1",
        "pool1",
        "bn1",
        "conv2",
        "pool2",
        "flatten",
        "bn2",
        "dropout1",
        "dense1",
        "bn3",
        "dropout2",
        "predictions",
    ]


def test_shapes_cnn_is_four_blocks_with_a_16x16_last_map_and_gap_head(models):
    m = models["shapes"]
    assert m.input_shape == (None, 64, 64, 3) and m.output_shape == (None, 8)
    convs = [layer for layer in m.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [c.name for c in convs] == ["conv1", "conv2", "conv3", "conv4"]
    assert [c.filters for c in convs] == [16, 32, 64, 64]
    # Pooling after blocks 1-2 only, so Grad-CAM gets 16×16 cells of 4×4 pixels.
    assert [layer.name for layer in m.layers if "pool" in layer.name] == ["pool1", "pool2"]
    assert tuple(convs[-1].output.shape[1:3]) == (16, 16)  # Grad-CAM resolution
    assert [type(layer).__name__ for layer in m.layers[-2:]] == [
        "GlobalAveragePooling2D",
        "Dense",
    ]
    assert m.layers[0].name == "rescale"
    assert arch.shapes_cnn(classes=5).output_shape == (None, 5)


def test_shapes_cnn_parameters_counted_by_hand(models):
    # (3·3·c_in + 1)·c_out per conv, 4·c_out per batch norm (γ, β, moving mean and variance),
    # then the GAP head's (64 + 1)·8: 448 + 4,640 + 18,496 + 36,928 + 4·176 + 520.
    assert models["shapes"].count_params() == 61_736


def test_shapes_cnn_last_cell_sees_a_26_pixel_patch():
    # Receptive field by the usual recursion r += (k - 1)·jump:
    # 3 → pool 4 (jump 2) → 8 → pool 10 (jump 4) → 18 → 26 pixels.
    # Independent check: conv4's centre cell depends on exactly a 26×26 patch of the input.
    keras.utils.set_random_seed(0)
    m = arch.shapes_cnn(rescale=False)
    for layer in m.layers:
        if isinstance(layer, keras.layers.Conv2D):
            kernel, bias = layer.get_weights()
            # Positive weights and a positive bias keep every ReLU open: changes reach the edge.
            layer.set_weights([np.abs(kernel) + 0.01, np.abs(bias) + 0.01])
    features = keras.Model(m.inputs[0], m.get_layer("conv4").output)
    # Brighten one row (first 64 pictures) or one column (last 64) at a time; the cell changes
    # exactly when that row or column lies in its receptive field (max-pooling included).
    # The 129th picture is the unperturbed baseline.
    x = np.ones((129, 64, 64, 3), dtype=np.float32)
    for i in range(64):
        x[i, i, :, :] += 100
        x[64 + i, :, i, :] += 100
    cell = np.asarray(features(x, training=False))[:, 8, 8, 0]
    changed = ~np.isclose(cell[:128], cell[128], rtol=1e-6)
    rows, cols = np.nonzero(changed[:64])[0], np.nonzero(changed[64:])[0]
    assert rows.size == cols.size == 26
    assert rows.max() - rows.min() + 1 == 26 and cols.max() - cols.min() + 1 == 26


def test_every_layer_has_a_unique_readable_name(models):
    for m in models.values():
        names = [layer.name for layer in m.layers]
        assert len(set(names)) == len(names)
        assert all(not n.startswith(("conv2d", "dense_", "max_pooling")) for n in names), names


def test_rescaling_inside_the_model_equals_dividing_outside():
    plain = arch.mnist_cnn("flatten")
    inside = arch.mnist_cnn("flatten", rescale=True)
    assert inside.count_params() == plain.count_params() == 93_322
    inside.set_weights(plain.get_weights())
    x = np.random.default_rng(0).integers(0, 256, (4, 28, 28, 1)).astype(np.float32)
    np.testing.assert_allclose(
        inside.predict(x, verbose=0), plain.predict(x / 255.0, verbose=0), atol=1e-6
    )


@pytest.mark.parametrize(
    "call",
    [
        lambda: arch.mnist_cnn(head="dense"),
        lambda: arch.mnist_cnn(classes=0),
        lambda: arch.shapes_cnn(input_shape=(64, 64)),
        lambda: arch.small_cifar_cnn(classes=True),
    ],
)
def test_bad_arguments_raise(call):
    with pytest.raises(ArchitectureError, match="Expected"):
        call()
