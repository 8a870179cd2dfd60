"""Two-object scenes (cnnviz.datasets.scenes) and Grad-CAM's class-discriminative maps on them."""

import numpy as np
import pytest
from scipy import ndimage

from cnnviz import cam, datasets, evaldata


@pytest.fixture(scope="module")
def scenes():
    return datasets.scenes(24, seed=11)


def test_scenes_shapes_and_determinism(scenes):
    images, labels, masks = scenes
    assert images.shape == (24, 64, 64, 3) and images.dtype == np.uint8
    assert labels.shape == (24, 2) and masks.shape == (24, 2, 64, 64) and masks.dtype == bool
    assert (labels[:, 0] != labels[:, 1]).all() and labels.min() >= 0 and labels.max() < 8
    again = datasets.scenes(24, seed=11)
    np.testing.assert_array_equal(again[0], images)
    assert not np.array_equal(datasets.scenes(24, seed=12)[0], images)


def test_both_objects_are_visible_and_apart(scenes):
    images, _, masks = scenes
    for image, (a, b) in zip(images, masks, strict=True):
        assert a.sum() > 60 and b.sum() > 60 and not (a & b).any()
        # Each object stands out from the background around it.
        gray = image.astype(np.float64).mean(axis=-1)
        for m in (a, b):
            ring = ndimage.binary_dilation(m, iterations=3) & ~m & ~(a | b)
            assert abs(gray[m].mean() - gray[ring].mean()) > 25


def _pointing_hits(scenes):
    """For each present class of each scene: does its Grad-CAM peak land on its object?"""
    images, labels, masks = scenes
    hits = []
    for image, lab, mk in zip(images, labels, masks, strict=True):
        for j in range(2):
            heat = cam.compute("gradcam", "shapes", image, class_index=int(lab[j])).heatmap
            hits.append(cam.pointing(heat, mk[j])[0])
    return np.array(hits)


@pytest.fixture(scope="module")
def pointing_hits(scenes):
    return _pointing_hits(scenes)


def test_gradcam_points_at_each_present_class(pointing_hits):
    # The pointing game (15 px at 224², 4.3 px at 64²) on a few scenes: a quick guard.
    assert pointing_hits.mean() >= 0.9


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: datasets.scenes(200, seed=123), id="generated"),
        pytest.param(lambda: evaldata.drawn_scenes(200, seed=7), id="hand-drawn"),
    ],
)
def test_gradcam_pointing_on_scenes_meets_issue_16_bar(make):
    # Issue 16's bar, on 200 scenes (400 maps) of the training generator's kind and of the
    # independent hand-drawn generator the model never trained on. The shipped model (trained
    # with two-object scenes, each class's evidence asked to lie on its own shape): see
    # `python benchmarks/gradcam.py --scenes`: 0.965 and 0.960 (0.975 on seed 21). Before the
    # scenes: 0.945 and 0.960.
    assert _pointing_hits(make()).mean() >= 0.95


def test_scenes_bad_arguments():
    with pytest.raises(datasets.DatasetError):
        datasets.scenes(-1)
    with pytest.raises(datasets.DatasetError):
        datasets.scenes(2, size=16)


def test_drawn_scenes_hold_two_different_shapes_apart():
    images, labels, masks = evaldata.drawn_scenes(12, seed=4)
    assert images.shape == (12, 64, 64, 3) and images.dtype == np.uint8
    assert labels.shape == (12, 2) and masks.shape == (12, 2, 64, 64) and masks.dtype == bool
    assert (labels[:, 0] != labels[:, 1]).all() and labels.min() >= 0 and labels.max() < 8
    np.testing.assert_array_equal(evaldata.drawn_scenes(12, seed=4)[0], images)
    for a, b in masks:
        # Each object 24-44 % of the sheet across (tilted by the photo), and the two apart.
        assert a.sum() > 30 and b.sum() > 30
        assert ndimage.distance_transform_edt(~a)[b].min() >= 1
    with pytest.raises(datasets.DatasetError):
        evaldata.drawn_scenes(-1, seed=0)


def test_training_scenes_paste_what_the_pen_left():
    images, labels, masks = datasets._training_scenes(16, seed=2)
    assert images.shape == (16, 64, 64, 3) and labels.shape == (16, 2)
    assert (labels[:, 0] != labels[:, 1]).all()
    for a, b in masks:
        assert a.sum() > 0 and b.sum() > 30 and not (a & b).any()
    np.testing.assert_array_equal(datasets._training_scenes(16, seed=2)[0], images)
