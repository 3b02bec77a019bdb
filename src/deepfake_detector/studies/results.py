"""`study_results`: every study run in MLflow as one Markdown table, failed runs included."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from deepfake_detector.core.atomic import write_text
from deepfake_detector.core.config import Params
from deepfake_detector.core.study_config import studies_of
from deepfake_detector.studies.report import fmt, markdown_table

# Recipe settings shown per run (MLflow param names) and their short headers.
SETTINGS = {
    "train.feature_layer": "feature layer",
    "train.pooled_layers": "pooled layers",
    "train.pooling": "pooling",
    "train.image_size": "size",
    "train.head": "head",
    "train.head_c": "C",
    "train.head_folds": "head folds",
    "train.synthetic_fakes": "synthetic fakes",
    "train.blend_donor": "pasted face",
    "train.blend_region": "blend region",
    "train.dataset_weighting": "dataset weighting",
    "train.fine_tune_layers": "fine-tune layers",
    "train.epochs": "epochs",
    "train.label_smoothing": "label smoothing",
    "train.augment.blur_prob": "blur p",
    "train.augment.jpeg_prob": "JPEG p",
    "train.augment.flip": "flip aug",
    "evaluate.tta_flip": "TTA flip",
}
VAL_PARAM = {
    "leave_one_group_out": "leave_one_group_out.val",
    "cross_dataset": "cross_dataset.val",
    "leave_one_dataset_out": "leave_one_dataset_out.val_share",
}


def _metric(run: pd.Series, name: str) -> float:
    value = run.get(f"metrics.{name}", math.nan)
    return float(value) if value is not None else math.nan


def _validation(run: pd.Series, study: str) -> str:
    """What validated: the study's `val`, and `+ self-blends` when they joined it."""
    val = run.get(f"params.{VAL_PARAM.get(study, '')}", "") or ""
    blends = run.get(f"params.{study}.val_self_blends", "") or ""
    return f"{val} + self-blends" if val and blends == "True" else val


def results_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per parent study run, oldest first."""
    rows = []
    for _, run in runs.iterrows():
        study = run.get("tags.study", "")
        low, high = _metric(run, "pooled_video_auc_low"), _metric(run, "pooled_video_auc_high")
        frame_low = _metric(run, "pooled_frame_auc_low")
        frame_high = _metric(run, "pooled_frame_auc_high")
        extra = run.get("params.split.extra_faces", "") or ""
        row = {
            "started (UTC)": pd.Timestamp(run["start_time"]).strftime("%Y-%m-%d %H:%M"),
            "study": study,
            "name": run.get("tags.study_name", ""),
            "status": run["status"],
            **{header: run.get(f"params.{key}", "") or "" for key, header in SETTINGS.items()},
            "extra faces": ", ".join(sorted(set(_names(extra)))) or "none",
            # Sets whose crops were cut again as MTCNN's box (`sources.recut`); none before.
            "re-cut": ", ".join(sorted(set(_recut(extra)))) or "none",
            # Sets drawn down to a number of faces (a study's own datasets first); others whole.
            "face limits": _limits(run.get(f"params.{study}.datasets", "") or "", extra),
            "candidates": ", ".join(_names(run.get(f"params.{study}.candidates", "") or "")),
            "val": _validation(run, study),
            "pooled frame AUC [95% CI]": (
                f"{fmt(_metric(run, 'pooled_frame_auc'))} [{fmt(frame_low)}, {fmt(frame_high)}]"
            ),
            "mean video AUC": _metric(run, "mean_video_auc"),
            "min video AUC": _metric(run, "min_video_auc"),
            "mean frame AUC": _metric(run, "mean_frame_auc"),
            "pooled video AUC [95% CI]": (
                f"{fmt(_metric(run, 'pooled_video_auc'))} [{fmt(low)}, {fmt(high)}]"
            ),
            "held-out datasets, mean frame AUC": _metric(run, "mean_heldout_dataset_frame_auc"),
            "held-out methods, mean frame AUC": _metric(run, "mean_heldout_method_frame_auc"),
            "run": str(run["run_id"])[:8],
        }
        rows.append(row)
    return pd.DataFrame(rows)


def _names(logged: str) -> list[str]:
    """The `name` entries of a logged list of face sets or candidates."""
    import re

    return re.findall(r"'name': '([^']+)'", logged)


def _limits(*logged: str) -> str:
    """'utkface 1000, ...': each logged face set drawn down to `limit` faces, first one named."""
    import re

    limits: dict[str, int] = {}
    for text in logged:
        for name, limit in re.findall(r"'name': '([^']+)'[^{}]*?'limit': (\d+)", text):
            limits.setdefault(name, int(limit))
    return ", ".join(f"{n} {v}" for n, v in sorted(limits.items()) if v) or "none"


def _recut(logged: str) -> list[str]:
    """The names of the logged face sets that were re-cut."""
    import re

    return [
        n
        for n, on in re.findall(r"'name': '([^']+)'[^{}]*?'recut': (True|False)", logged)
        if on == "True"
    ]


EARLIER = "<!-- earlier runs: kept as they are by study_results -->"


def write_results(params: Params, out: Path) -> int:
    """Write the table of every study run to `out`; return the number of runs."""
    from deepfake_detector.core.tracking import study_runs

    table = results_table(study_runs(params, studies_of(params).experiment))
    earlier = ""
    if out.is_file() and EARLIER in out.read_text():
        earlier = "\n" + EARLIER + out.read_text().split(EARLIER, 1)[1]
    text = f"""# Study results

Every run of the generalisation studies recorded in MLflow (experiment
`{studies_of(params).experiment}`), oldest first, failed runs included, written by

```
deepfake study_results --out {out}
```

Each row is one configuration; the columns show the settings that were varied. The pooled
frame AUC (the headline) puts every fold's test frames together, each scored by the model that
never saw its person, with a 95% bootstrap interval over whole videos; the pooled video AUC does
the same for videos. The mean and minimum are over folds (for leave-one-actor-out, each fold
tests one actor never seen in training). Where a run lists several candidates, each fold chose
one of them on its validation data (nested); the study's report says which. For
leave-one-dataset-out runs the pooled numbers mix datasets and mean little: read the mean
frame AUC over the held-out datasets and over the held-out forgery methods (each fold's own
AUC and interval are in its report).
Each run's report (tables, ROC figure, per-fold CSVs) is in its MLflow run's artifacts under
`report/`; the configured studies' reports are also in `studies/reports/<name>/`.

{markdown_table(table) if len(table) else "No study runs yet."}
{earlier}"""
    write_text(out, text)
    return len(table)
