"""`crop_faces`: find faces with MTCNN; crop each with a square margin, clamped at the borders."""

from __future__ import annotations

import json
import logging
import shutil
import sys
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import pandas as pd
from tqdm import tqdm

from deepfake_detector.atomic import atomic_dir, atomic_path, remove_stale_temps
from deepfake_detector.config import FacesParams, Params
from deepfake_detector.frames import VideoFrames, read_frames_index
from deepfake_detector.keys import code_digest, content_key
from deepfake_detector.reports import StageReport

log = logging.getLogger(__name__)

STAMP = "faces.json"
INDEX = "faces.csv"
DETECT_BATCH = 8
MTCNN_MIN_FACE = 20
MAX_DETECT_SIDE = 1920  # longest side MTCNN scans; larger images are shrunk (bounded latency)
COLUMNS = [
    "video_id",
    "frame_index",
    "face_index",
    "file",
    "x",
    "y",
    "w",
    "h",
    "confidence",
    "landmarks",
    "label",
    "group",
    "split",
]


@dataclass(frozen=True)
class Detection:
    """One face found in an image: box as (x, y, w, h) in pixels, confidence, 5 landmarks."""

    box: tuple[int, int, int, int]
    confidence: float
    landmarks: dict[str, tuple[float, float]]

    @property
    def area(self) -> int:
        """Box area in pixels."""
        return self.box[2] * self.box[3]


class FaceDetector(Protocol):
    """Finds faces in a batch of RGB images."""

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Detection]]:
        """Return the detections of each image, in input order."""
        ...


class MtcnnDetector:
    """The `mtcnn` package's MTCNN behind the FaceDetector protocol; thresholds from params."""

    def __init__(self, params: FacesParams) -> None:
        self.params = params
        self._mtcnn = _load_mtcnn()

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Detection]]:
        """Detect faces in RGB images; keep those above the size and confidence thresholds.

        MTCNN's pyramid starts at 20-pixel faces (mtcnn 1.0 fails for any other
        min_face_size), so each image is shrunk until `min_face_size` maps to 20 pixels: the
        same faces are found, with up to 4x fewer pixels to scan at the default of 40. Images of
        one size (a video's frames) go to MTCNN as one batch. A very large image (a 50-megapixel
        photo) is also shrunk to MAX_DETECT_SIDE pixels on its longest side, so that detection
        time stays bounded; its faces are cropped from the full-resolution image all the same.
        """
        base = min(1.0, MTCNN_MIN_FACE / self.params.min_face_size)
        scales = [min(base, MAX_DETECT_SIDE / max(image.shape[:2])) for image in images]
        small = [
            (
                image
                if scale == 1.0
                else cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            ).astype(np.float32)  # mtcnn normalises in NumPy: uint8 would become float64
            for image, scale in zip(images, scales, strict=True)
        ]
        by_shape: dict[tuple[int, ...], list[int]] = defaultdict(list)
        for i, image in enumerate(small):
            by_shape[image.shape].append(i)
        found: list[list[Detection]] = [[] for _ in images]
        for members in by_shape.values():
            batch = self._mtcnn.detect_faces([small[i] for i in members])
            for i, raw in zip(members, batch, strict=True):
                found[i] = self._keep([_to_detection(d, 1.0 / scales[i]) for d in raw])
        return found

    def _keep(self, found: list[Detection]) -> list[Detection]:
        p = self.params
        kept = [
            d
            for d in found
            if d.confidence >= p.min_confidence and min(d.box[2:]) >= p.min_face_size
        ]
        kept.sort(key=lambda d: d.area, reverse=True)
        return kept[:1] if p.keep == "largest" else kept


@lru_cache(maxsize=1)
def _load_mtcnn():  # type: ignore[no-untyped-def]
    """One MTCNN per process: its three networks load once, not once per video.

    Each network runs as a `tf.function` (traced once per input shape), not eagerly layer by
    layer: for MTCNN's small convolutions the eager dispatch costs more than the arithmetic.
    """
    import tensorflow as tf
    from mtcnn import MTCNN

    mtcnn = MTCNN()
    for stage in mtcnn.stages:  # mtcnn 1.0 (pinned) keeps each stage's network in `_model`
        stage._model = tf.function(stage._model, reduce_retracing=True)
    return mtcnn


