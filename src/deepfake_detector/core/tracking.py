"""The one door to MLflow: tracking stores, runs, registry versions and aliases, study runs.

It records and looks up; it builds nothing. The registered model's format (MLflow's Keras
flavour plus this project's pyfunc) lives in `deepfake_detector.inference.pyfunc`.
"""

from __future__ import annotations

import logging
import math
import os
import re
import subprocess
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepfake_detector.core.config import Params
from deepfake_detector.core.model_ref import ModelRef

log = logging.getLogger(__name__)

SELECTION_METRIC = "frame_auc"  # frame level: many items, an AUC that tells versions apart


def tracking_uri(params: Params) -> str:
    """`MLFLOW_TRACKING_URI` when set, else `registry.tracking_uri`; SQLite paths made absolute.

    MLflow caches a store per URI string, so a relative `sqlite:///mlruns/mlflow.db` would keep
    pointing at the first folder it was used from; an absolute path names the database itself.
    """
    uri = os.environ.get("MLFLOW_TRACKING_URI") or params.registry.tracking_uri
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        uri = prefix + str(Path(uri.removeprefix(prefix)).resolve())
    return uri


def connect(params: Params, root: Path = Path("."), experiment: str | None = None) -> str:
    """Point MLflow at the tracking store and make sure the experiment exists; return its id.

    The experiment is `registry.experiment` unless named. A new experiment in a local store keeps
    its artifacts under `registry.artifact_root`; on a tracking server, where the server says.
    """
    import mlflow

    name = experiment or params.registry.experiment
    uri = tracking_uri(params)
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    found = mlflow.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    if uri.startswith(("http://", "https://", "databricks")):
        return mlflow.create_experiment(name)  # a tracking server keeps artifacts where it says
    artifacts = (root / params.registry.artifact_root).resolve()
    artifacts.mkdir(parents=True, exist_ok=True)
    return mlflow.create_experiment(name, artifact_location=artifacts.as_uri())


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
    """Nested dicts to dotted keys, for MLflow params and metrics; a character MLflow refuses
    in a name (the `+` of the age band `60+`) becomes `_`."""
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, inner in value.items():
            name = re.sub(r"[^\w\-. :/]", "_", str(key))
            out.update(flatten(f"{prefix}.{name}" if prefix else name, inner))
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
    log_model: Callable[[], str],
) -> Logged:
    """One MLflow run: params, per-epoch metrics, test metrics, figures, tags, and the model.

    `log_model` logs and registers the model inside the run and returns the new version: the
    model's format belongs to its flavour (`inference.pyfunc`), not to this module.
    """
    import mlflow

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
        version = log_model()
    return Logged(run.info.run_id, version, f"models:/{params.registry.model_name}/{version}")


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def describe_version(params: Params, version: str, description: str) -> None:
    """Set the registered version's description (shown in the MLflow UI and registry API)."""
    from mlflow import MlflowClient

    MlflowClient().update_model_version(params.registry.model_name, version, description)


def decide_and_tag(
    params: Params, version: str, score: float, refusal: str | None = None
) -> dict[str, Any]:
    """Move the alias to `version` only if it beats the current holder and nothing refuses it
    (`refusal`, e.g. the group gate: the version is then `refused`, tagged with why)."""
    from mlflow import MlflowClient

    name, alias = params.registry.model_name, params.registry.alias
    client = MlflowClient()
    holder = current_champion(name, alias)
    # Compared as tagged (6 decimals): the same score again does not take the alias.
    beats = math.isfinite(score) and (
        holder is None or not math.isfinite(holder.score) or round(score, 6) > holder.score
    )
    if refusal:
        beats = False
        client.set_model_version_tag(name, version, "refusal", refusal)
    decision = alias if beats else "refused" if refusal else "challenger"
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
        **({"refusal": refusal} if refusal else {}),
        "version": version,
        SELECTION_METRIC: score,
        "previous_champion": None if holder is None else holder.version,
        f"previous_champion_{SELECTION_METRIC}": None if holder is None else holder.score,
    }


