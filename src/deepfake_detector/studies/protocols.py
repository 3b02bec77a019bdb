"""Generalisation studies: leave-one-group-out and cross-dataset, each a report and MLflow runs.

Both train with the pipeline's recipe (`train.fit_detector`, the `train` params) and measure
with its evaluation (`evaluate.assess`: calibration and threshold fitted on validation data,
frame- and video-level metrics with 95% bootstrap intervals). Test data never shares an identity
with training data: a held-out group's real videos, the fakes made from them, and the fakes
that carry its face (a face-image pattern's `source`) all leave the training side.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from deepfake_detector.core.artifacts import FACES_INDEX
from deepfake_detector.core.artifacts import STUDY_SUMMARY as SUMMARY_FILE
from deepfake_detector.core.atomic import atomic_path, write_json
from deepfake_detector.core.config import (
    CropGeometry,
    FaceSetParams,
    Params,
    crop_geometry,
    with_geometry,
    with_overrides,
)
from deepfake_detector.core.dag import stage
from deepfake_detector.core.errors import UserError
from deepfake_detector.core.reports import StageReport
from deepfake_detector.core.study_config import Candidate, StudySource, studies_of
from deepfake_detector.core.study_table import STUDY_BREAKDOWN as BREAKDOWN_FILE
from deepfake_detector.core.study_table import STUDY_CANDIDATES as CANDIDATES_FILE
from deepfake_detector.core.study_table import STUDY_FOLDS as FOLDS_FILE
from deepfake_detector.core.study_table import STUDY_PREDICTIONS as PREDICTIONS_FILE
from deepfake_detector.core.study_table import VIDEO_STAGES
from deepfake_detector.learning.metrics import metrics_with_intervals
from deepfake_detector.recipes.assessment import (
    Assessment,
    assess,
    recipe_key,
    uncalibrated_detector,
)
from deepfake_detector.recipes.reporting import curves_of
from deepfake_detector.sources.face_images import read_faces_table
from deepfake_detector.sources.manifest import read_manifest
from deepfake_detector.studies.report import write_report

if TYPE_CHECKING:
    from deepfake_detector.core.tracking import StudyRun
    from deepfake_detector.recipes.training import FeatureCache

log = logging.getLogger(__name__)


class StudyError(UserError, ValueError):
    """The data cannot support the study as configured."""


@dataclass
class Fold:
    """One train/validation/test partition of a study."""

    name: str
    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame
    excluded: int = 0  # faces kept out of training because they carry a held-out identity


@dataclass
class FoldResult:
    """A fold's assessment and training facts; `candidate` is the recipe chosen on validation."""

    fold: Fold
    assessment: Assessment
    epochs: int
    seconds: float
    trained_faces: int = 0  # what training showed (real-only faces left out, pseudo-fakes in)
    candidate: str = "default"
    val_auc: float = math.nan  # frame-level AUC on the fold's validation data (the choice)
    candidates: list[dict[str, object]] | None = None  # every candidate's val and test AUC


# --- data ----------------------------------------------------------------------------------


def _carries(table: pd.DataFrame, groups: set[str]) -> pd.Series:
    """Rows whose identities (group, and source of a swapped face) meet `groups`."""
    return table["identities"].str.split(";").map(lambda ids: bool(set(ids) & groups))


