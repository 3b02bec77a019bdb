"""Imported face crops cut again to one face geometry: MTCNN's box, as prediction cuts it.

Every imported set comes framed its own way (DFDC: tight boxes enlarged; FaceForensics++: Haar
boxes at 299 px; UTKFace: aligned at 200 px), while prediction cuts MTCNN's box from the whole
frame. A model can learn a source's framing instead of the forgery. `Recutter` re-detects the
largest face inside each crop with MTCNN and cuts that box again (`crop_face`, shape `box`, the
set's margin), so every source and prediction frame the face alike. A crop in which MTCNN finds
no face cannot be re-cut: it is reported and skipped.

The re-cut crops are a cache under `paths.recut_dir`: one folder per geometry, one file per
source crop named by a hash of its bytes, and an index of what
MTCNN found. Only crops not yet in the index are detected; deleting the folder is safe.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import pandas as pd

from deepfake_detector.core.atomic import atomic_path
from deepfake_detector.core.config import FacesParams, Params
from deepfake_detector.core.reports import StageReport
from deepfake_detector.sources.face_detection import FaceDetector, MtcnnDetector, crop_face
from deepfake_detector.sources.images import InputError, read_image

log = logging.getLogger(__name__)

# Re-detection inside a crop: the crop is already a face, so any face MTCNN finds is it.
REDETECT = FacesParams(min_face_size=20, min_confidence=0.5, keep="largest")
INDEX = "index.csv"
CHUNK = 256  # crops detected between two writes of the index (an interrupted run keeps them)
VERSION = 1  # bump when the cut changes: old caches are then left aside, not reused
INDEX_COLUMNS = ["key", "source", "found", "x", "y", "w", "h", "confidence", "landmarks"]


@dataclass(frozen=True)
class Recut:
    """One re-cut crop: its file, and MTCNN's box and landmarks in the source crop's pixels."""

    path: Path
    box: tuple[int, int, int, int]
    confidence: float
    landmarks: str  # JSON, as the faces table stores them


@dataclass(frozen=True)
class Recutter:
    """Cuts imported crops again as MTCNN's box with a margin, `crop_size` px, cached."""

    cache_dir: Path
    crop_size: int = 224
    jpeg_quality: int = 95

    @classmethod
    def from_params(cls, params: Params, root: Path = Path(".")) -> Recutter:
        """The project's cache folder and crop settings (`paths.recut_dir`, `faces`)."""
        return cls(root / params.paths.recut_dir, params.faces.crop_size, params.faces.jpeg_quality)

    def folder(self, margin: float) -> Path:
        """The cache folder of one geometry."""
        name = f"box-m{margin:g}-{self.crop_size}px-q{self.jpeg_quality}-v{VERSION}"
        return self.cache_dir / name

    def recut(
        self,
        paths: Sequence[Path],
        margin: float,
        report: StageReport,
        detector: FaceDetector | None = None,
    ) -> list[Recut | None]:
        """Each crop cut again (None where MTCNN finds no face or the file cannot be read: the
        report says which and why), in input order."""
        folder = self.folder(margin)
        index = _read_index(folder / INDEX)
        keys = [_key(p) for p in paths]
        todo = sorted({k: p for k, p in zip(keys, paths, strict=True) if k not in index}.items())
        if todo:
            log.info("recut: %d of %d crops to re-detect in %s", len(todo), len(paths), folder)
        for start in range(0, len(todo), CHUNK):
            detector = detector or MtcnnDetector(REDETECT)
            chunk = todo[start : start + CHUNK]
            for row in self._cut(chunk, margin, folder, detector):
                index[row["key"]] = row
            _write_index(folder / INDEX, index)
        report.count("recut_detected", len(todo))
        out: list[Recut | None] = []
        for key, path in zip(keys, paths, strict=True):
            row = index[key]
            if not row["found"]:
                report.skip(str(path), str(row["landmarks"]) or "MTCNN finds no face in the crop")
                out.append(None)
                continue
            out.append(
                Recut(
                    _crop_path(folder, key),
                    (int(row["x"]), int(row["y"]), int(row["w"]), int(row["h"])),
                    float(row["confidence"]),
                    str(row["landmarks"]),
                )
            )
        report.count("recut_faces", sum(r is not None for r in out))
        return out

    def _cut(
        self,
        chunk: list[tuple[str, Path]],
        margin: float,
        folder: Path,
        detector: FaceDetector,
    ) -> list[dict[str, Any]]:
        images, rows, readable = [], [], []
        for key, path in chunk:
            try:
                images.append(read_image(path))
                readable.append((key, path))
            except InputError as exc:
                rows.append(_missing(key, path, f"cannot re-cut: {exc}"))
        for (key, path), image, found in zip(
            readable, images, detector.detect(images), strict=True
        ):
            if not found:
                rows.append(_missing(key, path, "MTCNN finds no face in the crop"))
                continue
            face = found[0]
            crop = crop_face(image, face.box, margin, self.crop_size, "box")
            with atomic_path(_crop_path(folder, key)) as tmp:
                ok = cv2.imwrite(
                    str(tmp),
                    cv2.cvtColor(crop, cv2.COLOR_RGB2BGR),
                    [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality],
                )
                if not ok:
                    raise OSError(f"cannot write {tmp}")
            x, y, w, h = face.box
            rows.append(
                {
                    "key": key,
                    "source": str(path),
                    "found": True,
                    "x": x,
                    "y": y,
                    "w": w,
                    "h": h,
                    "confidence": face.confidence,
                    "landmarks": json.dumps(face.landmarks),
                }
            )
        return rows


