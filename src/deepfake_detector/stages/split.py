"""`split_dataset`: assign whole groups (identity or source video) to train, val and test."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pandas as pd

from deepfake_detector.core import cache_keys
from deepfake_detector.core.artifacts import FACES_INDEX, SPLIT_FILE
from deepfake_detector.core.atomic import atomic_path
from deepfake_detector.core.config import Params, crop_geometry
from deepfake_detector.core.reports import StageReport
from deepfake_detector.recipes.splitting import (
    SPLITS,
    SplitError,
    check_no_leakage,
    own_fractions,
    split_faces,
)
from deepfake_detector.sources.face_sets import face_sets_table, with_face_sets
from deepfake_detector.sources.recut import Recutter

log = logging.getLogger(__name__)


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
