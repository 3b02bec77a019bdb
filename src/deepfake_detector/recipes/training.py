"""The training recipe: MobileNetV2 features, a logistic head (or gradient descent), optional
fine-tuning of the top layers; real fakes beside self-blended pseudo-fakes; seeded. One recipe
for `train_model` and for every fold of the studies.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from deepfake_detector.core.config import CropGeometry, TrainParams
from deepfake_detector.learning.input_pipeline import face_dataset
from deepfake_detector.learning.model import build_model, unfreeze_top
from deepfake_detector.recipes.feature_head import FeatureCache, fit_logistic_head
from deepfake_detector.sources.images import read_image

if TYPE_CHECKING:
    import keras
    import tensorflow as tf


log = logging.getLogger(__name__)

TIGHT = CropGeometry("box", 0.0)  # a crop that is the face box (imported crops)
FEATURE_HEADS = ("logistic", "mlp")  # heads fitted on the frozen base's features, not by Keras


def class_weights(y: np.ndarray) -> dict[int, float]:
    """Weights that make both classes count equally in the loss (n / (2 * n_class))."""
    counts = np.bincount(y.astype(int), minlength=2)
    if counts.min() == 0:
        raise ValueError(
            f"training split holds one class only (real={counts[0]}, fake={counts[1]})"
        )
    return {c: float(len(y) / (2 * counts[c])) for c in (0, 1)}


@dataclass
class TrainingRows:
    """What one epoch shows the model: files, labels, which rows become self-blended fakes."""

    files: list[Path]
    y: np.ndarray
    blend: np.ndarray
    ellipses: np.ndarray
    counts: dict[str, int]
    donors: list[str] = field(default_factory=list)  # per row: the face pasted in ("": itself)
    donor_ellipses: np.ndarray | None = None
    weights: np.ndarray | None = None  # per row, for the logistic head (`dataset_weighting`)

    def blending(self) -> dict[str, Any]:
        """`face_dataset`'s keyword arguments that make the pseudo-fakes."""
        return {
            "blend": self.blend,
            "ellipses": self.ellipses,
            "donors": self.donors or None,
            "donor_ellipses": self.donor_ellipses,
        }


def face_ellipses(rows: pd.DataFrame, geometry: CropGeometry) -> np.ndarray:
    """The face ellipse of each crop: from its landmarks and box (`x`, `box_y`, `w`, `h`: the
    label holds `y`) when known, else the margin's."""
    from deepfake_detector.learning.synthetic import ellipse_from_landmarks, margin_ellipse
    from deepfake_detector.sources.face_detection import crop_box

    margin = geometry.margin
    if not {"landmarks", "x", "box_y", "w", "h"} <= set(rows.columns):
        return np.tile(np.array(margin_ellipse(margin), "float32"), (len(rows), 1))
    out = [
        ellipse_from_landmarks(
            str(r.landmarks),
            crop_box((r.x, r.box_y, r.w, r.h), margin, 0, 0, geometry.shape),
            margin,
        )
        if isinstance(r.landmarks, str) and r.landmarks
        else margin_ellipse(margin)
        for r in rows.itertuples()
    ]
    return np.array(out, "float32").reshape(len(rows), 4)


def training_rows(
    train: pd.DataFrame, cfg: TrainParams, geometry: CropGeometry = TIGHT
) -> TrainingRows:
    """The training side after `train.synthetic_fakes`: real-only sources (column `real_only`)
    join only beside pseudo-fakes; `sbi` trains on real faces and their self-blends alone;
    `mix` adds the self-blends to the real fakes. A seeded `synthetic_share` of the real faces
    gives one pseudo-fake each (a new blend every epoch)."""
    rows = train.copy()
    counts: dict[str, int] = {}
    real_only = rows["real_only"].fillna(False).astype(bool) if "real_only" in rows else None
    if cfg.synthetic_fakes == "none" and real_only is not None and real_only.any():
        counts["real_only_faces_left_out"] = int(real_only.sum())
        log.info(
            "train: %d faces of real-only sets left out (they join only beside synthetic fakes)",
            int(real_only.sum()),
        )
        rows = rows[~real_only]
    if cfg.synthetic_fakes == "sbi":
        counts["real_fakes_left_out"] = int((rows["y"] == 1).sum())
        rows = rows[rows["y"] == 0]
    rows = rows.assign(blend=False)
    if cfg.synthetic_fakes != "none":
        reals = rows[rows["y"] == 0]
        rng = np.random.default_rng(cfg.seed)
        n = int(round(cfg.synthetic_share * len(reals)))
        chosen = reals.iloc[np.sort(rng.choice(len(reals), size=n, replace=False))]
        donors = donor_rows(reals, chosen, cfg.blend_donor, rng)
        has_donor = donors["path"].notna().to_numpy()
        donor = donors["path"].where(has_donor, "").astype(str).to_numpy()
        chosen = chosen.assign(y=np.float32(1.0), blend=True, donor=donor)
        rows = pd.concat([rows.assign(donor=""), chosen], ignore_index=True)
        counts["synthetic_fakes"] = n
        counts["synthetic_fakes_other_face"] = int(has_donor.sum())
    else:
        rows = rows.assign(donor="")
        has_donor = np.zeros(0, bool)
    counts["faces"] = len(rows)
    ellipses = face_ellipses(rows, geometry)
    donor_ellipses = ellipses.copy()  # rows without a donor: their own ellipse (unused)
    if has_donor.any():
        at = len(rows) - len(has_donor) + np.flatnonzero(has_donor)
        donor_ellipses[at] = face_ellipses(donors[has_donor], geometry)
    if cfg.synthetic_fakes != "none" and cfg.blend_region != "face":
        counts["synthetic_fakes_part"] = place_on_parts(
            ellipses, rows, cfg.blend_region, np.random.default_rng(cfg.seed + 2)
        )
    return TrainingRows(
        list(rows["path"]),
        rows["y"].to_numpy("float32"),
        rows["blend"].to_numpy(bool),
        ellipses,
        counts,
        [str(d) for d in rows["donor"]],
        donor_ellipses,
        weights=row_weights(rows) if cfg.dataset_weighting == "equal" else None,
    )


