"""Running a study: each fold trained, calibrated and measured (nested: every candidate recipe
trained, the best on validation kept), one MLflow run per study, and the report folder.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from deepfake_detector.core.artifacts import STUDY_SUMMARY as SUMMARY_FILE
from deepfake_detector.core.atomic import atomic_path, write_json
from deepfake_detector.core.config import (
    CropGeometry,
    Params,
    with_overrides,
)
from deepfake_detector.core.reports import StageReport
from deepfake_detector.core.study_config import Candidate, studies_of
from deepfake_detector.core.study_table import STUDY_BREAKDOWN as BREAKDOWN_FILE
from deepfake_detector.core.study_table import STUDY_CANDIDATES as CANDIDATES_FILE
from deepfake_detector.core.study_table import STUDY_FOLDS as FOLDS_FILE
from deepfake_detector.core.study_table import STUDY_PREDICTIONS as PREDICTIONS_FILE
from deepfake_detector.learning.metrics import metrics_with_intervals
from deepfake_detector.recipes.assessment import (
    Assessment,
    assess,
    recipe_key,
    uncalibrated_detector,
)
from deepfake_detector.recipes.reporting import curves_of
from deepfake_detector.studies.report import write_report

if TYPE_CHECKING:
    from deepfake_detector.core.tracking import StudyRun
    from deepfake_detector.recipes.feature_head import FeatureCache
from deepfake_detector.studies.folds import (
    SELF_BLEND,
    Fold,
    FoldResult,
    check_fold,
)

log = logging.getLogger(__name__)


def run_fold(
    fold: Fold, params: Params, geometry: CropGeometry, features: FeatureCache | None = None
) -> FoldResult:
    """Train on the fold's train side, calibrate on its val side, measure on its test side;
    `features`: the study's cache of crops' base features, shared by its folds."""
    from deepfake_detector.recipes.training import fit_detector

    check_fold(fold)
    started = time.perf_counter()
    fitted = fit_detector(fold.train, fold.val, params.train, geometry=geometry, features=features)
    detector = uncalibrated_detector(fitted.model, params, geometry, f"fold {fold.name}")
    result = assess(detector, fold.val, fold.test, params.evaluate, seed=params.train.seed)
    return FoldResult(
        fold,
        result,
        len(fitted.history),
        time.perf_counter() - started,
        trained_faces=(fitted.counts or {}).get("faces", len(fold.train)),
        val_auc=validation_auc(result),
    )


def validation_auc(result: Assessment) -> float:
    """Frame-level AUC of the uncalibrated scores on the validation data: the mean, over the
    kinds of forgery there (each dataset's learned fakes against its own reals, self-blends
    against every real), so each kind counts alike however many fakes it brings."""
    from sklearn.metrics import roc_auc_score

    from deepfake_detector.recipes.assessment import frame_scores

    frames = frame_scores(result.val.assign(p_fake=result.val["p_raw"]))
    fake = (frames["label"] == "fake").to_numpy()
    if fake.all() or not fake.any():
        return math.nan
    blended = frames["video_id"].astype(str).str.startswith(SELF_BLEND + ":").to_numpy()
    dataset = (
        frames["dataset"].fillna("").astype(str).to_numpy()
        if "dataset" in frames
        else np.full(len(frames), "")
    )
    scores = frames["p_fake"].to_numpy(float)
    aucs = []
    # Each dataset's learned fakes against that dataset's reals (where it has both) ...
    for name in sorted(set(dataset[fake & ~blended])):
        reals = ~fake & (dataset == name)
        rows = (reals if reals.any() else ~fake) | (fake & ~blended & (dataset == name))
        aucs.append(float(roc_auc_score(fake[rows].astype(int), scores[rows])))
    # ... and the self-blends against every real face.
    if (fake & blended).any():
        rows = ~fake | blended
        aucs.append(float(roc_auc_score(fake[rows].astype(int), scores[rows])))
    return float(np.mean(aucs))


def run_nested(
    fold: Fold,
    params: Params,
    geometry: CropGeometry,
    candidates: tuple[Candidate, ...],
    features: FeatureCache | None = None,
) -> FoldResult:
    """Every candidate recipe trained on the fold; the one with the best validation frame AUC
    is the fold's result. The test side never takes part in the choice."""
    results = []
    for candidate in candidates:
        log.info("fold %s: candidate %s", fold.name, candidate.name)
        result = run_fold(
            fold, with_overrides(params, list(candidate.overrides)), geometry, features
        )
        result.candidate = candidate.name
        results.append(result)
    finite = [r for r in results if math.isfinite(r.val_auc)]
    chosen = max(finite, key=lambda r: r.val_auc) if finite else results[0]
    chosen.candidates = [
        {
            "fold": fold.name,
            "candidate": r.candidate,
            "chosen": r is chosen,
            "val_frame_auc": r.val_auc,
            "test_frame_auc": r.assessment.metrics["frame"]["auc"],
            "test_video_auc": r.assessment.metrics["video"]["auc"],
            "epochs": r.epochs,
            "seconds": round(r.seconds, 1),
        }
        for r in results
    ]
    return chosen


