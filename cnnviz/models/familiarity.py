"""Honesty about unfamiliar input: is this picture like anything the model was trained on?

A classifier's softmax always sums to 1 over its classes, so it gives a confident-looking
answer even for a cat shown to the shapes model. Its features tell more: for pictures like
the training data they lie near one class's mean; for anything else they usually lie far
from all of them. Following Lee et al. (2018), at SEVERAL layers:

1. the layers are chosen by a rule (`feature_layers`): every convolution and pooling layer
   (each channel summarised by its spatial mean and its maximum), and the layer that feeds
   the classifier (its raw output). Early layers see textures and colours that are unlike the
   training data; the last one sees unlike objects;
2. at each layer, fit class means mu_c and ONE shared (within-class) covariance Sigma on the
   model's training-like data, and take the Mahalanobis distance to the closest class mean,
   d(f) = min_c sqrt((f - mu_c)^T Sigma^-1 (f - mu_c));
3. combine the layers by a sum of standardised distances, D = sum_l (d_l - m_l) / s_l, with
   m_l and s_l the mean and standard deviation of d_l on held-out training-like data (Lee et
   al. weight the layers by a regression fitted on outliers; we have no outliers to fit on,
   so every layer counts the same);
4. add the classifier's own doubt, C = -log(max softmax probability) (Hendrycks & Gimpel's
   baseline, 2017): a photo often lies near SOME class mean at every layer and still splits
   the softmax between classes, which typical pictures rarely do. The two evidences are
   merged as p-values (Fisher's method): s = -log P_D(D) - log P_C(C), where P is the share
   of held-out training-like pictures with a higher D (or C). A model can leave the doubt
   out (`calibrate(use_doubt=False)`, then s = D): the digits model is often unsure about
   real handwriting that is perfectly familiar (scikit-learn's blurry 8×8 digits), so for it
   the doubt would flag ambiguity, not novelty;
5. calibrate on that held-out data: familiarity = 1 - F(s), where F is the empirical CDF
   of the held-out scores s. On data like the training data familiarity is then roughly
   uniform on [0, 1]; far outside it is 0.

Everything is fitted on the model's own training-like data only (the generators, and for
digits the MNIST training digits it was trained on). Photos, scikit-learn's digits and the
independent drawing generators are for measuring the flag, never for fitting it.

`unfamiliar` flags familiarity below `FamiliarityStats.threshold` (stored with the model; the
built-ins use `DEFAULT_THRESHOLD`, so about that fraction of typical pictures is flagged too).

The statistics of a built-in live next to it, in `assets/models/NAME.familiarity.npz`
(the layers, their means, precision matrices and standardisation, the calibration
quantiles, the SHA-256 of the .keras file they were computed for), summarised in the model
card. `python -m cnnviz.train NAME` writes them after training;
`python -m cnnviz.train NAME --calibrate-only` recomputes them for a shipped model.

References:
    Hendrycks, Gimpel, "A Baseline for Detecting Misclassified and Out-of-Distribution
    Examples in Neural Networks", ICLR 2017 (maximum softmax probability).
    Lee, Lee, Lee, Shin, "A Simple Unified Framework for Detecting Out-of-Distribution
    Samples and Adversarial Attacks", NeurIPS 2018 (Mahalanobis score, feature ensemble).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from cnnviz import layers as _layers
from cnnviz.models import loading as _loading
from cnnviz.models import preprocess as _preprocess
from cnnviz.models import registry as _registry
from cnnviz.models.errors import ModelError

__all__ = [
    "DEFAULT_THRESHOLD",
    "FamiliarityUnavailable",
    "FamiliarityStats",
    "stats_path",
    "penultimate_layer",
    "feature_layers",
    "layer_features",
    "class_statistics",
    "mahalanobis_distances",
    "doubt",
    "calibrate",
    "save_stats",
    "load_stats",
    "stats_for",
    "distances",
    "scores",
    "familiarity",
    "unfamiliar",
]

#: Flag a picture when fewer than this fraction of held-out training-like pictures score as
#: far from the training data (so about 1 % of typical pictures are flagged: a false alarm rate).
DEFAULT_THRESHOLD = 0.01
# Levels at which the calibration scores are stored (0 %, 0.1 %, ..., 100 %).
_LEVELS = np.linspace(0.0, 1.0, 1001)
# Ridge on the shared covariance, relative to its mean variance (keeps Sigma invertible when
# a ReLU feature is almost always 0).
_RIDGE = 1e-4
_BATCH = 256
# Layer types whose outputs `feature_layers` takes (BatchNormalization is left out: an affine
# map per channel of the layer before it, which a Mahalanobis distance does not see).
_POOL_TYPES = ("MaxPooling2D", "AveragePooling2D")


class FamiliarityUnavailable(ModelError):
    """No familiarity statistics for this model; the message says how to compute them."""


@dataclass(frozen=True)
class FamiliarityStats:
    """What `familiarity` needs for one model.

    Attributes:
        layers: paths of the layers whose outputs are the features (`feature_layers`).
        means: per layer, (classes, D_l) class means of its features.
        precisions: per layer, (D_l, D_l) inverse of the shared within-class covariance
            (plus a small ridge).
        centre: (L,) mean of each layer's distance on the held-out data.
        scale: (L,) standard deviation of each layer's distance there.
        distance_quantiles: (1001,) held-out summed standardised distances D at the levels
            0, 0.001, ..., 1 (their ECDF).
        confidence_quantiles: (1001,) held-out doubts C = -log(max softmax), likewise.
        quantiles: (1001,) held-out combined scores s, likewise.
        use_doubt: whether s merges the doubt with D (else s = D).
        threshold: `unfamiliar` flags familiarity below this.
        model_sha256: SHA-256 of the .keras file the statistics belong to ("" if none).
    """

    layers: tuple[str, ...]
    means: tuple[np.ndarray, ...]
    precisions: tuple[np.ndarray, ...]
    centre: np.ndarray
    scale: np.ndarray
    distance_quantiles: np.ndarray
    confidence_quantiles: np.ndarray
    quantiles: np.ndarray
    threshold: float = DEFAULT_THRESHOLD
    model_sha256: str = ""
    use_doubt: bool = True


def stats_path(name: str) -> Path:
    """Where a built-in model's familiarity statistics are stored."""
    return _registry.ASSETS / f"{name}.familiarity.npz"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@functools.lru_cache(maxsize=8)