def version_of_run(source: str, run_id: str | None) -> ModelRef:
    """Name and version of the registered version made from `run_id`, if the registry says."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    if run_id:
        try:
            versions: list[Any] = list(MlflowClient().search_model_versions(f"run_id='{run_id}'"))
        except (MlflowException, OSError) as exc:
            log.warning("registry lookup failed: %s", exc)
            versions = []
        if versions:
            v = max(versions, key=lambda v: int(v.version))
            return ModelRef(source, v.name, str(v.version), run_id)
    return ModelRef(source, run_id=run_id)


def fetch_registered_model(uri: str, store: str | None = None) -> tuple[Path, ModelRef]:
    """Download a registered model (`models:/name@alias`, `models:/name/3`); say which it is.

    `store` is the tracking URI to read (default: MLflow's own, `MLFLOW_TRACKING_URI`).
    """
    import mlflow
    from mlflow import MlflowClient

    if store:
        mlflow.set_tracking_uri(store)

    folder = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri))
    client = MlflowClient()
    if uri.startswith("models:/"):
        rest = uri.removeprefix("models:/")
        if "@" in rest:
            name, alias = rest.split("@", 1)
            version = client.get_model_version_by_alias(name, alias)
        else:
            name, number = rest.rsplit("/", 1)
            version = client.get_model_version(name, number)
        return folder, ModelRef(uri, version.name, str(version.version), version.run_id)
    return folder, ModelRef(uri)


STUDY_SECTIONS = ("face_images", "faces", "split", "train", "evaluate")


class StudyRun:
    """An open MLflow parent run of a study: fold runs nest under it."""

    def __init__(self, run_id: str, experiment_id: str, tags: dict[str, str]) -> None:
        self.run_id = run_id
        self.experiment_id = experiment_id
        self.tags = tags

    def log_fold(self, row: dict[str, Any]) -> None:
        """One nested run with a fold's numbers."""
        import mlflow

        name = f"{self.tags['study_name']}/{row['fold']}"
        tags = {**self.tags, "fold": str(row["fold"])}
        with mlflow.start_run(
            experiment_id=self.experiment_id, run_name=name, nested=True, tags=tags
        ):
            mlflow.log_metrics({k: float(v) for k, v in row.items() if _finite(v)})

    def log_summary(self, summary: dict[str, Any], report_dir: Path) -> None:
        """The study's summary numbers and its report folder."""
        import mlflow

        mlflow.log_metrics({k: float(v) for k, v in summary.items() if _finite(v)})
        mlflow.log_artifacts(str(report_dir), artifact_path="report")


@contextmanager
def study_run(
    params: Params, root: Path, kind: str, name: str, experiment: str, setup: Mapping[str, Any]
) -> Iterator[StudyRun]:
    """A parent run in `experiment` with the study's recipe and its own `setup` as params; it
    ends FAILED if the study raises."""
    import mlflow

    experiment_id = connect(params, root, experiment)
    logged = {}
    for section in STUDY_SECTIONS:
        logged.update(flatten(section, getattr(params, section).model_dump(mode="json")))
    logged.update(flatten(kind, setup))
    tags = {"study": kind, "study_name": name, "git_commit": git_commit(root)}
    with mlflow.start_run(experiment_id=experiment_id, run_name=name, tags=tags) as parent:
        mlflow.log_params({k: str(v)[:6000] for k, v in logged.items()})
        yield StudyRun(parent.info.run_id, experiment_id, tags)


def study_runs(params: Params, experiment: str, root: Path = Path(".")) -> Any:
    """Every parent study run (finished or failed) with its recipe and summary, oldest first."""
    import mlflow

    experiment_id = connect(params, root, experiment)
    runs = mlflow.search_runs(
        [experiment_id], filter_string="tags.study != ''", order_by=["attributes.start_time ASC"]
    )
    if runs.empty or "tags.mlflow.parentRunId" not in runs:
        return runs
    return runs[runs["tags.mlflow.parentRunId"].isna()]
