"""tf.data pipelines of face crops: decode, resize, augment (train only), batch, prefetch."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from deepfake_detector.config import AugmentParams

if TYPE_CHECKING:
    import tensorflow as tf


def _blur(image: tf.Tensor) -> tf.Tensor:
    """3x3 or 5x5 Gaussian blur, as a depthwise convolution."""
    import tensorflow as tf

    sigma = tf.random.uniform([], 0.5, 1.5)
    x = tf.range(-2.0, 3.0)
    k = tf.exp(-(x**2) / (2.0 * sigma**2))
    k = k / tf.reduce_sum(k)
    kernel = tf.tile((k[:, None] * k[None, :])[:, :, None, None], [1, 1, 3, 1])
    out = tf.nn.depthwise_conv2d(image[None], kernel, strides=[1, 1, 1, 1], padding="SAME")
    return out[0]


def augment(image: tf.Tensor, params: AugmentParams) -> tf.Tensor:
    """Flip, brightness/contrast, blur and JPEG re-compression on one 0..255 float image."""
    import tensorflow as tf

    if params.flip:
        image = tf.image.random_flip_left_right(image)
    if params.brightness > 0:
        image = tf.image.random_brightness(image, params.brightness * 255.0)
    if params.contrast > 0:
        image = tf.image.random_contrast(image, 1 - params.contrast, 1 + params.contrast)
    image = tf.clip_by_value(image, 0.0, 255.0)
    if params.blur_prob > 0:
        image = tf.cond(
            tf.random.uniform([]) < params.blur_prob, lambda: _blur(image), lambda: image
        )
    if params.jpeg_prob > 0:

        def recompress() -> tf.Tensor:
            quality = tf.random.uniform(
                [], params.jpeg_quality_min, params.jpeg_quality_max + 1, dtype=tf.int32
            )
            return tf.cast(
                tf.image.adjust_jpeg_quality(tf.cast(image, tf.uint8), quality), tf.float32
            )

        image = tf.cond(tf.random.uniform([]) < params.jpeg_prob, recompress, lambda: image)
    image.set_shape([None, None, 3])
    return image


def face_dataset(
    files: list[Path],
    labels: np.ndarray,
    image_size: int,
    batch_size: int,
    *,
    augment_params: AugmentParams | None = None,
    shuffle_seed: int | None = None,
) -> tf.data.Dataset:
    """Batches of (image 0..255 float32, label) for training and validation."""
    import tensorflow as tf

    paths = tf.data.Dataset.from_tensor_slices([str(f) for f in files])

    def load(path: tf.Tensor) -> tf.Tensor:
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        image = tf.image.resize(tf.cast(image, tf.float32), [image_size, image_size])
        if augment_params is not None:
            image = augment(image, augment_params)
        return image

    ds = tf.data.Dataset.zip(paths, tf.data.Dataset.from_tensor_slices(labels.astype("float32")))
    if shuffle_seed is not None:
        ds = ds.shuffle(len(files), seed=shuffle_seed, reshuffle_each_iteration=True)
    ds = ds.map(lambda p, y: (load(p), y), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