def _to_detection(raw: dict, scale: float = 1.0) -> Detection:
    """mtcnn returns numpy scalars: make them plain Python (JSON-ready), in full-size pixels."""
    x, y, w, h = (int(round(float(v) * scale)) for v in raw["box"])
    marks = {
        k: (round(float(v[0]) * scale, 1), round(float(v[1]) * scale, 1))
        for k, v in raw["keypoints"].items()
    }
    return Detection((x, y, w, h), float(raw["confidence"]), marks)


def crop_box(
    box: tuple[int, int, int, int], margin: float, width: int, height: int
) -> tuple[int, int, int, int]:
    """Square around the face, `margin` of its size on each side: (x0, y0, x1, y1), unclamped."""
    x, y, w, h = box
    side = max(w, h) * (1.0 + 2.0 * margin)
    cx, cy = x + w / 2.0, y + h / 2.0
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    s = int(round(side))
    return x0, y0, x0 + s, y0 + s


def crop_face(
    image: np.ndarray, box: tuple[int, int, int, int], margin: float, size: int
) -> np.ndarray:
    """Crop the margin square, clamped at the borders (padded black there), resized to `size`."""
    height, width = image.shape[:2]
    x0, y0, x1, y1 = crop_box(box, margin, width, height)
    cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    patch = image[cy0:cy1, cx0:cx1]
    patch = cv2.copyMakeBorder(
        patch, cy0 - y0, y1 - cy1, cx0 - x0, x1 - cx1, cv2.BORDER_CONSTANT, value=(0, 0, 0)
    )
    interp = cv2.INTER_AREA if patch.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(patch, (size, size), interpolation=interp)


@dataclass(frozen=True)
class FaceRow:
    """One cropped face and where it came from."""

    frame_index: int
    face_index: int
    file: str
    box: tuple[int, int, int, int]
    confidence: float
    landmarks: dict[str, tuple[float, float]]


@dataclass(frozen=True)
class VideoFaces:
    """The faces of one video, frames without a face, and the key of the work that made them."""

    key: str
    video_id: str
    label: str
    group: str
    split: str | None
    frames: int
    frames_without_face: int
    faces: tuple[FaceRow, ...]

    @classmethod
    def from_json(cls, text: str) -> VideoFaces:
        """Parse a stamp written by `to_json`."""
        data = json.loads(text)
        data["faces"] = tuple(
            FaceRow(
                **{
                    **f,
                    "box": tuple(f["box"]),
                    "landmarks": {k: tuple(v) for k, v in f["landmarks"].items()},
                }
            )
            for f in data["faces"]
        )
        return cls(**data)

    def to_json(self) -> str:
        """Serialise for the per-video stamp."""
        return json.dumps(asdict(self), indent=1)


def faces_key(frames: VideoFrames, params: FacesParams) -> str:
    """Content key of one video's faces: this module's code, the params, its frames' key."""
    return content_key(code_digest([sys.modules[__name__]]), params, frames.key)


