"""Detection metrics: AUC, AP, EER, log loss, accuracy, confusion matrix (scikit-learn)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from sklearn import metrics as skm

EPS = 1e-7


def equal_error_rate(y: np.ndarray, p: np.ndarray) -> float:
    """The rate where false-positive and false-negative rates meet (interpolated on the ROC)."""
    fpr, tpr, _ = skm.roc_curve(y, p)
    return _crossing(fpr, tpr)


def _crossing(fpr: np.ndarray, tpr: np.ndarray) -> float:
    """Where the ROC polyline crosses fnr == fpr (linear between its points)."""
    gap = (1 - tpr) - fpr  # fnr - fpr: falls from 1 to -1 along the curve
    i = int(np.argmax(gap <= 0))  # the first point at or past the crossing
    if i == 0:
        return float((fpr[0] + 1 - tpr[0]) / 2)
    # Linear interpolation between the two ROC points that bracket fnr == fpr.
    d0, d1 = gap[i - 1], gap[i]
    t = d0 / (d0 - d1) if d0 != d1 else 0.0
    return float(fpr[i - 1] + t * (fpr[i] - fpr[i - 1]))


def binary_metrics(y: np.ndarray, p: np.ndarray, threshold: float | np.ndarray) -> dict[str, Any]:
    """Every score for labels `y` (1 = fake) and probabilities `p` at one decision threshold."""
    y = np.asarray(y, dtype=int)
    p = np.clip(np.asarray(p, dtype=float), EPS, 1 - EPS)
    pred = (p >= threshold).astype(int)
    both = len(np.unique(y)) == 2
    tn, fp, fn, tp = skm.confusion_matrix(y, pred, labels=[0, 1]).ravel()
    return {
        "n": len(y),
        "n_fake": int(y.sum()),
        "auc": float(skm.roc_auc_score(y, p)) if both else math.nan,
        "ap": float(skm.average_precision_score(y, p)) if both else math.nan,
        "eer": equal_error_rate(y, p) if both else math.nan,
        "log_loss": float(skm.log_loss(y, p, labels=[0, 1])),
        "accuracy": float(skm.accuracy_score(y, pred)),
        "balanced_accuracy": float(skm.balanced_accuracy_score(y, pred)) if both else math.nan,
        "threshold": threshold if np.isscalar(threshold) else math.nan,
        "confusion_matrix": {"tn": int(tn), "fp": int(fp), "fn": int(fn), "tp": int(tp)},
    }


def curves(y: np.ndarray, p: np.ndarray) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """ROC (fpr, tpr) and precision-recall (recall, precision) points."""
    fpr, tpr, _ = skm.roc_curve(y, p)
    precision, recall, _ = skm.precision_recall_curve(y, p)
    return (
        {"fpr": fpr.round(6).tolist(), "tpr": tpr.round(6).tolist()},
        {"recall": recall.round(6).tolist(), "precision": precision.round(6).tolist()},
    )


RANKED = ("auc", "ap", "eer")
AT_THRESHOLD = ("accuracy", "balanced_accuracy")


def _scores(y: np.ndarray, p: np.ndarray, threshold: float | np.ndarray) -> dict[str, float]:
    """The bootstrap's scores of one resample, from one sort (scikit-learn's definitions, which
    `tests/test_metrics.py` holds them to; its functions cost milliseconds a call, which a
    thousand resamples of every level turn into most of an evaluation)."""
    order = np.argsort(-p, kind="stable")
    ranked, hits = p[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(ranked)), len(ranked) - 1]  # end of each distinct score
    tps = np.cumsum(hits)[last].astype(float)
    fps = last + 1 - tps
    tpr, fpr = np.r_[0.0, tps / tps[-1]], np.r_[0.0, fps / fps[-1]]
    precision = tps / (tps + fps)
    pred = p >= threshold
    positive = y == 1
    return {
        "auc": float(np.trapezoid(tpr, fpr)),
        "ap": float(np.sum(np.diff(tpr) * precision)),
        "eer": _crossing(fpr, tpr),
        "accuracy": float(np.mean(pred == positive)),
        "balanced_accuracy": float((np.mean(pred[positive]) + np.mean(~pred[~positive])) / 2),
    }


def bootstrap_intervals(
    y: np.ndarray,
    p: np.ndarray,
    threshold: float | np.ndarray,
    units: np.ndarray | None = None,
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap intervals of AUC, AP, EER and accuracies.

    Resamples whole `units` (for frame-level scores: the video of each frame, since frames of
    one video are not independent), stratified by label so every resample holds both classes.
    Returns NaN bounds when there is one class only or `n_resamples` is 0. `threshold` may
    be one number or one per item (pooled scores of several calibrated models).
    """
    y = np.asarray(y, dtype=int)
    p = np.clip(np.asarray(p, dtype=float), EPS, 1 - EPS)
    units = np.arange(len(y)) if units is None else np.asarray(units)
    nan = {name: (math.nan, math.nan) for name in RANKED + AT_THRESHOLD}
    if n_resamples <= 0 or len(np.unique(y)) < 2:
        return nan
    unique, inverse = np.unique(units, return_inverse=True)
    members = [np.flatnonzero(inverse == u) for u in range(len(unique))]
    unit_label = np.array([y[m].max() for m in members])
    strata = [np.flatnonzero(unit_label == c) for c in (0, 1)]
    if any(len(s) == 0 for s in strata):
        return nan  # one class only at the unit level
    rng = np.random.default_rng(seed)
    samples: dict[str, list[float]] = {name: [] for name in nan}
    for _ in range(n_resamples):
        picked = np.concatenate([rng.choice(s, size=len(s), replace=True) for s in strata])
        rows = np.concatenate([members[u] for u in picked])
        if len(np.unique(y[rows])) < 2:
            continue
        cut = threshold[rows] if isinstance(threshold, np.ndarray) else threshold
        for name, value in _scores(y[rows], p[rows], cut).items():
            samples[name].append(value)
    alpha = (1 - confidence) / 2
    return {
        name: (float(np.quantile(v, alpha)), float(np.quantile(v, 1 - alpha)))
        if v
        else (math.nan, math.nan)
        for name, v in samples.items()
    }