def _file_sha256(path: str, mtime_ns: int, size: int) -> str:
    return _sha256(Path(path))


def penultimate_layer(model: keras.Model) -> str:
    """The layer that feeds the classifier: the one before the last Dense layer.

    Raises:
        FamiliarityUnavailable: the model does not end in a Dense layer after another layer.
    """
    flat = list(model.layers)
    if len(flat) < 2 or not isinstance(flat[-1], keras.layers.Dense):
        raise FamiliarityUnavailable(
            f"Expected a model that ends in a Dense classifier after a feature layer. "
            f"Received {model.name!r} ending in {type(flat[-1]).__name__ if flat else None}."
        )
    return flat[-2].name


def feature_layers(model: keras.Model) -> tuple[str, ...]:
    """The layers the familiarity score reads, by rule, in graph order.

    Every top-level convolution and pooling layer with a spatial (N, h, w, c) output, and the
    penultimate layer (`penultimate_layer`). Lee et al. (2018) likewise read the end of every
    block and combine them.

    Raises:
        FamiliarityUnavailable: the model does not end in a Dense classifier.
    """
    last = penultimate_layer(model)
    chosen = []
    for info in _layers.list_layers(model):
        spatial = info.output_shape is not None and len(info.output_shape) == 4
        if info.depth == 0 and spatial and (info.is_conv or info.class_name in _POOL_TYPES):
            chosen.append(info.path)
    return tuple(p for p in chosen if p != last) + (last,)


_feature_models: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def _summarise(out: np.ndarray) -> np.ndarray:
    # A spatial map (N, h, w, c) becomes each channel's mean and maximum over space (2c
    # numbers: how much of a pattern there is, and how strongly it appears anywhere).
    if out.ndim == 4:
        return np.concatenate([out.mean(axis=(1, 2)), out.max(axis=(1, 2))], axis=-1)
    return out.reshape(len(out), -1)


def layer_features(
    model: keras.Model, x: np.ndarray, layers: tuple[str, ...] | list[str]
) -> list[np.ndarray]:
    """Features of already preprocessed inputs x (N, h, w, c) at each layer: [(N, D_l)] float64.

    A spatial output is summarised per channel by its mean and maximum over space; a flat
    one is taken as it is. The feature model is built once per (model, layers) and shares the
    model's weights (nothing is changed).
    """
    return _features_and_output(model, x, layers)[0]