def read_rgb(path: Path) -> np.ndarray | None:
    """Read an image file as RGB, or None if it cannot be decoded."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    return None if bgr is None else cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def crop_video_faces(
    frames: VideoFrames, params: Params, detector: FaceDetector, root: Path = Path(".")
) -> VideoFaces:
    """Crop every kept face of one video's frames into `faces_dir/<video_id>/`; skip if done."""
    key = faces_key(frames, params.faces)
    out = root / params.paths.faces_dir / frames.video_id
    done = read_stamp(out)
    if done is not None and done.key == key:
        return done
    frames_dir = root / params.paths.frames_dir / frames.video_id
    encode = [cv2.IMWRITE_JPEG_QUALITY, params.faces.jpeg_quality]
    rows: list[FaceRow] = []
    without_face = 0
    with atomic_dir(out) as tmp:
        for start in range(0, len(frames.frames), DETECT_BATCH):
            batch = frames.frames[start : start + DETECT_BATCH]
            images = [read_rgb(frames_dir / ref.file) for ref in batch]
            readable = [
                (ref, img) for ref, img in zip(batch, images, strict=True) if img is not None
            ]
            without_face += len(batch) - len(readable)
            found = detector.detect([img for _, img in readable])
            for (ref, img), detections in zip(readable, found, strict=True):
                if not detections:
                    without_face += 1
                for face_index, det in enumerate(detections):
                    crop = crop_face(img, det.box, params.faces.margin, params.faces.crop_size)
                    name = f"{ref.index:06d}_{face_index:02d}.jpg"
                    cv2.imwrite(str(tmp / name), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR), encode)
                    rows.append(
                        FaceRow(ref.index, face_index, name, det.box, det.confidence, det.landmarks)
                    )
        result = VideoFaces(
            key=key,
            video_id=frames.video_id,
            label=frames.label,
            group=frames.group,
            split=frames.split,
            frames=len(frames.frames),
            frames_without_face=without_face,
            faces=tuple(rows),
        )
        (tmp / STAMP).write_text(result.to_json())
    return result


def read_stamp(folder: Path) -> VideoFaces | None:
    """The stamp of a finished video folder, or None if absent or unreadable."""
    try:
        return VideoFaces.from_json((folder / STAMP).read_text())
    except (OSError, ValueError, TypeError, KeyError):
        return None


def faces_table(results: list[VideoFaces]) -> pd.DataFrame:
    """One row per face crop (video, frame, box, confidence, landmarks, label, group, split)."""
    rows = [
        {
            "video_id": r.video_id,
            "frame_index": f.frame_index,
            "face_index": f.face_index,
            "file": f"{r.video_id}/{f.file}",
            "x": f.box[0],
            "y": f.box[1],
            "w": f.box[2],
            "h": f.box[3],
            "confidence": round(f.confidence, 5),
            "landmarks": json.dumps(f.landmarks),
            "label": r.label,
            "group": r.group,
            "split": r.split or "",
        }
        for r in sorted(results, key=lambda r: r.video_id)
        for f in r.faces
    ]
    return pd.DataFrame(rows, columns=COLUMNS)


def finish_crop_faces(
    params: Params, results: list[VideoFaces], report: StageReport, root: Path = Path(".")
) -> StageReport:
    """Drop folders of videos no longer listed; write the faces table and the report."""
    faces_dir = root / params.paths.faces_dir
    faces_dir.mkdir(parents=True, exist_ok=True)
    keep = {r.video_id for r in results}
    for child in faces_dir.iterdir():
        if child.is_dir() and child.name not in keep:
            shutil.rmtree(child)
            report.count("stale_removed")
    remove_stale_temps(faces_dir)
    table = faces_table(results)
    with atomic_path(faces_dir / INDEX) as tmp:
        table.to_csv(tmp, index=False)
    for r in results:
        if not r.faces:
            report.skip(r.video_id, f"no face in any of its {r.frames} frames")
    report.count("videos", len(results))
    report.count("frames", sum(r.frames for r in results))
    report.count("frames_without_face", sum(r.frames_without_face for r in results))
    report.count("faces", len(table))
    report.details["frames_without_face_per_video"] = {
        r.video_id: r.frames_without_face for r in sorted(results, key=lambda r: r.video_id)
    }
    return report.finish(faces_dir)


def crop_faces(
    params: Params, root: Path = Path("."), detector: FaceDetector | None = None
) -> StageReport:
    """Stage: crop the faces of every video's frames; frames with no face are counted per video."""
    report = StageReport("crop_faces")
    videos = read_frames_index(params, root)
    detector = detector or MtcnnDetector(params.faces)
    results = [
        crop_video_faces(frames, params, detector, root)
        for frames in tqdm(videos, desc="crop_faces", unit="video")
    ]
    return finish_crop_faces(params, results, report, root)
