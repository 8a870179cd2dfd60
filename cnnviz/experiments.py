"""Experiments: what a training run used and reached, and the numbers to judge it by.

Seed 001 compares a CIFAR-10 baseline with batch normalisation, dropout and augmentation in
one table ("Baseline ~70%, Batch norm ~74%, Batch norm+dropout ~78%, ... + data augmentation
~76%"); `Experiment` is one row of such a table. Seed 003 smooths noisy learning curves with a
running average (`smooth_curve`). After training, a confusion matrix and the worst-classified
examples show *which* mistakes the network makes. `load_data` gives every data set the Train
page offers in one form.

No TensorFlow (except `keras.datasets` inside `load_data` for the online sets), no Streamlit.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import numpy as np

from cnnviz import datasets

__all__ = [
    "DATASETS",
    "LabData",
    "load_data",
    "ExperimentError",
    "Experiment",
    "Worst",
    "smooth_curve",
    "confusion_matrix",
    "worst_examples",
    "split_validation",
    "last_value",
]


#: Data sets of the Train page: name -> (title, generated offline?).
DATASETS: dict[str, tuple[str, bool]] = {
    "digits": ("Digits (generated, MNIST-style, 28×28)", True),
    "shapes": ("Shapes (generated, 8 classes, 64×64 colour)", True),
    "mnist": ("MNIST (keras.datasets, needs a network)", False),
    "fashion_mnist": ("Fashion-MNIST (keras.datasets, needs a network)", False),
    "cifar10": ("CIFAR-10 (keras.datasets, needs a network)", False),
}
# The test set of generated data uses seed + this offset, far from the training seed
# (the same offset as the built-in models' held-out data in cnnviz.train).
TEST_SEED_OFFSET = 10_000


class ExperimentError(ValueError):
    """Invalid inputs for an experiment helper; the message says what was expected."""


class LabData(NamedTuple):
    """One data set, ready to train on: images uint8 (N, H, W, C), labels int64 (N,)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: list[str]


