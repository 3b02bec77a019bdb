"""The Prefect flow: the stage table run as tasks, per-video stages mapped over their videos.

Run once with `deepfake flow`; serve the scheduled deployment with `deepfake serve`. The stages,
their order, keys and outputs come from `deepfake_detector.core.dag`, the task wiring from
`tasks/`; after the run the DVC lock file is reconciled, so `dvc status` agrees.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger

from deepfake_detector.core.config import load_params
from deepfake_detector.core.dag import stages_until
from deepfake_detector.core.runlock import exclusive_run
from deepfake_detector.core.runtime import prepare_environment
from deepfake_detector.core.stage_run import map_videos, wanted
from tasks.runners import task_runner_for
from tasks.stage_tasks import run_whole, video_tasks

__all__ = ["deepfake_pipeline", "serve_deployment", "task_runner_for"]


@flow(name="deepfake-pipeline")  # tasks go to the runner params choose (task_runner_for)
def deepfake_pipeline(
    params_path: str = "params.yaml",
    root: str = ".",
    reconcile: bool = True,
    until: str = "register_model",
) -> dict[str, Any]:
    """Videos -> frames -> faces -> split -> train -> evaluate -> registered model.

    `until` stops after that stage (e.g. `crop_faces`: the per-video data preparation alone).
    """
    stages = stages_until(until)
    base = Path(root)
    prepare_environment(base)  # telemetry off also when a Prefect worker starts the flow
    params = load_params(base / params_path)
    reports: dict[str, Any] = {}
    upstream: list[Any] | None = None  # the last per-video stage's results: the next one's items
    with exclusive_run(base, "flow deepfake-pipeline"):
        with task_runner_for(params.flow) as runner:
            for stage in stages:
                if stage.per_video:
                    start = video_tasks(runner, stage, params, base)
                    report, upstream = map_videos(stage, params, base, upstream, start)
                    reports[stage.name] = report.to_dict()
                elif wanted(stage, params, base):
                    reports[stage.name] = run_whole(runner, stage, params, base)
        if reconcile:
            reconcile_dvc(base, list(reports))
    return reports


def reconcile_dvc(root: Path, stages_run: list[str]) -> None:
    """Record the outputs of the stages the flow ran in dvc.lock, so `dvc status` agrees."""
    if not (root / "dvc.yaml").exists() or not (root / ".dvc").is_dir():
        return
    command = [sys.executable, "-m", "dvc", "commit", "--force", "--quiet", *stages_run]
    result = subprocess.run(command, cwd=root, capture_output=True, text=True)
    if result.returncode != 0:
        get_run_logger().warning("dvc commit failed: %s", result.stderr.strip())


def serve_deployment(params_path: str = "params.yaml") -> None:
    """Serve the scheduled deployment named in params; it shows, with its runs, in the UI."""
    from prefect.schedules import Cron

    prepare_environment()
    params = load_params(params_path)
    deepfake_pipeline.serve(
        name=params.schedule.deployment,
        schedules=[Cron(params.schedule.cron, timezone=params.schedule.timezone)],
        parameters={"params_path": params_path, "root": str(Path.cwd())},
        description="Retrain the deepfake detector from the manifest on a schedule.",
        tags=["deepfake", "retrain"],
    )
