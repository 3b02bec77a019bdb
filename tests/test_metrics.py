"""Metrics against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from deepfake_detector.learning.metrics import binary_metrics, equal_error_rate


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


def test_bootstrap_interval_brackets_the_estimate_and_narrows_with_data() -> None:
    from deepfake_detector.learning.metrics import bootstrap_intervals, metrics_with_intervals

    rng = np.random.default_rng(1)
    y = np.repeat([0, 1], 40)
    p = np.clip(0.5 + (y - 0.5) * 0.3 + rng.normal(0, 0.25, len(y)), 0, 1)
    m = metrics_with_intervals(y, p, 0.5, n_resamples=300, seed=0)
    assert m["auc_low"] <= m["auc"] <= m["auc_high"]
    assert m["accuracy_low"] <= m["accuracy"] <= m["accuracy_high"]
    small = bootstrap_intervals(y[::8], p[::8], 0.5, n_resamples=300, seed=0)["auc"]
    assert small[1] - small[0] > m["auc_high"] - m["auc_low"]  # fewer items, wider interval
    assert bootstrap_intervals(y, p, 0.5, n_resamples=300, seed=0) == bootstrap_intervals(
        y, p, 0.5, n_resamples=300, seed=0
    )


def test_bootstrap_resamples_whole_units_not_rows() -> None:
    """Ten frames per video are one unit: intervals equal those of one row per video."""
    from deepfake_detector.learning.metrics import bootstrap_intervals

    rng = np.random.default_rng(2)
    y = np.repeat([0, 1], 6)
    p = np.clip(0.5 + (y - 0.5) * 0.4 + rng.normal(0, 0.3, len(y)), 0.01, 0.99)
    per_video = bootstrap_intervals(y, p, 0.5, n_resamples=200, seed=3)
    frames = bootstrap_intervals(
        np.repeat(y, 10),
        np.repeat(p, 10),
        0.5,
        np.repeat(np.arange(12), 10),
        n_resamples=200,
        seed=3,
    )
    assert frames["auc"] == pytest.approx(per_video["auc"])
    naive = bootstrap_intervals(np.repeat(y, 10), np.repeat(p, 10), 0.5, n_resamples=200, seed=3)
    width = lambda ci: ci[1] - ci[0]  # noqa: E731
    assert width(naive["auc"]) < width(frames["auc"])  # rows as if independent: too narrow


def test_bootstrap_without_both_classes_or_resamples_is_nan() -> None:
    from deepfake_detector.learning.metrics import bootstrap_intervals

    assert all(np.isnan(v).all() for v in bootstrap_intervals([1, 1], [0.2, 0.9], 0.5).values())
    no = bootstrap_intervals([0, 1], [0.2, 0.9], 0.5, n_resamples=0)
    assert all(np.isnan(v).all() for v in no.values())
    perfect = bootstrap_intervals([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9], 0.5, n_resamples=50)
    assert perfect["auc"] == (1.0, 1.0) and perfect["accuracy"] == (1.0, 1.0)


def test_eer_where_the_curve_jumps_across_the_diagonal() -> None:
    """Every real scored above 8 of 12 fakes: the ROC jumps from fpr 0 to 1 at fnr 1/3."""
    y = np.array([0] * 12 + [1] * 12)
    p = np.array([0.98] * 12 + [0.99] * 8 + [0.9] * 4)
    assert binary_metrics(y, p, 0.5)["auc"] == pytest.approx(2 / 3)
    assert equal_error_rate(y, p) == pytest.approx(1 / 3)


@pytest.mark.parametrize("seed", range(6))
def test_the_bootstraps_fast_scores_equal_scikit_learns(seed: int) -> None:
    from sklearn import metrics as skm

    from deepfake_detector.learning.metrics import _scores

    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 300))
    y = rng.integers(0, 2, n)
    y[:2] = [0, 1]
    # Coarse scores make many ties, which is where the definitions differ if they differ.
    p = np.round(rng.random(n) * (0.3 + y * 0.4), 1 + seed % 3)
    threshold = float(rng.random())
    pred = (p >= threshold).astype(int)
    assert _scores(y, p, threshold) == pytest.approx(
        {
            "auc": skm.roc_auc_score(y, p),
            "ap": skm.average_precision_score(y, p),
            "eer": equal_error_rate(y, p),
            "accuracy": skm.accuracy_score(y, pred),
            "balanced_accuracy": skm.balanced_accuracy_score(y, pred),
        },
        abs=1e-12,
    )
