"""`dvc.yaml` and `studies/dvc.yaml` written from the stage table (`deepfake dvc_yaml`)."""

from __future__ import annotations

from pathlib import Path

from deepfake_detector.core.artifacts import CONFUSIONS, CURVES, RELIABILITY_FILE
from deepfake_detector.core.dag import STAGES, Out, Stage
from deepfake_detector.core.imports import SRC
from deepfake_detector.core.study_table import STUDY_STAGES

HEADER = """\
# Generated from the stage table (src/deepfake_detector/core/dag.py) by `deepfake dvc_yaml`:
# edit the table, then run it again (a test fails while the two differ).
# Each stage runs the CLI sub-command of its name, which calls the library function of that name;
# the Prefect tasks in tasks/ call the same functions with the same cache keys. A stage's code
# deps are its module and every project module that one imports. Per-video outputs persist
# between runs, so those stages redo only new or changed videos.
vars:
  - params.yaml

stages:
"""

STUDIES_HEADER = """\
# Generated from the stage table (src/deepfake_detector/core/dag.py) by `deepfake dvc_yaml`.
# Generalisation studies, apart from the main pipeline so `dvc repro` at the top does not run
# them. Run from the project root:
#   dvc repro studies/dvc.yaml                      (or one stage: studies/dvc.yaml:cross_dataset)
#   dvc exp run studies/dvc.yaml -S train.fine_tune_layers=60
# Each stage runs the CLI command of the same name from the project root (wdir: ..) and reads the
# top-level params.yaml. Reports are small and committed; MLflow holds every run.
vars:
  - ../params.yaml

stages:
"""

FILES = {Path("dvc.yaml"): "pipeline", Path("studies/dvc.yaml"): "studies"}

# The evaluation's tables as DVC plots, each drawn once: title, template, x column and label,
# y column and label, and the files (frame and video level share a plot where they share axes).
PLOTS = (
    (
        "ROC, frame and video level",
        "simple",
        ("fpr", "false positive rate"),
        ("tpr", "true positive rate"),
        ("roc_frame.csv", "roc_video.csv"),
    ),
    (
        "Precision-recall, frame and video level",
        "simple",
        ("recall", "recall"),
        ("precision", "precision"),
        ("pr_frame.csv", "pr_video.csv"),
    ),
    *(
        (
            f"Confusion matrix, {level} level (calibrated threshold)",
            "confusion",
            ("actual", "actual"),
            ("predicted", "predicted"),
            (f"confusion_{level}.csv",),
        )
        for level in ("video", "frame")
    ),
    (
        "Reliability, frame level (calibrated P(fake) against the share of fakes)",
        "simple",
        ("predicted", "mean P(fake) in the bin"),
        ("observed", "share of fakes in the bin"),
        (RELIABILITY_FILE,),
    ),
)


def _source(module: str) -> str:
    from deepfake_detector.core.imports import module_file

    return "src/" + module_file(module).relative_to(SRC).as_posix()


def _out(out: Out) -> list[str]:
    options = [f"persist: {'true' if out.persist else 'false'}"] if out.persist else []
    options += [] if out.cache else ["cache: false"]
    if not options:
        return [f"      - {out.path}"]
    return [f"      - {out.path}:", *(f"          {option}" for option in options)]


def _stage(stage: Stage, wdir: str = "") -> list[str]:
    lines = [f"  {stage.name}:", *([f"    wdir: {wdir}"] if wdir else [])]
    lines.append(f"    cmd: deepfake {stage.name}")
    if stage.note:
        lines.append(f"    # {stage.note}")
    lines.append("    deps:")
    lines += [f"      - {_source(m)}" for m in stage.code()]
    lines += [f"      - {dep}" for dep in stage.deps]
    lines.append("    params:")
    lines += [f"      - {key}" for key in stage.params]
    for kind in ("outs", "metrics", "plots"):
        outs = [o for o in stage.outs if o.kind == kind]
        if outs:
            lines.append(f"    {kind}:")
            for out in outs:
                lines += _out(out)
    return lines


def render(which: str = "pipeline") -> str:
    """The text of dvc.yaml ('pipeline') or of studies/dvc.yaml ('studies')."""
    if which == "studies":
        return _render(STUDIES_HEADER, list(STUDY_STAGES.values()), wdir="..") + "\n"
    return _render(HEADER, list(STAGES.values())) + "\n" + _plots()


def _render(header: str, stages: list[Stage], wdir: str = "") -> str:
    lines = header.rstrip("\n").split("\n")
    for i, stage in enumerate(stages):
        lines += ([""] if i else []) + _stage(stage, wdir)
    return "\n".join(lines)


def _plots() -> str:
    lines = ["", "plots:"]
    for title, template, (x, x_label), (y, y_label), files in PLOTS:
        assert set(files) <= {*CURVES, *CONFUSIONS, RELIABILITY_FILE}, files
        lines += [
            f"  - {title}:",
            f"      template: {template}",
            f"      x: {x}",
            "      y:",
            *(f"        ${{paths.evaluation_dir}}/{name}: {y}" for name in files),
            f"      x_label: {x_label}",
            f"      y_label: {y_label}",
        ]
    return "\n".join(lines) + "\n"
