"""The assessment recipe: calibration and operating point fitted on validation, abstention
limits, and every test number (frame and video level with intervals, per dataset, per group,
risk-coverage); what the model learnt from and how its recipe scored in the studies. One recipe
for `evaluate_model` and for every fold of the studies.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from deepfake_detector.core.artifacts import REPORT_NAME, STUDY_SUMMARY
from deepfake_detector.core.config import (
    CropGeometry,
    EvaluateParams,
    Params,
    with_geometry,
)
from deepfake_detector.inference.crop_scores import score_crop_files
from deepfake_detector.inference.inference_config import InferenceConfig
from deepfake_detector.inference.predict import Detector, ModelRef
from deepfake_detector.inference.tracks import link_tracks, video_score
from deepfake_detector.learning.abstention import (
    Abstention,
    fit_abstention,
    risk_coverage,
)
from deepfake_detector.learning.calibration import Calibration, fit_calibration
from deepfake_detector.learning.metrics import (
    expected_calibration_error,
    metrics_with_intervals,
    rates_at,
)
from deepfake_detector.sources.demographics import ATTRIBUTES, utkface_attributes

if TYPE_CHECKING:
    import keras


DESCRIPTIVE = ("dataset", "method")  # optional columns carried to frame and video scores


def frame_scores(faces: pd.DataFrame) -> pd.DataFrame:
    """A frame's score is its most suspicious face (a frame is fake if any face in it is)."""
    extra = {c: (c, "first") for c in DESCRIPTIVE if c in faces}
    return faces.groupby(["video_id", "frame_index"], as_index=False).agg(
        label=("label", "first"), group=("group", "first"), **extra, p_fake=("p_fake", "max")
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
                **{c: faces_of[c].iloc[0] for c in DESCRIPTIVE if c in faces_of},
                "p_fake": video_score(tracks),
                "tracks": len(tracks),
                "frames": faces_of["frame_index"].nunique(),
            }
        )
    extra = [c for c in DESCRIPTIVE if c in faces]
    columns = ["video_id", "label", "group", *extra, "p_fake", "tracks", "frames"]
    return pd.DataFrame(rows, columns=columns)


def json_ready(obj: Any) -> Any:
    """NaN is not JSON: write null instead."""
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {k: json_ready(v) for k, v in obj.items()}
    return obj


def uncalibrated_detector(
    model: keras.Model, params: Params, geometry: CropGeometry, source: str
) -> Detector:
    """A detector for a freshly trained model: params' settings, crops cut with `geometry`, no
    calibration yet (`assess` fits it on validation data)."""
    config = InferenceConfig(
        params.train.image_size,
        with_geometry(params.faces, geometry),
        params.frames,
        Calibration(),
        tta_flip=params.evaluate.tta_flip,
    )
    return Detector(model, config, ModelRef(source=source), params.evaluate.batch_size)


@dataclass
class Assessment:
    """Calibration fitted on val; test faces, frames and videos scored; metrics with intervals."""

    calibration: Calibration
    val: pd.DataFrame
    test: pd.DataFrame
    frames: pd.DataFrame
    videos: pd.DataFrame
    metrics: dict[str, dict]
    warnings: list[str]
    abstention: Abstention = field(default_factory=Abstention)
    risk_coverage: list[dict[str, float]] = field(default_factory=list)


def assess(
    detector: Detector,
    val: pd.DataFrame,
    test: pd.DataFrame,
    params: EvaluateParams,
    seed: int = 0,
) -> Assessment:
    """Score val and test face crops (column `path`), calibrate on val, measure on test.

    The one evaluation recipe, used by `evaluate_model` and by the generalisation studies.
    Frame-level intervals resample whole videos; video-level ones resample videos.
    """
    val, test = val.copy(), test.copy()
    val["p_raw"], val_sharp = score_crop_files(detector, list(val["path"]))
    test["p_raw"], test_sharp = score_crop_files(detector, list(test["path"]))
    val_frames = frame_scores(val.assign(p_fake=val["p_raw"]))
    calibration = fit_calibration(
        (val_frames["label"] == "fake").to_numpy(int),
        val_frames["p_fake"].to_numpy(),
        params.fixed_threshold,
        params.target_fpr,
        dataset_names(val_frames, "own").to_numpy(),
        platt_scaling=params.calibrate,
    )
    test["p_fake"] = calibration.apply(test["p_raw"].to_numpy()) if len(test) else []
    test["sharpness"] = test_sharp
    # "uncertain": limits fitted on the validation faces for the stated coverage.
    val_p = calibration.apply(val["p_raw"].to_numpy()) if len(val) else np.zeros(0)
    abstention = fit_abstention(
        val_p,
        val_sharp,
        calibration.threshold,
        params.coverage,
        params.blur_quantile,
        params.min_face_px,
        params.min_confidence,
        params.min_track_faces,
    )
    risk = risk_coverage(
        val_p,
        val_sharp,
        (test["label"] == "fake").to_numpy(int),
        test["p_fake"].to_numpy(float) if len(test) else np.zeros(0),
        test_sharp,
        calibration.threshold,
        params.blur_quantile,
    )
    frames, videos = frame_scores(test), video_scores(test)
    metrics: dict[str, dict] = {}
    warnings = []
    for level, table in {"frame": frames, "video": videos}.items():
        y = (table["label"] == "fake").to_numpy(int)
        metrics[level] = metrics_with_intervals(
            y,
            table["p_fake"].to_numpy(float),
            calibration.threshold,
            table["video_id"].to_numpy(),
            n_resamples=params.bootstrap,
            seed=seed,
        )
        metrics[level] |= at_operating_point(y, table["p_fake"].to_numpy(float), calibration)
        if metrics[level]["n_fake"] in (0, len(y)):
            warnings.append(f"{level}: test split holds one class")
    return Assessment(calibration, val, test, frames, videos, metrics, warnings, abstention, risk)


