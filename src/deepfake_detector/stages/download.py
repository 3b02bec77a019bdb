"""Stage `download_videos`: fetch every manifest video (`sources.http_download`), verify its
checksum, list it in videos.csv."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from deepfake_detector.core.artifacts import REPORT_NAME
from deepfake_detector.core.atomic import remove_stale_temps
from deepfake_detector.core.cache_keys import item_key
from deepfake_detector.core.config import Params
from deepfake_detector.core.keys import file_sha256
from deepfake_detector.core.reports import StageReport
from deepfake_detector.core.stage_run import PerVideo, run_per_video
from deepfake_detector.sources.http_download import (
    LOCAL_SCHEMES,
    PART_SUFFIX,
    VIDEO_EXTS,
    DownloadError,
    fetch,
    part_path,
    video_filename,
)
from deepfake_detector.sources.manifest import (
    VIDEOS_TABLE,
    ManifestError,
    ManifestRow,
    VideoRecord,
    previous_records,
    previous_sha256,
    read_manifest,
    redact_uri,
    resolve_local,
    scrub,
    uri_scheme,
    write_videos_table,
)

log = logging.getLogger(__name__)

STAGE = "download_videos"


def download_video(
    row: ManifestRow, params: Params, root: Path, known_sha256: str | None
) -> VideoRecord:
    """Fetch one manifest row unless a verified copy is present; raise DownloadError on failure."""
    present = already_present(Fetch(row, known_sha256), params, root)
    if present is not None:
        return present
    dest = root / params.paths.videos_dir / video_filename(row)
    manifest_dir = (root / params.download.manifest).parent
    actual = fetch(
        row.uri, dest, sha256=row.sha256, params=params.download, manifest_dir=manifest_dir
    )
    log.debug("%s: downloaded %s", STAGE, dest)
    return _record(row, dest, actual)


def _record(row: ManifestRow, dest: Path, sha256: str) -> VideoRecord:
    return VideoRecord(
        video_id=row.video_id,
        path=Path(dest.name),
        label=row.label,
        group=row.group,
        sha256=sha256,
        split=row.split,
        source=redact_uri(row.uri),  # videos.csv is shared: no credentials in it
    )


def _protected_paths(params: Params, root: Path, rows: list[ManifestRow] | None) -> set[Path]:
    """Files cleanup must keep: the manifest, local sources, partials of rows still listed."""
    manifest = root / params.download.manifest
    keep = {manifest.resolve()}
    if rows is None:
        try:
            rows = read_manifest(manifest, StageReport(STAGE))
        except ManifestError:
            return keep
    videos_dir = root / params.paths.videos_dir
    for row in rows:
        keep.add(part_path(videos_dir / video_filename(row)).resolve())
        if uri_scheme(row.uri) in LOCAL_SCHEMES:
            try:
                keep.add(resolve_local(row.uri, manifest.parent).resolve())
            except ValueError:
                continue
    return keep


def _remove_unlisted(videos_dir: Path, keep_names: Iterable[str], protected: set[Path]) -> int:
    """Delete videos and partials this stage wrote that the current run no longer lists."""
    keep = {VIDEOS_TABLE, REPORT_NAME, *keep_names}
    ours = {rec.path.name for rec in previous_records(videos_dir).values()}
    removed = 0
    for path in sorted(videos_dir.iterdir()):
        if not path.is_file() or path.name in keep or path.resolve() in protected:
            continue
        suffix = path.suffix.lower()
        if path.name in ours or suffix in VIDEO_EXTS or suffix == PART_SUFFIX:
            log.info("%s: removing %s (no longer in the manifest)", STAGE, path)
            path.unlink()
            removed += 1
    return removed


def finish_download(
    params: Params,
    root: Path,
    records: list[VideoRecord],
    report: StageReport,
    rows: list[ManifestRow] | None = None,
) -> StageReport:
    """Remove unlisted videos and stale temps, write videos.csv and report.json.

    `rows` (the valid manifest rows) keeps their partial downloads for resuming; when omitted
    the manifest is read again.
    """
    videos_dir = root / params.paths.videos_dir
    videos_dir.mkdir(parents=True, exist_ok=True)
    protected = _protected_paths(params, root, rows)
    removed = _remove_unlisted(videos_dir, (rec.path.name for rec in records), protected)
    removed += remove_stale_temps(videos_dir)
    if removed:
        report.count_run("removed", removed)
    report.count("videos", len(records))
    report.details["manifest"] = str(params.download.manifest)
    write_videos_table(videos_dir, records)
    return report.finish(videos_dir)


@dataclass(frozen=True)
class Fetch:
    """One manifest row to fetch, with the checksum an earlier run verified for it."""

    row: ManifestRow
    known_sha256: str | None


def fetch_key(item: Fetch, params: Params, root: Path = Path(".")) -> str:
    """Key of one row's download: the row, the stage's code and params, a local file's bytes."""
    row = item.row
    local = ""
    if uri_scheme(row.uri) in LOCAL_SCHEMES:
        path = resolve_local(row.uri, (root / params.download.manifest).parent)
        local = file_sha256(path) if path.is_file() else "missing"
    fields = [row.video_id, row.uri, row.label, row.group, row.sha256 or "", row.split or "", local]
    return item_key(STAGE, params, *fields)


def already_present(item: Fetch, params: Params, root: Path = Path(".")) -> VideoRecord | None:
    """The row's record if its video is already here and verified."""
    dest = root / params.paths.videos_dir / video_filename(item.row)
    expected = item.row.sha256 or item.known_sha256
    if expected and dest.is_file() and file_sha256(dest) == expected:
        return _record(item.row, dest, expected)
    return None


def _fetches(
    params: Params, root: Path, _: Sequence[Fetch] | None, report: StageReport
) -> list[Fetch]:
    rows = read_manifest(root / params.download.manifest, report)
    previous = previous_records(root / params.paths.videos_dir)
    return [Fetch(row, previous_sha256(row, previous)) for row in rows]


PER_VIDEO: PerVideo[Fetch, VideoRecord] = PerVideo(
    items=_fetches,
    name=lambda item: item.row.video_id,
    key=fetch_key,
    done=already_present,
    run=lambda item, params, root: download_video(item.row, params, root, item.known_sha256),
    finish=lambda params, root, records, report: finish_download(params, root, records, report),
    errors=(DownloadError,),
    reason=lambda item, exc: scrub(str(exc), item.row.uri),
    counters=("downloaded", "already_present"),
)


def download_videos(params: Params, root: Path = Path(".")) -> StageReport:
    """Stage: fetch and verify every manifest video; a bad row or download is reported, skipped."""
    return run_per_video(STAGE, params, root)
