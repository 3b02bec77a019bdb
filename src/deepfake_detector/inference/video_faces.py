"""The faces of a video's sampled frames, found at the pace of its decoding.

The frames are decoded once, front to back (`video_reader.decode_wanted`). Every
`keyframe_stride`-th sampled frame (and the last) is a keyframe: its faces are found as soon as
it is decoded, on a second thread, while the decoder goes on. Between two keyframes whose faces
agree (as many faces, each pair overlapping by at least `STABLE_IOU`) the faces are carried:
each box and its landmarks moved in a straight line from one keyframe's face to the next's,
with the lower of the two confidences. Where they disagree (a face appears, leaves, or moves
too far), every frame between them is searched afresh. A face that shows only between two
keyframes that agree is not seen: with the defaults the keyframes are about a second apart in a
10-second clip.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

import cv2
import numpy as np

from deepfake_detector.core.config import FramesParams
from deepfake_detector.inference.tracks import iou
from deepfake_detector.sources.face_detection import DETECT_BATCH, Detection
from deepfake_detector.sources.video_reader import (
    decode_wanted,
    probe,
    sample_frames,
    wanted_indices,
)

KEYFRAME_STRIDE = 4  # faces searched on every 4th sampled frame, carried across the others
T = TypeVar("T")
STABLE_IOU = 0.5  # two keyframes' faces that overlap less than this: the frames between searched

Detect = Callable[[Sequence[np.ndarray]], list[list[Detection]]]
Score = Callable[[list[np.ndarray], list[list[Detection]]], list[list[T]]]


@dataclass
class VideoFaces(Generic[T]):
    """A video's sampled frames: video frame numbers, the faces in each and their scores."""

    fps: float
    frame_count: int
    indices: list[int]
    faces: list[list[Detection]]
    scored: list[list[T]]  # per frame, `score`'s answer for its faces
    carried: list[bool]  # per frame: faces carried from its keyframes rather than searched


def keyframes(n: int, stride: int) -> list[int]:
    """Positions of the keyframes among `n` sampled frames: every `stride`-th and the last."""
    if n == 0:
        return []
    return sorted({*range(0, n, max(1, stride)), n - 1})


def find_video_faces(
    path: Path, sampling: FramesParams, detect: Detect, score: Score[T], stride: int
) -> VideoFaces[T]:
    """Decode `path`'s sampled frames, find their faces and score them (module docstring).

    The search and the scoring run on one worker thread, a keyframe's span at a time, while the
    decoder goes on: what is left after the last frame decodes is the last span. With `stride` 1
    every sampled frame is searched. A container that does not declare its length, or declares
    more frames than decode (a truncated file), is read whole first and sampled on what
    decodes, as `sample_frames` does.
    """
    fps, declared = probe(path)
    wanted = wanted_indices(declared, sampling) if declared else []
    with ThreadPoolExecutor(1, thread_name_prefix="faces") as pool:
        spans = _Spans(detect, score, len(wanted), stride)
        spans.run(decode_wanted(path, wanted), pool)
        frame_count = declared
        if not spans.indices or len(spans.indices) < len(wanted):
            # Length unknown or over-declared: sample again on what decodes.
            fps, frame_count, picked = sample_frames(path, sampling)
            spans = _Spans(detect, score, len(picked), stride)
            spans.run(iter(picked), pool)
    return VideoFaces(fps, frame_count, spans.indices, spans.faces, spans.scored, spans.carried)


class _Spans(Generic[T]):
    """The frames as they decode, and the worker's answers, one keyframe's span at a time."""

    def __init__(self, detect: Detect, score: Score[T], n: int, stride: int) -> None:
        self.detect, self.score = detect, score
        self.keys = set(keyframes(n, stride))
        self.frames: list[np.ndarray] = []
        self.indices: list[int] = []
        self.faces: list[list[Detection]] = [[] for _ in range(n)]
        self.scored: list[list[T]] = [[] for _ in range(n)]
        self.carried = [False] * n

    def run(self, decoded: Iterator[tuple[int, np.ndarray]], pool: ThreadPoolExecutor) -> None:
        """Decode here; each keyframe's span goes to `pool` as soon as its keyframe is in."""
        spans: list[Future[None]] = []
        previous: int | None = None
        for index, bgr in decoded:
            self.frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            self.indices.append(index)
            here = len(self.frames) - 1
            if here in self.keys:
                spans.append(pool.submit(self._span, previous, here))
                previous = here
        for span in spans:
            span.result()  # in order; an error in the worker is raised here
        del self.frames[:]  # the crops are kept; the frames are not needed any more

    def _span(self, a: int | None, b: int) -> None:
        """Keyframe `b`'s faces; those of the frames since keyframe `a`, carried or searched;
        then all of them scored."""
        self.faces[b] = self.detect([self.frames[b]])[0]
        between = list(range(a + 1, b)) if a is not None else []
        pairs = _agreeing(self.faces[a], self.faces[b]) if a is not None else None
        if a is not None and pairs is not None:
            for p in between:
                t = (p - a) / (b - a)
                self.faces[p] = [_between(first, second, t) for first, second in pairs]
                self.carried[p] = True
        else:
            for start in range(0, len(between), DETECT_BATCH):  # one size: one MTCNN batch
                chunk = between[start : start + DETECT_BATCH]
                for p, found in zip(
                    chunk, self.detect([self.frames[p] for p in chunk]), strict=True
                ):
                    self.faces[p] = found
        span = [*between, b]
        for p, answer in zip(
            span,
            self.score([self.frames[p] for p in span], [self.faces[p] for p in span]),
            strict=True,
        ):
            self.scored[p] = answer


def _agreeing(
    first: list[Detection], second: list[Detection]
) -> list[tuple[Detection, Detection]] | None:
    """Each face of `first` paired with its face in `second`, when both hold the same faces
    (one to one, each pair overlapping by `STABLE_IOU` or more); else None."""
    if len(first) != len(second):
        return None
    overlaps = sorted(
        ((iou(a.box, b.box), i, j) for i, a in enumerate(first) for j, b in enumerate(second)),
        reverse=True,
    )
    match: dict[int, int] = {}
    for overlap, i, j in overlaps:
        if overlap < STABLE_IOU:
            break
        if i not in match and j not in match.values():
            match[i] = j
    if len(match) < len(first):
        return None
    return [(a, second[match[i]]) for i, a in enumerate(first)]


def _between(a: Detection, b: Detection, t: float) -> Detection:
    """The face a fraction `t` of the way from `a` to `b`: box and landmarks in a straight line,
    the lower confidence."""
    box = tuple(int(round(p + (q - p) * t)) for p, q in zip(a.box, b.box, strict=True))
    marks = {
        name: (
            a.landmarks[name][0] + (b.landmarks[name][0] - a.landmarks[name][0]) * t,
            a.landmarks[name][1] + (b.landmarks[name][1] - a.landmarks[name][1]) * t,
        )
        for name in a.landmarks
        if name in b.landmarks
    }
    return Detection(box, min(a.confidence, b.confidence), marks)  # type: ignore[arg-type]
