"""The pipeline's shape, declared once: every stage's function, params, code, inputs and outputs.

From this table come the DVC stages (`dvc.yaml` is generated from it: `deepfake dvc-yaml`), the
CLI's stage commands, the Prefect tasks and flow, and the cache keys (`cache_keys`). A stage's
code is not listed by hand: it is its module and every project module that one imports, read
from the source (`imports.closure`), so an edit anywhere a stage reaches changes its key and
makes `dvc repro` redo it. The artifact names live in `core.artifacts`; the studies' table in
`core.study_table`, so that editing a study touches no pipeline stage's code.

Paths are written as DVC writes them, `${section.key}` over `params.yaml`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from deepfake_detector.core.artifacts import (
    CONFUSIONS,
    CURVES,
    FACES_INDEX,
    FIGURE_FILE,
    INFERENCE_FILE,
    METRICS_FILE,
    PREDICTIONS_FILE,
    RELIABILITY_FILE,
    REPORT_NAME,
    VIDEO_PREDICTIONS_FILE,
)
from deepfake_detector.core.imports import PACKAGE, closure, module_file

if TYPE_CHECKING:
    from deepfake_detector.core.config import Params
    from deepfake_detector.core.reports import StageReport

StageFn = Callable[["Params", Path], "StageReport"]


@dataclass(frozen=True)
class Out:
    """One output as DVC declares it."""

    path: str
    kind: Literal["outs", "metrics", "plots"] = "outs"
    persist: bool = False  # per-video folders: kept between runs, redone per video
    cache: bool = True


@dataclass(frozen=True)
class Stage:
    """One stage: `module` defines a function named `name` taking (params, root)."""

    name: str
    module: str  # relative to the package, e.g. "stages.train"
    summary: str
    params: tuple[str, ...]  # params.yaml sections or dotted keys the stage reads
    deps: tuple[str, ...]  # input paths
    outs: tuple[Out, ...]
    home: str  # the folder its report.json goes to
    per_video: bool = False  # mapped over videos: the module's PER_VIDEO says how
    task_name: str = ""  # the Prefect task's name when it differs (one video's work)
    wanted: str = ""  # a function of the module: does the flow need the stage? (params, root)
    note: str = ""  # a comment for dvc.yaml
    # Stages it runs through the table (`stage(name).function()`), not by import: their code is
    # its code too (a study that runs the video stages on a manifest).
    runs: tuple[str, ...] = ()

    @property
    def task(self) -> str:
        """The Prefect task's name."""
        return self.task_name or self.name

    @property
    def module_name(self) -> str:
        """The module's import name."""
        return f"{PACKAGE}.{self.module}"

    def function(self) -> StageFn:
        """The library function (its module imports on first use: TensorFlow is slow)."""
        fn: StageFn = getattr(import_module(self.module_name), self.name)
        return fn

    def code(self) -> tuple[str, ...]:
        """Every project module the stage runs: its module and all that module imports, and
        the same of each stage it `runs`."""
        modules = set(_code(self.module_name))
        for name in self.runs:
            modules |= set(STAGES[name].code())
        return tuple(sorted(modules))

    def code_files(self) -> tuple[Path, ...]:
        """The source files of `code()`."""
        return tuple(module_file(m) for m in self.code())


@cache
def _code(module: str) -> tuple[str, ...]:
    return tuple(sorted(closure(module)))