def fold_row(result: FoldResult) -> dict[str, object]:
    """One line of the folds table."""
    fold, m = result.fold, result.assessment.metrics
    row: dict[str, object] = {
        "fold": fold.name,
        "train_faces": result.trained_faces,
        "train_videos": fold.train["video_id"].nunique(),
        "val_faces": len(fold.val),
        "test_faces": len(fold.test),
        "test_videos": fold.test["video_id"].nunique(),
        "excluded_faces": fold.excluded,
        "epochs": result.epochs,
        "seconds": round(result.seconds, 1),
        "threshold": result.assessment.calibration.threshold,
        "recipe": result.candidate,
        "val_frame_auc": result.val_auc,
    }
    for level in ("frame", "video"):
        for name in ("auc", "auc_low", "auc_high", "eer", "accuracy"):
            row[f"{level}_{name}"] = m[level][name]
    return row


def breakdown(
    frames: pd.DataFrame, videos: pd.DataFrame, n_resamples: int, seed: int
) -> pd.DataFrame:
    """Metrics per dataset, and per forgery method (that method's fakes against all reals).

    Accuracy uses each row's `threshold` (the one fitted for the model that scored it).
    """
    rows = []
    for level, table in (("frame", frames), ("video", videos)):
        scopes: list[tuple[str, str, pd.DataFrame]] = [("all", "all", table)]
        for name, part in table.groupby("dataset", sort=True):
            scopes.append(("dataset", str(name), part))
        for (dataset, method), fakes in table[table["label"] == "fake"].groupby(
            ["dataset", "method"], sort=True
        ):
            reals = table[(table["label"] == "real") & (table["dataset"] == dataset)]
            scopes.append(("method", f"{dataset}/{method or 'unknown'}", pd.concat([reals, fakes])))
        for scope, name, part in scopes:
            y = (part["label"] == "fake").to_numpy(int)
            m = metrics_with_intervals(
                y,
                part["p_fake"].to_numpy(float),
                part["threshold"].to_numpy(float),
                part["video_id"].to_numpy(),
                n_resamples=n_resamples,
                seed=seed,
            )
            rows.append(
                {
                    "level": level,
                    "scope": scope,
                    "name": name,
                    "n": m["n"],
                    "n_fake": m["n_fake"],
                    **{k: m[k] for k in ("auc", "auc_low", "auc_high", "eer", "accuracy")},
                }
            )
    return pd.DataFrame(rows)


def _finite_mean(values: list[float]) -> float:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan


def _write_tables(out_dir: Path, tables: dict[str, pd.DataFrame]) -> None:
    for name, table in tables.items():
        with atomic_path(out_dir / name) as tmp:
            table.to_csv(tmp, index=False)


