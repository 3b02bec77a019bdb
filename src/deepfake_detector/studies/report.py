"""A study's Markdown report and figures: set-up, per-fold table, pooled breakdown, ROC curves."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from deepfake_detector.core.atomic import atomic_path, write_text
from deepfake_detector.core.config import Params
from deepfake_detector.core.study_config import studies_of
from deepfake_detector.core.study_table import STUDY_FIGURE as FIGURE_FILE
from deepfake_detector.core.study_table import STUDY_REPORT

RECIPE_KEYS = (
    "train.base_weights",
    "train.head_epochs",
    "train.epochs",
    "train.fine_tune_layers",
    "train.learning_rate",
    "train.label_smoothing",
    "train.dropout",
    "train.augment.flip",
    "train.augment.blur_prob",
    "train.augment.jpeg_prob",
    "train.synthetic_fakes",
    "train.synthetic_share",
    "train.blend_donor",
    "train.image_size",
    "evaluate.tta_flip",
    "evaluate.calibrate",
    "evaluate.bootstrap",
)


def fmt(value: object) -> str:
    """A table cell: floats to 3 decimals, NaN as a dash."""
    if isinstance(value, float):
        return "–" if math.isnan(value) else f"{value:.3f}"
    return str(value)


def markdown_table(table: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table."""
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    for row in table.itertuples(index=False):
        lines.append("| " + " | ".join(fmt(v) for v in row) + " |")
    return "\n".join(lines)


def interval(value: float, low: float, high: float) -> str:
    """`0.912 [0.850, 0.960]`."""
    return f"{fmt(value)} [{fmt(low)}, {fmt(high)}]"


def intervals(table: pd.DataFrame | dict, prefix: str) -> list[str] | str:
    """Cells `value [low, high]` from `<prefix>`, `<prefix>_low`, `<prefix>_high` columns."""
    if isinstance(table, dict):
        return interval(table[prefix], table[f"{prefix}_low"], table[f"{prefix}_high"])
    columns = (table[prefix], table[f"{prefix}_low"], table[f"{prefix}_high"])
    return [interval(*v) for v in zip(*columns, strict=True)]


def pair(table: pd.DataFrame, first: str, second: str) -> list[str]:
    """Cells `first / second`."""
    return [f"{a} / {b}" for a, b in zip(table[first], table[second], strict=True)]


def recipe(params: Params) -> dict[str, object]:
    """The training and evaluation settings a reader needs to judge the numbers."""
    from deepfake_detector.core.tracking import flatten

    flat = flatten("", {"train": params.train.model_dump(mode="json")})
    flat.update(flatten("", {"evaluate": params.evaluate.model_dump(mode="json")}))
    out = {key: flat[key] for key in RECIPE_KEYS}
    out["split.extra_faces"] = (
        ", ".join(
            f"{s.name} (limit {s.limit or 'all'}, val share {s.val_share:g})"
            for s in params.split.extra_faces
        )
        or "none"
    )
    return out


Curves = dict[str, tuple[tuple[dict, dict], tuple[dict, dict]]]  # fold -> (video, frame) ROC, PR


def plot_curves(out_dir: Path, curves: Curves) -> None:
    """Video- and frame-level ROC of every fold, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    for name, ((video_roc, _), (frame_roc, _)) in curves.items():
        axes[0].plot(video_roc["fpr"], video_roc["tpr"], label=name, drawstyle="steps-post")
        axes[1].plot(frame_roc["fpr"], frame_roc["tpr"], label=name)
    for ax, level in zip(axes, ("video", "frame"), strict=True):
        ax.plot([0, 1], [0, 1], "k:", lw=0.8)
        ax.set(xlabel="false positive rate", ylabel="true positive rate", title=f"ROC ({level})")
        ax.legend(loc="lower right", title="held out")
    fig.tight_layout()
    with atomic_path(out_dir / FIGURE_FILE) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)


TITLES = {
    "leave_one_group_out": "Leave one group out",
    "cross_dataset": "Cross-dataset",
    "leave_one_dataset_out": "Leave one dataset out",
}


def write_report(
    out_dir: Path,
    kind: str,
    name: str,
    params: Params,
    command: str,
    folds: pd.DataFrame,
    pooled: pd.DataFrame,
    summary: dict[str, float],
    curves: Curves,
    candidates: pd.DataFrame | None = None,
) -> None:
    """`report.md` and `roc.png` in `out_dir`."""
    plot_curves(out_dir, curves)
    nested = _nested_section(candidates)
    fold_view = pd.DataFrame(
        {
            "test" if kind == "cross_dataset" else "held out": folds["fold"],
            "train faces / videos": pair(folds, "train_faces", "train_videos"),
            "test faces / videos": pair(folds, "test_faces", "test_videos"),
            "kept out": folds["excluded_faces"],
            "epochs": folds["epochs"],
            "recipe (val frame AUC)": [
                f"{r} ({fmt(v)})"
                for r, v in zip(folds["recipe"], folds["val_frame_auc"], strict=True)
            ],
            "frame AUC [95% CI]": intervals(folds, "frame_auc"),
            "video AUC [95% CI]": intervals(folds, "video_auc"),
            "video EER": folds["video_eer"],
            "video accuracy": folds["video_accuracy"],
        }
    )
    breakdown_view = pooled.assign(**{"AUC [95% CI]": intervals(pooled, "auc")})[
        ["level", "scope", "name", "n", "n_fake", "AUC [95% CI]", "eer", "accuracy"]
    ]
    spread = f"std {fmt(summary['std_video_auc'])}, min {fmt(summary['min_video_auc'])}"
    settings = pd.DataFrame(list(recipe(params).items()), columns=["setting", "value"])
    title = TITLES.get(kind, kind)
    pooled_tag = "" if "mean_heldout_dataset_frame_auc" in summary else " (headline)"
    pooled_frame = intervals(summary, "pooled_frame_auc")
    text = f"""# {title}: `{name}`

