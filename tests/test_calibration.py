"""Calibration and threshold fitted on validation scores."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from deepfake_detector.learning.calibration import (
    CONSTANT,
    FEW,
    IDENTITY,
    INVERTED,
    PLATT,
    SEPARATED,
    Calibration,
    fit_calibration,
)

TRUE_A, TRUE_B = 2.0, -0.5  # the logistic model the synthetic scores are drawn from


def draw(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Labels and network scores with P(fake | p) = sigmoid(TRUE_A * logit(p) + TRUE_B)."""
    z = rng.normal(0.0, 1.5, n)
    p = 1.0 / (1.0 + np.exp(-z))
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-(TRUE_A * z + TRUE_B)))).astype(int)
    return y, p


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
    assert (cal.a, cal.b, cal.threshold) == (1.0, 0.0, 0.7) and cal.method == FEW
    np.testing.assert_allclose(Calibration().apply(np.array([0.2, 0.8])), [0.2, 0.8], atol=1e-9)


def test_validation_that_ranks_reals_higher_never_inverts_the_scores() -> None:
    y = np.array([0, 0, 0, 1, 1, 1])
    p = np.array([0.8, 0.7, 0.9, 0.2, 0.3, 0.1])  # a model that is wrong on validation data
    cal = fit_calibration(y, p)
    assert (cal.a, cal.b) == (1.0, 0.0) and cal.fitted_on == 6 and cal.method == INVERTED
    later = np.array([0.1, 0.5, 0.9])
    assert np.all(np.diff(cal.apply(later)) > 0)  # order kept


def test_platt_recovers_the_true_logistic_model_on_a_large_sample() -> None:
    y, p = draw(20_000, np.random.default_rng(0))
    cal = fit_calibration(y, p)
    assert cal.method == PLATT and cal.fitted_on == 20_000
    assert cal.a == pytest.approx(TRUE_A, abs=0.08) and cal.b == pytest.approx(TRUE_B, abs=0.08)


def test_the_fit_has_no_penalty_it_solves_the_likelihood_equations() -> None:
    """At the unpenalised maximum both score equations are 0; an L2 penalty (scikit-learn's
    default C=1.0) leaves the slope's at a / C instead."""
    from sklearn.linear_model import LogisticRegression

    from deepfake_detector.learning.calibration import logit

    y, p = draw(40, np.random.default_rng(1))
    z = logit(p)

    def gradient(a: float, b: float) -> np.ndarray:
        r = y - 1.0 / (1.0 + np.exp(-(a * z + b)))
        return np.array([np.sum(r * z), np.sum(r)])

    cal = fit_calibration(y, p)
    assert cal.method == PLATT
    np.testing.assert_allclose(gradient(cal.a, cal.b), 0.0, atol=1e-6)
    default = LogisticRegression().fit(z[:, None], y)
    a, b = float(default.coef_[0, 0]), float(default.intercept_[0])
    assert gradient(a, b)[0] == pytest.approx(a, rel=1e-2)  # the penalty's pull
    assert a < cal.a  # shrunk


def test_small_validation_sets_are_not_shrunk_towards_a_flat_mapping() -> None:
    """Over 200 validation sets of 40 scores, the median fitted slope is near the true one;
    the penalised default's is a quarter lower (what Platt scaling did before)."""
    from sklearn.linear_model import LogisticRegression

    from deepfake_detector.learning.calibration import logit

    rng = np.random.default_rng(2)
    ours, penalised = [], []
    for _ in range(200):
        y, p = draw(40, rng)
        cal = fit_calibration(y, p)
        if cal.method != PLATT:  # a rare separated draw: no slope to compare
            continue
        ours.append(cal.a)
        penalised.append(float(LogisticRegression().fit(logit(p)[:, None], y).coef_[0, 0]))
    assert len(ours) >= 190
    assert 0.9 * TRUE_A < np.median(ours) < 1.2 * TRUE_A
    assert np.median(penalised) < 0.85 * TRUE_A


@pytest.mark.parametrize(
    "p",
    [
        np.array([0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9]),  # complete separation
        np.array([0.1, 0.2, 0.3, 0.5, 0.5, 0.7, 0.8, 0.9]),  # quasi-complete: a tie at 0.5
        np.array([0.001, 0.002, 0.003, 0.004, 1.0, 1.0, 1.0, 1.0]),  # saturated network
    ],
)
def test_separated_scores_give_a_finite_monotone_mapping_and_say_so(p: np.ndarray) -> None:
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no convergence or overflow warning either
        cal = fit_calibration(y, p)
    assert cal.method == SEPARATED and cal.fitted_on == 8
    assert (cal.a, cal.b) == (1.0, 0.0)  # the scores as they are: any finite slope is arbitrary
    out = cal.apply(np.linspace(0.0, 1.0, 101))
    assert np.isfinite(out).all() and np.all(np.diff(out) >= 0)
    assert 0 < cal.threshold < 1
    right = (cal.apply(p) >= cal.threshold) == y.astype(bool)
    assert right.sum() >= 7  # the split is kept (bar the tie)


def test_all_equal_scores_are_left_alone() -> None:
    cal = fit_calibration(np.array([0, 1, 0, 1, 0]), np.full(5, 0.4))
    assert cal.method == CONSTANT and (cal.a, cal.b) == (1.0, 0.0)


def test_the_record_says_how_it_was_made_and_old_records_read_sensibly() -> None:
    y, p = draw(500, np.random.default_rng(3))
    record = fit_calibration(y, p).to_dict()
    assert record["method"] == PLATT
    assert set(record) == {"a", "b", "threshold", "fitted_on", "method"}
    assert Calibration(**record) == fit_calibration(y, p)
    # Written before `method` existed: a fitted mapping is Platt's, the default is identity.
    assert Calibration(a=1.7, b=0.2, threshold=0.4, fitted_on=90).method == PLATT
    assert Calibration(threshold=0.4).method == IDENTITY
