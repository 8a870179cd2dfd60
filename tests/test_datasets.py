"""cnnviz.datasets: the generated shapes and digits, and the keras.datasets loader offline."""

import subprocess
import sys
import urllib.error

import numpy as np
import pytest
from skimage import measure

from cnnviz import datasets
from cnnviz.datasets import DIGIT_CLASSES, SHAPE_CLASSES, DatasetError, DatasetUnavailable

N_SHAPES = 160  # 20 per class
N_DIGITS = 200


@pytest.fixture(scope="module")
def shape_set():
    return datasets.shapes(N_SHAPES, seed=7)


@pytest.fixture(scope="module")
def digit_set():
    return datasets.digits(N_DIGITS, seed=7)


# --- shapes -------------------------------------------------------------------------------


def test_shapes_arrays_have_documented_shapes_and_dtypes(shape_set):
    images, labels, masks = shape_set
    assert images.shape == (N_SHAPES, 64, 64, 3) and images.dtype == np.uint8
    assert labels.shape == (N_SHAPES,) and labels.dtype == np.int64
    assert masks.shape == (N_SHAPES, 64, 64) and masks.dtype == bool
    assert len(SHAPE_CLASSES) >= 6 and {"circle", "square", "triangle", "star", "cross"} <= set(
        SHAPE_CLASSES
    )
    assert labels.min() >= 0 and labels.max() < len(SHAPE_CLASSES)


def test_shapes_size_argument():
    images, _, masks = datasets.shapes(8, seed=1, size=40)
    assert images.shape == (8, 40, 40, 3) and masks.shape == (8, 40, 40)


def test_shapes_are_deterministic_per_seed():
    a = datasets.shapes(24, seed=3)
    b = datasets.shapes(24, seed=3)
    c = datasets.shapes(24, seed=4)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], c[0])


def test_shapes_classes_are_balanced_for_any_n():
    _, labels, _ = datasets.shapes(83, seed=5)
    counts = np.bincount(labels, minlength=len(SHAPE_CLASSES))
    assert counts.min() >= 83 // len(SHAPE_CLASSES) and counts.max() <= 83 // len(SHAPE_CLASSES) + 1


def test_single_pictures_are_not_all_one_class():
    # The pages draw one picture per "picture number": those must cover every class, and a
    # set smaller than the class count must still hold distinct classes.
    shapes = {int(datasets.shapes(1, seed=s)[1][0]) for s in range(60)}
    digits = {int(datasets.digits(1, seed=s)[1][0]) for s in range(60)}
    assert shapes == set(range(len(SHAPE_CLASSES))) and digits == set(range(10))
    _, few, _ = datasets.shapes(5, seed=3)
    assert len(set(few.tolist())) == 5


