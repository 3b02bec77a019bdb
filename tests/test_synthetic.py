"""Self-blended pseudo-fakes: the mask, where the image changes, determinism, the knob."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from deepfake_detector.core.config import CropGeometry, TrainParams
from deepfake_detector.learning.input_pipeline import face_dataset
from deepfake_detector.learning.synthetic import (
    DEFAULT_ELLIPSE,
    blend_mask,
    donor_blend,
    ellipse_from_landmarks,
    margin_ellipse,
    self_blend,
)
from deepfake_detector.recipes.training import face_ellipses, training_rows
from deepfake_detector.sources.face_detection import crop_box
from deepfake_detector.sources.face_images import with_label
from deepfake_detector.sources.images import read_image


def _face(size: int = 96, seed: int = 0) -> np.ndarray:
    """A textured image: random noise, so any change to it shows."""
    return np.random.default_rng(seed).uniform(0, 255, (size, size, 3)).astype("float32")


@pytest.mark.parametrize("seed", [(0, 1), (5, 9), (123, 4)])
def test_mask_is_within_zero_and_one_and_covers_the_face_not_the_corners(seed):
    import tensorflow as tf

    mask = blend_mask(tf.constant(DEFAULT_ELLIPSE), 96, tf.constant(seed, tf.int64)).numpy()
    assert mask.shape == (96, 96, 1)
    assert mask.min() >= 0.0 and mask.max() <= 1.0
    assert mask[53, 48, 0] > 0.3  # the centre of the face
    for corner in (mask[:4, :4], mask[:4, -4:], mask[-4:, :4], mask[-4:, -4:]):
        assert (corner == 0).all()


def test_the_image_changes_only_where_the_mask_is_above_zero():
    import tensorflow as tf

    image = tf.constant(_face())
    for seed in ((0, 1), (2, 3), (7, 7)):
        blended, mask = self_blend(
            image, tf.constant(DEFAULT_ELLIPSE), tf.constant(seed, tf.int64), 96
        )
        changed = np.abs(blended.numpy() - image.numpy()).max(axis=-1) > 0
        inside = mask.numpy()[..., 0] > 0
        assert not (changed & ~inside).any()
        assert changed.sum() > 0.5 * inside.sum()  # and it does change inside


def test_another_face_changes_the_image_only_inside_the_mask_and_takes_its_colours():
    """Face X-ray's blended image: the donor is someone else; outside the mask nothing moves,
    and inside, the pasted face wears the target's colours (mean per channel near the
    target's), not the donor's."""
    import tensorflow as tf

    image = tf.constant(_face(96, 0) * 0.5 + 100.0)  # grey-ish, mean about 164
    donor = tf.constant(_face(96, 1) * 0.3)  # dark, mean about 38
    donor_ellipse = tf.constant((0.45, 0.5, 0.3, 0.38))  # placed elsewhere in its crop
    for seed in ((0, 1), (4, 2)):
        blended, mask = donor_blend(
            image,
            tf.constant(DEFAULT_ELLIPSE),
            donor,
            donor_ellipse,
            tf.constant(seed, tf.int64),
            96,
        )
        b, m, x = blended.numpy(), mask.numpy()[..., 0], image.numpy()
        changed = np.abs(b - x).max(axis=-1) > 0
        assert not (changed & (m == 0)).any()
        assert changed.sum() > 0.5 * (m > 0).sum()
        core = m > 0.45
        assert abs(b[core].mean() - x[core].mean()) < 30  # the target's colours, give or take
        assert not np.allclose(b[core], x[core], atol=5)  # but another face's texture


def test_donors_are_other_people_and_seeded():
    rows = _rows().assign(group=["a", "a", "b", "b", "a", "b", "c", "c", "d", "d"])
    other = training_rows(rows, TrainParams(synthetic_fakes="mix", blend_donor="other"))
    pasted = [(f, d) for f, d, b in zip(other.files, other.donors, other.blend, strict=True) if b]
    assert len(pasted) == 4 and all(d for _, d in pasted)
    group = dict(zip(rows["path"], rows["group"], strict=True))
    assert all(group[f] != group[d] for f, d in pasted)  # never the same person
    assert other.counts["synthetic_fakes_other_face"] == 4
    both = training_rows(rows, TrainParams(synthetic_fakes="mix", blend_donor="both"))
    assert sum(bool(d) for d in both.donors) == 2  # half of the four
    again = training_rows(rows, TrainParams(synthetic_fakes="mix", blend_donor="both"))
    assert again.donors == both.donors
    self = training_rows(rows, TrainParams(synthetic_fakes="mix"))
    assert not any(self.donors) and self.files == other.files  # same faces chosen either way


def test_same_seed_same_batch_other_seed_other_batch(tmp_path):
    files = []
    for i in range(6):
        path = tmp_path / f"{i}.png"
        Image.fromarray(_face(64, i).astype("uint8")).save(path)
        files.append(path)
    blend = np.array([True, False] * 3)
    donors = [str(files[5]), "", "", "", "", ""]  # the first pastes in another face

    def first_batch(seed: int, donors: list[str] | None = None) -> np.ndarray:
        ds = face_dataset(
            files,
            np.zeros(6),
            64,
            6,
            read=read_image,
            shuffle_seed=seed,
            blend=blend,
            donors=donors,
        )
        return next(iter(ds))[0].numpy()

    assert np.array_equal(first_batch(3), first_batch(3))
    assert not np.array_equal(first_batch(3), first_batch(4))
    assert np.array_equal(first_batch(3, donors), first_batch(3, donors))
    assert not np.array_equal(first_batch(3, donors), first_batch(3))


def test_ellipse_from_landmarks_follows_the_face():
    # A face box at (100, 100), 100 px square, crop with margin 0.5 -> a 200 px crop from 50.
    marks = {
        "left_eye": (130, 130),
        "right_eye": (170, 130),
        "nose": (150, 150),
        "mouth_left": (135, 175),
        "mouth_right": (165, 175),
    }
    window = crop_box((100, 100, 100, 100), 0.5, 0, 0)
    assert window == (50, 50, 250, 250)
    cx, cy, rx, ry = ellipse_from_landmarks(json.dumps(marks), window, 0.5)
    assert cx == pytest.approx(0.5)
    assert cy == pytest.approx((152 - 50) / 200)
    assert rx == pytest.approx(1.05 * 40 / 200) and ry > rx
    # No landmarks: where a face lies in a crop with that margin.
    assert ellipse_from_landmarks("", window, 0.5) == margin_ellipse(0.5)
    assert margin_ellipse(0.0) == DEFAULT_ELLIPSE


def test_the_face_ellipse_of_an_own_crop_reads_its_box_not_its_label():
    # A crop_faces row as split.csv stores it (box x, y, w, h in frame pixels) and as it is read
    # for training: the label takes `y`, the box's top moves to `box_y`.
    marks = {
        "left_eye": (330, 230),
        "right_eye": (370, 230),
        "nose": (350, 250),
        "mouth_left": (335, 275),
        "mouth_right": (365, 275),
    }
    row = {"x": 300, "y": 200, "w": 100, "h": 100, "landmarks": json.dumps(marks), "label": "real"}
    rows = with_label(pd.DataFrame([row]))
    assert rows["y"].tolist() == [0.0] and rows["box_y"].tolist() == [200]
    for geometry in (CropGeometry("square", 0.3), CropGeometry("box", 0.0)):
        ((cx, cy, rx, ry),) = face_ellipses(rows, geometry)
        # The face sits mid-crop, a little below the middle (the landmarks' mean), not off it.
        assert cx == pytest.approx(0.5) and 0.5 < cy < 0.65 and 0 < rx < ry < 0.6
    # A stretched box crop: the same face spans more of the crop than a square with margin.
    square = face_ellipses(rows, CropGeometry("square", 0.3))[0]
    box = face_ellipses(rows, CropGeometry("box", 0.0))[0]
    assert box[2] > square[2]


def _rows() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "path": [f"{i}.jpg" for i in range(10)],
            "y": np.array([0, 0, 0, 0, 1, 1, 0, 0, 0, 0], "float32"),
            "real_only": [False] * 6 + [True] * 4,
        }
    )


def test_the_knob_decides_what_trains():
    none = training_rows(_rows(), TrainParams(synthetic_fakes="none"))
    assert len(none.files) == 6 and not none.blend.any()  # real-only faces left out
    assert none.counts["real_only_faces_left_out"] == 4
    sbi = training_rows(_rows(), TrainParams(synthetic_fakes="sbi", synthetic_share=1.0))
    assert sbi.y.sum() == 8 and sbi.blend.sum() == 8  # every fake is a self-blend
    mix = training_rows(_rows(), TrainParams(synthetic_fakes="mix", synthetic_share=0.5))
    assert mix.blend.sum() == 4 and mix.y.sum() == 6  # 2 real fakes + 4 self-blends
    assert (mix.y[mix.blend] == 1).all()
    again = training_rows(_rows(), TrainParams(synthetic_fakes="mix", synthetic_share=0.5))
    assert again.files == mix.files  # seeded


def test_augmented_batches_repeat_bit_for_bit_under_a_seed(tmp_path):
    """Every augmentation drawn (flip, brightness, contrast, blur, JPEG) comes from the image's
    own seed: the same shuffle seed gives the same batches, whatever the threads' order, so a
    training run is repeatable; another seed gives others."""
    from deepfake_detector.core.config import AugmentParams

    files = []
    for i in range(12):
        path = tmp_path / f"{i}.png"
        Image.fromarray(_face(64, i).astype("uint8")).save(path)
        files.append(path)
    every = AugmentParams(blur_prob=0.5, jpeg_prob=0.5)
    blend = np.array([True, False] * 6)

    def batches(seed: int, with_blend: bool) -> np.ndarray:
        ds = face_dataset(
            files,
            np.zeros(12),
            64,
            4,
            read=read_image,
            augment_params=every,
            shuffle_seed=seed,
            blend=blend if with_blend else None,
        )
        return np.concatenate([images.numpy() for images, _ in ds])

    for with_blend in (False, True):
        assert np.array_equal(batches(5, with_blend), batches(5, with_blend))
        assert not np.array_equal(batches(5, with_blend), batches(6, with_blend))
