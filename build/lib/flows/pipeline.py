"""The Prefect flow: the same stages as `dvc.yaml`, per-video work mapped over videos.

Run once with `deepfake flow`; serve the scheduled deployment with `deepfake serve`.
Before each task the flow compares the task's content key with what is on disk: outputs that
`dvc repro` (or an earlier flow) already made under the same key are adopted as the task's
cached result, and a cached result whose outputs have gone is recomputed. After the run the
DVC lock file is reconciled, so `dvc status` reports the pipeline up to date.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.futures import PrefectFuture
from prefect.results import get_result_store
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from deepfake_detector import cache_keys
from deepfake_detector.config import FlowParams, Params, load_params
from deepfake_detector.download import finish_download
from deepfake_detector.faces import faces_key, finish_crop_faces
from deepfake_detector.faces import read_stamp as read_faces_stamp
from deepfake_detector.frames import finish_extract_frames, frames_key
from deepfake_detector.frames import read_stamp as read_frames_stamp
from deepfake_detector.manifest import read_manifest, read_videos_table, redact_uri
from deepfake_detector.reports import REPORT_NAME, StageReport
from deepfake_detector.runlock import exclusive_run
from deepfake_detector.runtime import prepare_environment
from deepfake_detector.stages import STAGES
from tasks import stages

log = logging.getLogger(__name__)


def task_runner_for(settings: FlowParams) -> TaskRunner:
    """The task runner params ask for: threads here, or Dask (a local cluster or a scheduler).

    A local Dask cluster has `workers` processes of one thread each, bound to 127.0.0.1 with no
    dashboard, the machine's cores shared among them; each process imports TensorFlow and loads
    MTCNN once, for all the videos it gets.
    With `dask_address` the tasks go to an existing cluster, whose workers must see this
    checkout's files at the same path and have this package installed.
    """
    if settings.task_runner == "dask":
        from prefect_dask import DaskTaskRunner

        if settings.dask_address:
            return DaskTaskRunner(address=settings.dask_address)
        # The machine's cores shared out: one TensorFlow per worker would otherwise take them
        # all, and the workers would fight over them.
        threads = str(max(1, (os.cpu_count() or 1) // settings.workers))
        return DaskTaskRunner(
            cluster_kwargs={
                "n_workers": settings.workers,
                "threads_per_worker": 1,
                "processes": True,
                "host": "127.0.0.1",
                "dashboard_address": None,
                "env": {
                    "TF_NUM_INTRAOP_THREADS": threads,
                    "TF_NUM_INTEROP_THREADS": "1",
                    "OMP_NUM_THREADS": threads,
                },
            }
        )
    return ThreadPoolTaskRunner(max_workers=settings.workers)


def _submit(runner: TaskRunner, task: Any, key: str, on_disk: Any, **kwargs: Any) -> PrefectFuture:
    """Submit `task`, first adopting matching outputs on disk or refreshing a stale record."""
    store = get_result_store().update_for_task(task)
    have_record = store.exists(key)
    if on_disk is not None and not have_record:
        store.write(obj=on_disk, key=key)
    refresh = on_disk is None and have_record
    return runner.submit(task.with_options(refresh_cache=refresh), parameters=kwargs)


def _stage_on_disk(out_dir: Path, key: str, outputs: list[Path]) -> dict[str, Any] | None:
    """A stage's report if it was written under `key` and its outputs still exist."""
    try:
        report = json.loads((out_dir / REPORT_NAME).read_text())
    except (OSError, ValueError):
        return None
    if report.get("details", {}).get("key") != key or not all(p.exists() for p in outputs):
        return None
    return report


def _gather(futures: list[tuple[str, PrefectFuture]], report: StageReport) -> list[Any]:
    """Results of mapped per-video tasks; a failed item is reported and skipped."""
    results = []
    for item, future in futures:
        try:
            results.append(future.result())
        except Exception as exc:  # a failed task re-raises its own exception here
            report.skip(item, f"{type(exc).__name__}: {exc}")
    return results


