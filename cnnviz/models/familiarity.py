"""Honesty about unfamiliar input: is this picture like anything the model was trained on?

A classifier's softmax always sums to 1 over its classes, so it gives a confident-looking
answer even for a cat shown to the shapes model. Its penultimate features tell more: for
pictures like the training data they lie near one class's mean; for anything else they
usually lie far from all of them. Following Lee et al. (2018):

1. fit class means mu_c and ONE shared (within-class) covariance Sigma of the penultimate
   features on generated training-like data;
2. score a picture by its Mahalanobis distance to the closest class mean,
   d(f) = min_c sqrt((f - mu_c)^T Sigma^-1 (f - mu_c));
3. calibrate on held-out generated data: familiarity(f) = 1 - F(d(f)), where F is the
   empirical CDF of the held-out distances. On data like the training data familiarity is
   then roughly uniform on [0, 1]; far outside it is 0.

`unfamiliar` flags familiarity below `FamiliarityStats.threshold` (stored with the model; the
built-ins use `DEFAULT_THRESHOLD`, so about that fraction of typical pictures is flagged too).

The statistics of a built-in live next to it, in `assets/models/NAME.familiarity.npz`
(means, precision matrix, calibration quantiles, the SHA-256 of the .keras file they were
computed for), summarised in the model card. `python -m cnnviz.train NAME` writes them after
training; `python -m cnnviz.train NAME --calibrate-only` recomputes them for a shipped model.

References:
    Lee, Lee, Lee, Shin, "A Simple Unified Framework for Detecting Out-of-Distribution
    Samples and Adversarial Attacks", NeurIPS 2018.
"""

from __future__ import annotations

import functools
import hashlib
import threading
import weakref
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
    "penultimate_features",
    "class_statistics",
    "mahalanobis_distances",
    "calibrate",
    "save_stats",
    "load_stats",
    "stats_for",
    "distances",
    "familiarity",
    "unfamiliar",
]

#: Flag a picture when fewer than this fraction of held-out training-like pictures lie as far
#: from every class (so about 1 % of typical pictures are flagged: a false alarm rate).
DEFAULT_THRESHOLD = 0.01
# Levels at which the calibration distances are stored (0 %, 0.1 %, ..., 100 %).
_LEVELS = np.linspace(0.0, 1.0, 1001)
# Ridge on the shared covariance, relative to its mean variance (keeps Sigma invertible when
# a ReLU feature is almost always 0).
_RIDGE = 1e-4
_BATCH = 256


class FamiliarityUnavailable(ModelError):
    """No familiarity statistics for this model; the message says how to compute them."""


@dataclass(frozen=True)
class FamiliarityStats:
    """What `familiarity` needs for one model.

    Attributes:
        layer: path of the layer whose output are the features (the classifier's input).
        means: (classes, D) class means of the features.
        precision: (D, D) inverse of the shared within-class covariance (plus a small ridge).
        quantiles: (1001,) held-out distances at the levels 0, 0.001, ..., 1 (their ECDF).
        threshold: `unfamiliar` flags familiarity below this.
        model_sha256: SHA-256 of the .keras file the statistics belong to ("" if none).
    """

    layer: str
    means: np.ndarray
    precision: np.ndarray
    quantiles: np.ndarray
    threshold: float = DEFAULT_THRESHOLD
    model_sha256: str = ""


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


_feature_models: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def penultimate_features(
    model: keras.Model, x: np.ndarray, *, layer: str | None = None
) -> np.ndarray:
    """Features of already preprocessed inputs x (N, h, w, c): (N, D) float64.

    The feature model is built once per model and shares its weights (nothing is changed).
    """
    layer = layer or penultimate_layer(model)
    with _lock:
        cached = _feature_models.get(model)
        if cached is None or cached[0] != layer:
            cached = (layer, _layers.feature_model(model, [layer], include_output=False))
            _feature_models[model] = cached
    fm = cached[1]
    x = np.asarray(x, np.float32)
    outs = [np.asarray(fm(x[i : i + _BATCH], training=False)) for i in range(0, len(x), _BATCH)]
    feats = np.concatenate(outs) if outs else np.zeros((0, 0), np.float32)
    return feats.reshape(len(x), -1).astype(np.float64)