def metrics_with_intervals(
    y: np.ndarray,
    p: np.ndarray,
    threshold: float | np.ndarray,
    units: np.ndarray | None = None,
    *,
    n_resamples: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """`binary_metrics` plus `<name>_low` / `<name>_high` 95% bootstrap bounds."""
    out = binary_metrics(y, p, threshold)
    for name, (low, high) in bootstrap_intervals(
        y, p, threshold, units, n_resamples=n_resamples, seed=seed
    ).items():
        out[f"{name}_low"], out[f"{name}_high"] = low, high
    return out


ECE_BINS = 15  # equal-width bins of P(fake) for the calibration error and reliability diagram


def reliability_bins(y: np.ndarray, p: np.ndarray, bins: int = ECE_BINS) -> list[dict[str, float]]:
    """The reliability diagram: per non-empty equal-width bin of P(fake), its range, how many
    items, their mean P(fake) (`predicted`) and the share of them that is fake (`observed`)."""
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    which = np.minimum((p * bins).astype(int), bins - 1)
    rows = []
    for b in range(bins):
        mine = which == b
        if mine.any():
            rows.append(
                {
                    "lower": b / bins,
                    "upper": (b + 1) / bins,
                    "n": int(mine.sum()),
                    "predicted": float(p[mine].mean()),
                    "observed": float(y[mine].mean()),
                }
            )
    return rows


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE: the gap between mean P(fake) and the share of fakes in each bin, weighted by the
    bin's share of items (Guo et al., 2017; `bins` equal-width bins)."""
    rows = reliability_bins(y, p, bins)
    total = sum(r["n"] for r in rows)
    if not total:
        return math.nan
    return float(sum(r["n"] / total * abs(r["observed"] - r["predicted"]) for r in rows))


def rates_at(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float | int]:
    """At one threshold: the share of real items called fake (`fpr`) and of fakes caught
    (`tpr`); NaN where there is no item of that label."""
    y = np.asarray(y, dtype=int)
    called = np.asarray(p, dtype=float) >= threshold
    reals, fakes = called[y == 0], called[y == 1]
    return {
        "n_real": int(len(reals)),
        "fpr": float(reals.mean()) if len(reals) else math.nan,
        "tpr": float(fakes.mean()) if len(fakes) else math.nan,
    }
