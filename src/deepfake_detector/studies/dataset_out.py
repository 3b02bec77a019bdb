"""Leave one dataset out: does the detector transfer to a forgery pipeline it never learnt from?

Each dataset of `studies.leave_one_dataset_out.datasets` (DFD actors, DFDC crops, FaceForensics++
crops) is held out in turn and tests a model trained on the others, with the real-only sets of
`split.extra_faces` (UTKFace) and the recipe's pseudo-fakes beside them. A seeded share of each
training dataset's groups validates: calibration, threshold and the nested choice of recipe
never see the held-out dataset. Within one dataset (`methods_of`, FaceForensics++), each forgery
method is also held out: a share of its groups tests that method's fakes against their reals,
and the method's fakes leave training and validation everywhere.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from deepfake_detector.core.config import CropGeometry, Params
from deepfake_detector.core.reports import StageReport
from deepfake_detector.core.study_config import StudySource, studies_of
from deepfake_detector.sources.face_sets import assign_validation
from deepfake_detector.studies.folds import Fold, FoldResult, StudyError, add_self_blends
from deepfake_detector.studies.nested import nested_study
from deepfake_detector.studies.sources import extra_faces, load_source, source_geometry

METHOD_FOLD = "{dataset}-{method}"  # a method fold's name, e.g. ffpp-Deepfakes


def dataset_tables(
    sources: tuple[StudySource, ...], params: Params, root: Path, geometry: CropGeometry
) -> dict[str, pd.DataFrame]:
    """Each dataset's faces, its names (video, group, identities) prefixed with the dataset's
    so that two sets cannot share one, and a seeded `split` of train or val by whole group."""
    tables = {}
    for source in sources:
        table = load_source(source, params, root, geometry).reset_index(drop=True)
        prefix = f"{source.name}:"

        def named(value: str, prefix: str = prefix) -> str:
            return value if value.startswith(prefix) else prefix + value

        for column in ("video_id", "group"):
            table[column] = [named(v) for v in table[column].astype(str)]
        # A swap's identities (`a;b`: the target and the face put in), each named in the set.
        table["identities"] = [
            ";".join(named(i) for i in ids.split(";"))
            for ids in table.get("identities", table["group"]).astype(str)
        ]
        table["dataset"] = source.name
        table["method"] = table["method"].fillna("").astype(str) if "method" in table else ""
        table["real_only"] = False
        table["split"] = assign_validation(
            table, studies_of(params).leave_one_dataset_out.val_share, params.train.seed
        )
        tables[source.name] = table
    return tables


def _stack(parts: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    out = pd.concat(parts, ignore_index=True)
    for column in columns:
        if column not in out:
            out[column] = ""
    return out


def dataset_folds(
    tables: dict[str, pd.DataFrame], real_only: pd.DataFrame, columns: list[str]
) -> list[Fold]:
    """One fold per dataset: it tests; every other dataset's train and val groups, and the
    real-only sets, train and validate."""
    folds = []
    for held, test in tables.items():
        others = [t for name, t in tables.items() if name != held]
        train = _stack([*(t[t["split"] == "train"] for t in others), real_only], columns)
        val = _stack([t[t["split"] == "val"] for t in others], columns)
        folds.append(Fold(held, train, val, test.assign(split="test")))
    return folds


def method_folds(
    tables: dict[str, pd.DataFrame],
    real_only: pd.DataFrame,
    columns: list[str],
    dataset: str,
    test_share: float,
    seed: int,
) -> list[Fold]:
    """One fold per forgery method of `dataset`: a seeded share of its groups tests (their reals
    and that method's fakes); its other groups train and validate without that method's fakes,
    beside every other dataset."""
    if dataset not in tables:
        raise StudyError(
            f"studies.leave_one_dataset_out.methods_of: '{dataset}' is not one of the datasets "
            f"({', '.join(tables)})"
        )
    table = tables[dataset]
    methods = sorted(set(table.loc[table["label"] == "fake", "method"]) - {""})
    if len(methods) < 2:
        raise StudyError(f"leave one method out needs two methods in '{dataset}', got {methods}")
    groups = sorted(table["group"].unique())
    order = np.random.default_rng(seed + 11).permutation(len(groups))
    tested = {groups[i] for i in order[: max(1, int(round(test_share * len(groups))))]}
    in_test = table["group"].isin(tested)
    others = [t for name, t in tables.items() if name != dataset]
    folds = []
    for method in methods:
        without = table[~in_test & (table["method"] != method)]
        test = table[in_test & ((table["label"] == "real") | (table["method"] == method))]
        train = _stack(
            [
                *(t[t["split"] == "train"] for t in others),
                without[without["split"] == "train"],
                real_only,
            ],
            columns,
        )
        val = _stack(
            [*(t[t["split"] == "val"] for t in others), without[without["split"] == "val"]], columns
        )
        name = METHOD_FOLD.format(dataset=dataset, method=method)
        test = test.assign(split="test", dataset=name)
        folds.append(Fold(name, train, val, test, int((table["method"] == method).sum())))
    return folds


def headline(results: list[FoldResult], datasets: list[str]) -> dict[str, float]:
    """Each held-out dataset's and method's frame AUC with its interval; their means."""
    out: dict[str, float] = {}
    by_kind: dict[str, list[float]] = {"dataset": [], "method": []}
    for r in results:
        frame = r.assessment.metrics["frame"]
        for key in ("auc", "auc_low", "auc_high"):
            out[f"heldout_{r.fold.name}_frame_{key}"] = float(frame[key])
        out[f"heldout_{r.fold.name}_video_auc"] = float(r.assessment.metrics["video"]["auc"])
        by_kind["dataset" if r.fold.name in datasets else "method"].append(float(frame["auc"]))
    for kind, values in by_kind.items():
        finite = [v for v in values if math.isfinite(v)]
        out[f"mean_heldout_{kind}_frame_auc"] = float(np.mean(finite)) if finite else math.nan
    return out


def leave_one_dataset_out(params: Params, root: Path = Path("."), command: str = "") -> StageReport:
    """Study: hold out each dataset (and each forgery method of one) in turn; nested recipe
    choice on the training datasets' validation groups; per held-out set frame AUC."""
    study = studies_of(params).leave_one_dataset_out
    report = StageReport("leave_one_dataset_out")
    if len(study.datasets) < 2:
        raise StudyError("studies.leave_one_dataset_out.datasets: give at least two datasets")
    geometries = {source_geometry(s, params) for s in study.datasets}
    if len(geometries) > 1:
        raise StudyError(
            "studies.leave_one_dataset_out.datasets: crops cut as "
            f"{'; '.join(sorted(map(str, geometries)))}; a model would learn the crop style: "
            "give sets cut alike"
        )
    (geometry,) = geometries
    tables = dataset_tables(study.datasets, params, root, geometry)
    for name, table in tables.items():
        report.count(f"{name}_faces", len(table))
        report.count(f"{name}_groups", table["group"].nunique())
    extra = extra_faces(params, root, geometry, report)
    # Real-only sets train beside every fold (never its test side: that is a whole dataset).
    real_only = extra[extra["real_only"] & (extra["split"] != "test")] if not extra.empty else extra
    columns = sorted(set().union(*(t.columns for t in tables.values())))
    folds = dataset_folds(tables, real_only, columns)
    if study.methods_of:
        folds += method_folds(
            tables, real_only, columns, study.methods_of, study.method_test_share, params.train.seed
        )
    if study.val_self_blends:
        folds = add_self_blends(folds, params, root, geometry, report)
    return nested_study(
        "leave_one_dataset_out",
        study.name,
        study.candidates,
        folds,
        params,
        root,
        geometry,
        command,
        report,
        headline=lambda results: headline(results, list(tables)),
    )
