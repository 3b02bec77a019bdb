"""The input manifest (what to fetch) and the videos table (what was fetched and verified)."""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlparse, urlsplit, urlunsplit
from urllib.request import url2pathname

from deepfake_detector.core.artifacts import VIDEOS_TABLE
from deepfake_detector.core.atomic import write_text
from deepfake_detector.core.errors import UserError
from deepfake_detector.core.reports import StageReport

LABELS = ("real", "fake")
SPLITS = ("train", "val", "test")
REQUIRED_COLUMNS = ("uri", "label", "group")
OPTIONAL_COLUMNS = ("sha256", "split", "method")
TABLE_COLUMNS = ("video_id", "path", "label", "group", "sha256", "split", "source")

_SHA256 = re.compile(r"[0-9a-f]{64}")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_MAX_ID = 120

log = logging.getLogger(__name__)


class ManifestError(UserError, ValueError):
    """A manifest or videos table is missing, not CSV, or lacks required columns."""


@dataclass(frozen=True)
class ManifestRow:
    """One valid manifest row: where a video comes from and what it is."""

    video_id: str
    uri: str
    label: str
    group: str
    sha256: str | None
    split: str | None
    method: str | None = None  # forgery method of a fake, when the dataset names it


@dataclass(frozen=True)
class VideoRecord:
    """One downloaded, verified video; `path` is relative to the videos table's folder."""

    video_id: str
    path: Path
    label: str
    group: str
    sha256: str
    split: str | None
    source: str


def redact_uri(uri: str) -> str:
    """`uri` safe to log or store: user:password@ and every query value become ***."""
    parts = urlsplit(uri)
    if parts.scheme.lower() not in ("http", "https") or not (parts.query or "@" in parts.netloc):
        return uri
    netloc = f"***@{parts.netloc.rsplit('@', 1)[1]}" if "@" in parts.netloc else parts.netloc
    query = "&".join(f"{key}=***" for key, _ in parse_qsl(parts.query, keep_blank_values=True))
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def scrub(text: str, uri: str) -> str:
    """`text` (an error message) with `uri`, and the path and query it holds, redacted."""
    safe = redact_uri(uri)
    if safe == uri:
        return text
    parts, clean = urlsplit(uri), urlsplit(safe)
    text = text.replace(uri, safe)
    if parts.query:
        text = text.replace(f"{parts.path}?{parts.query}", f"{clean.path}?{clean.query}")
    return text.replace(parts.netloc, clean.netloc)


def uri_scheme(uri: str) -> str:
    """Lower-case URL scheme of `uri`, or '' for a plain local path (Windows drives included)."""
    scheme = urlparse(uri).scheme.lower()
    return "" if len(scheme) <= 1 else scheme


def uri_basename(uri: str) -> str:
    """Last path component of a URL or local path, percent-decoded, either slash style."""
    path = urlparse(uri).path if uri_scheme(uri) else uri
    return unquote(path).replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]


def video_id_for(uri: str) -> str:
    """A safe plain file name from the uri's last component without extension; never empty."""
    name = uri_basename(uri)
    stem = name.rsplit(".", 1)[0] if name.rfind(".") > 0 else name
    safe = _UNSAFE.sub("_", stem).lstrip(".")[:_MAX_ID]
    if not safe:
        # Nothing usable in the name: derive a stable id from the whole uri instead.
        safe = "video-" + hashlib.sha256(uri.encode()).hexdigest()[:12]
    return safe


def resolve_local(uri: str, manifest_dir: Path) -> Path:
    """The file a local path or `file://` uri names; relative paths start at `manifest_dir`."""
    if uri_scheme(uri) == "file":
        parsed = urlparse(uri)
        if parsed.netloc not in ("", "localhost"):
            raise ValueError(f"{uri}: file:// uri names a remote host '{parsed.netloc}'")
        path = Path(url2pathname(parsed.path))
    else:
        path = Path(uri)
    return path if path.is_absolute() else manifest_dir / path


