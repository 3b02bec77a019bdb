"""Calibration and threshold fitted on validation scores."""

from __future__ import annotations

import numpy as np

from deepfake_detector.learning.calibration import Calibration, fit_calibration


def test_platt_scaling_is_monotone_and_fixes_overconfidence() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    # Over-confident scores: right 75% of the time but always near 0 or 1.
    right = rng.random(400) < 0.75
    p = np.where(right == y.astype(bool), 0.98, 0.02)
    cal = fit_calibration(y, p)
    out = cal.apply(np.array([0.02, 0.5, 0.98]))
    assert out[0] < out[1] < out[2]
    assert 0.15 < out[0] < 0.35 and 0.65 < out[2] < 0.85  # close to the 25% / 75% truth
    assert 0 < cal.threshold < 1 and cal.fitted_on == 400


def test_one_class_keeps_scores_and_uses_the_given_threshold() -> None:
    cal = fit_calibration(np.ones(10), np.linspace(0.1, 0.9, 10), threshold=0.7)
    assert (cal.a, cal.b, cal.threshold) == (1.0, 0.0, 0.7)
    np.testing.assert_allclose(Calibration().apply(np.array([0.2, 0.8])), [0.2, 0.8], atol=1e-9)


def test_validation_that_ranks_reals_higher_never_inverts_the_scores() -> None:
    y = np.array([0, 0, 0, 1, 1, 1])
    p = np.array([0.8, 0.7, 0.9, 0.2, 0.3, 0.1])  # a model that is wrong on validation data
    cal = fit_calibration(y, p)
    assert (cal.a, cal.b) == (1.0, 0.0) and cal.fitted_on == 6
    later = np.array([0.1, 0.5, 0.9])
    assert np.all(np.diff(cal.apply(later)) > 0)  # order kept
