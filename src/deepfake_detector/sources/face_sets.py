"""Face sets of other people beside the pipeline's own data: read, sampled, and split.

A face set is a folder of face crops described by `FaceSetParams`: the DFDC face crops
(`metadata.csv`: file, label, group = the real source video, so a fake and its source share a
group), the FaceForensics++ crops (split by `block`, crops pooled into videos by target and
method) or a folder of real faces, one person each (UTKFace). Its faces join the training side
and, by `val_share` and `test_share`, validation and the test side (whole groups). Groups are
prefixed with the set's name so they cannot meet the pipeline's own group names.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from deepfake_detector.core.artifacts import SPLIT_FILE
from deepfake_detector.core.config import CropGeometry, FaceSetParams, Params
from deepfake_detector.core.errors import UserError
from deepfake_detector.core.reports import StageReport
from deepfake_detector.sources.face_images import with_label
from deepfake_detector.sources.recut import Recutter, recut_table

log = logging.getLogger(__name__)

METADATA_FILE = "metadata.csv"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


class FaceSetError(UserError, ValueError):
    """A face set's folder or metadata cannot give a labelled, grouped table."""


def read_face_set(face_set: FaceSetParams, root: Path) -> pd.DataFrame:
    """Every face of the set in the faces-table format: file and path (absolute), label, y,
    group, identities, video_id, frame_index, face_index, dataset, method."""
    folder = root / face_set.root
    if not folder.is_dir():
        raise FaceSetError(f"face set '{face_set.name}': no such folder {folder}")
    if face_set.format == "metadata":
        meta_path = folder / METADATA_FILE
        if not meta_path.is_file():
            raise FaceSetError(f"face set '{face_set.name}': no {METADATA_FILE} in {folder}")
        named = [face_set.group_column, *face_set.video_columns]
        meta = pd.read_csv(meta_path, dtype=dict.fromkeys(["group", *named], str))
        missing = {"file", "label", *named} - set(meta.columns)
        if missing:
            raise FaceSetError(f"{meta_path}: missing columns {sorted(missing)}")
        bad = ~meta["label"].isin(["real", "fake"])
        if bad.any():
            raise FaceSetError(
                f"{meta_path}: labels other than real/fake: {meta['label'][bad][:3]}"
            )
        table = meta[["file", "label"]].assign(group=meta[face_set.group_column])
        if face_set.video_columns:
            table["video"] = meta[list(face_set.video_columns)].astype(str).agg(":".join, axis=1)
        if "method" in meta:  # the forgery method of each fake, where the set names it
            table["method"] = meta["method"].fillna("").astype(str)
    else:
        files = sorted(
            p.name for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
        )
        table = pd.DataFrame(
            {"file": files, "label": "real", "group": [Path(f).stem for f in files]}
        )
    if table.empty:
        raise FaceSetError(f"face set '{face_set.name}': no faces in {folder}")
    table["file"] = [str(folder / f) for f in table["file"]]
    if "video" in table:
        table["video_id"] = face_set.name + ":" + table.pop("video")
        table["frame_index"] = table.groupby("video_id").cumcount()
    else:
        table["video_id"] = [f"{face_set.name}:{Path(f).stem}" for f in table["file"]]
        table["frame_index"] = 0
    table["group"] = face_set.name + ":" + table["group"].astype(str)
    table["dataset"] = face_set.name
    # The faces-table columns a crop has: one face, its own identity.
    table["face_index"] = 0
    table["identities"] = table["group"]
    named = table["method"] if "method" in table else pd.Series("", index=table.index)
    table["method"] = np.where(table["label"] == "fake", named.replace("", face_set.name), "")
    table["path"] = [Path(f) for f in table["file"]]
    # The face box is the whole crop (`y`, as in every table read for training, is the label):
    # video scores link faces by their boxes, and a crop's video has one face per frame.
    table["x"], table["box_y"], table["w"], table["h"] = 0, 0, 224, 224
    table["y"] = (table["label"] == "fake").astype("float32")
    return table


def sample_groups(table: pd.DataFrame, limit: int, seed: int) -> pd.DataFrame:
    """Whole groups in a seeded order until `limit` faces (0: all)."""
    if not limit or len(table) <= limit:
        return table
    groups = sorted(table["group"].unique())
    order = np.random.default_rng(seed).permutation(len(groups))
    sizes = table.groupby("group").size()
    keep, total = [], 0
    for i in order:
        if total >= limit:
            break
        keep.append(groups[i])
        total += int(sizes[groups[i]])
    return table[table["group"].isin(keep)]


def assign_validation(
    table: pd.DataFrame, share: float, seed: int, test_share: float = 0.0
) -> pd.Series:
    """`train`, `val` or `test` per row: a seeded share of whole groups validates, the next
    `test_share` of them tests."""
    groups = sorted(table["group"].unique())
    n_val = int(round(share * len(groups)))
    n_test = int(round(test_share * len(groups)))
    order = np.random.default_rng(seed + 1).permutation(len(groups))
    side = {groups[i]: "val" for i in order[:n_val]}
    side |= {groups[i]: "test" for i in order[n_val : n_val + n_test]}
    return table["group"].map(lambda g: side.get(g, "train"))


