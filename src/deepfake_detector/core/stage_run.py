"""Running a stage of the table: per-video stages mapped over their videos, one policy for all.

A per-video stage module describes its work with a `PerVideo` (what the items are, the key of
one item, whether it is already done, how to do it, how to finish the stage). `map_videos` runs
it the same way for the stage command (`dvc repro`, one item after another) and for the Prefect
flow (items submitted as tasks): an item that fails with one of the stage's expected errors is
reported and skipped, any other error stops the stage.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from tqdm import tqdm

from deepfake_detector.core.atomic import remove_stale_temps
from deepfake_detector.core.dag import Stage, dump, resolve
from deepfake_detector.core.reports import StageReport, read_report

if TYPE_CHECKING:
    from deepfake_detector.core.config import Params

Item = TypeVar("Item")
Result = TypeVar("Result")


@dataclass(frozen=True)
class PerVideo(Generic[Item, Result]):
    """How a per-video stage does its work, one video at a time."""

    # The items: from the previous stage's results when given, else from its outputs on disk.
    items: Callable[[Params, Path, Sequence[Any] | None, StageReport], list[Item]]
    name: Callable[[Item], str]  # the video's id, for reports
    key: Callable[[Item, Params, Path], str]  # cache key of the item's work
    done: Callable[[Item, Params, Path], Result | None]  # its result if already on disk
    run: Callable[[Item, Params, Path], Result]  # do it (skips what is done)
    finish: Callable[[Params, Path, list[Result], StageReport], StageReport]
    errors: tuple[type[Exception], ...] = ()  # an item failing so is skipped, not fatal
    reason: Callable[[Item, Exception], str] = lambda _item, exc: str(exc)
    # (counter of items done now, of items found done): how this run got there, so a run-log
    # count; the stage's report counts what it has (videos, frames), not which run made it.
    counters: tuple[str, str] | None = None


def load_stamp(path: Path, parse: Callable[[str], Result]) -> Result | None:
    """A finished video folder's stamp, or None if absent or unreadable."""
    try:
        return parse(path.read_text())
    except (OSError, ValueError, TypeError, KeyError):
        return None


def clear_unlisted(out_dir: Path, keep: set[str], report: StageReport) -> None:
    """Make `out_dir`; drop the folders of videos no longer listed and stale temporary files."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for child in out_dir.iterdir():
        if child.is_dir() and child.name not in keep:
            shutil.rmtree(child)
            report.count_run("stale_removed")
    remove_stale_temps(out_dir)


# Start one item's work; the returned callable gives (result, found done) or raises its error.
Start = Callable[[PerVideo[Any, Any], Any], Callable[[], tuple[Any, bool]]]


def per_video(stage: Stage) -> PerVideo[Any, Any]:
    """The `PER_VIDEO` description of a per-video stage's module."""
    from importlib import import_module

    spec: PerVideo[Any, Any] = import_module(stage.module_name).PER_VIDEO
    return spec


def map_videos(
    stage: Stage,
    params: Params,
    root: Path,
    upstream: Sequence[Any] | None = None,
    start: Start | None = None,
) -> tuple[StageReport, list[Any]]:
    """Run a per-video stage over its items; return its finished report and the results."""
    spec = per_video(stage)
    report = StageReport(stage.name)
    items = spec.items(params, root, upstream, report)
    begin = start or _in_process(params, root)
    pending = [(item, begin(spec, item)) for item in items]
    results = []
    for item, outcome in tqdm(pending, desc=stage.name, unit="video", disable=None):
        try:
            result, found_done = outcome()
        except spec.errors as exc:
            report.skip(spec.name(item), spec.reason(item, exc))
            continue
        if spec.counters:
            report.count_run(spec.counters[found_done])
        results.append(result)
    return spec.finish(params, root, results, report), results


def _in_process(params: Params, root: Path) -> Start:
    def start(spec: PerVideo[Any, Any], item: Any) -> Callable[[], tuple[Any, bool]]:
        def outcome() -> tuple[Any, bool]:
            done = spec.done(item, params, root)
            return (done, True) if done is not None else (spec.run(item, params, root), False)

        return outcome

    return start


def run_per_video(name: str, params: Params, root: Path) -> StageReport:
    """A per-video stage as one command: every item in this process."""
    from deepfake_detector.core.dag import stage

    report, _ = map_videos(stage(name), params, root)
    return report


def done_whole(stage: Stage, params: Params, root: Path, key: str) -> dict[str, Any] | None:
    """A whole stage's report if it ran under `key` and its outputs are all still there."""
    values = dump(params)
    try:
        report = read_report(root / resolve(stage.home, values))
    except (OSError, ValueError):
        return None
    outputs = [root / resolve(out.path, values) for out in stage.outs]
    if report.get("details", {}).get("key") != key or not all(p.exists() for p in outputs):
        return None
    found: dict[str, Any] = report
    return found


def wanted(stage: Stage, params: Params, root: Path) -> bool:
    """Whether the flow needs the stage (a stage may say it is needed only sometimes)."""
    if not stage.wanted:
        return True
    from importlib import import_module

    decide: Callable[[Params, Path], bool] = getattr(import_module(stage.module_name), stage.wanted)
    return decide(params, root)