def load_data(name: str, n_train: int, n_test: int, seed: int = 0) -> LabData:
    """`n_train` training and `n_test` test examples of a Train-page data set.

    Generated sets draw the test examples with another seed (`seed + 10000`), so they are
    fresh pictures. keras.datasets sets take a seeded random subset of their training split
    and the first `n_test` pictures of their test split.

    Args:
        name: a key of `DATASETS`.
        n_train: training examples (the validation split is taken from these later).
        n_test: test examples.
        seed: seed of the generator or of the subset.

    Returns:
        A `LabData`; gray images get a channel axis (N, 28, 28, 1).

    Raises:
        ExperimentError: unknown name or bad sizes.
        cnnviz.datasets.DatasetUnavailable: a keras.datasets download failed (offline).
    """
    if name not in DATASETS:
        raise ExperimentError(f"Expected a data set in {list(DATASETS)}. Received {name!r}.")
    for arg, v in (("n_train", n_train), ("n_test", n_test)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
            raise ExperimentError(f"Expected {arg} to be a positive integer. Received {v!r}.")
    if name in ("digits", "shapes"):
        # Generated offline: a fresh seed for the test pictures.
        gen = getattr(datasets, name)
        x, y = gen(int(n_train), seed=seed)[:2]
        xt, yt = gen(int(n_test), seed=seed + TEST_SEED_OFFSET)[:2]
        classes = datasets.DIGIT_CLASSES if name == "digits" else datasets.SHAPE_CLASSES
    else:
        # keras.datasets (raises DatasetUnavailable offline): a seeded subset of the train split.
        ds = datasets.load_keras_dataset(name)
        pick = np.random.default_rng(seed).permutation(len(ds.x_train))[: int(n_train)]
        x, y = ds.x_train[pick], ds.y_train[pick]
        xt, yt = ds.x_test[: int(n_test)], ds.y_test[: int(n_test)]
        classes = ds.classes
    if x.ndim == 3:
        x, xt = x[..., None], xt[..., None]
    return LabData(x, y.astype(np.int64), xt, yt.astype(np.int64), list(classes))


@dataclass(frozen=True)
class Experiment:
    """One training run's settings and results: a row of the session's experiment table.

    Accuracies are fractions in [0, 1], or None when not measured (no validation split, or a
    run stopped before its first epoch ended).
    """

    run: int
    dataset: str
    architecture: str
    params: int
    epochs: int
    epochs_done: int
    batch_size: int
    optimizer: str
    learning_rate: float
    validation_split: float
    augmentation: str
    train_accuracy: float | None
    val_accuracy: float | None
    test_accuracy: float | None
    seconds: float
    stopped: bool = False

    def row(self) -> dict[str, Any]:
        """The record as a table row with readable column names and percentages."""

        def pct(v: float | None) -> str:
            return "–" if v is None or not math.isfinite(v) else f"{100 * v:.1f}%"

        return {
            "run": self.run,
            "dataset": self.dataset,
            "architecture": self.architecture,
            "parameters": self.params,
            "epochs": f"{self.epochs_done}/{self.epochs}" + (" (stopped)" if self.stopped else ""),
            "batch": self.batch_size,
            "optimiser": f"{self.optimizer} lr={self.learning_rate:g}",
            "validation split": self.validation_split,
            "augmentation": self.augmentation,
            "train acc": pct(self.train_accuracy),
            "val acc": pct(self.val_accuracy),
            "test acc": pct(self.test_accuracy),
            "time (s)": round(self.seconds, 1),
        }

    def to_dict(self) -> dict[str, Any]:
        """All fields as a plain dict (for a CSV download)."""
        return asdict(self)


@dataclass(frozen=True)
class Worst:
    """The worst-classified examples, worst first.

    Attributes:
        index: (k,) int64 rows of the evaluated set.
        true: (k,) int64 true classes.
        predicted: (k,) int64 predicted classes (argmax).
        p_true: (k,) float64 probability the model gave the true class.
        p_predicted: (k,) float64 probability of the predicted class.
    """

    index: np.ndarray
    true: np.ndarray
    predicted: np.ndarray
    p_true: np.ndarray
    p_predicted: np.ndarray


def smooth_curve(points: np.ndarray | list[float], factor: float = 0.8) -> np.ndarray:
    """Seed 003's running average: each point is `factor` × the previous smoothed point plus
    `(1 - factor)` × itself; the first point is kept as is (Chollet, *Deep Learning with
    Python*, 5.3, `smooth_curve`).

    Args:
        points: (T,) values, e.g. validation accuracy per epoch. NaNs are carried through
            without spreading: a NaN point gives NaN and the average goes on from the last
            finite value.
        factor: weight of the past, in [0, 1); 0 returns the points unchanged.

    Returns:
        (T,) float64 smoothed values.

    Raises:
        ExperimentError: factor out of range or points not 1-D.
    """
    if isinstance(factor, bool) or not isinstance(factor, int | float) or not 0 <= factor < 1:
        raise ExperimentError(f"Expected factor in [0, 1). Received factor={factor!r}.")
    x = np.asarray(points, dtype=np.float64)
    if x.ndim != 1:
        raise ExperimentError(f"Expected a 1-D sequence of points. Received shape {x.shape}.")
    out = np.empty_like(x)
    previous = None
    for i, point in enumerate(x):
        # Keep NaNs (a missing epoch) visible, without poisoning the average after them.
        if not math.isfinite(point):
            out[i] = point
            continue
        # Exponential running average: the past decays by `factor` each step.
        previous = point if previous is None else previous * factor + point * (1 - factor)
        out[i] = previous
    return out


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Count how often class i (row) was predicted as class j (column).

    Args:
        y_true: (N,) integer true classes in [0, n_classes).
        y_pred: (N,) integer predicted classes in [0, n_classes).
        n_classes: K.

    Returns:
        (K, K) int64 counts; the diagonal holds the correct predictions, rows sum to the
        number of examples of each true class.

    Raises:
        ExperimentError: shapes differ or a label is out of range.
    """
    t = np.asarray(y_true).reshape(-1)
    p = np.asarray(y_pred).reshape(-1)
    if t.shape != p.shape:
        raise ExperimentError(
            f"Expected y_true and y_pred of the same length. Received {t.size} and {p.size}."
        )
    if n_classes < 1:
        raise ExperimentError(f"Expected n_classes >= 1. Received n_classes={n_classes}.")
    for name, v in (("y_true", t), ("y_pred", p)):
        if v.size and (v.min() < 0 or v.max() >= n_classes):
            raise ExperimentError(
                f"Expected {name} in [0, {n_classes}). Received values from {v.min()} to {v.max()}."
            )
    # One bincount over the flattened (true, predicted) cell index.
    cells = t.astype(np.int64) * n_classes + p.astype(np.int64)
    return np.bincount(cells, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def worst_examples(probs: np.ndarray, y_true: np.ndarray, k: int = 16) -> Worst:
    """The `k` examples whose true class got the lowest probability: the confident mistakes.

    Args:
        probs: (N, K) class probabilities.
        y_true: (N,) integer true classes.
        k: how many to return (fewer when N < k).

    Returns:
        A `Worst`, sorted by `p_true`, lowest first (ties keep the original order).

    Raises:
        ExperimentError: shapes do not match.
    """
    p = np.asarray(probs, dtype=np.float64)
    t = np.asarray(y_true).reshape(-1).astype(np.int64)
    if p.ndim != 2 or p.shape[0] != t.size:
        raise ExperimentError(
            f"Expected probs of shape (N, K) with N = len(y_true) = {t.size}. Received {p.shape}."
        )
    if t.size and (t.min() < 0 or t.max() >= p.shape[1]):
        raise ExperimentError(
            f"Expected y_true in [0, {p.shape[1]}). Received values from {t.min()} to {t.max()}."
        )
    # Probability of the right answer per example; the lowest ones are the worst.
    p_true = p[np.arange(t.size), t]
    order = np.argsort(p_true, kind="stable")[: max(0, int(k))]
    predicted = p.argmax(axis=1)
    return Worst(
        index=order.astype(np.int64),
        true=t[order],
        predicted=predicted[order].astype(np.int64),
        p_true=p_true[order],
        p_predicted=p[order, predicted[order]],
    )


def split_validation(
    x: np.ndarray, y: np.ndarray, fraction: float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Shuffle and hold out `fraction` of the examples for validation.

    Args:
        x: (N, ...) examples.
        y: (N,) labels.
        fraction: share of examples held out, in [0, 0.9]; 0 gives an empty validation set.
        seed: seed of the shuffle.

    Returns:
        x_train, y_train, x_val, y_val (validation first in the shuffled order).

    Raises:
        ExperimentError: fraction out of range or lengths differ.
    """
    if not 0 <= fraction <= 0.9:
        raise ExperimentError(f"Expected fraction in [0, 0.9]. Received fraction={fraction!r}.")
    if len(x) != len(y):
        raise ExperimentError(
            f"Expected as many labels as examples. Received {len(x)} and {len(y)}."
        )
    order = np.random.default_rng(seed).permutation(len(x))
    n_val = int(round(fraction * len(x)))
    val, train = order[:n_val], order[n_val:]
    return x[train], y[train], x[val], y[val]


def last_value(history: dict[str, list[float]], key: str) -> float | None:
    """The last finite value recorded under `key` in a Keras-style history, else None."""
    for v in reversed(history.get(key, [])):
        if v is not None and math.isfinite(float(v)):
            return float(v)
    return None
