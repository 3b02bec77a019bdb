"""Throw-away copies of the project in a scratch folder, run with the real `deepfake` and `dvc`."""

from __future__ import annotations

import io
import shutil
from pathlib import Path
from typing import Any

import yaml

from bench.context import SHARED_WEIGHTS, Context
from bench.processes import Measured, child_env, run_measured

STAGE_TIMEOUT_S = 900.0


def _updated(params: Any, overrides: dict[str, dict[str, Any]]) -> Any:
    """`params` with sections updated in place; the local ImageNet weights used."""
    for section, values in overrides.items():
        params[section].update(values)
    params["train"]["imagenet_file"] = str(SHARED_WEIGHTS)
    if not SHARED_WEIGHTS.is_file() and params["train"]["base_weights"] == "imagenet":
        params["train"]["base_weights"] = "none"
    return params


def params_with(ctx: Context, overrides: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The repository's params.yaml as plain data, with sections updated."""
    return _updated(yaml.safe_load((ctx.repo / "params.yaml").read_text()), overrides)


def params_text(ctx: Context, overrides: dict[str, dict[str, Any]]) -> str:
    """The repository's params.yaml text with sections updated, its comments and order kept
    (DVC parses this file several times per run, so its real size matters to start-up)."""
    from ruamel.yaml import YAML

    round_trip = YAML()
    round_trip.width = 100
    params = _updated(round_trip.load((ctx.repo / "params.yaml").read_text()), overrides)
    out = io.StringIO()
    round_trip.dump(params, out)
    return out.getvalue()


def make_project(
    ctx: Context,
    name: str,
    overrides: dict[str, dict[str, Any]],
    dvc: bool = True,
    git: bool = False,
) -> Path:
    """A runnable copy (code, dvc.yaml, params) under the scratch folder, with DVC, and git
    when asked (as a clone has it: DVC then also keeps .gitignore files up to date)."""
    dest = ctx.scratch / name
    dest.mkdir(parents=True)
    shutil.copy(ctx.repo / "dvc.yaml", dest / "dvc.yaml")
    shutil.copytree(
        ctx.repo / "src", dest / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    (dest / "params.yaml").write_text(params_text(ctx, overrides))
    if git:
        run(["git", "init", "-q"], dest).check("git init")
    if dvc:
        init = ["dvc", "init", "-q"] if git else ["dvc", "init", "--no-scm", "-q"]
        for cmd in (init, ["dvc", "config", "core.analytics", "false"]):
            run(cmd, dest).check(" ".join(cmd))
    return dest


def write_manifest(project: Path, videos: list[tuple[Path, str, str, str]]) -> Path:
    """A manifest of local videos: (file, label, group, split) each; returns its path."""
    path = project / "data" / "manifests" / "bench.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["uri,label,group,sha256,split"]
    lines += [f"{file},{label},{group},,{split}" for file, label, group, split in videos]
    path.write_text("\n".join(lines) + "\n")
    return path


def named_copies(ctx: Context, sources: list[Path], count: int, folder: str) -> list[Path]:
    """`count` distinct video names (symlinks) cycling over `sources`: any number of videos."""
    dest = ctx.scratch / folder
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for n in range(count):
        src = sources[n % len(sources)]
        link = dest / f"v{n:03d}_{src.stem}{src.suffix}"
        if not link.exists():
            link.symlink_to(src.resolve())
        out.append(link)
    return out


def run(cmd: list[str], project: Path, timeout_s: float = STAGE_TIMEOUT_S) -> Measured:
    """Run a command in the project, timed, with its peak memory."""
    return run_measured(cmd, project, timeout_s, env=child_env(project))
