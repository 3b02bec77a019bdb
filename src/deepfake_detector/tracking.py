"""The only module that talks to MLflow: runs, the model format, registry versions and aliases.

The registered model is MLflow's Keras flavour (so `mlflow.keras.load_model` works) plus this
project's flavour: the inference settings (`inference.json`) ride along, and the pyfunc loader is
this module, so `mlflow.pyfunc.load_model` and `mlflow models serve` answer with the full
inference path (faces found, scored, calibrated) for base64-encoded images.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deepfake_detector.config import Params

if TYPE_CHECKING:
    from deepfake_detector.predict import Detector, ModelRef

log = logging.getLogger(__name__)

SELECTION_METRIC = "frame_auc"  # frame level: many items, an AUC that tells versions apart
# What the registered model's pyfunc (REST) imports on the LiteRT runtime; the project's own
# code rides along in the model (`code/`), so an environment MLflow builds from these answers.
# The Keras flavour (`mlflow.keras.load_model`) needs the training stack: `pip install .[train]`.
RUNTIME_PACKAGES = (
    "ai-edge-litert",
    "numpy",
    "opencv-python-headless",
    "pillow",
    "pandas",
    "pydantic",
    "pyyaml",
)


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
    inference: dict[str, Any],
) -> Logged:
    """One MLflow run: params, per-epoch metrics, test metrics, figures, tags, and the model."""
    import mlflow
    from mlflow.models import Model

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
        info = Model.log(
            artifact_path=None,
            name="model",
            flavor=sys.modules[__name__],
            registered_model_name=params.registry.model_name,
            keras_model=load_model(model_path),
            inference=inference,
            pip_requirements=pip_requirements(),
            code_paths=[str(Path(__file__).parent)],
            signature=signature(),
            input_example=input_example(),
        )
    version = str(info.registered_model_version)
    return Logged(run.info.run_id, version, f"models:/{params.registry.model_name}/{version}")


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def describe_version(params: Params, version: str, description: str) -> None:
    """Set the registered version's description (shown in the MLflow UI and registry API)."""
    from mlflow import MlflowClient

    MlflowClient().update_model_version(params.registry.model_name, version, description)


