"""9. Cold verdict: `deepfake predict` as a new process, on LiteRT, TensorFlow and the seed's way.

A small demo project runs `dvc repro` once, so the registry has a champion (MobileNetV2 at
params.yaml's image size) with its LiteRT files. Then, each as a fresh process, timed from start
to exit with its peak RSS (`peak_rss.py`):

- one 1080p DFD frame with one face: `deepfake predict --json` answering with
  `models:/deepfake-detector@champion` on the light runtime (auto), the same with
  `--runtime tensorflow`, and the seed's script (`seed_predict.py`: TensorFlow, the Keras file,
  the `mtcnn` package, `model.predict`); median of 5 each;
- 40 DFD frames (1080p) in one command, light runtime against the seed's script, median of 3
  after one warm-up each (the files then come from the page cache for both); the verdicts of
  the light runtime against those of `--runtime tensorflow` on the same 40 frames;
- warm latency per 1080p frame in one process (`Detector.predict_path`), light against
  TensorFlow;
- the install: `pip install .` (the core set, no extras: predict, app and `deepfake rest`) into a
  fresh virtual environment, its size on disk against this checkout's full `.venv` (the dev set,
  `requirements/dev.txt`), whether TensorFlow or MLflow is importable there, and the cold
  one-image `deepfake predict` from that environment.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import projects
from bench.context import BIN, REPO, Context
from bench.results import Row, Skip, fmt, times
from bench.timing import median

NAME = "cold"
TITLE = "9. Cold verdict"
LIMIT_S = 2.0
FRAMES = 40
DEMO = {
    "demo": {"clips_per_identity": 2, "frames_per_clip": 12, "fps": 6.0},
    "frames": {"count": 6},
    "split": {"train": 0.5, "val": 0.25, "test": 0.25},
    "evaluate": {"bootstrap": 0},
}
MODEL = "models:/deepfake-detector@champion"


def timed(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[float, int, str]:
    """Wall seconds, peak RSS (bytes) and stdout of one fresh process (via peak_rss.py)."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        proc = subprocess.run(
            [sys.executable, str(REPO / "bench" / "peak_rss.py"), out.name, "--", *cmd],
            cwd=cwd,
            env=env or projects.child_env(cwd),
            capture_output=True,
            text=True,
            timeout=900,
        )
        if proc.returncode not in (0, 1):
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
        result = json.loads(Path(out.name).read_text())
    return result["seconds"], result["peak_rss_bytes"], proc.stdout


