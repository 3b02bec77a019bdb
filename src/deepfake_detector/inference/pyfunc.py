"""The registered model's MLflow flavour: how it is written, and how MLflow serves it.

A registered version is MLflow's Keras flavour (so `mlflow.keras.load_model` works) plus this
project's: the inference settings (`inference.json`), the LiteRT files, the project's code
(`code/`) and this module as the pyfunc loader, so `mlflow.pyfunc.load_model` and
`mlflow models serve` answer with the full inference path (faces found, scored, calibrated) for
base64-encoded images.
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deepfake_detector.core.artifacts import INFERENCE_FILE

if TYPE_CHECKING:
    from deepfake_detector.core.config import Params
    from deepfake_detector.inference.predict import Detector

log = logging.getLogger(__name__)

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


def pip_requirements() -> list[str]:
    """Pinned runtime requirements of the logged model (saves MLflow's slow inference of them)."""
    pins = []
    for name in RUNTIME_PACKAGES:
        try:
            pins.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return pins


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
    card: dict[str, Any] | None = None,
) -> None:
    """Write the model directory: Keras flavour, inference settings, model card (JSON and
    Markdown, when given), and this module as loader."""
    import mlflow.keras
    from mlflow.models import Model

    from deepfake_detector import __version__
    from deepfake_detector.inference.lite_export import write_lite_files
    from deepfake_detector.inference.lite_runtime import LITE_DIR
    from deepfake_detector.inference.predict import REGISTERED_KERAS_FILE

    mlflow_model = mlflow_model if mlflow_model is not None else Model()
    # The Keras flavour takes tensor signatures only; the pyfunc's, a column of strings, is set
    # right after: its warning that the model has no signature is not true of what is saved.
    keras_log = logging.getLogger("mlflow.keras.save")
    level = keras_log.level
    keras_log.setLevel(logging.ERROR)
    try:
        mlflow.keras.save_model(
            keras_model,
            path,
            mlflow_model=mlflow_model,
            pip_requirements=pip_requirements,
        )
    finally:
        keras_log.setLevel(level)
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
    if card is not None:
        from deepfake_detector.inference.model_card import write_card

        write_card(Path(path), card)
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


def log_model(
    params: Params,
    model_path: Path,
    inference: dict[str, Any],
    card: dict[str, Any] | None = None,
) -> str:
    """Log the model in this flavour (with its model card) to the active MLflow run, register
    it; the new version."""
    from mlflow.models import Model

    from deepfake_detector.learning.model import load_model

    info = Model.log(
        artifact_path=None,
        name="model",
        flavor=sys.modules[__name__],
        registered_model_name=params.registry.model_name,
        keras_model=load_model(model_path),
        inference=inference,
        pip_requirements=pip_requirements(),
        code_paths=[str(Path(__file__).parents[1])],
        signature=signature(),
        input_example=input_example(),
        card=card,
    )
    return str(info.registered_model_version)


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

        from deepfake_detector.sources.images import InputError, read_image

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
    from deepfake_detector.core.tracking import version_of_run
    from deepfake_detector.inference.predict import detector_of_model_dir

    return PyfuncDetector(detector_of_model_dir(folder, version_of_run(str(folder), run_id)))
