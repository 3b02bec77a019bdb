"""Drift of a batch of answers: the JSONL that `deepfake predict --out` writes (a file, or a
folder of them) against the held-out faces of the model that answered (`learning.drift`).

One implementation behind `deepfake drift` and the Prefect flow `deepfake-drift`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepfake_detector.core.artifacts import INFERENCE_FILE
from deepfake_detector.core.errors import UserError
from deepfake_detector.core.model_ref import ModelRef
from deepfake_detector.inference.inference_config import InferenceConfig
from deepfake_detector.learning.drift import Shift, answer_faces, compare, retrain_due

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DriftReport:
    """A batch of answers compared with a model's held-out faces."""

    model: str
    answers: int
    skipped_lines: int
    shifts: list[Shift]

    @property
    def retrain_due(self) -> bool:
        """Whether any measure drifted."""
        return retrain_due(self.shifts)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view."""
        return {
            "model": self.model,
            "answers": self.answers,
            "skipped_lines": self.skipped_lines,
            "retrain_due": self.retrain_due,
            "measures": [s.to_dict() for s in self.shifts],
        }

    def table(self) -> str:
        """A plain table a person reads."""
        rows = [f"model {self.model}; {self.answers} answers"]
        if self.skipped_lines:
            rows[0] += f" ({self.skipped_lines} unreadable lines skipped)"
        rows.append(f"{'measure':<11} {'faces':>6} {'KS':>6} {'p-value':>9}  drifted")
        for s in self.shifts:
            if s.statistic is None:
                rows.append(f"{s.measure:<11} {s.faces:>6} {'-':>6} {'-':>9}  too few faces")
                continue
            mark = "yes" if s.drifted else "no"
            numbers = f"{s.statistic:>6.3f} {s.p_value:>9.2g}"
            rows.append(f"{s.measure:<11} {s.faces:>6} {numbers}  {mark}")
        rows.append(
            "retrain due: the inputs no longer look like the faces the model was validated on"
            if self.retrain_due
            else "no drift: the inputs look like the faces the model was validated on"
        )
        return "\n".join(rows)


def reference_config(source: str, tracking_uri: str | None = None) -> tuple[InferenceConfig, str]:
    """The `inference.json` of a model (registry URI, model folder, model.keras or the JSON
    itself) and the model's label; no weights are loaded."""
    if source.startswith(("models:/", "runs:/")):
        from deepfake_detector.inference.registry_lookup import resolve

        folder, ref = resolve(source, tracking_uri)
        path, label = folder / INFERENCE_FILE, ref.label()
    else:
        given = Path(source)
        path = given if given.suffix == ".json" else (given if given.is_dir() else given.parent)
        path = path / INFERENCE_FILE if path.is_dir() else path
        label = ModelRef(source=source).label()
    if not path.is_file():
        raise UserError(f"no {INFERENCE_FILE} for model {source} (looked for {path})")
    return InferenceConfig.read(path), label


def answer_files(log_or_folder: Path) -> list[Path]:
    """The JSONL files of a batch: the file given, or every `*.jsonl` under the folder."""
    if log_or_folder.is_dir():
        files = sorted(log_or_folder.rglob("*.jsonl"))
        if not files:
            raise UserError(f"no .jsonl answers under {log_or_folder}")
        return files
    if not log_or_folder.is_file():
        raise UserError(f"no answers at {log_or_folder} (a JSONL of `deepfake predict --out`)")
    return [log_or_folder]


def read_answers(files: list[Path], skipped: list[int]) -> Iterator[dict[str, Any]]:
    """Answers, one per JSONL line; an unreadable line (a run killed mid-write) is counted in
    `skipped[0]` and logged, never fatal."""
    for file in files:
        with file.open(encoding="utf-8", errors="replace") as lines:
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    answer = json.loads(line)
                except json.JSONDecodeError:
                    answer = None
                if not isinstance(answer, dict):
                    skipped[0] += 1
                    log.warning("%s:%d: not an answer, skipped", file, number)
                    continue
                yield answer


def drift_report(log_or_folder: Path, model: str, tracking_uri: str | None = None) -> DriftReport:
    """Every face in the batch's answers against the model's held-out faces."""
    config, label = reference_config(model, tracking_uri)
    if not config.drift_reference:
        raise UserError(
            f"model {label} keeps no reference faces (evaluated before drift was measured): "
            "train and register it again (`dvc repro`)"
        )
    skipped, answers, faces = [0], 0, []
    for answer in read_answers(answer_files(log_or_folder), skipped):  # streamed: only the
        answers += 1  # faces' four measures are kept
        faces += answer_faces([answer])
    return DriftReport(label, answers, skipped[0], compare(config.drift_reference, faces))
