"""The bad-input corpus, made by the tests: broken videos, odd images, hostile manifests.

Every item is built here from photographs shipped in installed packages (see `media.py`), so the
corpus needs neither a download nor ../shared. Each item carries what a user should see: either
an answer (`answer`: "verdict" with the number of faces to find, or "no_face") or a clear refusal
(`answer="error"` with a fragment of the message).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
from media import no_face, one_face, pan_video, save_rgb
from PIL import Image


def random_bytes(n: int, seed: int) -> bytes:
    """`n` noise bytes, the same in every run (so RELIABILITY.md reads the same)."""
    return np.random.default_rng(seed).bytes(n)


@dataclass(frozen=True)
class Item:
    """One corpus file and what every entry point must make of it."""

    name: str  # file name in the corpus folder
    case: str  # words for RELIABILITY.md
    answer: str  # "verdict" (faces found and scored), "no_face", or "error"
    faces: int = 0  # faces a verdict must carry (at least this many)
    message: str = ""  # for errors: a fragment the message must contain (lower case)
    # import_faces (face crops, read by training's decoder) skips some files the verdict paths
    # answer: a fragment of its reason (tiny or strip images, formats training cannot read)
    stage_skip: str = ""
    uploadable: bool = True  # False for a link loop: no file to upload to the app or REST

    @property
    def stage_refuses(self) -> bool:
        return self.answer == "error" or bool(self.stage_skip)

    @property
    def is_video(self) -> bool:
        return Path(self.name).suffix == ".mp4"


def _jpeg(rgb: np.ndarray, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def _tiles(count: int, columns: int, size: int = 240) -> np.ndarray:
    """`count` copies of the portrait in a grid, each `size` px square."""
    face = cv2.resize(one_face(), (size, size))
    rows = -(-count // columns)
    canvas = np.full((rows * size, columns * size, 3), 255, np.uint8)
    for i in range(count):
        r, c = divmod(i, columns)
        canvas[r * size : (r + 1) * size, c * size : (c + 1) * size] = face
    return canvas


def _video(path: Path, frames: list[np.ndarray], fps: float = 6.0) -> Path:
    """Frames (RGB, one size) to an mp4v MP4; zero frames give the container alone."""
    height, width = frames[0].shape[:2] if frames else (240, 320)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    assert writer.isOpened(), "OpenCV cannot write mp4v here"
    for rgb in frames:
        writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def _audio_only(path: Path, seconds: float = 1.0, rate: int = 16_000) -> Path:
    """An MP4 with one AAC audio stream and no video stream (PyAV)."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=rate)
        stream.layout = "mono"
        samples, pts = 1024, 0
        tone = (0.2 * np.sin(np.arange(samples) * 0.1)).astype(np.float32)[None]
        for _ in range(int(seconds * rate / samples)):
            frame = av.AudioFrame.from_ndarray(tone, format="fltp", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = rate, pts, Fraction(1, rate)
            pts += samples
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def _exif_rotated(rgb: np.ndarray) -> bytes:
    """The portrait stored lying on its side, with EXIF orientation 6 saying how to stand it up."""
    lying = Image.fromarray(rgb).transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW to display
    buffer = io.BytesIO()
    lying.save(buffer, "JPEG", quality=90, exif=exif)
    return buffer.getvalue()


def _bomb() -> bytes:
    """A PNG of about 200 KB that claims 40000 x 40000 pixels (1.6 gigapixels)."""
    buffer = io.BytesIO()
    Image.new("1", (40_000, 40_000)).save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


def _animated_gif(rgb: np.ndarray) -> bytes:
    """Three frames of the portrait drifting sideways, looping."""
    frames = [Image.fromarray(np.roll(rgb, shift, axis=1)) for shift in (0, 6, 12)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buffer.getvalue()


def _avif(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "AVIF", quality=80)
    return buffer.getvalue()


def _heic_header() -> bytes:
    """The start of an ISO-BMFF file of brand `heic` (what phones write); no decoder reads it."""
    brands = b"heic" + b"\x00\x00\x00\x00" + b"mif1heic"
    box = b"ftyp" + brands
    return (len(box) + 4).to_bytes(4, "big") + box


def build_images(folder: Path) -> list[Item]:
    """The image corpus in `folder`; returns its items."""
    folder.mkdir(parents=True, exist_ok=True)
    face = one_face()
    pil = Image.fromarray(face)
    items: list[Item] = []

    def put(item: Item, data: bytes | None = None, image: Image.Image | None = None) -> None:
        path = folder / item.name
        if image is not None:
            image.save(path)
        else:
            path.write_bytes(data or b"")
        items.append(item)

    put(Item("good.jpg", "a plain portrait (control)", "verdict", 1), _jpeg(face))
    put(Item("zero_byte.jpg", "zero-byte image", "error", message="empty file"))
    big = cv2.resize(face, (8000, 8000), interpolation=cv2.INTER_LINEAR)
    put(Item("huge_8000.jpg", "8000x8000 image", "verdict", 1), _jpeg(big, 80))
    del big
    put(Item("grey.png", "grayscale (L)", "verdict", 1), image=pil.convert("L"))
    cmyk = io.BytesIO()
    pil.convert("CMYK").save(cmyk, "JPEG", quality=90)
    put(Item("cmyk.jpg", "CMYK JPEG", "verdict", 1), cmyk.getvalue())
    sixteen = (np.asarray(pil.convert("L"), np.uint16) * 257).astype(np.uint16)
    put(Item("grey16.png", "16-bit grayscale PNG", "verdict", 1), image=Image.fromarray(sixteen))
    rgba = pil.convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize(pil.size).point(lambda v: 128 + v // 2))
    put(Item("alpha.png", "RGBA with transparency", "verdict", 1), image=rgba)
    put(
        Item("exif_rotated.jpg", "EXIF-rotated photo (orientation 6)", "verdict", 1),
        _exif_rotated(face),
    )
    put(Item("twenty_faces.jpg", "twenty faces in one image", "verdict", 20), _jpeg(_tiles(20, 5)))
    put(Item("no_face.png", "no face (gradient)", "no_face"), image=Image.fromarray(no_face()))
    good = _jpeg(face)
    put(
        Item("truncated.jpg", "JPEG cut in half", "error", message="corrupt"),
        good[: len(good) // 2],
    )
    put(
        Item("corrupt.jpg", "JPEG header then random bytes", "error", message="image"),
        good[:20] + random_bytes(4000, seed=1),
    )
    put(
        Item("random.png", "random bytes named .png", "error", message="not a readable image"),
        random_bytes(5000, seed=2),
    )
    put(
        Item(
            "bomb.png", "decompression bomb (40000x40000 PNG of 200 KB)", "error", message="allowed"
        ),
        _bomb(),
    )
    tiny = "not a face crop"
    for name, case, (h, w) in [
        ("one_px.png", "1x1-pixel image", (1, 1)),
        ("row_1x300.png", "1xN image (one row of 300 pixels)", (1, 300)),
        ("column_300x1.png", "Nx1 image (one column of 300 pixels)", (300, 1)),
        ("two_px.png", "2x2-pixel image", (2, 2)),
        ("ten_px.png", "10x10-pixel image", (10, 10)),
        ("strip_20000x20.png", "extreme aspect ratio (20000x20)", (20, 20000)),
    ]:
        small = cv2.resize(face, (w, h), interpolation=cv2.INTER_AREA)
        put(Item(name, case, "no_face", stage_skip=tiny), image=Image.fromarray(small))
    unread = "not an image file"
    put(
        Item("animated.gif", "animated GIF (3 frames)", "verdict", 1, stage_skip=unread),
        _animated_gif(face),
    )
    put(Item("portrait.tif", "TIFF", "verdict", 1, stage_skip=unread), image=pil)
    put(Item("portrait.avif", "AVIF", "verdict", 1, stage_skip=unread), _avif(pil))
    put(
        Item("phone.heic", "HEIC photo (no decoder here)", "error", message="unsupported"),
        _heic_header() + good[2:],
    )
    loop = folder / "loop.jpg"
    loop.symlink_to(loop.name)  # points at itself
    items.append(
        Item(
            "loop.jpg",
            "symlink loop in the folder",
            "error",
            message="cannot read",
            uploadable=False,
        )
    )
    return items


def build_videos(folder: Path) -> list[Item]:
    """The video corpus in `folder`; returns its items."""
    folder.mkdir(parents=True, exist_ok=True)
    good = pan_video(folder / "good.mp4", frames=12)
    items = [Item("good.mp4", "a clip with a face (control)", "verdict", 1)]
    (folder / "zero_byte.mp4").write_bytes(b"")
    items.append(Item("zero_byte.mp4", "zero-byte video", "error", message="empty"))
    data = good.read_bytes()
    (folder / "half.mp4").write_bytes(data[: len(data) // 2])
    items.append(Item("half.mp4", "video cut in half", "error", message="cannot"))
    (folder / "random.mp4").write_bytes(random_bytes(200_000, seed=3))
    items.append(Item("random.mp4", "random bytes named .mp4", "error", message="cannot"))
    _video(folder / "no_frames.mp4", [])
    items.append(Item("no_frames.mp4", "video container with no frames", "error", message="cannot"))
    face = cv2.resize(one_face(), (400, 300))
    _video(folder / "one_frame.mp4", [face])
    items.append(Item("one_frame.mp4", "video of one frame", "verdict", 1))
    _video(folder / "no_face.mp4", [no_face()] * 12)
    items.append(Item("no_face.mp4", "video without a face", "no_face"))
    _audio_only(folder / "audio_only.mp4")
    items.append(Item("audio_only.mp4", "MP4 with only an audio stream", "error", message="cannot"))
    _one_pixel_video(folder / "one_px.mp4")
    items.append(Item("one_px.mp4", "1x1-pixel video", "no_face"))
    return items


def _one_pixel_video(path: Path, frames: int = 6) -> Path:
    """A 1x1-pixel MPEG-4 clip (PyAV: OpenCV's writer refuses the size)."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=6)
        stream.width, stream.height, stream.pix_fmt = 1, 1, "yuv420p"
        for _ in range(frames):
            frame = av.VideoFrame.from_ndarray(np.full((1, 1, 3), 128, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def save_face(path: Path) -> Path:
    """The control portrait as a file (for callers that need one more good item)."""
    return save_rgb(path, one_face())