def face_set_geometry(face_set: FaceSetParams) -> CropGeometry:
    """How a set's crops frame the face: tight boxes with its margin (re-cut so when `recut`)."""
    return CropGeometry("box", face_set.margin)


def same_geometry(a: CropGeometry, b: CropGeometry) -> bool:
    """Whether two crop geometries frame the face alike (shape, and margin to rounding)."""
    return a.shape == b.shape and abs(a.margin - b.margin) <= 1e-6


def face_set_rows(
    face_set: FaceSetParams,
    root: Path,
    seed: int,
    report: StageReport,
    recutter: Recutter | None = None,
) -> pd.DataFrame | None:
    """A set's sampled faces with their `split`, or None (skipped, with the reason) when its
    folder cannot be read. With a `recutter`, a `recut` set's crops are cut again
    (`sources.recut`)."""
    try:
        table = read_face_set(face_set, root)
    except FaceSetError as exc:
        report.skip(face_set.name, str(exc))
        log.warning("%s", exc)
        return None
    table = sample_groups(table, face_set.limit, seed)
    table["split"] = assign_validation(table, face_set.val_share, seed, face_set.test_share)
    if face_set.recut and recutter is not None:
        table = recut_table(table, recutter, face_set.margin, report)
    table["real_only"] = face_set.format == "real"
    report.count(f"{face_set.name}_faces", len(table))
    report.count(f"{face_set.name}_groups", table["group"].nunique())
    return table


def face_sets_table(
    face_sets: tuple[FaceSetParams, ...],
    root: Path,
    seed: int,
    geometry: CropGeometry,
    report: StageReport,
    recutter: Recutter | None = None,
) -> pd.DataFrame:
    """Every usable set's faces in the faces-table format, with `split` (train, val, test), an
    absolute `path` and `y`; columns the sets lack (landmarks, unless re-cut) are left empty."""
    parts, other_geometry = [], []
    for face_set in face_sets:
        own = face_set_geometry(face_set)
        if not same_geometry(own, geometry):  # crops that frame the face otherwise: not joined
            report.skip(
                face_set.name,
                f"crops cut as {own}, the pipeline's as {geometry}: "
                "mixing them would teach the crop style instead of the forgery",
                logging.DEBUG,  # what params ask for (the demo's own crops): one line for all below
            )
            other_geometry.append(face_set.name)
            continue
        rows = face_set_rows(face_set, root, seed, report, recutter)
        if rows is not None:
            parts.append(rows)
    if other_geometry:
        log.info(
            "%s not joined: crops cut otherwise than the pipeline's %s (the reasons: report.json)",
            ", ".join(other_geometry),
            geometry,
        )
    if not parts:
        return pd.DataFrame(columns=["file", "label", "group", "video_id", "split", "path", "y"])
    return pd.concat(parts, ignore_index=True)


def with_face_sets(table: pd.DataFrame, extra: pd.DataFrame, relative_to: Path) -> pd.DataFrame:
    """The split faces table with the face sets' rows (`face_sets_table`) added, their files
    named relative to `relative_to` like the table's own."""
    if extra.empty:
        return table
    # `y` is the label in memory; in the table on disk it is the box's top, as crop_faces writes.
    extra = extra.drop(columns=["path", "y"]).rename(columns={"box_y": "y"})
    extra["file"] = [os.path.relpath(f, relative_to) for f in extra["file"]]
    out = pd.concat([table, extra], ignore_index=True)
    out["real_only"] = out["real_only"].astype("boolean").fillna(False).astype(bool)
    return out


def training_summary(table: pd.DataFrame, group_kinds: dict[str, str]) -> dict[str, object]:
    """What a model learnt from: per dataset, faces (real, fake) and groups; and in words."""
    datasets: dict[str, dict[str, Any]] = {}
    for name, part in table.groupby(table["dataset"].fillna("").replace("", "own"), sort=True):
        datasets[str(name)] = {
            "faces": int(len(part)),
            "real_faces": int((part["label"] == "real").sum()),
            "fake_faces": int((part["label"] == "fake").sum()),
            "groups": int(part["group"].nunique()),
            "group_kind": group_kinds.get(str(name), "person"),
        }
    words = ", ".join(
        f"{d['groups']:,} {_plural(str(d['group_kind']), int(d['groups']))} of {name} "
        f"({d['faces']:,} faces)"
        for name, d in datasets.items()
    )
    return {"datasets": datasets, "faces": int(len(table)), "summary": f"learnt from {words}"}


def _plural(noun: str, n: int) -> str:
    if n == 1:
        return noun
    head, of, rest = noun.partition(" of ")
    if of:  # "block of videos": the head takes the plural
        return _plural(head, n) + of + rest
    if noun == "person":
        return "people"
    return noun[:-1] + "ies" if noun.endswith("y") and noun[-2:-1] not in "aeiou" else noun + "s"


def read_split(params: Params, root: Path = Path(".")) -> pd.DataFrame:
    """The split faces table; `path` joins each crop's `file` to the split table's folder."""
    table = pd.read_csv(root / params.paths.split_dir / SPLIT_FILE, dtype={"group": str})
    table["path"] = [root / params.paths.split_dir / f for f in table["file"]]
    return with_label(table)
