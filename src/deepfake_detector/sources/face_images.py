"""`import_faces`: a folder of face crops as the pipeline's start, instead of videos.

The folder holds `real/` and `fake/` (any case, searched recursively) with one face image per
file. A regular expression over each file's name (without extension) gives its `group` (the
identity the split keeps on one side), and optionally its `video`, `frame`, `source` (a second
identity, such as the face swapped into a fake) and `method` (the forgery method). The result is
a faces table in the format `crop_faces` writes, whose `file` column points at the images in
place (nothing is copied), plus `dataset`, `method` and `identities` columns.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import pandas as pd
from PIL import Image, UnidentifiedImageError

from deepfake_detector.core.artifacts import FACES_INDEX as INDEX
from deepfake_detector.core.atomic import atomic_path
from deepfake_detector.core.config import FaceImagesParams, Params
from deepfake_detector.core.errors import UserError
from deepfake_detector.core.reports import StageReport
from deepfake_detector.sources.images import MAX_PIXELS
from deepfake_detector.sources.recut import Recutter, recut_table

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")  # what training's decoder reads
MIN_CROP_SIDE = 20  # MTCNN's smallest face: a narrower "crop" holds no face
MAX_CROP_ASPECT = 4  # a face crop is about square; a long strip is something else
# The faces table: one row per crop (crop_faces writes it; import_faces adds EXTRA_COLUMNS).
FACES_COLUMNS = [
    "video_id",
    "frame_index",
    "face_index",
    "file",
    "x",
    "y",
    "w",
    "h",
    "confidence",
    "landmarks",
    "label",
    "group",
    "split",
]
EXTRA_COLUMNS = ["dataset", "method", "identities"]
LABEL_FOLDERS = {"real": "real", "fake": "fake"}


class FaceImagesError(UserError, ValueError):
    """The folder or the file-name pattern cannot give a labelled, grouped faces table."""


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """The file-name pattern, checked to name a `group`."""
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise FaceImagesError(f"face_images.pattern is not a regular expression: {exc}") from exc
    if "group" not in compiled.groupindex:
        raise FaceImagesError(
            "face_images.pattern must name the group, e.g. (?P<group>\\d+); "
            f"it names {sorted(compiled.groupindex) or 'nothing'}"
        )
    return compiled


def _label_folders(root: Path) -> list[tuple[str, Path]]:
    if not root.is_dir():
        raise FaceImagesError(f"face_images.root: no such folder {root}")
    found = [
        (LABEL_FOLDERS[p.name.lower()], p)
        for p in sorted(root.iterdir())
        if p.is_dir() and p.name.lower() in LABEL_FOLDERS
    ]
    if not found:
        raise FaceImagesError(f"{root}: expected sub-folders real/ and fake/")
    return found


def _readable(path: Path) -> str | None:
    """None if PIL decodes the whole image (a truncated file is caught here, not in training)."""
    if path.stat().st_size == 0:
        return "empty file"
    try:
        with Image.open(path) as image:
            if image.width * image.height > MAX_PIXELS:
                return (
                    f"{image.width}x{image.height} pixels is more than the {MAX_PIXELS:,} allowed"
                )
            if min(image.size) < MIN_CROP_SIDE or max(image.size) > MAX_CROP_ASPECT * min(
                image.size
            ):
                return (
                    f"not a face crop: {image.width}x{image.height} pixels (a crop is at least "
                    f"{MIN_CROP_SIDE} px a side and at most {MAX_CROP_ASPECT}:1)"
                )
            image.load()
    except (
        OSError,
        UnidentifiedImageError,
        SyntaxError,
        ValueError,
        Image.DecompressionBombError,
    ) as exc:
        return f"not a readable image: {exc}"
    return None


def read_face_images(
    images: FaceImagesParams, root: Path, out_dir: Path, report: StageReport
) -> pd.DataFrame:
    """The faces table of a face-image folder; `file` is relative to `out_dir`."""
    pattern = compile_pattern(images.pattern)
    folder = root / images.root
    rows = []
    for label, label_dir in _label_folders(folder):
        for path in sorted(label_dir.rglob("*")):
            if path.is_symlink() and not path.exists():
                report.skip(str(path), "cannot read the file (a dangling link or a link loop)")
                continue
            if not path.is_file():
                continue
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                report.skip(str(path), f"not an image file ({', '.join(IMAGE_SUFFIXES)})")
                continue
            match = pattern.fullmatch(path.stem)
            if match is None or not match["group"]:
                report.skip(str(path), f"name does not match pattern {images.pattern!r}")
                continue
            problem = _readable(path)
            if problem:
                report.skip(str(path), problem)
                continue
            fields = match.groupdict()
            width, height = Image.open(path).size
            identities = [fields["group"]] + ([fields["source"]] if fields.get("source") else [])
            rows.append(
                {
                    "video_id": fields.get("video") or path.stem,
                    "frame_index": int(fields["frame"]) if fields.get("frame") else 0,
                    "face_index": 0,
                    "file": os.path.relpath(path, out_dir),
                    # The crop is the face: its box is the whole image.
                    "x": 0,
                    "y": 0,
                    "w": width,
                    "h": height,
                    "confidence": float("nan"),
                    "landmarks": "",
                    "label": label,
                    "group": fields["group"],
                    "split": "",
                    "dataset": images.dataset,
                    "method": fields.get("method") or ("" if label == "real" else images.method),
                    "identities": ";".join(identities),
                }
            )
            report.count(f"{label}_faces")
    table = pd.DataFrame(rows, columns=FACES_COLUMNS + EXTRA_COLUMNS)
    if table.empty:
        raise FaceImagesError(f"{folder}: no face images matched the pattern; see the skips")
    mixed = table.groupby("video_id")["label"].nunique()
    if (mixed > 1).any():
        raise FaceImagesError(
            f"videos with both labels (the pattern's video must differ between real and fake): "
            f"{list(mixed[mixed > 1].index[:5])}"
        )
    # Frame indices must be unique per video for frame-level scores; number files otherwise.
    duplicated = table.duplicated(["video_id", "frame_index"], keep=False)
    if duplicated.any():
        table["frame_index"] = table.groupby("video_id").cumcount()
    return table


def import_faces(params: Params, root: Path = Path(".")) -> StageReport:
    """Stage: index a folder of face images into `faces.csv` (the pipeline's faces table)."""
    report = StageReport("import_faces")
    images = params.face_images
    out_dir = root / images.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    table = read_face_images(images, root, out_dir, report)
    if images.recut:
        table = recut_faces_table(table, params, root, out_dir, report)
    with atomic_path(out_dir / INDEX) as tmp:
        table.to_csv(tmp, index=False)
    report.count("faces", len(table))
    report.count("videos", table["video_id"].nunique())
    report.count("groups", table["group"].nunique())
    log.info(
        "import_faces: %d faces of %d videos, %d groups, %d skipped",
        len(table),
        table["video_id"].nunique(),
        table["group"].nunique(),
        len(report.skipped),
    )
    return report.finish(out_dir)


def recut_faces_table(
    table: pd.DataFrame, params: Params, root: Path, out_dir: Path, report: StageReport
) -> pd.DataFrame:
    """The imported crops cut again as MTCNN's box with `face_images.margin` (`sources.recut`);
    `file` names the re-cut crop, the box and landmarks are MTCNN's in the imported crop."""
    table = table.assign(path=[out_dir / f for f in table["file"]])
    table = recut_table(
        table, Recutter.from_params(params, root), params.face_images.margin, report
    )
    table["file"] = [os.path.relpath(p, out_dir) for p in table["path"]]
    table["y"] = table.pop("box_y")
    if table.empty:
        raise FaceImagesError("no imported crop could be re-cut (no face found): see the skips")
    return table.drop(columns=["path"])


def read_faces_table(path: Path) -> pd.DataFrame:
    """A faces table (`crop_faces` or `import_faces`) with a `path` column for each crop."""
    table = pd.read_csv(path, dtype={"group": str, "split": str, "identities": str})
    for column, default in (("split", ""), ("dataset", ""), ("method", ""), ("identities", "")):
        if column not in table:
            table[column] = default
        table[column] = table[column].fillna(default).astype(str)
    empty = table["identities"] == ""
    table.loc[empty, "identities"] = table.loc[empty, "group"]
    table["path"] = [path.parent / f for f in table["file"]]
    return with_label(table)


def with_label(table: pd.DataFrame) -> pd.DataFrame:
    """`y`, the label (1: fake), as training and scoring read it; the face box's own `y`
    column, where the table has one, moves to `box_y`."""
    if "y" in table and "box_y" not in table:
        table["box_y"] = table["y"]
    table["y"] = (table["label"] == "fake").astype("float32")
    return table