def _finish(
    kind: str,
    params: Params,
    root: Path,
    results: list[FoldResult],
    command: str,
    run: StudyRun,
    headline: dict[str, float] | None = None,
) -> dict[str, float]:
    """Pool the folds, write the report folder, log the summary (with a study's own
    `headline` numbers) and report to MLflow."""
    name = run.tags["study_name"]
    out_dir = root / studies_of(params).reports_dir / name
    folds = pd.DataFrame([fold_row(r) for r in results])

    def pooled_of(level: str) -> pd.DataFrame:
        return pd.concat(
            [
                getattr(r.assessment, level).assign(
                    fold=r.fold.name, threshold=r.assessment.calibration.threshold
                )
                for r in results
            ],
            ignore_index=True,
        )

    videos, frames = pooled_of("videos"), pooled_of("frames")
    n, seed = params.evaluate.bootstrap, params.train.seed
    # Pooled out-of-fold scores: each test item scored by the model that never saw its group.
    pooled = breakdown(frames, videos, n, seed)
    summary: dict[str, float] = {"folds": len(results)}
    for level in ("frame", "video"):
        row = pooled[(pooled["level"] == level) & (pooled["scope"] == "all")].iloc[0]
        for key in ("auc", "auc_low", "auc_high"):
            summary[f"pooled_{level}_{key}"] = float(row[key])
    summary |= {
        "mean_frame_auc": _finite_mean(list(folds["frame_auc"])),
        "mean_video_auc": _finite_mean(list(folds["video_auc"])),
        "std_video_auc": float(np.nanstd(folds["video_auc"].astype(float))),
        "min_video_auc": float(np.nanmin(folds["video_auc"].astype(float))),
    }
    summary |= headline or {}
    # Durations are the run's, not the data's: they go to the run log (`run_facts`), not here.
    candidates = pd.DataFrame([c for r in results for c in (r.candidates or [])])
    candidates = candidates.drop(columns=["seconds"], errors="ignore")
    _write_tables(
        out_dir,
        {
            FOLDS_FILE: folds.drop(columns=["seconds"]),
            BREAKDOWN_FILE: pooled,
            PREDICTIONS_FILE: videos,
            CANDIDATES_FILE: candidates,
        },
    )
    curves = {
        r.fold.name: (curves_of(r.assessment.videos), curves_of(r.assessment.frames))
        for r in results
    }
    write_json(out_dir / SUMMARY_FILE, {k: _json(v) for k, v in summary.items()})
    write_report(out_dir, kind, name, params, command, folds, pooled, summary, curves, candidates)
    run.log_summary(summary, out_dir)
    return summary


def run_facts(results: list[FoldResult], run_id: str) -> dict[str, object]:
    """What belongs to this run of a study, not to its inputs: the MLflow run, each fold's time."""
    return {
        "mlflow_run_id": run_id,
        "fold_seconds": {r.fold.name: round(r.seconds, 1) for r in results},
        "candidate_seconds": {
            f"{c['fold']}:{c['candidate']}": c["seconds"]
            for r in results
            for c in r.candidates or []
        },
    }


def _json(value: float | int) -> float | int | None:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def nested_study(
    kind: str,
    name: str,
    candidates: tuple[Candidate, ...],
    folds: list[Fold],
    params: Params,
    root: Path,
    geometry: CropGeometry,
    command: str,
    report: StageReport,
    headline: Callable[[list[FoldResult]], dict[str, float]] | None = None,
) -> StageReport:
    """Run every fold nested (each candidate trained, the best on validation kept) in one
    MLflow study run; write the report folder with the study's own `headline` numbers; the
    stage report names the recipe most folds chose."""
    from deepfake_detector.core.tracking import study_run
    from deepfake_detector.recipes.feature_head import FeatureCache

    results: list[FoldResult] = []
    features = FeatureCache()  # every fold and candidate reads the same crops' features
    studies = studies_of(params)
    setup = getattr(studies, kind).model_dump(mode="json")
    with study_run(params, root, kind, name, studies.experiment, setup) as run:
        for fold in folds:
            log.info("%s: fold %s (%d test faces)", kind, fold.name, len(fold.test))
            results.append(run_nested(fold, params, geometry, candidates, features))
            run.log_fold(fold_row(results[-1]))
            report.count("folds")
        extra = headline(results) if headline else None
        summary = _finish(kind, params, root, results, command, run, extra)
    chosen = chosen_recipe(results, candidates)
    report.run.update(run_facts(results, run.run_id))
    report.details.update(
        {
            "summary": summary,
            "chosen_recipe": chosen.name,
            "recipe_key": recipe_key(with_overrides(params, list(chosen.overrides))),
        }
    )
    return report.finish(root / studies_of(params).reports_dir / name)


def chosen_recipe(results: list[FoldResult], candidates: tuple[Candidate, ...]) -> Candidate:
    """The candidate most folds chose on their validation data (ties: the first listed): the
    recipe the study supports as the default."""
    votes = [r.candidate for r in results]
    return max(candidates, key=lambda c: (votes.count(c.name), -candidates.index(c)))