def doubt(probabilities: np.ndarray) -> np.ndarray:
    """(N,) C = -log(max softmax probability): 0 when the model is sure, log(k) at worst."""
    p = np.asarray(probabilities, np.float64)
    return -np.log(np.clip(p.max(axis=-1), 1e-12, 1.0))


def _features_and_output(
    model: keras.Model, x: np.ndarray, layers: tuple[str, ...] | list[str]
) -> tuple[list[np.ndarray], np.ndarray]:
    # One forward pass for the features at `layers` and the model's output (its softmax).
    key = tuple(layers)
    with _lock:
        cached = _feature_models.get(model)
        if cached is None or cached[0] != key:
            cached = (key, _layers.feature_model(model, list(key), include_output=True))
            _feature_models[model] = cached
    fm = cached[1]
    x = np.asarray(x, np.float32)
    parts: list[list[np.ndarray]] = [[] for _ in key]
    probs: list[np.ndarray] = []
    for i in range(0, len(x), _BATCH):
        *outs, out = fm(x[i : i + _BATCH], training=False)
        for part, o in zip(parts, outs, strict=True):
            part.append(_summarise(np.asarray(o)))
        probs.append(np.asarray(out, np.float64))
    feats = [
        np.concatenate(p).astype(np.float64) if p else np.zeros((0, 0), np.float64) for p in parts
    ]
    return feats, (np.concatenate(probs) if probs else np.zeros((0, 0), np.float64))


