"""`make_manifest`: turn a public deepfake dataset's own layout into the pipeline's manifest.

Each reader knows one dataset's folders and file names, labels every video and gives it the
group the split keeps on one side (an actor, an identity, a source video or a pair of videos),
so a fake always shares the group of the video it was made from. Readers return rows with
absolute local uris; `write_manifest` makes them relative to the manifest's folder.

One limit comes from the pipeline, not the datasets: a video's id is its file name without
extension (`manifest.video_id_for`), so two files with the same name (FaceForensics++ methods
all name their fakes `NNN_MMM.mp4`) cannot share a manifest; the later ones are skipped with
that reason.
"""

from __future__ import annotations

import csv
import inspect
import io
import logging
import os
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from deepfake_detector.core.atomic import atomic_path
from deepfake_detector.core.reports import StageReport
from deepfake_detector.sources.dataset_layouts import (
    DatasetError,
    GroupLeakageError,
    Reader,
    read_celebdf,
    read_dfdc,
    read_folder,
)
from deepfake_detector.sources.faceforensics_layout import read_dfd, read_ffpp
from deepfake_detector.sources.manifest import ManifestRow, uri_scheme

log = logging.getLogger(__name__)


READERS: dict[str, Reader] = {
    "dfd": read_dfd,
    "dfdc": read_dfdc,
    "ffpp": read_ffpp,
    "celebdf": read_celebdf,
    "folder": read_folder,
}

STAGE = "make_manifest"
MANIFEST_COLUMNS = ("uri", "label", "group", "sha256", "split", "method")


# --- shared helpers ------------------------------------------------------------------------


# --- DFD -----------------------------------------------------------------------------------


# --- DFDC ----------------------------------------------------------------------------------


# --- FaceForensics++ ------------------------------------------------------------------------


# --- Celeb-DF -------------------------------------------------------------------------------


# --- plain folders --------------------------------------------------------------------------


# --- the stage ------------------------------------------------------------------------------


def read_dataset(
    dataset: str, root: Path, report: StageReport, **options: Any
) -> list[ManifestRow]:
    """Rows of `dataset` (a READERS name) under `root`, sorted by uri."""
    reader = READERS.get(dataset.lower())
    if reader is None:
        raise DatasetError(f"unknown dataset '{dataset}', expected one of {sorted(READERS)}")
    if not root.is_dir():
        raise DatasetError(f"{root}: no such folder")
    try:
        inspect.signature(reader).bind(root, report, **options)
    except TypeError as exc:
        raise DatasetError(f"{dataset}: bad options {sorted(options)}: {exc}") from None
    return sorted(reader(root, report, **options), key=lambda r: r.uri)


def drop_duplicate_ids(rows: list[ManifestRow], report: StageReport) -> list[ManifestRow]:
    """The rows minus later ones whose video id (file name) is taken; each is skipped with why."""
    first: dict[str, ManifestRow] = {}
    kept = []
    for row in rows:
        if row.video_id in first:
            report.skip(
                row.uri,
                f"duplicate video_id '{row.video_id}' (same file name as "
                f"{first[row.video_id].uri}): the pipeline names videos by file name; "
                "make one manifest per such subset",
            )
            continue
        first[row.video_id] = row
        kept.append(row)
    return kept


def check_group_splits(rows: Iterable[ManifestRow]) -> None:
    """Raise GroupLeakageError if any group has rows fixed to two different splits."""
    sides: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        if row.split:
            sides[row.group].add(row.split)
    leaked = {g: sorted(s) for g, s in sorted(sides.items()) if len(s) > 1}
    if leaked:
        shown = ", ".join(f"{g}: {s}" for g, s in list(leaked.items())[:10])
        raise GroupLeakageError(
            f"{len(leaked)} group(s) on more than one side of the split ({shown}); "
            "fix the dataset's split files or leave split empty for these videos"
        )


def _manifest_uri(uri: str, manifest_dir: Path) -> str:
    """A local uri relative to the manifest's folder (absolute across drives); urls unchanged."""
    if uri_scheme(uri) or not Path(uri).is_absolute():
        return uri
    path = Path(uri)
    # Resolve folders, not the file: a symlinked video keeps its name, hence its video id.
    try:
        return Path(os.path.relpath(path.parent.resolve() / path.name, manifest_dir)).as_posix()
    except ValueError:
        return path.as_posix()


def write_manifest(rows: Iterable[ManifestRow], out_path: Path) -> None:
    """Write rows atomically as a manifest CSV (`uri,label,group,sha256,split,method`)."""
    manifest_dir = out_path.parent.resolve()
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(MANIFEST_COLUMNS)
    for row in rows:
        uri = _manifest_uri(row.uri, manifest_dir)
        writer.writerow(
            [uri, row.label, row.group, row.sha256 or "", row.split or "", row.method or ""]
        )
    with atomic_path(out_path) as tmp:
        tmp.write_text(buffer.getvalue(), encoding="utf-8")


def make_manifest(dataset: str, root: Path, out: Path, **options: Any) -> StageReport:
    """Read `dataset` under `root`, check the groups against fixed splits, write the manifest."""
    report = StageReport(STAGE)
    report.details.update(dataset=dataset, root=str(root), manifest=str(out), options=options)
    rows = drop_duplicate_ids(read_dataset(dataset, root, report, **options), report)
    if not rows:
        raise DatasetError(f"{dataset} at {root}: no usable videos ({len(report.skipped)} skipped)")
    check_group_splits(rows)
    write_manifest(rows, out)
    report.count("rows", len(rows))
    report.count("groups", len({r.group for r in rows}))
    report.counts.update(Counter(f"label_{r.label}" for r in rows))
    report.counts.update(Counter(f"split_{r.split or 'unset'}" for r in rows))
    return report.finish()