def test_shapes_classes_are_balanced(shape_set):
    counts = np.bincount(shape_set[1], minlength=len(SHAPE_CLASSES))
    assert np.all(counts == N_SHAPES // len(SHAPE_CLASSES))


def test_masks_are_nonempty_and_inside_the_frame(shape_set):
    _, _, masks = shape_set
    area = masks.sum(axis=(1, 2))
    # Radius >= 17 % of the side: even a star covers well over 20 pixels of 64×64.
    assert area.min() > 20
    # Objects lie fully inside the picture: nothing on the outer rows and columns.
    border = (
        masks[:, 0, :].any(1)
        | masks[:, -1, :].any(1)
        | masks[:, :, 0].any(1)
        | masks[:, :, -1].any(1)
    )
    assert not border.any()


@pytest.fixture(scope="module")
def filled_set():
    return datasets.shapes(N_SHAPES, seed=7, styles=["filled"])


def test_masks_mark_the_object_pixels(filled_set):
    # Inside the mask a filled object has its colour, which contrasts with the background
    # (light object on dark, or dark on light): the mean intensities differ clearly. (A pen
    # outline's mask is the whole shape, most of it background: see the test below.)
    images, _, masks = filled_set
    gray = images.astype(np.float64).mean(axis=3)
    for img, mask in zip(gray, masks, strict=True):
        ring = _dilate(mask, 3) & ~_dilate(mask, 1)  # background just around the object
        assert abs(img[mask].mean() - img[ring].mean()) > 40


def test_outline_ink_lies_on_the_mask_border():
    # A pen outline: the ink lies on the border of the mask (the enclosed region), so a band
    # along the border differs from the paper just outside and just inside.
    images, _, masks = datasets.shapes(80, seed=8, styles=["outline"])
    rgb = images.astype(np.float64)
    ok = []
    for img, mask in zip(rgb, masks, strict=True):
        band = _dilate(mask, 1) & ~_erode(mask, 2)
        ring = _dilate(mask, 5) & ~_dilate(mask, 2)  # the paper just outside the outline
        # Colour distance, as a coloured pen may have the paper's brightness.
        ok.append(np.linalg.norm(img[band].mean(0) - img[ring].mean(0)) > 8)
    # Nearly all: a faint pencil on a patterned background may blend in, as on real paper.
    assert np.mean(ok) >= 0.9


def _erode(mask: np.ndarray, r: int) -> np.ndarray:
    from scipy import ndimage

    return ndimage.binary_erosion(mask, iterations=r)


def _dilate(mask: np.ndarray, r: int) -> np.ndarray:
    from scipy import ndimage

    return ndimage.binary_dilation(mask, iterations=r)


@pytest.mark.parametrize("styles", [["filled"], None], ids=["filled", "all"])
def test_mask_holes_and_convexity_match_the_labels(styles):
    # Independent check with scipy and scikit-image: no object has a hole (so "inside the
    # object" is the mask), circles and convex polygons fill their convex hull while stars and
    # crosses do not, and a diamond is elongated where a square is not (no rotation of one
    # gives the other).
    from scipy import ndimage

    _, labels, masks = datasets.shapes(N_SHAPES, seed=7, styles=styles)
    hand = styles is None  # hand-drawn: wobbly, stretched up to 8 % (15 % for triangles)
    convex = {"circle", "square", "triangle", "hexagon", "diamond"}
    for label, mask in zip(labels, masks, strict=True):
        name = SHAPE_CLASSES[label]
        hole = (ndimage.binary_fill_holes(mask) & ~mask).sum()
        assert hole <= 2, name  # a heart's notch may pinch off a pixel
        region = measure.regionprops(mask.astype(np.uint8))[0]
        if name in convex:
            assert region.solidity > 0.8, name  # small objects: pixel steps
        if name in ("star", "cross"):
            # A thick pen line (up to 16 % of the object) fattens a drawn cross's arms.
            assert region.solidity < (0.87 if hand else 0.8), name
        elongation = region.axis_major_length / region.axis_minor_length
        if name == "diamond":
            assert elongation > (1.3 if hand else 1.4), name
        if name in ("circle", "square", "hexagon"):
            assert elongation < (1.25 if hand else 1.15), name


def test_objects_span_15_to_80_percent_of_the_frame(shape_set):
    # Issue 14: the object's extent is 15-80 % of the frame (issue 8's objects were all 22 px
    # or more; small drawings are now included). skimage's Feret diameter of the mask: at
    # least 15 % of 64 px less a pixel of rasterisation, at most the frame's diagonal share.
    _, _, masks = shape_set
    feret = np.array([measure.regionprops(m.astype(np.uint8))[0].feret_diameter_max for m in masks])
    assert feret.min() >= 0.15 * 64 - 1.5 and feret.max() <= 0.8 * 64 * 1.15
    assert np.mean(feret >= 0.35 * 64) > 0.5  # most drawings are large


def test_shapes_backgrounds_vary(shape_set):
    images, _, masks = shape_set
    # Background spread within a picture (gradients, textures, stripes, noise) and across pictures.
    bg_std = np.array(
        [img[~m].std() for img, m in zip(images.astype(np.float64), masks, strict=True)]
    )
    assert np.median(bg_std) > 3
    bg_mean = np.array(
        [img[~m].mean() for img, m in zip(images.astype(np.float64), masks, strict=True)]
    )
    assert bg_mean.std() > 30


@pytest.mark.parametrize(
    "kwargs", [{"n": -1}, {"n": 2.5}, {"n": 4, "size": 8}, {"n": 4, "size": True}]
)
def test_shapes_bad_arguments_raise(kwargs):
    n = kwargs.pop("n")
    with pytest.raises(DatasetError, match="Expected"):
        datasets.shapes(n, **kwargs)


def test_zero_samples():
    images, labels, masks = datasets.shapes(0)
    assert images.shape == (0, 64, 64, 3) and labels.shape == (0,) and masks.shape == (0, 64, 64)
    images, labels = datasets.digits(0)
    assert images.shape == (0, 28, 28) and labels.shape == (0,)


# --- digits -------------------------------------------------------------------------------


def test_digits_arrays_have_documented_shapes_and_dtypes(digit_set):
    images, labels = digit_set
    assert images.shape == (N_DIGITS, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (N_DIGITS,) and labels.dtype == np.int64
    assert DIGIT_CLASSES == [str(d) for d in range(10)]
    assert np.all(np.bincount(labels, minlength=10) == N_DIGITS // 10)


def test_digits_are_deterministic_per_seed():
    a = datasets.digits(30, seed=11)
    b = datasets.digits(30, seed=11)
    c = datasets.digits(30, seed=12)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_digits_look_like_mnist(digit_set):
    images, _ = digit_set
    x = images.astype(np.float64)
    # White ink on a black background: the border is dark and every digit has saturated ink.
    border = np.concatenate([x[:, :2].reshape(len(x), -1), x[:, -2:].reshape(len(x), -1)], axis=1)
    assert border.mean() < 10
    assert np.all(x.max(axis=(1, 2)) > 200)
    ink = (x > 128).mean(axis=(1, 2))
    assert 0.03 < ink.min() and ink.max() < 0.45
    # Centred by mass, as MNIST, up to the random shift and distortion.
    cy, cx = np.array([_centre_of_mass(img) for img in x]).T
    assert np.all(np.abs(cy - 13.5) < 4) and np.all(np.abs(cx - 13.5) < 4)


def _centre_of_mass(img: np.ndarray) -> tuple[float, float]:
    ys, xs = np.mgrid[0 : img.shape[0], 0 : img.shape[1]]
    return float((ys * img).sum() / img.sum()), float((xs * img).sum() / img.sum())


def test_digits_of_one_class_vary(digit_set):
    # Distortions make every sample different, also within a class.
    images, labels = digit_set
    sevens = images[labels == 7].astype(np.float64)
    diffs = [np.abs(sevens[i] - sevens[j]).mean() for i in range(5) for j in range(i + 1, 5)]
    assert min(diffs) > 5


def test_digits_bad_n_raises():
    with pytest.raises(DatasetError, match="Expected n"):
        datasets.digits(-3)


def test_digits_are_normalised_as_mnist(digit_set):
    # LeCun et al.: the ink's box fits 20×20 (its longer side is 20, up to the anti-aliased
    # edge), and the centre of mass sits at (14, 14) within half a pixel (a whole-pixel shift).
    images, _ = digit_set
    for img in images:
        props = measure.regionprops((img > 0).astype(int), intensity_image=img.astype(float))[0]
        r0, c0, r1, c1 = props.bbox
        assert 19 <= max(r1 - r0, c1 - c0) <= 21
        cy, cx = props.centroid_weighted
        assert abs(cy - 14) <= 0.5 + 1e-9 and abs(cx - 14) <= 0.5 + 1e-9


def _disc(side: int, cy: float, cx: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[0:side, 0:side]
    return ((yy - cy) ** 2 + (xx - cx) ** 2 <= r**2).astype(np.float32)


def test_mnist_normalize_keeps_a_centred_disc_centred_and_fits_it_in_20px():
    out = datasets.mnist_normalize(_disc(101, 50, 50, 30) * 200)
    assert out.shape == (28, 28) and out.dtype == np.uint8
    props = measure.regionprops((out > 0).astype(int), intensity_image=out.astype(float))[0]
    cy, cx = props.centroid_weighted
    assert abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5
    r0, c0, r1, c1 = props.bbox
    assert r1 - r0 <= 21 and c1 - c0 <= 21 and max(r1 - r0, c1 - c0) >= 19
    assert out.max() == 255  # the soft threshold saturates the ink's core


def test_mnist_normalize_moves_a_small_corner_digit_to_the_centre_keeping_its_aspect():
    ink = np.zeros((500, 500), np.float32)
    ink[20:60, 430:450] = 1.0  # a 40×20 bar near the top-right corner
    out = datasets.mnist_normalize(ink)
    ys, xs = np.nonzero(out > 127)
    assert ys.max() - ys.min() + 1 == 20 and xs.max() - xs.min() + 1 == 10  # 2:1 kept
    cy, cx = (np.asarray(np.nonzero(out)) * out[np.nonzero(out)]).sum(1) / out.sum()
    assert abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5


def test_mnist_normalize_drops_specks_and_ignores_the_ink_scale():
    ink = _disc(200, 100, 100, 40)
    specked = ink.copy()
    specked[3, 3] = specked[190, 5] = 1.0  # two one-pixel specks far from the digit
    np.testing.assert_array_equal(
        datasets.mnist_normalize(specked), datasets.mnist_normalize(ink * 37.0)
    )


@pytest.mark.parametrize("bad", [np.zeros((30, 30)), np.zeros((0, 5)), np.zeros((4, 4, 4))])
def test_mnist_normalize_refuses_blank_or_misshapen_pictures(bad):
    with pytest.raises(DatasetError, match="Expected"):
        datasets.mnist_normalize(bad)


def test_distort_digits_varies_copies_and_stays_normalised(digit_set):
    images, _ = digit_set
    out = datasets.distort_digits(images[:10], seed=3, copies=3)
    assert out.shape == (30, 28, 28) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, datasets.distort_digits(images[:10], seed=3, copies=3))
    assert np.abs(out[0].astype(int) - out[1]).mean() > 3  # two copies of one digit differ
    for img in out:
        props = measure.regionprops((img > 0).astype(int), intensity_image=img.astype(float))[0]
        cy, cx = props.centroid_weighted
        assert abs(cy - 14) <= 0.5 + 1e-9 and abs(cx - 14) <= 0.5 + 1e-9
    with pytest.raises(DatasetError, match=r"\(N, 28, 28\)"):
        datasets.distort_digits(np.zeros((2, 8, 8), np.uint8))


def test_mnist_sample_is_real_balanced_mnist():
    images, labels = datasets.mnist_sample()
    assert images.shape == (5000, 28, 28) and images.dtype == np.uint8
    assert np.all(np.bincount(labels, minlength=10) == 500)
    # MNIST's own normalisation, which `mnist_normalize` copies: every centre of mass lies
    # within half a pixel of (14, 14) (a whole-pixel shift to that point).
    x = images.astype(np.float64)
    ys, xs = np.mgrid[0:28, 0:28]
    cy = (x * ys).sum((1, 2)) / x.sum((1, 2))
    cx = (x * xs).sum((1, 2)) / x.sum((1, 2))
    assert np.all(np.abs(cy - 14) <= 0.5) and np.all(np.abs(cx - 14) <= 0.5)


# --- no TensorFlow, keras.datasets offline -----------------------------------------------


def test_importing_datasets_does_not_import_tensorflow():
    code = (
        "import sys, cnnviz.datasets as d; d.shapes(2); d.digits(2); "
        "bad = [m for m in ('tensorflow', 'keras') if m in sys.modules]; "
        "assert not bad, bad"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr


def test_unknown_keras_dataset_raises_without_importing():
    with pytest.raises(DatasetError, match="Expected one of"):
        datasets.load_keras_dataset("imagenet")


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist", "cifar10"])
def test_keras_dataset_offline_gives_a_clear_error(name, tmp_path, monkeypatch):
    # Mock only the network: Keras' own get_file runs, with an empty cache, and its download fails.
    import keras.src.backend.config as keras_config
    import keras.src.utils.file_utils as file_utils

    calls = []

    def offline(url, *args, **kwargs):
        calls.append(url)
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(file_utils, "urlretrieve", offline)
    monkeypatch.setattr(keras_config, "_KERAS_DIR", str(tmp_path))
    with pytest.raises(
        DatasetUnavailable, match=f"Could not load '{name}'.*cnnviz.datasets.digits"
    ):
        datasets.load_keras_dataset(name)
    assert calls, "the download was never attempted"
    assert issubclass(DatasetUnavailable, ValueError)
