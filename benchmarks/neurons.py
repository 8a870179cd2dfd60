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

`python benchmarks/neurons.py --settings` instead prints how the t-SNE settings change issue 17's
measure on the shapes model: on three fresh sets of 400 pictures, the share of points whose 5
nearest neighbours on the map all share its class, for each setting; next to it, the same share
among the points with no misclassified picture among them and their neighbours (what the map
can do where the network itself is right), and the 5-NN share in the 64-D features themselves.
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


def _all_five_agree(points: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(N,) bool: the 5 nearest other points (Euclidean) all have the point's label."""
    d = ((points[:, None, :] - points[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    nearest = np.argsort(d, axis=1)[:, :5]
    return (labels[nearest] == labels[:, None]).all(axis=1), nearest


def _tsne(x: np.ndarray, **kw) -> np.ndarray:
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    kw = {"perplexity": 30.0, **kw}
    with threadpool_limits(limits=1, user_api="openmp"):
        return TSNE(2, init="pca", learning_rate="auto", random_state=0, **kw).fit_transform(x)


def settings(seeds: tuple[int, ...] = (2468, 1357, 97531), n: int = 400) -> None:
    from sklearn.decomposition import PCA

    def standardise(f):
        return (f - f.mean(0)) / (f.std(0) + 1e-6)

    variants = {
        "neurons.embed: unscaled, perplexity 30": lambda f: neurons.embed(f, "tsne"),
        "standardised (each unit to variance 1)": lambda f: _tsne(standardise(f)),
        "PCA-whitened": lambda f: _tsne(PCA(whiten=True, random_state=0).fit_transform(f)),
        "unscaled, cosine metric": lambda f: _tsne(f, metric="cosine"),
        "unscaled, perplexity 15": lambda f: _tsne(f, perplexity=15),
        "unscaled, perplexity 50": lambda f: _tsne(f, perplexity=50),
        "unscaled, 3,000 iterations": lambda f: _tsne(f, max_iter=3000),
    }
    sets = []
    for seed in seeds:
        imgs, labels, _ = datasets.shapes(n, seed=seed)
        feats = neurons.features("shapes", imgs).astype(np.float64)
        wrong = models.predict("shapes", imgs).argmax(1) != labels
        sets.append((feats, labels, wrong))
        agree, _ = _all_five_agree(feats, labels)
        print(
            f"set {seed}: accuracy {1 - wrong.mean():.3f}, 5-NN in the features {agree.mean():.3f}"
        )
    print(f"\n{'t-SNE setting':<46}" + "".join(f"{s:>8}" for s in seeds) + "    mean  clean  s/map")
    for label, fn in variants.items():
        shares, clean, t0 = [], [], time.perf_counter()
        for feats, labels, wrong in sets:
            agree, nearest = _all_five_agree(np.asarray(fn(feats)), labels)
            shares.append(agree.mean())
            ok = ~(wrong | wrong[nearest].any(axis=1))
            clean.append(agree[ok].mean())
        per_map = (time.perf_counter() - t0) / len(sets)
        print(
            f"{label:<46}" + "".join(f"{v:8.3f}" for v in shares)
            + f"   {np.mean(shares):.3f}  {np.mean(clean):.3f}  {per_map:5.1f}"
        )  # fmt: skip


if __name__ == "__main__":
    if sys.argv[1:] == ["--settings"]:
        settings()
    else:
        for model_name in sys.argv[1:] or ["shapes", "digits"]:
            bench(model_name)
