"""Stage `evaluate_model`: calibrate on validation and score the test split with the assessment
recipe (`recipes.assessment`); write metrics, predictions, curves and figures."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import pandas as pd

from deepfake_detector.core import cache_keys
from deepfake_detector.core.artifacts import (
    INFERENCE_FILE,
    METRICS_FILE,
    MODEL_FILE,
    PREDICTIONS_FILE,
    RELIABILITY_FILE,
    VIDEO_PREDICTIONS_FILE,
)
from deepfake_detector.core.atomic import atomic_path, write_json
from deepfake_detector.core.config import Params, crop_geometry
from deepfake_detector.core.reports import StageReport
from deepfake_detector.learning.drift import reference_of
from deepfake_detector.learning.metrics import reliability_bins
from deepfake_detector.learning.model import load_model
from deepfake_detector.recipes.assessment import (
    assess,
    by_dataset,
    group_rates,
    headline_metrics,
    json_ready,
    own_dataset,
    uncalibrated_detector,
    what_it_learnt,
)
from deepfake_detector.recipes.reporting import confusion_table, curves_of, plot_figures
from deepfake_detector.sources.face_sets import read_split

log = logging.getLogger(__name__)


def evaluate_model(params: Params, root: Path = Path(".")) -> StageReport:
    """Stage: fit calibration and threshold on val; score test; write metrics, curves, figures."""
    report = StageReport("evaluate_model")
    report.details["key"] = cache_keys.stage_key("evaluate_model", params, root)
    table = read_split(params, root)
    model = load_model(root / params.paths.model_dir / MODEL_FILE)
    # Images are cropped at inference the way the training crops were cut.
    geometry = crop_geometry(params, params.split.faces_dir)
    detector = uncalibrated_detector(model, params, geometry, str(params.paths.model_dir))
    uncalibrated = detector.config
    result = assess(
        detector,
        table[table["split"] == "val"],
        table[table["split"] == "test"],
        params.evaluate,
        seed=params.split.seed,
    )
    metrics, calibration, test = result.metrics, result.calibration, result.test
    report.details["warnings"] = result.warnings
    level_curves = {
        level: curves_of(table)
        for level, table in {"frame": result.frames, "video": result.videos}.items()
    }
    metrics["operating_point"] = calibration.operating_point
    metrics["abstention"] = result.abstention.to_dict()
    groups = group_rates(
        result.frames, calibration.threshold, params.evaluate.bootstrap, params.split.seed
    )
    if groups:
        metrics["groups"] = groups
    # Per target coverage (fitted on validation): share answered, accuracy and FPR on test.
    metrics["risk_coverage"] = {f"{r['target_coverage']:g}": r for r in result.risk_coverage}
    metrics["datasets"] = by_dataset(
        result.frames,
        result.videos,
        calibration,
        own_dataset(params),
        params.evaluate.bootstrap,
        params.split.seed,
    )
    out_dir = root / params.paths.evaluation_dir
    write_json(out_dir / METRICS_FILE, json_ready(metrics))
    config = replace(
        uncalibrated,
        calibration=calibration,
        abstention=result.abstention,
        test_metrics=json_ready(headline_metrics(metrics)),
        training=what_it_learnt(params, table[table["split"] == "train"]),
        drift_reference=reference_of(test, seed=params.split.seed),
    )
    write_json(out_dir / INFERENCE_FILE, config.to_dict())
    with atomic_path(out_dir / PREDICTIONS_FILE) as tmp:
        test.drop(columns=["path", "y"]).to_csv(tmp, index=False)
    with atomic_path(out_dir / VIDEO_PREDICTIONS_FILE) as tmp:
        result.videos.to_csv(tmp, index=False)
    for level, (roc, pr) in level_curves.items():
        with atomic_path(out_dir / f"roc_{level}.csv") as tmp:
            pd.DataFrame(roc).to_csv(tmp, index=False)
        with atomic_path(out_dir / f"pr_{level}.csv") as tmp:
            pd.DataFrame(pr).to_csv(tmp, index=False)
    for level, scored in {"frame": result.frames, "video": result.videos}.items():
        with atomic_path(out_dir / f"confusion_{level}.csv") as tmp:
            confusion_table(scored, calibration.threshold).to_csv(tmp, index=False)
    frame_y = (result.frames["label"] == "fake").to_numpy(int)
    with atomic_path(out_dir / RELIABILITY_FILE) as tmp:
        bins = reliability_bins(frame_y, result.frames["p_fake"].to_numpy(float))
        pd.DataFrame(bins, columns=["lower", "upper", "n", "predicted", "observed"]).to_csv(
            tmp, index=False
        )
    plot_figures(out_dir, level_curves, metrics)
    report.count("val_faces", len(result.val))
    report.count("test_faces", len(test))
    report.count("test_frames", len(result.frames))
    report.count("test_videos", len(result.videos))
    report.details["calibration"] = calibration.to_dict() | {"fpr_curve": "in inference.json"}
    report.details["video_auc"] = metrics["video"]["auc"]
    report.details["training"] = config.training
    report.details["frame_auc"] = metrics["frame"]["auc"]
    return report.finish(out_dir)
