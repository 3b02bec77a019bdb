"""A study's folds: what trains, validates and tests in each; validation carved from the
training side; other people's faces and self-blended pseudo-fakes added; leaks refused.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from deepfake_detector.core.atomic import atomic_path
from deepfake_detector.core.config import (
    CropGeometry,
    Params,
)
from deepfake_detector.core.errors import UserError
from deepfake_detector.core.reports import StageReport
from deepfake_detector.core.study_config import studies_of
from deepfake_detector.recipes.assessment import (
    Assessment,
)


class StudyError(UserError, ValueError):
    """The data cannot support the study as configured."""


@dataclass
class Fold:
    """One train/validation/test partition of a study."""

    name: str
    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame
    excluded: int = 0  # faces kept out of training because they carry a held-out identity


@dataclass
class FoldResult:
    """A fold's assessment and training facts; `candidate` is the recipe chosen on validation."""

    fold: Fold
    assessment: Assessment
    epochs: int
    seconds: float
    trained_faces: int = 0  # what training showed (real-only faces left out, pseudo-fakes in)
    candidate: str = "default"
    val_auc: float = math.nan  # frame-level AUC on the fold's validation data (the choice)
    candidates: list[dict[str, object]] | None = None  # every candidate's val and test AUC


def _carries(table: pd.DataFrame, groups: set[str]) -> pd.Series:
    """Rows whose identities (group, and source of a swapped face) meet `groups`."""
    return table["identities"].str.split(";").map(lambda ids: bool(set(ids) & groups))


