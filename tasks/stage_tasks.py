"""Prefect tasks made from the stage table, cached on the keys the library records.

Whole stages are one task each; per-video stages one task per video (`Stage.task`). Each cache
key is the one the library writes beside its outputs (`deepfake_detector.core.cache_keys`), so a
flow run recognises work `dvc repro` already did: outputs on disk under the current key are
adopted as the task's cached result, and a cached result whose outputs have gone is redone.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from prefect import Task, task
from prefect.context import TaskRunContext
from prefect.futures import PrefectFuture
from prefect.results import ResultStore, get_result_store
from prefect.task_runners import TaskRunner

from deepfake_detector.core import cache_keys
from deepfake_detector.core.config import Params
from deepfake_detector.core.dag import STAGES, Stage
from deepfake_detector.core.stage_run import PerVideo, Start, done_whole, per_video


def _whole_task(stage: Stage) -> Task[..., dict[str, Any]]:
    def cache_key(_: TaskRunContext, p: dict[str, Any]) -> str:
        return cache_keys.stage_key(stage.name, p["params"], p["root"])

    def run(params: Params, root: Path) -> dict[str, Any]:
        return stage.function()(params, root).to_dict()

    run.__doc__ = stage.summary
    return task(name=stage.task, persist_result=True, cache_key_fn=cache_key)(run)


def _video_task(stage: Stage) -> Task[..., Any]:
    def cache_key(_: TaskRunContext, p: dict[str, Any]) -> str:
        return per_video(stage).key(p["item"], p["params"], p["root"])

    def run(item: Any, params: Params, root: Path) -> Any:
        return per_video(stage).run(item, params, root)

    run.__doc__ = f"{stage.summary} (one video)"
    return task(name=stage.task, persist_result=True, cache_key_fn=cache_key)(run)


TASKS: dict[str, Task[..., Any]] = {
    s.name: (_video_task(s) if s.per_video else _whole_task(s)) for s in STAGES.values()
}


def submit(runner: TaskRunner, name: str, key: str, on_disk: Any, **kwargs: Any) -> PrefectFuture:
    """Submit stage `name`'s task, first adopting outputs on disk or dropping a stale record."""
    task_ = TASKS[name]
    store = cast(ResultStore, get_result_store().update_for_task(task_))
    have_record = store.exists(key)
    if on_disk is not None and not have_record:
        store.write(obj=on_disk, key=key)
    refresh = on_disk is None and have_record
    return runner.submit(task_.with_options(refresh_cache=refresh), parameters=kwargs)


def run_whole(runner: TaskRunner, stage: Stage, params: Params, root: Path) -> dict[str, Any]:
    """A whole stage as one task; its report."""
    key = cache_keys.stage_key(stage.name, params, root)
    on_disk = done_whole(stage, params, root, key)
    result: dict[str, Any] = submit(
        runner, stage.name, key, on_disk, params=params, root=root
    ).result()
    return result


def video_tasks(runner: TaskRunner, stage: Stage, params: Params, root: Path) -> Start:
    """Start each video's work of a per-video stage as a task (for `stage_run.map_videos`)."""

    def start(spec: PerVideo[Any, Any], item: Any) -> Callable[[], tuple[Any, bool]]:
        on_disk = spec.done(item, params, root)
        key = spec.key(item, params, root)
        future = submit(runner, stage.name, key, on_disk, item=item, params=params, root=root)
        return lambda: (future.result(), on_disk is not None)

    return start