Made by:

```
{command}
```

One MLflow run in experiment `{studies_of(params).experiment}` (nested runs per fold); its id,
the time taken and the machine are in `{name}.run.json` beside this folder.

## Summary

| measure | value |
|---|---|
{_held_out_rows(summary)}| **pooled frame AUC [95% CI]**{pooled_tag} | **{pooled_frame}** |
| pooled video AUC [95% CI] | {intervals(summary, "pooled_video_auc")} |
| folds | {summary["folds"]} |
| mean frame AUC over folds | {fmt(summary["mean_frame_auc"])} |
| mean video AUC over folds | {fmt(summary["mean_video_auc"])} ({spread}) |

The headline is frame-level: every test frame scored by the model that never saw its person,
pooled over folds. Video-level numbers rest on a few videos per fold and move in large steps.

Intervals are 95% percentile bootstrap intervals ({params.evaluate.bootstrap} resamples of whole
videos, stratified by label; frame-level ones too, since frames of one video are not
independent). Pooled rows put together every test item scored by the model that did not see
its group. With few test videos per fold an interval is wide: read it, not only the point. A
fold that separates its few videos perfectly gets the interval [1, 1], since every resample of
them is separated too, although four videos leave much uncertain: the pooled interval over all
folds is the one to read.
Calibration and threshold are fitted on each fold's validation data, never on its test data.
{_validation_note(params, kind)}{nested}
## Per fold

"Kept out" counts faces that neither trained nor validated the model because they carry the
held-out identity (for example a fake with that actor's face swapped in) or the validation one.

{markdown_table(fold_view)}

## Per dataset and per forgery method (pooled)

A method's row compares that method's fakes with the real items of the same dataset.

{markdown_table(breakdown_view)}

![ROC per fold]({FIGURE_FILE})

## Recipe

{markdown_table(settings)}
"""
    write_text(out_dir / STUDY_REPORT, text)


def _held_out_rows(summary: dict[str, float]) -> str:
    """A leave-one-dataset-out study's headline: each held-out set's frame AUC, their means."""
    if "mean_heldout_dataset_frame_auc" not in summary:
        return ""
    rows = [
        f"| **mean frame AUC over held-out datasets** (headline) | "
        f"**{fmt(summary['mean_heldout_dataset_frame_auc'])}** |",
        f"| mean frame AUC over held-out forgery methods | "
        f"{fmt(summary['mean_heldout_method_frame_auc'])} |",
    ]
    for key in summary:
        if key.startswith("heldout_") and key.endswith("_frame_auc"):
            name = key[len("heldout_") : -len("_frame_auc")]
            rows.append(f"| {name} held out: frame AUC [95% CI] | {intervals(summary, key)} |")
    return "\n".join(rows) + "\n"


def _validation_note(params: Params, kind: str) -> str:
    """What validated, when it holds more than the study's own faces."""
    study = getattr(studies_of(params), kind)
    text = ""
    if kind == "leave_one_dataset_out":
        text += (
            f"Validation holds a seeded {study.val_share:g} of each training dataset's groups; "
            "the held-out dataset (or forgery method) takes no part in training, calibration, "
            "threshold or the choice of recipe.\n"
        )
    elif study.val == "extra":
        text += (
            "Validation holds the extra face sets' validation groups (`split.extra_faces`), so "
            "every group but the tested one trains.\n"
        )
    if study.val_self_blends:
        text += (
            "Validation also holds one self-blended pseudo-fake of each validation real face "
            "(a second kind of forgery, the blended paste, beside the learned swaps); a "
            "recipe's validation AUC is the mean of its AUCs against each kind of fake.\n"
        )
    return text


def _nested_section(candidates: pd.DataFrame | None) -> str:
    """How the recipe was chosen in each fold, and every candidate's numbers."""
    if candidates is None or candidates.empty or candidates["candidate"].nunique() < 2:
        return ""
    view = candidates.assign(chosen=candidates["chosen"].map({True: "yes", False: ""}))
    return f"""
## Choice of recipe (nested)

Inside each fold every candidate recipe was trained on the fold's training side and scored on
its validation data; the one with the best validation frame AUC is the fold's result. The
test person took no part in the choice. Test AUCs of the candidates not chosen are shown for
reading only.

{markdown_table(view)}
"""
