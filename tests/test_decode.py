"""One decoder: training, evaluation and prediction see the same pixels for the same file.

Training reads crops inside `tf.data` (`face_dataset`, given `read_image` as the stages give it),
evaluation through `score_files`, prediction through `Detector.predict_path`; all three decode
with `sources.images.read_image` and resize with the same bilinear `tf.image.resize`.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from deepfake_detector.core.config import FacesParams, FramesParams
from deepfake_detector.inference.crop_scores import score_files
from deepfake_detector.inference.inference_config import InferenceConfig
from deepfake_detector.inference.predict import Detector, FaceScore, ModelRef
from deepfake_detector.learning.calibration import Calibration
from deepfake_detector.learning.input_pipeline import face_dataset
from deepfake_detector.sources.images import read_image, read_rgb

SIZE = 48  # the model's input size in these tests


def flat_detector(size: int = SIZE) -> Detector:
    """A detector whose "score" is the resized crop itself (flattened): what the model sees."""
    import keras

    model = keras.Sequential([keras.Input((size, size, 3)), keras.layers.Flatten()])
    config = InferenceConfig(size, FacesParams(), FramesParams(count=4), Calibration())
    return Detector(model, config, ModelRef("flat", "test", "1"))


def training_view(path: Path, size: int) -> np.ndarray:
    """The image training sees for `path`: decoded and resized by the input pipeline."""
    ds = face_dataset([path], np.zeros(1), size, 1, read=read_image)
    return next(iter(ds))[0].numpy()[0]


def evaluation_view(path: Path, size: int = SIZE) -> np.ndarray:
    """The image evaluation feeds the model for `path` (`score_files`)."""
    return score_files(flat_detector(size), [path]).reshape(size, size, 3)


def prediction_decode(path: Path, monkeypatch: pytest.MonkeyPatch) -> np.ndarray:
    """The RGB array `Detector.predict_path` hands to face detection for an image file."""
    seen: list[np.ndarray] = []

    def capture(self: Detector, rgb: np.ndarray) -> list[FaceScore]:
        seen.append(rgb)
        return []

    monkeypatch.setattr(Detector, "score_image", capture)
    result = flat_detector().predict_path(path)
    assert result["verdict"] == "no_face", result
    return seen[0]


def upright_picture(height: int = 64, width: int = 64) -> np.ndarray:
    """A picture whose orientation shows: a white band along its top, red on the left."""
    rgb = np.full((height, width, 3), 60, np.uint8)
    rgb[: height // 4] = 255
    rgb[height // 4 :, : width // 3, 0] = 230
    return rgb


def rotated_jpeg(path: Path, upright: np.ndarray) -> Path:
    """A JPEG stored turned a quarter to the left, with EXIF orientation 6 ("turn right")."""
    stored = Image.fromarray(np.ascontiguousarray(np.rot90(upright, k=1)))
    exif = stored.getexif()
    exif[0x0112] = 6
    stored.save(path, format="JPEG", quality=95, exif=exif)
    return path


def test_exif_rotated_jpeg_is_the_same_upright_picture_in_training_and_prediction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    upright = upright_picture()
    path = rotated_jpeg(tmp_path / "turned.jpg", upright)
    predicted = prediction_decode(path, monkeypatch)
    trained = training_view(path, 64)  # the crop's own size: the resize changes nothing
    assert predicted.shape == (64, 64, 3) and predicted.dtype == np.uint8
    np.testing.assert_array_equal(trained, predicted.astype(np.float32))
    np.testing.assert_array_equal(evaluation_view(path, 64), predicted.astype(np.float32))
    # Both are the upright picture (up to JPEG's loss), not the stored, turned one.
    error = np.abs(predicted.astype(int) - upright).mean()
    turned = np.abs(predicted.astype(int) - np.rot90(upright, k=1)).mean()
    assert error < 3 and turned > 40


def test_training_and_evaluation_resize_a_crop_alike(tmp_path: Path) -> None:
    """A crop of another size than the model's is resized the same way on both sides."""
    rgb = np.random.default_rng(0).integers(0, 256, (80, 80, 3), dtype=np.uint8)
    path = tmp_path / "crop.png"
    Image.fromarray(rgb).save(path)
    trained, evaluated = training_view(path, SIZE), evaluation_view(path)
    assert trained.shape == (SIZE, SIZE, 3)
    np.testing.assert_allclose(trained, evaluated, atol=1e-3)


