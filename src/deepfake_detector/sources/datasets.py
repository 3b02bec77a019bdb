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
import json
import logging
import os
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from deepfake_detector.core.atomic import atomic_path
from deepfake_detector.core.errors import UserError
from deepfake_detector.core.reports import StageReport
from deepfake_detector.sources.manifest import LABELS, SPLITS, ManifestRow, uri_scheme, video_id_for

log = logging.getLogger(__name__)

STAGE = "make_manifest"
MANIFEST_COLUMNS = ("uri", "label", "group", "sha256", "split", "method")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")
COMPRESSIONS = ("c0", "c23", "c40")
FFPP_METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "FaceShifter")
CELEBDF_TEST_LIST = "List_of_testing_videos.txt"
CELEBDF_GROUPINGS = ("identity", "video")

_DFD_REAL = re.compile(r"(\d+)__(.+)")
_DFD_FAKE = re.compile(r"(\d+)_(\d+)__(.+)__([A-Za-z0-9]+)")
_FFPP_REAL = re.compile(r"\d+")
_FFPP_FAKE = re.compile(r"(\d+)_(\d+)")
_CELEB_REAL = re.compile(r"(id\d+)_(\d+)")
_CELEB_FAKE = re.compile(r"(id\d+)_(id\d+)_(\d+)")
_YOUTUBE_REAL = re.compile(r"\d+")

Reader = Callable[..., list[ManifestRow]]


class DatasetError(UserError, ValueError):
    """A dataset folder does not have the layout its reader expects, or an option is wrong."""


class GroupLeakageError(DatasetError):
    """A group would sit on more than one side of the split."""


# --- shared helpers ------------------------------------------------------------------------


def _row(
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


def _children(folder: Path, name: str) -> list[Path]:
    """Sub-folders of `folder` called `name`, ignoring case (`Real`, `real`, `REAL`)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_dir() and p.name.lower() == name.lower())


def _video_files(
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


def _check_compression(compression: str) -> None:
    """Fail clearly on a compression level FaceForensics++ does not have."""
    if compression not in COMPRESSIONS:
        raise DatasetError(f"unknown compression '{compression}', expected one of {COMPRESSIONS}")


def _ffpp_videos_dir(base: Path, compression: str, required: bool) -> Path | None:
    """`<base>/<compression>/videos`; when absent, raise (if required) or warn, naming what is."""
    videos = base / compression / "videos"
    if videos.is_dir():
        return videos
    present = (
        sorted(p.name for p in base.iterdir() if (p / "videos").is_dir()) if base.is_dir() else []
    )
    message = f"{videos} is absent (compressions present there: {present or 'none'})"
    if required:
        raise DatasetError(message + "; pass compression=... to pick one")
    log.warning("%s", message)
    return None


def _load_json(path: Path) -> Any:
    """Parsed JSON of `path`; unreadable or invalid files raise DatasetError naming the file."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{path}: not readable JSON ({exc})") from None


# --- DFD -----------------------------------------------------------------------------------


def read_dfd(root: Path, report: StageReport, *, compression: str = "c23") -> list[ManifestRow]:
    """Google/Jigsaw DeepFakeDetection, FaceForensics++ or plain real/fake layout; group = actor."""
    _check_compression(compression)
    if (root / "original_sequences").is_dir() or (root / "manipulated_sequences").is_dir():
        layout = "faceforensics"
        real_dirs: Sequence[Path | None] = [
            _ffpp_videos_dir(root / "original_sequences" / "actors", compression, required=False)
        ]
        fake_dirs: Sequence[Path | None] = [
            _ffpp_videos_dir(
                root / "manipulated_sequences" / "DeepFakeDetection", compression, required=False
            )
        ]
    else:
        layout = "plain"
        real_dirs, fake_dirs = _children(root, "real"), _children(root, "fake")
    real = [d for d in real_dirs if d is not None]
    fake = [d for d in fake_dirs if d is not None]
    if not real and not fake:
        raise DatasetError(
            f"{root}: no DFD videos found; expected original_sequences/actors/{compression}/videos "
            "and manipulated_sequences/DeepFakeDetection/<c>/videos, or real/ and fake/"
        )
    report.details["layout"] = layout
    rows = []
    for label, folders, pattern in (("real", real, _DFD_REAL), ("fake", fake, _DFD_FAKE)):
        for folder in folders:
            for path in _video_files(folder, report):
                match = pattern.fullmatch(path.stem)
                if match is None:
                    expected = (
                        "<actor>__<scene>"
                        if label == "real"
                        else "<target>_<source>__<scene>__<id>"
                    )
                    report.skip(str(path), f"not a DFD {label} video name ({expected})")
                    continue
                # A fake is the target actor's video with another face in it: it goes with the
                # target, whose real videos it was made from.
                rows.append(_row(path, label, f"actor{match.group(1)}", method="DeepFakeDetection"))
    return rows