STAGES: dict[str, Stage] = {
    s.name: s
    for s in (
        Stage(
            "make_demo_videos",
            "stages.demo_data",
            "Make the embedded demo clips and their manifest.",
            params=("demo", "paths.demo_dir"),
            deps=(),
            outs=(Out("${paths.demo_dir}"),),
            home="${paths.demo_dir}",
            wanted="makes_the_manifest",  # the flow skips it for another manifest
        ),
        Stage(
            "download_videos",
            "stages.download",
            "Fetch and verify every manifest video.",
            params=("download", "paths.videos_dir"),
            deps=("${download.manifest}",),
            outs=(Out("${paths.videos_dir}", persist=True),),
            home="${paths.videos_dir}",
            per_video=True,
            task_name="download_video",
        ),
        Stage(
            "extract_frames",
            "stages.frames",
            "Sample frames from every downloaded video.",
            params=("frames", "paths.videos_dir", "paths.frames_dir"),
            deps=("${paths.videos_dir}",),
            outs=(Out("${paths.frames_dir}", persist=True),),
            home="${paths.frames_dir}",
            per_video=True,
        ),
        Stage(
            "crop_faces",
            "stages.faces",
            "Crop the faces of every video's frames (MTCNN).",
            params=("faces", "paths.frames_dir", "paths.faces_dir"),
            deps=("${paths.frames_dir}",),
            outs=(Out("${paths.faces_dir}", persist=True),),
            home="${paths.faces_dir}",
            per_video=True,
        ),
        Stage(
            "split_dataset",
            "stages.split",
            "Split the faces by group into train, validation and test.",
            # faces and face_images: the own crops' geometry, which the extra sets are re-cut to.
            params=(
                "split",
                "faces",
                "face_images.margin",
                "face_images.out_dir",
                "paths.split_dir",
                "paths.recut_dir",
            ),
            deps=("${split.faces_dir}/" + FACES_INDEX,),
            outs=(Out("${paths.split_dir}"),),
            home="${paths.split_dir}",
            note="crop_faces' table, or import_faces' (studies/dvc.yaml); split.extra_faces are "
            "read-only reference sets (a missing one is skipped, said in the report)",
        ),
        Stage(
            "train_model",
            "stages.train",
            "Train the detector.",
            # The crops' geometry places the face for self-blended fakes.
            params=(
                "train",
                "split.faces_dir",
                "faces.shape",
                "faces.margin",
                "face_images.margin",
                "face_images.out_dir",
                "paths.split_dir",
                "paths.model_dir",
            ),
            deps=("${paths.split_dir}", "${split.faces_dir}"),
            outs=(Out("${paths.model_dir}"),),
            home="${paths.model_dir}",
        ),
        Stage(
            "evaluate_model",
            "stages.evaluate",
            "Score the test split; choose the threshold and calibration on validation.",
            # split, face_images, download.manifest and train: what inference.json records of
            # the data the model learnt from and of its recipe.
            params=(
                "evaluate",
                "split",
                "train",
                "faces",
                "face_images",
                "download.manifest",
                "paths.split_dir",
                "paths.model_dir",
                "paths.evaluation_dir",
            ),
            deps=("${paths.model_dir}", "${paths.split_dir}"),
            # The curves and confusion tables are drawn by the top-level plots of dvc.yaml
            # (`dvc_yaml.PLOTS`), each once; the figure is an image plot. All small and in git,
            # so a fresh clone shows them (`dvc plots show`) before any run.
            outs=(
                *(
                    Out(f"${{paths.evaluation_dir}}/{name}")
                    for name in (PREDICTIONS_FILE, VIDEO_PREDICTIONS_FILE)
                ),
                Out("${paths.evaluation_dir}/" + REPORT_NAME, cache=False),
                Out("${paths.evaluation_dir}/" + INFERENCE_FILE, cache=False),
                *(
                    Out(f"${{paths.evaluation_dir}}/{c}", cache=False)
                    for c in (*CURVES, *CONFUSIONS, RELIABILITY_FILE)
                ),
                Out("${paths.evaluation_dir}/" + METRICS_FILE, kind="metrics", cache=False),
                Out("${paths.evaluation_dir}/" + FIGURE_FILE, kind="plots", cache=False),
            ),
            home="${paths.evaluation_dir}",
        ),
        Stage(
            "register_model",
            "stages.register",
            "Log and register the model; move the champion alias if it is better.",
            params=(
                "registry",
                "paths.model_dir",
                "paths.evaluation_dir",
                "paths.registration_dir",
            ),
            deps=(
                "${paths.model_dir}",
                "${paths.evaluation_dir}/" + METRICS_FILE,
                "${paths.evaluation_dir}/" + INFERENCE_FILE,
            ),
            # Cached, not committed: a fresh clone has no registration until it registers its own.
            outs=(Out("${paths.registration_dir}/" + REPORT_NAME),),
            home="${paths.registration_dir}",
        ),
    )
}


def stage(name: str) -> Stage:
    """The stage called `name`."""
    if name not in STAGES:
        raise KeyError(f"unknown stage '{name}'; stages are {', '.join(STAGES)}")
    return STAGES[name]


def stages_until(last: str) -> list[Stage]:
    """The stages in order, up to and including `last`."""
    names = list(STAGES)
    return [STAGES[n] for n in names[: names.index(stage(last).name) + 1]]


_VAR = re.compile(r"\$\{([\w.]+)\}")


def select(values: Mapping[str, Any], dotted: str) -> Any:
    """The value at a dotted params key ('paths.model_dir') in a params dump."""
    node: Any = values
    for part in dotted.split("."):
        node = node[part]
    return node


def resolve(template: str, values: Mapping[str, Any]) -> str:
    """A DVC path template with its `${...}` filled from a params dump."""
    return _VAR.sub(lambda m: str(select(values, m.group(1))), template)


def dump(params: Params | Mapping[str, Any]) -> Mapping[str, Any]:
    """Params as DVC sees them: plain JSON values."""
    if isinstance(params, Mapping):
        return params
    return params.model_dump(mode="json")
