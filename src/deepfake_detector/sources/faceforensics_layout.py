"""FaceForensics++'s own layout (its original and manipulated sequences, and Google's DFD
inside it): the readers of `deepfake make_manifest dfd` and `ffpp`.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from deepfake_detector.core.reports import StageReport
from deepfake_detector.sources.dataset_layouts import (
    DatasetError,
    child_folders,
    layout_row,
    load_json,
    video_files,
)
from deepfake_detector.sources.manifest import SPLITS, ManifestRow

log = logging.getLogger(__name__)

COMPRESSIONS = ("c0", "c23", "c40")


FFPP_METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "FaceShifter")


_DFD_REAL = re.compile(r"(\d+)__(.+)")


_DFD_FAKE = re.compile(r"(\d+)_(\d+)__(.+)__([A-Za-z0-9]+)")


_FFPP_REAL = re.compile(r"\d+")


_FFPP_FAKE = re.compile(r"(\d+)_(\d+)")


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
        real_dirs, fake_dirs = child_folders(root, "real"), child_folders(root, "fake")
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
            for path in video_files(folder, report):
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
                rows.append(
                    layout_row(path, label, f"actor{match.group(1)}", method="DeepFakeDetection")
                )
    return rows


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
        data = load_json(path)
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
    for path in video_files(real_dir, report) if real_dir else []:
        if _FFPP_REAL.fullmatch(path.stem) is None:
            report.skip(str(path), "not a FaceForensics++ real video name (NNN)")
            continue
        found.append((path, "real", path.stem, None, None))
    for method, folder in present.items():
        for path in video_files(folder, report):
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
        rows.append(layout_row(path, label, names[components.find(target)], split, made_by))
    return rows
