"""Reading user images: formats, EXIF orientation, odd colour modes, corrupt data, bombs."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from deepfake_detector.sources.images import InputError, is_video, read_image, read_rgb


def encode(image: Image.Image, fmt: str, **kwargs: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP"])
def test_common_formats_decode_to_rgb(fmt: str) -> None:
    rgb = read_image(encode(Image.new("RGB", (40, 30), (200, 10, 10)), fmt))
    assert rgb.shape == (30, 40, 3) and rgb.dtype == np.uint8
    assert rgb[..., 0].mean() > 150 and rgb[..., 2].mean() < 60


def test_exif_orientation_is_honoured() -> None:
    image = Image.new("RGB", (60, 20), (0, 0, 0))
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    assert read_image(encode(image, "JPEG", exif=exif)).shape == (60, 20, 3)


@pytest.mark.parametrize(
    ("mode", "value"),
    [
        ("L", 128),
        ("LA", (128, 255)),
        ("RGBA", (0, 0, 0, 0)),
        ("CMYK", (0, 0, 0, 0)),
        ("I;16", 65535),
    ],
)
def test_grey_alpha_cmyk_and_16_bit(mode: str, value: object) -> None:
    fmt = "TIFF" if mode == "CMYK" else "PNG"
    rgb = read_image(encode(Image.new(mode, (8, 8), value), fmt))
    assert rgb.shape == (8, 8, 3)
    if mode == "RGBA":
        assert rgb.min() == 255  # transparent pixels are flattened onto white
    if mode == "I;16":
        assert rgb.min() == 255


def test_bad_input_gives_clear_errors() -> None:
    with pytest.raises(InputError, match="empty file"):
        read_image(b"")
    with pytest.raises(InputError, match="not a readable image"):
        read_image(b"\x00" * 500)
    truncated = encode(Image.effect_noise((400, 400), 60).convert("RGB"), "JPEG")[:2000]
    with pytest.raises(InputError, match="corrupt image data"):
        read_image(truncated)
    with pytest.raises(InputError, match="allowed"):
        read_image(encode(Image.new("L", (3000, 3000)), "PNG"), max_pixels=1_000_000)


def test_read_rgb_is_read_image_of_a_file_or_none_with_the_reason_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    image = Image.effect_noise((40, 30), 60).convert("RGB")
    exif = image.getexif()
    exif[0x0112] = 8  # rotate 90 degrees counter-clockwise to display
    path = tmp_path / "face.jpg"
    path.write_bytes(encode(image, "JPEG", exif=exif))
    rgb = read_rgb(path)
    assert rgb is not None and rgb.shape == (40, 30, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb, read_image(path))
    (tmp_path / "empty.png").write_bytes(b"")
    assert read_rgb(tmp_path / "empty.png") is None and "empty.png: empty file" in caplog.text
    assert read_rgb(tmp_path) is None  # a folder: cannot read the file


def test_video_suffixes() -> None:
    assert is_video(Path("a.MP4")) and is_video(Path("b.webm")) and not is_video(Path("c.jpg"))
