"""The demo clips: short real and face-swapped clips made from photos shipped in packages.

Three face photographs that come with installed packages (matplotlib, scikit-image) are
animated into short clips (pan, zoom, small rotation, light drift, sensor noise, JPEG
compression). Each real clip gets a fake twin: the same animation with another identity's
face swapped in (similarity warp on MTCNN landmarks, colour transfer, Poisson blending).
Everything is seeded, so the same params give the same files.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from deepfake_detector.core.atomic import atomic_path
from deepfake_detector.core.config import DemoParams
from deepfake_detector.sources.face_detection import KEYPOINTS

FOURCC = "mp4v"


# Face box height as a fraction of the frame height: large enough for MTCNN, small enough
# to stay in view while the camera pans, zooms and rotates.
FACE_FRACTION = (0.30, 0.40)
ZOOM_WOBBLE = 0.08
MAX_ROTATION_DEG = 6.0
JPEG_QUALITY = (50, 95)


def _load_hopper() -> np.ndarray:
    from matplotlib import cbook

    path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(f"cannot read matplotlib sample image {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _load_astronaut() -> np.ndarray:
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[..., :3])


def _load_camera() -> np.ndarray:
    from skimage import data

    return cv2.cvtColor(data.camera(), cv2.COLOR_GRAY2RGB)


@dataclass(frozen=True)
class Identity:
    """One demo identity: a face photograph shipped inside an installed package."""

    name: str
    description: str
    load: Callable[[], np.ndarray]
    swap_source: bool = True  # frontal enough to be pasted onto another face


IDENTITIES: tuple[Identity, ...] = (
    Identity(
        "hopper", "Grace Hopper portrait, matplotlib sample data grace_hopper.jpg", _load_hopper
    ),
    Identity("astronaut", "Astronaut Eileen Collins, skimage.data.astronaut()", _load_astronaut),
    # His head is turned ~60 degrees: no 2-D warp of it onto a frontal face looks like a face,
    # so he is only ever a swap target.
    Identity(
        "camera",
        "The cameraman, skimage.data.camera() (grayscale, head turned)",
        _load_camera,
        swap_source=False,
    ),
)


@dataclass(frozen=True)
class Face:
    """A face detected once in a photo: MTCNN box (x, y, w, h) and 5 landmarks (x, y)."""

    box: tuple[float, float, float, float]
    landmarks: np.ndarray  # (5, 2) float32, in KEYPOINTS order

    def outline(self, points: int = 72) -> np.ndarray:
        """The face region, brows to chin: an ellipse inside the box, as (points, 2) float32."""
        x, y, w, h = self.box
        theta = np.linspace(0, 2 * np.pi, points, endpoint=False)
        # Slightly narrower than the box so ears, hair and background stay out.
        ring = np.stack(
            [x + w / 2 + 0.45 * w * np.cos(theta), y + h / 2 + 0.5 * h * np.sin(theta)], axis=1
        )
        return ring.astype(np.float32)


@dataclass(frozen=True)
class ClipPlan:
    """Everything random about one clip, drawn up front so its real and fake twin match."""

    matrices: np.ndarray  # (n, 2, 3) photo -> frame affine per frame
    brightness: np.ndarray  # (n,) additive, fraction of full scale
    contrast: np.ndarray  # (n,) gain around mid-grey
    gamma: np.ndarray  # (n,)
    noise_sigma: float  # grey levels
    noise_seeds: np.ndarray  # (n,) one seed per frame
    jpeg_quality: np.ndarray  # (n,)


def load_identity_photos() -> dict[str, np.ndarray]:
    """The demo identities' photos as RGB uint8 arrays, keyed by identity name."""
    return {identity.name: identity.load() for identity in IDENTITIES}


def detect_faces(photos: dict[str, np.ndarray]) -> dict[str, Face]:
    """Find the most confident face and its landmarks in each photo with MTCNN."""
    from mtcnn import MTCNN  # lazy: pulls in TensorFlow

    detector = MTCNN()
    faces = {}
    for name, rgb in photos.items():
        found = detector.detect_faces(rgb)
        if not found:
            raise RuntimeError(f"MTCNN found no face in the demo photo '{name}'")
        best = max(found, key=lambda f: float(f["confidence"]))
        landmarks = np.array(
            [[float(v) for v in best["keypoints"][k]] for k in KEYPOINTS], dtype=np.float32
        )
        x, y, w, h = (float(v) for v in best["box"])
        faces[name] = Face(box=(x, y, w, h), landmarks=landmarks)
    return faces


