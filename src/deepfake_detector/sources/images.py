"""Reading user images safely: any common format, EXIF orientation, odd colour modes, size caps."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from deepfake_detector.core.errors import UserError

IMAGE_FORMATS = {"JPEG", "PNG", "WEBP", "BMP", "MPO", "TIFF", "GIF", "AVIF"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".avif"}
# Read by name so that a folder's such files get their own clear "unsupported" answer.
UNSUPPORTED_SUFFIXES = {".heic", ".heif"}
# ISO-BMFF brands of HEIF images (HEIC photos from phones): named when no decoder reads them.
HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"}
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
    """Decode an image to RGB uint8, upright (EXIF), with grey, alpha, CMYK and 16-bit handled.

    Animated images and multi-page files are judged on their first frame.
    """
    name = source.name if isinstance(source, Path) else "upload"
    try:
        data = source.read_bytes() if isinstance(source, Path) else source
    except OSError as exc:  # a symlink loop, a dangling link, no permission, a folder
        raise InputError(f"{name}: cannot read the file ({exc.strerror or exc})") from exc
    if not data:
        raise InputError(f"{name}: empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image: Image.Image = Image.open(io.BytesIO(data))
            if image.format not in IMAGE_FORMATS:
                raise InputError(f"{name}: unsupported image format {image.format}")
            if image.width * image.height > max_pixels:
                raise InputError(
                    f"{name}: {image.width}x{image.height} pixels is more than the "
                    f"{max_pixels:,} allowed"
                )
            image.load()  # an animated GIF, WebP or multi-page TIFF: its first frame
            image = ImageOps.exif_transpose(image)
    except InputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InputError(
            f"{name}: refused: more pixels than the {max_pixels:,} allowed, a possible "
            f"decompression bomb ({exc})"
        ) from exc
    except UnidentifiedImageError as exc:
        if data[4:8] == b"ftyp" and data[8:12] in HEIF_BRANDS:  # AVIF decodes; HEIC does not
            raise InputError(
                f"{name}: unsupported image format HEIC/HEIF (no decoder here); "
                "convert it to JPEG or PNG"
            ) from exc
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


def read_rgb(path: Path) -> np.ndarray | None:
    """Read an image file as RGB, or None if it cannot be decoded."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    return None if bgr is None else cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
