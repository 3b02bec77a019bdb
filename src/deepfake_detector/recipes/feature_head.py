"""The head fitted on the frozen base's features: pooled MobileNetV2 features of every training
row (plain crops shared through a `FeatureCache`, pseudo-fakes made afresh), then L2-regularised
logistic regression (`train.head: logistic`) or a one-hidden-layer MLP (`mlp`), folded into the
Keras model's own layers."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from deepfake_detector.core.config import TrainParams
from deepfake_detector.learning.input_pipeline import face_dataset
from deepfake_detector.learning.model import base_of, head_features, head_of
from deepfake_detector.sources.images import read_image

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

    from deepfake_detector.recipes.training import TrainingRows

log = logging.getLogger(__name__)
MLP_ITER = 500  # L-BFGS iterations of the MLP head


class FeatureCache(dict[tuple[str, str], np.ndarray]):
    """Pooled features of plain (un-augmented, un-blended) crops through a frozen base, by base
    settings and file: a study passes one to every fold and candidate, which then share them
    instead of recomputing them. `fit_detector` without one computes every feature afresh."""


def _feature_function(model: keras.Model) -> Callable[[tf.Tensor], tf.Tensor]:
    """The model up to its pooled features, compiled."""
    import tensorflow as tf

    scale, base = model.get_layer("preprocess_input"), base_of(model)

    @tf.function(reduce_retracing=True)
    def features(x: tf.Tensor) -> tf.Tensor:
        scaled = scale(x)
        return head_features(model, scaled, base(scaled, training=False))

    return features


def _embed(features: Callable, ds: tf.data.Dataset) -> np.ndarray:
    return np.concatenate([features(x).numpy() for x, _ in ds])


def embed_rows(
    features: Callable, rows: TrainingRows, cfg: TrainParams, cache: FeatureCache | None = None
) -> np.ndarray:
    """Pooled base features (`features`: `_feature_function`) of every training row: plain
    crops from `cache` when seen before, self-blended ones made afresh (seeded)."""
    cache = FeatureCache() if cache is None else cache
    layers = ",".join([*cfg.pooled_layers, cfg.feature_layer])
    key = f"{layers}|{cfg.pooling}|{cfg.frequency}|{cfg.image_size}|{cfg.base_weights}|{cfg.seed}"
    out: list[np.ndarray | None] = [None] * len(rows.files)
    for i, (path, blended) in enumerate(zip(rows.files, rows.blend, strict=True)):
        if not blended:
            out[i] = cache.get((key, str(path)))
    todo = [i for i, v in enumerate(out) if v is None]
    if todo:
        ds = face_dataset(
            [rows.files[i] for i in todo],
            rows.y[todo],
            cfg.image_size,
            64,
            blend=rows.blend[todo],
            ellipses=rows.ellipses[todo],
            donors=[rows.donors[i] for i in todo] if rows.donors else None,
            donor_ellipses=None if rows.donor_ellipses is None else rows.donor_ellipses[todo],
            read=read_image,
        )
        for i, vector in zip(todo, _embed(features, ds), strict=True):
            out[i] = vector
            if not rows.blend[i]:
                cache[(key, str(rows.files[i]))] = vector
    return np.stack([v for v in out if v is not None])  # every row is filled above


def fit_logistic_head(
    model: keras.Model,
    rows: TrainingRows,
    val: pd.DataFrame,
    cfg: TrainParams,
    cache: FeatureCache | None = None,
) -> pd.DataFrame:
    """The head as L2-regularised logistic regression on standardised pooled features, folded
    into the model's `p_fake` layer (so the saved model is plain Keras: scaling, base, pooling,
    dense). `augmented_views` augmented copies of each training face join the plain ones."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    features = _feature_function(model)  # one compiled graph for every pass below
    x = [embed_rows(features, rows, cfg, cache)]
    order = [np.arange(len(rows.y))]
    for view in range(cfg.augmented_views):
        # The row numbers ride along as labels: the shuffled views map back to labels, weights.
        ds = face_dataset(
            rows.files,
            np.arange(len(rows.y)),
            cfg.image_size,
            64,
            augment_params=cfg.augment,
            shuffle_seed=cfg.seed + 1 + view,
            **rows.blending(),
            read=read_image,
        )
        batches = [(features(images).numpy(), at.numpy()) for images, at in ds]
        x.append(np.concatenate([b[0] for b in batches]))
        order.append(np.concatenate([b[1] for b in batches]).astype(int))
    at = np.concatenate(order)
    features_all, labels = np.concatenate(x), rows.y[at].astype(int)
    mean, std = features_all.mean(axis=0), features_all.std(axis=0) + 1e-6
    weights = None if rows.weights is None else rows.weights[at]
    standardised = (features_all - mean) / std
    fits = _fold_rows(at, len(rows.y), cfg)
    if cfg.head == "mlp":
        scores = _fit_mlp(model, standardised, labels, weights, mean, std, cfg, fits)
    else:
        coefs, intercepts = [], []
        balanced = None if weights is not None else "balanced"
        for keep in fits:
            clf = LogisticRegression(C=cfg.head_c, class_weight=balanced, max_iter=3000)
            clf.fit(
                standardised[keep],
                labels[keep],
                sample_weight=None if weights is None else weights[keep],
            )
            coefs.append(clf.coef_[0])
            intercepts.append(clf.intercept_[0])
        coef, intercept = np.mean(coefs, axis=0), float(np.mean(intercepts))  # logits averaged
        w, b = coef / std, intercept - float(np.sum(coef * mean / std))
        model.get_layer("p_fake").set_weights([w[:, None].astype("float32"), np.array([b], "f4")])
        scores = standardised @ coef + intercept
    row: dict[str, object] = {
        "epoch": 0,
        "phase": "head",
        "auc": float(roc_auc_score(labels, scores)),
        "train_faces": len(labels),
    }
    if len(val) and val["y"].nunique() == 2:
        val_ds = face_dataset(
            list(val["path"]), val["y"].to_numpy(), cfg.image_size, 64, read=read_image
        )
        val_scores = head_of(model)(_embed(features, val_ds)).numpy()[:, 0]
        row["val_auc"] = float(roc_auc_score(val["y"].to_numpy(int), val_scores))
    log.info("%s head: %s", cfg.head, row)
    return pd.DataFrame([row])


