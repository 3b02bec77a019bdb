"""`crop_faces`: find faces with MTCNN; crop each with a square margin, clamped at the borders."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import cv2
import pandas as pd

from deepfake_detector.core.artifacts import FACES_INDEX as INDEX
from deepfake_detector.core.artifacts import FACES_STAMP as STAMP
from deepfake_detector.core.atomic import atomic_dir, atomic_path
from deepfake_detector.core.cache_keys import item_key
from deepfake_detector.core.config import Params
from deepfake_detector.core.reports import StageReport
from deepfake_detector.core.stage_run import PerVideo, clear_unlisted, load_stamp, run_per_video
from deepfake_detector.sources.face_detection import (
    DETECT_BATCH,
    FaceDetector,
    MtcnnDetector,
    crop_face,
)
from deepfake_detector.sources.face_images import FACES_COLUMNS as COLUMNS
from deepfake_detector.sources.face_records import (
    FaceRow,
    VideoFaces,
)
from deepfake_detector.sources.images import read_rgb
from deepfake_detector.stages.frames import VideoFrames, read_frames_index

log = logging.getLogger(__name__)


def faces_key(frames: VideoFrames, params: Params) -> str:
    """Content key of one video's faces: the stage's code and params, its frames' key."""
    return item_key("crop_faces", params, frames.key)


def done_faces(frames: VideoFrames, params: Params, root: Path = Path(".")) -> VideoFaces | None:
    """The video's faces if they are on disk under the current key."""
    done = read_stamp(root / params.paths.faces_dir / frames.video_id)
    return done if done is not None and done.key == faces_key(frames, params) else None


def crop_video_faces(
    frames: VideoFrames, params: Params, detector: FaceDetector, root: Path = Path(".")
) -> VideoFaces:
    """Crop every kept face of one video's frames into `faces_dir/<video_id>/`; skip if done."""
    done = done_faces(frames, params, root)
    if done is not None:
        return done
    key = faces_key(frames, params)
    out = root / params.paths.faces_dir / frames.video_id
    frames_dir = root / params.paths.frames_dir / frames.video_id
    f = params.faces
    encode = [cv2.IMWRITE_JPEG_QUALITY, f.jpeg_quality]
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
                    crop = crop_face(img, det.box, f.margin, f.crop_size, f.shape)
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
    return load_stamp(folder / STAMP, VideoFaces.from_json)


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
    clear_unlisted(faces_dir, {r.video_id for r in results}, report)
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


def _frames(
    params: Params, root: Path, upstream: Sequence[VideoFrames] | None, _: StageReport
) -> list[VideoFrames]:
    return list(upstream) if upstream is not None else read_frames_index(params, root)


PER_VIDEO: PerVideo[VideoFrames, VideoFaces] = PerVideo(
    items=_frames,
    name=lambda frames: frames.video_id,
    key=lambda frames, params, _root: faces_key(frames, params),
    done=done_faces,
    # MTCNN's networks load once per process (face_detection), not once per video.
    run=lambda frames, params, root: crop_video_faces(
        frames, params, MtcnnDetector(params.faces), root
    ),
    finish=lambda params, root, done, report: finish_crop_faces(params, done, report, root),
)


def crop_faces(params: Params, root: Path = Path(".")) -> StageReport:
    """Stage: crop the faces of every video's frames; frames with no face are counted per video."""
    return run_per_video("crop_faces", params, root)
