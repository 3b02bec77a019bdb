"""12. Clip verdict: a 10-second 1080p clip's verdict against decoding the clip.

A small demo project runs `dvc repro` once (as benchmark 9), so the registry has a champion with
its LiteRT files. On each DFDC clip (10 s, 1080p, 300 frames), round after round, alternating:

- decode every frame: OpenCV `grab()` of all 300 frames, nothing else;
- the 32-frame floor: `sample_frames` with params.yaml's 32 frames (every frame up to the last
  sampled one decoded, the 32 sampled ones converted);
- the verdict: `Detector.predict_video` on 32 frames with the champion on LiteRT, as `deepfake
  predict` answers a clip (faces searched on keyframes while the clip decodes, carried between);
- the same with every sampled frame searched (`stride=1`): the path before keyframes.

The median of the rounds per clip, then the mean over clips. Then the same as whole processes,
from start to exit: `deepfake predict --frames 32 --json CLIP` against a Python process that
opens the clip with OpenCV and grabs every frame (median of 3 after one warm-up, per clip).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from bench import projects
from bench.cold_verdict import DEMO, MODEL, repeated
from bench.context import BIN, Context
from bench.results import Row, fmt, times
from bench.timing import median

NAME = "clip"
TITLE = "12. Clip verdict"
FRAMES = 32  # sampled per clip, as params.yaml's frames.count (the demo project samples fewer)
LIMIT = 1.2  # a clip's verdict at most this many times decoding every frame of it
DECODE_ALL = "import sys, cv2\ncap = cv2.VideoCapture(sys.argv[1])\nwhile cap.grab():\n    pass\n"


def decode_all(clip: Path) -> int:
    """grab() every frame of the clip; the number of frames."""
    import cv2

    cap = cv2.VideoCapture(str(clip))
    n = 0
    while cap.grab():
        n += 1
    cap.release()
    return n


def in_process(project: Path, clips: list[Path], rounds: int) -> dict[str, list[float]]:
    """Per clip, the median seconds of each way, alternating within each round."""
    import os

    from deepfake_detector.core.config import load_params
    from deepfake_detector.core.tracking import tracking_uri
    from deepfake_detector.inference.predict import load_detector
    from deepfake_detector.sources.video_reader import sample_frames

    cwd = Path.cwd()
    os.chdir(project)
    try:
        detector = load_detector(MODEL, tracking_uri=tracking_uri(load_params(Path("params.yaml"))))
        sampling = detector.config.frames.model_copy(update={"count": FRAMES})
        ways = {
            "decode": decode_all,
            "floor": lambda c: sample_frames(c, sampling),
            "verdict": lambda c: detector.predict_video(c, FRAMES),
            "every frame": lambda c: detector.predict_video(c, FRAMES, stride=1),
        }
        detector.predict_video(clips[0], FRAMES)  # warm-up: graphs, file cache
        out: dict[str, list[float]] = {name: [] for name in ways}
        for clip in clips:
            spans: dict[str, list[float]] = {name: [] for name in ways}
            for _ in range(rounds):
                for name, way in ways.items():
                    start = time.perf_counter()
                    way(clip)
                    spans[name].append(time.perf_counter() - start)
            for name in ways:
                out[name].append(median(spans[name]))
    finally:
        os.chdir(cwd)
    return out


def run(ctx: Context) -> tuple[list[Row], list[str]]:
    """The rows: in one process against decoding, then as whole processes."""
    clips = ctx.files("*.mp4", "dfdc")  # Skip when absent
    project = projects.make_project(ctx, "clip", DEMO)
    projects.run(["dvc", "repro"], project).check("dvc repro (demo set)")
    seconds = in_process(project, clips, ctx.pick(5, 2))
    mean = {name: sum(v) / len(v) for name, v in seconds.items()}
    repeats = ctx.pick(3, 1)
    cli = str(BIN / "deepfake")
    predict = [cli, "predict", "--frames", str(FRAMES), "--json"]
    whole_verdict = [repeated([*predict, str(c)], project, repeats)[0] for c in clips]
    whole_decode = [
        repeated([sys.executable, "-c", DECODE_ALL, str(c)], project, repeats)[0] for c in clips
    ]
    verdict_s, decode_s = sum(whole_verdict) / len(clips), sum(whole_decode) / len(clips)
    ratio = mean["verdict"] / mean["decode"]
    whole_ratio = verdict_s / decode_s
    label = f"{len(clips)} DFDC clips (10 s, 1080p)"
    rows = [
        Row(
            TITLE,
            f"s per clip in one process, verdict vs decoding every frame, {label}",
            fmt(mean["decode"], "s (decode all)"),
            fmt(mean["verdict"], "s"),
            f"{ratio:.2f}x",
            f"<= {LIMIT:g}x",
            ratio <= LIMIT,
        ),
        Row(
            TITLE,
            "the verdict vs the 32-frame decode floor",
            fmt(mean["floor"], "s (32 frames)"),
            fmt(mean["verdict"], "s"),
            f"{mean['verdict'] / mean['floor']:.2f}x",
        ),
        Row(
            TITLE,
            "the verdict vs every sampled frame searched (the path before keyframes)",
            fmt(mean["every frame"], "s"),
            fmt(mean["verdict"], "s"),
            times(mean["every frame"] / mean["verdict"]) + " faster",
        ),
        Row(
            TITLE,
            "whole process: `deepfake predict --json CLIP` vs a process decoding every frame",
            fmt(decode_s, "s (decode all)"),
            fmt(verdict_s, "s"),
            f"{whole_ratio:.2f}x",
            f"<= {LIMIT:g}x",
            whole_ratio <= LIMIT,
        ),
    ]
    per_clip = ", ".join(
        f"{c.stem} {v:.2f} s / {d:.2f} s"
        for c, v, d in zip(clips, seconds["verdict"], seconds["decode"], strict=True)
    )
    notes = [f"In one process, verdict / decode all per clip: {per_clip}."]
    return rows, notes
