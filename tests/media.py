"""Test media made from photographs shipped in installed packages (no download, no ../shared)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from deepfake_detector.sources.demo_clips import load_identity_photos


def one_face() -> np.ndarray:
    """Grace Hopper's portrait (matplotlib's sample data), RGB."""
    return load_identity_photos()["hopper"]


def two_faces() -> np.ndarray:
    """Hopper and the astronaut side by side, RGB."""
    photos = load_identity_photos()
    a, b = photos["hopper"], photos["astronaut"]
    height = max(a.shape[0], b.shape[0])
    canvas = np.full((height, a.shape[1] + b.shape[1], 3), 255, np.uint8)
    canvas[: a.shape[0], : a.shape[1]] = a
    canvas[: b.shape[0], a.shape[1] :] = b
    return canvas


def no_face() -> np.ndarray:
    """A smooth gradient: nothing to find."""
    ramp = np.linspace(0, 255, 320, dtype=np.uint8)
    return np.stack([np.tile(ramp, (240, 1))] * 3, axis=2)


def save_rgb(path: Path, rgb: np.ndarray) -> Path:
    """Write an RGB array as an image file."""
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


def pan_video(path: Path, frames: int = 12, size: tuple[int, int] = (400, 300)) -> Path:
    """A short clip that pans slowly across Hopper's portrait."""
    photo = cv2.cvtColor(one_face(), cv2.COLOR_RGB2BGR)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 6.0, size)
    assert writer.isOpened()
    for i in range(frames):
        shift = np.float32([[0.7, 0, 20 + 2 * i], [0, 0.7, -10]])
        writer.write(cv2.warpAffine(photo, shift, size, borderMode=cv2.BORDER_REPLICATE))
    writer.release()
    return path
