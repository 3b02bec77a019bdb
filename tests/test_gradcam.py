"""Grad-CAM: the compiled, batched maps equal the textbook eager computation, face by face."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from deepfake_detector.core.config import TrainParams
from deepfake_detector.inference.gradcam import grad_cams
from deepfake_detector.learning.model import base_of, build_model, head_of


def _eager(model, crop: np.ndarray, size: int) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Grad-CAM of one crop as usually written: eager tape, gradient of P(fake)."""
    import cv2

    x = tf.image.resize(tf.convert_to_tensor(crop[None], tf.float32), [size, size])
    with tf.GradientTape() as tape:
        features = base_of(model)(model.get_layer("preprocess_input")(x), training=False)
        tape.watch(features)
        p = head_of(model)(model.get_layer("pool")(features))  # hidden layer (mlp), p_fake
    weights = tf.reduce_mean(tape.gradient(p, features)[0], axis=(0, 1))
    cam = tf.nn.relu(tf.reduce_sum(features[0] * weights, axis=-1)).numpy()
    cam = cam / cam.max() if cam.max() > 0 else cam
    return cv2.resize(cam.astype(np.float32), (crop.shape[1], crop.shape[0]))


def test_batched_compiled_maps_equal_eager_ones() -> None:
    size = 96
    model = build_model(TrainParams(image_size=size, base_weights="none"))
    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 256, (s, s, 3), dtype=np.uint8) for s in (96, 130, 80)]

    maps = grad_cams(model, crops, size)

    assert [m.shape for m in maps] == [c.shape[:2] for c in crops]
    for crop, heat in zip(crops, maps, strict=True):
        np.testing.assert_allclose(heat, _eager(model, crop, size), atol=1e-4)
        assert heat.min() >= 0 and heat.max() <= 1
    assert grad_cams(model, [], size) == []
