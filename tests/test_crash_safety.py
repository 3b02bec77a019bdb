"""SIGKILL in the middle of each per-item stage, then run again: nothing lost, nothing partial.

A reference project runs download_videos, extract_frames and crop_faces without interruption.
A second, identical project runs each stage, is killed with SIGKILL once some but not all of the
stage's videos are done, and runs the stage again. While the killed stage runs, every visible
file under data/ (no path part starting with '.') must already be complete: byte-identical to
the reference. After the rerun the outputs equal the reference and no hidden leftover remains.
Also: a second run on the same checkout while one is running is refused with a clear message.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import BIN, make_project, run, run_env
from fileserver import FileServer, Served
from reliability import Recorder

from deepfake_detector.core.artifacts import RUN_LOG_SUFFIX

pytestmark = pytest.mark.reliability

# Large enough that each stage takes seconds (a window to kill in), small enough for the suite.
CRASH = {
    "demo": {
        "clips_per_identity": 2,
        "frames_per_clip": 32,
        "fps": 8.0,
        "width": 480,
        "height": 360,
    },
    "frames": {"count": 16},
    "download": {"manifest": "data/remote.csv", "timeout_s": 5.0, "retries": 2},
}
STAGES = {  # stage -> (output folder, file that marks the stage finished, items done so far)
    "download_videos": ("data/raw/videos", "videos.csv", "*.mp4"),
    "extract_frames": ("data/interim/frames", "frames.csv", "*/frames.json"),
    "crop_faces": ("data/interim/faces", "faces.csv", "*/faces.json"),
}


def _compared(rel: str) -> bool:
    """Every file but the run logs (`<folder>.run.json`: the run's time and host)."""
    return not rel.endswith(RUN_LOG_SUFFIX)


def _visible(root: Path) -> dict[str, str]:
    """sha256 of every file under data/ whose path has no hidden part, by relative path."""
    out = {}
    # os.walk, not rglob: folders appear and vanish while the stage runs (walk skips those).
    for folder, dirs, files in os.walk(root / "data"):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            if name.startswith("."):
                continue
            path = Path(folder) / name
            try:
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
            except FileNotFoundError:  # replaced between listing and reading
                continue
            out[str(path.relative_to(root))] = digest
    return out


def _hidden(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob(".*")) if folder.exists() else []


def _serve_demo(server: FileServer, project: Path) -> None:
    """Serve the demo videos over HTTP, slowly (a download takes a moment), and list them."""
    rows = ["uri,label,group"]
    for label in ("real", "fake"):
        for clip in sorted((project / "data/demo/videos" / label).glob("*.mp4")):
            server.files[f"/{clip.name}"] = Served(clip.read_bytes(), delay_s=0.3)
            rows.append(f"{server.url('/' + clip.name)},{label},{clip.stem.split('_')[0]}")
    (project / "data/remote.csv").write_text("\n".join(rows) + "\n")


def _start(stage: str, project: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [str(BIN / "deepfake"), stage],
        cwd=project,
        env=run_env(project),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def _kill_midway(
    stage: str, project: Path, reference: dict[str, str], total: int
) -> tuple[int, list[str]]:
    """Run `stage`, SIGKILL it once 1..total-1 videos are done; return (done, partial files)."""
    folder, final, pattern = STAGES[stage]
    out = project / folder
    proc = _start(stage, project)
    partial: set[str] = set()
    deadline = time.monotonic() + 300
    done = 0
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            for rel, digest in _visible(project).items():
                if _compared(rel) and reference.get(rel) != digest:
                    partial.add(rel)
            done = len(list(out.glob(pattern))) if out.exists() else 0
            if 0 < done < total and not (out / final).exists():
                os.killpg(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.01)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, (
        f"{stage} ended ({proc.returncode}) before it could be killed mid-way: "
        f"{proc.stderr.read().decode()[-2000:] if proc.stderr else ''}"
    )
    for rel, digest in _visible(project).items():  # what the kill left in view
        if _compared(rel) and reference.get(rel) != digest:
            partial.add(rel)
    return done, sorted(partial)


@pytest.mark.slow
def test_sigkill_mid_stage_then_rerun_equals_an_uninterrupted_run(
    server: FileServer, tmp_path: Path, reliability: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    killed = make_project(tmp_path / "killed", CRASH)
    run(["deepfake", "make_demo_videos"], killed)
    _serve_demo(server, killed)
    clean = make_project(tmp_path / "clean", CRASH)
    shutil.copytree(killed / "data", clean / "data")
    total = len((killed / "data/remote.csv").read_text().splitlines()) - 1

    for stage in STAGES:
        run(["deepfake", stage], clean)
    reference = _visible(clean)

    for stage, (folder, _, _) in STAGES.items():
        done, partial = _kill_midway(stage, killed, reference, total)
        run(["deepfake", stage], killed)
        after = _visible(killed)
        stage_files = {k for k in reference if k.startswith(folder) and _compared(k)}
        differ = sorted(k for k in stage_files if after.get(k) != reference[k])
        extra = sorted(k for k in after if k.startswith(folder) and k not in reference)
        leftovers = _hidden(killed / folder)
        ok = not partial and not differ and not extra and not leftovers
        observed = (
            f"killed after {done}/{total} videos; partial files in view: {len(partial)}; "
            f"after rerun {len(stage_files) - len(differ)}/{len(stage_files)} files equal, "
            f"{len(extra)} extra, {len(leftovers)} hidden leftovers"
        )
        reliability.add(
            "crash",
            f"SIGKILL mid-way through {stage}, then run again",
            f"stage ({stage})",
            "no partial file in view; rerun equals an uninterrupted run",
            observed,
            ok,
        )
        assert ok, (partial[:5], differ[:5], extra[:5], leftovers[:5])


def test_a_second_run_on_the_same_checkout_is_refused(project: Path, reliability: Recorder) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; "
            "from deepfake_detector.core.runlock import exclusive_run\n"
            "with exclusive_run(Path('.'), 'crop_faces'):\n"
            "    print('holding', flush=True); time.sleep(120)",
        ],
        cwd=project,
        env=run_env(project),
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        refused = run(["deepfake", "extract_frames"], project, check=False)
        message = refused.stderr.strip().splitlines()[-1] if refused.stderr.strip() else ""
        ok = (
            refused.returncode == 2
            and f"pid {holder.pid}" in message
            and "another pipeline run" in message
            and "Traceback" not in refused.stderr
            and not (project / "data/interim/frames").exists()
        )
        reliability.add(
            "crash",
            "a second run while one holds the checkout",
            "CLI (deepfake extract_frames)",
            "refused at once, exit 2, names the holder; nothing written",
            f"exit {refused.returncode}: {message}",
            ok,
        )
        assert ok, refused.stderr[-2000:]
    finally:
        os.killpg(holder.pid, signal.SIGKILL)
        holder.wait(timeout=30)
    after = run(["deepfake", "make_demo_videos"], project, check=False)
    ok = after.returncode == 0
    reliability.add(
        "crash",
        "the holder killed with SIGKILL, then a new run",
        "CLI (deepfake make_demo_videos)",
        "the lock is free again (an OS lock dies with its process)",
        f"exit {after.returncode}",
        ok,
    )
    assert ok, after.stderr[-2000:]


@pytest.mark.slow
def test_two_dvc_repro_at_once_are_refused_by_dvc(project: Path, reliability: Recorder) -> None:
    first = subprocess.Popen(
        [str(BIN / "dvc"), "repro", "make_demo_videos"],
        cwd=project,
        env=run_env(project),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        lock = project / ".deepfake.lock.json"
        while not lock.exists() and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        second = run(["dvc", "repro"], project, check=False)
        out = second.stdout + second.stderr
        ok = second.returncode != 0 and "lock" in out.lower() and "Traceback" not in out
        reliability.add(
            "crash",
            "`dvc repro` while another `dvc repro` runs",
            "dvc repro",
            "refused with DVC's lock message",
            f"exit {second.returncode}: {' '.join(out.split())[:200]}",
            ok,
        )
        assert ok, out[-2000:]
    finally:
        first.wait(timeout=300)
    assert first.returncode == 0, first.stdout.read() if first.stdout else ""
