"""8. Fan-out on Dask: the per-video face cropping on a local Dask cluster, two workers and one.

Inputs: N distinctly named copies of the DFDC clips (10-second 1080p) in a throw-away copy of the
project, their frames extracted first by `dvc repro extract_frames`. Then the real
`deepfake flow --until crop_faces` runs with `flow.task_runner: dask` and `flow.workers` 1 and 2,
alternating, each time with the faces folder removed and a fresh Prefect home, so that every
video is cropped again. Measured: the crop_faces stage's own seconds from its report (submitting
every video's task to the finished faces table, on the cluster's worker processes), and the wall
time of the whole command (Prefect's start, the cluster's start, TensorFlow and MTCNN loading in
each worker, and the cached download and frame tasks included).
"""

from __future__ import annotations

import shutil
import statistics
from pathlib import Path

import yaml

from bench import projects
from bench.context import Context
from bench.processes import child_env, run_measured
from bench.results import Row, fmt
from deepfake_detector.core.reports import read_report

NAME = "dask"
TITLE = "8. Fan-out on Dask"
EXPLAIN_ALWAYS = True
LIMITS = """
On this 2-core machine two workers crop no faster than one: a single worker's TensorFlow already
keeps both cores busy (MTCNN, JPEG decoding and writing), so a second process only shares the
same two cores; the flow gives each local worker `cores / workers` TensorFlow threads so that they
do not fight over them, and the two take the same time as one. Fan-out pays where there are more
cores than one worker uses, or more machines: `flow.dask_address` sends the same tasks to an
existing cluster, whose workers each bring their own cores. The fixed part of a run (Prefect's and
the cluster's start, TensorFlow and MTCNN in each worker) does not shrink with more workers.
"""


def _flow(project: Path, workers: int, run: int) -> tuple[float, float]:
    """One `deepfake flow --until crop_faces` on `workers` Dask workers: (stage s, wall s)."""
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["flow"] = {"task_runner": "dask", "workers": workers, "dask_address": ""}
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    shutil.rmtree(project / "data" / "interim" / "faces", ignore_errors=True)
    env = child_env(project)
    env["PREFECT_HOME"] = str(project / f".prefect-{run}")
    measured = run_measured(
        ["deepfake", "flow", "--until", "crop_faces"], project, projects.STAGE_TIMEOUT_S, env=env
    ).check("deepfake flow")
    report = read_report(project / "data/interim/faces")
    return float(report["run"]["seconds"]), measured.seconds


def run(ctx: Context) -> tuple[list[Row], list[str]]:
    """Stage and wall seconds with 1 and 2 workers, alternating, median of the repeats."""
    n = ctx.pick(8, 4)
    count = ctx.pick(16, 8)
    repeats = ctx.pick(2, 1)
    videos = projects.named_copies(ctx, ctx.files("*.mp4", "dfdc"), n, "dask-videos")
    project = projects.make_project(
        ctx,
        "dask",
        {"download": {"manifest": "data/manifests/bench.csv"}, "frames": {"count": count}},
    )
    projects.write_manifest(
        project,
        [(v, "fake" if i % 2 else "real", f"g{i:03d}", "") for i, v in enumerate(videos)],
    )
    projects.run(["dvc", "repro", "extract_frames"], project).check("dvc repro")
    times: dict[int, list[tuple[float, float]]] = {1: [], 2: []}
    for r in range(repeats):
        for workers in (1, 2):
            times[workers].append(_flow(project, workers, 2 * r + workers))
    stage = {w: statistics.median(s for s, _ in t) for w, t in times.items()}
    wall = {w: statistics.median(w_ for _, w_ in t) for w, t in times.items()}
    rows = [
        Row(
            TITLE,
            f"crop_faces stage, {n} 1080p videos x {count} frames, 2 Dask workers vs 1",
            fmt(stage[1], "s (1 worker)"),
            fmt(stage[2], "s"),
            f"{stage[1] / stage[2]:.2f}x",
        ),
        Row(
            TITLE,
            "`deepfake flow --until crop_faces` wall time, start-up included, 2 workers vs 1",
            fmt(wall[1], "s (1 worker)"),
            fmt(wall[2], "s"),
            f"{wall[1] / wall[2]:.2f}x",
        ),
    ]
    notes = [
        f"Per video with one worker: {stage[1] / n:.2f} s; with two: {stage[2] / n:.2f} s. "
        f"Each figure is the median of {repeats} run(s), 1 and 2 workers alternating."
    ]
    return rows, notes
