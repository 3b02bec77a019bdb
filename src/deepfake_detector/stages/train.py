"""Stage `train_model`: fit the training recipe (`recipes.training`) on the train split,
early-stopping on validation, and save the model and its history."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deepfake_detector.core import cache_keys
from deepfake_detector.core.artifacts import HISTORY_FILE, MODEL_FILE
from deepfake_detector.core.atomic import atomic_path
from deepfake_detector.core.config import Params, crop_geometry
from deepfake_detector.core.reports import StageReport
from deepfake_detector.learning.model import save_model
from deepfake_detector.recipes.training import fit_detector
from deepfake_detector.sources.face_sets import read_split


def train_model(params: Params, root: Path = Path(".")) -> StageReport:
    """Stage: train the detector on the train split, early-stopping on validation AUC."""
    report = StageReport("train_model")
    report.details["key"] = cache_keys.stage_key("train_model", params, root)
    table = read_split(params, root)
    train, val = table[table["split"] == "train"], table[table["split"] == "val"]
    fitted = fit_detector(
        train, val, params.train, geometry=crop_geometry(params, params.split.faces_dir)
    )
    model, log_frame = fitted.model, fitted.history

    out_dir = root / params.paths.model_dir
    with atomic_path(out_dir / MODEL_FILE) as tmp:
        save_model(model, tmp)
    with atomic_path(out_dir / HISTORY_FILE) as tmp:
        log_frame.to_csv(tmp, index=False)
    report.count("train_faces", len(train))
    report.count("val_faces", len(val))
    report.count("epochs", len(log_frame))
    report.details["training"] = fitted.counts
    report.details["class_weights"] = fitted.class_weights
    report.run["devices"] = list(fitted.devices)  # the machine's, not the inputs'
    report.details["trainable_params"] = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    if not log_frame.empty and "val_auc" in log_frame:
        report.details["best_val_auc"] = float(log_frame["val_auc"].max())
    return report.finish(out_dir)