def recut_table(
    table: pd.DataFrame,
    recutter: Recutter,
    margin: float,
    report: StageReport,
    detector: FaceDetector | None = None,
) -> pd.DataFrame:
    """A faces table (absolute `path` per row) with each crop replaced by its re-cut: `path`
    and `file` name the new crop; `x`, `box_y`, `w`, `h`, `confidence` and `landmarks` are
    MTCNN's in the source crop. Rows that cannot be re-cut are dropped (and reported)."""
    cuts = recutter.recut([Path(p) for p in table["path"]], margin, report, detector)
    keep = [c is not None for c in cuts]
    out = table[keep].copy()
    done = [c for c in cuts if c is not None]
    out["path"] = [c.path for c in done]
    out["file"] = [str(c.path) for c in done]
    for i, column in enumerate(("x", "box_y", "w", "h")):
        out[column] = [c.box[i] for c in done]
    out["confidence"] = [c.confidence for c in done]
    out["landmarks"] = [c.landmarks for c in done]
    return out


def _key(path: Path) -> str:
    """A crop's cache key: a hash of its bytes, so a copy of the data elsewhere or with new
    modification times (a fresh checkout, a re-synced share) finds its re-cuts."""
    return hashlib.sha1(path.read_bytes()).hexdigest()[:20]


def _crop_path(folder: Path, key: str) -> Path:
    return folder / key[:2] / f"{key}.jpg"


def _missing(key: str, path: Path, reason: str) -> dict[str, Any]:
    # A crop that gives no re-cut keeps its reason in `landmarks`, so it is not tried again.
    return dict.fromkeys(INDEX_COLUMNS, 0) | {
        "key": key,
        "source": str(path),
        "found": False,
        "landmarks": reason,
    }


def _read_index(path: Path) -> dict[str, dict[str, Any]]:
    if not path.is_file():
        return {}
    table = pd.read_csv(path, dtype={"key": str, "landmarks": str}, keep_default_na=False)
    table["found"] = table["found"].astype(str).str.lower() == "true"
    # A found crop whose file is gone (deleted by hand) is detected again.
    return {
        str(r["key"]): r
        for r in table.to_dict(orient="records")
        if not r["found"] or _crop_path(path.parent, str(r["key"])).is_file()
    }


def _write_index(path: Path, index: dict[str, dict[str, Any]]) -> None:
    table = pd.DataFrame(list(index.values()), columns=INDEX_COLUMNS).sort_values("key")
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)