# --- DFDC ----------------------------------------------------------------------------------


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
        entries = _load_json(meta)
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
            rows.append(_row(path, label, group, split if split in SPLITS else None))
        for path in sorted(meta.parent.iterdir()):
            if path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES and path.name not in listed:
                report.skip(str(path), f"not listed in {meta}: no label")
    return rows


# --- FaceForensics++ ------------------------------------------------------------------------


def _ffpp_id(value: Any) -> str:
    """A FaceForensics++ video id as the files spell it: digits, zero-padded to three."""
    text = str(value).strip()
    return text.zfill(3) if text.isdigit() else text


def _ffpp_split_pairs(splits_dir: Path) -> dict[tuple[str, str], str]:
    """Pairs of the official split files in `splits_dir` with their split; empty without files."""
    pairs: dict[tuple[str, str], str] = {}
    for split in SPLITS:
        path = splits_dir / f"{split}.json"
        if not path.is_file():
            continue
        data = _load_json(path)
        if not isinstance(data, list) or not all(
            isinstance(p, list | tuple) and len(p) == 2 for p in data
        ):
            raise DatasetError(f"{path}: expected a JSON list of [id, id] pairs")
        for a, b in data:
            pair = (_ffpp_id(a), _ffpp_id(b))
            if pair in pairs:
                raise DatasetError(f"{path}: pair {pair} is also in {pairs[pair]}.json")
            pairs[pair] = split
    return pairs


class _Components:
    """Union-find over video ids: ids joined by a fake or a split pair end in one group."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        """The representative of x's component."""
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: str, b: str) -> None:
        """Put a and b in one component."""
        self.parent[self.find(a)] = self.find(b)