def validation_split(
    table: pd.DataFrame, mode: str, share: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Split training rows into (train, val, excluded): by whole group, or by whole video.

    `group`: the seeded-first group goes to validation, and rows carrying it leave training.
    `video`: a seeded share of each label's videos goes to validation.
    `extra`: nothing: the extra face sets' validation groups validate (`with_extra`).
    """
    rng = np.random.default_rng(seed)
    if mode == "extra":  # validation comes from the extra face sets: every group trains
        return table, table.iloc[0:0], 0
    if mode == "group":
        groups = sorted(table["group"].unique())
        if len(groups) < 2:
            raise StudyError(f"validation by group needs two training groups, got {groups}")
        held = groups[int(rng.integers(len(groups)))]
        val = table[table["group"] == held]
        rest = table[table["group"] != held]
        carries = _carries(rest, {held})
        return rest[~carries], val, int(carries.sum())
    val_ids: list[str] = []
    for _, videos in table.groupby("label")["video_id"]:
        ids = sorted(videos.unique())
        n = max(1, round(share * len(ids)))
        val_ids += list(rng.choice(ids, size=min(n, len(ids) - 1), replace=False))
    val_mask = table["video_id"].isin(val_ids)
    return table[~val_mask], table[val_mask], 0


def group_folds(table: pd.DataFrame, val_mode: str, val_share: float, seed: int) -> list[Fold]:
    """One fold per group: that group is the test set; nothing carrying it is trained on."""
    groups = sorted(table["group"].unique())
    if len(groups) < 3:
        raise StudyError(f"leave-one-group-out needs at least 3 groups, got {groups}")
    folds = []
    for group in groups:
        test = table[table["group"] == group]
        rest = table[table["group"] != group]
        carries = _carries(rest, {group})
        train, val, dropped = validation_split(rest[~carries], val_mode, val_share, seed)
        folds.append(Fold(group, train, val, test, int(carries.sum()) + dropped))
    return folds


def check_fold(fold: Fold) -> None:
    """No video or identity of the test set is on the training or validation side."""
    if fold.test.empty:
        raise StudyError(f"fold {fold.name}: empty test set")
    for side, frame in (("train", fold.train), ("val", fold.val)):
        shared = set(frame["video_id"]) & set(fold.test["video_id"])
        if shared:
            raise StudyError(f"fold {fold.name}: videos in {side} and test: {sorted(shared)[:5]}")
        leaked = _carries(frame, set(fold.test["group"]))
        if leaked.any():
            raise StudyError(f"fold {fold.name}: {side} carries a test identity")
    for side, frame in (("train", fold.train), ("val", fold.val)):
        if set(frame["label"]) != {"real", "fake"}:
            raise StudyError(f"fold {fold.name}: {side} holds only {sorted(set(frame['label']))}")


def with_extra(fold: Fold, extra: pd.DataFrame) -> Fold:
    """The fold with the extra face sets' train groups added to training and their validation
    groups to validation (they hold none of the study's groups, so the test side stays clean)."""
    if extra.empty:
        return fold
    columns = list(fold.train.columns)
    train = pd.concat([fold.train, extra[extra["split"] == "train"]], ignore_index=True)
    val = pd.concat([fold.val, extra[extra["split"] == "val"]], ignore_index=True)
    for frame in (train, val):
        for column in columns:
            if column not in frame:
                frame[column] = ""
    return Fold(fold.name, train, val, fold.test, fold.excluded)


SELF_BLEND = "self_blend"  # method and video-id prefix of the validation's pseudo-fakes


def self_blend_rows(
    reals: pd.DataFrame, params: Params, root: Path, geometry: CropGeometry
) -> pd.DataFrame:
    """One self-blended pseudo-fake of each real face in `reals`, written once (PNG, seeded) to
    the study's work folder, as faces-table rows: a second kind of forgery for validation, the
    blended paste, beside the extra sets' learned swaps. Same person, group and video as its
    source, so no identity leaves its side."""
    from PIL import Image

    from deepfake_detector.learning.input_pipeline import face_dataset
    from deepfake_detector.recipes.training import face_ellipses
    from deepfake_detector.sources.images import read_image

    if reals.empty:
        return reals
    size = params.train.image_size
    reals = reals.drop_duplicates("path").sort_values("path", key=lambda p: p.astype(str))
    # Each image's draws follow its place in this list: the folder is named by the whole list.
    listing = "\n".join(str(p) for p in reals["path"]).encode()
    out_dir = (
        root
        / studies_of(params).work_dir
        / "self_blends"
        / f"{hashlib.sha256(listing).hexdigest()[:16]}_{size}px"
    )
    names = [f"{i:06d}.png" for i in range(len(reals))]
    if not all((out_dir / name).is_file() for name in names):
        out_dir.mkdir(parents=True, exist_ok=True)
        ds = face_dataset(
            list(reals["path"]),
            np.ones(len(reals), "float32"),
            size,
            64,
            read=read_image,
            blend=np.ones(len(reals), bool),
            ellipses=face_ellipses(reals, geometry),
        )
        images = np.concatenate([x.numpy() for x, _ in ds])
        for i, image in enumerate(images):
            with atomic_path(out_dir / names[i]) as tmp:
                Image.fromarray(np.clip(np.rint(image), 0, 255).astype(np.uint8)).save(
                    tmp, format="PNG"
                )
    fakes = reals.assign(
        path=[out_dir / name for name in names],
        label="fake",
        y=1.0,
        method=SELF_BLEND,
        video_id=SELF_BLEND + ":" + reals["video_id"].astype(str),
    )
    if "file" in fakes:
        fakes["file"] = [str(p) for p in fakes["path"]]
    return fakes


def add_self_blends(
    folds: list[Fold], params: Params, root: Path, geometry: CropGeometry, report: StageReport
) -> list[Fold]:
    """Each fold with a pseudo-fake of every validation real face beside it in validation."""
    reals = pd.concat([f.val[f.val["label"] == "real"] for f in folds], ignore_index=True)
    blends = self_blend_rows(reals, params, root, geometry)
    report.count("validation_self_blends", len(blends))
    return [with_self_blends(fold, blends) for fold in folds]


def with_self_blends(fold: Fold, blends: pd.DataFrame) -> Fold:
    """The fold with the pseudo-fakes of its validation reals added to validation."""
    if blends.empty:
        return fold
    mine = blends[blends["video_id"].isin(SELF_BLEND + ":" + fold.val["video_id"].astype(str))]
    val = pd.concat([fold.val, mine], ignore_index=True)
    return Fold(fold.name, fold.train, val, fold.test, fold.excluded)


def extra_faces(
    params: Params, root: Path, geometry: CropGeometry, report: StageReport
) -> pd.DataFrame:
    """The extra face sets (`split.extra_faces`) as study rows (re-cut as the pipeline's split
    re-cuts them), or an empty table."""
    from deepfake_detector.sources.face_sets import face_sets_table
    from deepfake_detector.sources.recut import Recutter

    return face_sets_table(
        params.split.extra_faces,
        root,
        params.split.seed,
        geometry,
        report,
        Recutter.from_params(params, root),
    )


def load_source(
    source: StudySource, params: Params, root: Path, geometry: CropGeometry
) -> pd.DataFrame:
    """A source's faces table; a video manifest is run through download, frames and faces
    (cut with `geometry`); a face set's crops are re-cut when it says so."""
    if source.face_set is not None:
        return face_set_source(source.face_set, params, root)
    if source.faces is not None:
        path = root / source.faces
        if not path.is_file():
            raise StudyError(f"source '{source.name}': no faces table {path}; run import_faces")
        table = read_faces_table(path)
    else:
        if source.manifest is None:
            raise StudyError(f"source '{source.name}': give faces, manifest or face_set")
        table = read_faces_table(_faces_from_videos(source, params, root, geometry))
        methods = {
            r.video_id: r.method or ""
            for r in read_manifest(root / source.manifest, StageReport("manifest"))
        }
        table["method"] = table["video_id"].map(methods).fillna("")
    table["dataset"] = [d or source.name for d in table["dataset"]]
    return table


def _faces_from_videos(
    source: StudySource, params: Params, root: Path, geometry: CropGeometry
) -> Path:
    """Run the per-video stages on a manifest, in the study's own working folders."""
    work = studies_of(params).work_dir / "sources" / source.name
    paths = params.paths.model_copy(
        update={
            "videos_dir": work / "videos",
            "frames_dir": work / "frames",
            "faces_dir": work / f"faces_{geometry.shape}_margin{geometry.margin:g}",
        }
    )
    derived = params.model_copy(
        update={
            "paths": paths,
            "download": params.download.model_copy(update={"manifest": source.manifest}),
            "faces": with_geometry(params.faces, geometry),
        }
    )
    for name in VIDEO_STAGES:  # through the table: the study table declares it `runs` them
        stage(name).function()(derived, root)
    return root / paths.faces_dir / FACES_INDEX


def face_set_source(face_set: FaceSetParams, params: Params, root: Path) -> pd.DataFrame:
    """A face set as a study source: its sampled crops (re-cut when the set says so), each
    with its own one-frame video unless the set names videos."""
    from deepfake_detector.sources.face_sets import read_face_set, sample_groups
    from deepfake_detector.sources.recut import Recutter, recut_table

    seed = params.split.seed
    try:
        table = read_face_set(face_set, root)
    except UserError as exc:
        raise StudyError(str(exc)) from exc
    # Drawn in another order than `split.extra_faces` draws (seed + 7), so that a set used
    # for both shares few groups; shared ones leave the test side (`cross_dataset`).
    table = sample_groups(table, face_set.limit, seed + 7).reset_index(drop=True)
    if face_set.recut:
        report = StageReport(f"recut {face_set.name}")
        table = recut_table(table, Recutter.from_params(params, root), face_set.margin, report)
        table = table.reset_index(drop=True)
        if report.skipped:
            log.warning(
                "source '%s': %d crops without a face left out", face_set.name, len(report.skipped)
            )
    table["split"] = ""
    return table


def source_geometry(source: StudySource, params: Params) -> CropGeometry:
    """How a source's crops frame the face (test videos are cropped the same way)."""
    if source.face_set is not None:
        from deepfake_detector.sources.face_sets import face_set_geometry

        return face_set_geometry(source.face_set)
    if source.faces is not None:
        return crop_geometry(params, Path(source.faces).parent)
    return CropGeometry(params.faces.shape, params.faces.margin)


# --- training and measuring ----------------------------------------------------------------


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
    from deepfake_detector.recipes.training import FeatureCache

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
