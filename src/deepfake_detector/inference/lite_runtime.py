"""The light inference runtime: the classifier and MTCNN's networks as LiteRT (.tflite) files.

A registered model carries these files (`lite_export` writes them); answering a picture then
needs LiteRT's interpreter, NumPy and OpenCV, never TensorFlow. The MTCNN glue between the
three networks (image pyramid, box regression, non-maximum suppression, landmarks) follows the
`mtcnn` 1.0 package step by step, so the boxes match those of the TensorFlow path (tested).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from deepfake_detector.sources.face_detection import KEYPOINTS

LITE_DIR = "lite"  # folder of the .tflite files beside a model
CLASSIFIER = "classifier.tflite"  # RGB crops (any size) in, P(fake) out: resize and TTA inside
NETWORKS = {"pnet": "pnet.tflite", "rnet": "rnet.tflite", "onet": "onet.tflite"}
FILES = (CLASSIFIER, *NETWORKS.values())

# mtcnn 1.0's defaults (the TensorFlow path runs with them too)
MIN_FACE, MIN_SIZE, SCALE_FACTOR = 20, 12, 0.709
THRESHOLDS = (0.6, 0.7, 0.8)
NMS_PNET_SCALE, NMS_PNET, NMS_RNET, NMS_ONET = 0.5, 0.7, 0.7, 0.7
MTCNN_OUTPUTS = {4: "bbox_reg", 2: "bbox_class", 10: "landmarks"}  # by last dimension
Sized = tuple[Any, int, dict[str, int]]  # an interpreter, its input's index, its outputs' indices


def has_lite_files(folder: Path) -> bool:
    """Whether `folder` holds every LiteRT file the light runtime needs."""
    return all((folder / name).is_file() for name in FILES)


class LiteNetwork:
    """One .tflite graph: a NumPy array in, its outputs out, named by their last dimension.

    The graphs have one input whose batch (and, for PNet, height and width) may vary. Sizing an
    interpreter's tensors for another input shape costs about as much as running PNet on it (its
    activations are allocated and touched afresh), and MTCNN's pyramid asks for the same dozen
    shapes on every frame of a size: a shape that comes back gets an interpreter of its own,
    sized once, while their inputs together hold at most `KEPT_VALUES` values (one 1080p
    frame's pyramid); any other shape is sized on a scratch interpreter, as it comes. An
    interpreter runs one call at a time (its tensors are shared state): calls from several
    threads (the app, REST) take turns.
    """

    # One 1080p frame's pyramid (searched at 960x540 for 40-pixel faces) is about 1.13 million
    # input values. Memory for speed: the kept interpreters' activations stay allocated.
    KEPT_VALUES = 1_300_000
    SHAPES_SEEN = 512  # shapes remembered to tell one that comes back

    def __init__(self, path: Path, names: dict[int, str], threads: int | None = None) -> None:
        self.path, self._names, self._threads = path, names, threads
        self._sized: dict[tuple[int, ...], Sized] = {}
        self._seen: OrderedDict[tuple[int, ...], None] = OrderedDict()
        self._lock = threading.Lock()
        self._scratch = self._load()  # loaded now: a file that does not load fails here
        self._scratch_shape: tuple[int, ...] | None = None

    def _load(self) -> Sized:
        from ai_edge_litert.interpreter import Interpreter

        it = Interpreter(model_path=str(self.path), num_threads=self._threads)
        outputs = {
            self._names[int(d["shape_signature"][-1])]: d["index"] for d in it.get_output_details()
        }
        return it, it.get_input_details()[0]["index"], outputs

    def _kept_values(self) -> int:
        return sum(int(np.prod(shape)) for shape in self._sized)

    def _interpreter(self, shape: tuple[int, ...]) -> Sized:
        """An interpreter sized for `shape`: its own if it has one or may have one now (the
        shape came before and fits the budget), else the scratch."""
        found = self._sized.get(shape)
        if found is not None:
            return found
        if (
            shape in self._seen
            and shape != self._scratch_shape
            and self._kept_values() + int(np.prod(shape)) <= self.KEPT_VALUES
        ):
            found = self._sized[shape] = self._resized(self._load(), shape)
            return found
        self._seen[shape] = None
        while len(self._seen) > self.SHAPES_SEEN:
            self._seen.popitem(last=False)
        if shape != self._scratch_shape:
            self._resized(self._scratch, shape)
            self._scratch_shape = shape
        return self._scratch

    @staticmethod
    def _resized(found: Sized, shape: tuple[int, ...]) -> Sized:
        it, index, _ = found
        it.resize_tensor_input(index, shape, strict=False)
        it.allocate_tensors()
        return found

    def __call__(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Run the graph on one input array; the outputs are copies, safe to keep."""
        with self._lock:
            it, index, outputs = self._interpreter(tuple(x.shape))
            it.set_tensor(index, np.ascontiguousarray(x, dtype=np.float32))
            it.invoke()
            return {name: it.get_tensor(at) for name, at in outputs.items()}


class LiteClassifier:
    """The exported classifier: uncalibrated P(fake) of RGB crops."""

    def __init__(self, folder: Path) -> None:
        self.network = LiteNetwork(folder / CLASSIFIER, {1: "p_fake"})

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """P(fake) of a batch of RGB crops (float32 0-255, one size), one value per crop."""
        return self.network(batch)["p_fake"].ravel()


class LiteMtcnn:
    """MTCNN on LiteRT: the `MtcnnNetworks` protocol of `face_detection`, without TensorFlow."""

    def __init__(self, folder: Path) -> None:
        self.pnet, self.rnet, self.onet = (
            LiteNetwork(folder / n, MTCNN_OUTPUTS) for n in NETWORKS.values()
        )

    def detect_faces(self, images: list[np.ndarray]) -> list[list[dict[str, Any]]]:
        """Faces of RGB images of one shape (float 0-255), in mtcnn's JSON format."""
        batch = (np.stack(images).astype(np.float32) - 127.5) / 128.0
        height, width = batch.shape[1:3]
        boxes = self._proposals(batch)
        if len(boxes):
            boxes = self._refine(batch, boxes)
        if len(boxes):
            boxes = self._output(batch, boxes)
        boxes = _fit_to_image(boxes, width, height)
        return [[_to_json(row) for row in boxes[boxes[:, 0] == i]] for i in range(len(images))]

    def _proposals(self, batch: np.ndarray) -> np.ndarray:
        height, width = batch.shape[1:3]
        found = []
        for scale in scale_pyramid(width, height):
            size = (int(width * scale), int(height * scale))  # truncated, as tf.image.resize
            scaled = np.stack([cv2.resize(im, size, interpolation=cv2.INTER_AREA) for im in batch])
            out = self.pnet(scaled)
            boxes = _grid_boxes(out["bbox_reg"], out["bbox_class"], THRESHOLDS[0])
            boxes[:, 1:5] /= scale
            found.append(nms(boxes, NMS_PNET_SCALE, "union", initial_sort=False))
        boxes = np.concatenate(found) if found else np.empty((0, 6))
        return to_square(nms(boxes, NMS_PNET, "union"))

    def _refine(self, batch: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        out = self.rnet(crop_and_resize(batch, boxes, 24))
        boxes = boxes.copy()
        boxes[:, -1] = out["bbox_class"][:, -1]
        boxes = _regress(boxes, out["bbox_reg"])
        boxes = boxes[boxes[:, -1] > THRESHOLDS[1]]
        return to_square(nms(boxes, NMS_RNET, "union"))

    def _output(self, batch: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        out = self.onet(crop_and_resize(batch, boxes, 48))
        marks = out["landmarks"].astype(np.float64).copy()
        w = boxes[:, 3:4] - boxes[:, 1:2] + 1
        h = boxes[:, 4:5] - boxes[:, 2:3] + 1
        marks[:, 0:5] = w * marks[:, 0:5] + boxes[:, 1:2] - 1
        marks[:, 5:10] = h * marks[:, 5:10] + boxes[:, 2:3] - 1
        boxes = boxes.copy()
        boxes[:, -1] = out["bbox_class"][:, -1]
        boxes = np.concatenate([_regress(boxes, out["bbox_reg"]), marks], axis=-1)
        boxes = boxes[boxes[:, 5] > THRESHOLDS[2]]
        return nms(boxes, NMS_ONET, "min")


def scale_pyramid(width: int, height: int) -> np.ndarray:
    """The scales PNet scans, as mtcnn's `build_scale_pyramid`."""
    count = round(-((np.log(min(width, height) / MIN_SIZE) / np.log(SCALE_FACTOR)) + 1))
    return (MIN_SIZE / MIN_FACE) * SCALE_FACTOR ** np.arange(max(count, 0))


def _grid_boxes(reg: np.ndarray, cls: np.ndarray, threshold: float) -> np.ndarray:
    """PNet's grid cells above `threshold` as rows [image, x1, y1, x2, y2, score], best first."""
    score = cls[..., 1]
    image, y, x = np.where(score > threshold)
    dx1, dy1, dx2, dy2 = reg[image, y, x].T
    stride, cell = 2, 12
    x1, y1 = x * stride + 1, y * stride + 1
    x2, y2 = x * stride + cell, y * stride + cell
    w, h = x2 - x1, y2 - y1
    rows = np.stack(
        [image, x1 + dx1 * w, y1 + dy1 * h, x2 + dx2 * w, y2 + dy2 * h, score[image, y, x]], axis=1
    ).astype(np.float64)
    return rows[np.argsort(rows[:, 5])[::-1]]


def overlap(boxes: np.ndarray, method: str) -> np.ndarray:
    """Pairwise overlap of [x1, y1, x2, y2] rows: over the union, or over the smaller box."""
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    lo = np.maximum(boxes[None, :, :2], boxes[:, None, :2])
    hi = np.minimum(boxes[None, :, 2:], boxes[:, None, 2:])
    inter = np.prod(np.maximum(0, hi - lo), axis=-1)
    if method == "union":
        return inter / (area[:, None] + area[None, :] - inter)
    return inter / np.minimum(area[:, None], area[None, :])


def nms(boxes: np.ndarray, threshold: float, method: str, initial_sort: bool = True) -> np.ndarray:
    """Non-maximum suppression per image, as mtcnn 1.0 does it.

    A box is dropped when any higher-scoring box of its image overlaps it by more than
    `threshold`, whether or not that box itself survives (mtcnn's rule, kept for parity).
    """
    if initial_sort:
        boxes = boxes[np.argsort(boxes[:, 5])[::-1]]
    kept = []
    for image in np.unique(boxes[:, 0]):
        mine = boxes[boxes[:, 0] == image]
        above = np.triu(overlap(mine[:, 1:5], method) > threshold, k=1)
        kept.append(mine[~above.any(axis=0)])
    return np.concatenate(kept) if kept else np.empty((0, boxes.shape[1]))


def to_square(boxes: np.ndarray) -> np.ndarray:
    """Each box grown to a square around its centre (side: its longer side)."""
    boxes = boxes.copy()
    w, h = boxes[:, 3] - boxes[:, 1], boxes[:, 4] - boxes[:, 2]
    side = np.maximum(w, h)
    boxes[:, 1] += w * 0.5 - side * 0.5
    boxes[:, 2] += h * 0.5 - side * 0.5
    boxes[:, 3] = boxes[:, 1] + side
    boxes[:, 4] = boxes[:, 2] + side
    return boxes


def _regress(boxes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    boxes = boxes.copy()
    w = boxes[:, 3] - boxes[:, 1] + 1
    h = boxes[:, 4] - boxes[:, 2] + 1
    boxes[:, 1:5] += offsets * np.stack([w, h, w, h], axis=-1)
    return boxes


def crop_and_resize(batch: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """Bilinear patches of `size` px, as `tf.image.crop_and_resize` (outside the image: 0).

    mtcnn normalises box corners by the image size (not size - 1); TensorFlow then samples at
    y1 * (H - 1) + i * (y2 - y1) * (H - 1) / (size - 1), and so does this.
    """
    height, width = batch.shape[1:3]
    steps = np.arange(size) / (size - 1)
    ys = (boxes[:, 2:3] / height + steps * (boxes[:, 4:5] - boxes[:, 2:3]) / height) * (height - 1)
    xs = (boxes[:, 1:2] / width + steps * (boxes[:, 3:4] - boxes[:, 1:2]) / width) * (width - 1)
    y0, x0 = np.floor(ys), np.floor(xs)
    fy, fx = (ys - y0)[:, :, None, None], (xs - x0)[:, None, :, None]
    y0i, x0i = y0.astype(int), x0.astype(int)
    y1i = np.clip(np.ceil(ys).astype(int), 0, height - 1)
    x1i = np.clip(np.ceil(xs).astype(int), 0, width - 1)
    y0i, x0i = np.clip(y0i, 0, height - 1), np.clip(x0i, 0, width - 1)
    image = boxes[:, 0].astype(int)[:, None, None]

    def at(yi: np.ndarray, xi: np.ndarray) -> np.ndarray:
        return batch[image, yi[:, :, None], xi[:, None, :]]

    top = at(y0i, x0i) + (at(y0i, x1i) - at(y0i, x0i)) * fx
    bottom = at(y1i, x0i) + (at(y1i, x1i) - at(y1i, x0i)) * fx
    patches = top + (bottom - top) * fy
    inside = ((ys >= 0) & (ys <= height - 1))[:, :, None] & ((xs >= 0) & (xs <= width - 1))[
        :, None, :
    ]
    return np.where(inside[..., None], patches, 0.0).astype(np.float32)


def _fit_to_image(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """Box corners clamped into the image (landmarks left as they are), as mtcnn does."""
    boxes = boxes.copy()
    if len(boxes):
        boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, width - 1)
        boxes[:, [2, 4]] = np.clip(boxes[:, [2, 4]], 0, height - 1)
    return boxes


def _to_json(row: np.ndarray) -> dict[str, Any]:
    x1, y1, x2, y2 = row[1:5]
    box = np.asarray([x1, y1, x2 - x1, y2 - y1]).round().astype(int).tolist()
    marks = row[6:16].round().astype(int)
    return {
        "box": box,
        "confidence": float(row[5]),
        "keypoints": {k: (int(marks[i]), int(marks[i + 5])) for i, k in enumerate(KEYPOINTS)},
    }
