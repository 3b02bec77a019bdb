"""`evaluate_model`: frame- and video-level scores of the trained detector on the test split."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd

from deepfake_detector import cache_keys
from deepfake_detector.atomic import atomic_path, write_json
from deepfake_detector.config import Params
from deepfake_detector.input_pipeline import face_dataset
from deepfake_detector.metrics import binary_metrics, curves
from deepfake_detector.model import load_model
from deepfake_detector.reports import StageReport
from deepfake_detector.train import MODEL_FILE, read_split

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"
PREDICTIONS_FILE = "predictions.csv"
VIDEO_PREDICTIONS_FILE = "video_predictions.csv"


def score_faces(
    model_path: Path, files: list[Path], image_size: int, batch_size: int
) -> np.ndarray:
    """P(fake) of each face crop, in order."""
    import tensorflow as tf

    model = load_model(model_path)
    infer = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    ds = face_dataset(files, None, image_size, batch_size)
    return np.concatenate([infer(batch).numpy().ravel() for batch in ds]) if files else np.array([])


def frame_scores(faces: pd.DataFrame) -> pd.DataFrame:
    """A frame's score is its most suspicious face (a frame is fake if any face in it is)."""
    return faces.groupby(["video_id", "frame_index"], as_index=False).agg(
        label=("label", "first"), group=("group", "first"), p_fake=("p_fake", "max")
    )


def video_scores(frames: pd.DataFrame) -> pd.DataFrame:
    """A video's score is the mean of its frame scores (averaging over time damps single misses)."""
    return frames.groupby("video_id", as_index=False).agg(
        label=("label", "first"),
        group=("group", "first"),
        p_fake=("p_fake", "mean"),
        frames=("frame_index", "size"),
    )


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
    """Stage: score the test split; write metrics, predictions, curve data and figures."""
    report = StageReport("evaluate_model")
    report.details["key"] = cache_keys.evaluate_key(params, root)
    threshold = params.evaluate.threshold
    table = read_split(params, root)
    test = table[table["split"] == "test"].copy()
    test["p_fake"] = score_faces(
        root / params.paths.model_dir / MODEL_FILE,
        list(test["path"]),
        params.train.image_size,
        params.evaluate.batch_size,
    )
    frames = frame_scores(test)
    videos = video_scores(frames)
    levels = {"frame": frames, "video": videos}
    metrics: dict[str, dict] = {}
    level_curves = {}
    for level, frame in levels.items():
        y = (frame["label"] == "fake").to_numpy(int)
        metrics[level] = binary_metrics(y, frame["p_fake"].to_numpy(), threshold)
        if metrics[level]["n_fake"] in (0, len(y)):
            report.details.setdefault("warnings", []).append(f"{level}: test split holds one class")
            level_curves[level] = ({"fpr": [], "tpr": []}, {"recall": [], "precision": []})
        else:
            level_curves[level] = curves(y, frame["p_fake"].to_numpy())
    out_dir = root / params.paths.evaluation_dir
    write_json(out_dir / METRICS_FILE, _clean(metrics))
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
    report.count("test_faces", len(test))
    report.count("test_frames", len(frames))
    report.count("test_videos", len(videos))
    report.details["video_auc"] = metrics["video"]["auc"]
    report.details["frame_auc"] = metrics["frame"]["auc"]
    return report.finish(out_dir)
