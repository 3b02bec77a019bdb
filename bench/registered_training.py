"""10. Registered model: training the detector the README registers, on every face set.

Inputs: a throw-away copy of the project with params.yaml's settings and
`split.faces_dir: data/face_images` (the README's registered model): the DFD crops of
`dfd/faces` imported as the own faces, and every set of `split.extra_faces` (DFDC, FaceForensics++
and UTKFace crops, their roots pointed at the shared data). `import_faces` and `split_dataset`
run first (the split re-cuts every imported crop with MTCNN, `sources.recut`, into the copy's
own cache); then `train_model` and `evaluate_model` are timed as whole processes (start-up,
TensorFlow import, ImageNet weights, every face embedded, pseudo-fakes made, the head fitted;
then every validation and test face scored with its mirror image). The baseline is the same
recipe without the FaceForensics++ set (the data the registered model learnt from before).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bench import projects
from bench.context import Context
from bench.results import Row, fmt

NAME = "registered"
TITLE = "10. Registered model"
TARGET_S = 30 * 60.0
# Each command may run to twice the target: a training past it is timed and shown missing the
# target, not killed at the projects' usual stage limit (15 min, under the target); the first
# split re-detects every imported crop's face, which on a busy machine takes as long.
TIMEOUT_S = 2 * TARGET_S
ADDED = "ffpp_faces"  # the set the baseline leaves out
LIMITS = """
Training is the frozen base's forward pass over every face and its pseudo-fakes and augmented
copies (one pass each; the logistic head itself takes seconds): its time grows with the number
of faces, about linearly. Fine-tuning the base would pay the full backward pass on every image
of every epoch instead (about a third of the frozen rate, benchmark 3), which is why the
recipe keeps the base frozen.
"""


def extra_sets(ctx: Context, keep_added: bool) -> list[dict[str, Any]]:
    """params.yaml's extra face sets, their roots on the shared data (absolute)."""
    params = yaml.safe_load((ctx.repo / "params.yaml").read_text())
    sets = []
    for face_set in params["split"]["extra_faces"]:
        if face_set["name"] == ADDED and not keep_added:
            continue
        root = (ctx.repo / face_set["root"]).resolve()
        if not root.is_dir():
            continue  # absent shared data: the pipeline would skip it too
        sets.append(face_set | {"root": str(root)})
    return sets


def setup(ctx: Context, name: str, keep_added: bool) -> Path:
    """A project that imports the DFD crops and splits them beside the extra sets."""
    project = projects.make_project(
        ctx,
        name,
        {
            "face_images": {"root": str(ctx.data("dfd", "faces"))},
            "split": {"faces_dir": "data/face_images", "extra_faces": extra_sets(ctx, keep_added)},
        },
    )
    for stage in ("import_faces", "split_dataset"):
        projects.run(["deepfake", stage], project, TIMEOUT_S).check(stage)
    return project


def timed(project: Path, stage: str) -> float:
    return projects.run(["deepfake", stage], project, TIMEOUT_S).check(stage).seconds


def faces(project: Path) -> int:
    import pandas as pd

    return len(pd.read_csv(project / "data" / "processed" / "split.csv"))


def run(ctx: Context) -> tuple[list[Row], list[str]]:
    """Wall time of train_model and evaluate_model on every set, against the same without FF++."""
    ctx.data("ffpp_faces")
    ours, base = setup(ctx, "registered", True), setup(ctx, "registered-before", False)
    seconds = {}
    for label, project in (("ours", ours), ("base", base)):
        for stage in ("train_model", "evaluate_model"):
            seconds[label, stage] = timed(project, stage)
    train_s = seconds["ours", "train_model"]
    rows = [
        Row(
            TITLE,
            f"`train_model` wall time, every set ({faces(ours):,} faces) vs without FF++ "
            f"({faces(base):,})",
            fmt(seconds["base", "train_model"], "s"),
            fmt(train_s, "s"),
            f"{train_s / seconds['base', 'train_model']:.2f}x",
            "<= 30 min",
            train_s <= TARGET_S,
        ),
        Row(
            TITLE,
            "`evaluate_model` wall time (validation and test faces, mirror average)",
            fmt(seconds["base", "evaluate_model"], "s"),
            fmt(seconds["ours", "evaluate_model"], "s"),
            f"{seconds['ours', 'evaluate_model'] / seconds['base', 'evaluate_model']:.2f}x",
        ),
    ]
    notes = [
        "Whole processes, one run each (a repeat would take as long again); the split's "
        "faces include validation and test faces, which training does not embed."
    ]
    return rows, notes