def class_statistics(
    features: np.ndarray, labels: np.ndarray, classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Class means (classes, D) and the precision (D, D) of the shared within-class covariance.

    Sigma = (1/N) sum_c sum_{i in c} (f_i - mu_c)(f_i - mu_c)^T (Lee et al. 2018, Eq. 1), plus
    a ridge of 1e-4 × its mean variance so that it can be inverted.
    """
    f = np.asarray(features, np.float64)
    y = np.asarray(labels)
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


def calibrate(
    model: keras.Model,
    fit_x: np.ndarray,
    fit_y: np.ndarray,
    held_x: np.ndarray,
    *,
    classes: int,
    threshold: float = DEFAULT_THRESHOLD,
    model_file: Path | None = None,
) -> FamiliarityStats:
    """Fit the statistics on (fit_x, fit_y) and calibrate the distances on held_x.

    Inputs are preprocessed batches, as the model takes them.
    """
    layer = penultimate_layer(model)
    means, precision = class_statistics(
        penultimate_features(model, fit_x, layer=layer), fit_y, classes
    )
    held = mahalanobis_distances(penultimate_features(model, held_x, layer=layer), means, precision)
    quantiles = np.quantile(held.min(axis=1), _LEVELS)
    return FamiliarityStats(
        layer=layer,
        means=means,
        precision=precision,
        quantiles=quantiles,
        threshold=float(threshold),
        model_sha256=_sha256(model_file) if model_file is not None else "",
    )


def save_stats(stats: FamiliarityStats, path: Path) -> None:
    """Write the statistics as a .npz (float32 arrays: a few tens of kilobytes)."""
    np.savez_compressed(
        path,
        layer=np.array(stats.layer),
        means=stats.means.astype(np.float32),
        precision=stats.precision.astype(np.float32),
        quantiles=stats.quantiles.astype(np.float32),
        threshold=np.array(stats.threshold),
        model_sha256=np.array(stats.model_sha256),
    )


def load_stats(path: Path) -> FamiliarityStats:
    """Read statistics written by `save_stats` (no pickles: plain arrays only)."""
    with np.load(path, allow_pickle=False) as z:
        return FamiliarityStats(
            layer=str(z["layer"]),
            means=z["means"].astype(np.float64),
            precision=z["precision"].astype(np.float64),
            quantiles=z["quantiles"].astype(np.float64),
            threshold=float(z["threshold"]),
            model_sha256=str(z["model_sha256"]),
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


def distances(model: str | keras.Model, images: np.ndarray) -> np.ndarray:
    """(N,) Mahalanobis distance of each image's features to the closest class mean.

    Images go in as pages pass them (uint8, any size: the model's preprocessing applies).
    """
    stats = stats_for(model)
    net, prep = _preprocess.resolve(model)
    feats = penultimate_features(net, prep(images), layer=stats.layer)
    return mahalanobis_distances(feats, stats.means, stats.precision).min(axis=1)


def familiarity(model: str | keras.Model, images: np.ndarray) -> np.ndarray:
    """(N,) in [0, 1]: the fraction of held-out training-like pictures that lie farther away.

    About uniform on pictures like the training data; near 0 for pictures unlike all of it.

    Raises:
        FamiliarityUnavailable: the model has no statistics (see `stats_for`).
    """
    stats = stats_for(model)
    d = distances(model, images)
    # 1 - empirical CDF of the calibration distances, read off the stored quantiles.
    cdf = np.interp(d, stats.quantiles, _LEVELS, left=0.0, right=1.0)
    return np.clip(1.0 - cdf, 0.0, 1.0)


def unfamiliar(model: str | keras.Model, images: np.ndarray) -> np.ndarray:
    """(N,) bool: True where familiarity is below the model's stored threshold."""
    return familiarity(model, images) < stats_for(model).threshold
