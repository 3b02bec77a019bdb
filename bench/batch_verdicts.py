"""11. Batch verdicts: a folder of 1080p frames answered into a JSON Lines file, on one process,
two worker processes and a two-worker local Dask cluster; and a batch killed half-way, resumed.

A small demo project runs `dvc repro` once, so the registry has a champion with its LiteRT files.
Each batch is `deepfake predict --out FILE FOLDER` as a fresh process, timed from start to exit
(start-up and model loading included, once per worker). The killed batch is stopped with SIGKILL
once half its answers are on disk, then the same command is run again: the answers are counted
per input.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from bench import projects
from bench.cold_verdict import DEMO
from bench.context import BIN, Context
from bench.results import Row, fmt, times

NAME = "batch"
TITLE = "11. Batch verdicts"
FRAMES = 40


def _answers(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def batch(project: Path, folder: Path, out: Path, *extra: str) -> float:
    """Seconds of one `deepfake predict --out` run, from start to exit."""
    start = time.perf_counter()
    proc = subprocess.run(
        [str(BIN / "deepfake"), "predict", "--out", str(out), *extra, str(folder)],
        cwd=project,
        env=projects.child_env(project),
        capture_output=True,
        text=True,
        timeout=1200,
    )
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"predict --out {extra} failed:\n{proc.stderr[-2000:]}")
    return time.perf_counter() - start


def killed_and_resumed(project: Path, folder: Path, out: Path, total: int) -> tuple[int, int]:
    """Answers on disk when the batch was killed, and the most answers any input got after the
    same command ran again (1: none lost, none twice)."""
    cmd = [str(BIN / "deepfake"), "predict", "--out", str(out), str(folder)]
    proc = subprocess.Popen(
        cmd, cwd=project, env=projects.child_env(project), start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 600
    while proc.poll() is None and time.monotonic() < deadline:
        if len(_answers(out)) >= total // 2:
            break
        time.sleep(0.05)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    at_kill = len(_answers(out))
    batch(project, folder, out)
    counts: dict[str, int] = {}
    for answer in _answers(out):
        counts[answer["path"]] = counts.get(answer["path"], 0) + 1
    complete = len(counts) == total
    return at_kill, max(counts.values()) if complete else 0


def run(ctx: Context) -> tuple[list[Row], list[str]]:
    """Files per second on one process, two processes and a two-worker Dask cluster; a batch
    killed half-way and resumed."""
    frames = ctx.files("*.jpg", "dfd", "frames", "real")[: FRAMES // 2]
    frames += ctx.files("*.jpg", "dfd", "frames", "fake")[: FRAMES - len(frames)]
    frames = frames[: ctx.pick(FRAMES, 12)]
    project = projects.make_project(ctx, "batch", DEMO)
    projects.run(["dvc", "repro"], project).check("dvc repro (demo set)")
    folder = ctx.scratch / "batch-inputs"
    folder.mkdir()
    for frame in frames:
        shutil.copy(frame, folder / frame.name)
    n = len(frames)
    one = batch(project, folder, ctx.scratch / "one.jsonl", "--workers", "1")
    two = batch(project, folder, ctx.scratch / "two.jsonl", "--workers", "2")
    rows = [
        Row(
            TITLE, f"{n} 1080p frames, one process", "", f"{n / one:.2f} files/s ({fmt(one, 's')})"
        ),
        Row(
            TITLE,
            "the same, `--workers 2`",
            f"{n / one:.2f} files/s (one process)",
            f"{n / two:.2f} files/s ({fmt(two, 's')})",
            times(one / two),
        ),
    ]
    notes = []
    try:
        import distributed  # noqa: F401

        dask = batch(project, folder, ctx.scratch / "dask.jsonl", "--dask", "local")
        rows.append(
            Row(
                TITLE,
                "the same on a local Dask cluster (`--dask local`)",
                f"{n / one:.2f} files/s (one process)",
                f"{n / dask:.2f} files/s ({fmt(dask, 's')})",
                times(one / dask),
            )
        )
    except ImportError:
        notes.append("Dask is not installed here (the [cluster] extra): no Dask row.")
    at_kill, most = killed_and_resumed(project, folder, ctx.scratch / "killed.jsonl", n)
    rows.append(
        Row(
            TITLE,
            f"killed (SIGKILL) after {at_kill} of {n} answers, the same command again",
            "",
            f"{n} inputs, each answered {'once' if most == 1 else f'up to {most} times'}",
            "",
            "every input once",
            most == 1,
        )
    )
    notes.append(
        "Whole processes from start to exit: each worker starts Python and loads the model "
        "once. Without `--workers`, a batch of this size on the light runtime takes a worker "
        "per core (at most 4): here two."
    )
    return rows, notes
