"""Calibration of P(fake) and the decision threshold, both fitted on the validation split."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np

EPS = 1e-6
log = logging.getLogger(__name__)


def logit(p: np.ndarray) -> np.ndarray:
    """log(p / (1 - p)), clipped away from 0 and 1."""
    p = np.clip(np.asarray(p, dtype=float), EPS, 1 - EPS)
    return np.log(p / (1 - p))


@dataclass(frozen=True)
class Calibration:
    """Platt scaling of the network's P(fake), and the threshold that decides `fake`."""

    a: float = 1.0
    b: float = 0.0
    threshold: float = 0.5
    fitted_on: int = 0

    def apply(self, p: np.ndarray) -> np.ndarray:
        """Calibrated P(fake)."""
        return 1.0 / (1.0 + np.exp(-(self.a * logit(p) + self.b)))

    def to_dict(self) -> dict[str, float | int]:
        """JSON-ready view."""
        return asdict(self)


def fit_calibration(y: np.ndarray, p: np.ndarray, threshold: float | None = None) -> Calibration:
    """Platt scaling on validation scores; threshold by Youden's J unless one is given.

    With one class only (or too little data) the scores stay as they are and the threshold
    falls back to `threshold` or 0.5: a calibration fitted on nothing would be a guess. When the
    validation scores rank reals above fakes, Platt scaling would fit a negative slope and turn
    every later ranking upside down: the scores then stay as they are too.
    """
    from sklearn.linear_model import LogisticRegression  # fitting only: verdicts need numpy
    from sklearn.metrics import roc_curve

    y = np.asarray(y, dtype=int)
    if len(np.unique(y)) < 2 or len(y) < 4:
        return Calibration(threshold=0.5 if threshold is None else threshold, fitted_on=len(y))
    model = LogisticRegression(C=1.0).fit(logit(p)[:, None], y)
    cal = Calibration(float(model.coef_[0, 0]), float(model.intercept_[0]), fitted_on=len(y))
    if cal.a <= 0:
        log.warning(
            "calibration: validation scores rank reals above fakes (Platt slope %.3f); "
            "scores left uncalibrated",
            cal.a,
        )
        cal = Calibration(fitted_on=len(y))
    if threshold is None:
        fpr, tpr, cuts = roc_curve(y, cal.apply(p))
        best = int(np.argmax(tpr - fpr))
        threshold = float(np.clip(cuts[best], EPS, 1 - EPS))
    return Calibration(cal.a, cal.b, threshold, len(y))
