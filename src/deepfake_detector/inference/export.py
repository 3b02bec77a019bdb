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

from deepfake_detector.core.artifacts import INFERENCE_FILE
from deepfake_detector.core.atomic import atomic_path, write_json
from deepfake_detector.core.config import Params
from deepfake_detector.core.reports import StageReport
from deepfake_detector.core.tracking import tracking_uri
from deepfake_detector.inference.crop_scores import score_files
from deepfake_detector.inference.lite_export import (
    frozen_converter,
    mirror_averaged,
    write_lite_files,
)
from deepfake_detector.inference.lite_runtime import LITE_DIR
from deepfake_detector.inference.predict import Detector, load_detector
from deepfake_detector.learning.metrics import binary_metrics
from deepfake_detector.sources.face_sets import read_split
from deepfake_detector.sources.images import read_rgb

log = logging.getLogger(__name__)

Quantize = Literal["none", "float16", "int8"]
REPRESENTATIVE = 100


def convert(detector: Detector, quantize: Quantize, calibration_files: list[Path]) -> bytes:
    """TFLite flatbuffer of the Keras model: float32, float16 weights, or int8 with float I/O.
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
    return converter.convert()


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
    with atomic_path(out_dir / name) as tmp:
        tmp.write_bytes(flatbuffer)
    files = list(test["path"])
    keras_p = score_files(detector, files)
    lite_p = tflite_scores(flatbuffer, files, detector.config.image_size)
    y = (test["label"] == "fake").to_numpy(int)
    diff = np.abs(keras_p - lite_p)
    report.count("test_faces", len(files))
    report.details.update(
        {
            "file": str(out_dir / name),
            "lite_dir": str(lite),
            "bytes": len(flatbuffer),
            "quantize": quantize,
            "max_abs_diff_p_fake": float(diff.max()) if len(diff) else None,
            "mean_abs_diff_p_fake": float(diff.mean()) if len(diff) else None,
            "auc_keras": binary_metrics(y, keras_p, 0.5)["auc"],
            "auc_tflite": binary_metrics(y, lite_p, 0.5)["auc"],
            "model": detector.model_info(),
        }
    )
    write_json(out_dir / f"{Path(name).stem}.json", report.to_dict())
    return report.finish()
