""" "uncertain": limits fitted on validation for a stated coverage, and the verdicts they give."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from media import one_face

from deepfake_detector.learning.abstention import (
    BLUR,
    CLOSE,
    SMALL,
    UNSURE,
    Abstention,
    answered,
    fit_abstention,
    overall,
    risk_coverage,
    sharpness,
)


def _scores(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Labels and calibrated scores: fakes score high, reals low, overlapping near 0.5."""
    y = rng.integers(0, 2, n)
    z = rng.normal(np.where(y == 1, 1.2, -1.2), 1.0)
    return y, 1.0 / (1.0 + np.exp(-z))


def test_the_band_and_the_blur_limit_leave_the_stated_share_answered() -> None:
    rng = np.random.default_rng(0)
    _, p = _scores(2000, rng)
    sharp = rng.lognormal(5, 0.5, 2000)
    limits = fit_abstention(p, sharp, 0.5, coverage=0.9, blur_quantile=0.02)
    keep = answered(limits, p, sharp)
    assert keep.mean() == pytest.approx(0.9, abs=1 / 2000)
    # The blurriest 2% are among those left out; the rest of the 10% lie closest to 0.5.
    assert not keep[sharp < np.quantile(sharp, 0.02)].any()
    low, high = limits.band_limits or (0, 0)
    assert low < 0.5 < high
    # As many of the set-aside scores just below the threshold as just above it.
    inside = p[(p >= low) & (p <= high) & (sharp >= limits.min_sharpness)]
    assert abs(int((inside < 0.5).sum()) - int((inside >= 0.5).sum())) <= 1
    judged = p[keep]
    assert np.all((judged < low) | (judged > high))
    # Coverage 1 never abstains on score or blur; the default record never abstains at all.
    full = fit_abstention(p, sharp, 0.5, coverage=1.0, blur_quantile=0.02)
    assert answered(full, p, sharp).all() and full.band_limits is None
    assert Abstention().reason(0.5, 1, 0.0, 0.0) is None
    assert Abstention(**limits.to_dict()) == limits


def test_a_face_is_uncertain_for_the_first_reason_that_holds() -> None:
    limits = Abstention(
        threshold=0.5,
        band_low=0.45,
        band_high=0.55,
        min_sharpness=10,
        min_face_px=64,
        min_confidence=0.95,
    )
    assert limits.reason(0.9, 40, 0.99, 100) == SMALL
    assert limits.reason(0.9, 100, 0.9, 100) == UNSURE
    assert limits.reason(0.9, 100, 0.99, 5) == BLUR
    assert limits.reason(0.52, 100, 0.99, 100) == CLOSE
    assert limits.reason(0.9, 100, 0.99, 100) is None


def test_a_blurred_face_is_less_sharp_than_the_same_face() -> None:
    face = one_face()
    blurred = cv2.GaussianBlur(face, (0, 0), 6)
    assert sharpness(blurred) < 0.1 * sharpness(face)


def test_answering_fewer_faces_answers_them_better() -> None:
    rng = np.random.default_rng(1)
    _, val_p = _scores(3000, rng)
    test_y, test_p = _scores(3000, rng)
    rows = risk_coverage(
        val_p, np.ones(3000), test_y, test_p, np.ones(3000), threshold=0.5, blur_quantile=0.0
    )
    by_target = {r["target_coverage"]: r for r in rows}
    assert by_target[1.0]["answered"] == 1.0
    for target, row in by_target.items():
        assert row["answered"] == pytest.approx(target, abs=0.03)  # fitted on val, run on test
    accuracy = [by_target[t]["accuracy"] for t in sorted(by_target, reverse=True)]
    assert accuracy == sorted(accuracy)  # each step answers fewer and better
    assert by_target[0.9]["accuracy"] > by_target[1.0]["accuracy"] + 0.02


def test_the_record_rides_with_the_model(tmp_path: Path) -> None:
    from deepfake_detector.core.config import FacesParams, FramesParams
    from deepfake_detector.inference.inference_config import InferenceConfig
    from deepfake_detector.learning.calibration import Calibration

    limits = Abstention(
        coverage=0.9, threshold=0.4, band_low=0.3, band_high=0.5, min_sharpness=12.5
    )
    config = InferenceConfig(224, FacesParams(), FramesParams(), Calibration(), abstention=limits)
    assert InferenceConfig.from_dict(config.to_dict()).abstention == limits
    old = config.to_dict()
    del old["abstention"]  # a model stored before "uncertain" existed answers as it did
    assert InferenceConfig.from_dict(old).abstention == Abstention()


def test_a_face_too_close_to_call_makes_the_picture_uncertain_not_real() -> None:
    """Faces' (or tracks') scores and why each was not judged -> the picture's answer."""

    def combine(scored: list[tuple[float, str | None]]) -> tuple[float | None, str]:
        return overall(scored, threshold=0.5)

    assert combine([]) == (None, "no_face")
    assert combine([(0.1, None), (0.2, None)]) == (0.2, "real")
    assert combine([(0.1, None), (0.9, None)]) == (0.9, "fake")
    # A fake face outweighs one it could not call; one it could not call outweighs real ones.
    assert combine([(0.9, None), (0.48, CLOSE)]) == (0.9, "fake")
    assert combine([(0.06, None), (0.48, CLOSE)]) == (0.48, "uncertain")
    # A face too small or blurred says nothing either way, unless there is nothing else.
    assert combine([(0.1, None), (0.95, SMALL)]) == (0.1, "real")
    assert combine([(0.3, BLUR), (0.7, UNSURE)]) == (0.7, "uncertain")
