"""The tests' tiny classifier: 32-px crops averaged to one colour, one sigmoid unit. A real Keras
model that builds and loads in a moment, for tests of the inference path, not of the recipe."""

from __future__ import annotations

from typing import TYPE_CHECKING

from deepfake_detector.core.config import FacesParams, FramesParams
from deepfake_detector.inference.inference_config import InferenceConfig
from deepfake_detector.learning.calibration import Calibration

if TYPE_CHECKING:
    import keras

    from deepfake_detector.inference.predict import Detector


def tiny_model() -> keras.Model:
    """The classifier, seeded."""
    import keras

    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            keras.layers.Rescaling(1 / 255.0),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )


def tiny_config() -> InferenceConfig:
    """Its inference settings: 32-px crops, 4 frames a video, threshold 0.5."""
    return InferenceConfig(32, FacesParams(), FramesParams(count=4), Calibration(threshold=0.5))


def tiny_detector() -> Detector:
    """A Detector around the tiny classifier (the real MTCNN finds the faces)."""
    from deepfake_detector.inference.predict import Detector, ModelRef

    return Detector(tiny_model(), tiny_config(), ModelRef("tiny", "test-model", "7"))
