"""Face-crop files scored through the one inference path (`predict.Detector`): evaluation,
the studies and export read crops already cut, so no face is searched."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from deepfake_detector.inference.predict import Detector
from deepfake_detector.learning.abstention import sharpness
from deepfake_detector.sources.images import read_rgb

CHUNK = 256  # face crops read and scored at a time


def score_files(detector: Detector, files: list[Path]) -> np.ndarray:
    """Uncalibrated P(fake) of face-crop files, through the one inference path."""
    return score_crop_files(detector, files)[0]


def score_crop_files(detector: Detector, files: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    """Uncalibrated P(fake) of face-crop files and the sharpness of each crop at the model's
    crop size (as prediction measures a face it cuts: `abstention.sharpness`), one read each;
    an unreadable file is left out of both."""
    size = detector.config.faces.crop_size
    scores, sharp = [], []
    for start in range(0, len(files), CHUNK):
        crops = [c for c in (read_rgb(f) for f in files[start : start + CHUNK]) if c is not None]
        scores.append(detector.raw_scores(crops))
        sharp += [sharpness(_at_size(c, size)) for c in crops]
    return (np.concatenate(scores) if scores else np.zeros(0)), np.asarray(sharp, dtype=float)


def _at_size(crop: np.ndarray, size: int) -> np.ndarray:
    if crop.shape[:2] == (size, size):
        return crop
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
