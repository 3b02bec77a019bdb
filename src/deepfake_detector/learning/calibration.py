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


# How a calibration came to be, as recorded with the model (`Calibration.method`).
PLATT = "platt"  # unpenalised maximum-likelihood Platt scaling
IDENTITY = "identity"  # scores left as the network gives them
FEW = "identity: fewer than 4 validation scores or one class only"
SEPARATED = "identity: the validation scores separate the classes (no finite unpenalised fit)"
INVERTED = "identity: the validation scores rank reals above fakes (Platt slope <= 0)"
CONSTANT = "identity: the validation scores are all equal"


@dataclass(frozen=True)
class Calibration:
    """Platt scaling of the network's P(fake), and the threshold that decides `fake`.

    `method` says how `a` and `b` were obtained (`PLATT`, or `IDENTITY` and why); a record
    without one (older models, `Calibration()`) is read as Platt when it maps scores, else as
    identity.
    """

    a: float = 1.0
    b: float = 0.0
    threshold: float = 0.5
    fitted_on: int = 0
    method: str = ""

    def __post_init__(self) -> None:
        if not self.method:
            same = self.a == 1.0 and self.b == 0.0
            object.__setattr__(self, "method", IDENTITY if same else PLATT)

    def apply(self, p: np.ndarray) -> np.ndarray:
        """Calibrated P(fake)."""
        return 1.0 / (1.0 + np.exp(-(self.a * logit(p) + self.b)))

    def to_dict(self) -> dict[str, float | int | str]:
        """JSON-ready view."""
        return asdict(self)


def separation(y: np.ndarray, z: np.ndarray) -> int:
    """1 when every fake scores at or above every real, -1 when every real scores at or above
    every fake, else 0. Where it is not 0 (complete or quasi-complete separation) the
    unpenalised logistic likelihood has no maximum: its slope grows without bound."""
    fakes, reals = z[y == 1], z[y == 0]
    if fakes.min() >= reals.max():
        return 1
    return -1 if reals.min() >= fakes.max() else 0


def platt(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """Slope and intercept of P(fake | logit p) by unpenalised maximum likelihood.

    scikit-learn's `LogisticRegression` adds an L2 penalty by default (C=1.0), which shrinks
    the slope towards 0 on a small validation split and makes the calibrated scores too timid;
    `C=np.inf` fits without a penalty (`penalty=None` is deprecated since scikit-learn 1.8). The
    caller rules out separated scores first, where this fit would not converge.
    """
    from sklearn.linear_model import LogisticRegression  # fitting only: verdicts need numpy

    model = LogisticRegression(C=np.inf, solver="newton-cholesky", tol=1e-8, max_iter=100)
    model.fit(logit(p)[:, None], y)
    return float(model.coef_[0, 0]), float(model.intercept_[0])


def fit_calibration(y: np.ndarray, p: np.ndarray, threshold: float | None = None) -> Calibration:
    """Platt scaling on validation scores; threshold by Youden's J unless one is given.

    The fit has no penalty (`platt`). The scores stay as they are (`Calibration.method` says
    why) when a fit would say nothing: with one class only or fewer than 4 scores (the threshold
    then falls back to `threshold` or 0.5: a calibration fitted on nothing would be a guess);
    when every score is the same; when the scores separate fakes from reals, where the
    unpenalised slope is infinite (any finite choice, such as a penalty's, would be arbitrary;
    the threshold still comes from the data); and when they rank reals above fakes, where
    Platt scaling would fit a negative slope and turn every later ranking upside down.
    """
    from sklearn.metrics import roc_curve

    y = np.asarray(y, dtype=int)
    p = np.asarray(p, dtype=float)
    if len(np.unique(y)) < 2 or len(y) < 4:
        return Calibration(
            threshold=0.5 if threshold is None else threshold, fitted_on=len(y), method=FEW
        )
    z = logit(p)
    side = separation(y, z)
    if np.ptp(z) == 0 or side != 0:
        method = CONSTANT if np.ptp(z) == 0 else SEPARATED if side > 0 else INVERTED
        log.warning("calibration: %s; scores left uncalibrated", method)
        cal = Calibration(fitted_on=len(y), method=method)
    else:
        a, b = platt(y, p)
        cal = Calibration(a, b, fitted_on=len(y), method=PLATT)
        if a <= 0:
            log.warning(
                "calibration: validation scores rank reals above fakes (Platt slope %.3f); "
                "scores left uncalibrated",
                a,
            )
            cal = Calibration(fitted_on=len(y), method=INVERTED)
    if threshold is None:
        fpr, tpr, cuts = roc_curve(y, cal.apply(p))
        best = int(np.argmax(tpr - fpr))
        threshold = float(np.clip(cuts[best], EPS, 1 - EPS))
    return Calibration(cal.a, cal.b, threshold, len(y), cal.method)