def clip_seed(seed: int, identity: str, clip: int) -> np.random.SeedSequence:
    """Seed of one clip: the params seed, the identity and the clip index, nothing else."""
    return np.random.SeedSequence([seed, zlib.crc32(identity.encode()), clip])


def _smooth_curve(rng: np.random.Generator, n: int, mid: float, half: float) -> np.ndarray:
    """A smooth random curve of `n` samples in [mid - half, mid + half]: two slow sinusoids."""
    t = np.linspace(0.0, 1.0, n)
    freqs = rng.uniform(0.2, 1.2, size=2)
    phases = rng.uniform(0.0, 2 * np.pi, size=2)
    weights = np.array([0.65, 0.35])
    wave = sum(
        w * np.sin(2 * np.pi * f * t + p) for w, f, p in zip(weights, freqs, phases, strict=True)
    )
    return mid + half * wave


def plan_clip(face: Face, demo: DemoParams, seed: np.random.SeedSequence) -> ClipPlan:
    """Draw a clip's camera trajectory, light drift, noise and compression from its seed."""
    rng = np.random.default_rng(seed)
    n, width, height = demo.frames_per_clip, demo.width, demo.height
    x, y, w, h = face.box
    pivot = (x + w / 2, y + h / 2)

    fraction = rng.uniform(*FACE_FRACTION)
    scale = _smooth_curve(rng, n, fraction * height / h, ZOOM_WOBBLE * fraction * height / h)
    angle = _smooth_curve(rng, n, 0.0, rng.uniform(0.3, 1.0) * MAX_ROTATION_DEG)

    # Room the face box's centre has to move while the whole box stays in view.
    rad = np.deg2rad(MAX_ROTATION_DEG)
    s_max = float(scale.max())
    half_x = s_max * (np.cos(rad) * w + np.sin(rad) * h) / 2
    half_y = s_max * (np.sin(rad) * w + np.cos(rad) * h) / 2
    margin = 0.04 * min(width, height)
    room_x = max(0.0, width / 2 - half_x - margin)
    room_y = max(0.0, height / 2 - half_y - margin)
    centre_x = _smooth_curve(rng, n, 0.0, 0.8) * room_x + width / 2
    centre_y = _smooth_curve(rng, n, 0.0, 0.8) * room_y + height / 2

    matrices = np.empty((n, 2, 3), dtype=np.float64)
    for i in range(n):
        m = cv2.getRotationMatrix2D(pivot, float(angle[i]), float(scale[i]))
        m[:, 2] += (centre_x[i] - pivot[0], centre_y[i] - pivot[1])
        matrices[i] = m

    return ClipPlan(
        matrices=matrices,
        brightness=_smooth_curve(rng, n, rng.uniform(-0.04, 0.04), 0.04),
        contrast=_smooth_curve(rng, n, rng.uniform(0.95, 1.05), 0.1),
        gamma=_smooth_curve(rng, n, rng.uniform(0.95, 1.05), 0.12),
        noise_sigma=float(rng.uniform(1.0, 3.0)),
        noise_seeds=rng.integers(0, 2**63 - 1, size=n, dtype=np.int64),
        jpeg_quality=rng.integers(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1, size=n),
    )


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine matrix to (n, 2) points."""
    return (points @ matrix[:, :2].T + matrix[:, 2]).astype(np.float32)


def animate_frame(photo: np.ndarray, matrix: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """One camera view of the photo: warp it into a `size` = (width, height) frame."""
    # Replicate, not reflect: a mirrored border would add a second, unlabelled face.
    return cv2.warpAffine(
        photo, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


def fill_mask(outline: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A uint8 mask of `size` = (width, height), 255 inside the convex `outline` polygon."""
    mask = np.zeros((size[1], size[0]), dtype=np.uint8)
    cv2.fillConvexPoly(mask, np.round(outline).astype(np.int32), 255)
    return mask


