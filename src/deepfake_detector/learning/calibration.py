"""Calibration of P(fake) and the decision threshold, both fitted on the validation split.

The threshold is an operating point: by default the one at which a stated share of the
validation real faces is called fake (`evaluate.threshold: fpr:R`), each dataset weighted
alike, so a user knows what rate of false alarms to expect. The validation curve of that rate
is stored with the model, so another operating point can be chosen without retraining
(`Calibration.at_fpr`, `deepfake predict --fpr`).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

EPS = 1e-6
CURVE_POINTS = 400  # points of the stored validation false-positive curve
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
    target_fpr: float | None = None  # the false-positive rate the threshold was chosen for
    # The validation real faces' false-positive rate (each dataset alike) by threshold:
    # [threshold, rate] pairs, thresholds rising, rates falling (`fpr_curve`).
    fpr_curve: list[list[float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.method:
            same = self.a == 1.0 and self.b == 0.0
            object.__setattr__(self, "method", IDENTITY if same else PLATT)

    def apply(self, p: np.ndarray) -> np.ndarray:
        """Calibrated P(fake)."""
        return 1.0 / (1.0 + np.exp(-(self.a * logit(p) + self.b)))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view."""
        return asdict(self)

    @property
    def operating_point(self) -> dict[str, float | None]:
        """What every answer carries: the threshold, and the false-positive rate it targets."""
        return {"threshold": self.threshold, "target_fpr": self.target_fpr}

    def at_fpr(self, target: float) -> Calibration:
        """The same calibration at another operating point, read off the stored validation curve:
        the lowest threshold whose validation false-positive rate is at most `target`."""
        if not 0 < target < 1:
            raise ValueError(f"a false-positive rate is between 0 and 1, not {target:g}")
        if not self.fpr_curve:
            raise ValueError(
                "this model stores no validation false-positive curve (it was evaluated before "
                "operating points existed): evaluate it again to choose one"
            )
        cuts, rates = np.array(self.fpr_curve, dtype=float).T
        return replace(self, threshold=threshold_at_fpr(cuts, rates, target), target_fpr=target)


def fpr_curve(scores: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Thresholds (rising) and the false-positive rate at each on real faces' P(fake): in each
    group (dataset), the share of its faces scoring at or above the threshold; averaged over the
    groups, so a large set does not decide the rate of a small one. The last threshold lies
    above every score (rate 0)."""
    scores = np.asarray(scores, dtype=float)
    groups = np.asarray(groups).astype(str)
    cuts = np.unique(scores)
    cuts = np.r_[cuts, min(1.0, np.nextafter(cuts[-1], np.inf))]
    names = np.unique(groups)
    rate = np.zeros(len(cuts))
    for name in names:
        mine = np.sort(scores[groups == name])
        rate += (len(mine) - np.searchsorted(mine, cuts, side="left")) / len(mine)
    return cuts, rate / len(names)


def threshold_at_fpr(cuts: np.ndarray, rates: np.ndarray, target: float) -> float:
    """The lowest threshold whose false-positive rate is at most `target` (`fpr_curve`)."""
    ok = np.flatnonzero(np.asarray(rates) <= target + 1e-12)
    return float(cuts[ok[0]]) if len(ok) else float(cuts[-1])


def _stored_curve(
    cuts: np.ndarray, rates: np.ndarray, most: int = CURVE_POINTS
) -> list[list[float]]:
    """The curve as stored: one point per rate (the lowest threshold giving it), thinned to
    `most` points; a thinned curve answers with a rate at most the one asked for."""
    first = np.r_[True, np.diff(rates) != 0]
    cuts, rates = cuts[first], rates[first]
    if len(cuts) > most:
        keep = np.unique(np.r_[np.linspace(0, len(cuts) - 1, most).round().astype(int)])
        cuts, rates = cuts[keep], rates[keep]
    return [[round(float(c), 9), round(float(r), 6)] for c, r in zip(cuts, rates, strict=True)]


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


def fit_calibration(
    y: np.ndarray,
    p: np.ndarray,
    threshold: float | None = None,
    target_fpr: float | None = None,
    groups: np.ndarray | None = None,
    platt_scaling: bool = True,
) -> Calibration:
    """Platt scaling on validation scores; the threshold at `target_fpr` on the real faces
    (each of `groups` weighted alike), else `threshold`, else Youden's J.

    The fit has no penalty (`platt`). The scores stay as they are (`Calibration.method` says
    why) when `platt_scaling` is off, or when a fit would say nothing: with one class only or
    fewer than 4 scores (a calibration fitted on nothing would be a guess); when every score is
    the same; when the scores separate fakes from reals, where the unpenalised slope is infinite
    (any finite choice, such as a penalty's, would be arbitrary; the threshold still comes from
    the data); and when they rank reals above fakes, where Platt scaling would fit a negative
    slope and turn every later ranking upside down. The real faces' false-positive curve is
    stored whenever there are real faces, so another operating point can be read off later.
    """
    from sklearn.metrics import roc_curve

    y = np.asarray(y, dtype=int)
    p = np.asarray(p, dtype=float)
    groups = np.zeros(len(y), int) if groups is None else np.asarray(groups)
    z = logit(p) if len(p) else np.zeros(0)
    if len(np.unique(y)) < 2 or len(y) < 4:
        cal = Calibration(fitted_on=len(y), method=FEW)
    elif not platt_scaling:
        cal = Calibration(fitted_on=len(y), method=IDENTITY)
    elif np.ptp(z) == 0 or separation(y, z) != 0:
        side = separation(y, z)
        method = CONSTANT if np.ptp(z) == 0 else SEPARATED if side > 0 else INVERTED
        # Separated classes are good news (a small demo set often is); the others are not.
        level = logging.INFO if method == SEPARATED else logging.WARNING
        log.log(level, "calibration: %s; scores left uncalibrated", method)
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
    curve: list[list[float]] = []
    if (y == 0).any():
        cuts, rates = fpr_curve(cal.apply(p[y == 0]), groups[y == 0])
        curve = _stored_curve(cuts, rates)
        if target_fpr is not None:
            threshold = float(np.clip(threshold_at_fpr(cuts, rates, target_fpr), EPS, 1 - EPS))
    elif target_fpr is not None:
        log.warning("calibration: no real validation faces; threshold 0.5, not fpr %g", target_fpr)
        target_fpr = None
    if threshold is None:
        if cal.method == FEW:
            threshold = 0.5
        else:
            fpr, tpr, cuts = roc_curve(y, cal.apply(p))
            best = int(np.argmax(tpr - fpr))
            threshold = float(np.clip(cuts[best], EPS, 1 - EPS))
    return Calibration(cal.a, cal.b, threshold, len(y), cal.method, target_fpr, curve)
