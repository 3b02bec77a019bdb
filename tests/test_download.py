"""fetch and download_videos against a real HTTP server on 127.0.0.1 and local files."""

from __future__ import annotations

import hashlib
import random
import re
import time
from pathlib import Path
from typing import Any

import pytest
from fileserver import FileServer, Served
from reliability import Recorder

from deepfake_detector.core.config import DownloadParams, Params, PathsParams
from deepfake_detector.core.reports import StageReport, read_report
from deepfake_detector.sources.http_download import DownloadError, fetch
from deepfake_detector.sources.manifest import read_videos_table
from deepfake_detector.stages.download import download_videos, finish_download

SIZE = 300_000


def _payload(seed: int) -> bytes:
    return random.Random(seed).randbytes(SIZE)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The loopback server must be reached directly, whatever proxy the environment sets."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


def _dl(**overrides: Any) -> DownloadParams:
    values: dict[str, Any] = {
        "timeout_s": 2.0,
        "retries": 3,
        "backoff_s": 0.001,
        "max_bytes": 10_000_000,
        "chunk_bytes": 16_384,
        "allow_local": True,
    }
    return DownloadParams(**{**values, **overrides})


def _fetch(uri: str, dest: Path, sha256: str | None = None, **overrides: Any) -> str:
    return fetch(uri, dest, sha256=sha256, params=_dl(**overrides), manifest_dir=dest.parent)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_fetch_http_verifies(server: FileServer, tmp_path: Path) -> None:
    body = _payload(1)
    server.files["/a.mp4"] = Served(body)
    dest = tmp_path / "v" / "a.mp4"
    assert _fetch(server.url("/a.mp4"), dest, _sha(body).upper()) == _sha(body)
    assert dest.read_bytes() == body
    assert _leftovers(dest.parent) == ["a.mp4"]
    assert server.hits("/a.mp4") == [None]


def test_dropped_connection_resumes_with_range(server: FileServer, tmp_path: Path) -> None:
    body = _payload(2)
    server.files["/a.mp4"] = Served(body, drop_first=True)
    dest = tmp_path / "a.mp4"
    assert _fetch(server.url("/a.mp4"), dest, _sha(body)) == _sha(body)
    first, second = server.hits("/a.mp4")
    assert first is None
    assert second is not None
    offset = int(re.fullmatch(r"bytes=(\d+)-", second)[1])  # type: ignore[index]
    assert 0 < offset < SIZE
    assert dest.read_bytes() == body
    assert _leftovers(tmp_path) == ["a.mp4"]


def test_read_timeout_resumes_with_range(server: FileServer, tmp_path: Path) -> None:
    body = _payload(3)
    server.files["/a.mp4"] = Served(body, stall_first=1.0)
    dest = tmp_path / "a.mp4"
    assert _fetch(server.url("/a.mp4"), dest, _sha(body), timeout_s=0.3) == _sha(body)
    hits = server.hits("/a.mp4")
    assert len(hits) == 2 and hits[1] is not None and hits[1].startswith("bytes=")
    assert dest.read_bytes() == body


def test_partial_from_an_earlier_run_is_resumed(server: FileServer, tmp_path: Path) -> None:
    body = _payload(4)
    server.files["/a.mp4"] = Served(body)
    dest = tmp_path / "a.mp4"
    (tmp_path / ".a.mp4.part").write_bytes(body[:100_000])
    assert _fetch(server.url("/a.mp4"), dest, _sha(body)) == _sha(body)
    assert server.hits("/a.mp4") == ["bytes=100000-"]
    assert dest.read_bytes() == body


def test_complete_partial_is_not_fetched_again(server: FileServer, tmp_path: Path) -> None:
    body = _payload(5)
    server.files["/a.mp4"] = Served(body)
    (tmp_path / ".a.mp4.part").write_bytes(body)
    assert _fetch(server.url("/a.mp4"), tmp_path / "a.mp4", _sha(body)) == _sha(body)
    assert server.hits("/a.mp4") == [f"bytes={SIZE}-"]  # answered 416: already whole


def test_server_ignoring_range_restarts_from_zero(server: FileServer, tmp_path: Path) -> None:
    body = _payload(6)
    server.files["/a.mp4"] = Served(body, ranges=False)
    (tmp_path / ".a.mp4.part").write_bytes(b"stale bytes from some other version")
    assert _fetch(server.url("/a.mp4"), tmp_path / "a.mp4", _sha(body)) == _sha(body)
    assert (tmp_path / "a.mp4").read_bytes() == body


def test_404_fails_at_once(server: FileServer, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="HTTP 404"):
        _fetch(server.url("/missing.mp4"), tmp_path / "m.mp4")
    assert server.hits("/missing.mp4") == [None]
    assert _leftovers(tmp_path) == []


