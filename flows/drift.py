"""The Prefect flow that watches a deployed detector: the answers it gave (the JSONL of
`deepfake predict --out`, a file or a folder) against the held-out faces of the model that gave
them (`deepfake_detector.inference.drift_report`, as `deepfake drift`). Scheduled beside the
retraining (`prefect.yaml`, deployment `drift-watch`); a run whose report says a retrain is due
logs so as a WARNING and returns it, for an automation to start `deepfake-pipeline/retrain`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task

from deepfake_detector.core.config import load_params
from deepfake_detector.core.runtime import prepare_environment
from deepfake_detector.core.tracking import tracking_uri
from deepfake_detector.inference.drift_report import drift_report

__all__ = ["deepfake_drift"]


@task(name="drift_report")
def drift_task(answers: Path, model: str, tracking: str) -> dict[str, Any]:
    """The report of `deepfake drift`, as JSON."""
    return drift_report(answers, model, tracking).to_dict()


@flow(name="deepfake-drift")
def deepfake_drift(
    answers: str, model: str = "", params_path: str = "params.yaml", root: str = "."
) -> dict[str, Any]:
    """Do the faces answered still look like the model's held-out faces? `model` defaults to
    params' registry.model_name at registry.alias."""
    base = Path(root)
    prepare_environment(base)
    params = load_params(base / params_path)
    uri = model or params.registry.alias_uri  # the tracking URI serves registry URIs alone
    report = drift_task(base / answers, uri, tracking_uri(params))
    logger = get_run_logger()
    for m in report["measures"]:
        logger.info("%s: %s", m["measure"], m)
    if report["retrain_due"]:
        drifted = ", ".join(m["measure"] for m in report["measures"] if m["drifted"])
        logger.warning("retrain due: %s drifted from the model's held-out faces", drifted)
    else:
        logger.info("no drift in %d answers", report["answers"])
    return report
