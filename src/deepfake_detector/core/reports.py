"""The small report every stage returns and writes next to its outputs."""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from deepfake_detector.core.atomic import write_json
from deepfake_detector.core.dag import REPORT_NAME

log = logging.getLogger(__name__)


@dataclass
class Skip:
    """One item a stage could not use, and why."""

    item: str
    reason: str


@dataclass
class StageReport:
    """Counts, skips with reasons, and timing of one stage run."""

    stage: str
    counts: Counter[str] = field(default_factory=Counter)
    skipped: list[Skip] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    _started: float = field(default_factory=time.perf_counter, repr=False)

    def count(self, name: str, n: int = 1) -> None:
        """Add `n` to the counter `name`."""
        self.counts[name] += n

    def skip(self, item: str, reason: str) -> None:
        """Record a skipped item; it is logged and counted, never silently dropped."""
        log.warning("%s: skipped %s: %s", self.stage, item, reason)
        self.skipped.append(Skip(item, reason))
        self.counts["skipped"] += 1

    def merge(self, other: StageReport) -> None:
        """Fold a per-item report into this stage report."""
        self.counts.update(other.counts)
        self.skipped.extend(other.skipped)

    def finish(self, out_dir: Path | None = None) -> StageReport:
        """Stop the clock and, if given a folder, write `report.json` there."""
        self.seconds = round(time.perf_counter() - self._started, 3)
        if out_dir is not None:
            write_json(out_dir / REPORT_NAME, self.to_dict())
        log.info("%s: %s in %.1fs", self.stage, dict(self.counts), self.seconds)
        return self

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        data = asdict(self)
        data.pop("_started")
        data["counts"] = dict(sorted(self.counts.items()))
        return data
