"""Filter pictures computed on one replica are served from the disk cache on another."""

from __future__ import annotations

import numpy as np

from cnnviz import diskcache, featureviz
from cnnviz.ui import featureviz_cache

SETTINGS = dict(steps=3, size=64, seed=0)


def test_second_replica_reads_filter_pictures_from_disk(monkeypatch, tmp_path):
    monkeypatch.setenv("CNNVIZ_CACHE_DIR", str(tmp_path))
    runs = []
    real = featureviz.visualize

    def counting(*args, **kwargs):
        runs.append(args[:3])
        return real(*args, **kwargs)

    monkeypatch.setattr(featureviz, "visualize", counting)
    featureviz_cache._stored.clear()
    # Replica A computes.
    a_images, a_scores = featureviz_cache.visualize("shapes", "conv2", [0, 3], **SETTINGS)
    assert len(runs) == 1
    assert diskcache.default_cache().size_bytes() > 0
    # Replica B: a fresh process has an empty memory cache, but the same directory.
    featureviz_cache._stored.clear()
    assert featureviz_cache.lookup("shapes", "conv2", [0, 3], **SETTINGS) is not None
    featureviz_cache._stored.clear()
    b_images, b_scores = featureviz_cache.visualize("shapes", "conv2", [0, 3], **SETTINGS)
    assert len(runs) == 1
    np.testing.assert_array_equal(a_images, b_images)
    np.testing.assert_array_equal(a_scores, b_scores)
    # Other settings are another key: computed again.
    featureviz_cache.visualize("shapes", "conv2", [0, 3], **{**SETTINGS, "seed": 1})
    assert len(runs) == 2
    featureviz_cache._stored.clear()