def decide_and_tag(params: Params, version: str, score: float) -> dict[str, Any]:
    """Move the alias to `version` only if it beats the current holder; tag the decision."""
    from mlflow import MlflowClient

    name, alias = params.registry.model_name, params.registry.alias
    client = MlflowClient()
    holder = current_champion(name, alias)
    # Compared as tagged (6 decimals): the same score again does not take the alias.
    beats = math.isfinite(score) and (
        holder is None or not math.isfinite(holder.score) or round(score, 6) > holder.score
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


FLAVOR = "deepfake_detector"
CODE_DIR = "code"  # the project's package, copied into the model


def signature() -> Any:
    """The pyfunc's input: a column `image` of base64-encoded image files."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    return ModelSignature(inputs=Schema([ColSpec("string", "image")]))


def input_example() -> Any:
    """One request row: a small grey JPEG, base64-encoded (answered `no_face`)."""
    import base64

    import cv2
    import numpy as np
    import pandas as pd

    _, jpeg = cv2.imencode(".jpg", np.full((64, 64, 3), 128, np.uint8))
    return pd.DataFrame({"image": [base64.b64encode(jpeg.tobytes()).decode()]})


def save_model(
    path: str,
    mlflow_model: Any = None,
    *,
    keras_model: Any,
    inference: dict[str, Any],
    pip_requirements: list[str] | None = None,
    code_paths: list[str] | None = None,
    signature: Any = None,
    input_example: Any = None,
) -> None:
    """Write the model directory: Keras flavour, inference settings, and this module as loader."""
    import mlflow.keras
    from mlflow.models import Model

    from deepfake_detector import __version__
    from deepfake_detector.lite_export import write_lite_files
    from deepfake_detector.lite_runtime import LITE_DIR
    from deepfake_detector.predict import INFERENCE_FILE, REGISTERED_KERAS_FILE

    mlflow_model = mlflow_model if mlflow_model is not None else Model()
    mlflow.keras.save_model(
        keras_model,
        path,
        mlflow_model=mlflow_model,
        pip_requirements=pip_requirements,
    )
    # The Keras flavour takes tensor signatures only; the pyfunc's is a column of strings.
    if signature is not None:
        mlflow_model.signature = signature
    if input_example is not None:
        from mlflow.models.utils import _save_example

        _save_example(mlflow_model, input_example, path)
    for code in code_paths or []:  # MLflow's pyfunc puts `code/` on sys.path before loading
        shutil.copytree(
            code,
            Path(path) / CODE_DIR / Path(code).name,
            ignore=shutil.ignore_patterns("__pycache__"),
        )
    (Path(path) / INFERENCE_FILE).write_text(json.dumps(inference, indent=2))
    # The light runtime's files: verdicts from this version need LiteRT, not TensorFlow.
    write_lite_files(
        keras_model,
        int(inference["image_size"]),
        bool(inference.get("tta_flip")),
        Path(path) / LITE_DIR,
    )
    mlflow_model.add_flavor(
        FLAVOR,
        inference=INFERENCE_FILE,
        keras_model=str(REGISTERED_KERAS_FILE),
        package_version=__version__,
    )
    mlflow_model.flavors["python_function"]["loader_module"] = __name__
    if code_paths:
        mlflow_model.flavors["python_function"]["code"] = CODE_DIR
    mlflow_model.save(str(Path(path) / "MLmodel"))


def _registry_ref(source: str, run_id: str | None) -> ModelRef:
    """Name and version of the registered version made from `run_id`, if the registry says."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from deepfake_detector.predict import ModelRef

    if run_id:
        try:
            versions = MlflowClient().search_model_versions(f"run_id='{run_id}'")
        except (MlflowException, OSError) as exc:
            log.warning("registry lookup failed: %s", exc)
            versions = []
        if versions:
            v = max(versions, key=lambda v: int(v.version))
            return ModelRef(source, v.name, str(v.version), run_id)
    return ModelRef(source, run_id=run_id)


def fetch_registered_model(uri: str) -> tuple[Path, ModelRef]:
    """Download a registered model (`models:/name@alias`, `models:/name/3`); say which it is."""
    import mlflow
    from mlflow import MlflowClient

    from deepfake_detector.predict import ModelRef

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


class PyfuncDetector:
    """The MLflow pyfunc: base64 images in, per-face results out (see the README for JSON)."""

    def __init__(self, detector: Detector) -> None:
        self.detector = detector

    def predict(
        self, model_input: Any, params: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """One result per input image; a bad image gives verdict `error` with the reason."""
        import base64
        import binascii

        from deepfake_detector.images import InputError, read_image

        try:
            images = _images_of(model_input)
        except ValueError as exc:  # a schema problem: one clear error per row, no stack trace
            rows = len(model_input) if hasattr(model_input, "__len__") else 1
            return [self._error(i, str(exc)) for i in range(max(rows, 1))]
        results = []
        for i, encoded in enumerate(images):
            try:
                rgb = read_image(base64.b64decode(encoded, validate=True))
                result = self.detector.predict_image(rgb)
            except (InputError, binascii.Error, ValueError, TypeError) as exc:
                result = self._error(i, f"image {i}: {exc}")
            except Exception as exc:  # one bad image answers with its error; the rest go on
                log.warning("image %d: could not be analysed", i, exc_info=True)
                result = self._error(i, f"image {i}: could not be analysed ({exc!r})")
            results.append({"index": i, **result})
        return results

    def _error(self, index: int, message: str) -> dict[str, Any]:
        return {
            "index": index,
            "kind": "image",
            "verdict": "error",
            "p_fake": None,
            "faces": [],
            "error": message,
            "model": self.detector.model_info(),
        }


def _images_of(model_input: Any) -> list[str]:
    """The base64 strings in a DataFrame column `image`, a dict {'image': [...]}, or a list."""
    import pandas as pd

    if isinstance(model_input, pd.DataFrame):
        if "image" not in model_input.columns:
            raise ValueError(
                "expected a column named 'image' holding base64-encoded images; got "
                + ", ".join(map(str, model_input.columns))
            )
        return _flat(model_input["image"])
    if isinstance(model_input, dict):
        value = model_input.get("image", model_input.get("images"))
        if value is None:
            raise ValueError("expected the key 'image' holding base64-encoded images")
        return [value] if isinstance(value, str) else [str(v) for v in list(value)]
    if isinstance(model_input, str):
        return [model_input]
    return [str(v) for v in model_input]


def _flat(cells: Any) -> list[str]:
    """Strings of a column; a cell holding a list (MLflow makes `{"image": [...]}` one row of a
    list when it enforces the signature) gives its items."""
    out: list[str] = []
    for cell in cells:
        is_list = isinstance(cell, list | tuple) or getattr(cell, "ndim", 0) == 1
        out += [str(v) for v in cell] if is_list else [str(cell)]
    return out


def _load_pyfunc(path: str) -> PyfuncDetector:
    """MLflow's pyfunc entry point for this flavour."""
    from mlflow.models import Model

    folder = Path(path)
    run_id = Model.load(str(folder / "MLmodel")).run_id
    from deepfake_detector.predict import detector_of_model_dir

    return PyfuncDetector(detector_of_model_dir(folder, _registry_ref(str(folder), run_id)))


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
def study_run(params: Params, root: Path, kind: str, name: str) -> Iterator[StudyRun]:
    """A parent run with the study's recipe as params; it ends FAILED if the study raises."""
    import mlflow

    experiment_id = connect(params, root, params.studies.experiment)
    logged = {}
    for section in STUDY_SECTIONS:
        logged.update(flatten(section, getattr(params, section).model_dump(mode="json")))
    logged.update(flatten(kind, getattr(params.studies, kind).model_dump(mode="json")))
    tags = {"study": kind, "study_name": name, "git_commit": git_commit(root)}
    with mlflow.start_run(experiment_id=experiment_id, run_name=name, tags=tags) as parent:
        mlflow.log_params({k: str(v)[:6000] for k, v in logged.items()})
        yield StudyRun(parent.info.run_id, experiment_id, tags)


def study_runs(params: Params, root: Path = Path(".")) -> Any:
    """Every parent study run (finished or failed) with its recipe and summary, oldest first."""
    import mlflow

    experiment_id = connect(params, root, params.studies.experiment)
    runs = mlflow.search_runs(
        [experiment_id], filter_string="tags.study != ''", order_by=["attributes.start_time ASC"]
    )
    if runs.empty or "tags.mlflow.parentRunId" not in runs:
        return runs
    return runs[runs["tags.mlflow.parentRunId"].isna()]