def place_on_parts(
    ellipses: np.ndarray, rows: pd.DataFrame, region: str, rng: np.random.Generator
) -> int:
    """Narrow the mask of self-blends (blended rows without a donor) to one facial part each
    (`synthetic.PARTS`, drawn seeded): all of them (`parts`) or every second (`both`).
    Changes `ellipses` in place; returns how many were narrowed."""
    from deepfake_detector.learning.synthetic import PARTS, part_ellipse

    own = np.flatnonzero(
        rows["blend"].to_numpy(bool) & (rows["donor"].astype(str) == "").to_numpy()
    )
    if region == "both":
        own = np.sort(rng.permutation(own)[: len(own) // 2])
    names = sorted(PARTS)
    for i, pick in zip(own, rng.integers(0, len(names), size=len(own)), strict=True):
        ellipses[i] = part_ellipse(ellipses[i], names[int(pick)])
    return int(len(own))


def row_weights(rows: pd.DataFrame) -> np.ndarray:
    """Each (dataset, label) cell weighs alike, and inside a cell each video alike (a set that
    cuts two crops of a real video and one of a fake does not tilt the head); mean 1."""
    dataset = (
        rows["dataset"].fillna("").astype(str)
        if "dataset" in rows
        else pd.Series("", index=rows.index)
    )
    video = (
        rows["video_id"].astype(str)
        if "video_id" in rows
        else pd.Series(range(len(rows)), index=rows.index).astype(str)
    )
    cell = dataset + "|" + rows["y"].astype(int).astype(str)
    per_video = video.groupby([cell, video]).transform("size").to_numpy(float)
    videos_in_cell = video.groupby(cell).transform("nunique").to_numpy(float)
    weights = 1.0 / (per_video * videos_in_cell)
    return weights / weights.mean()


def donor_rows(
    reals: pd.DataFrame, chosen: pd.DataFrame, mode: str, rng: np.random.Generator
) -> pd.DataFrame:
    """For each chosen real face, the real face of another person pasted into it (`blend_donor`
    other: every one; both: every second, in a seeded order), or a row of NaN (itself). A donor
    comes from another group (identity) when the table names groups."""
    out = pd.DataFrame(np.nan, index=range(len(chosen)), columns=reals.columns).astype(object)
    if mode == "self" or chosen.empty:
        return out
    takes = np.ones(len(chosen), bool)
    if mode == "both":
        takes = np.zeros(len(chosen), bool)
        takes[rng.permutation(len(chosen))[: len(chosen) // 2]] = True
    groups = reals["group"].astype(str).to_numpy() if "group" in reals else None
    picks = rng.integers(0, len(reals), size=len(chosen))
    for i in np.flatnonzero(takes):
        j = int(picks[i])
        if groups is not None:
            own = str(chosen["group"].iloc[i])
            others = np.flatnonzero(groups != own)
            if others.size == 0:
                continue  # one person only: this one blends with itself
            j = int(others[picks[i] % others.size])
        out.iloc[i] = reals.iloc[j].astype(object)
    return out


@dataclass
class Fitted:
    """A trained detector and its per-epoch history."""

    model: keras.Model
    history: pd.DataFrame
    class_weights: dict[int, float]
    devices: tuple[str, ...] = ()  # the devices training ran on (one replica each)
    counts: dict[str, int] | None = None  # what training showed (faces, synthetic fakes, ...)


def training_strategy(devices: list[str] | None = None) -> tf.distribute.Strategy:
    """Where training runs: mirrored over several devices when there are several, else one.

    By default the devices are the visible GPUs: with two or more, `MirroredStrategy` keeps a
    replica of the model on each and splits every batch between them (`train.batch_size` is the
    global batch); with one GPU, or none (this CPU), TensorFlow's default strategy runs as before.
    """
    import tensorflow as tf

    if devices is None:
        devices = [d.name for d in tf.config.list_logical_devices("GPU")]
    if len(devices) > 1:
        return tf.distribute.MirroredStrategy(devices)
    return tf.distribute.get_strategy()


def strategy_devices(strategy: tf.distribute.Strategy) -> tuple[str, ...]:
    """The device of each replica, for reports."""
    import tensorflow as tf

    if strategy.num_replicas_in_sync > 1:
        return tuple(strategy.extended.worker_devices)
    gpus = tf.config.list_logical_devices("GPU")
    return (gpus[0].name if gpus else "/device:CPU:0",)


def fit_detector(
    train: pd.DataFrame,
    val: pd.DataFrame,
    cfg: TrainParams,
    strategy: tf.distribute.Strategy | None = None,
    geometry: CropGeometry = TIGHT,
    features: FeatureCache | None = None,
) -> Fitted:
    """Train on `train` (columns path, y), early-stopping on `val`: head first, then the top.

    The one training recipe, used by `train_model` and by the generalisation studies. The model
    is built and compiled in `strategy`'s scope (`training_strategy()` unless given).
    `geometry` is the one the crops were cut with (it places the face for self-blended fakes).
    """
    strategy = strategy or training_strategy()
    with strategy.scope():
        return _fit(train, val, cfg, strategy, geometry, features)


def _fit(
    train: pd.DataFrame,
    val: pd.DataFrame,
    cfg: TrainParams,
    strategy: tf.distribute.Strategy,
    geometry: CropGeometry,
    features: FeatureCache | None = None,
) -> Fitted:
    """`fit_detector`'s recipe, inside the strategy's scope."""
    import keras

    keras.utils.set_random_seed(cfg.seed)
    rows = training_rows(train, cfg, geometry)
    weights = class_weights(rows.y)
    model = build_model(cfg)
    history: list[pd.DataFrame] = []
    if cfg.head in FEATURE_HEADS:
        history.append(fit_logistic_head(model, rows, val, cfg, features))
        if cfg.epochs == 0:  # nothing else to train: no image pipeline to build
            log_frame = pd.concat(history, ignore_index=True)
            return Fitted(model, log_frame, weights, strategy_devices(strategy), rows.counts)
    train_ds = face_dataset(
        rows.files,
        rows.y,
        cfg.image_size,
        cfg.batch_size,
        augment_params=cfg.augment,
        shuffle_seed=cfg.seed,
        **rows.blending(),
        read=read_image,
    )
    val_ds = face_dataset(
        list(val["path"]), val["y"].to_numpy(), cfg.image_size, cfg.batch_size, read=read_image
    )

    loss = keras.losses.BinaryCrossentropy(label_smoothing=cfg.label_smoothing)
    metrics = [keras.metrics.AUC(name="auc"), keras.metrics.BinaryAccuracy(name="accuracy")]

    def fit(phase: str, epochs: int, learning_rate: float, initial_epoch: int) -> int:
        if epochs == 0:
            return initial_epoch
        model.compile(keras.optimizers.Adam(learning_rate), loss=loss, metrics=metrics)
        stop = keras.callbacks.EarlyStopping(
            monitor="val_auc", mode="max", patience=cfg.patience, restore_best_weights=True
        )
        result = model.fit(
            train_ds,
            validation_data=val_ds,
            epochs=initial_epoch + epochs,
            initial_epoch=initial_epoch,
            class_weight=weights,
            callbacks=[stop],
            shuffle=False,  # the input pipeline shuffles (seeded); Keras cannot for a dataset
            verbose=2,
        )
        frame = pd.DataFrame(result.history)
        frame.insert(0, "epoch", result.epoch)
        frame.insert(1, "phase", phase)
        history.append(frame)
        return initial_epoch + len(result.epoch)

    done = (
        1 if cfg.head in FEATURE_HEADS else fit("head", cfg.head_epochs, cfg.head_learning_rate, 0)
    )
    unfreeze_top(model, cfg.fine_tune_layers)
    fit("fine_tune", cfg.epochs, cfg.learning_rate, done)
    log_frame = pd.concat(history, ignore_index=True) if history else pd.DataFrame()
    return Fitted(model, log_frame, weights, strategy_devices(strategy), rows.counts)
