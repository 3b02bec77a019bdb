"""tf.data pipelines of face crops: decode, resize, augment (train only), batch, prefetch."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from deepfake_detector.core.config import AugmentParams

if TYPE_CHECKING:
    import tensorflow as tf

# An image file to RGB uint8 HxWx3; the stages pass `sources.images.read_image`, the decoder
# of evaluation and prediction (this layer does not import `sources`: the caller chooses).
Reader = Callable[[Path], np.ndarray]


def _blur(image: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """3x3 or 5x5 Gaussian blur, as a depthwise convolution."""
    import tensorflow as tf

    sigma = tf.random.stateless_uniform([], seed, 0.5, 1.5)
    x = tf.range(-2.0, 3.0)
    k = tf.exp(-(x**2) / (2.0 * sigma**2))
    k = k / tf.reduce_sum(k)
    kernel = tf.tile((k[:, None] * k[None, :])[:, :, None, None], [1, 1, 3, 1])
    out = tf.nn.depthwise_conv2d(image[None], kernel, strides=[1, 1, 1, 1], padding="SAME")
    return out[0]


def decode_file(path: tf.Tensor, read: Reader) -> tf.Tensor:
    """An image file as uint8 HxWx3 inside `tf.data`, decoded by `read`.

    `read` is `sources.images.read_image` (EXIF orientation, colour modes, PIL's JPEG decoder),
    run through `tf.numpy_function`, so training sees the pixels that evaluation and prediction
    see; it is required, so no caller falls back to another decoder by leaving it out. An
    unreadable file stops the pipeline with the reader's reason (its `InputError` is a
    ValueError: TensorFlow raises InvalidArgumentError).
    """
    import tensorflow as tf

    def read_path(name: bytes) -> np.ndarray:
        return read(Path(os.fsdecode(name)))

    image = tf.numpy_function(read_path, [path], tf.uint8, stateful=False, name="read_image")
    image.set_shape([None, None, 3])
    return image


def resize(image: tf.Tensor, image_size: int) -> tf.Tensor:
    """Bilinear resize to the model's input size, as float32 0..255 (`predict.Detector` resizes
    crops with the same `tf.image.resize`)."""
    import tensorflow as tf

    return tf.image.resize(tf.cast(image, tf.float32), [image_size, image_size])


def augment(image: tf.Tensor, params: AugmentParams, seed: tf.Tensor) -> tf.Tensor:
    """Flip, brightness/contrast, blur and JPEG re-compression on one 0..255 float image.

    Every draw is stateless, from the image's own `seed` (shape [2]): under a parallel map the
    same seed gives the same picture whatever order the threads run in, so a training run is
    repeatable bit for bit (stateful random ops would hand out their draws in thread order).
    """
    import tensorflow as tf

    seeds = tf.random.experimental.stateless_split(seed, 7)
    flip, bright, contrast, blur_on, blur, jpeg_on, quality = (seeds[i] for i in range(7))
    if params.flip:
        image = tf.image.stateless_random_flip_left_right(image, flip)
    if params.brightness > 0:
        image = tf.image.stateless_random_brightness(image, params.brightness * 255.0, bright)
    if params.contrast > 0:
        image = tf.image.stateless_random_contrast(
            image, 1 - params.contrast, 1 + params.contrast, contrast
        )
    image = tf.clip_by_value(image, 0.0, 255.0)
    if params.blur_prob > 0:
        image = tf.cond(
            tf.random.stateless_uniform([], blur_on) < params.blur_prob,
            lambda: _blur(image, blur),
            lambda: image,
        )
    if params.jpeg_prob > 0:

        def recompress() -> tf.Tensor:
            q = tf.random.stateless_uniform(
                [], quality, params.jpeg_quality_min, params.jpeg_quality_max + 1, dtype=tf.int32
            )
            return tf.cast(tf.image.adjust_jpeg_quality(tf.cast(image, tf.uint8), q), tf.float32)

        image = tf.cond(
            tf.random.stateless_uniform([], jpeg_on) < params.jpeg_prob, recompress, lambda: image
        )
    image.set_shape([None, None, 3])
    return image


def face_dataset(
    files: list[Path],
    labels: np.ndarray,
    image_size: int,
    batch_size: int,
    *,
    read: Reader,
    augment_params: AugmentParams | None = None,
    shuffle_seed: int | None = None,
    blend: np.ndarray | None = None,
    ellipses: np.ndarray | None = None,
    donors: list[str] | None = None,
    donor_ellipses: np.ndarray | None = None,
) -> tf.data.Dataset:
    """Batches of (image 0..255 float32, label) for training and validation.

    Files are decoded by `read` (`decode_file`: `sources.images.read_image`, the decoder of
    evaluation and prediction) and resized as prediction resizes (`resize`).

    Rows whose `blend` flag is set become self-blended pseudo-fakes of their image
    (`synthetic.self_blend`, face ellipse from `ellipses`), made before augmentation so both
    classes are augmented alike. A blended row with a `donors` file (not "") gets that other
    face pasted in instead (`synthetic.donor_blend`, its ellipse from `donor_ellipses`). Each
    image draws its pseudo-fake and its augmentation from its own seed, and the seeds follow
    `shuffle_seed`: the same seed gives the same batches, bit for bit, however the parallel map
    is scheduled.
    """
    import tensorflow as tf

    from deepfake_detector.learning.synthetic import DEFAULT_ELLIPSE, donor_blend, self_blend

    n = len(files)
    if blend is None:
        blend = np.zeros(n, bool)
    if ellipses is None:
        ellipses = np.tile(np.array(DEFAULT_ELLIPSE, "float32"), (n, 1))
    if donors is None:
        donors = [""] * n
    if donor_ellipses is None:
        donor_ellipses = np.asarray(ellipses, "float32")
    columns = (
        tf.data.Dataset.from_tensor_slices([str(f) for f in files]),
        tf.data.Dataset.from_tensor_slices(labels.astype("float32")),
        tf.data.Dataset.from_tensor_slices(np.asarray(blend, bool)),
        tf.data.Dataset.from_tensor_slices(np.asarray(ellipses, "float32")),
        tf.data.Dataset.from_tensor_slices([str(d) for d in donors]),
        tf.data.Dataset.from_tensor_slices(np.asarray(donor_ellipses, "float32")),
    )
    ds = tf.data.Dataset.zip(columns)
    if shuffle_seed is not None:
        ds = ds.shuffle(n, seed=shuffle_seed, reshuffle_each_iteration=True)

    def decode(path: tf.Tensor) -> tf.Tensor:
        return resize(decode_file(path, read), image_size)

    if augment_params is None and not np.asarray(blend, bool).any():  # nothing drawn: no seeds
        ds = ds.map(lambda path, y, *_: (decode(path), y), num_parallel_calls=tf.data.AUTOTUNE)
        return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
    # One seed per image, in the (seeded) shuffled order: the draws of each image are its own.
    seeds = tf.data.Dataset.random(
        seed=0 if shuffle_seed is None else shuffle_seed, rerandomize_each_iteration=True
    ).batch(2)
    ds = tf.data.Dataset.zip(ds, seeds)

    def pseudo_fake(
        image: tf.Tensor,
        ellipse: tf.Tensor,
        donor: tf.Tensor,
        donor_ellipse: tf.Tensor,
        seed: tf.Tensor,
    ) -> tf.Tensor:
        return tf.cond(
            tf.equal(donor, ""),
            lambda: self_blend(image, ellipse, seed, image_size)[0],
            lambda: donor_blend(image, ellipse, decode(donor), donor_ellipse, seed, image_size)[0],
        )

    def load(
        path: tf.Tensor,
        y: tf.Tensor,
        fake: tf.Tensor,
        ellipse: tf.Tensor,
        donor: tf.Tensor,
        donor_ellipse: tf.Tensor,
        seed: tf.Tensor,
    ) -> tuple[tf.Tensor, tf.Tensor]:
        two = tf.random.experimental.stateless_split(seed, 2)
        blend_seed, augment_seed = two[0], two[1]
        image = tf.ensure_shape(decode(path), [image_size, image_size, 3])
        image = tf.cond(
            fake,
            lambda: pseudo_fake(image, ellipse, donor, donor_ellipse, blend_seed),
            lambda: image,
        )
        return (
            image if augment_params is None else augment(image, augment_params, augment_seed)
        ), y

    ds = ds.map(
        lambda row, seed: load(row[0], row[1], row[2], row[3], row[4], row[5], seed),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
