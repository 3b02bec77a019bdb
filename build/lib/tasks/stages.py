"""Prefect tasks: thin adapters over the library's stage functions, cached on content keys.

Each cache key is the one the library records next to its outputs (see
`deepfake_detector.cache_keys`), so a flow run recognises work `dvc repro` already did.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import task
from prefect.context import TaskRunContext

from deepfake_detector import cache_keys
from deepfake_detector.config import Params
from deepfake_detector.face_detection import MtcnnDetector
from deepfake_detector.faces import VideoFaces, crop_video_faces, faces_key
from deepfake_detector.frames import VideoFrames, extract_video_frames, frames_key
from deepfake_detector.manifest import ManifestRow, VideoRecord
from deepfake_detector.stages import stage


def _key(fn: Any) -> Any:
    """Adapt `fn(parameters) -> key` to Prefect's cache_key_fn signature."""

    def cache_key_fn(_: TaskRunContext, parameters: dict[str, Any]) -> str:
        return fn(parameters)

    return cache_key_fn


CACHED: dict[str, Any] = {"persist_result": True}


@task(
    name="make_demo_videos", **CACHED, cache_key_fn=_key(lambda p: cache_keys.demo_key(p["params"]))
)
def make_demo_videos(params: Params, root: Path) -> dict[str, Any]:
    """Make the embedded demo clips and their manifest."""
    return stage("make_demo_videos")(params, root).to_dict()


@task(
    name="download_video",
    retries=2,
    retry_delay_seconds=[2, 10],
    **CACHED,
    cache_key_fn=_key(lambda p: cache_keys.download_key(p["row"], p["params"], p["root"])),
)
def download_video(
    row: ManifestRow, params: Params, root: Path, known_sha256: str | None
) -> VideoRecord:
    """Fetch one manifest row's video (retried: networks fail)."""
    from deepfake_detector.download import download_video as fetch_one

    return fetch_one(row, params, root, known_sha256)


@task(
    name="extract_frames",
    **CACHED,
    cache_key_fn=_key(
        lambda p: cache_keys.item_key(frames_key(p["video"], p["params"].frames), p["params"])
    ),
)
def extract_frames(video: VideoRecord, params: Params, root: Path) -> VideoFrames:
    """Sample one video's frames."""
    return extract_video_frames(video, params, root)


@task(
    name="crop_faces",
    **CACHED,
    cache_key_fn=_key(
        lambda p: cache_keys.item_key(faces_key(p["frames"], p["params"].faces), p["params"])
    ),
)
def crop_faces(frames: VideoFrames, params: Params, root: Path) -> VideoFaces:
    """Crop one video's faces (the detector loads once per process)."""
    return crop_video_faces(frames, params, MtcnnDetector(params.faces), root)


@task(
    name="split_dataset",
    **CACHED,
    cache_key_fn=_key(lambda p: cache_keys.split_key(p["params"], p["root"])),
)
def split_dataset(params: Params, root: Path) -> dict[str, Any]:
    """Split faces by group."""
    return stage("split_dataset")(params, root).to_dict()


@task(
    name="train_model",
    **CACHED,
    cache_key_fn=_key(lambda p: cache_keys.train_key(p["params"], p["root"])),
)
def train_model(params: Params, root: Path) -> dict[str, Any]:
    """Train the detector."""
    return stage("train_model")(params, root).to_dict()


@task(
    name="evaluate_model",
    **CACHED,
    cache_key_fn=_key(lambda p: cache_keys.evaluate_key(p["params"], p["root"])),
)
def evaluate_model(params: Params, root: Path) -> dict[str, Any]:
    """Score the test split."""
    return stage("evaluate_model")(params, root).to_dict()


@task(
    name="register_model",
    **CACHED,
    cache_key_fn=_key(lambda p: cache_keys.register_key(p["params"], p["root"])),
)
def register_model(params: Params, root: Path) -> dict[str, Any]:
    """Log and register the model; move the champion alias if it is better."""
    return stage("register_model")(params, root).to_dict()
