"""2. Frame sampling: ours against seeking to each sampled frame, and against the decoding floor.

Inputs: the three DFD videos (1080p, about 35 s) and the three DFDC clips (1080p, 10 s), with
params.yaml's `frames` settings (32 evenly spaced frames). Ours: `sample_frames` as
`extract_frames` calls it. Seeking: one `VideoCapture`, then `set(CAP_PROP_POS_FRAMES, i)` and
`read()` for each sampled frame (once, on one DFD video and one DFDC clip: it is slow). Floor:
`grab()` every frame up to the last sampled one, which any sequential reader has to decode, with
no colour conversion of any frame. Per video, floor and ours alternate and each keeps its best.
"""

from __future__ import annotations

from pathlib import Path

import cv2

from bench.context import Context
from bench.results import Row, fmt, times
from bench.timing import repeat

NAME = "frames"
TITLE = "2. Frame sampling"
TARGET = 1.2
LIMITS = """
`sample_frames` decodes every frame up to the last sampled one exactly once (`grab`) and
converts only the sampled ones (`retrieve`, about 4 ms each at 1080p): 32 conversions and
holding the sampled frames in memory are all it does above the floor. The rest is the
machine's noise, which the best of three runs per video damps but does not remove.
"""


def decode_floor(path: Path, last: int) -> int:
    """grab() (decode without conversion) every frame up to `last`; the number grabbed."""
    cap = cv2.VideoCapture(str(path))
    n = 0
    try:
        while n <= last and cap.grab():
            n += 1
    finally:
        cap.release()
    return n


def seek_each(path: Path, wanted: list[int]) -> int:
    """Seek to each wanted frame and read it; the number read."""
    cap = cv2.VideoCapture(str(path))
    n = 0
    try:
        for index in wanted:
            cap.set(cv2.CAP_PROP_POS_FRAMES, index)
            ok, _ = cap.read()
            n += ok
    finally:
        cap.release()
    return n


def run(ctx: Context) -> tuple[list[Row], list[str]]:
    """Seconds per video of the three ways; floor and ours alternate, each keeps its best."""
    from deepfake_detector.core.config import load_params
    from deepfake_detector.sources.video_reader import sample_frames, wanted_indices

    params = load_params(ctx.repo / "params.yaml").frames
    dfd, dfdc = ctx.files("*/*.mp4", "dfd", "videos"), ctx.files("*.mp4", "dfdc")
    videos = ctx.pick(dfd + dfdc, dfdc[:1])
    seeking = ctx.pick([dfd[0], dfdc[0]], dfdc[:1])  # seeking is slow: two videos suffice
    repeats = ctx.pick(3, 1)
    best: dict[str, dict[Path, float]] = {"floor": {}, "ours": {}, "seek": {}}
    frames = 0
    for video in videos:
        count = int(cv2.VideoCapture(str(video)).get(cv2.CAP_PROP_FRAME_COUNT))
        wanted = wanted_indices(count, params)
        frames += len(wanted)
        for _ in range(repeats):
            for name, way in (
                ("floor", lambda v=video, w=wanted: decode_floor(v, w[-1])),
                ("ours", lambda v=video: sample_frames(v, params)),
            ):
                seconds = repeat(way, 1, budget_s=0.0)[0]
                best[name][video] = min(best[name].get(video, seconds), seconds)
        if video in seeking:
            best["seek"][video] = repeat(lambda v=video, w=wanted: seek_each(v, w), 1, 0.0)[0]
    floor, ours = sum(best["floor"].values()), sum(best["ours"].values())
    seek, ours_on_seeking = sum(best["seek"].values()), sum(best["ours"][v] for v in seeking)
    ratio = ours / floor
    rows = [
        Row(
            TITLE,
            f"s/video, {len(videos)} 1080p videos, {params.count} frames each, vs decoding floor",
            fmt(floor / len(videos), "s"),
            fmt(ours / len(videos), "s"),
            times(ratio),
            f"<= {TARGET:g}x the floor",
            ratio <= TARGET,
        ),
        Row(
            TITLE,
            f"s/video, {len(seeking)} of them, vs seeking to each sampled frame",
            fmt(seek / len(seeking), "s"),
            fmt(ours_on_seeking / len(seeking), "s"),
            times(seek / ours_on_seeking) + " faster",
        ),
    ]
    notes = [
        f"Videos: {', '.join(v.name for v in videos)}; {frames} frames sampled in all; best of "
        f"{repeats} runs each; seeking measured once on {', '.join(v.name for v in seeking)}."
    ]
    return rows, notes
