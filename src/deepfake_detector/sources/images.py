"""The one image decoder: any common format, EXIF orientation, odd colour modes, size caps.

`read_image` decodes every image the model is shown: face crops for training (inside `tf.data`:
the training stage gives it to `input_pipeline.face_dataset`), face crops for evaluation and
export (`read_rgb`, `crop_scores.score_files`), frames for face cropping (`read_rgb`), and the
pictures people send for a verdict. One decoder, so a crop looks the same to the model when it
learns and when it answers: upright (EXIF orientation applied), RGB uint8, one JPEG decoder.
"""

from __future__ import annotations

import io
import logging
import warnings
from pathlib import Path

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
log = logging.getLogger(__name__)


class InputError(UserError, ValueError):
    """A file that is not a readable image or video; the message says why, for people."""


def is_video(path: Path) -> bool:
    """Videos are told apart from images by their suffix."""
    return path.suffix.lower() in VIDEO_SUFFIXES


def read_image(source: Path | bytes, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode an image to RGB uint8 HxWx3, upright (EXIF), grey, alpha, CMYK and 16-bit handled.

    Animated images and multi-page files are judged on their first frame. A file that cannot
    be decoded raises `InputError`, whose message names the file and says why.
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
            ImageOps.exif_transpose(image, in_place=True)  # upright; no copy when it is
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
    """Any PIL mode to RGB uint8; transparency is flattened onto white.

    16-bit grey keeps its high byte, as Pillow and OpenCV reduce 16-bit colour; 32-bit integer
    grey is read as 16-bit when a value exceeds 255, else as 8-bit.
    """
    if image.mode in ("I;16", "I;16B", "I;16L"):
        grey = (np.asarray(image).astype(np.uint16) >> 8).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    if image.mode == "I":
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if values.max() > 255 else 255.0
        grey = np.clip(values / top * 255.0, 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return np.asarray(image if image.mode == "RGB" else image.convert("RGB"), dtype=np.uint8)


def read_rgb(path: Path) -> np.ndarray | None:
    """`read_image` of a file, or None (the reason logged) when it cannot be decoded.

    For callers that skip an unreadable file and go on (frames without a face, crops left out);
    those that must stop call `read_image`, whose error says why.
    """
    try:
        return read_image(Path(path))
    except InputError as exc:
        log.warning("skipped: %s", exc)
        return None
