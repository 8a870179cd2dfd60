"""Experiment helpers against independent references (scipy, hand-made cases)."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import signal, sparse

from cnnviz.experiments import (
    Experiment,
    ExperimentError,
    confusion_matrix,
    last_value,
    smooth_curve,
    split_validation,
    worst_examples,
)


@settings(max_examples=30, deadline=None)
@given(
    points=st.lists(st.floats(-10, 10), min_size=1, max_size=40),
    factor=st.floats(0, 0.99),
)
def test_smooth_curve_is_the_ema_filter(points, factor):
    # Reference: the same recursion as an IIR filter y[t] = f*y[t-1] + (1-f)*x[t], started at x[0].
    x = np.asarray(points)
    ref, _ = signal.lfilter([1 - factor], [1, -factor], x, zi=[factor * x[0]])
    np.testing.assert_allclose(smooth_curve(x, factor), ref, rtol=1e-9, atol=1e-9)


def test_smooth_curve_analytic_cases():
    np.testing.assert_allclose(smooth_curve([3.0] * 5), [3.0] * 5)
    # A step from 0 to 1 approaches 1 as 1 - 0.8^t.
    t = np.arange(6)
    np.testing.assert_allclose(smooth_curve(np.r_[0.0, np.ones(5)])[1:], 1 - 0.8 ** t[1:])
    np.testing.assert_allclose(smooth_curve([1.0, 5.0], factor=0.0), [1.0, 5.0])


def test_smooth_curve_carries_nans_without_spreading():
    out = smooth_curve([1.0, math.nan, 1.0])
    assert math.isnan(out[1]) and out[0] == 1.0 and out[2] == 1.0


@pytest.mark.parametrize("factor", [1.0, -0.1, True])
def test_smooth_curve_rejects_bad_factor(factor):
    with pytest.raises(ExperimentError, match="Expected factor"):
        smooth_curve([1.0], factor)


def test_confusion_matrix_matches_scipy_sparse():
    rng = np.random.default_rng(0)
    t = rng.integers(0, 7, 500)
    p = rng.integers(0, 7, 500)
    ref = sparse.coo_matrix((np.ones(500), (t, p)), shape=(7, 7)).toarray()
    cm = confusion_matrix(t, p, 7)
    np.testing.assert_array_equal(cm, ref)
    assert cm.dtype == np.int64 and cm.sum() == 500


def test_confusion_matrix_hand_case():
    cm = confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 0, 2], 3)
    np.testing.assert_array_equal(cm, [[1, 1, 0], [0, 1, 0], [1, 0, 2]])


def test_confusion_matrix_rejects_bad_labels():
    with pytest.raises(ExperimentError, match="Expected y_pred in"):
        confusion_matrix([0, 1], [0, 3], 3)
    with pytest.raises(ExperimentError, match="same length"):
        confusion_matrix([0, 1], [0], 3)


def test_worst_examples_hand_case():
    probs = np.array(
        [
            [0.9, 0.1, 0.0],  # true 0, right
            [0.7, 0.2, 0.1],  # true 1, wrong (p_true 0.2)
            [0.05, 0.05, 0.9],  # true 0, confidently wrong (p_true 0.05)
            [0.3, 0.4, 0.3],  # true 2, wrong (p_true 0.3)
        ]
    )
    w = worst_examples(probs, np.array([0, 1, 0, 2]), k=3)
    np.testing.assert_array_equal(w.index, [2, 1, 3])
    np.testing.assert_array_equal(w.true, [0, 1, 2])
    np.testing.assert_array_equal(w.predicted, [2, 0, 1])
    np.testing.assert_allclose(w.p_true, [0.05, 0.2, 0.3])
    np.testing.assert_allclose(w.p_predicted, [0.9, 0.7, 0.4])


def test_worst_examples_k_larger_than_n_and_shape_errors():
    w = worst_examples(np.eye(2), np.array([0, 1]), k=10)
    assert w.index.tolist() == [0, 1]
    with pytest.raises(ExperimentError, match="Expected probs"):
        worst_examples(np.eye(3), np.array([0, 1]))


def test_split_validation_partitions_the_data():
    x = np.arange(100)
    y = x % 10
    xt, yt, xv, yv = split_validation(x, y, 0.2, seed=1)
    assert len(xv) == 20 and len(xt) == 80
    assert sorted(np.r_[xt, xv].tolist()) == x.tolist()
    np.testing.assert_array_equal(yt, xt % 10)
    np.testing.assert_array_equal(yv, xv % 10)
    assert len(split_validation(x, y, 0.0)[2]) == 0
    with pytest.raises(ExperimentError, match="Expected fraction"):
        split_validation(x, y, 0.95)


def test_experiment_row_and_last_value():
    hist = {"accuracy": [0.5, 0.8], "val_accuracy": [0.4, math.nan]}
    assert last_value(hist, "accuracy") == 0.8
    assert last_value(hist, "val_accuracy") == 0.4
    assert last_value(hist, "test_accuracy") is None
    e = Experiment(1, "digits", "MNIST CNN", 93322, 3, 2, 64, "adam", 1e-3, 0.2, "none",
                   0.8, 0.4, None, 12.34, stopped=True)  # fmt: skip
    row = e.row()
    assert row["train acc"] == "80.0%" and row["test acc"] == "–"
    assert row["epochs"] == "2/3 (stopped)" and row["time (s)"] == 12.3
    assert e.to_dict()["params"] == 93322
