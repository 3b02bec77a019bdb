"""Manifest validation, safe video ids, local path resolution and the videos table."""

from __future__ import annotations

from pathlib import Path

import pytest

from deepfake_detector.core.reports import StageReport
from deepfake_detector.sources.manifest import (
    VIDEOS_TABLE,
    ManifestError,
    ManifestRow,
    VideoRecord,
    read_manifest,
    read_videos_table,
    redact_uri,
    resolve_local,
    scrub,
    video_id_for,
    write_videos_table,
)

SHA = "ab" * 32


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_missing_columns_are_named(tmp_path: Path) -> None:
    path = _write(tmp_path / "m.csv", "uri,sha256\nhttp://h/a.mp4,\n")
    with pytest.raises(ManifestError) as err:
        read_manifest(path, StageReport("t"))
    message = str(err.value)
    assert "label" in message and "group" in message and str(path) in message


@pytest.mark.parametrize(
    ("content", "expected"),
    [(None, "no such file"), (b"\xff\xfe\x00\x81binary\x00", "not a CSV"), (b"", "empty file")],
)
def test_whole_file_problems(tmp_path: Path, content: bytes | None, expected: str) -> None:
    path = tmp_path / "m.csv"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ManifestError, match=expected):
        read_manifest(path, StageReport("t"))


def test_bad_rows_are_skipped_with_reasons(tmp_path: Path) -> None:
    lines = [
        "uri,label,group,sha256,split",
        f"http://h/good.mp4,Real,g1,{SHA.upper()},TRAIN",  # line 2: good, normalised
        "",  # line 3: blank
        ",,,,",  # line 4: empty cells
        "http://h/u.mp4,maybe,g2,,",  # line 5
        "http://h/s.mp4,fake,g3,abc123,",  # line 6
        "http://h/p.mp4,fake,g4,,holdout",  # line 7
        ",fake,g5,,",  # line 8
        "http://h/n.mp4,fake,,,",  # line 9
        "http://other/good.mp4,fake,g6,,",  # line 10: duplicate id 'good'
        "../../x.mp4,fake,g7,,",  # line 11: good, cannot escape
    ]
    path = _write(tmp_path / "m.csv", "\n".join(lines) + "\n")
    report = StageReport("t")
    rows = read_manifest(path, report)

    assert rows == [
        ManifestRow("good", "http://h/good.mp4", "real", "g1", SHA, "train"),
        ManifestRow("x", "../../x.mp4", "fake", "g7", None, None),
    ]
    reasons = {skip.item.split(":")[0]: skip.reason for skip in report.skipped}
    assert sorted(reasons, key=lambda item: int(item.split()[1])) == [
        f"row {n}" for n in range(3, 11)
    ]
    assert reasons["row 3"] == reasons["row 4"] == "empty row"
    assert "unknown label 'maybe'" in reasons["row 5"]
    assert "malformed sha256" in reasons["row 6"]
    assert "unknown split 'holdout'" in reasons["row 7"]
    assert reasons["row 8"] == "empty uri"
    assert reasons["row 9"] == "empty group"
    assert reasons["row 10"] == "duplicate video_id 'good' (first at row 2)"
    assert report.counts["manifest_rows"] == 10
    assert report.counts["manifest_valid"] == 2
    assert report.counts["skipped"] == 8


def test_optional_columns_may_be_absent(tmp_path: Path) -> None:
    path = _write(tmp_path / "m.csv", "group,label,uri\ng,fake,clips/a.mov\n")
    rows = read_manifest(path, StageReport("t"))
    assert rows == [ManifestRow("a", "clips/a.mov", "fake", "g", None, None)]


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("../../x.mp4", "x"),
        ("..\\..\\win.mp4", "win"),
        ("C:\\data\\v.mp4", "v"),
        ("http://h/a/clip 01.MP4?token=1#frag", "clip_01"),
        ("http://h/%2e%2e%2f%2e%2e%2fz.mp4", "z"),
        ("file:///tmp/a.b.mp4", "a.b"),
        ("/tmp/.hidden.mp4", "hidden"),
        ("vidéo$.mp4", "vid_o_"),
    ],
)
def test_video_id_is_a_plain_safe_name(uri: str, expected: str) -> None:
    assert video_id_for(uri) == expected


@pytest.mark.parametrize("uri", ["..", "http://h/", "...mp4", "/", "http://h/..%2F"])
def test_video_id_is_never_empty_or_dots(uri: str) -> None:
    video_id = video_id_for(uri)
    assert video_id and video_id not in (".", "..")
    assert not video_id.startswith(".") and "/" not in video_id
    assert video_id == video_id_for(uri)


def test_resolve_local(tmp_path: Path) -> None:
    assert resolve_local("clips/a.mp4", tmp_path) == tmp_path / "clips/a.mp4"
    assert resolve_local("/abs/a.mp4", tmp_path) == Path("/abs/a.mp4")
    assert resolve_local("file:///abs/a%20b.mp4", tmp_path) == Path("/abs/a b.mp4")
    assert resolve_local("file://localhost/abs/a.mp4", tmp_path) == Path("/abs/a.mp4")
    with pytest.raises(ValueError, match="remote host"):
        resolve_local("file://server/share/a.mp4", tmp_path)


def test_videos_table_round_trip(tmp_path: Path) -> None:
    records = [
        VideoRecord("b", Path("b.mp4"), "fake", "g2", SHA, None, "http://h/b.mp4"),
        VideoRecord("a", Path("a.avi"), "real", "g1", SHA, "test", "clips/a,1.avi"),
    ]
    write_videos_table(tmp_path, records)
    assert read_videos_table(tmp_path) == sorted(records, key=lambda r: r.video_id)
    assert sorted(p.name for p in tmp_path.iterdir()) == [VIDEOS_TABLE]
    with pytest.raises(ManifestError, match="no such file"):
        read_videos_table(tmp_path / "nowhere")


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("https://user:pw@host/v/a.mp4", "https://***@host/v/a.mp4"),
        (
            "https://host/a.mp4?X-Amz-Signature=abc&x=1",
            "https://host/a.mp4?X-Amz-Signature=***&x=***",
        ),
        ("https://host/a.mp4", "https://host/a.mp4"),
        ("clips/a.mp4", "clips/a.mp4"),
    ],
)
def test_credentials_in_uris_are_redacted(uri: str, expected: str) -> None:
    assert redact_uri(uri) == expected
    message = f"{uri}: HTTP 403; GET {uri.split('host', 1)[-1]} failed"
    scrubbed = scrub(message, uri)
    assert "pw" not in scrubbed and "abc" not in scrubbed
