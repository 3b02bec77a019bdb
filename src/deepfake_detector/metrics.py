"""Detection metrics: AUC, AP, EER, log loss, accuracy, confusion matrix (scikit-learn)."""

from __future__ import annotations

import math

import numpy as np
from sklearn import metrics as skm

EPS = 1e-7


def equal_error_rate(y: np.ndarray, p: np.ndarray) -> float:
    """The rate where false-positive and false-negative rates meet (interpolated on the ROC)."""
    fpr, tpr, _ = skm.roc_curve(y, p)
    fnr = 1 - tpr
    i = int(np.nanargmin(np.abs(fnr - fpr)))
    if i == 0:
        return float((fpr[0] + fnr[0]) / 2)
    # Linear interpolation between the two ROC points that bracket fnr == fpr.
    d0, d1 = fnr[i - 1] - fpr[i - 1], fnr[i] - fpr[i]
    t = d0 / (d0 - d1) if d0 != d1 else 0.0
    return float(fpr[i - 1] + t * (fpr[i] - fpr[i - 1]))


def binary_metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float | int | list]:
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
        "threshold": threshold,
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