def group_rates(
    frames: pd.DataFrame, threshold: float, n_resamples: int, seed: int
) -> dict[str, Any]:
    """False-positive rate on the test side's real faces of labelled people (UTKFace's names:
    `demographics`) by age band, gender and race, each with a 95% bootstrap interval over the
    group's faces; empty when no test face is labelled."""
    reals = frames[frames["label"] == "real"]
    labels = [utkface_attributes(v) for v in reals["video_id"].astype(str)]
    known = [i for i, a in enumerate(labels) if a is not None]
    if not known:
        return {}
    called = reals["p_fake"].to_numpy(float)[known] >= threshold
    people = pd.DataFrame([labels[i] for i in known])
    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {"faces": len(known), "fpr": float(called.mean())}
    for attribute in ATTRIBUTES:
        rows = {}
        for value, where in people.groupby(attribute).indices.items():
            mine = called[where]
            draws = rng.choice(mine, (n_resamples, len(mine))).mean(axis=1) if n_resamples else []
            rows[str(value)] = {
                "n": int(len(mine)),
                "fpr": float(mine.mean()),
                "fpr_low": float(np.quantile(draws, 0.025)) if len(draws) else math.nan,
                "fpr_high": float(np.quantile(draws, 0.975)) if len(draws) else math.nan,
            }
        out[attribute] = rows
    return out


def dataset_names(table: pd.DataFrame, own: str) -> pd.Series:
    """Each row's dataset; the pipeline's own rows (no dataset) are `own`."""
    named = table.get("dataset", pd.Series("", index=table.index))
    return named.fillna("").astype(str).replace("", own)


def at_operating_point(
    y: np.ndarray, p: np.ndarray, calibration: Calibration
) -> dict[str, float | int | None]:
    """The false-positive and true-positive rates at the model's threshold, the rate it targets,
    and the expected calibration error (15 bins) of the calibrated P(fake)."""
    return {
        **rates_at(y, p, calibration.threshold),
        "target_fpr": calibration.target_fpr,
        "ece": expected_calibration_error(y, p),
    }


def by_dataset(
    frames: pd.DataFrame,
    videos: pd.DataFrame,
    calibration: Calibration,
    own: str,
    n_resamples: int,
    seed: int,
) -> dict[str, dict[str, Any]]:
    """Per dataset on the test side: frame-level AUC (95% interval over whole videos) and
    accuracy, and video-level AUC (interval over videos), where it holds both labels; and
    everywhere the false-positive and true-positive rates at the operating point and the
    calibration error."""
    datasets = dataset_names(frames, own)
    video_dataset = datasets.groupby(frames["video_id"].astype(str)).first()
    of_video = videos["video_id"].astype(str).map(video_dataset)
    out = {}
    for name, part in frames.groupby(datasets, sort=True):
        y = (part["label"] == "fake").to_numpy(int)
        p = part["p_fake"].to_numpy(float)
        row: dict[str, Any] = {"n": int(len(y)), "n_fake": int(y.sum())}
        if len(np.unique(y)) == 2:
            m = metrics_with_intervals(
                y,
                p,
                calibration.threshold,
                part["video_id"].to_numpy(),
                n_resamples=n_resamples,
                seed=seed,
            )
            row |= {k: m[k] for k in ("auc", "auc_low", "auc_high", "accuracy")}
        clips = videos[of_video == name]
        yv = (clips["label"] == "fake").to_numpy(int)
        row["n_videos"] = int(len(yv))
        if len(np.unique(yv)) == 2:
            m = metrics_with_intervals(
                yv,
                clips["p_fake"].to_numpy(float),
                calibration.threshold,
                n_resamples=n_resamples,
                seed=seed,
            )
            row |= {f"video_{k}": m[k] for k in ("auc", "auc_low", "auc_high")}
        out[str(name)] = row | at_operating_point(y, p, calibration)
    return out


