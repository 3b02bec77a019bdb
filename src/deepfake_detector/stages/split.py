"""`split_dataset`: assign whole groups (identity or source video) to train, val and test."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from deepfake_detector.core import cache_keys
from deepfake_detector.core.atomic import atomic_path
from deepfake_detector.core.config import Params, SplitParams, crop_geometry
from deepfake_detector.core.dag import FACES_INDEX, SPLIT_FILE
from deepfake_detector.core.errors import UserError
from deepfake_detector.core.reports import StageReport
from deepfake_detector.sources.face_sets import face_sets_table, with_face_sets
from deepfake_detector.sources.recut import Recutter

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


class LeakageError(UserError, RuntimeError):
    """A group or a video sits on two sides of the split."""


class SplitError(UserError, ValueError):
    """The data cannot be split as asked (too few groups, conflicting fixed splits)."""


def assign_groups(groups: pd.DataFrame, params: SplitParams) -> dict[str, str]:
    """Map each group to a split: fixed splits from the manifest first, the rest by seeded shuffle.

    `groups` has one row per group with a `fixed` column ('' when the manifest set none).
    """
    fixed = {g: s for g, s in zip(groups["group"], groups["fixed"], strict=True) if s}
    free = sorted(g for g in groups["group"] if g not in fixed)
    order = np.random.default_rng(params.seed).permutation(len(free))
    shuffled = [free[i] for i in order]
    total = len(groups)
    targets = {name: getattr(params, name) * total for name in SPLITS}
    have = {name: sum(1 for s in fixed.values() if s == name) for name in SPLITS}
    assignment = dict(fixed)
    # Fill the split furthest below its target first, so small sets still get every side.
    for group in shuffled:
        name = max(SPLITS, key=lambda n: (targets[n] - have[n], -SPLITS.index(n)))
        assignment[group] = name
        have[name] += 1
    return assignment


def check_no_leakage(table: pd.DataFrame) -> None:
    """Fail loudly if any group or video appears in more than one split."""
    for column in ("group", "video_id"):
        sides = table.groupby(column)["split"].nunique()
        leaked = sorted(sides[sides > 1].index)
        if leaked:
            raise LeakageError(f"{column}s on more than one side of the split: {leaked[:10]}")


def split_faces(faces: pd.DataFrame, params: SplitParams) -> pd.DataFrame:
    """Return the faces table with its `split` column set group by group."""
    if faces.empty:
        raise SplitError("no faces to split: check the crop_faces report")
    fixed = faces.groupby("group")["split"].agg(lambda s: sorted(set(s) - {""}))
    conflicting = fixed[fixed.map(len) > 1]
    if not conflicting.empty:
        raise SplitError(
            f"groups with several fixed splits in the manifest: {list(conflicting.index)}"
        )
    unknown = {s for v in fixed for s in v} - set(SPLITS)
    if unknown:
        raise SplitError(f"unknown split names in the manifest: {sorted(unknown)}")
    groups = pd.DataFrame({"group": fixed.index, "fixed": [v[0] if v else "" for v in fixed]})
    sides = [name for name in SPLITS if getattr(params, name) > 0]
    if len(groups) < len(sides):
        raise SplitError(
            f"{len(groups)} group(s) cannot fill {', '.join(sides)}: need at least {len(sides)}"
        )
    assignment = assign_groups(groups, params)
    out = faces.copy()
    out["split"] = out["group"].map(assignment)
    check_no_leakage(out)
    return out


def own_fractions(params: SplitParams, extra: pd.DataFrame) -> SplitParams:
    """When other people's faces validate (an extra set with a `val_share`), none of the own
    groups is spent on validation: its share trains, so the model learns from every person
    that is not needed to test it."""
    if extra.empty or not (extra["split"] == "val").any():
        return params
    return params.model_copy(update={"train": params.train + params.val, "val": 0.0})


def split_dataset(params: Params, root: Path = Path(".")) -> StageReport:
    """Stage: split the faces table by group, check for leakage, and write `split.csv`."""
    report = StageReport("split_dataset")
    report.details["key"] = cache_keys.stage_key("split_dataset", params, root)
    faces_dir = root / params.split.faces_dir
    faces = pd.read_csv(faces_dir / FACES_INDEX, dtype={"split": str, "group": str})
    faces["split"] = faces["split"].fillna("")
    # Other people's faces join training, validation and (by test_share) test, framed like the
    # own crops (re-cut as MTCNN's box).
    extra = face_sets_table(
        params.split.extra_faces,
        root,
        params.split.seed,
        crop_geometry(params, params.split.faces_dir),
        report,
        Recutter.from_params(params, root),
    )
    table = split_faces(faces, own_fractions(params.split, extra))
    out_dir = root / params.paths.split_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    # Crops stay where they are; split.csv names them relative to its own folder.
    table["file"] = [os.path.relpath(faces_dir / f, out_dir) for f in table["file"]]
    table = with_face_sets(table, extra, out_dir)
    if not (table["split"] == "val").any():
        raise SplitError(
            "no validation faces: set split.val above 0, or give an extra face set a val_share"
        )
    check_no_leakage(table)
    with atomic_path(out_dir / SPLIT_FILE) as tmp:
        table.to_csv(tmp, index=False)
    summary = table.groupby(["split", "label"]).agg(
        faces=("file", "size"), videos=("video_id", "nunique"), groups=("group", "nunique")
    )
    for (split, label), row in summary.iterrows():
        report.count(f"{split}_{label}_faces", int(row["faces"]))
        report.count(f"{split}_{label}_videos", int(row["videos"]))
    report.details["groups"] = {
        s: sorted(table.loc[table["split"] == s, "group"].unique().tolist()) for s in SPLITS
    }
    for split in SPLITS:
        labels = set(table.loc[table["split"] == split, "label"])
        if labels != {"real", "fake"}:
            report.details.setdefault("warnings", []).append(f"{split} holds only {sorted(labels)}")
            log.warning("split_dataset: %s holds only %s", split, sorted(labels))
    return report.finish(out_dir)
