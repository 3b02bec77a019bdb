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
    fpr_curve,
)
from deepfake_detector.learning.metrics import (
    expected_calibration_error,
    rates_at,
    reliability_bins,
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
    assert set(record) == {
        "a",
        "b",
        "threshold",
        "fitted_on",
        "method",
        "target_fpr",
        "fpr_curve",
    }
    assert Calibration(**record) == fit_calibration(y, p)
    # Written before `method` existed: a fitted mapping is Platt's, the default is identity.
    assert Calibration(a=1.7, b=0.2, threshold=0.4, fitted_on=90).method == PLATT
    assert Calibration(threshold=0.4).method == IDENTITY


def test_the_threshold_at_a_target_rate_calls_that_share_of_real_faces_fake() -> None:
    rng = np.random.default_rng(7)
    # Two datasets of very different size and score level: each is weighted alike.
    y_a, p_a = draw(4000, rng)
    y_b, p_b = draw(400, rng)
    p_b = np.clip(p_b * 1.3, 0, 0.999)  # the small set's reals look more fake
    y, p = np.r_[y_a, y_b], np.r_[p_a, p_b]
    groups = np.r_[np.full(len(y_a), "a"), np.full(len(y_b), "b")]
    cal = fit_calibration(y, p, target_fpr=0.05, groups=groups)
    assert cal.target_fpr == 0.05 and cal.operating_point == {
        "threshold": cal.threshold,
        "target_fpr": 0.05,
    }
    scored = cal.apply(p)
    per_set = [np.mean(scored[(groups == g) & (y == 0)] >= cal.threshold) for g in ("a", "b")]
    # On the validation reals the mean rate is the target, up to one face of the smaller set.
    reals_b = int(((groups == "b") & (y == 0)).sum())
    assert 0.05 - 1 / reals_b <= np.mean(per_set) <= 0.05
    # Weighted alike: the small set's higher rate is not drowned by the large one.
    assert per_set[1] > per_set[0]
    # Fresh reals from the same sources: the rate holds within sampling error.
    y_new, p_new = draw(20000, rng)
    fresh = np.mean(cal.apply(p_new[y_new == 0]) >= cal.threshold)
    assert abs(fresh - per_set[0]) < 0.01
    # Another operating point, read off the stored curve without the data: the same threshold
    # as fitting for that rate directly.
    assert cal.at_fpr(0.01).threshold == pytest.approx(
        fit_calibration(y, p, target_fpr=0.01, groups=groups).threshold
    )
    assert cal.at_fpr(0.01).threshold > cal.threshold > cal.at_fpr(0.2).threshold
    assert Calibration(**cal.to_dict()).at_fpr(0.01) == cal.at_fpr(0.01)  # JSON round trip
    with pytest.raises(ValueError, match="no validation false-positive curve"):
        Calibration(threshold=0.5).at_fpr(0.01)


def test_the_false_positive_curve_weighs_each_group_alike() -> None:
    cuts, rates = fpr_curve(np.array([0.1, 0.2, 0.3, 0.4, 0.9]), np.array([*"aaaa", "b"]))
    assert cuts.tolist()[:5] == [0.1, 0.2, 0.3, 0.4, 0.9] and rates[-1] == 0
    # At 0.2: three of a's four (0.75) and b's one (1.0) -> 0.875; above 0.4: only b -> 0.5.
    assert rates[1] == pytest.approx(0.875) and rates[4] == pytest.approx(0.5)


def test_expected_calibration_error_by_hand() -> None:
    y = np.array([0, 0, 1, 1, 1, 0, 1, 1])
    p = np.array([0.05, 0.05, 0.05, 0.05, 0.95, 0.95, 0.95, 0.95])
    # Two bins of four: mean P 0.05 with half fakes (gap 0.45), mean P 0.95 with 3/4 fakes
    # (gap 0.2): ECE = 0.5 * 0.45 + 0.5 * 0.2.
    assert expected_calibration_error(y, p) == pytest.approx(0.325)
    bins = reliability_bins(y, p)
    assert [(b["n"], b["observed"]) for b in bins] == [(4, 0.5), (4, 0.75)]
    assert bins[0]["lower"] == 0 and bins[-1]["upper"] == 1
    assert rates_at(y, p, 0.5) == {"n_real": 3, "fpr": pytest.approx(1 / 3), "tpr": 0.6}
