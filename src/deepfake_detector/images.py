"""Reading user images safely: any common format, EXIF orientation, odd colour modes, size caps."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from deepfake_detector.errors import UserError

IMAGE_FORMATS = {"JPEG", "PNG", "WEBP", "BMP", "MPO", "TIFF"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"}
MAX_PIXELS = (
    80_000_000  # about 9000 x 9000; larger is refused before decoding (decompression bombs)
)


class InputError(UserError, ValueError):
    """A file that is not a readable image or video; the message says why, for people."""


def is_video(path: Path) -> bool:
    """Videos are told apart from images by their suffix."""
    return path.suffix.lower() in VIDEO_SUFFIXES


def read_image(source: Path | bytes, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode an image to RGB uint8, upright (EXIF), with grey, alpha, CMYK and 16-bit handled."""
    name = source.name if isinstance(source, Path) else "upload"
    data = source.read_bytes() if isinstance(source, Path) else source
    if not data:
        raise InputError(f"{name}: empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if image.format not in IMAGE_FORMATS:
                raise InputError(f"{name}: unsupported image format {image.format}")
            if image.width * image.height > max_pixels:
                raise InputError(
                    f"{name}: {image.width}x{image.height} pixels is more than the "
                    f"{max_pixels:,} allowed"
                )
            image.load()
            image = ImageOps.exif_transpose(image)
    except InputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InputError(
            f"{name}: refused: more pixels than the {max_pixels:,} allowed, a possible "
            f"decompression bomb ({exc})"
        ) from exc
    except UnidentifiedImageError as exc:
        raise InputError(f"{name}: not a readable image ({exc.__class__.__name__})") from exc
    except (OSError, SyntaxError, ValueError) as exc:  # truncated or corrupt data
        raise InputError(f"{name}: corrupt image data ({exc})") from exc
    return to_rgb(image)


def to_rgb(image: Image.Image) -> np.ndarray:
    """Any PIL mode to RGB uint8; transparency is flattened onto white."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if values.max() > 255 else 255.0
        grey = np.clip(values / top * 255.0, 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return np.asarray(image.convert("RGB"), dtype=np.uint8)
