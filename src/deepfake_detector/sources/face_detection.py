"""Finding faces: MTCNN behind one small protocol, and the face crop training and inference share.

Light on purpose (OpenCV and NumPy at import): the inference path imports it without the
training stack. The networks run on TensorFlow (the `mtcnn` package) or, when a model ships
LiteRT files, on the LiteRT interpreter (`lite_runtime`); the glue around them is the same.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

import cv2
import numpy as np

from deepfake_detector.core.config import FacesParams

DETECT_BATCH = 8
MTCNN_MIN_FACE = 20
KEYPOINTS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")  # MTCNN's landmarks
MAX_DETECT_SIDE = 1920  # longest side MTCNN scans; larger images are shrunk (bounded latency)


@dataclass(frozen=True)
class Detection:
    """One face found in an image: box as (x, y, w, h) in pixels, confidence, 5 landmarks."""

    box: tuple[int, int, int, int]
    confidence: float
    landmarks: dict[str, tuple[float, float]]

    @property
    def area(self) -> int:
        """Box area in pixels."""
        return self.box[2] * self.box[3]


class FaceDetector(Protocol):
    """Finds faces in a batch of RGB images."""

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Detection]]:
        """Return the detections of each image, in input order."""
        ...


class MtcnnNetworks(Protocol):
    """MTCNN's three networks with their glue: RGB float32 images in, mtcnn's JSON rows out."""

    def detect_faces(self, images: list[np.ndarray]) -> list[list[dict[str, Any]]]:
        """Per image, a list of {box: [x, y, w, h], confidence, keypoints: {name: (x, y)}}."""
        ...


class MtcnnDetector:
    """MTCNN behind the FaceDetector protocol; thresholds from params.

    `networks` runs MTCNN: the `mtcnn` package on TensorFlow unless given (the LiteRT runtime
    passes its own); the shrinking, thresholds and ordering here are the same for both.
    """

    def __init__(self, params: FacesParams, networks: MtcnnNetworks | None = None) -> None:
        self.params = params
        self._networks = networks if networks is not None else _load_mtcnn()

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Detection]]:
        """Detect faces in RGB images; keep those above the size and confidence thresholds.

        MTCNN's pyramid starts at 20-pixel faces (mtcnn 1.0 fails for any other
        min_face_size), so each image is shrunk until `min_face_size` maps to 20 pixels: the
        same faces are found, with up to 4x fewer pixels to scan at the default of 40. Images of
        one size (a video's frames) go to MTCNN as one batch. A very large image (a 50-megapixel
        photo) is also shrunk to MAX_DETECT_SIDE pixels on its longest side, so that detection
        time stays bounded; its faces are cropped from the full-resolution image all the same.
        An image narrower than `min_face_size` cannot hold a face that would be kept (MTCNN's
        boxes stay inside the image): it is answered without running the networks.
        """
        base = min(1.0, MTCNN_MIN_FACE / self.params.min_face_size)
        found: list[list[Detection]] = [[] for _ in images]
        small: dict[int, np.ndarray] = {}
        scales: dict[int, float] = {}
        for i, image in enumerate(images):
            if min(image.shape[:2]) < max(self.params.min_face_size, MTCNN_MIN_FACE):
                continue
            scale = min(base, MAX_DETECT_SIDE / max(image.shape[:2]))
            scaled = (
                image
                if scale == 1.0
                else cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            )
            if min(scaled.shape[:2]) < MTCNN_MIN_FACE:  # a long, thin strip shrunk to nothing
                continue
            small[i] = scaled.astype(np.float32)  # mtcnn normalises in NumPy: not as float64
            scales[i] = scale
        by_shape: dict[tuple[int, ...], list[int]] = defaultdict(list)
        for i, image in small.items():
            by_shape[image.shape].append(i)
        for members in by_shape.values():
            batch = self._networks.detect_faces([small[i] for i in members])
            for i, raw in zip(members, batch, strict=True):
                found[i] = self._keep([_to_detection(d, 1.0 / scales[i]) for d in raw])
        return found

    def _keep(self, found: list[Detection]) -> list[Detection]:
        p = self.params
        kept = [
            d
            for d in found
            if d.confidence >= p.min_confidence and min(d.box[2:]) >= p.min_face_size
        ]
        kept.sort(key=lambda d: d.area, reverse=True)
        return kept[:1] if p.keep == "largest" else kept


@lru_cache(maxsize=1)
def _load_mtcnn() -> Any:
    """One MTCNN per process: its three networks load once, not once per video.

    Each network runs as a `tf.function` (traced once per input shape), not eagerly layer by
    layer: for MTCNN's small convolutions the eager dispatch costs more than the arithmetic.
    """
    import tensorflow as tf
    from mtcnn import MTCNN

    mtcnn = MTCNN()
    for stage in mtcnn.stages:  # mtcnn 1.0 (pinned) keeps each stage's network in `_model`
        stage._model = tf.function(stage._model, reduce_retracing=True)
    return mtcnn


def _to_detection(raw: dict, scale: float = 1.0) -> Detection:
    """mtcnn returns numpy scalars: make them plain Python (JSON-ready), in full-size pixels."""
    x, y, w, h = (int(round(float(v) * scale)) for v in raw["box"])
    marks = {
        k: (round(float(v[0]) * scale, 1), round(float(v[1]) * scale, 1))
        for k, v in raw["keypoints"].items()
    }
    return Detection((x, y, w, h), float(raw["confidence"]), marks)


def crop_box(
    box: tuple[int, int, int, int], margin: float, width: int, height: int, shape: str = "square"
) -> tuple[int, int, int, int]:
    """The crop window around a face box, (x0, y0, x1, y1), unclamped.

    square: a square, `margin` of the box's longer side added on each side; box: the box with
    `margin` of its width and of its height added on each side (stretched to a square later).
    """
    x, y, w, h = box
    if shape == "box":
        cw, ch = w * (1.0 + 2.0 * margin), h * (1.0 + 2.0 * margin)
    else:
        cw = ch = max(w, h) * (1.0 + 2.0 * margin)
    cx, cy = x + w / 2.0, y + h / 2.0
    x0, y0 = int(round(cx - cw / 2)), int(round(cy - ch / 2))
    return x0, y0, x0 + max(1, int(round(cw))), y0 + max(1, int(round(ch)))


def crop_face(
    image: np.ndarray,
    box: tuple[int, int, int, int],
    margin: float,
    size: int,
    shape: str = "square",
) -> np.ndarray:
    """Crop the window (`crop_box`), clamped at the borders (padded black there), resized to
    `size` x `size`."""
    height, width = image.shape[:2]
    x0, y0, x1, y1 = crop_box(box, margin, width, height, shape)
    cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    patch = image[cy0:cy1, cx0:cx1]
    patch = cv2.copyMakeBorder(
        patch, cy0 - y0, y1 - cy1, cx0 - x0, x1 - cx1, cv2.BORDER_CONSTANT, value=(0, 0, 0)
    )
    interp = cv2.INTER_AREA if max(patch.shape[:2]) > size else cv2.INTER_LINEAR
    return cv2.resize(patch, (size, size), interpolation=interp)
