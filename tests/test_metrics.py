"""Metrics and drift arithmetic on hand-checked numbers."""

from __future__ import annotations

import numpy as np
import pytest

from edgebert.core.metrics import classification_metrics, drift


def test_classification_metrics_by_hand():
    # true:  a a a b b c      pred: a a b b c c
    y_true, y_pred = [0, 0, 0, 1, 1, 2], [0, 0, 1, 1, 2, 2]
    m = classification_metrics(y_true, y_pred, ["a", "b", "c"])
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["confusion_matrix"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    # a: P=2/2 R=2/3; b: P=1/2 R=1/2; c: P=1/2 R=1/1
    assert m["per_class"]["a"] == {
        "precision": 1.0,
        "recall": pytest.approx(2 / 3),
        "f1": pytest.approx(0.8),
        "support": 3,
    }
    assert m["macro_precision"] == pytest.approx((1 + 0.5 + 0.5) / 3)
    assert m["macro_recall"] == pytest.approx((2 / 3 + 0.5 + 1) / 3)
    assert m["macro_f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)


def test_class_never_predicted_has_zero_precision_not_nan():
    m = classification_metrics([0, 1], [0, 0], ["a", "b"])
    assert m["per_class"]["b"]["precision"] == 0.0 and m["per_class"]["b"]["f1"] == 0.0


def test_drift_counts_flips_and_accuracy_drop():
    reference = np.array([[2.0, 0.0], [0.0, 2.0], [2.0, 1.0], [1.0, 3.0]])
    candidate = np.array([[2.1, 0.0], [0.0, 1.5], [0.9, 1.0], [1.0, 3.0]])  # row 2 flips a -> b
    d = drift(reference, candidate, [0, 1, 0, 1], ["a", "b"])
    assert d["flips"] == 1 and d["flipped_indices"] == [2]
    assert d["agreement"] == 0.75
    assert d["reference_accuracy"] == 1.0 and d["candidate_accuracy"] == 0.75
    assert d["accuracy_drop_points"] == pytest.approx(25.0)
    assert d["max_abs_logit_diff"] == pytest.approx(1.1)
    assert d["mean_abs_logit_diff"] == pytest.approx((0.1 + 0.5 + 1.1) / 8)


def test_drift_without_labels_reports_agreement_only():
    d = drift(np.eye(3), np.eye(3), None, ["a", "b", "c"])
    assert d["agreement"] == 1.0 and "reference_accuracy" not in d
