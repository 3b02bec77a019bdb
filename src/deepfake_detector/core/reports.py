"""The small report every stage returns and writes next to its outputs.

A report has two parts. `report.json`, in the stage's folder, holds what follows from the stage's
inputs alone (counts, skipped items with reasons, details, the cache key): DVC hashes it with the
outputs, so it must come out byte for byte the same on every run and machine. What belongs to one
run (its duration, when and where it ran, the devices it used, the MLflow run and version it made)
goes to `<folder>.run.json` beside the folder, which DVC does not track (`run_log_path`).
"""

from __future__ import annotations

import json
import logging
import platform
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from deepfake_detector.core.artifacts import REPORT_NAME, RUN_LOG_SUFFIX
from deepfake_detector.core.atomic import write_json

log = logging.getLogger(__name__)
SKIPS_SHOWN = 10  # skips of one level a report logs one by one; the rest are counted in a line


def run_log_path(out_dir: Path) -> Path:
    """Where a stage's run facts go: beside its folder (`models/evaluation.run.json`)."""
    return out_dir.with_name(out_dir.name + RUN_LOG_SUFFIX)


def read_report(out_dir: Path) -> dict[str, Any]:
    """A stage's report as written by `finish`, with its run facts under `run` when present."""
    report: dict[str, Any] = json.loads((out_dir / REPORT_NAME).read_text())
    try:
        report["run"] = json.loads(run_log_path(out_dir).read_text())
    except (OSError, ValueError):
        report["run"] = {}
    return report


@dataclass
class Skip:
    """One item a stage could not use, and why."""

    item: str
    reason: str


@dataclass
class StageReport:
    """Counts, skips with reasons and details of one stage run; `run` holds the run's own facts."""

    stage: str
    counts: Counter[str] = field(default_factory=Counter)
    skipped: list[Skip] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    run: dict[str, Any] = field(default_factory=dict)
    _started: float = field(default_factory=time.perf_counter, repr=False)
    _started_at: datetime = field(default_factory=lambda: datetime.now(UTC), repr=False)
    _logged: Counter[int] = field(default_factory=Counter, repr=False)  # level -> skips logged
    _unshown: Counter[int] = field(default_factory=Counter, repr=False)  # level -> the rest

    def count(self, name: str, n: int = 1) -> None:
        """Add `n` to the counter `name`."""
        self.counts[name] += n

    def skip(self, item: str, reason: str, level: int = logging.WARNING) -> None:
        """Record a skipped item; it is logged and counted, never silently dropped. `level`:
        INFO for a skip the settings intend (not bad input). Past `SKIPS_SHOWN` of one level the
        lines go to DEBUG, and `finish` says how many more there were (all are in report.json)."""
        if self._logged[level] < SKIPS_SHOWN:
            log.log(level, "%s: skipped %s: %s", self.stage, item, reason)
            self._logged[level] += 1
        else:
            log.debug("%s: skipped %s: %s", self.stage, item, reason)
            self._unshown[level] += 1
        self.skipped.append(Skip(item, reason))
        self.counts["skipped"] += 1

    def count_run(self, name: str, n: int = 1) -> None:
        """Add `n` to a counter of this run alone (clean-up after an earlier, killed run): it
        goes to the run log, not to `report.json`, which must not depend on the folder's past."""
        self.run[name] = int(self.run.get(name, 0)) + n

    def merge(self, other: StageReport) -> None:
        """Fold a per-item report into this stage report."""
        self.counts.update(other.counts)
        self.skipped.extend(other.skipped)

    @property
    def seconds(self) -> float:
        """How long the run took (set by `finish`)."""
        return float(self.run.get("seconds", 0.0))

    def finish(self, out_dir: Path | None = None) -> StageReport:
        """Stop the clock; if given a folder, write `report.json` there and the run log beside."""
        self.run = {
            "seconds": round(time.perf_counter() - self._started, 3),
            "started": self._started_at.isoformat(timespec="seconds"),
            "host": platform.node(),
            **self.run,
        }
        if out_dir is not None:
            write_json(out_dir / REPORT_NAME, self.content())
            write_json(run_log_path(out_dir), {"stage": self.stage, **self.run})
        for level, n in sorted(self._unshown.items()):
            where = f"{out_dir / REPORT_NAME}" if out_dir is not None else "the stage's report"
            log.log(level, "%s: %d more skipped (each with its reason in %s)", self.stage, n, where)
        log.info("%s: %s in %.1fs", self.stage, dict(self.counts), self.seconds)
        return self

    def content(self) -> dict[str, Any]:
        """What follows from the inputs alone: the part DVC hashes (`report.json`)."""
        return {
            "stage": self.stage,
            "counts": dict(sorted(self.counts.items())),
            "skipped": [{"item": s.item, "reason": s.reason} for s in self.skipped],
            "details": self.details,
        }

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view of the whole report: the content and the run facts under `run`."""
        return {**self.content(), "run": dict(self.run)}