def own_dataset(params: Params) -> str:
    """The name of the pipeline's own faces: demo, the imported face set's, or the manifest's."""
    on_demo = (
        params.split.faces_dir == params.paths.faces_dir
        and Path(params.download.manifest) == Path(params.paths.demo_dir) / "manifest.csv"
    )
    if on_demo:
        return "demo"
    if params.split.faces_dir == params.face_images.out_dir:
        return params.face_images.dataset
    return Path(params.download.manifest).stem


def what_it_learnt(params: Params, train: pd.DataFrame) -> dict[str, object]:
    """The training side in numbers and words: faces and groups per dataset; `demo` when the
    model learnt from the embedded demo set alone."""
    from deepfake_detector.sources.face_sets import training_summary

    own = own_dataset(params)
    on_demo = own == "demo" and params.split.faces_dir == params.paths.faces_dir
    table = train.copy()
    if params.train.synthetic_fakes == "none" and "real_only" in table:
        # Real-only sets train only beside synthetic fakes (train.training_rows).
        table = table[~table["real_only"].astype("boolean").fillna(False).astype(bool)]
    if "dataset" not in table:
        table["dataset"] = ""
    table["dataset"] = table["dataset"].fillna("").astype(str).replace("", own)
    kinds = {s.name: s.group_kind for s in params.split.extra_faces}
    if on_demo:
        kinds["demo"] = "source clip"  # a real clip and the fake made from it
    summary = training_summary(table, kinds)
    summary["demo"] = on_demo and set(table["dataset"]) == {"demo"}
    return summary


# Training fields added after runs were recorded, at the value that trains as before: left out
# of the recipe key, so that those runs' keys still name the recipe they measured.
UNCHANGED_RECIPE = {"head_folds": 1}


def recipe_key(params: Params) -> str:
    """A short hash of everything that makes a recipe: training, extra data and evaluation."""
    train = params.train.model_dump(mode="json")
    for name, value in UNCHANGED_RECIPE.items():
        if train.get(name) == value:
            del train[name]
    recipe = {
        "train": train,
        "extra_faces": [s.model_dump(mode="json") for s in params.split.extra_faces],
        "evaluate": params.evaluate.model_dump(mode="json"),
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def study_score(params: Params, root: Path) -> dict[str, object]:
    """The leave-one-group-out study's headline, and whether it measured this same recipe.

    The studies' section is read as it stands in params (its schema, `core.study_config`, is no
    part of the pipeline's code: editing a study re-runs no stage)."""
    studies = params.studies
    name = (studies.get("leave_one_group_out") or {}).get("name")
    folder = root / str(studies.get("reports_dir", "")) / str(name)
    try:
        summary = json.loads((folder / STUDY_SUMMARY).read_text())
        details = json.loads((folder / REPORT_NAME).read_text()).get("details", {})
    except (OSError, ValueError):
        return {}
    return {
        "name": name,
        "pooled_frame_auc": summary.get("pooled_frame_auc"),
        "pooled_frame_auc_low": summary.get("pooled_frame_auc_low"),
        "pooled_frame_auc_high": summary.get("pooled_frame_auc_high"),
        "folds": summary.get("folds"),
        "same_recipe": details.get("recipe_key") == recipe_key(params),
    } | transfer_score(params, root)


def transfer_score(params: Params, root: Path) -> dict[str, object]:
    """The leave-one-dataset-out study's headline (`transfer`): each held-out dataset's frame
    AUC with its interval, their mean, and whether it measured this same recipe."""
    study = params.studies.get("leave_one_dataset_out") or {}
    folder = root / str(params.studies.get("reports_dir", "")) / str(study.get("name"))
    try:
        summary = json.loads((folder / STUDY_SUMMARY).read_text())
        details = json.loads((folder / REPORT_NAME).read_text()).get("details", {})
    except (OSError, ValueError):
        return {}
    names = [str(s.get("name")) for s in study.get("datasets") or []]
    held = {
        name: [summary.get(f"heldout_{name}_frame_auc{k}") for k in ("", "_low", "_high")]
        for name in names
        if summary.get(f"heldout_{name}_frame_auc") is not None
    }
    return {
        "transfer": {
            "name": study.get("name"),
            "mean_heldout_dataset_frame_auc": summary.get("mean_heldout_dataset_frame_auc"),
            "heldout_frame_auc": held,
            "same_recipe": details.get("recipe_key") == recipe_key(params),
        }
    }


def headline_metrics(metrics: dict[str, dict]) -> dict[str, float]:
    """The headline test numbers shown with the model (app, registry)."""
    return {
        f"{level}_{name}": metrics[level][name]
        for level in ("frame", "video")
        for name in ("auc", "ap", "eer", "log_loss", "accuracy")
    }