def match_colours(source: np.ndarray, target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Shift `source`'s LAB mean and std inside `mask` to those of `target`."""
    inside = mask > 0
    src = cv2.cvtColor(source, cv2.COLOR_RGB2LAB).astype(np.float32)
    dst = cv2.cvtColor(target, cv2.COLOR_RGB2LAB).astype(np.float32)
    s_mean, s_std = src[inside].mean(axis=0), src[inside].std(axis=0) + 1e-3
    d_mean, d_std = dst[inside].mean(axis=0), dst[inside].std(axis=0)
    out = (src - s_mean) / s_std * d_std + d_mean
    return cv2.cvtColor(np.clip(out, 0, 255).round().astype(np.uint8), cv2.COLOR_LAB2RGB)


def swap_face(
    frame: np.ndarray,
    target: Face,
    frame_matrix: np.ndarray,
    source: np.ndarray,
    source_face: Face,
) -> np.ndarray:
    """Paste the source photo's face over the face of `target` seen through `frame_matrix`."""
    height, width = frame.shape[:2]
    size = (width, height)
    target_landmarks = transform_points(target.landmarks, frame_matrix)
    # A huge RANSAC threshold keeps all 5 points: a plain least-squares similarity fit.
    matrix, _ = cv2.estimateAffinePartial2D(
        source_face.landmarks, target_landmarks, method=cv2.RANSAC, ransacReprojThreshold=1e6
    )
    if matrix is None:
        raise RuntimeError("cannot fit a similarity transform between the two faces")
    warped = cv2.warpAffine(
        source, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101
    )
    # Only where both faces are: a turned source face must not drag its background along.
    mask = cv2.min(
        fill_mask(transform_points(target.outline(), frame_matrix), size),
        fill_mask(transform_points(source_face.outline(), matrix), size),
    )
    x, y, w, h = cv2.boundingRect(mask)
    feather = max(3, int(0.06 * max(w, h))) | 1
    core = cv2.erode(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (feather, feather)))
    warped = match_colours(warped, frame, core)
    try:
        blended = cv2.seamlessClone(warped, frame, mask, (x + w // 2, y + h // 2), cv2.NORMAL_CLONE)
    except cv2.error:
        # Poisson blending needs the mask off the border; a plain feathered paste will do.
        blended = warped
    soft = cv2.GaussianBlur(core, (2 * feather + 1, 2 * feather + 1), 0)
    alpha = soft.astype(np.float32)[..., None] / 255.0
    return (alpha * blended + (1 - alpha) * frame).round().astype(np.uint8)


def degrade_frame(frame: np.ndarray, plan: ClipPlan, index: int) -> np.ndarray:
    """Light drift, sensor noise and a JPEG round trip, as a cheap camera would add them."""
    x = frame.astype(np.float32) / 255.0
    x = (x - 0.5) * plan.contrast[index] + 0.5 + plan.brightness[index]
    x = np.clip(x, 0.0, 1.0) ** plan.gamma[index] * 255.0
    noise = np.random.default_rng(int(plan.noise_seeds[index])).standard_normal(
        x.shape, dtype=np.float32
    )
    x = np.clip(x + plan.noise_sigma * noise, 0, 255).round().astype(np.uint8)
    bgr = cv2.cvtColor(x, cv2.COLOR_RGB2BGR)
    ok, jpeg = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(plan.jpeg_quality[index])])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    decoded = cv2.imdecode(jpeg, cv2.IMREAD_COLOR)  # BGR, ready for the writer
    if decoded is None:
        raise RuntimeError("JPEG decoding failed")
    return decoded


def render_clip(
    photo: np.ndarray,
    face: Face,
    plan: ClipPlan,
    size: tuple[int, int],
    swap: tuple[np.ndarray, Face] | None = None,
) -> list[np.ndarray]:
    """The clip's BGR frames; with `swap` = (source photo, source face) it is the fake twin."""
    frames = []
    for i, matrix in enumerate(plan.matrices):
        frame = animate_frame(photo, matrix, size)
        if swap is not None:
            frame = swap_face(frame, face, matrix, *swap)
        frames.append(degrade_frame(frame, plan, i))
    return frames


def write_video(path: Path, frames: Iterable[np.ndarray], fps: float, size: tuple[int, int]) -> int:
    """Write BGR frames to an mp4v `.mp4` atomically; return how many frames were written."""
    with atomic_path(path) as tmp:
        writer = cv2.VideoWriter(
            str(tmp), cv2.CAP_FFMPEG, cv2.VideoWriter.fourcc(*FOURCC), fps, size
        )
        if not writer.isOpened():
            raise RuntimeError(
                f"OpenCV cannot open a '{FOURCC}' video writer for {path} ({size[0]}x{size[1]}"
                f" @ {fps} fps); is this OpenCV build missing FFmpeg?"
            )
        written = 0
        try:
            for frame in frames:
                writer.write(frame)
                written += 1
        finally:
            writer.release()
        if tmp.stat().st_size == 0:
            raise RuntimeError(f"OpenCV wrote an empty video for {path}")
    return written


def fake_source(identity: str, clip: int) -> str:
    """The identity whose face is swapped into `identity`'s clip: round-robin over the others."""
    others = [i.name for i in IDENTITIES if i.name != identity and i.swap_source]
    return others[clip % len(others)]
