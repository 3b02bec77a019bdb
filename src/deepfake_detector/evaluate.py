"""`evaluate_model`: frame- and video-level scores of the trained detector on the test split."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd

from deepfake_detector import cache_keys
from deepfake_detector.atomic import atomic_path, write_json
from deepfake_detector.calibration import Calibration, fit_calibration
from deepfake_detector.config import Params
from deepfake_detector.faces import read_rgb
from deepfake_detector.metrics import binary_metrics, curves
from deepfake_detector.model import load_model
from deepfake_detector.predict import INFERENCE_FILE, Detector, InferenceConfig, ModelRef
from deepfake_detector.reports import StageReport
from deepfake_detector.tracks import link_tracks, video_score
from deepfake_detector.train import MODEL_FILE, read_split

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"
PREDICTIONS_FILE = "predictions.csv"
VIDEO_PREDICTIONS_FILE = "video_predictions.csv"
CHUNK = 256


def score_files(detector: Detector, files: list[Path]) -> np.ndarray:
    """Uncalibrated P(fake) of face-crop files, through the one inference path."""
    out = []
    for start in range(0, len(files), CHUNK):
        crops = [read_rgb(f) for f in files[start : start + CHUNK]]
        out.append(detector.raw_scores([c for c in crops if c is not None]))
    return np.concatenate(out) if out else np.zeros(0)


def frame_scores(faces: pd.DataFrame) -> pd.DataFrame:
    """A frame's score is its most suspicious face (a frame is fake if any face in it is)."""
    return faces.groupby(["video_id", "frame_index"], as_index=False).agg(
        label=("label", "first"), group=("group", "first"), p_fake=("p_fake", "max")
    )


def video_scores(faces: pd.DataFrame) -> pd.DataFrame:
    """A video's score: faces linked into tracks, the most suspicious track (see tracks.py)."""
    rows = []
    for video_id, faces_of in faces.groupby("video_id", sort=True):
        position = {f: n for n, f in enumerate(sorted(faces_of["frame_index"].unique()))}
        items = [
            (position[r.frame_index], (int(r.x), int(r.y), int(r.w), int(r.h)), float(r.p_fake))
            for r in faces_of.itertuples()
        ]
        tracks, _ = link_tracks(items)
        rows.append(
            {
                "video_id": video_id,
                "label": faces_of["label"].iloc[0],
                "group": faces_of["group"].iloc[0],
                "p_fake": video_score(tracks),
                "tracks": len(tracks),
                "frames": faces_of["frame_index"].nunique(),
            }
        )
    return pd.DataFrame(rows, columns=["video_id", "label", "group", "p_fake", "tracks", "frames"])


def _clean(obj: object) -> object:
    """NaN is not JSON: write null instead."""
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    return obj


