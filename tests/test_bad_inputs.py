"""The bad-input corpus (`corpus.py`) and a misbehaving server, through every entry point.

Entry points: the stages as DVC runs them (`deepfake download_videos`, `extract_frames`,
`crop_faces`, `import_faces` in a project), the CLI (`deepfake predict`), the Gradio app (driven
by `gradio_client`) and the REST endpoint (`mlflow models serve`). For each item: a clear message
where it cannot be used, an answer where it can, counts that add up, and every good item through.
Each case is a row of RELIABILITY.md.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from conftest import make_project, run
from corpus import Item, build_images, build_videos
from fileserver import FileServer, Served
from reliability import Recorder
from servers import running_app, running_rest

pytestmark = pytest.mark.reliability

STAGES = "stages (download_videos, extract_frames, crop_faces)"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Item], list[Item]]:
    """The corpus folder with images/ and videos/, and their items."""
    root = tmp_path_factory.mktemp("corpus")
    return root, build_images(root / "images"), build_videos(root / "videos")


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Subprocesses reach the loopback server directly, whatever proxy the environment sets."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


def _report(project: Path, folder: str) -> dict:
    return json.loads((project / folder / "report.json").read_text())


def _reasons(report: dict) -> dict[str, str]:
    return {skip["item"]: skip["reason"] for skip in report["skipped"]}


# --- stages -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """A manifest row and where it must end: a stage that skips it (with a reason) or faces."""

    line: str
    case: str
    section: str
    item: str  # how the stage report names it
    stage: str  # "download_videos", "extract_frames", "crop_faces" (skipped there) or "faces"
    reason: str = ""  # fragment of the skip reason


def _manifest_rows(server: FileServer, videos: list[Item], corpus_root: Path) -> list[Row]:
    good = (corpus_root / "videos" / "good.mp4").read_bytes()
    sha = hashlib.sha256(good).hexdigest()
    server.files.update(
        {
            "/web_good.mp4": Served(good),
            "/slow.mp4": Served(good, delay_s=0.5),
            "/error.mp4": Served(good, status=500),
            "/hang.mp4": Served(good, hang=True),
            "/reset.mp4": Served(good, reset=True),
            "/short.mp4": Served(good, short=True),
            "/checksum.mp4": Served(good),
        }
    )
    rows = []
    for item in videos:
        vid = Path(item.name).stem
        if item.answer == "error":
            stage, reason = "extract_frames", item.message
        elif item.answer == "no_face":
            stage, reason = "crop_faces", "no face"
        else:
            stage, reason = "faces", ""
        label = "fake" if "a" in vid else "real"
        rows.append(
            Row(f"videos/{item.name},{label},{vid},", item.case, "inputs", vid, stage, reason)
        )
    url = server.url
    rows += [
        Row(
            f"{url('/web_good.mp4')},real,w1,{sha}",
            "good video over HTTP (control)",
            "faults",
            "web_good",
            "faces",
        ),
        Row(
            f"{url('/slow.mp4')},real,w2,",
            "server answers slowly (0.5 s, timeout 2 s)",
            "faults",
            "slow",
            "faces",
        ),
        Row(
            f"{url('/missing.mp4')},fake,w3,",
            "server answers 404",
            "faults",
            "missing",
            "download_videos",
            "404",
        ),
        Row(
            f"{url('/error.mp4')},fake,w4,",
            "server answers 500 every time",
            "faults",
            "error",
            "download_videos",
            "500",
        ),
        Row(
            f"{url('/hang.mp4')},fake,w5,",
            "server never answers",
            "faults",
            "hang",
            "download_videos",
            "timed out",
        ),
        Row(
            f"{url('/reset.mp4')},fake,w6,",
            "server resets the connection",
            "faults",
            "reset",
            "download_videos",
            "gave up",
        ),
        Row(
            f"{url('/short.mp4')},fake,w7,",
            "server sends a short body",
            "faults",
            "short",
            "download_videos",
            "gave up",
        ),
        Row(
            f"{url('/checksum.mp4')},fake,w8,{'0' * 64}",
            "wrong checksum",
            "faults",
            "checksum",
            "download_videos",
            "checksum mismatch",
        ),
        Row(
            "ftp://127.0.0.1/clip.mp4,fake,m1,",
            "URL with another scheme (ftp)",
            "inputs",
            "clip",
            "download_videos",
            "unsupported scheme",
        ),
        Row(
            "../../x.mp4,fake,m2,",
            "name ../../x.mp4 (outside the manifest's folder)",
            "inputs",
            "x",
            "download_videos",
            "no such file",
        ),
        Row(
            "videos/good.mp4,maybe,m3,",
            "manifest row with an unknown label",
            "inputs",
            "row",
            "download_videos",
            "unknown label 'maybe'",
        ),
        Row(
            f"{url('/again/good.mp4')},fake,m4,",
            "manifest row with a duplicate id",
            "inputs",
            "row",
            "download_videos",
            "duplicate video_id 'good'",
        ),
        Row(",,,", "empty manifest row", "inputs", "row", "download_videos", "empty row"),
    ]
    return rows


def _where(row: Row, reports: dict[str, dict], faces: dict[str, int]) -> tuple[str, str]:
    """The stage at which a row stopped and the reason, or ('faces', count) if it came through."""
    for stage in ("download_videos", "extract_frames", "crop_faces"):
        for item, reason in _reasons(reports[stage]).items():
            manifest_row = item.startswith("row ") and row.reason in reason
            uri = row.line.split(",")[0]
            if (row.item == "row" and manifest_row and uri in item) or item == row.item:
                return stage, reason
    return ("faces", str(faces[row.item])) if faces.get(row.item) else ("nowhere", "")


@pytest.mark.slow
def test_bad_videos_manifest_rows_and_server_faults_through_the_stages(
    corpus: tuple[Path, list[Item], list[Item]],
    server: FileServer,
    tmp_path: Path,
    reliability: Recorder,
) -> None:
    root, _, videos = corpus
    download = {
        "manifest": "corpus/manifest.csv",
        "timeout_s": 2.0,
        "retries": 2,
        "backoff_s": 0.01,
    }
    project = make_project(tmp_path / "project", {"download": download})
    (project / "corpus").symlink_to(root, target_is_directory=True)
    rows = _manifest_rows(server, videos, root)
    manifest = root / "manifest.csv"
    manifest.write_text("\n".join(["uri,label,group,sha256", *(r.line for r in rows)]) + "\n")

    for stage in ("download_videos", "extract_frames", "crop_faces"):
        run(["deepfake", stage], project)
    reports = {
        "download_videos": _report(project, "data/raw/videos"),
        "extract_frames": _report(project, "data/interim/frames"),
        "crop_faces": _report(project, "data/interim/faces"),
    }
    faces: dict[str, int] = {}
    for line in (project / "data/interim/faces/faces.csv").read_text().splitlines()[1:]:
        vid = line.split(",")[0]
        faces[vid] = faces.get(vid, 0) + 1

    for row in rows:
        stage, observed = _where(row, reports, faces)
        ok = stage == row.stage and row.reason.lower() in observed.lower()
        expected = (
            "comes through with faces"
            if row.stage == "faces"
            else f"skipped by {row.stage}: …{row.reason}…"
        )
        shown = f"{observed} faces" if stage == "faces" else f"{stage}: {observed}"
        reliability.add(row.section, row.case, STAGES, expected, shown, ok)

    through = [r for r in rows if r.stage == "faces"]
    counts = {k: v["counts"] for k, v in reports.items()}
    stopped = {s: sum(r.stage == s for r in rows) for s in reports}
    totals_ok = (
        counts["download_videos"]["skipped"] == stopped["download_videos"]
        and counts["download_videos"]["videos"] == len(rows) - stopped["download_videos"]
        and counts["extract_frames"]["skipped"] == stopped["extract_frames"]
        and counts["crop_faces"]["skipped"] == stopped["crop_faces"]
        and sorted(faces) == sorted(r.item for r in through)
    )
    reliability.add(
        "inputs",
        f"{len(rows)} manifest rows at once",
        STAGES,
        "counts add up; every good video reaches faces.csv",
        f"download {dict(counts['download_videos'])}; frames skipped "
        f"{counts['extract_frames'].get('skipped', 0)}; faces skipped "
        f"{counts['crop_faces'].get('skipped', 0)}; videos with faces {len(faces)}",
        totals_ok,
    )
    assert not reliability.failures(entry=STAGES), reliability.failures(entry=STAGES)


@pytest.mark.parametrize(
    ("case", "content", "message"),
    [
        ("manifest without the label column", "uri,group\nvideos/good.mp4,g\n", "label"),
        ("manifest that is an empty file", "", "empty file"),
        ("manifest that is binary", "\x00\x01\x02PK\x03\x04", "manifest"),
    ],
)
def test_whole_manifest_problems_stop_the_stage_with_one_clear_line(
    project: Path, reliability: Recorder, case: str, content: str, message: str
) -> None:
    manifest = project / "data" / "demo" / "manifest.csv"
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_text(content)
    result = run(["deepfake", "download_videos"], project, check=False)
    last = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else ""
    ok = (
        result.returncode == 2
        and last.startswith("error: ")
        and message in last
        and "Traceback" not in result.stderr
        and not (project / "data/raw/videos/videos.csv").exists()
    )
    observed = f"exit {result.returncode}: {last}"
    assert reliability.add(
        "inputs",
        case,
        "CLI (deepfake download_videos)",
        f"exit 2, one line naming '{message}', nothing written",
        observed,
        ok,
    )


def test_bad_images_through_the_import_faces_stage(
    corpus: tuple[Path, list[Item], list[Item]], tmp_path: Path, reliability: Recorder
) -> None:
    root, images, _ = corpus
    faces = root / "faces"
    (faces / "real").mkdir(parents=True, exist_ok=True)
    for item in images:
        target = faces / "real" / item.name
        if not target.exists():
            target.symlink_to(root / "images" / item.name)
    settings = {
        "face_images": {"root": str(faces), "pattern": r"(?P<group>[a-z0-9_]+)", "margin": 0.0}
    }
    project = make_project(tmp_path / "project", settings)
    run(["deepfake", "import_faces"], project)
    report = _report(project, "data/face_images")
    reasons = {Path(k).name: v for k, v in _reasons(report).items()}
    imported = report["counts"].get("faces", 0)
    entry = "stage (import_faces)"
    for item in images:
        refused = item.name in reasons
        should = item.stage_refuses
        observed = f"skipped: {reasons[item.name]}" if refused else "imported"
        fragment = item.stage_skip
        ok = refused == should and (
            not should or (bool(reasons[item.name]) and fragment in reasons[item.name])
        )
        expected = (
            f"skipped: …{fragment}…"
            if fragment
            else "skipped with a reason"
            if should
            else "imported"
        )
        reliability.add("inputs", item.case, entry, expected, observed, ok)
    good = sum(not item.stage_refuses for item in images)
    reliability.add(
        "inputs",
        f"{len(images)} images at once",
        entry,
        f"{good} imported, the rest skipped",
        f"{imported} imported, {report['counts'].get('skipped', 0)} skipped",
        imported == good,
    )
    assert not reliability.failures(entry=entry), reliability.failures(entry=entry)


# --- answers: CLI, app, REST ---------------------------------------------------------------


def _judge(item: Item, result: dict) -> tuple[bool, str]:
    """Whether an answer is what the item asks for, and the answer in words."""
    verdict = result.get("verdict")
    faces = len(result.get("faces") or [])
    error = str(result.get("error") or "")
    if verdict == "error":
        observed = f"error: {error}"
    elif verdict == "no_face":
        observed = "no face found"
    else:
        observed = f"{verdict}, {faces} face(s), P(fake) {result.get('p_fake'):.2f}"
    if item.answer == "error":
        ok = verdict == "error" and item.message in error.lower() and "Traceback" not in error
    elif item.answer == "no_face":
        ok = verdict == "no_face"
    else:
        # uncertain is a verdict on the faces found, as real and fake are
        ok = verdict in ("real", "fake", "uncertain") and faces >= item.faces
    return ok, observed


def _expected(item: Item) -> str:
    if item.answer == "error":
        return f"clear error (…{item.message}…)"
    if item.answer == "no_face":
        return "answered: no face"
    return f"verdict with {item.faces} face(s)"


@pytest.mark.slow
def test_corpus_through_the_cli(
    corpus: tuple[Path, list[Item], list[Item]], trained_project: Path, reliability: Recorder
) -> None:
    root, images, videos = corpus
    result = run(
        [
            "deepfake",
            "predict",
            "--json",
            "--frames",
            "4",
            str(root / "images"),
            str(root / "videos"),
        ],
        trained_project,
        check=False,
    )
    answers = {Path(r["path"]).name: r for r in map(json.loads, result.stdout.splitlines())}
    entry = "CLI (deepfake predict)"
    for item in images + videos:
        folder = "videos" if item.is_video else "images"
        if item.name not in answers:
            reliability.add("inputs", item.case, entry, _expected(item), "no answer", False)
            continue
        ok, observed = _judge(item, answers[item.name])
        assert answers[item.name]["path"].endswith(f"{folder}/{item.name}")
        reliability.add("inputs", item.case, entry, _expected(item), observed, ok)
    errors = sum(i.answer == "error" for i in images + videos)
    reliability.add(
        "inputs",
        f"{len(images) + len(videos)} files in one call",
        entry,
        "one answer per file, exit 1 (some unreadable), no traceback",
        f"{len(answers)} answers, exit {result.returncode}, {errors} errors expected",
        len(answers) == len(images) + len(videos)
        and result.returncode == 1
        and "Traceback" not in result.stderr,
    )
    assert not reliability.failures(entry=entry), reliability.failures(entry=entry)


@pytest.mark.slow
def test_corpus_through_the_app(
    corpus: tuple[Path, list[Item], list[Item]],
    trained_project: Path,
    tmp_path: Path,
    reliability: Recorder,
) -> None:
    from gradio_client import Client, handle_file

    root, images, videos = corpus
    entry = "app (gradio_client)"
    with running_app(trained_project, tmp_path / "app.log") as (url, _):
        client = Client(url, verbose=False)
        for item in [i for i in images + videos if i.uploadable]:
            folder, api = (
                ("videos", "/predict_video") if item.is_video else ("images", "/predict_image")
            )
            path = root / folder / item.name
            try:
                answer = client.predict(handle_file(str(path)), api_name=api)
                text, result = answer[0], answer[-1]  # the verdict first, the result last
            except Exception as exc:  # the app must answer, not fail
                reliability.add(
                    "inputs",
                    item.case,
                    entry,
                    _expected(item),
                    f"request failed: {type(exc).__name__}: {exc}",
                    False,
                )
                continue
            ok, observed = _judge(item, result)
            if item.answer == "error":
                ok = ok and text.startswith("### Cannot analyse") and "Traceback" not in text
            reliability.add("inputs", item.case, entry, _expected(item), observed, ok)
        after = client.predict(
            handle_file(str(root / "images" / "good.jpg")), api_name="/predict_image"
        )[3]
    reliability.add(
        "inputs",
        "a good image after the whole corpus",
        entry,
        "still answered",
        str(after.get("verdict")),
        after.get("verdict") in ("real", "fake", "uncertain"),
    )
    assert not reliability.failures(entry=entry), reliability.failures(entry=entry)


@pytest.mark.slow
def test_corpus_and_bad_requests_through_rest(
    corpus: tuple[Path, list[Item], list[Item]],
    trained_project: Path,
    tmp_path: Path,
    reliability: Recorder,
) -> None:
    root, images, videos = corpus
    entry = "REST (/invocations)"
    with running_rest(trained_project, tmp_path / "rest.log") as (url, _):
        invocations = f"{url}/invocations"

        def post(images_b64: list[str]) -> requests.Response:
            body = {"dataframe_split": {"columns": ["image"], "data": [[b] for b in images_b64]}}
            return requests.post(invocations, json=body, timeout=120)

        for item in [i for i in images + videos if i.uploadable]:
            data = (root / ("videos" if item.is_video else "images") / item.name).read_bytes()
            answer = post([base64.b64encode(data).decode()])
            if answer.status_code != 200:
                reliability.add(
                    "inputs",
                    item.case,
                    entry,
                    _expected(item),
                    f"HTTP {answer.status_code}: {answer.text[:200]}",
                    False,
                )
                continue
            result = answer.json()["predictions"][0]
            # REST takes images: a video is refused as one
            video = Item(item.name, item.case, "error", message="image")
            expect = video if item.is_video else item
            ok, observed = _judge(expect, result)
            reliability.add("inputs", item.case, entry, _expected(expect), observed, ok)

        bad_requests = [
            (
                "body that is not JSON",
                dict(data=b"{not json", headers={"Content-Type": "application/json"}),
            ),
            (
                "JSON without an image column",
                dict(json={"dataframe_split": {"columns": ["picture"], "data": [["x"]]}}),
            ),
            ("wrong content type", dict(data=b"abc", headers={"Content-Type": "image/png"})),
            ("base64 that is not base64", dict(json={"inputs": {"image": ["%%%"]}})),
        ]
        for case, kwargs in bad_requests:
            answer = requests.post(invocations, timeout=60, **kwargs)  # type: ignore[arg-type]
            text = answer.text[:300]
            if answer.status_code == 200:
                result = answer.json()["predictions"][0]
                ok = result["verdict"] == "error" and bool(result["error"])
                observed = f"200, verdict error: {result['error']}"
            else:
                ok = 400 <= answer.status_code < 500 and "Traceback" not in answer.text
                observed = f"HTTP {answer.status_code}: {text}"
            reliability.add(
                "inputs", case, entry, "4xx with a message, or a per-image error", observed, ok
            )
        ping = requests.get(f"{url}/ping", timeout=10).status_code
    reliability.add(
        "inputs",
        "server after all bad requests",
        entry,
        "still answers /ping",
        f"HTTP {ping}",
        ping == 200,
    )
    assert not reliability.failures(entry=entry), reliability.failures(entry=entry)
