"""When to answer "uncertain": a face too small, too unsure or too blurred to judge, or a score
too close to the threshold to call.

A verdict the detector cannot stand behind does harm either way, so a face is not judged when
MTCNN's box is smaller than `min_face_px`, its detection confidence is below `min_confidence`,
the crop is blurrier (variance of its Laplacian) than almost every validation face
(`min_sharpness`, the `blur_quantile` of validation's), or its calibrated P(fake) lies inside a
band around the threshold. The band is fitted on validation so that a stated share of the
validation faces is answered (`coverage`), counting the blurred ones among those left out: it
holds the validation scores nearest the threshold by rank, as many just below it as just above,
so it means the same whatever the spread of the scores.
Everything here is numpy and OpenCV: the verdict path needs no training stack.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import cv2
import numpy as np

BLUR = "blurred"
SMALL = "small face"
UNSURE = "unsure detection"
CLOSE = "too close to the threshold"


def sharpness(crop: np.ndarray) -> float:
    """Variance of the Laplacian of the crop in grey: low for a blurred or smoothed face."""
    grey = cv2.cvtColor(np.asarray(crop, dtype=np.uint8), cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


@dataclass(frozen=True)
class Abstention:
    """The limits under which a face, a video track or a video is `uncertain`.

    The defaults never abstain (a model stored before this existed answers as it did).
    """

    coverage: float = 1.0  # share of validation faces answered when fitted
    threshold: float = 0.5  # the decision threshold the band lies around
    band_low: float = 1.0  # P(fake) in [band_low, band_high] is too close to call (empty: none)
    band_high: float = 0.0
    min_sharpness: float = 0.0
    min_face_px: int = 0
    min_confidence: float = 0.0
    min_track_faces: int = 1

    def to_dict(self) -> dict[str, float | int]:
        """JSON-ready view."""
        return asdict(self)

    @property
    def band_limits(self) -> tuple[float, float] | None:
        """The band in P(fake): scores inside it are uncertain; None without a band."""
        return (self.band_low, self.band_high) if self.band_low <= self.band_high else None

    def close(self, p: float) -> bool:
        """Whether a P(fake) is too close to the threshold to call."""
        return self.band_low <= p <= self.band_high

    def quality_reason(
        self, face_px: float | None, confidence: float | None, crop_sharpness: float | None
    ) -> str | None:
        """Why a face cannot be judged whatever its score (None: it can)."""
        if face_px is not None and face_px < self.min_face_px:
            return SMALL
        if confidence is not None and confidence < self.min_confidence:
            return UNSURE
        if crop_sharpness is not None and crop_sharpness < self.min_sharpness:
            return BLUR
        return None

    def reason(
        self,
        p: float,
        face_px: float | None = None,
        confidence: float | None = None,
        crop_sharpness: float | None = None,
    ) -> str | None:
        """Why a face is uncertain (None: it is judged)."""
        return self.quality_reason(face_px, confidence, crop_sharpness) or (
            CLOSE if self.close(p) else None
        )


def overall(scored: list[tuple[float, str | None]], threshold: float) -> tuple[float | None, str]:
    """A picture's or a clip's P(fake) and verdict from its faces' (or tracks') scores and the
    reasons they were not judged (None: judged).

    Fake when a judged one reaches `threshold`. Otherwise uncertain when one scored too close
    to the threshold (the picture may hold a fake it cannot call), or when none could be judged;
    real when every one of judgeable quality is judged real. Faces too small, unsure or blurred
    say nothing either way and are left out of the score, unless there is nothing else;
    no_face without any."""
    if not scored:
        return None, "no_face"
    judged = [p for p, reason in scored if reason is None]
    close = [p for p, reason in scored if reason == CLOSE]
    if judged and max(judged) >= threshold:
        return max(judged), "fake"
    if close:
        return max(judged + close), "uncertain"
    if judged:
        return max(judged), "real"
    return max(p for p, _ in scored), "uncertain"


def fit_abstention(
    p: np.ndarray,
    crop_sharpness: np.ndarray,
    threshold: float,
    coverage: float,
    blur_quantile: float,
    min_face_px: int = 0,
    min_confidence: float = 0.0,
    min_track_faces: int = 1,
) -> Abstention:
    """The limits that leave `coverage` of the validation faces answered: the blur limit at the
    `blur_quantile` of their sharpness, then the narrowest band around the threshold that sets
    aside the rest of the share. `coverage` 1 never abstains on score or blur."""
    p = np.asarray(p, dtype=float)
    crop_sharpness = np.asarray(crop_sharpness, dtype=float)
    fixed = Abstention(
        threshold=threshold,
        min_face_px=min_face_px,
        min_confidence=min_confidence,
        min_track_faces=min_track_faces,
    )
    if coverage >= 1 or not len(p):
        return fixed
    min_sharpness = float(np.quantile(crop_sharpness, blur_quantile)) if blur_quantile else 0.0
    blurred = crop_sharpness < min_sharpness
    left_out = int(math.ceil((1.0 - coverage) * len(p) - 1e-9))
    more = min(left_out - int(blurred.sum()), int((~blurred).sum()))
    if more <= 0:
        return replace(fixed, coverage=coverage, min_sharpness=min_sharpness)
    below = np.sort(p[~blurred & (p < threshold)])[::-1]  # nearest the threshold first
    above = np.sort(p[~blurred & (p >= threshold)])
    n_below = min(len(below), max(more // 2, more - len(above)))
    n_above = more - n_below
    low = float(below[n_below - 1]) if n_below else float(threshold)
    high = float(above[n_above - 1]) if n_above else float(np.nextafter(threshold, 0))
    return replace(
        fixed, coverage=coverage, band_low=low, band_high=high, min_sharpness=min_sharpness
    )


def answered(
    abstention: Abstention, p: np.ndarray, crop_sharpness: np.ndarray | None = None
) -> np.ndarray:
    """Which of the scored crops are judged (no face size or confidence: crops carry neither)."""
    p = np.asarray(p, dtype=float)
    sharp = np.full(len(p), np.inf) if crop_sharpness is None else np.asarray(crop_sharpness)
    return np.array(
        [
            abstention.reason(float(s), None, None, float(k)) is None
            for s, k in zip(p, sharp, strict=True)
        ],
        dtype=bool,
    )


COVERAGES = (1.0, 0.95, 0.9, 0.8, 0.7, 0.6, 0.5)


def risk_coverage(
    val_p: np.ndarray,
    val_sharpness: np.ndarray,
    test_y: np.ndarray,
    test_p: np.ndarray,
    test_sharpness: np.ndarray,
    threshold: float,
    blur_quantile: float,
) -> list[dict[str, float]]:
    """For each target coverage: limits fitted on validation, applied to the test faces; the
    share answered, and accuracy and false-positive rate on the answered faces."""
    test_y = np.asarray(test_y, dtype=int)
    test_p = np.asarray(test_p, dtype=float)
    rows = []
    for target in COVERAGES:
        limits = fit_abstention(val_p, val_sharpness, threshold, target, blur_quantile)
        keep = answered(limits, test_p, test_sharpness)
        y, called = test_y[keep], test_p[keep] >= threshold
        reals = ~y.astype(bool)
        rows.append(
            {
                "target_coverage": target,
                "answered": float(keep.mean()) if len(keep) else math.nan,
                "faces": int(keep.sum()),
                "accuracy": float(np.mean(called == y.astype(bool))) if len(y) else math.nan,
                "fpr": float(called[reals].mean()) if reals.any() else math.nan,
            }
        )
    return rows