def test_500_twice_then_ok(server: FileServer, tmp_path: Path) -> None:
    body = _payload(7)
    server.files["/a.mp4"] = Served(body, fail_first=2)
    assert _fetch(server.url("/a.mp4"), tmp_path / "a.mp4", _sha(body)) == _sha(body)
    assert len(server.hits("/a.mp4")) == 3


def test_retries_are_bounded(server: FileServer, tmp_path: Path) -> None:
    server.files["/a.mp4"] = Served(b"", status=503)
    with pytest.raises(DownloadError, match=r"gave up after 3 attempt\(s\): HTTP 503"):
        _fetch(server.url("/a.mp4"), tmp_path / "a.mp4", retries=2)
    assert len(server.hits("/a.mp4")) == 3


def test_a_trickling_server_is_cut_off_at_the_deadline(
    server: FileServer, tmp_path: Path, reliability: Recorder
) -> None:
    server.files["/a.mp4"] = Served(_payload(10)[:200], trickle_s=0.05)  # 10 s if let run
    started = time.monotonic()
    with pytest.raises(DownloadError, match=r"took longer than download\.deadline_s=1") as err:
        _fetch(server.url("/a.mp4"), tmp_path / "a.mp4", timeout_s=0.5, deadline_s=1.0)
    took = time.monotonic() - started
    ok = took < 3.0 and _leftovers(tmp_path) == []
    assert reliability.add(
        "faults",
        "server trickles one byte every 0.05 s (200 bytes: 10 s)",
        "download (fetch)",
        "cut off at download.deadline_s=1 with a clear error; nothing left",
        f"{err.value} after {took:.1f} s; left: {_leftovers(tmp_path)}",
        ok,
    )


def test_wrong_checksum_leaves_nothing(server: FileServer, tmp_path: Path) -> None:
    body = _payload(8)
    server.files["/a.mp4"] = Served(body)
    wrong = "0" * 64
    with pytest.raises(DownloadError, match="checksum mismatch") as err:
        _fetch(server.url("/a.mp4"), tmp_path / "a.mp4", wrong)
    assert wrong in str(err.value) and _sha(body) in str(err.value)
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("no_length", [False, True])
def test_size_cap(server: FileServer, tmp_path: Path, no_length: bool) -> None:
    server.files["/a.mp4"] = Served(_payload(9), no_length=no_length)
    with pytest.raises(DownloadError, match=r"exceeds download\.max_bytes=50000"):
        _fetch(server.url("/a.mp4"), tmp_path / "a.mp4", max_bytes=50_000)
    assert _leftovers(tmp_path) == []
    assert len(server.hits("/a.mp4")) == 1


@pytest.mark.parametrize(
    "uri", ["ftp://h/a.mp4", "s3://bucket/a.mp4", "data:video/mp4;base64,AAAA", "javascript:x()"]
)
def test_unsupported_scheme(tmp_path: Path, uri: str) -> None:
    scheme = uri.split(":", 1)[0]
    with pytest.raises(DownloadError, match=f"unsupported scheme '{scheme}'; allowed: http, https"):
        _fetch(uri, tmp_path / "a.mp4")


@pytest.mark.parametrize("as_file_uri", [False, True])
def test_local_copy(tmp_path: Path, as_file_uri: bool) -> None:
    body = _payload(10)
    src = tmp_path / "src" / "clip.mp4"
    src.parent.mkdir()
    src.write_bytes(body)
    uri = src.as_uri() if as_file_uri else "../src/clip.mp4"  # relative to the manifest folder
    out = tmp_path / "out"
    dest = out / "clip.mp4"
    out.mkdir()
    assert _fetch(uri, dest, _sha(body)) == _sha(body)
    assert dest.read_bytes() == body and _leftovers(out) == ["clip.mp4"]

    dest.unlink()
    with pytest.raises(DownloadError, match="allow_local is false"):
        _fetch(uri, dest, allow_local=False)
    with pytest.raises(DownloadError, match="checksum mismatch"):
        _fetch(uri, dest, "f" * 64)
    assert _leftovers(out) == []
    with pytest.raises(DownloadError, match="no such file"):
        _fetch(uri.replace("clip", "gone"), dest)


def _params(**overrides: Any) -> Params:
    return Params(
        download=_dl(manifest=Path("data/manifest.csv"), **overrides),
        paths=PathsParams(videos_dir=Path("data/videos")),
    )


def _write_manifest(root: Path, rows: list[str]) -> None:
    path = root / "data" / "manifest.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(["uri,label,group,sha256,split", *rows]) + "\n")


