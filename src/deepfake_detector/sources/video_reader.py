"""Reading frames of a video file with OpenCV: sampled evenly, decoded once, front to back.

Light on purpose (OpenCV and NumPy only): the frames stage and the inference path both use it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from deepfake_detector.core.config import FramesParams
from deepfake_detector.core.errors import UserError


class VideoReadError(UserError, RuntimeError):
    """A video cannot be opened or yields no frame."""


def wanted_indices(frame_count: int, params: FramesParams) -> list[int]:
    """Frame indices to keep: `count` evenly spaced ones, or every `stride`-th."""
    if frame_count <= 0:
        return []
    if params.mode == "stride":
        return list(range(0, frame_count, params.stride))
    picks = np.linspace(0, frame_count - 1, num=min(params.count, frame_count))
    return sorted({int(round(p)) for p in picks})


def count_frames(path: Path) -> int:
    """Count decodable frames by grabbing them all (used when the container lies or is silent)."""
    cap = cv2.VideoCapture(str(path))
    try:
        n = 0
        while cap.grab():
            n += 1
        return n
    finally:
        cap.release()


def probe(path: Path) -> tuple[float, int]:
    """(fps, declared frame count: 0 when the container does not say) of a video that opens."""
    try:
        size = path.stat().st_size
    except OSError as exc:  # a symlink loop, a dangling link, no permission
        raise VideoReadError(f"{path.name}: cannot read the file ({exc.strerror or exc})") from exc
    if size == 0:
        raise VideoReadError(f"{path.name}: empty file")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise VideoReadError(
            f"{path.name}: cannot open it as a video (not a video, cut short, or no video stream)"
        )
    try:
        return float(cap.get(cv2.CAP_PROP_FPS)) or 0.0, max(
            0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        )
    finally:
        cap.release()


def sample_frames(
    path: Path, params: FramesParams
) -> tuple[float, int, list[tuple[int, np.ndarray]]]:
    """Decode `path` once, front to back, returning (fps, frame_count, [(index, BGR frame)])."""
    fps, declared = probe(path)
    frame_count = declared if declared > 0 else count_frames(path)
    wanted = wanted_indices(frame_count, params)
    picked = list(decode_wanted(path, wanted))
    if picked and len(picked) < len(wanted) and declared > 0:
        # The container over-declared its length (truncated file): resample on what decodes.
        frame_count = count_frames(path)
        wanted = wanted_indices(frame_count, params)
        picked = list(decode_wanted(path, wanted))
    if not picked:
        raise VideoReadError(f"{path.name}: no decodable frame")
    return fps, frame_count, picked


def decode_wanted(path: Path, wanted: list[int]) -> Iterator[tuple[int, np.ndarray]]:
    """The `wanted` frames (sorted indices) as (index, BGR frame), each as soon as it is decoded:
    grab() every frame, retrieve() only the wanted ones: no seeking, no wasted decoding."""
    keep, last = set(wanted), (wanted[-1] if wanted else -1)
    cap = cv2.VideoCapture(str(path))
    try:
        index = 0
        while index <= last and cap.grab():
            if index in keep:
                ok, frame = cap.retrieve()
                if ok and frame is not None:
                    yield index, frame
            index += 1
    finally:
        cap.release()