def _read_rows(path: Path, required: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    """(line number, cells) pairs of a CSV file; whole-file problems raise ManifestError."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ManifestError(f"{path}: no such file") from None
    except (UnicodeDecodeError, IsADirectoryError) as exc:
        raise ManifestError(f"{path}: not a CSV text file ({exc})") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [name.strip().lower() for name in next(reader, [])]
        if not any(header):
            raise ManifestError(f"{path}: empty file, expected a header with {', '.join(required)}")
        missing = [name for name in required if name not in header]
        if missing:
            raise ManifestError(
                f"{path}: missing required column(s) {', '.join(missing)}; "
                f"found {', '.join(header)}"
            )
        rows = []
        for values in reader:
            cells = [value.strip() for value in values]
            rows.append((reader.line_num, dict(zip(header, cells, strict=False))))
    except csv.Error as exc:
        raise ManifestError(f"{path}: not valid CSV: {exc}") from None
    return rows


def _row_problem(cells: dict[str, str]) -> str | None:
    """Why a manifest row cannot be used, or None when it is fine."""
    if not any(cells.values()):
        return "empty row"
    if not cells.get("uri"):
        return "empty uri"
    if not cells.get("group"):
        return "empty group"
    label = cells.get("label", "").lower()
    if label not in LABELS:
        return f"unknown label '{cells.get('label', '')}', expected one of {', '.join(LABELS)}"
    sha = cells.get("sha256", "").lower()
    if sha and not _SHA256.fullmatch(sha):
        return f"malformed sha256 '{cells.get('sha256')}', expected 64 hex digits"
    split = cells.get("split", "").lower()
    if split and split not in SPLITS:
        return f"unknown split '{cells.get('split')}', expected one of {', '.join(SPLITS)}"
    return None


def read_manifest(path: Path, report: StageReport) -> list[ManifestRow]:
    """Valid rows of a manifest CSV (`uri,label,group[,sha256][,split][,method]`); bad rows skip."""
    rows = _read_rows(path, REQUIRED_COLUMNS)
    seen: dict[str, int] = {}
    valid: list[ManifestRow] = []
    for line, cells in rows:
        report.count("manifest_rows")
        item = f"row {line}: {redact_uri(cells.get('uri', ''))}"
        problem = _row_problem(cells)
        if problem is None:
            video_id = video_id_for(cells["uri"])
            if video_id in seen:
                problem = f"duplicate video_id '{video_id}' (first at row {seen[video_id]})"
        if problem is not None:
            report.skip(item, problem)
            continue
        seen[video_id] = line
        valid.append(
            ManifestRow(
                video_id=video_id,
                uri=cells["uri"],
                label=cells["label"].lower(),
                group=cells["group"],
                sha256=cells.get("sha256", "").lower() or None,
                split=cells.get("split", "").lower() or None,
                method=cells.get("method", "") or None,
            )
        )
        report.count("manifest_valid")
    return valid


def write_videos_table(folder: Path, records: list[VideoRecord]) -> None:
    """Write `videos.csv` atomically, one row per video, sorted by video_id."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(TABLE_COLUMNS)
    for rec in sorted(records, key=lambda r: r.video_id):
        writer.writerow(
            [
                rec.video_id,
                rec.path.as_posix(),
                rec.label,
                rec.group,
                rec.sha256,
                rec.split or "",
                rec.source,
            ]
        )
    write_text(folder / VIDEOS_TABLE, buffer.getvalue())


def read_videos_table(folder: Path) -> list[VideoRecord]:
    """Records of `videos.csv` in `folder`; an empty split reads as None."""
    rows = _read_rows(folder / VIDEOS_TABLE, TABLE_COLUMNS)
    return [
        VideoRecord(
            video_id=cells["video_id"],
            path=Path(cells["path"]),
            label=cells["label"],
            group=cells["group"],
            sha256=cells["sha256"],
            split=cells.get("split") or None,
            source=cells.get("source", ""),
        )
        for _, cells in rows
        if any(cells.values())
    ]


def previous_records(videos_dir: Path) -> dict[str, VideoRecord]:
    """Records of the last run's videos table by video_id; empty when absent or unreadable."""
    if not (videos_dir / VIDEOS_TABLE).is_file():
        return {}
    try:
        return {rec.video_id: rec for rec in read_videos_table(videos_dir)}
    except ManifestError as exc:
        log.warning("ignoring the previous videos table: %s", exc)
        return {}


def previous_sha256(row: ManifestRow, previous: dict[str, VideoRecord]) -> str | None:
    """The sha256 the last run verified for this row's video, if it came from the same uri."""
    rec = previous.get(row.video_id)
    return rec.sha256 if rec is not None and rec.source == redact_uri(row.uri) else None
