"""`deepfake export`: the detector as a TFLite model for devices, checked against Keras.

Beside it, `lite/` holds the light runtime's files (classifier and MTCNN networks), the same a
registered version carries, so a model exported here answers `deepfake predict` without
TensorFlow when `lite/` sits beside its `model.keras` and `inference.json`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from deepfake_detector.core.artifacts import INFERENCE_FILE
from deepfake_detector.core.atomic import atomic_path, write_json
from deepfake_detector.core.config import Params
from deepfake_detector.core.errors import UserError
from deepfake_detector.core.reports import StageReport
from deepfake_detector.core.tracking import tracking_uri
from deepfake_detector.inference.crop_scores import score_files
from deepfake_detector.inference.lite_export import (
    frozen_converter,
    mirror_averaged,
    run_converter,
    write_lite_files,
)
from deepfake_detector.inference.lite_runtime import LITE_DIR
from deepfake_detector.inference.predict import Detector, load_detector
from deepfake_detector.learning.metrics import binary_metrics
from deepfake_detector.sources.face_sets import read_split
from deepfake_detector.sources.images import read_rgb

log = logging.getLogger(__name__)

Quantize = Literal["none", "float16", "dynamic", "int8"]
REPRESENTATIVE = 100
# A quantized file whose scores rank the test faces unlike the Keras model's (Spearman's rank
# correlation below this, or none: scores all alike) is refused.
MIN_RANK_CORRELATION = 0.9


def convert(detector: Detector, quantize: Quantize, calibration_files: list[Path]) -> bytes:
    """TFLite flatbuffer of the Keras model: float32, float16 weights, 8-bit weights with float
    activations (`dynamic`), or int8 weights and activations with float I/O (`int8`).
    With `tta_flip` the graph averages each crop's score with its mirror image's, as the
    detector's own answers do."""
    import tensorflow as tf

    size = detector.config.image_size
    converter = frozen_converter(
        mirror_averaged(detector.model, detector.config.tta_flip),
        tf.TensorSpec([None, size, size, 3], tf.float32, name="image"),
    )
    if quantize != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if quantize == "int8":

        def representative() -> Iterator[list[Any]]:
            for path in calibration_files[:REPRESENTATIVE]:
                crop = read_rgb(path)
                if crop is not None:
                    x = tf.image.resize(crop[None].astype(np.float32), [size, size])
                    yield [x]

        converter.representative_dataset = representative
    return run_converter(converter)


def tflite_scores(model: bytes, files: list[Path], image_size: int) -> np.ndarray:
    """Uncalibrated P(fake) of face crops through the LiteRT interpreter."""
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model)
    interpreter.allocate_tensors()
    source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    out = []
    for path in files:
        crop = read_rgb(path)
        if crop is None:
            raise ValueError(f"cannot read the face crop {path}")
        x = tf.image.resize(crop[None].astype(np.float32), [image_size, image_size]).numpy()
        interpreter.set_tensor(source["index"], x)
        interpreter.invoke()
        out.append(float(interpreter.get_tensor(target["index"]).ravel()[0]))
    return np.array(out)


def _rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation of two score vectors (ties share their mean rank); nan when
    either has one value only."""
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    ranks = pd.DataFrame({"a": a, "b": b}).rank()
    return float(np.corrcoef(ranks["a"], ranks["b"])[0, 1])


def export_tflite(
    params: Params, model: str, out_dir: Path, quantize: Quantize = "none", root: Path = Path(".")
) -> StageReport:
    """Write `model[-quantize].tflite` and a report of its agreement with Keras (test split)."""
    report = StageReport("export")
    if model.startswith("models:/"):
        detector = load_detector(model, runtime="tensorflow", tracking_uri=tracking_uri(params))
    else:
        inference = root / params.paths.evaluation_dir / INFERENCE_FILE
        detector = load_detector(Path(model), inference, runtime="tensorflow")
    table = read_split(params, root)
    train = list(table.loc[table["split"] == "train", "path"])
    test = table[table["split"] == "test"]
    lite = write_lite_files(
        detector.model, detector.config.image_size, detector.config.tta_flip, out_dir / LITE_DIR
    )
    flatbuffer = convert(detector, quantize, train)
    name = "model.tflite" if quantize == "none" else f"model-{quantize}.tflite"
    files = list(test["path"])
    keras_p = score_files(detector, files)
    lite_p = tflite_scores(flatbuffer, files, detector.config.image_size)
    y = (test["label"] == "fake").to_numpy(int)
    diff = np.abs(keras_p - lite_p)
    auc_keras = binary_metrics(y, keras_p, 0.5)["auc"]
    auc_lite = binary_metrics(y, lite_p, 0.5)["auc"]
    rank_correlation = _rank_correlation(keras_p, lite_p)
    if quantize != "none" and not rank_correlation >= MIN_RANK_CORRELATION:
        instead = "float16" if quantize == "dynamic" else "dynamic (8-bit weights) or float16"
        ranks = (
            "its scores are all alike"
            if np.isnan(rank_correlation)
            else f"its scores rank them unlike the model's (rank correlation "
            f"{rank_correlation:.2f})"
        )
        raise UserError(
            f"--quantize {quantize} loses what this model reads: on the {len(files)} test faces "
            f"{ranks}, test AUC {auc_keras:.3f} through Keras and {auc_lite:.3f} through the "
            f"quantized file. {name} is not written; use --quantize {instead}."
        )
    with atomic_path(out_dir / name) as tmp:
        tmp.write_bytes(flatbuffer)
    report.count("test_faces", len(files))
    report.details.update(
        {
            "file": str(out_dir / name),
            "lite_dir": str(lite),
            "bytes": len(flatbuffer),
            "quantize": quantize,
            "max_abs_diff_p_fake": float(diff.max()) if len(diff) else None,
            "mean_abs_diff_p_fake": float(diff.mean()) if len(diff) else None,
            "rank_correlation": rank_correlation,
            "auc_keras": auc_keras,
            "auc_tflite": auc_lite,
            "model": detector.model_info(),
        }
    )
    write_json(out_dir / f"{Path(name).stem}.json", report.to_dict())
    return report.finish()