def class_statistics(
    features: np.ndarray, labels: np.ndarray, classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Class means (classes, D) and the precision (D, D) of the shared within-class covariance.

    Sigma = (1/N) sum_c sum_{i in c} (f_i - mu_c)(f_i - mu_c)^T (Lee et al. 2018, Eq. 1), plus
    a ridge of 1e-4 × its mean variance so that it can be inverted.
    """
    f = np.asarray(features, np.float64)
    y = np.asarray(labels)
    missing = sorted(set(range(classes)) - set(np.unique(y).tolist()))
    if missing:
        raise FamiliarityUnavailable(
            f"Expected at least one fitting picture of each of the {classes} classes. "
            f"Received none of classes {missing}."
        )
    means = np.stack([f[y == c].mean(axis=0) for c in range(classes)])
    centred = f - means[y]
    sigma = centred.T @ centred / len(f)
    sigma += np.eye(len(sigma)) * _RIDGE * max(np.trace(sigma) / len(sigma), 1e-12)
    precision = np.linalg.inv(sigma)
    return means, (precision + precision.T) / 2


def mahalanobis_distances(
    features: np.ndarray, means: np.ndarray, precision: np.ndarray
) -> np.ndarray:
    """(N, classes) Mahalanobis distances sqrt((f - mu_c)^T P (f - mu_c))."""
    diff = np.asarray(features, np.float64)[:, None, :] - means[None]  # (N, C, D)
    sq = np.einsum("ncd,de,nce->nc", diff, precision, diff)
    return np.sqrt(np.maximum(sq, 0.0))


def _closest(feats: list[np.ndarray], means, precisions) -> np.ndarray:
    # (N, L): at each layer, the distance to the closest class mean.
    return np.stack(
        [
            mahalanobis_distances(f, m, p).min(axis=1)
            for f, m, p in zip(feats, means, precisions, strict=True)
        ],
        axis=1,
    )


def _combine(d: np.ndarray, centre: np.ndarray, scale: np.ndarray) -> np.ndarray:
    # Sum of standardised distances: each layer counts the same, whatever its dimension.
    return ((d - centre) / scale).sum(axis=1)


# The smallest tail share `_tail` returns: half a quantile step (a score beyond all the
# calibration scores is "rarer than 1 in 2,000", not impossible).
_MIN_TAIL = 0.5 / (len(_LEVELS) - 1)


def _tail(values: np.ndarray, quantiles: np.ndarray) -> np.ndarray:
    # The share of calibration scores above each value, read off their stored quantiles.
    cdf = np.interp(values, quantiles, _LEVELS, left=0.0, right=1.0)
    return np.clip(1.0 - cdf, _MIN_TAIL, 1.0)


def _fisher(
    distance: np.ndarray, doubt_: np.ndarray, distance_q: np.ndarray, doubt_q: np.ndarray
) -> np.ndarray:
    # Fisher's method: the two tail shares (p-values) merged as -log p_D - log p_C.
    return -np.log(_tail(distance, distance_q)) - np.log(_tail(doubt_, doubt_q))


def _score(stats: FamiliarityStats, d: np.ndarray, doubt_: np.ndarray) -> np.ndarray:
    # The combined score s from per-layer distances (N, L) and doubts (N,).
    total = _combine(d, stats.centre, stats.scale)
    if not stats.use_doubt:
        return total
    return _fisher(total, doubt_, stats.distance_quantiles, stats.confidence_quantiles)


def calibrate(
    model: keras.Model,
    fit_x: np.ndarray,
    fit_y: np.ndarray,
    held_x: np.ndarray,
    *,
    classes: int,
    threshold: float = DEFAULT_THRESHOLD,
    use_doubt: bool = True,
    model_file: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> FamiliarityStats:
    """Fit the statistics on (fit_x, fit_y) and calibrate the combined score on held_x.

    Inputs are preprocessed batches, as the model takes them; both must be training-like
    data (never the data the flag is judged on). `use_doubt` merges the softmax doubt into
    the score (see the module docstring).
    """
    say = progress or (lambda _line: None)
    layers = feature_layers(model)
    say(f"features at {', '.join(layers)}")
    fit = layer_features(model, fit_x, layers)
    fitted = [class_statistics(f, fit_y, classes) for f in fit]
    means = tuple(m for m, _ in fitted)
    precisions = tuple(p for _, p in fitted)
    say(f"class statistics fitted on {len(fit_x)} pictures; calibrating on {len(held_x)}")
    held_feats, held_probs = _features_and_output(model, held_x, layers)
    held = _closest(held_feats, means, precisions)
    centre = held.mean(axis=0)
    scale = np.maximum(held.std(axis=0), 1e-12)
    stats = FamiliarityStats(
        layers=layers,
        means=means,
        precisions=precisions,
        centre=centre,
        scale=scale,
        distance_quantiles=np.quantile(_combine(held, centre, scale), _LEVELS),
        confidence_quantiles=np.quantile(doubt(held_probs), _LEVELS),
        quantiles=np.zeros(len(_LEVELS)),  # filled in below, from these
        threshold=float(threshold),
        model_sha256=_sha256(model_file) if model_file is not None else "",
        use_doubt=bool(use_doubt),
    )
    quantiles = np.quantile(_score(stats, held, doubt(held_probs)), _LEVELS)
    return dataclasses.replace(stats, quantiles=quantiles)


def save_stats(stats: FamiliarityStats, path: Path) -> None:
    """Write the statistics as a .npz (float32 arrays: a few hundred kilobytes)."""
    per_layer = {}
    for i, (m, p) in enumerate(zip(stats.means, stats.precisions, strict=True)):
        per_layer[f"means_{i}"] = m.astype(np.float32)
        per_layer[f"precision_{i}"] = p.astype(np.float32)
    np.savez_compressed(
        path,
        layers=np.array(stats.layers, dtype=str),
        centre=np.asarray(stats.centre, np.float64),
        scale=np.asarray(stats.scale, np.float64),
        distance_quantiles=stats.distance_quantiles.astype(np.float32),
        confidence_quantiles=stats.confidence_quantiles.astype(np.float32),
        quantiles=stats.quantiles.astype(np.float32),
        threshold=np.array(stats.threshold),
        model_sha256=np.array(stats.model_sha256),
        use_doubt=np.array(stats.use_doubt),
        **per_layer,
    )


def load_stats(path: Path) -> FamiliarityStats:
    """Read statistics written by `save_stats` (no pickles: plain arrays only).

    Raises:
        FamiliarityUnavailable: the file is not in this format (written by an older version).
    """
    with np.load(path, allow_pickle=False) as z:
        if not {"layers", "confidence_quantiles", "use_doubt"} <= set(z.files):
            raise FamiliarityUnavailable(
                f"Expected familiarity statistics in the current format (per layer, with "
                f"the softmax doubt's quantiles) in {Path(path).name}. Received "
                f"an older format (keys {sorted(z.files)}). Recompute them with "
                "python -m cnnviz.train NAME --calibrate-only"
            )
        layers = tuple(str(v) for v in z["layers"])
        return FamiliarityStats(
            layers=layers,
            means=tuple(z[f"means_{i}"].astype(np.float64) for i in range(len(layers))),
            precisions=tuple(z[f"precision_{i}"].astype(np.float64) for i in range(len(layers))),
            centre=z["centre"].astype(np.float64),
            scale=z["scale"].astype(np.float64),
            distance_quantiles=z["distance_quantiles"].astype(np.float64),
            confidence_quantiles=z["confidence_quantiles"].astype(np.float64),
            quantiles=z["quantiles"].astype(np.float64),
            threshold=float(z["threshold"]),
            model_sha256=str(z["model_sha256"]),
            use_doubt=bool(z["use_doubt"]),
        )


@functools.lru_cache(maxsize=8)
def _cached_stats(path: str, mtime_ns: int) -> FamiliarityStats:
    return load_stats(Path(path))


def stats_for(model: str | keras.Model) -> FamiliarityStats:
    """The stored statistics of a built-in model (by name, or a model `cnnviz.models` loaded).

    Raises:
        FamiliarityUnavailable: not a trained built-in, no statistics stored, or statistics
            computed for another version of the model file.
    """
    name = model if isinstance(model, str) else _loading._known.get(model)
    if name not in _registry.builtin_names():
        label = name if name is not None else getattr(model, "name", model)
        raise FamiliarityUnavailable(
            f"Familiarity is only known for the built-in models {_registry.builtin_names()} "
            f"(their training data is known). Received {label!r}."
        )
    path = stats_path(name)
    if not path.exists():
        raise FamiliarityUnavailable(
            f"No familiarity statistics for {name!r}: expected {path}. Compute them with "
            f"python -m cnnviz.train {name} --calibrate-only"
        )
    stats = _cached_stats(str(path), path.stat().st_mtime_ns)
    keras_file = _registry.ASSETS / f"{name}.keras"
    st = keras_file.stat()
    if stats.model_sha256 != _file_sha256(str(keras_file), st.st_mtime_ns, st.st_size):
        raise FamiliarityUnavailable(
            f"The familiarity statistics in {path.name} belong to another version of "
            f"{keras_file.name}. Recompute them with python -m cnnviz.train {name} "
            "--calibrate-only"
        )
    return stats


def _evidence(model: str | keras.Model, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # (N, L) per-layer distances and (N,) doubts, from one forward pass.
    stats = stats_for(model)
    net, prep = _preprocess.resolve(model)
    feats, probs = _features_and_output(net, prep(images), stats.layers)
    return _closest(feats, stats.means, stats.precisions), doubt(probs)


def distances(model: str | keras.Model, images: np.ndarray) -> np.ndarray:
    """(N, L) Mahalanobis distance of each image's features to the closest class mean, per layer.

    The columns follow `stats_for(model).layers`. Images go in as pages pass them (uint8, any
    size: the model's preprocessing applies).
    """
    return _evidence(model, images)[0]


def scores(model: str | keras.Model, images: np.ndarray) -> np.ndarray:
    """(N,) the combined score s (higher: stranger).

    s = -log P_D - log P_C: the tail shares, among held-out training-like pictures, of the
    summed standardised distances D and of the softmax doubt (Fisher's method); or s = D
    for a model calibrated without the doubt.
    """
    d, c = _evidence(model, images)
    return _score(stats_for(model), d, c)


def familiarity(model: str | keras.Model, images: np.ndarray) -> np.ndarray:
    """(N,) in [0, 1]: the fraction of held-out training-like pictures that score as far away.

    About uniform on pictures like the training data; near 0 for pictures unlike all of it.

    Raises:
        FamiliarityUnavailable: the model has no statistics (see `stats_for`).
    """
    stats = stats_for(model)
    s = scores(model, images)
    # 1 - empirical CDF of the calibration scores, read off the stored quantiles.
    cdf = np.interp(s, stats.quantiles, _LEVELS, left=0.0, right=1.0)
    return np.clip(1.0 - cdf, 0.0, 1.0)


def unfamiliar(model: str | keras.Model, images: np.ndarray) -> np.ndarray:
    """(N,) bool: True where familiarity is below the model's stored threshold."""
    return familiarity(model, images) < stats_for(model).threshold
