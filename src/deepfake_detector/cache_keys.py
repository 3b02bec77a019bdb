"""Cache keys of whole stages, shared by the library's reports and the Prefect tasks.

A key covers what DVC hashes for the stage: the code it runs, its params section and the
content of its inputs (digests of files, or the keys of per-video work) — never path strings
alone. Per-video keys live beside the work they name (`frames.frames_key`, `faces.faces_key`).
"""

from __future__ import annotations

import hashlib
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING

from deepfake_detector.config import Params
from deepfake_detector.keys import code_digest, content_key, file_sha256

if TYPE_CHECKING:
    from deepfake_detector.manifest import ManifestRow

STAGE_CODE: dict[str, tuple[str, ...]] = {
    "make_demo_videos": ("demo_data", "face_detection"),
    "download_videos": ("download", "manifest"),
    "split_dataset": ("split", "face_sets"),
    "train_model": ("train", "model", "input_pipeline", "synthetic"),
    "evaluate_model": (
        "evaluate",
        "metrics",
        "predict",
        "calibration",
        "tracks",
        "face_sets",
        "face_detection",
        "video_reader",
    ),
    "register_model": ("register", "tracking", "lite_export", "lite_runtime"),
}


def stage_code(stage: str) -> str:
    """Digest of the modules a stage runs."""
    return code_digest(import_module(f"deepfake_detector.{m}") for m in STAGE_CODE[stage])


def _paths(params: Params) -> str:
    return params.paths.model_dump_json()


def faces_version(params: Params, root: Path = Path(".")) -> str:
    """Digest of the crops the split names: every video's faces key (crop_faces), or the
    faces table itself (import_faces, whose images are named in it)."""
    from deepfake_detector.faces import INDEX, read_stamp

    faces_dir = root / params.split.faces_dir
    keys = sorted(
        f"{child.name}:{stamp.key}"
        for child in faces_dir.iterdir()
        if child.is_dir() and (stamp := read_stamp(child)) is not None
    )
    if not keys:
        return file_sha256(faces_dir / INDEX)
    return hashlib.sha256("\n".join(keys).encode()).hexdigest()


def demo_key(params: Params) -> str:
    """make_demo_videos: its code and the demo section."""
    return content_key(stage_code("make_demo_videos"), params.demo, _paths(params))


def split_key(params: Params, root: Path = Path(".")) -> str:
    """split_dataset: its code, the split section, the faces table."""
    from deepfake_detector.faces import INDEX

    faces_table = file_sha256(root / params.split.faces_dir / INDEX)
    return content_key(stage_code("split_dataset"), params.split, _paths(params), faces_table)


def train_key(params: Params, root: Path = Path(".")) -> str:
    """train_model: its code, the train section, the split table and the crops' content keys."""
    from deepfake_detector.split import SPLIT_FILE

    split = file_sha256(root / params.paths.split_dir / SPLIT_FILE)
    return content_key(
        stage_code("train_model"), params.train, _paths(params), split, faces_version(params, root)
    )


def evaluate_key(params: Params, root: Path = Path(".")) -> str:
    """evaluate_model: its code, the evaluate section, the model file and the split table."""
    from deepfake_detector.split import SPLIT_FILE
    from deepfake_detector.train import MODEL_FILE

    model = file_sha256(root / params.paths.model_dir / MODEL_FILE)
    split = file_sha256(root / params.paths.split_dir / SPLIT_FILE)
    # What inference.json records beside the metrics: the data the model learnt from (split,
    # face images, manifest) and the recipe matched against the study's (train).
    described = "|".join(
        (
            params.split.model_dump_json(),
            params.train.model_dump_json(),
            params.face_images.model_dump_json(),
            str(params.download.manifest),
        )
    )
    return content_key(
        stage_code("evaluate_model"), params.evaluate, _paths(params), model, split, described
    )


def register_key(params: Params, root: Path = Path(".")) -> str:
    """register_model: its code, the registry section, the model file and the test metrics."""
    from deepfake_detector.evaluate import METRICS_FILE
    from deepfake_detector.predict import INFERENCE_FILE
    from deepfake_detector.train import MODEL_FILE

    model = file_sha256(root / params.paths.model_dir / MODEL_FILE)
    metrics = file_sha256(root / params.paths.evaluation_dir / METRICS_FILE)
    inference = file_sha256(root / params.paths.evaluation_dir / INFERENCE_FILE)
    return content_key(
        stage_code("register_model"), params.registry, _paths(params), model, metrics, inference
    )


def download_key(row: ManifestRow, params: Params, root: Path = Path(".")) -> str:
    """download_video of one manifest row: the row, the download section, a local file's bytes."""
    from urllib.parse import urlparse

    from deepfake_detector.manifest import resolve_local

    local = ""
    if urlparse(row.uri).scheme in ("", "file"):
        path = resolve_local(row.uri, (root / params.download.manifest).parent)
        local = file_sha256(path) if path.is_file() else "missing"
    fields = [row.video_id, row.uri, row.label, row.group, row.sha256 or "", row.split or "", local]
    return content_key(stage_code("download_videos"), params.download, _paths(params), *fields)


def item_key(work_key: str, params: Params) -> str:
    """Per-video key as Prefect sees it: the work's content key and where its output goes."""
    return content_key(work_key, None, _paths(params))
