"""extract_frames: sequential sampling, timestamps, truncated videos, per-video idempotence."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from deepfake_detector.core.config import FramesParams, Params, PathsParams
from deepfake_detector.core.keys import file_sha256
from deepfake_detector.sources.manifest import VideoRecord, write_videos_table
from deepfake_detector.sources.video_reader import VideoReadError, sample_frames, wanted_indices
from deepfake_detector.stages.frames import extract_frames, extract_video_frames


def write_video(path: Path, n: int, fps: float = 10.0, size: tuple[int, int] = (64, 48)) -> Path:
    """A clip whose frame i is filled with grey level 5*i, so a decoded frame names its index."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    assert writer.isOpened()
    for i in range(n):
        writer.write(np.full((size[1], size[0], 3), (5 * i) % 256, np.uint8))
    writer.release()
    return path


def test_wanted_indices_spread_evenly_and_respect_stride() -> None:
    assert wanted_indices(100, FramesParams(count=5)) == [0, 25, 50, 74, 99]
    assert wanted_indices(3, FramesParams(count=32)) == [0, 1, 2]
    assert wanted_indices(10, FramesParams(mode="stride", stride=4)) == [0, 4, 8]
    assert wanted_indices(0, FramesParams()) == []


def test_sampled_frames_are_the_wanted_ones(tmp_path: Path) -> None:
    video = write_video(tmp_path / "v.mp4", 40)
    fps, count, picked = sample_frames(video, FramesParams(count=4))
    assert (fps, count) == (10.0, 40)
    assert [i for i, _ in picked] == [0, 13, 26, 39]
    for index, frame in picked:
        assert abs(float(frame.mean()) - 5 * index) < 4  # the decoded content is that frame's


def test_unreadable_video_is_an_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all" * 100)
    with pytest.raises(VideoReadError):
        sample_frames(bad, FramesParams())


def _params(tmp_path: Path, **frames: object) -> Params:
    return Params(
        paths=PathsParams(videos_dir=tmp_path / "videos", frames_dir=tmp_path / "frames"),
        frames=FramesParams(**frames),
    )


def _record(path: Path, label: str = "real") -> VideoRecord:
    return VideoRecord(
        path.stem, Path(path.name), label, path.stem, file_sha256(path), None, str(path)
    )


def test_stage_writes_index_skips_bad_videos_and_reuses_done_work(tmp_path: Path) -> None:
    params = _params(tmp_path, count=5)
    videos = tmp_path / "videos"
    videos.mkdir()
    good = write_video(videos / "good.mp4", 30)
    bad = videos / "bad.mp4"
    bad.write_bytes(b"\0" * 2048)
    write_videos_table(videos, [_record(good), _record(bad, "fake")])

    report = extract_frames(params, tmp_path)
    assert report.counts["videos"] == 1 and report.counts["frames"] == 5
    assert [s.item for s in report.skipped] == ["bad"]
    index = (tmp_path / "frames" / "frames.csv").read_text().splitlines()
    assert index[0] == "video_id,frame_index,time_s,file,label,group,split"
    assert index[2].startswith("good,7,0.7,good/000007.jpg,real,good")

    first = tmp_path / "frames" / "good" / "000000.jpg"
    mtime = first.stat().st_mtime_ns
    extract_frames(params, tmp_path)
    assert first.stat().st_mtime_ns == mtime  # same key: not redone

    again = extract_video_frames(_record(good), _params(tmp_path, count=3), tmp_path)
    assert [f.index for f in again.frames] == [0, 14, 29]  # changed params: redone
    assert sorted(p.name for p in (tmp_path / "frames" / "good").glob("*.jpg")) == [
        "000000.jpg",
        "000014.jpg",
        "000029.jpg",
    ]


def test_truncated_video_keeps_what_decodes(tmp_path: Path) -> None:
    full = write_video(tmp_path / "full.mp4", 60, size=(160, 120))
    data = full.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    try:
        _, _, picked = sample_frames(cut, FramesParams(count=8))
    except VideoReadError as exc:  # a cut that loses the index is unreadable: a clear error
        assert "cut.mp4" in str(exc)
        return
    assert picked and all(frame is not None for _, frame in picked)
