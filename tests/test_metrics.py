"""Metrics against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from deepfake_detector.metrics import binary_metrics, equal_error_rate


def test_perfect_and_inverted_scores() -> None:
    y = np.array([0, 0, 1, 1])
    good = binary_metrics(y, np.array([0.1, 0.2, 0.8, 0.9]), 0.5)
    assert (
        good["auc"] == 1.0 and good["ap"] == 1.0 and good["eer"] == 0.0 and good["accuracy"] == 1.0
    )
    assert good["confusion_matrix"] == {"tn": 2, "fp": 0, "fn": 0, "tp": 2}
    bad = binary_metrics(y, np.array([0.9, 0.8, 0.2, 0.1]), 0.5)
    assert bad["auc"] == 0.0 and bad["accuracy"] == 0.0


def test_log_loss_and_eer_by_hand() -> None:
    y = np.array([0, 1])
    m = binary_metrics(y, np.array([0.25, 0.5]), 0.5)
    assert m["log_loss"] == pytest.approx(-(math.log(0.75) + math.log(0.5)) / 2)
    # One real above one fake out of 3 each: EER is 1/3.
    y6 = np.array([0, 0, 0, 1, 1, 1])
    assert equal_error_rate(y6, np.array([0.1, 0.2, 0.7, 0.6, 0.8, 0.9])) == pytest.approx(1 / 3)


def test_one_class_gives_nan_not_a_crash() -> None:
    m = binary_metrics(np.array([1, 1]), np.array([0.7, 0.9]), 0.5)
    assert math.isnan(m["auc"]) and m["accuracy"] == 1.0
