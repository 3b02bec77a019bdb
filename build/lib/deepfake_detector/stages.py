"""The pipeline's stages in order: one name for the library function, DVC stage, task and CLI."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from pathlib import Path

from deepfake_detector.config import Params
from deepfake_detector.reports import StageReport

StageFn = Callable[[Params, Path], StageReport]

# name -> module that defines a function of that name; modules import lazily (TensorFlow is slow).
STAGES: dict[str, str] = {
    "make_demo_videos": "deepfake_detector.demo_data",
    "download_videos": "deepfake_detector.download",
    "extract_frames": "deepfake_detector.frames",
    "crop_faces": "deepfake_detector.faces",
    "split_dataset": "deepfake_detector.split",
    "train_model": "deepfake_detector.train",
    "evaluate_model": "deepfake_detector.evaluate",
    "register_model": "deepfake_detector.register",
}


def stage(name: str) -> StageFn:
    """The library function behind stage `name`."""
    if name not in STAGES:
        raise KeyError(f"unknown stage '{name}'; stages are {', '.join(STAGES)}")
    return getattr(import_module(STAGES[name]), name)
