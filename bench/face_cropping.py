"""1. Face cropping: ours against the seed's full-resolution, one-frame-at-a-time MTCNN.

Inputs: the 48 real 1080p frames of `dfd/frames` and the frames the pipeline samples from the three
DFD videos, decoded once beforehand (decoding is the same for both and is not timed). Baseline:
`MTCNN().detect_faces(rgb)` on the full-resolution frame, one frame per call, first box, cropped
and resized as the seed did. Ours: `crop_faces`' detector (`MtcnnDetector`, params.yaml's `faces`
settings) on batches of `DETECT_BATCH` frames, and every kept face cropped with its margin. The
two alternate chunk by chunk so both see the same machine load. Recall: the share of baseline boxes
that one of ours overlaps with IoU >= 0.5.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import cv2
import numpy as np

from bench.context import Context
from bench.results import Row, fmt, times
from bench.timing import stopwatch

if TYPE_CHECKING:
    from deepfake_detector.sources.face_detection import FaceDetector

NAME = "faces"
TITLE = "1. Face cropping"
TARGET_SPEEDUP = 5.0
TARGET_RECALL = 0.98
MIN_IOU = 0.5
LIMITS = """
What makes ours faster than the seed's way, each measured on this machine (seconds per 1080p
frame, under load): the seed's full resolution, one frame per call, 0.70; a half-size copy
(params.yaml's `min_face_size: 40` maps to MTCNN's 20-pixel pyramid start, so the same faces are
found), eager, one image per call 0.21; batches of 8 frames of one video per MTCNN call 0.12;
MTCNN's three networks compiled as `tf.function`s instead of run eagerly layer by layer (for its
small convolutions the dispatch costs more than the arithmetic) 0.10 one by one, and with
batches and float32 input (mtcnn normalises in NumPy, so uint8 became float64) 0.085.
Detecting on a quarter- or eighth-size copy (0.13 s and 0.08 s per frame, eager) would be faster
still, but the smallest face found would become 80 or 160 pixels instead of `min_face_size`:
not kept. Reusing boxes between neighbouring frames of a video was not needed for the target,
and would miss a face that enters between two full detections.
"""

Box = tuple[int, int, int, int]


@dataclass
class Tally:
    """Time spent, faces cut and boxes found per frame by one method."""

    seconds: float = 0.0
    faces: int = 0
    boxes: list[list[Box]] = field(default_factory=list)

    @property
    def faces_per_s(self) -> float:
        """Throughput."""
        return self.faces / self.seconds if self.seconds else 0.0


def recall(reference: list[list[Box]], found: list[list[Box]]) -> tuple[float, int]:
    """Share of reference boxes matched by a found box of the same frame, and their count."""
    from deepfake_detector.inference.tracks import iou

    total = sum(len(r) for r in reference)
    hits = sum(
        any(iou(r, f) >= MIN_IOU for f in mine)
        for refs, mine in zip(reference, found, strict=True)
        for r in refs
    )
    return (hits / total if total else 1.0), total


class SeedCropper:
    """The seed's way: MTCNN on the full-resolution frame, one frame per call, the first box."""

    def __init__(self) -> None:
        from mtcnn import MTCNN

        self.mtcnn = MTCNN()

    def __call__(self, frames: Sequence[np.ndarray]) -> list[list[Box]]:
        """Boxes (at most one) per frame; the crop is made as the seed made it."""
        out: list[list[Box]] = []
        for rgb in frames:
            found = self.mtcnn.detect_faces(rgb)
            if not found:
                out.append([])
                continue
            x, y, w, h = (int(v) for v in found[0]["box"])
            patch = rgb[max(y, 0) : y + h, max(x, 0) : x + w]
            cv2.resize(patch, (224, 224))
            out.append([(x, y, w, h)])
        return out


class PipelineCropper:
    """`crop_faces`' way: the detector on a batch of frames, every kept face cropped."""

    def __init__(self, detector: FaceDetector, margin: float, size: int) -> None:
        self.detector, self.margin, self.size = detector, margin, size

    def __call__(self, frames: Sequence[np.ndarray]) -> list[list[Box]]:
        """Boxes per frame."""
        from deepfake_detector.sources.face_detection import crop_face

        found = self.detector.detect(list(frames))
        for rgb, detections in zip(frames, found, strict=True):
            for d in detections:
                crop_face(rgb, d.box, self.margin, self.size)
        return [[d.box for d in detections] for detections in found]


