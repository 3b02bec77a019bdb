"""`extract_frames`: sample frames from each video by sequential decoding (OpenCV)."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import pandas as pd

from deepfake_detector.core.artifacts import FRAMES_INDEX as INDEX
from deepfake_detector.core.artifacts import FRAMES_STAMP as STAMP
from deepfake_detector.core.atomic import atomic_dir, atomic_path
from deepfake_detector.core.cache_keys import item_key
from deepfake_detector.core.config import Params
from deepfake_detector.core.reports import StageReport
from deepfake_detector.core.stage_run import PerVideo, clear_unlisted, load_stamp, run_per_video
from deepfake_detector.sources.manifest import VideoRecord, read_videos_table
from deepfake_detector.sources.video_reader import VideoReadError, sample_frames

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FrameRef:
    """One sampled frame of a video."""

    index: int
    time_s: float
    file: str


@dataclass(frozen=True)
class VideoFrames:
    """The sampled frames of one video, with the key of the work that made them."""

    key: str
    video_id: str
    label: str
    group: str
    split: str | None
    fps: float
    frame_count: int
    frames: tuple[FrameRef, ...]

    @classmethod
    def from_json(cls, text: str) -> VideoFrames:
        """Parse a stamp written by `to_json`."""
        data = json.loads(text)
        data["frames"] = tuple(FrameRef(**f) for f in data["frames"])
        return cls(**data)

    def to_json(self) -> str:
        """Serialise for the per-video stamp."""
        return json.dumps(asdict(self), indent=1)


def frames_key(video: VideoRecord, params: Params) -> str:
    """Content key of one video's frames: the stage's code and params, the video's bytes."""
    return item_key("extract_frames", params, video.sha256)


def done_frames(video: VideoRecord, params: Params, root: Path = Path(".")) -> VideoFrames | None:
    """The video's frames if they are on disk under the current key."""
    done = read_stamp(root / params.paths.frames_dir / video.video_id)
    return done if done is not None and done.key == frames_key(video, params) else None


def extract_video_frames(video: VideoRecord, params: Params, root: Path = Path(".")) -> VideoFrames:
    """Sample one video's frames into `frames_dir/<video_id>/`; skip if done with this key."""
    done = done_frames(video, params, root)
    if done is not None:
        return done
    key = frames_key(video, params)
    out = root / params.paths.frames_dir / video.video_id
    source = root / params.paths.videos_dir / video.path
    fps, frame_count, picked = sample_frames(source, params.frames)
    encode = [cv2.IMWRITE_JPEG_QUALITY, params.frames.jpeg_quality]
    refs = []
    with atomic_dir(out) as tmp:
        for index, frame in picked:
            name = f"{index:06d}.jpg"
            if not cv2.imwrite(str(tmp / name), frame, encode):
                raise VideoReadError(f"{video.video_id}: cannot write frame {index}")
            refs.append(FrameRef(index, round(index / fps, 4) if fps else 0.0, name))
        result = VideoFrames(
            key=key,
            video_id=video.video_id,
            label=video.label,
            group=video.group,
            split=video.split,
            fps=fps,
            frame_count=frame_count,
            frames=tuple(refs),
        )
        (tmp / STAMP).write_text(result.to_json())
    return result


def read_stamp(folder: Path) -> VideoFrames | None:
    """The stamp of a finished video folder, or None if absent or unreadable."""
    return load_stamp(folder / STAMP, VideoFrames.from_json)


def read_frames_index(params: Params, root: Path = Path(".")) -> list[VideoFrames]:
    """Every finished video's frames, in video order."""
    frames_dir = root / params.paths.frames_dir
    ids = pd.read_csv(frames_dir / INDEX, dtype=str)["video_id"].drop_duplicates()
    stamps = [read_stamp(frames_dir / vid) for vid in ids]
    return [s for s in stamps if s is not None]


def finish_extract_frames(
    params: Params, results: list[VideoFrames], report: StageReport, root: Path = Path(".")
) -> StageReport:
    """Drop folders of videos no longer listed, write the frames index and the report."""
    frames_dir = root / params.paths.frames_dir
    clear_unlisted(frames_dir, {r.video_id for r in results}, report)
    rows = [
        {
            "video_id": r.video_id,
            "frame_index": f.index,
            "time_s": f.time_s,
            "file": f"{r.video_id}/{f.file}",
            "label": r.label,
            "group": r.group,
            "split": r.split or "",
        }
        for r in sorted(results, key=lambda r: r.video_id)
        for f in r.frames
    ]
    columns = ["video_id", "frame_index", "time_s", "file", "label", "group", "split"]
    with atomic_path(frames_dir / INDEX) as tmp:
        pd.DataFrame(rows, columns=columns).to_csv(tmp, index=False)
    report.count("videos", len(results))
    report.count("frames", len(rows))
    return report.finish(frames_dir)


def _videos(
    params: Params, root: Path, upstream: Sequence[VideoRecord] | None, _: StageReport
) -> list[VideoRecord]:
    return (
        list(upstream)
        if upstream is not None
        else read_videos_table(root / params.paths.videos_dir)
    )


PER_VIDEO: PerVideo[VideoRecord, VideoFrames] = PerVideo(
    items=_videos,
    name=lambda video: video.video_id,
    key=lambda video, params, _root: frames_key(video, params),
    done=done_frames,
    run=extract_video_frames,
    finish=lambda params, root, results, report: finish_extract_frames(
        params, results, report, root
    ),
    errors=(VideoReadError,),
)


def extract_frames(params: Params, root: Path = Path(".")) -> StageReport:
    """Stage: sample frames from every downloaded video; a bad video is reported and skipped."""
    return run_per_video("extract_frames", params, root)
