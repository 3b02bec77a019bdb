"""The evaluation's tables and figures: ROC and precision-recall curve data, confusion tables,
and the evaluation figure (curves, calibration, confusion matrices).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from deepfake_detector.core.atomic import atomic_path
from deepfake_detector.learning.metrics import (
    EPS,
    curves,
)


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


def confusion_table(table: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """Each scored item's true and predicted label at the threshold: DVC's confusion plot."""
    p = np.clip(table["p_fake"].to_numpy(float), EPS, 1 - EPS)  # as `binary_metrics` counts
    predicted = np.where(p >= threshold, "fake", "real")
    return pd.DataFrame({"actual": table["label"].to_numpy(str), "predicted": predicted})


def curves_of(table: pd.DataFrame) -> tuple[dict, dict]:
    """ROC and PR points of a scored table; empty when it holds one class."""
    y = (table["label"] == "fake").to_numpy(int)
    if len(np.unique(y)) < 2:
        return {"fpr": [], "tpr": []}, {"recall": [], "precision": []}
    return curves(y, table["p_fake"].to_numpy(float))


# The README's command that trains a detector on real faces (docs/model.md has the detail).
REAL_DETECTOR = "dvc exp run register_model -S split.faces_dir=data/face_images"


def _auc(scores: dict, key: str = "auc") -> str:
    low, high = scores.get(f"{key}_low"), scores.get(f"{key}_high")
    interval = f" [{low:.3f}, {high:.3f}]" if low is not None and high is not None else ""
    return f"{scores[key]:.3f}{interval}" if key in scores else "n/a"


def run_summary(evaluation_dir: Path, registration_dir: Path, demo_dir: Path) -> list[str]:
    """What a pipeline run ends with, in a few lines: the version registered and its alias, its
    test AUCs with their 95% intervals, and the commands to try next."""
    import json

    from deepfake_detector.core.artifacts import METRICS_FILE
    from deepfake_detector.core.reports import run_log_path

    metrics = json.loads((evaluation_dir / METRICS_FILE).read_text())
    run = json.loads(run_log_path(registration_dir).read_text())
    frame, video = metrics.get("frame", {}), metrics.get("video", {})
    lines = [
        f"Registered {run['model_uri']} as {run['decision']}"
        + (
            f" (champion: version {run['previous_champion']})"
            if run["decision"] != "champion" and run.get("previous_champion")
            else ""
        )
        + ".",
        f"Test split: frame AUC {_auc(frame)} over {frame.get('n', 0)} faces; "
        f"video AUC {_auc(video)} over {video.get('n', 0)} videos (95% intervals).",
        "Next:",
    ]
    clips = sorted((demo_dir / "videos").glob("fake/*.mp4"))
    if clips:
        lines.append(f"  deepfake predict {clips[0]}   # a verdict on a clip, face by face")
    lines += [
        "  deepfake app                 # the web app on http://127.0.0.1:7860",
        f"  {REAL_DETECTOR}   # a real detector (docs/model.md)",
    ]
    return lines
