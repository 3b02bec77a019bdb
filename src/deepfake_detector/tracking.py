"""The only module that talks to MLflow: runs, model logging, registry versions and aliases."""

from __future__ import annotations

import logging
import math
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from deepfake_detector.config import Params

log = logging.getLogger(__name__)

SELECTION_METRIC = "video_auc"
RUNTIME_PACKAGES = ("tensorflow-cpu", "keras", "numpy", "opencv-python-headless", "mtcnn")


def tracking_uri(params: Params) -> str:
    """`MLFLOW_TRACKING_URI` when set, else `registry.tracking_uri` from params."""
    return os.environ.get("MLFLOW_TRACKING_URI") or params.registry.tracking_uri


def connect(params: Params, root: Path = Path(".")) -> str:
    """Point MLflow at the tracking store and make sure the experiment exists; return its id."""
    import mlflow

    uri = tracking_uri(params)
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.get_experiment_by_name(params.registry.experiment)
    if experiment is not None:
        return experiment.experiment_id
    artifacts = (root / params.registry.artifact_root).resolve()
    artifacts.mkdir(parents=True, exist_ok=True)
    return mlflow.create_experiment(
        params.registry.experiment, artifact_location=artifacts.as_uri()
    )


def pip_requirements() -> list[str]:
    """Pinned runtime requirements of the logged model (saves MLflow's slow inference of them)."""
    pins = []
    for name in RUNTIME_PACKAGES:
        try:
            pins.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return pins


def git_commit(root: Path = Path(".")) -> str:
    """The checked-out commit, with '-dirty' when the work tree differs; 'unknown' outside git."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{sha}-dirty" if dirty else sha


def flatten(prefix: str, value: Any) -> dict[str, Any]:
    """Nested dicts to dotted keys, for MLflow params and metrics."""
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, inner in value.items():
            out.update(flatten(f"{prefix}.{key}" if prefix else str(key), inner))
        return out
    return {prefix: value}


@dataclass(frozen=True)
class Champion:
    """The version that holds the alias, and its selection metric."""

    version: str
    score: float


def current_champion(name: str, alias: str) -> Champion | None:
    """The version behind `name@alias`, or None if the model or alias does not exist yet."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    try:
        version = client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None
    score = float(version.tags.get(SELECTION_METRIC, "nan"))
    return Champion(str(version.version), score)


@dataclass(frozen=True)
class Logged:
    """What `log_training_run` created."""

    run_id: str
    version: str
    model_uri: str


def log_training_run(
    params: Params,
    experiment_id: str,
    *,
    model_path: Path,
    history: list[dict[str, Any]],
    test_metrics: dict[str, Any],
    artifacts: list[Path],
    tags: dict[str, str],
) -> Logged:
    """One MLflow run: params, per-epoch metrics, test metrics, figures, tags, and the model."""
    import mlflow

    from deepfake_detector.model import load_model

    logged_params = {}
    for section in ("frames", "faces", "split", "train", "evaluate"):
        logged_params.update(flatten(section, getattr(params, section).model_dump(mode="json")))
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_params({k: str(v) for k, v in logged_params.items()})
        for row in history:
            step = int(row["epoch"])
            mlflow.log_metrics(
                {k: float(v) for k, v in row.items() if k not in ("epoch", "phase") and _finite(v)},
                step=step,
            )
        flat = flatten("test", test_metrics)
        mlflow.log_metrics({k: float(v) for k, v in flat.items() if _finite(v)})
        mlflow.set_tags(tags)
        for path in artifacts:
            mlflow.log_artifact(str(path))
        info = mlflow.keras.log_model(
            load_model(model_path),
            name="model",
            registered_model_name=params.registry.model_name,
            pip_requirements=pip_requirements(),
        )
    version = str(info.registered_model_version)
    return Logged(run.info.run_id, version, f"models:/{params.registry.model_name}/{version}")


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def decide_and_tag(params: Params, version: str, score: float) -> dict[str, Any]:
    """Move the alias to `version` only if it beats the current holder; tag the decision."""
    from mlflow import MlflowClient

    name, alias = params.registry.model_name, params.registry.alias
    client = MlflowClient()
    holder = current_champion(name, alias)
    beats = math.isfinite(score) and (
        holder is None or not math.isfinite(holder.score) or score > holder.score
    )
    decision = alias if beats else "challenger"
    client.set_model_version_tag(name, version, SELECTION_METRIC, f"{score:.6f}")
    client.set_model_version_tag(name, version, "role", decision)
    if holder is not None:
        client.set_model_version_tag(name, version, f"{alias}_at_registration", holder.version)
        client.set_model_version_tag(
            name, version, f"{alias}_{SELECTION_METRIC}", f"{holder.score:.6f}"
        )
    if beats:
        client.set_registered_model_alias(name, alias, version)
    return {
        "decision": decision,
        "version": version,
        SELECTION_METRIC: score,
        "previous_champion": None if holder is None else holder.version,
        f"previous_champion_{SELECTION_METRIC}": None if holder is None else holder.score,
    }
