"""The public datasets' own layouts: one reader per dataset (DFD, DFDC, FaceForensics++,
Celeb-DF, a folder of real/ and fake/), each labelling every video and giving it the group the
split keeps on one side (an actor, an identity, a source video or a pair of videos), so a fake
always shares the group of the video it was made from. Readers return rows with absolute local
uris; `datasets.write_manifest` makes them relative to the manifest's folder.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from deepfake_detector.core.errors import UserError
from deepfake_detector.core.reports import StageReport
from deepfake_detector.sources.manifest import LABELS, SPLITS, ManifestRow, video_id_for

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")
CELEBDF_TEST_LIST = "List_of_testing_videos.txt"
CELEBDF_GROUPINGS = ("identity", "video")
_YOUTUBE_REAL = re.compile(r"\d+")
_CELEB_REAL = re.compile(r"(id\d+)_(\d+)")
_CELEB_FAKE = re.compile(r"(id\d+)_(id\d+)_(\d+)")
Reader = Callable[..., list[ManifestRow]]

log = logging.getLogger(__name__)


class DatasetError(UserError, ValueError):
    """A dataset folder does not have the layout its reader expects, or an option is wrong."""


class GroupLeakageError(DatasetError):
    """A group would sit on more than one side of the split."""


def layout_row(
    path: Path, label: str, group: str, split: str | None = None, method: str | None = None
) -> ManifestRow:
    """A manifest row for a local file, its uri absolute (made relative when written)."""
    uri = Path(os.path.abspath(path)).as_posix()
    return ManifestRow(
        video_id=video_id_for(uri),
        uri=uri,
        label=label,
        group=group,
        sha256=None,
        split=split,
        method=method if label == "fake" else None,
    )


def child_folders(folder: Path, name: str) -> list[Path]:
    """Sub-folders of `folder` called `name`, ignoring case (`Real`, `real`, `REAL`)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_dir() and p.name.lower() == name.lower())


def video_files(
    folder: Path,
    report: StageReport,
    suffixes: Iterable[str] = VIDEO_SUFFIXES,
    recursive: bool = False,
) -> list[Path]:
    """Video files in `folder`, sorted; other files are skipped with why, hidden ones ignored."""
    wanted = {s.lower() if s.startswith(".") else f".{s.lower()}" for s in suffixes}
    found = []
    for path in sorted(folder.rglob("*") if recursive else folder.iterdir()):
        if not path.is_file():
            continue
        if any(part.startswith(".") for part in path.relative_to(folder).parts):
            report.count("hidden_files_ignored")
            continue
        if path.suffix.lower() not in wanted:
            report.skip(
                str(path), f"not a video (suffix '{path.suffix}', expected {sorted(wanted)})"
            )
            continue
        found.append(path)
    return found


def load_json(path: Path) -> Any:
    """Parsed JSON of `path`; unreadable or invalid files raise DatasetError naming the file."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{path}: not readable JSON ({exc})") from None


def _dfdc_metadata_files(root: Path) -> list[Path]:
    """`metadata.json` of `root` itself or of each part folder directly under it."""
    files = [root / "metadata.json"] if (root / "metadata.json").is_file() else []
    if root.is_dir():
        files += sorted(
            p / "metadata.json" for p in root.iterdir() if (p / "metadata.json").is_file()
        )
    return files


def read_dfdc(root: Path, report: StageReport, *, splits: bool = False) -> list[ManifestRow]:
    """Kaggle DFDC part folders with `metadata.json`; group = the original video (a real: itself).

    The metadata's `split` is used only with `splits=True`: the training parts all say 'train'.
    """
    metadata_files = _dfdc_metadata_files(root)
    if not metadata_files:
        raise DatasetError(f"{root}: no metadata.json there or in a part folder under it")
    rows = []
    for meta in metadata_files:
        entries = load_json(meta)
        if not isinstance(entries, dict):
            raise DatasetError(f"{meta}: expected an object mapping file names to entries")
        report.count("dfdc_parts")
        listed = set()
        for name, info in sorted(entries.items()):
            listed.add(name)
            path = meta.parent / name
            item = str(path)
            if not isinstance(info, dict):
                report.skip(item, "metadata entry is not an object")
                continue
            label = str(info.get("label", "")).lower()
            if label not in LABELS:
                report.skip(item, f"unknown label '{info.get('label')}' in {meta.name}")
                continue
            if not path.is_file():
                report.skip(item, f"listed in {meta} but absent on disk")
                continue
            original = info.get("original")
            if label == "fake" and not original:
                report.count("dfdc_fake_without_original")
                log.warning("%s: fake without an original in %s: its own group", item, meta)
            # The group is spelled as the source's video id, so a fake and its source share it.
            group = video_id_for(str(original) if label == "fake" and original else name)
            split = str(info.get("split", "")).lower() if splits else ""
            rows.append(layout_row(path, label, group, split if split in SPLITS else None))
        for path in sorted(meta.parent.iterdir()):
            if path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES and path.name not in listed:
                report.skip(str(path), f"not listed in {meta}: no label")
    return rows


def _celebdf_test_list(path: Path, report: StageReport) -> dict[str, str]:
    """Relative path -> label ('real' for 1, 'fake' for 0) of Celeb-DF's test list."""
    listed = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or parts[0] not in ("0", "1"):
            report.skip(f"{path.name} line {number}", f"expected '<1|0> <folder>/<file>': {line!r}")
            continue
        listed[parts[1].replace("\\", "/")] = "real" if parts[0] == "1" else "fake"
    return listed