def load_inputs(ctx: Context) -> list[tuple[str, list[np.ndarray]]]:
    """(name, RGB frames): the DFD frames, then each DFD video's frames as the pipeline samples."""
    from deepfake_detector.core.config import FramesParams
    from deepfake_detector.sources.video_reader import sample_frames

    stills = ctx.files("*/*.jpg", "dfd", "frames")
    stills = stills[:: ctx.pick(1, 4)]
    videos = ctx.files("*/*.mp4", "dfd", "videos")[: ctx.pick(3, 1)]
    rgb = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in stills]
    groups = [(f"{len(rgb)} DFD frames", rgb)]
    sampling = FramesParams(count=ctx.pick(32, 8))
    for video in videos:
        _, _, picked = sample_frames(video, sampling)
        frames = [cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB) for _, bgr in picked]
        groups.append((f"{video.stem} ({len(frames)} frames)", frames))
    return groups


def measure(
    methods: dict[str, Callable[[Sequence[np.ndarray]], list[list[Box]]]],
    groups: list[tuple[str, list[np.ndarray]]],
    chunk: int,
    warm_up: dict[str, int],
) -> dict[str, Tally]:
    """Run every method on every chunk of frames, alternating methods chunk by chunk."""
    tallies = {name: Tally() for name in methods}
    for name, method in methods.items():  # first calls trace and allocate: not timed
        method(groups[0][1][: warm_up.get(name, chunk)])
    for _, frames in groups:
        for start in range(0, len(frames), chunk):
            part = frames[start : start + chunk]
            for name, method in methods.items():
                with stopwatch() as t:
                    boxes = method(part)
                tally = tallies[name]
                tally.seconds += t[0]
                tally.faces += sum(len(b) for b in boxes)
                tally.boxes += boxes
    return tallies


def run(ctx: Context) -> tuple[list[Row], list[str]]:
    """Faces per second and recall of ours against the seed's way."""
    from deepfake_detector.core.config import load_params
    from deepfake_detector.sources.face_detection import DETECT_BATCH, MtcnnDetector

    groups = load_inputs(ctx)
    faces = load_params(ctx.repo / "params.yaml").faces
    methods = {
        "seed": SeedCropper(),
        "ours": PipelineCropper(MtcnnDetector(faces), faces.margin, faces.crop_size),
    }
    tallies = measure(methods, groups, DETECT_BATCH, warm_up={"seed": 1})
    seed = tallies["seed"]
    frames = sum(len(f) for _, f in groups)
    inputs = f"{frames} 1080p frames"
    rows, notes = [], [f"Inputs: {', '.join(name for name, _ in groups)}."]
    for name, label in (("ours", "ours"),):
        tally = tallies[name]
        speedup = tally.faces_per_s / seed.faces_per_s if seed.faces_per_s else 0.0
        share, total = recall(seed.boxes, tally.boxes)
        met = speedup >= TARGET_SPEEDUP and share >= TARGET_RECALL
        who = "" if name == "ours" else f" ({label})"
        rows += [
            Row(
                TITLE,
                f"faces/s, {inputs}{who}",
                fmt(seed.faces_per_s, "faces/s"),
                fmt(tally.faces_per_s, "faces/s"),
                times(speedup),
                f">= {TARGET_SPEEDUP:g}x at recall >= {TARGET_RECALL}",
                met,
            ),
            Row(
                TITLE,
                f"recall of the baseline's boxes, IoU >= {MIN_IOU}{who}",
                f"{total} boxes",
                f"{share:.3f}",
                "",
                f">= {TARGET_RECALL}",
                share >= TARGET_RECALL,
            ),
        ]
        notes.append(
            f"{label}: {tally.faces} faces in {tally.seconds:.1f} s "
            f"({frames / tally.seconds:.2f} frames/s); baseline {seed.faces} faces in "
            f"{seed.seconds:.1f} s ({frames / seed.seconds:.2f} frames/s)."
        )
    return rows, notes
