"""Two-object scenes (cnnviz.datasets.scenes) and Grad-CAM's class-discriminative maps on them."""

import numpy as np
import pytest
from scipy import ndimage

from cnnviz import cam, datasets


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
            peak = np.unravel_index(np.argmax(heat), heat.shape)
            hits.append(ndimage.distance_transform_edt(~mk[j])[peak] <= 4)
    return np.array(hits)


@pytest.fixture(scope="module")
def pointing_hits(scenes):
    return _pointing_hits(scenes)


def test_gradcam_points_at_each_present_class(pointing_hits):
    # The pointing game (4 px at 64², as 15 px at 224²). The shipped shapes model (36,000 × 8,
    # evidence kept on the object): 0.979 on these 24 scenes (48 maps), 0.930 on 200 scenes
    # (seed 123); without the evidence term 0.917 and 0.902; the 24,000 × 7 model 0.708 and
    # 0.835. Issue 16's bar is 0.95 on 200 (strict xfail below); this guards today's level.
    assert pointing_hits.mean() >= 0.85


@pytest.mark.xfail(
    strict=True,
    reason="issue 16's bar: >= 95% of class maps on their object; 0.93 on 200 scenes today",
)
def test_gradcam_pointing_on_scenes_meets_issue_16_bar():
    # On 200 scenes (400 maps), as the issue reports it: 24 are too few for a 95 % bar.
    assert _pointing_hits(datasets.scenes(200, seed=123)).mean() >= 0.95


def test_scenes_bad_arguments():
    with pytest.raises(datasets.DatasetError):
        datasets.scenes(-1)
    with pytest.raises(datasets.DatasetError):
        datasets.scenes(2, size=16)