def plot_figures(out_dir: Path, level_curves: dict[str, tuple[dict, dict]], metrics: dict) -> None:
    """ROC, precision-recall and confusion-matrix PNGs for people."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    for level, (roc, pr) in level_curves.items():
        auc = metrics[level]["auc"]
        axes[0].plot(roc["fpr"], roc["tpr"], label=f"{level} (AUC {auc:.3f})")
        axes[1].plot(
            pr["recall"], pr["precision"], label=f"{level} (AP {metrics[level]['ap']:.3f})"
        )
    axes[0].plot([0, 1], [0, 1], "k:", lw=0.8)
    axes[0].set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    axes[1].set(xlabel="recall", ylabel="precision", title="Precision-recall")
    for ax in axes[:2]:
        ax.legend(loc="lower right")
    cm = metrics["video"]["confusion_matrix"]
    grid = np.array([[cm["tn"], cm["fp"]], [cm["fn"], cm["tp"]]])
    axes[2].imshow(grid, cmap="Blues")
    for (i, j), v in np.ndenumerate(grid):
        axes[2].text(j, i, str(v), ha="center", va="center", fontsize=14)
    axes[2].set(
        xticks=[0, 1],
        yticks=[0, 1],
        xticklabels=["real", "fake"],
        yticklabels=["real", "fake"],
        xlabel="predicted",
        ylabel="true",
        title="Video-level confusion matrix",
    )
    fig.tight_layout()
    with atomic_path(out_dir / "evaluation.png") as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)


def evaluate_model(params: Params, root: Path = Path(".")) -> StageReport:
    """Stage: fit calibration and threshold on val; score test; write metrics, curves, figures."""
    report = StageReport("evaluate_model")
    report.details["key"] = cache_keys.evaluate_key(params, root)
    table = read_split(params, root)
    model = load_model(root / params.paths.model_dir / MODEL_FILE)
    uncalibrated = InferenceConfig(
        params.train.image_size, params.faces, params.frames, Calibration()
    )
    source = ModelRef(source=str(params.paths.model_dir))
    detector = Detector(model, uncalibrated, source, params.evaluate.batch_size)
    val = table[table["split"] == "val"].copy()
    test = table[table["split"] == "test"].copy()
    val["p_raw"] = score_files(detector, list(val["path"]))
    test["p_raw"] = score_files(detector, list(test["path"]))

    fixed = None if params.evaluate.threshold == "auto" else float(params.evaluate.threshold)
    val_frames = frame_scores(val.assign(p_fake=val["p_raw"]))
    calibration = fit_calibration(
        (val_frames["label"] == "fake").to_numpy(int), val_frames["p_fake"].to_numpy(), fixed
    )
    if not params.evaluate.calibrate:
        calibration = Calibration(threshold=calibration.threshold, fitted_on=calibration.fitted_on)
    test["p_fake"] = calibration.apply(test["p_raw"].to_numpy()) if len(test) else []

    frames = frame_scores(test)
    videos = video_scores(test)
    metrics: dict[str, dict] = {}
    level_curves = {}
    for level, frame in {"frame": frames, "video": videos}.items():
        y = (frame["label"] == "fake").to_numpy(int)
        metrics[level] = binary_metrics(y, frame["p_fake"].to_numpy(float), calibration.threshold)
        if metrics[level]["n_fake"] in (0, len(y)):
            report.details.setdefault("warnings", []).append(f"{level}: test split holds one class")
            level_curves[level] = ({"fpr": [], "tpr": []}, {"recall": [], "precision": []})
        else:
            level_curves[level] = curves(y, frame["p_fake"].to_numpy(float))
    out_dir = root / params.paths.evaluation_dir
    write_json(out_dir / METRICS_FILE, _clean(metrics))
    config = InferenceConfig(
        params.train.image_size, params.faces, params.frames, calibration, _clean(_summary(metrics))
    )
    write_json(out_dir / INFERENCE_FILE, config.to_dict())
    with atomic_path(out_dir / PREDICTIONS_FILE) as tmp:
        test.drop(columns=["path", "y"]).to_csv(tmp, index=False)
    with atomic_path(out_dir / VIDEO_PREDICTIONS_FILE) as tmp:
        videos.to_csv(tmp, index=False)
    for level, (roc, pr) in level_curves.items():
        with atomic_path(out_dir / f"roc_{level}.csv") as tmp:
            pd.DataFrame(roc).to_csv(tmp, index=False)
        with atomic_path(out_dir / f"pr_{level}.csv") as tmp:
            pd.DataFrame(pr).to_csv(tmp, index=False)
    plot_figures(out_dir, level_curves, metrics)
    report.count("val_faces", len(val))
    report.count("test_faces", len(test))
    report.count("test_frames", len(frames))
    report.count("test_videos", len(videos))
    report.details["calibration"] = calibration.to_dict()
    report.details["video_auc"] = metrics["video"]["auc"]
    report.details["frame_auc"] = metrics["frame"]["auc"]
    return report.finish(out_dir)


def _summary(metrics: dict[str, dict]) -> dict[str, float]:
    """The headline test numbers shown with the model (app, registry)."""
    return {
        f"{level}_{name}": metrics[level][name]
        for level in ("frame", "video")
        for name in ("auc", "ap", "eer", "log_loss", "accuracy")
    }
