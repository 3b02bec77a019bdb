"""5. Incremental work: after the pipeline processed N videos, add one.

Inputs: N + 1 distinctly named copies of the DFDC clips (10-second 1080p), listed in a local
manifest of a throw-away copy of the project, with params.yaml's settings otherwise. The
per-video stages (`download_videos`, `extract_frames`, `crop_faces`) run through the real
`dvc repro crop_faces`. Incremental: a project that already processed N videos gets the manifest
with one more. Full: a fresh project processes all N + 1. Which video folders were (re)written
is read from their stamps' modification times.
"""

from __future__ import annotations

from pathlib import Path

from bench import projects
from bench.context import Context
from bench.results import Row, fmt
from deepfake_detector.core.reports import read_report

NAME = "incremental"
TITLE = "5. Incremental work"
PER_VIDEO = ("extract_frames", "crop_faces")
LIMITS = """
The per-video stages redo only the new video (the "videos redone" row). What remains of an
incremental run is paid once per run however many videos change: DVC's checks and the start of
each stage's process (TensorFlow and MTCNN for crop_faces).
"""
FOLDERS = {"extract_frames": ("frames", "frames.json"), "crop_faces": ("faces", "faces.json")}


def stamps(project: Path, stage: str) -> dict[str, float]:
    """video_id -> modification time of its stamp, for one per-video stage."""
    folder, stamp = FOLDERS[stage]
    root = project / "data" / "interim" / folder
    return {p.parent.name: p.stat().st_mtime for p in root.glob(f"*/{stamp}")}


def stage_seconds(project: Path, stage: str) -> float:
    """The seconds the stage itself reported (no process start, no DVC)."""
    folder, _ = FOLDERS[stage]
    return float(read_report(project / "data" / "interim" / folder)["run"]["seconds"])


def setup(ctx: Context, name: str, videos: list[Path], count: int) -> Path:
    """A throw-away project whose manifest lists `videos`."""
    project = projects.make_project(
        ctx,
        name,
        {"download": {"manifest": "data/manifests/bench.csv"}, "frames": {"count": count}},
    )
    manifest(project, videos)
    return project


def manifest(project: Path, videos: list[Path]) -> None:
    """List `videos` (labels alternate; one group each) in the project's manifest."""
    projects.write_manifest(
        project,
        [(v, "fake" if i % 2 else "real", f"g{i:03d}", "") for i, v in enumerate(videos)],
    )


def repro(project: Path) -> float:
    """`dvc repro crop_faces`: its wall seconds."""
    return projects.run(["dvc", "repro", "crop_faces"], project).check("dvc repro").seconds


def run(ctx: Context) -> tuple[list[Row], list[str]]:
    """Wall time of adding one video after N, against a full run of N + 1."""
    n = ctx.pick(4, 2)
    count = ctx.pick(32, 8)
    videos = projects.named_copies(ctx, ctx.files("*.mp4", "dfdc"), n + 1, "incremental-videos")
    grown = setup(ctx, "incremental", videos[:n], count)
    first_s = repro(grown)
    before = {s: stamps(grown, s) for s in PER_VIDEO}
    full = setup(ctx, "full", videos, count)
    full_s = repro(full)
    full_stage = {s: stage_seconds(full, s) for s in PER_VIDEO}
    manifest(grown, videos)
    added_s = repro(grown)
    added_stage = {s: stage_seconds(grown, s) for s in PER_VIDEO}
    redone = {
        s: sorted(v for v, t in stamps(grown, s).items() if before[s].get(v) != t)
        for s in PER_VIDEO
    }
    ratio = added_s / full_s
    only_one = all(len(r) == 1 for r in redone.values())
    rows = [
        Row(
            TITLE,
            f"`dvc repro` after adding 1 video to N = {n} (1080p, {count} frames each)",
            fmt(full_s, "s (full run)"),
            fmt(added_s, "s"),
            f"{ratio:.2f} of a full run",
            f"<= 2/N = {2 / n:.2f}",
            ratio <= 2 / n and only_one,
        ),
        Row(
            TITLE,
            "videos redone by extract_frames / crop_faces",
            f"{n + 1} / {n + 1}",
            " / ".join(str(len(redone[s])) for s in PER_VIDEO),
            "",
            "1 / 1",
            only_one,
        ),
    ]
    notes = [
        "Stage time alone (its report), incremental against full: "
        + "; ".join(f"{s} {added_stage[s]:.1f} s against {full_stage[s]:.1f} s" for s in PER_VIDEO)
        + ". The rest of each run is process start-up (TensorFlow and MTCNN for crop_faces) "
        "and DVC's own checks, paid once per run however many videos change.",
        f"The first run on N = {n} videos took {first_s:.1f} s.",
    ]
    return rows, notes