def write_mode(path: Path, kind: str) -> Path:
    """One small image of an awkward kind; `path`'s suffix is set by the kind."""
    rng = np.random.default_rng(1)
    if kind == "rgb16_png":  # 16-bit colour, written by OpenCV (PIL writes no such PNG)
        cv2.imwrite(str(path.with_suffix(".png")), rng.integers(0, 65536, (20, 30, 3), np.uint16))
        return path.with_suffix(".png")
    images = {
        "grey_png": Image.fromarray(rng.integers(0, 256, (20, 30), np.uint8), "L"),
        "grey_jpeg": Image.fromarray(rng.integers(0, 256, (20, 30), np.uint8), "L"),
        "rgba_png": Image.fromarray(rng.integers(0, 256, (20, 30, 4), np.uint8), "RGBA"),
        "palette_png": Image.new("RGB", (30, 20), (10, 200, 30)).convert("P"),
        "grey16_png": Image.fromarray(rng.integers(0, 65536, (20, 30), np.uint16), "I;16"),
        "cmyk_jpeg": Image.new("CMYK", (30, 20), (0, 200, 200, 0)),
    }
    image = images[kind]
    out = path.with_suffix(".jpg" if kind.endswith("jpeg") else ".png")
    image.save(out)
    return out


@pytest.mark.parametrize(
    "kind",
    ["grey_png", "grey_jpeg", "rgba_png", "palette_png", "grey16_png", "rgb16_png", "cmyk_jpeg"],
)
def test_every_kind_decodes_to_rgb_uint8_alike_in_training_and_prediction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    path = write_mode(tmp_path / kind, kind)
    predicted = prediction_decode(path, monkeypatch)
    assert predicted.shape == (20, 30, 3) and predicted.dtype == np.uint8
    decoded = read_rgb(path)
    assert decoded is not None and decoded.dtype == np.uint8
    np.testing.assert_array_equal(decoded, predicted)
    import tensorflow as tf

    from deepfake_detector.learning.input_pipeline import decode_file

    ds = tf.data.Dataset.from_tensor_slices([str(path)]).map(lambda p: decode_file(p, read_image))
    trained = next(iter(ds))
    assert trained.dtype == tf.uint8 and tuple(trained.shape) == (20, 30, 3)
    np.testing.assert_array_equal(trained.numpy(), predicted)


def test_sixteen_bit_keeps_its_high_byte_in_grey_and_in_colour(tmp_path: Path) -> None:
    grey = np.array([[0, 255, 256, 0x8000, 0xFFFF]], np.uint16)
    Image.fromarray(grey, "I;16").save(tmp_path / "g.png")
    colour = np.repeat(grey[..., None], 3, axis=2)
    cv2.imwrite(str(tmp_path / "c.png"), colour)
    expected = np.array([0, 0, 1, 128, 255], np.uint8)
    for name in ("g.png", "c.png"):
        rgb = read_image(tmp_path / name)
        np.testing.assert_array_equal(rgb[0, :, 0], expected)
        assert (rgb == rgb[..., :1]).all()  # grey on every channel


def test_an_unreadable_file_keeps_each_path_s_answer(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Training stops with TensorFlow's InvalidArgumentError (as `tf.io.decode_image` did), now
    naming the file and the reason; evaluation and face cropping skip it (`read_rgb` gives None,
    as `cv2.imread` did); a prediction answers with verdict `error`."""
    import tensorflow as tf

    good = tmp_path / "good.png"
    Image.fromarray(upright_picture()).save(good)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff" + b"junk" * 100)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"bad\.jpg: not a readable image"):
        list(face_dataset([good, bad], np.zeros(2), SIZE, 2, read=read_image))
    assert read_rgb(bad) is None
    assert "bad.jpg: not a readable image" in caplog.text
    assert read_rgb(tmp_path / "missing.jpg") is None
    assert len(score_files(flat_detector(), [good, bad])) == SIZE * SIZE * 3  # the good one
    result = flat_detector().predict_path(bad)
    assert result["verdict"] == "error" and "bad.jpg" in result["error"]


def test_the_decoder_of_training_is_deterministic_under_a_parallel_map(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    files = []
    for i in range(12):
        path = tmp_path / f"{i}.jpg"
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), np.uint8)).save(path, quality=90)
        files.append(path)

    def epoch() -> tuple[np.ndarray, np.ndarray]:
        ds = face_dataset(files, np.arange(12.0), 32, 5, shuffle_seed=7, read=read_image)
        batches = list(ds)
        return np.concatenate([x for x, _ in batches]), np.concatenate([y for _, y in batches])

    images, order = epoch()
    again, order_again = epoch()
    assert sorted(order.tolist()) == list(range(12)) and np.array_equal(order, order_again)
    np.testing.assert_array_equal(images, again)
    for image, i in zip(images, order.astype(int), strict=True):  # each image with its label
        np.testing.assert_array_equal(image, training_view(files[i], 32))
