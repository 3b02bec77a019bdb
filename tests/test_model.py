"""The classifier: MobileNetV2's own input scaling, and clear errors when weights are missing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED_WEIGHTS, shared_path

from deepfake_detector.core.config import TrainParams
from deepfake_detector.learning.model import (
    WeightsError,
    build_model,
    load_model,
    resolve_base_weights,
)


def test_missing_weight_file_names_both_remedies(tmp_path: Path) -> None:
    with pytest.raises(WeightsError) as err:
        resolve_base_weights(TrainParams(base_weights=str(tmp_path / "nope.weights.h5")))
    message = str(err.value)
    assert "no such file" in message and "download" in message and "imagenet_file" in message


def test_imagenet_falls_back_to_the_local_file_when_keras_has_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))  # an empty Keras cache
    local = tmp_path / "base.weights.h5"
    local.write_bytes(b"x")
    assert resolve_base_weights(TrainParams(imagenet_file=local)) == str(local)
    assert resolve_base_weights(TrainParams(base_weights="none")) is None


def test_input_scaling_is_mobilenet_v2_preprocess_input_and_model_round_trips(
    tmp_path: Path,
) -> None:
    import keras

    weights = shared_path("weights", SHARED_WEIGHTS.name)
    model = build_model(TrainParams(image_size=96, base_weights=str(weights)))
    x = np.random.default_rng(0).uniform(0, 255, (2, 96, 96, 3)).astype("float32")
    scaled = model.get_layer("preprocess_input")(x)
    np.testing.assert_allclose(
        scaled, keras.applications.mobilenet_v2.preprocess_input(x.copy()), atol=1e-5
    )
    path = tmp_path / "m.keras"
    model.save(path)
    again = load_model(path)
    np.testing.assert_allclose(model.predict_on_batch(x), again.predict_on_batch(x), atol=1e-5)


def test_unreachable_imagenet_download_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    # Send Keras' download to a closed port on this machine: it fails fast and offline.
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    with pytest.raises(WeightsError, match="imagenet_file"):
        build_model(TrainParams(image_size=96, base_weights="imagenet", imagenet_file=None))


def test_the_classifier_reads_the_chosen_layer_and_refuses_an_unknown_one(tmp_path: Path) -> None:
    from deepfake_detector.learning.model import FeatureLayerError, base_of

    cfg = TrainParams(
        image_size=64,
        base_weights="none",
        feature_layer="block_13_expand_relu",
        pooled_layers=(),
        pooling="mean",
    )
    model = build_model(cfg)
    assert base_of(model).output.shape[-1] == 576  # block 13's expanded channels
    path = tmp_path / "m.keras"
    model.save(path)
    assert base_of(load_model(path)).output.shape[-1] == 576
    with pytest.raises(FeatureLayerError, match="no layer 'block_99'"):
        build_model(cfg.model_copy(update={"feature_layer": "block_99"}))


def test_the_logistic_head_is_folded_into_the_model_exactly(tmp_path: Path) -> None:
    """The saved Keras model scores a face as the fitted logistic regression does."""
    import pandas as pd
    from PIL import Image
    from sklearn.linear_model import LogisticRegression

    from deepfake_detector.learning.input_pipeline import face_dataset
    from deepfake_detector.recipes.feature_head import _feature_function
    from deepfake_detector.recipes.training import TIGHT, _fit, training_rows
    from deepfake_detector.sources.images import read_image

    rng = np.random.default_rng(0)
    files = []
    for i in range(24):
        tone = 60 if i % 2 else 180  # two kinds of picture, so there is something to learn
        pixels = np.clip(rng.normal(tone, 40, (64, 64, 3)), 0, 255).astype("uint8")
        Image.fromarray(pixels).save(tmp_path / f"{i}.png")
        files.append(tmp_path / f"{i}.png")
    table = pd.DataFrame({"path": files, "y": np.array([i % 2 for i in range(24)], "float32")})
    cfg = TrainParams(
        image_size=64,
        base_weights="none",
        feature_layer="block_6_expand_relu",
        pooled_layers=(),
        pooling="mean",
        synthetic_fakes="none",
        dataset_weighting="none",
        epochs=0,
        augmented_views=0,
        head="logistic",
        head_c=0.5,
        head_folds=1,  # one fit, which scikit-learn repeats below
    )
    import tensorflow as tf

    fitted = _fit(table, table.head(0), cfg, tf.distribute.get_strategy(), TIGHT)
    assert fitted.history["phase"].tolist() == ["head"]
    rows = training_rows(table, cfg)
    ds = face_dataset(rows.files, rows.y, 64, 8, read=read_image)  # as training reads
    images = np.concatenate([x.numpy() for x, _ in ds])
    feats = _feature_function(fitted.model)(images).numpy()
    mean, std = feats.mean(axis=0), feats.std(axis=0) + 1e-6
    clf = LogisticRegression(C=0.5, class_weight="balanced", max_iter=3000)
    clf.fit((feats - mean) / std, rows.y.astype(int))
    expected = clf.predict_proba((feats - mean) / std)[:, 1]
    got = fitted.model.predict(images, verbose=0)[:, 0]
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_pooled_layers_and_mean_std_pooling_save_load_and_explain(tmp_path: Path) -> None:
    """Earlier maps pooled onto the feature layer's grid, mean and spread per channel: one
    feature map for Grad-CAM, and the saved model loads in safe mode, with Keras alone (no
    custom code: as MLflow's Keras flavour loads it), with the same scores."""
    import keras

    from deepfake_detector.inference.gradcam import grad_cams
    from deepfake_detector.learning.model import FeatureLayerError, base_of

    cfg = TrainParams(
        image_size=64,
        base_weights="none",
        feature_layer="block_13_expand_relu",
        pooled_layers=("block_6_expand_relu", "block_10_expand_relu"),
        pooling="mean_std",
    )
    model = build_model(cfg)
    assert base_of(model).output.shape[1:] == (4, 4, 192 + 384 + 576)
    assert model.get_layer("pool").output.shape[-1] == 2 * (192 + 384 + 576)
    x = np.random.default_rng(0).uniform(0, 255, (3, 64, 64, 3)).astype("float32")
    maps = base_of(model)(model.get_layer("preprocess_input")(x)).numpy()
    pooled = model.get_layer("pool")(maps).numpy()
    np.testing.assert_allclose(pooled[:, :1152], maps.mean(axis=(1, 2)), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(pooled[:, 1152:], maps.std(axis=(1, 2)), rtol=1e-3, atol=1e-4)
    path = tmp_path / "m.keras"
    model.save(path)
    again = keras.saving.load_model(path, safe_mode=True, compile=False)
    np.testing.assert_allclose(model.predict_on_batch(x), again.predict_on_batch(x), atol=1e-6)
    heat = grad_cams(again, [x[0].astype(np.uint8)], 64)[0]
    assert heat.shape == (64, 64) and heat.min() >= 0 and heat.max() <= 1
    with pytest.raises(FeatureLayerError, match="pooled_layers: MobileNetV2 has no layer"):
        build_model(cfg.model_copy(update={"pooled_layers": ("block_99",)}))
    with pytest.raises(FeatureLayerError, match="does not pool down"):
        build_model(cfg.model_copy(update={"pooled_layers": ("out_relu",)}))


def test_frequency_statistics_and_the_mlp_head_fold_into_a_plain_keras_model(
    tmp_path: Path,
) -> None:
    """`train.frequency` adds each high-pass band's mean magnitude beside the CNN features (a
    blurred crop has less of it than a sharp one); `train.head: mlp` folds a fitted one-hidden-
    layer network into `hidden` and `p_fake`. The saved model loads with Keras alone, scores as
    the fitted head does, and Grad-CAM still explains it."""
    import keras
    import pandas as pd
    import tensorflow as tf
    from PIL import Image

    from deepfake_detector.inference.gradcam import grad_cams
    from deepfake_detector.learning.model import _HIGH_PASS, FREQUENCY_SCALES, head_of
    from deepfake_detector.recipes.feature_head import _feature_function
    from deepfake_detector.recipes.training import TIGHT, _fit

    cfg = TrainParams(
        image_size=64,
        base_weights="none",
        feature_layer="block_6_expand_relu",
        pooled_layers=(),
        pooling="mean",
        frequency=True,
        head="mlp",
        head_hidden=8,
        head_c=1.0,
        synthetic_fakes="none",
        dataset_weighting="none",
        epochs=0,
        augmented_views=0,
    )
    rng = np.random.default_rng(0)
    sharp = np.clip(rng.normal(128, 60, (64, 64, 3)), 0, 255).astype("uint8")
    import cv2

    soft = cv2.GaussianBlur(sharp, (0, 0), 2.0)
    files = []
    for i in range(24):  # sharp real faces, blurred fakes: the frequency bands tell them apart
        noise = rng.normal(0, 4, sharp.shape)
        pixels = np.clip((soft if i % 2 else sharp) + noise, 0, 255).astype("uint8")
        Image.fromarray(pixels).save(tmp_path / f"{i}.png")
        files.append(tmp_path / f"{i}.png")
    table = pd.DataFrame({"path": files, "y": np.array([i % 2 for i in range(24)], "float32")})
    fitted = _fit(table, table.head(0), cfg, tf.distribute.get_strategy(), TIGHT)
    model = fitted.model
    bands = model.get_layer("frequency")
    assert bands.output.shape[-1] == 2 * 2 * len(_HIGH_PASS) * len(FREQUENCY_SCALES)
    assert not bands.trainable_weights
    images = np.stack([sharp, soft]).astype("float32")
    stats = bands(model.get_layer("preprocess_input")(images)).numpy()
    kernels = 2 * len(_HIGH_PASS)
    assert stats[0, :kernels].sum() > 2 * stats[1, :kernels].sum()  # full-scale band means
    features = _feature_function(model)(images)
    np.testing.assert_allclose(
        model.predict_on_batch(images), head_of(model)(features).numpy(), atol=1e-5
    )
    assert fitted.history["auc"].iloc[0] > 0.9
    path = tmp_path / "m.keras"
    model.save(path)
    again = keras.saving.load_model(path, safe_mode=True, compile=False)
    np.testing.assert_allclose(
        model.predict_on_batch(images), again.predict_on_batch(images), atol=1e-6
    )
    heat = grad_cams(again, [sharp], 64)[0]
    assert heat.shape == (64, 64) and heat.min() >= 0 and heat.max() <= 1


def test_fold_models_are_averaged_into_one_head() -> None:
    """`train.head_folds`: the head fitted once without each of k folds of the training faces;
    the folded model gives the mean of the k fits' logits, each face left out of one fit."""
    import keras

    from deepfake_detector.recipes.feature_head import _fit_mlp, _fold_rows, _one_mlp

    cfg = TrainParams(head="mlp", head_hidden=4, head_c=1.0, head_folds=3, seed=7)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 5))
    labels = (x[:, 0] + 0.5 * rng.normal(size=60) > 0).astype(int)
    at = np.repeat(np.arange(30), 2)  # two feature rows (views) per face
    fits = _fold_rows(at, 30, cfg)
    assert len(fits) == 3 and (sum(~keep for keep in fits) == 1).all()  # each row left out once
    for keep in fits:  # a face's views fall in one fold
        assert (keep[0::2] == keep[1::2]).all()
    model = keras.Sequential(
        [
            keras.Input((5,)),
            keras.layers.Dense(4 * 3, activation="relu", name="hidden"),
            keras.layers.Dense(1, activation="sigmoid", name="p_fake"),
        ]
    )
    logits = _fit_mlp(model, x, labels, None, np.zeros(5), np.ones(5), cfg, fits)
    from sklearn.utils.class_weight import compute_sample_weight

    weights = compute_sample_weight("balanced", labels)  # as the head weighs rows by default
    each = []
    for k, keep in enumerate(fits):
        w1, w2, b1, b2 = _one_mlp(x[keep], labels[keep], weights[keep], cfg, cfg.seed + k)
        each.append((np.maximum(x @ w1 + b1, 0.0) @ w2 + b2)[:, 0])
    np.testing.assert_allclose(logits, np.mean(each, axis=0), atol=1e-6)
    np.testing.assert_allclose(
        model.predict_on_batch(x.astype("float32"))[:, 0], 1 / (1 + np.exp(-logits)), atol=1e-5
    )


def test_a_recipe_key_ignores_a_later_field_at_the_value_that_trains_as_before() -> None:
    import hashlib
    import json

    from conftest import REPO

    from deepfake_detector.core.config import load_params
    from deepfake_detector.recipes.assessment import recipe_key

    params = load_params(REPO / "params.yaml")
    one_fit = params.train.model_copy(update={"head_folds": 1})
    params = params.model_copy(update={"train": one_fit})
    train = params.train.model_dump(mode="json")
    del train["head_folds"]  # the key as runs recorded it before the field existed
    recorded = {
        "train": train,
        "extra_faces": [s.model_dump(mode="json") for s in params.split.extra_faces],
        "evaluate": params.evaluate.model_dump(mode="json"),
    }
    key = hashlib.sha256(json.dumps(recorded, sort_keys=True).encode()).hexdigest()[:16]
    assert recipe_key(params) == key
    folds = params.model_copy(update={"train": params.train.model_copy(update={"head_folds": 5})})
    assert recipe_key(folds) != key
