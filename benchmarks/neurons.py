"""Neurons page: a layer's dataset examples and the feature map, as ratios to one forward pass.

Measured in the same run, on the same 2,000 generated images:

- forward: ONE batched forward pass of all the images through the whole model, compiled
  (`cnnviz.activations.forward` with the model's output, warm: traced once before timing);
- top examples: `neurons.layer_maxima` over the images for one layer (chunked forward passes
  and every channel's maximum and position), then every channel's top 9 with patches
  (`examples_from_maxima`), i.e. everything the Neuron and Layer views need;
- embedding: `neurons.embedding` with t-SNE (and PCA): features of the penultimate layer, then
  the 2-D map.

Each is the median of a few repeats, timed alternately with the forward pass so that a busy
machine slows both alike. The disk cache is not involved: these are the cold costs a page pays
once per (model, dataset).

Run: python benchmarks/neurons.py [MODEL ...]   (default: shapes digits)
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from cnnviz import activations, datasets, layers, models, neurons  # noqa: E402

N = 2000
REPEATS = 3


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _images(name: str) -> np.ndarray:
    if name == "digits":
        return datasets.digits(N, seed=4242)[0]
    return datasets.shapes(N, seed=4242)[0]


def bench(name: str) -> None:
    imgs = _images(name)
    net, _ = models.resolve(name)
    layer = layers.conv_layer_paths(net)[-1]
    geometry = neurons.layer_geometry(name, layer)
    # Warm up: load, trace the extraction and predict functions once.
    penultimate = neurons.penultimate_layer(name)
    activations.forward(name, imgs[:64], [penultimate])
    neurons.layer_maxima(name, layer, imgs[:64])
    neurons.features(name, imgs[:64])

    def forward() -> None:
        activations.forward(name, imgs, [penultimate])

    def top() -> None:
        m = neurons.layer_maxima(name, layer, imgs)
        for c in range(m.values.shape[1]):
            neurons.examples_from_maxima(m, geometry, c, imgs, n=9)

    fwd, t_top, t_tsne, t_pca = [], [], [], []
    for _ in range(REPEATS):
        fwd.append(_timed(forward))
        t_top.append(_timed(top))
        fwd.append(_timed(forward))
        t_pca.append(_timed(lambda: neurons.embedding(name, imgs, method="pca")))
    # t-SNE once or twice: it is the slow one.
    for _ in range(2):
        fwd.append(_timed(forward))
        t_tsne.append(_timed(lambda: neurons.embedding(name, imgs, method="tsne")))
    f = statistics.median(fwd)
    rows = [
        (f"top examples of {layer} (all channels)", statistics.median(t_top)),
        ("embedding, t-SNE", statistics.median(t_tsne)),
        ("embedding, PCA", statistics.median(t_pca)),
    ]
    print(f"\n{name}: {N} images, one batched forward pass = {f:.3f} s")
    for label, t in rows:
        print(f"  {label:<42} {t:8.3f} s   {t / f:7.1f}× the forward pass")


if __name__ == "__main__":
    for model_name in sys.argv[1:] or ["shapes", "digits"]:
        bench(model_name)