def validation_split(
    table: pd.DataFrame, mode: str, share: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Split training rows into (train, val, excluded): by whole group, or by whole video.

    `group`: the seeded-first group goes to validation, and rows carrying it leave training.
    `video`: a seeded share of each label's videos goes to validation.
    `extra`: nothing: the extra face sets' validation groups validate (`with_extra`).
    """
    rng = np.random.default_rng(seed)
    if mode == "extra":  # validation comes from the extra face sets: every group trains
        return table, table.iloc[0:0], 0
    if mode == "group":
        groups = sorted(table["group"].unique())
        if len(groups) < 2:
            raise StudyError(f"validation by group needs two training groups, got {groups}")
        held = groups[int(rng.integers(len(groups)))]
        val = table[table["group"] == held]
        rest = table[table["group"] != held]
        carries = _carries(rest, {held})
        return rest[~carries], val, int(carries.sum())
    val_ids: list[str] = []
    for _, videos in table.groupby("label")["video_id"]:
        ids = sorted(videos.unique())
        n = max(1, round(share * len(ids)))
        val_ids += list(rng.choice(ids, size=min(n, len(ids) - 1), replace=False))
    val_mask = table["video_id"].isin(val_ids)
    return table[~val_mask], table[val_mask], 0


def group_folds(table: pd.DataFrame, val_mode: str, val_share: float, seed: int) -> list[Fold]:
    """One fold per group: that group is the test set; nothing carrying it is trained on."""
    groups = sorted(table["group"].unique())
    if len(groups) < 3:
        raise StudyError(f"leave-one-group-out needs at least 3 groups, got {groups}")
    folds = []
    for group in groups:
        test = table[table["group"] == group]
        rest = table[table["group"] != group]
        carries = _carries(rest, {group})
        train, val, dropped = validation_split(rest[~carries], val_mode, val_share, seed)
        folds.append(Fold(group, train, val, test, int(carries.sum()) + dropped))
    return folds


def check_fold(fold: Fold) -> None:
    """No video or identity of the test set is on the training or validation side."""
    if fold.test.empty:
        raise StudyError(f"fold {fold.name}: empty test set")
    for side, frame in (("train", fold.train), ("val", fold.val)):
        shared = set(frame["video_id"]) & set(fold.test["video_id"])
        if shared:
            raise StudyError(f"fold {fold.name}: videos in {side} and test: {sorted(shared)[:5]}")
        leaked = _carries(frame, set(fold.test["group"]))
        if leaked.any():
            raise StudyError(f"fold {fold.name}: {side} carries a test identity")
    for side, frame in (("train", fold.train), ("val", fold.val)):
        if set(frame["label"]) != {"real", "fake"}:
            raise StudyError(f"fold {fold.name}: {side} holds only {sorted(set(frame['label']))}")


def with_extra(fold: Fold, extra: pd.DataFrame) -> Fold:
    """The fold with the extra face sets' train groups added to training and their validation
    groups to validation (they hold none of the study's groups, so the test side stays clean)."""
    if extra.empty:
        return fold
    columns = list(fold.train.columns)
    train = pd.concat([fold.train, extra[extra["split"] == "train"]], ignore_index=True)
    val = pd.concat([fold.val, extra[extra["split"] == "val"]], ignore_index=True)
    for frame in (train, val):
        for column in columns:
            if column not in frame:
                frame[column] = ""
    return Fold(fold.name, train, val, fold.test, fold.excluded)


SELF_BLEND = "self_blend"  # method and video-id prefix of the validation's pseudo-fakes


def self_blend_rows(
    reals: pd.DataFrame, params: Params, root: Path, geometry: CropGeometry
) -> pd.DataFrame:
    """One self-blended pseudo-fake of each real face in `reals`, written once (PNG, seeded) to
    the study's work folder, as faces-table rows: a second kind of forgery for validation, the
    blended paste, beside the extra sets' learned swaps. Same person, group and video as its
    source, so no identity leaves its side."""
    from PIL import Image

    from deepfake_detector.learning.input_pipeline import face_dataset
    from deepfake_detector.recipes.training import face_ellipses
    from deepfake_detector.sources.images import read_image

    if reals.empty:
        return reals
    size = params.train.image_size
    reals = reals.drop_duplicates("path").sort_values("path", key=lambda p: p.astype(str))
    # Each image's draws follow its place in this list: the folder is named by the whole list.
    listing = "\n".join(str(p) for p in reals["path"]).encode()
    out_dir = (
        root
        / studies_of(params).work_dir
        / "self_blends"
        / f"{hashlib.sha256(listing).hexdigest()[:16]}_{size}px"
    )
    names = [f"{i:06d}.png" for i in range(len(reals))]
    if not all((out_dir / name).is_file() for name in names):
        out_dir.mkdir(parents=True, exist_ok=True)
        ds = face_dataset(
            list(reals["path"]),
            np.ones(len(reals), "float32"),
            size,
            64,
            read=read_image,
            blend=np.ones(len(reals), bool),
            ellipses=face_ellipses(reals, geometry),
        )
        images = np.concatenate([x.numpy() for x, _ in ds])
        for i, image in enumerate(images):
            with atomic_path(out_dir / names[i]) as tmp:
                Image.fromarray(np.clip(np.rint(image), 0, 255).astype(np.uint8)).save(
                    tmp, format="PNG"
                )
    fakes = reals.assign(
        path=[out_dir / name for name in names],
        label="fake",
        y=1.0,
        method=SELF_BLEND,
        video_id=SELF_BLEND + ":" + reals["video_id"].astype(str),
    )
    if "file" in fakes:
        fakes["file"] = [str(p) for p in fakes["path"]]
    return fakes


def add_self_blends(
    folds: list[Fold], params: Params, root: Path, geometry: CropGeometry, report: StageReport
) -> list[Fold]:
    """Each fold with a pseudo-fake of every validation real face beside it in validation."""
    reals = pd.concat([f.val[f.val["label"] == "real"] for f in folds], ignore_index=True)
    blends = self_blend_rows(reals, params, root, geometry)
    report.count("validation_self_blends", len(blends))
    return [with_self_blends(fold, blends) for fold in folds]


def with_self_blends(fold: Fold, blends: pd.DataFrame) -> Fold:
    """The fold with the pseudo-fakes of its validation reals added to validation."""
    if blends.empty:
        return fold
    mine = blends[blends["video_id"].isin(SELF_BLEND + ":" + fold.val["video_id"].astype(str))]
    val = pd.concat([fold.val, mine], ignore_index=True)
    return Fold(fold.name, fold.train, val, fold.test, fold.excluded)
