"""Grad-CAM: where in a face crop the evidence for P(fake) lies (last MobileNetV2 features)."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import cv2
import numpy as np

from deepfake_detector.learning.model import base_of, head_features, head_of

if TYPE_CHECKING:
    import keras

_compiled: weakref.WeakKeyDictionary[keras.Model, Callable] = weakref.WeakKeyDictionary()


def _cam_function(model: keras.Model) -> Callable:
    """One compiled graph per model: a batch of crops in, one feature-map heat map per crop out.

    Each face's score depends only on its own features, so the gradient of the batch's summed
    score gives every face its own gradient in one backward pass.
    """
    if model not in _compiled:
        import tensorflow as tf

        scale, base, head = model.get_layer("preprocess_input"), base_of(model), head_of(model)

        @tf.function(reduce_retracing=True)
        def cams(x: tf.Tensor) -> tf.Tensor:
            scaled = scale(x)
            features = base(scaled, training=False)
            with tf.GradientTape() as tape:
                tape.watch(features)
                # inside the tape, or no gradient
                total = tf.reduce_sum(head(head_features(model, scaled, features)))
            grads = tape.gradient(total, features)
            weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
            return tf.nn.relu(tf.reduce_sum(features * weights, axis=-1))

        _compiled[model] = cams
    return _compiled[model]


def grad_cams(model: keras.Model, crops: Sequence[np.ndarray], image_size: int) -> list[np.ndarray]:
    """Heat maps in [0, 1], each at its crop's size: ReLU of gradient-weighted feature maps."""
    if not crops:
        return []
    import tensorflow as tf

    size = [image_size, image_size]
    batch = tf.stack([tf.image.resize(tf.convert_to_tensor(c, tf.float32), size) for c in crops])
    maps = _cam_function(model)(batch).numpy()
    heats = []
    for cam, crop in zip(maps, crops, strict=True):
        if cam.max() > 0:
            cam = cam / cam.max()
        heats.append(cv2.resize(cam.astype(np.float32), (crop.shape[1], crop.shape[0])))
    return heats


def overlay(crop: np.ndarray, heat: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """The heat map in the JET palette over the RGB crop."""
    colour = cv2.applyColorMap((heat * 255).astype(np.uint8), cv2.COLORMAP_JET)
    colour = cv2.cvtColor(colour, cv2.COLOR_BGR2RGB)
    return cv2.addWeighted(crop, 1 - alpha, colour, alpha, 0)