def _fold_rows(at: np.ndarray, faces: int, cfg: TrainParams) -> list[np.ndarray]:
    """Which feature rows each fit of the head learns from: every row (`head_folds` 1), or all
    but one of `head_folds` seeded folds of the training faces (a face's augmented views fall in
    its fold)."""
    if cfg.head_folds == 1:
        return [np.ones(len(at), bool)]
    fold_of_face = np.random.default_rng(cfg.seed + 3).permutation(faces) % cfg.head_folds
    return [fold_of_face[at] != k for k in range(cfg.head_folds)]


def _fit_mlp(
    model: keras.Model,
    standardised: np.ndarray,
    labels: np.ndarray,
    weights: np.ndarray | None,
    mean: np.ndarray,
    std: np.ndarray,
    cfg: TrainParams,
    fits: list[np.ndarray],
) -> np.ndarray:
    """`train.head: mlp`: one hidden ReLU layer fitted by L-BFGS on the standardised features,
    with the logistic head's L2 strength (sklearn's `alpha` on the mean loss over n rows is
    1 / C on the summed one) and its row weights (classes balanced when there are none), once
    per fold (`fits`). Folded into `hidden` (the fits' units side by side) and `p_fake` (their
    logits averaged). Returns the training rows' logits."""
    from concurrent.futures import ThreadPoolExecutor

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.utils.class_weight import compute_sample_weight
    from threadpoolctl import threadpool_limits

    if weights is None:
        weights = compute_sample_weight("balanced", labels)
    # The fits side by side, one BLAS thread each: on these shapes a second OpenBLAS thread gains
    # nothing (at a thousand rows it is 2.3 times slower), a second fit beside it halves the time.
    with threadpool_limits(1), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        with ThreadPoolExecutor(min(len(fits), os.cpu_count() or 1)) as pool:
            weights_of_fits = list(
                pool.map(
                    lambda k: _one_mlp(
                        standardised[fits[k]], labels[fits[k]], weights[fits[k]], cfg, cfg.seed + k
                    ),
                    range(len(fits)),
                )
            )
    for warning in caught:  # not a problem: said in one line
        if issubclass(warning.category, ConvergenceWarning):
            log.debug("mlp head: L-BFGS stopped at %d iterations (validation judges it)", MLP_ITER)
        else:
            warnings.warn_explicit(
                warning.message, warning.category, warning.filename, warning.lineno
            )
    first, second, bias = [], [], []
    for w1, w2, b1, b2 in weights_of_fits:
        first.append((w1, b1))
        second.append(w2 / len(fits))
        bias.append(b2)
    w1 = np.concatenate([w for w, _ in first], axis=1)
    b1 = np.concatenate([b for _, b in first])
    w2, b2 = np.concatenate(second, axis=0), np.mean(bias, axis=0)
    model.get_layer("hidden").set_weights(
        [(w1 / std[:, None]).astype("float32"), (b1 - (mean / std) @ w1).astype("float32")]
    )
    model.get_layer("p_fake").set_weights([w2.astype("float32"), b2.astype("float32")])
    logits: np.ndarray = (np.maximum(standardised @ w1 + b1, 0.0) @ w2 + b2)[:, 0]
    return logits


def _one_mlp(
    x: np.ndarray, labels: np.ndarray, weights: np.ndarray, cfg: TrainParams, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One MLP fit: its hidden and output weights and biases."""
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(
        hidden_layer_sizes=(cfg.head_hidden,),
        alpha=1.0 / cfg.head_c,
        solver="lbfgs",
        max_iter=MLP_ITER,
        random_state=seed,
    )
    clf.fit(x, labels, sample_weight=weights * len(labels) / weights.sum())
    (w1, w2), (b1, b2) = clf.coefs_, clf.intercepts_
    return w1, w2, b1, b2
