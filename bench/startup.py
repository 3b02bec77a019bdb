"""7. Start-up: `deepfake --help` and a no-op `dvc repro`, and whether TensorFlow is imported.

Each command runs as a fresh process, several times; the median counts. The floor beside each is
the bare start of the same program (`python -c pass`, `dvc --version`). The no-op `dvc repro`
runs in a throw-away copy of the project (git and DVC, as a clone) after a complete `dvc repro`
of a small demo set, so every stage is checked and none runs. Whether TensorFlow is imported on
these paths is read from `python -X importtime`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from bench import projects
from bench.context import BIN, Context
from bench.results import Row, fmt, times
from bench.timing import median

NAME = "startup"
TITLE = "7. Start-up"
LIMIT_S = 1.0
# Close to its target on this machine: the explanation is always printed.
EXPLAIN_ALWAYS = True
LIMITS = """
A no-op `dvc repro` is DVC's own work; it imports nothing of the project. Measured separately on
this machine under load (five runs each): importing DVC 0.3-0.4 s (`dvc --version` takes a
shortcut around it); `dvc status`, which checks the same stages without locking them, 0.9 s;
`dvc repro` 1.2-1.3 s in a project without git and 1.3-1.5 s in a git clone (its git
integration makes the difference). Profiled, parsing dvc.yaml and dvc.lock (twice each) and
params.yaml (once for `vars`, then once per stage that lists params: 9 to 10 times) with
ruamel.yaml's pure-Python parser takes about 0.2 s of it, and building the stage graph and
checking every dependency and output against the lock about 0.3 s. The project has little to
give: params.yaml without its comments and `studies` section parses in 6 instead of 9 ms (about
30 ms a run), and a project at the demo set's full size (24 clips, 768 frames, 768 crops) takes
the same time as the small one. The figure moves with the machine's load by a few tenths of a
second, either side of the limit.
"""
DEMO = {
    "demo": {
        "clips_per_identity": 2,
        "frames_per_clip": 12,
        "fps": 6.0,
        "width": 320,
        "height": 240,
    },
    "frames": {"count": 6},
    "faces": {"crop_size": 96, "min_face_size": 24},
    "split": {"train": 0.5, "val": 0.25, "test": 0.25},
    "train": {"image_size": 96, "batch_size": 16, "head_epochs": 1, "epochs": 0, "patience": 1},
    "evaluate": {"batch_size": 32, "bootstrap": 0},
}


def median_seconds(cmd: list[str], cwd: Path, repeats: int) -> float:
    """Median wall time of `repeats` fresh runs of `cmd` (the first run warms the file cache)."""
    projects.run(cmd, cwd).check(" ".join(cmd))
    return median([projects.run(cmd, cwd).check(" ".join(cmd)).seconds for _ in range(repeats)])


def imports_tensorflow(cmd: list[str], cwd: Path) -> bool:
    """Whether a Python command (`-m module args`) imports TensorFlow, per -X importtime."""
    result = projects.run([sys.executable, "-X", "importtime", *cmd], cwd).check(" ".join(cmd))
    lines = result.output.splitlines()
    return any(line.split("|")[-1].strip() == "tensorflow" for line in lines if "|" in line)


def run(ctx: Context) -> tuple[list[Row], list[str]]:
    """Median start-up times against the bare program start, and the TensorFlow check."""
    repeats = ctx.pick(5, 3)
    cli = str(BIN / "deepfake")
    help_s = median_seconds([cli, "--help"], ctx.repo, repeats)
    python_s = median_seconds([sys.executable, "-c", "pass"], ctx.repo, repeats)
    help_tf = imports_tensorflow(["-m", "deepfake_detector.cli", "--help"], ctx.repo)

    project = projects.make_project(ctx, "startup", DEMO, git=True)
    full = projects.run(["dvc", "repro"], project).check("dvc repro (demo set)")
    repro_s = median_seconds(["dvc", "repro"], project, repeats)
    noop = projects.run(["dvc", "repro"], project).check("dvc repro")
    if "up to date" not in noop.output:
        raise RuntimeError(f"the second `dvc repro` was not a no-op:\n{noop.output[-2000:]}")
    version_s = median_seconds(["dvc", "--version"], project, repeats)
    repro_tf = imports_tensorflow(["-m", "dvc", "repro"], project)
    rows = [
        Row(
            TITLE,
            "`deepfake --help`, median",
            f"{fmt(python_s, 's')} (python -c pass)",
            fmt(help_s, "s"),
            times(help_s / python_s),
            f"< {LIMIT_S:g} s, no TensorFlow",
            help_s < LIMIT_S and not help_tf,
        ),
        Row(
            TITLE,
            "`deepfake --help` imports TensorFlow",
            "",
            "yes" if help_tf else "no",
            "",
            "no",
            not help_tf,
        ),
        Row(
            TITLE,
            "no-op `dvc repro` (8 stages), median",
            f"{fmt(version_s, 's')} (dvc --version)",
            fmt(repro_s, "s"),
            times(repro_s / version_s),
            f"< {LIMIT_S:g} s, no TensorFlow",
            repro_s < LIMIT_S and not repro_tf,
        ),
        Row(
            TITLE,
            "no-op `dvc repro` imports TensorFlow",
            "",
            "yes" if repro_tf else "no",
            "",
            "no",
            not repro_tf,
        ),
    ]
    notes = [
        f"Medians of {repeats} runs after one warm-up run each.",
        f"The demo project's first, complete `dvc repro` took {full.seconds:.0f} s "
        f"(peak {full.peak_rss_bytes / 2**30:.2f} GiB in its largest process).",
    ]
    return rows, notes
