"""Generalisation studies: leave-one-group-out and cross-dataset, each a report and MLflow runs.

Both train with the pipeline's recipe (`train.fit_detector`, the `train` params) and measure
with its evaluation (`evaluate.assess`: calibration and threshold fitted on validation data,
frame- and video-level metrics with 95% bootstrap intervals). Test data never shares an identity
with training data: a held-out group's real videos, the fakes made from them, and the fakes
that carry its face (a face-image pattern's `source`) all leave the training side.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from deepfake_detector.core.config import (
    Params,
)
from deepfake_detector.core.reports import StageReport
from deepfake_detector.core.study_config import studies_of
from deepfake_detector.recipes.assessment import (
    recipe_key,
)
from deepfake_detector.studies.folds import (
    Fold,
    StudyError,
    add_self_blends,
    group_folds,
    validation_split,
    with_extra,
)
from deepfake_detector.studies.nested import (
    _finish,
    fold_row,
    nested_study,
    run_facts,
    run_fold,
)
from deepfake_detector.studies.sources import (
    extra_faces,
    load_source,
    source_geometry,
)

# --- data ----------------------------------------------------------------------------------


# --- training and measuring ----------------------------------------------------------------


# --- the two studies -----------------------------------------------------------------------


def leave_one_group_out(params: Params, root: Path = Path("."), command: str = "") -> StageReport:
    """Study: for each group, train on the others and test on it; pooled and per-fold metrics."""
    study = studies_of(params).leave_one_group_out
    report = StageReport("leave_one_group_out")
    geometry = source_geometry(study.source, params)
    table = load_source(study.source, params, root, geometry)
    extra = extra_faces(params, root, geometry, report)
    if study.val == "extra" and (extra.empty or not (extra["split"] == "val").any()):
        raise StudyError(
            "studies.leave_one_group_out.val is 'extra' but no extra face set validates: give "
            "one in split.extra_faces a val_share (skipped sets and why: see the log), or use "
            "val: group"
        )
    folds = [
        with_extra(fold, extra)
        for fold in group_folds(table, study.val, study.val_share, params.train.seed)
    ]
    if study.val_self_blends:
        folds = add_self_blends(folds, params, root, geometry, report)
    return nested_study(
        "leave_one_group_out",
        study.name,
        study.candidates,
        folds,
        params,
        root,
        geometry,
        command,
        report,
    )


def cross_dataset(params: Params, root: Path = Path("."), command: str = "") -> StageReport:
    """Study: train on one source, test on each other source (never seen in training)."""
    from deepfake_detector.core.tracking import study_run

    study = studies_of(params).cross_dataset
    report = StageReport("cross_dataset")
    geometry = source_geometry(study.train, params)
    train_table = load_source(study.train, params, root, geometry)
    train, val, excluded = validation_split(
        train_table, study.val, study.val_share, params.train.seed
    )
    extra = extra_faces(params, root, geometry, report)
    tests = []
    trained_groups = set(extra["group"]) if not extra.empty else set()
    for source in study.test:
        table = load_source(source, params, root, geometry)
        if source.face_set is not None:
            seen = table["group"].isin(trained_groups)
            report.count(f"{source.name}_faces_seen_in_training_left_out", int(seen.sum()))
            table = table[~seen]
        for column in ("video_id", "group", "identities"):
            # Names from different sets must not meet (two sets may both have a video `01`).
            table[column] = source.name + ":" + table[column].astype(str)
        table["dataset"] = source.name
        tests.append(table)
        report.count(f"{source.name}_faces", len(table))
    fold = with_extra(
        Fold("+".join(s.name for s in study.test), train, val, pd.concat(tests), excluded), extra
    )
    if study.val_self_blends:
        (fold,) = add_self_blends([fold], params, root, geometry, report)
    setup = study.model_dump(mode="json")
    with study_run(
        params, root, "cross_dataset", study.name, studies_of(params).experiment, setup
    ) as run:
        result = run_fold(fold, params, geometry)
        run.log_fold(fold_row(result))
        report.count("folds")
        summary = _finish("cross_dataset", params, root, [result], command, run)
    report.run.update(run_facts([result], run.run_id))
    report.details.update({"summary": summary, "recipe_key": recipe_key(params)})
    return report.finish(root / studies_of(params).reports_dir / study.name)
