"""6. Memory: peak resident memory of the stages at N and 4N videos (N = 4).

Each stage runs as its own `deepfake <stage>` process in a throw-away copy of the project; its
peak resident set size comes from the kernel (wait4) through a small launcher, so it is the
stage's own memory and not the benchmark's. Two routes into the pipeline, each at N and 4N:

- videos: N and 4N distinctly named copies of the DFDC clips (10-second 1080p) through
  `download_videos`, `extract_frames` and `crop_faces`;
- face images: the DFD face crops of N and 4N source videos through `import_faces`,
  `split_dataset` and `train_model` (one head epoch and one fine-tuning epoch at params.yaml's
  image and batch size). Each source video is its own group, real and fake alternate, and the
  split seed is the first that gives the training side both classes at N and 4N. The crops make
  a training set of several full batches at N already, which a few sampled frames per video
  would not: a partial batch alone would make the peak at N smaller.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

from bench import projects
from bench.context import Context
from bench.results import Row, times

NAME = "memory"
TITLE = "6. Memory"
N = 4
VIDEO_STAGES = ("download_videos", "extract_frames", "crop_faces")
FACE_STAGES = ("import_faces", "split_dataset", "train_model")
REPORTED = ("extract_frames", "crop_faces", "train_model")
MAX_GROWTH = 1.10
# Close to its target on this machine: the explanation is always printed.
EXPLAIN_ALWAYS = True
LIMITS = """
`train_model` keeps no per-face state: tf.data reads, decodes and augments each crop as it
goes, and the shuffle buffer holds file names. Its peak follows the number of steps in an
epoch, not the data: traced over time, the resident size creeps up during each epoch and falls
back after it. Most of the creep is heap fragmentation of tf.data's worker threads (glibc gives
each thread its own arena): with `MALLOC_ARENA_MAX=2` in the environment the growth from N to
4N was 4 % instead of 8.5 % (1462 -> 1521 MiB against 1456 -> 1579 MiB); a fixed `prefetch(2)`
in place of AUTOTUNE made no difference.
"""
VIDEO_OF_CROP = re.compile(r"(?P<video>(?P<label>Real|Fake)_\d+\S*?)_frame_\d+")
# The source video is the group here, so that N = 4 videos still fill train, val and test.
GROUP_PER_VIDEO = r"(?P<group>(?P<video>(?:Real|Fake)_\d+(?:_\d+)?__.+?))_frame_(?P<frame>\d+)"


def run_stages(project: Path, stages: tuple[str, ...]) -> dict[str, int]:
    """Run the stages in order; each one's peak RSS in bytes."""
    return {
        stage: projects.run(["deepfake", stage], project).check(f"deepfake {stage}").peak_rss_bytes
        for stage in stages
    }


def video_route(ctx: Context, videos: list[Path], frames: int) -> dict[str, int]:
    """download_videos, extract_frames and crop_faces on `videos`."""
    project = projects.make_project(
        ctx,
        f"memory-videos-{len(videos)}",
        {"download": {"manifest": "data/manifests/bench.csv"}, "frames": {"count": frames}},
        dvc=False,
    )
    projects.write_manifest(
        project, [(v, "fake" if i % 2 else "real", f"g{i:03d}", "") for i, v in enumerate(videos)]
    )
    return run_stages(project, VIDEO_STAGES)


def crops_by_video(ctx: Context) -> list[list[Path]]:
    """The DFD face crops grouped by source video, real and fake videos alternating."""
    videos: dict[str, list[Path]] = defaultdict(list)
    for path in ctx.files("*/*.jpg", "dfd", "faces"):
        match = VIDEO_OF_CROP.fullmatch(path.stem)
        if match:
            videos[match["video"]].append(path)
    real = [videos[v] for v in sorted(videos) if v.startswith("Real")]
    fake = [videos[v] for v in sorted(videos) if v.startswith("Fake")]
    pairs = [video for pair in zip(real, fake, strict=False) for video in pair]
    return pairs + real[len(fake) :] + fake[len(real) :]


def split_seed(sets: list[list[list[Path]]]) -> int:
    """The first split seed whose training side holds both classes in every set of videos."""
    import pandas as pd

    from deepfake_detector.core.config import SplitParams
    from deepfake_detector.recipes.splitting import assign_groups

    for seed in range(100):
        ok = True
        for videos in sets:
            names = [VIDEO_OF_CROP.fullmatch(v[0].stem)["video"] for v in videos]  # type: ignore[index]
            groups = pd.DataFrame({"group": names, "fixed": [""] * len(names)})
            sides = assign_groups(groups, SplitParams(seed=seed))
            ok &= len({n.split("_")[0] for n in names if sides[n] == "train"}) == 2
        if ok:
            return seed
    raise RuntimeError("no split seed below 100 gives the training side both classes")


def face_route(ctx: Context, videos: list[list[Path]], seed: int) -> dict[str, int]:
    """import_faces, split_dataset and train_model on the crops of `videos`."""
    folder = ctx.scratch / f"memory-crops-{len(videos)}"
    for crop in (c for video in videos for c in video):
        (folder / crop.parent.name).mkdir(parents=True, exist_ok=True)
        (folder / crop.parent.name / crop.name).symlink_to(crop)
    project = projects.make_project(
        ctx,
        f"memory-faces-{len(videos)}",
        {
            "face_images": {"root": str(folder), "pattern": GROUP_PER_VIDEO},
            "split": {"faces_dir": "data/face_images", "seed": seed},
            "train": {"head_epochs": 1, "epochs": 1},
        },
        dvc=False,
    )
    return run_stages(project, FACE_STAGES)


def gib(n: int) -> str:
    """Bytes as GiB."""
    return f"{n / 2**30:.2f} GiB"


def run(ctx: Context) -> tuple[list[Row], list[str]]:
    """Peaks at N and 4N; the streaming stages must stay flat."""
    frames = ctx.pick(8, 2)
    clips = projects.named_copies(ctx, ctx.files("*.mp4", "dfdc"), 4 * N, "memory-videos")
    crops = crops_by_video(ctx)
    if len(crops) < 4 * N:
        raise RuntimeError(f"{len(crops)} DFD source videos among the face crops; need {4 * N}")
    seed = split_seed([crops[:N], crops[: 4 * N]])
    small = video_route(ctx, clips[:N], frames) | face_route(ctx, crops[:N], seed)
    large = video_route(ctx, clips, frames) | face_route(ctx, crops[: 4 * N], seed)
    faces = (sum(len(v) for v in crops[:N]), sum(len(v) for v in crops[: 4 * N]))
    what = {
        "extract_frames": f"{frames} frames each",
        "crop_faces": f"{frames} frames each",
        "train_model": f"{faces[0]} -> {faces[1]} face crops",
    }
    rows = []
    for stage in REPORTED:
        growth = large[stage] / small[stage]
        rows.append(
            Row(
                TITLE,
                f"peak RSS of {stage}, N = {N} -> 4N = {4 * N} videos ({what[stage]})",
                gib(small[stage]),
                gib(large[stage]),
                times(growth),
                f"<= {MAX_GROWTH:.2f}x (flat)",
                growth <= MAX_GROWTH,
            )
        )
    notes = [
        "Every stage's peak at N -> 4N: "
        + "; ".join(f"{s} {gib(small[s])} -> {gib(large[s])}" for s in small)
        + "."
    ]
    return rows, notes
