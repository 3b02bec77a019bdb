"""Grad-CAM: where in a face crop the evidence for P(fake) lies (last MobileNetV2 features)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

from deepfake_detector.model import base_of

if TYPE_CHECKING:
    import keras


def grad_cam(model: keras.Model, crop: np.ndarray, image_size: int) -> np.ndarray:
    """Heat map in [0, 1] at the crop's size: ReLU of gradient-weighted last feature maps."""
    import tensorflow as tf

    x = tf.image.resize(tf.convert_to_tensor(crop[None], tf.float32), [image_size, image_size])
    scale = model.get_layer("preprocess_input")
    pool, head = model.get_layer("pool"), model.get_layer("p_fake")
    with tf.GradientTape() as tape:
        features = base_of(model)(scale(x), training=False)
        tape.watch(features)
        p = head(pool(features))
    grads = tape.gradient(p, features)[0]
    weights = tf.reduce_mean(grads, axis=(0, 1))
    cam = tf.nn.relu(tf.reduce_sum(features[0] * weights, axis=-1)).numpy()
    if cam.max() > 0:
        cam = cam / cam.max()
    return cv2.resize(cam.astype(np.float32), (crop.shape[1], crop.shape[0]))


def overlay(crop: np.ndarray, heat: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """The heat map in the JET palette over the RGB crop."""
    colour = cv2.applyColorMap((heat * 255).astype(np.uint8), cv2.COLORMAP_JET)
    colour = cv2.cvtColor(colour, cv2.COLOR_BGR2RGB)
    return cv2.addWeighted(crop, 1 - alpha, colour, alpha, 0)