def read_ffpp(
    root: Path,
    report: StageReport,
    *,
    methods: Iterable[str] | None = None,
    compression: str = "c23",
    splits_dir: Path | None = None,
) -> list[ManifestRow]:
    """FaceForensics++ as its download script lays it out; group = the pair `NNN_MMM`.

    `methods` defaults to those of FFPP_METHODS present; the official `splits/{train,val,test}.json`
    (under `root` unless `splits_dir` is given) set each pair's split when present.
    """
    _check_compression(compression)
    canonical = {m.lower(): m for m in FFPP_METHODS}
    if methods is None:
        chosen, required = list(FFPP_METHODS), False
    else:
        unknown = [m for m in methods if m.lower() not in canonical]
        if unknown:
            raise DatasetError(
                f"unknown FaceForensics++ method(s) {unknown}; known: {FFPP_METHODS}"
            )
        chosen, required = [canonical[m.lower()] for m in methods], True
    real_dir = _ffpp_videos_dir(
        root / "original_sequences" / "youtube", compression, required=False
    )
    fake_dirs = {
        m: _ffpp_videos_dir(root / "manipulated_sequences" / m, compression, required)
        for m in chosen
    }
    present = {m: d for m, d in fake_dirs.items() if d is not None}
    if real_dir is None and not present:
        raise DatasetError(
            f"{root}: no FaceForensics++ videos for compression {compression}; expected "
            f"original_sequences/youtube/{compression}/videos or "
            f"manipulated_sequences/<method>/{compression}/videos"
        )
    report.details["methods"] = sorted(present)
    report.details["compression"] = compression

    # path, label, target id, source id, method
    found: list[tuple[Path, str, str, str | None, str | None]] = []
    for path in _video_files(real_dir, report) if real_dir else []:
        if _FFPP_REAL.fullmatch(path.stem) is None:
            report.skip(str(path), "not a FaceForensics++ real video name (NNN)")
            continue
        found.append((path, "real", path.stem, None, None))
    for method, folder in present.items():
        for path in _video_files(folder, report):
            match = _FFPP_FAKE.fullmatch(path.stem)
            if match is None:
                report.skip(str(path), "not a FaceForensics++ fake video name (NNN_MMM)")
                continue
            found.append((path, "fake", match.group(1), match.group(2), method))

    pairs = _ffpp_split_pairs(Path(splits_dir) if splits_dir is not None else root / "splits")
    report.details["split_files"] = bool(pairs)
    split_of_id: dict[str, str] = {}
    components = _Components()
    for (a, b), pair_split in pairs.items():
        components.union(a, b)
        split_of_id[a] = split_of_id[b] = pair_split
    for _, _, target, source, _ in found:
        components.find(target)
        if source is not None:
            components.union(target, source)
    members: dict[str, set[str]] = defaultdict(set)
    for x in list(components.parent):
        members[components.find(x)].add(x)
    official = {frozenset(p): "_".join(p) for p in pairs}
    # The official pair's own spelling when a component is that pair, else its sorted ids.
    names = {
        rep: official.get(frozenset(ids), "_".join(sorted(ids))) for rep, ids in members.items()
    }

    rows = []
    for path, label, target, _, made_by in found:
        split = split_of_id.get(target)
        if pairs and split is None:
            report.count("ffpp_not_in_split_files")
        rows.append(_row(path, label, names[components.find(target)], split, made_by))
    return rows


# --- Celeb-DF -------------------------------------------------------------------------------


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
        name: _children(root, name) for name in ("Celeb-real", "YouTube-real", "Celeb-synthesis")
    }
    if not any(folders.values()):
        raise DatasetError(f"{root}: no Celeb-real, YouTube-real or Celeb-synthesis folder")
    found: list[tuple[Path, str, str]] = []  # path, label, group
    for folder in folders["Celeb-real"]:
        for path in _video_files(folder, report):
            match = _CELEB_REAL.fullmatch(path.stem)
            if match is None:
                report.skip(str(path), "not a Celeb-real video name (idX_NNNN)")
                continue
            group = match.group(1) if group_by == "identity" else path.stem
            found.append((path, "real", group))
    for folder in folders["YouTube-real"]:
        for path in _video_files(folder, report):
            if _YOUTUBE_REAL.fullmatch(path.stem) is None:
                report.skip(str(path), "not a YouTube-real video name (NNNNN)")
                continue
            found.append((path, "real", f"yt_{path.stem}"))
    for folder in folders["Celeb-synthesis"]:
        for path in _video_files(folder, report):
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
        rows.append(_row(path, label, group, split, method="Celeb-synthesis"))
    return rows


# --- plain folders --------------------------------------------------------------------------


def read_folder(
    root: Path,
    report: StageReport,
    *,
    suffixes: Iterable[str] = VIDEO_SUFFIXES,
    group_by_subfolder: bool = True,
) -> list[ManifestRow]:
    """`real/` and `fake/` (any case); group = first sub-folder (`real/alice/x.mp4`) or the file."""
    folders = {label: _children(root, label) for label in LABELS}
    if not any(folders.values()):
        raise DatasetError(f"{root}: no real/ or fake/ folder")
    suffixes = tuple(suffixes)
    rows = []
    for label, dirs in folders.items():
        for folder in dirs:
            for path in _video_files(folder, report, suffixes, recursive=True):
                parts = path.relative_to(folder).parts
                # Without a sub-folder nothing says where a file came from: it is its own group.
                own = parts[0] if group_by_subfolder and len(parts) > 1 else None
                rows.append(_row(path, label, own or video_id_for(path.name)))
    return rows


READERS: dict[str, Reader] = {
    "dfd": read_dfd,
    "dfdc": read_dfdc,
    "ffpp": read_ffpp,
    "celebdf": read_celebdf,
    "folder": read_folder,
}


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