def reconcile_dvc(root: Path, stages_run: list[str]) -> None:
    """Record the outputs of the stages the flow ran in dvc.lock, so `dvc status` agrees."""
    if not (root / "dvc.yaml").exists() or not (root / ".dvc").is_dir():
        return
    result = subprocess.run(
        [sys.executable, "-m", "dvc", "commit", "--force", "--quiet", *stages_run],
        cwd=root,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        get_run_logger().warning("dvc commit failed: %s", result.stderr.strip())


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
    if until not in STAGES:
        raise ValueError(f"until: unknown stage {until!r}; stages are {', '.join(STAGES)}")
    base = Path(root)
    prepare_environment(base)  # telemetry off also when a Prefect worker starts the flow
    params = load_params(base / params_path)
    with exclusive_run(base, "flow deepfake-pipeline"):
        with task_runner_for(params.flow) as runner:
            reports = _run_pipeline(base, params, runner, until)
        if reconcile:
            reconcile_dvc(base, list(reports))
    return reports


def _run_pipeline(base: Path, params: Params, runner: TaskRunner, until: str) -> dict[str, Any]:
    """The flow's body, run while it holds the checkout's pipeline lock."""
    paths = params.paths
    reports: dict[str, Any] = {}

    demo_dir = base / paths.demo_dir
    if (base / params.download.manifest).resolve().is_relative_to(demo_dir.resolve()):
        key = cache_keys.demo_key(params)
        on_disk = _stage_on_disk(demo_dir, key, [base / params.download.manifest])
        reports["make_demo_videos"] = _submit(
            runner, stages.make_demo_videos, key, on_disk, params=params, root=base
        ).result()

    report = StageReport("download_videos")
    rows = read_manifest(base / params.download.manifest, report)
    known = {}
    videos_dir = base / paths.videos_dir
    if (videos_dir / "videos.csv").exists():
        known = {v.video_id: v for v in read_videos_table(videos_dir)}
    futures = []
    for row in rows:
        prior = known.get(row.video_id)
        on_disk = (
            prior
            if prior is not None
            and prior.source == redact_uri(row.uri)
            and (videos_dir / prior.path).exists()
            else None
        )
        key = cache_keys.download_key(row, params, base)
        futures.append(
            (
                row.video_id,
                _submit(
                    runner,
                    stages.download_video,
                    key,
                    on_disk,
                    row=row,
                    params=params,
                    root=base,
                    known_sha256=prior.sha256 if prior else None,
                ),
            )
        )
    videos = _gather(futures, report)
    reports["download_videos"] = finish_download(params, base, videos, report).to_dict()
    if until == "download_videos":
        return reports

    report = StageReport("extract_frames")
    futures = []
    for video in videos:
        work = frames_key(video, params.frames)
        key = cache_keys.item_key(work, params)
        stamp = read_frames_stamp(base / paths.frames_dir / video.video_id)
        on_disk = stamp if stamp is not None and stamp.key == work else None
        futures.append(
            (
                video.video_id,
                _submit(
                    runner,
                    stages.extract_frames,
                    key,
                    on_disk,
                    video=video,
                    params=params,
                    root=base,
                ),
            )
        )
    frames = _gather(futures, report)
    reports["extract_frames"] = finish_extract_frames(params, frames, report, base).to_dict()
    if until == "extract_frames":
        return reports

    report = StageReport("crop_faces")
    futures = []
    for item in frames:
        work = faces_key(item, params.faces)
        stamp = read_faces_stamp(base / paths.faces_dir / item.video_id)
        on_disk = stamp if stamp is not None and stamp.key == work else None
        futures.append(
            (
                item.video_id,
                _submit(
                    runner,
                    stages.crop_faces,
                    cache_keys.item_key(work, params),
                    on_disk,
                    frames=item,
                    params=params,
                    root=base,
                ),
            )
        )
    faces = _gather(futures, report)
    reports["crop_faces"] = finish_crop_faces(params, faces, report, base).to_dict()
    if until == "crop_faces":
        return reports

    from deepfake_detector.evaluate import METRICS_FILE
    from deepfake_detector.split import SPLIT_FILE
    from deepfake_detector.train import MODEL_FILE

    split_dir, model_dir = base / paths.split_dir, base / paths.model_dir
    eval_dir, reg_dir = base / paths.evaluation_dir, base / paths.registration_dir
    for name, task, key_fn, out_dir, outputs in (
        (
            "split_dataset",
            stages.split_dataset,
            cache_keys.split_key,
            split_dir,
            [split_dir / SPLIT_FILE],
        ),
        (
            "train_model",
            stages.train_model,
            cache_keys.train_key,
            model_dir,
            [model_dir / MODEL_FILE],
        ),
        (
            "evaluate_model",
            stages.evaluate_model,
            cache_keys.evaluate_key,
            eval_dir,
            [eval_dir / METRICS_FILE],
        ),
        ("register_model", stages.register_model, cache_keys.register_key, reg_dir, []),
    ):
        key = key_fn(params, base)
        reports[name] = _submit(
            runner, task, key, _stage_on_disk(out_dir, key, outputs), params=params, root=base
        ).result()
        if until == name:
            break
    return reports


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
