"""Batch verdicts that survive a crash: `deepfake predict --out`, killed and run again."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import BIN, run_env
from media import one_face, save_rgb
from reliability import Recorder
from tiny_model import tiny_config
from tiny_model import tiny_model as build_tiny_model

from deepfake_detector.inference.batch import AnswerLog, Progress, media_files


def saved_tiny_model(folder: Path, lite: bool) -> Path:
    """The tiny model saved with its inference.json (and, if `lite`, its LiteRT files)."""
    from deepfake_detector.inference.lite_export import write_lite_files
    from deepfake_detector.inference.lite_runtime import LITE_DIR

    model, config = build_tiny_model(), tiny_config()
    model.save(folder / "model.keras")
    (folder / "inference.json").write_text(json.dumps(config.to_dict()))
    if lite:
        write_lite_files(model, config.image_size, config.tta_flip, folder / LITE_DIR)
    return folder / "model.keras"


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small Keras model with its inference.json: a real model file, quick to load."""
    return saved_tiny_model(tmp_path_factory.mktemp("model"), lite=False)


@pytest.fixture(scope="module")
def tiny_lite_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same, with its LiteRT files beside it, as a registered model has them: each process
    that loads it starts in a moment (no TensorFlow)."""
    return saved_tiny_model(tmp_path_factory.mktemp("lite-model"), lite=True)


def faces_folder(folder: Path, n: int) -> list[Path]:
    """`n` pictures of one face in three sub-folders, each a little brighter than the last."""
    face = cv2.resize(one_face(), (240, 300)).astype(int)
    files = []
    for i in range(n):
        sub = folder / f"sub{i % 3}"
        sub.mkdir(parents=True, exist_ok=True)
        picture = np.clip(face + i, 0, 255).astype(np.uint8)
        files.append(save_rgb(sub / f"face_{i:03d}.png", picture))
    return files


def answers(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.reliability
def test_a_batch_killed_mid_way_resumes_and_answers_every_input_exactly_once(
    tiny_model: Path, tmp_path: Path, reliability: Recorder
) -> None:
    files = faces_folder(tmp_path / "inputs", 24)
    out = tmp_path / "results.jsonl"
    cmd = [str(BIN / "deepfake"), "predict", "-m", str(tiny_model), "--out", str(out)]
    cmd.append(str(tmp_path / "inputs"))
    first = subprocess.Popen(cmd, cwd=tmp_path, env=run_env(tmp_path), start_new_session=True)
    deadline = time.monotonic() + 180
    try:
        while time.monotonic() < deadline and first.poll() is None:
            if out.is_file() and len(out.read_text().splitlines()) >= 4:
                break
            time.sleep(0.05)
        assert first.poll() is None, "the first run ended before it could be killed"
        os.killpg(first.pid, signal.SIGKILL)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
    killed_at = len(out.read_text().splitlines())
    assert 4 <= killed_at < len(files)
    second = subprocess.run(
        cmd, cwd=tmp_path, env=run_env(tmp_path), capture_output=True, text=True, timeout=300
    )
    assert second.returncode == 0, second.stderr[-2000:]
    assert f"{len(files) - killed_at} answered now, {killed_at} before" in second.stderr
    done = answers(out)
    once = sorted(a["path"] for a in done) == sorted(str(f) for f in files)  # each exactly once
    reliability.add(
        "crash",
        f"SIGKILL after {killed_at} of {len(files)} answers, then the same command again",
        "deepfake predict --out",
        "every input answered exactly once",
        f"{len(done)} answers for {len(files)} inputs; second run exit {second.returncode}",
        once,
    )
    assert once
    assert all(a["verdict"] in ("real", "fake", "uncertain") and a["sha256"] for a in done)
    # A third run finds nothing left to do; a changed picture is answered again.
    save_rgb(files[0], np.zeros((300, 240, 3), np.uint8))
    third = subprocess.run(cmd, cwd=tmp_path, env=run_env(tmp_path), capture_output=True,
                           text=True, timeout=300)  # fmt: skip
    assert "1 answered now" in third.stderr
    assert [a["path"] for a in answers(out)].count(str(files[0])) == 2


def test_a_large_batch_on_the_light_runtime_gets_a_worker_per_core_unless_told(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from deepfake_detector.inference import fanout

    monkeypatch.setattr(os, "sched_getaffinity", lambda _: {0, 1}, raising=False)
    assert fanout.auto_workers(fanout.AUTO_MIN_INPUTS, "litert") == 2
    assert fanout.auto_workers(fanout.AUTO_MIN_INPUTS - 1, "litert") == 1  # start-up not repaid
    assert fanout.auto_workers(1000, "tensorflow") == 1  # a TensorFlow process each: memory
    monkeypatch.setattr(os, "sched_getaffinity", lambda _: set(range(64)), raising=False)
    assert fanout.auto_workers(1000, "litert") == fanout.AUTO_MAX_WORKERS


def test_a_line_cut_off_by_a_kill_is_dropped_and_its_input_answered_again(tmp_path: Path) -> None:
    out = tmp_path / "results.jsonl"
    whole = json.dumps({"path": "a.jpg", "verdict": "real", "sha256": "aa"})
    out.write_text(whole + "\n" + '{"path": "b.jpg", "verd')
    log = AnswerLog(out)
    assert log.done(Path("a.jpg"), "aa") and not log.done(Path("b.jpg"), "bb")
    assert not log.done(Path("a.jpg"), "changed")  # same path, other content: answered again
    log.append({"path": "b.jpg", "verdict": "fake"}, "bb")
    log.close()
    assert [a["path"] for a in answers(out)] == ["a.jpg", "b.jpg"]


def test_the_listing_is_streamed_sorted_and_never_follows_a_link_into_a_folder(
    tmp_path: Path,
) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "a").mkdir()
    for name in ("b/2.jpg", "b/1.mp4", "a/z.png", "a/notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "a" / "loop").symlink_to(tmp_path, target_is_directory=True)
    (tmp_path / "a" / "gone.jpg").symlink_to(tmp_path / "nowhere.jpg")
    (tmp_path / "b" / "loop.png").symlink_to(tmp_path / "b" / "loop.png")  # ELOOP when asked
    walk = media_files([tmp_path])
    assert next(walk) == tmp_path / "a" / "gone.jpg"  # a generator: nothing listed ahead
    assert list(walk) == [
        tmp_path / "a/z.png",
        tmp_path / "b/1.mp4",
        tmp_path / "b/2.jpg",
        tmp_path / "b/loop.png",
    ]


def test_progress_off_a_terminal_is_a_plain_line_with_rate_and_time_left() -> None:
    stream = io.StringIO()
    progress = Progress(10, stream, every_s=0.0)
    progress.step(skipped=True)
    time.sleep(0.01)
    progress.step()
    line = stream.getvalue().splitlines()[-1]
    assert line.startswith("predict: 2/10 files (1 answered before), ")
    assert "files/s, about" in line and line.endswith(" left")


def _verdicts(tiny_model: Path, folder: Path, cwd: Path, *extra: str) -> dict[str, tuple]:
    result = subprocess.run(
        [str(BIN / "deepfake"), "predict", "--json", "-m", str(tiny_model), *extra, str(folder)],
        cwd=cwd,
        env=run_env(cwd),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    return {a["path"]: (a["verdict"], round(a["p_fake"], 6), len(a["faces"])) for a in lines}


@pytest.mark.slow  # starts a local Dask cluster and two worker processes
def test_worker_processes_and_a_dask_cluster_give_the_same_answers_in_the_same_order(
    tiny_lite_model: Path, tmp_path: Path
) -> None:
    pytest.importorskip("distributed", reason="Dask is not installed: the [cluster] extra")
    files = faces_folder(tmp_path / "inputs", 6)
    alone = _verdicts(tiny_lite_model, tmp_path / "inputs", tmp_path)
    assert list(alone) == [str(f) for f in sorted(files)]
    assert _verdicts(tiny_lite_model, tmp_path / "inputs", tmp_path, "--workers", "2") == alone
    on_dask = _verdicts(tiny_lite_model, tmp_path / "inputs", tmp_path, "--dask", "local")
    assert on_dask == alone and list(on_dask) == list(alone)
