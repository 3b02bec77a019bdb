"""The classifier: MobileNetV2's own input scaling, and clear errors when weights are missing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED_WEIGHTS, shared_path

from deepfake_detector.config import TrainParams
from deepfake_detector.model import WeightsError, build_model, load_model, resolve_base_weights


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