def repeated(cmd: list[str], cwd: Path, repeats: int, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    """Median seconds and peak RSS of `repeats` runs after one warm-up (file cache)."""
    timed(cmd, cwd, env)
    runs = [timed(cmd, cwd, env) for _ in range(repeats)]
    return median([r[0] for r in runs]), max(r[1] for r in runs), runs[-1][2]


def verdicts(stdout: str) -> dict[str, str]:
    """path -> verdict from `deepfake predict --json` lines."""
    return {Path(r["path"]).name: r["verdict"] for r in map(json.loads, stdout.splitlines())}


def site_packages_bytes(venv: Path) -> int:
    """Bytes on disk under a virtual environment's site-packages."""
    total = 0
    for folder in venv.glob("lib/python*/site-packages"):
        for root, _, files in os.walk(folder):
            total += sum(os.lstat(os.path.join(root, f)).st_size for f in files)
    return total


def serving_venv(ctx: Context) -> Path:
    """A fresh virtual environment with `pip install .` (the core set: no training stack)."""
    venv = ctx.scratch / "serve-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    # Built from a copy: an in-tree build would leave build/ in the checkout.
    source = ctx.scratch / "serve-source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "src", "flows", "tasks"):
        copy = shutil.copytree if (REPO / name).is_dir() else shutil.copy
        copy(REPO / name, source / name)
    pip = [str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check"]
    proc = subprocess.run([*pip, str(source)], capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise Skip(f"cannot install the serving set here: {proc.stderr[-500:]}")
    return venv


def warm_latency(project: Path, frames: list[Path], runtime: str) -> float:
    """Median seconds per frame of `predict_path` in this process, after one warm-up frame."""
    from deepfake_detector.core.config import load_params
    from deepfake_detector.core.tracking import tracking_uri
    from deepfake_detector.inference.predict import load_detector

    cwd = Path.cwd()
    os.chdir(project)
    try:
        uri = tracking_uri(load_params(Path("params.yaml")))
        detector = load_detector(MODEL, runtime=runtime, tracking_uri=uri)  # type: ignore[arg-type]
        detector.predict_path(frames[0])
        spans = []
        for frame in frames[1:11]:
            start = time.perf_counter()
            detector.predict_path(frame)
            spans.append(time.perf_counter() - start)
    finally:
        os.chdir(cwd)
    return median(spans)


def run(ctx: Context) -> tuple[list[Row], list[str]]:
    """The rows of the table: cold one image, 40 frames, warm latency, install size."""
    frames = ctx.files("*.jpg", "dfd", "frames", "real")[: FRAMES // 2]
    frames += ctx.files("*.jpg", "dfd", "frames", "fake")[: FRAMES - len(frames)]
    repeats = ctx.pick(5, 3)
    project = projects.make_project(ctx, "cold", DEMO)
    full = projects.run(["dvc", "repro"], project).check("dvc repro (demo set)")
    one = str(frames[0])
    cli = str(BIN / "deepfake")
    light_s, light_rss, _ = repeated([cli, "predict", "--json", one], project, repeats)
    heavy_s, heavy_rss, _ = repeated(
        [cli, "predict", "--runtime", "tensorflow", "--json", one], project, repeats
    )
    keras_file = next((project / "mlruns").rglob("model.keras"))
    seed = [sys.executable, str(REPO / "bench" / "seed_predict.py"), str(keras_file)]
    seed_s, seed_rss, _ = repeated([*seed, one], project, repeats)
    many = [str(f) for f in frames]
    batches = ctx.pick(3, 1)  # the seed's script takes about a minute a run
    light_many_s, _, light_out = repeated([cli, "predict", "--json", *many], project, batches)
    heavy_many_s, _, heavy_out = repeated(
        [cli, "predict", "--runtime", "tensorflow", "--json", *many], project, batches
    )
    seed_many_s, _, _ = repeated([*seed, *many], project, batches)
    same = verdicts(light_out) == verdicts(heavy_out)
    warm_light = warm_latency(project, frames, "litert")
    warm_heavy = warm_latency(project, frames, "tensorflow")

    venv = serving_venv(ctx)
    serve_bytes, full_bytes = site_packages_bytes(venv), site_packages_bytes(BIN.parent)
    python = str(venv / "bin" / "python")
    has_tf = subprocess.run([python, "-c", "import tensorflow"]).returncode == 0
    has_mlflow = subprocess.run([python, "-c", "import mlflow"]).returncode == 0
    env = {**projects.child_env(project), "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    serve_s, serve_rss, _ = repeated(
        [str(venv / "bin" / "deepfake"), "predict", "--json", one], project, repeats, env
    )
    mb = 2**20
    rows = [
        Row(
            TITLE,
            "cold `deepfake predict` of one 1080p image, median",
            f"{fmt(seed_s, 's')} (seed's script)",
            fmt(light_s, "s"),
            times(seed_s / light_s),
            f"<= {LIMIT_S:g} s",
            light_s <= LIMIT_S,
        ),
        Row(
            TITLE,
            "the same, against `--runtime tensorflow`",
            fmt(heavy_s, "s"),
            fmt(light_s, "s"),
            times(heavy_s / light_s),
        ),
        Row(
            TITLE,
            "the same from the serving install (no TensorFlow)",
            f"{fmt(seed_s, 's')} (seed's script)",
            fmt(serve_s, "s"),
            times(seed_s / serve_s),
            f"<= {LIMIT_S:g} s",
            serve_s <= LIMIT_S,
        ),
        Row(
            TITLE,
            f"{len(many)} 1080p frames in one command",
            f"{fmt(seed_many_s, 's')} (seed's script)",
            fmt(light_many_s, "s"),
            times(seed_many_s / light_many_s),
            ">= 10x, same verdicts as TensorFlow",
            seed_many_s / light_many_s >= 10 and same,
        ),
        Row(
            TITLE,
            "verdicts: light runtime against `--runtime tensorflow`",
            f"{fmt(heavy_many_s, 's')} (TensorFlow, {len(many)} frames)",
            "identical" if same else "different",
            "",
            "identical",
            same,
        ),
        Row(
            TITLE,
            "warm latency per 1080p frame, median",
            f"{fmt(warm_heavy * 1000, 'ms')} (TensorFlow)",
            fmt(warm_light * 1000, "ms"),
            times(warm_heavy / warm_light),
        ),
        Row(
            TITLE,
            "peak RSS, cold one-image predict",
            f"{fmt(heavy_rss / mb, 'MiB')} (TensorFlow); seed {fmt(seed_rss / mb, 'MiB')}",
            fmt(light_rss / mb, "MiB"),
            times(heavy_rss / light_rss),
        ),
        Row(
            TITLE,
            "install size (site-packages)",
            f"{fmt(full_bytes / mb, 'MiB')} (full: train + dev)",
            f"{fmt(serve_bytes / mb, 'MiB')} (serving set)",
            times(full_bytes / serve_bytes),
            "<= 1/5, no TensorFlow",
            serve_bytes * 5 <= full_bytes and not has_tf,
        ),
    ]
    notes = [
        f"Medians of {repeats} runs (of {batches} for the {len(many)} frames) after one "
        "warm-up run each; the champion is a demo-set "
        f"model ({full.seconds:.0f} s for its `dvc repro`), MobileNetV2 as params.yaml has it.",
        f"Serving install peak RSS for one image: {fmt(serve_rss / mb, 'MiB')}; importable "
        f"there: TensorFlow {'yes' if has_tf else 'no'}, MLflow {'yes' if has_mlflow else 'no'}.",
    ]
    return rows, notes