def test_download_videos_skips_bad_rows_and_is_idempotent(
    server: FileServer, tmp_path: Path
) -> None:
    a, b, c, e = (_payload(seed) for seed in (11, 12, 13, 14))
    server.files.update({"/a.mp4": Served(a), "/b.MP4": Served(b), "/e.mp4": Served(e)})
    local = tmp_path / "data" / "local" / "c.avi"
    local.parent.mkdir(parents=True)
    local.write_bytes(c)
    rows = [
        f"{server.url('/a.mp4')},real,g1,{_sha(a)},train",
        f"{server.url('/b.MP4')},FAKE,g2,,",
        f"local/c.avi,fake,g3,{_sha(c)},test",
        f"{server.url('/d.mp4')},unknown,g4,,",
        "local/missing.mp4,real,g5,,",
        f"{server.url('/e.mp4')},real,g6,{'0' * 64},",
    ]
    _write_manifest(tmp_path, rows)
    videos = tmp_path / "data" / "videos"

    report = download_videos(_params(), tmp_path)

    assert report.run["downloaded"] == 3
    assert report.counts["videos"] == 3
    assert report.counts["skipped"] == 3
    assert report.counts["manifest_rows"] == 6 and report.counts["manifest_valid"] == 5
    reasons = {skip.item: skip.reason for skip in report.skipped}
    assert "unknown label 'unknown'" in reasons[f"row 5: {server.url('/d.mp4')}"]
    assert "no such file" in reasons["missing"]
    assert "checksum mismatch" in reasons["e"]
    table = {rec.video_id: rec for rec in read_videos_table(videos)}
    assert sorted(table) == ["a", "b", "c"]
    assert (table["b"].path, table["b"].label, table["b"].sha256) == (
        Path("b.mp4"),
        "fake",
        _sha(b),
    )
    assert (table["c"].path, table["c"].split, table["c"].source) == (
        Path("c.avi"),
        "test",
        "local/c.avi",
    )
    assert table["a"].split == "train" and table["b"].split is None
    assert (videos / "b.mp4").read_bytes() == b and (videos / "c.avi").read_bytes() == c
    assert _leftovers(videos) == ["a.mp4", "b.mp4", "c.avi", "report.json", "videos.csv"]
    saved = read_report(videos)  # what was fetched this time is the run's: in its run log
    assert saved["stage"] == "download_videos" and saved["counts"]["videos"] == 3
    assert saved["run"]["downloaded"] == 3

    again = download_videos(_params(), tmp_path)

    assert again.run["already_present"] == 3 and "downloaded" not in again.run
    assert again.content() == report.content()  # report.json does not depend on the past
    assert server.hits("/a.mp4") == [None] and server.hits("/b.MP4") == [None]
    assert sorted(rec.video_id for rec in read_videos_table(videos)) == ["a", "b", "c"]


def test_download_videos_removes_unlisted_and_stale(server: FileServer, tmp_path: Path) -> None:
    a, b = _payload(21), _payload(22)
    server.files.update({"/a.mp4": Served(a), "/b.mp4": Served(b)})
    _write_manifest(
        tmp_path, [f"{server.url('/a.mp4')},real,g1,,", f"{server.url('/b.mp4')},fake,g2,,"]
    )
    download_videos(_params(), tmp_path)
    videos = tmp_path / "data" / "videos"
    (videos / ".tmp-killed.csv").write_text("half")
    (videos / ".gone.mp4.part").write_bytes(b"half")
    (videos / "notes.txt").write_text("not a video, not ours: kept")

    _write_manifest(tmp_path, [f"{server.url('/b.mp4')},fake,g2,,"])
    report = download_videos(_params(), tmp_path)

    assert report.run["removed"] == 3
    assert _leftovers(videos) == ["b.mp4", "notes.txt", "report.json", "videos.csv"]
    assert [rec.video_id for rec in read_videos_table(videos)] == ["b"]


def test_download_videos_resumes_on_the_next_run(server: FileServer, tmp_path: Path) -> None:
    body = _payload(31)
    server.files["/a.mp4"] = Served(body, drop_first=True)
    _write_manifest(tmp_path, [f"{server.url('/a.mp4')},real,g1,{_sha(body)},"])
    videos = tmp_path / "data" / "videos"

    first = download_videos(_params(retries=0), tmp_path)
    assert first.counts["skipped"] == 1 and "gave up after 1 attempt" in first.skipped[0].reason
    assert _leftovers(videos) == [".a.mp4.part", "report.json", "videos.csv"]

    second = download_videos(_params(retries=0), tmp_path)
    assert second.run["downloaded"] == 1
    assert server.hits("/a.mp4")[1] is not None
    assert (videos / "a.mp4").read_bytes() == body
    assert _leftovers(videos) == ["a.mp4", "report.json", "videos.csv"]


def test_finish_download_rereads_the_manifest_to_keep_partials(tmp_path: Path) -> None:
    _write_manifest(tmp_path, ["http://127.0.0.1:9/a.mp4,real,g1,,"])
    videos = tmp_path / "data" / "videos"
    videos.mkdir(parents=True)
    (videos / ".a.mp4.part").write_bytes(b"half")
    (videos / ".b.mp4.part").write_bytes(b"half")

    report = finish_download(_params(), tmp_path, [], StageReport("download_videos"))

    assert report.run["removed"] == 1 and report.counts["videos"] == 0
    assert _leftovers(videos) == [".a.mp4.part", "report.json", "videos.csv"]
