"""Blended pseudo-fakes: a real face blended with a jittered copy of itself (SBI) or with
another person's face (Face X-ray's blended images).

Shiohara & Yamasaki, "Detecting Deepfakes with Self-Blended Images" (CVPR 2022), after the
blending-boundary idea of Face X-ray (Li et al., CVPR 2020): a face swap leaves a seam where a
second face was pasted in, and a colour or sharpness mismatch inside it. A pseudo-fake is made
from one real face alone: a copy of it is shifted in colour, blurred or sharpened, and slightly
moved and scaled, then blended back through a soft mask shaped like the face (an ellipse placed
from MTCNN's five landmarks, or the usual place of a face in a tight crop when they are absent),
with a deformed edge and a random blend strength. The model cannot learn a person or a dataset
from these: both classes show the same face.

The second kind (`donor_blend`, Face X-ray's own training data) pastes another real person's
face instead: moved and scaled so its landmark ellipse lies on this face's, its colours matched
to this face inside the mask (as face-swap tools correct colour), then jittered and blended the
same way. It adds what a swap changes beside the seam: the face inside is someone else's.

Everything runs in TensorFlow inside `tf.data`, with stateless random ops: the same seed gives
the same pseudo-fake.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import tensorflow as tf

# Where a face lies in a tight square crop (no margin), as fractions of the crop:
# centre x, centre y, half-width, half-height.
DEFAULT_ELLIPSE = (0.5, 0.55, 0.36, 0.45)
KERNEL_RADIUS = 15  # the mask's blur support, in pixels at 224 px: zero beyond it


def ellipse_from_landmarks(
    landmarks: str, window: tuple[float, float, float, float], margin: float
) -> tuple[float, float, float, float]:
    """The face ellipse in crop fractions, from MTCNN's landmarks (image pixels, JSON) and the
    window (x0, y0, x1, y1) the crop was cut from around the face box with `margin` (the
    geometry of `face_detection.crop_box`, square or stretched box).

    Falls back to `DEFAULT_ELLIPSE` scaled to the margin when the landmarks are missing.
    """
    x0, y0, x1, y1 = (float(v) for v in window)
    try:
        points = np.array(list(json.loads(landmarks).values()), dtype=float)
    except (TypeError, ValueError, json.JSONDecodeError):
        points = np.zeros((0, 2))
    if points.shape != (5, 2) or x1 <= x0 or y1 <= y0:
        return margin_ellipse(margin)
    crop = (points - [x0, y0]) / [x1 - x0, y1 - y0]
    eyes = crop[:2]
    eye_distance = float(np.linalg.norm(eyes[1] - eyes[0]))
    if eye_distance <= 0:
        return margin_ellipse(margin)
    cx, cy = crop.mean(axis=0)
    return (float(cx), float(cy), 1.05 * eye_distance, 1.35 * eye_distance)


def margin_ellipse(margin: float) -> tuple[float, float, float, float]:
    """`DEFAULT_ELLIPSE` for a crop cut with `margin` on each side."""
    cx, cy, rx, ry = DEFAULT_ELLIPSE
    k = 1.0 / (1.0 + 2.0 * margin)
    return (0.5 + (cx - 0.5) * k, 0.5 + (cy - 0.5) * k, rx * k, ry * k)


# Facial parts as ellipses relative to the face ellipse (its centre lies near the nose, between
# the five landmarks): centre offsets and half-axes in units of the face's half-axes.
PARTS: dict[str, tuple[float, float, float, float]] = {
    "eyes": (0.0, -0.38, 0.85, 0.28),
    "nose": (0.0, 0.0, 0.32, 0.40),
    "mouth": (0.0, 0.50, 0.50, 0.25),
    "lower_face": (0.0, 0.45, 0.90, 0.55),
}


def part_ellipse(
    ellipse: tuple[float, float, float, float] | np.ndarray, part: str
) -> tuple[float, float, float, float]:
    """The ellipse of one facial part (`PARTS`) inside a face ellipse (crop fractions)."""
    cx, cy, rx, ry = (float(v) for v in ellipse)
    dx, dy, sx, sy = PARTS[part]
    return (cx + dx * rx, cy + dy * ry, sx * rx, sy * ry)


def _gaussian_kernel(sigma: tf.Tensor, radius: int) -> tf.Tensor:
    import tensorflow as tf

    x = tf.range(-radius, radius + 1, dtype=tf.float32)
    k = tf.exp(-(x**2) / (2.0 * sigma**2))
    return k / tf.reduce_sum(k)


def _separable_blur(image: tf.Tensor, sigma: tf.Tensor, radius: int) -> tf.Tensor:
    """Gaussian blur of an HxWxC image with a kernel of finite support (`radius`)."""
    import tensorflow as tf

    k = _gaussian_kernel(sigma, radius)
    channels = tf.shape(image)[-1]
    kx = tf.tile(k[None, :, None, None], [1, 1, channels, 1])
    ky = tf.tile(k[:, None, None, None], [1, 1, channels, 1])
    x = tf.nn.depthwise_conv2d(image[None], kx, [1, 1, 1, 1], "SAME")
    x = tf.nn.depthwise_conv2d(x, ky, [1, 1, 1, 1], "SAME")
    return x[0]


def blend_mask(ellipse: tf.Tensor, size: int, seed: tf.Tensor) -> tf.Tensor:
    """A soft, deformed face mask (size x size x 1) in [0, 1], exactly 0 far from the face."""
    import tensorflow as tf

    seeds = tf.random.experimental.stateless_split(seed, 5)
    jitter = tf.random.stateless_uniform([4], seeds[0], 0.9, 1.1)
    e = tf.cast(ellipse, tf.float32) * jitter * float(size)
    cx, cy, rx, ry = e[0], e[1], e[2], e[3]
    grid = tf.range(size, dtype=tf.float32) + 0.5
    yy, xx = tf.meshgrid(grid, grid, indexing="ij")
    angle = tf.atan2(yy - cy, xx - cx)
    phases = tf.random.stateless_uniform([3], seeds[1], 0.0, 2.0 * math.pi)
    amplitudes = tf.random.stateless_uniform([3], seeds[2], 0.0, 0.08)
    waves = tf.stack([tf.sin((k + 2.0) * angle + phases[k]) for k in range(3)], axis=-1)
    edge = 1.0 + tf.reduce_sum(amplitudes * waves, axis=-1)  # a wobbly, non-elliptic outline
    radius = tf.sqrt(((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2)
    hard = tf.cast(radius <= edge, tf.float32)[..., None]
    scale = size / 224.0
    kernel_radius = max(1, int(round(KERNEL_RADIUS * scale)))
    sigma = tf.random.stateless_uniform([], seeds[3], 2.0, 6.0) * scale
    soft = _separable_blur(hard, sigma, kernel_radius)
    strength = tf.random.stateless_uniform([], seeds[4], 0.5, 1.0)
    return tf.clip_by_value(soft * strength, 0.0, 1.0)


def jittered_copy(image: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """The face to blend back: colour-, sharpness- and geometry-jittered (0..255 floats)."""
    import tensorflow as tf

    seeds = tf.random.experimental.stateless_split(seed, 5)
    size = tf.shape(image)[0]
    shift = tf.random.stateless_uniform([1, 1, 3], seeds[0], -20.0, 20.0)
    contrast = tf.random.stateless_uniform([], seeds[1], 0.9, 1.1)
    out = (image - 127.5) * contrast + 127.5 + shift
    blurred = _separable_blur(out, tf.constant(1.2), 3)
    # < 0 blurs, > 0 sharpens (unsharp masking)
    amount = tf.random.stateless_uniform([], seeds[2], -1.0, 1.0)
    out = out + amount * (out - blurred)
    zoom = tf.random.stateless_uniform([], seeds[3], 0.96, 1.04)
    offset = tf.random.stateless_uniform([2], seeds[4], -0.02, 0.02) * tf.cast(size, tf.float32)
    transform = tf.stack([zoom, 0.0, offset[0], 0.0, zoom, offset[1], 0.0, 0.0])[None]
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=out[None],
        transforms=transform,
        output_shape=tf.shape(image)[:2],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="REFLECT",
    )[0]
    return tf.clip_by_value(out, 0.0, 255.0)


def self_blend(
    image: tf.Tensor, ellipse: tf.Tensor, seed: tf.Tensor, size: int
) -> tuple[tf.Tensor, tf.Tensor]:
    """(pseudo-fake, mask) of a size x size x 3 real face (0..255 floats).

    The image changes only where the mask is above zero.
    """
    import tensorflow as tf

    seeds = tf.random.experimental.stateless_split(seed, 2)
    mask = blend_mask(ellipse, size, seeds[0])
    target = jittered_copy(image, seeds[1])
    blended = mask * target + (1.0 - mask) * image
    blended.set_shape([size, size, 3])
    return blended, mask


def align_donor(
    donor: tf.Tensor, donor_ellipse: tf.Tensor, ellipse: tf.Tensor, size: int
) -> tf.Tensor:
    """The donor face moved and scaled (one scale, no shear) so its ellipse lies on `ellipse`."""
    import tensorflow as tf

    d = tf.cast(donor_ellipse, tf.float32) * float(size)
    t = tf.cast(ellipse, tf.float32) * float(size)
    scale = (d[2] / t[2] + d[3] / t[3]) / 2.0
    # Output pixel (x, y) reads the donor at (scale * (x - cx_t) + cx_d, likewise for y).
    transform = tf.stack(
        [scale, 0.0, d[0] - scale * t[0], 0.0, scale, d[1] - scale * t[1], 0.0, 0.0]
    )[None]
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=donor[None],
        transforms=transform,
        output_shape=tf.constant([size, size]),
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="REFLECT",
    )[0]
    out.set_shape([size, size, 3])
    return out


def match_colours(source: tf.Tensor, target: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """`source` with each channel's mean and spread under `mask` set to `target`'s there."""
    import tensorflow as tf

    weight = mask / (tf.reduce_sum(mask) + 1e-6)

    def moments(image: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        mean = tf.reduce_sum(image * weight, axis=[0, 1])
        var = tf.reduce_sum((image - mean) ** 2 * weight, axis=[0, 1])
        return mean, tf.sqrt(var + 1e-3)

    s_mean, s_std = moments(source)
    t_mean, t_std = moments(target)
    return tf.clip_by_value((source - s_mean) / s_std * t_std + t_mean, 0.0, 255.0)


def donor_blend(
    image: tf.Tensor,
    ellipse: tf.Tensor,
    donor: tf.Tensor,
    donor_ellipse: tf.Tensor,
    seed: tf.Tensor,
    size: int,
) -> tuple[tf.Tensor, tf.Tensor]:
    """(pseudo-fake, mask) of a size x size x 3 real face with another face (`donor`, same
    size, 0..255 floats) pasted in: aligned on the ellipses, colour-matched, jittered, blended.

    The image changes only where the mask is above zero.
    """
    import tensorflow as tf

    seeds = tf.random.experimental.stateless_split(seed, 2)
    mask = blend_mask(ellipse, size, seeds[0])
    moved = match_colours(align_donor(donor, donor_ellipse, ellipse, size), image, mask)
    target = jittered_copy(moved, seeds[1])
    blended = mask * target + (1.0 - mask) * image
    blended.set_shape([size, size, 3])
    return blended, mask