def read_celebdf(
    root: Path,
    report: StageReport,
    *,
    test_list: bool = True,
    group_by: str = "identity",
) -> list[ManifestRow]:
    """Celeb-DF v2; group = the target identity (`group_by='video'`: the target video).

    Videos in `List_of_testing_videos.txt` get split 'test'; a group with some test videos is
    moved whole to test (counted) so that no group straddles the split.
    """
    if group_by not in CELEBDF_GROUPINGS:
        raise DatasetError(f"unknown group_by '{group_by}', expected one of {CELEBDF_GROUPINGS}")
    folders = {
        name: child_folders(root, name)
        for name in ("Celeb-real", "YouTube-real", "Celeb-synthesis")
    }
    if not any(folders.values()):
        raise DatasetError(f"{root}: no Celeb-real, YouTube-real or Celeb-synthesis folder")
    found: list[tuple[Path, str, str]] = []  # path, label, group
    for folder in folders["Celeb-real"]:
        for path in video_files(folder, report):
            match = _CELEB_REAL.fullmatch(path.stem)
            if match is None:
                report.skip(str(path), "not a Celeb-real video name (idX_NNNN)")
                continue
            group = match.group(1) if group_by == "identity" else path.stem
            found.append((path, "real", group))
    for folder in folders["YouTube-real"]:
        for path in video_files(folder, report):
            if _YOUTUBE_REAL.fullmatch(path.stem) is None:
                report.skip(str(path), "not a YouTube-real video name (NNNNN)")
                continue
            found.append((path, "real", f"yt_{path.stem}"))
    for folder in folders["Celeb-synthesis"]:
        for path in video_files(folder, report):
            match = _CELEB_FAKE.fullmatch(path.stem)
            if match is None:
                report.skip(str(path), "not a Celeb-synthesis video name (idX_idY_NNNN)")
                continue
            # idX_idY_NNNN is idX's video NNNN with idY's face put in: it goes with idX.
            target, _, number = match.groups()
            group = target if group_by == "identity" else f"{target}_{number}"
            found.append((path, "fake", group))

    listed: dict[str, str] = {}
    list_path = root / CELEBDF_TEST_LIST
    if test_list and list_path.is_file():
        listed = _celebdf_test_list(list_path, report)
    elif test_list:
        log.warning("%s is absent: no video is fixed to test", list_path)
    report.details["test_list"] = bool(listed)

    relative = {path: path.relative_to(root).as_posix() for path, _, _ in found}
    in_list = {path for path in relative if relative[path] in listed}
    for path, label, _ in found:
        if path in in_list and listed[relative[path]] != label:
            # The folder is the dataset's own labelling; the list's digit is only a cross-check.
            report.count("celebdf_test_list_label_mismatch")
            log.warning(
                "%s: test list says %s, folder says %s", path, listed[relative[path]], label
            )
    missing = set(listed) - set(relative.values())
    for rel in sorted(missing):
        report.skip(rel, f"in {CELEBDF_TEST_LIST} but absent on disk")
    test_groups = {group for path, _, group in found if path in in_list}
    moved = sorted(
        {group for path, _, group in found if group in test_groups and path not in in_list}
    )
    if moved:
        report.count("celebdf_groups_moved_to_test", len(moved))
        report.details["celebdf_groups_moved_to_test"] = moved
    rows = []
    for path, label, group in found:
        split = "test" if group in test_groups else None
        if split and path not in in_list:
            report.count("celebdf_videos_moved_to_test")
        rows.append(layout_row(path, label, group, split, method="Celeb-synthesis"))
    return rows


def read_folder(
    root: Path,
    report: StageReport,
    *,
    suffixes: Iterable[str] = VIDEO_SUFFIXES,
    group_by_subfolder: bool = True,
) -> list[ManifestRow]:
    """`real/` and `fake/` (any case); group = first sub-folder (`real/alice/x.mp4`) or the file."""
    folders = {label: child_folders(root, label) for label in LABELS}
    if not any(folders.values()):
        raise DatasetError(f"{root}: no real/ or fake/ folder")
    suffixes = tuple(suffixes)
    rows = []
    for label, dirs in folders.items():
        for folder in dirs:
            for path in video_files(folder, report, suffixes, recursive=True):
                parts = path.relative_to(folder).parts
                # Without a sub-folder nothing says where a file came from: it is its own group.
                own = parts[0] if group_by_subfolder and len(parts) > 1 else None
                rows.append(layout_row(path, label, own or video_id_for(path.name)))
    return rows
