"""The one inference path: images and videos to verdicts with per-face evidence.

Used by evaluation, the CLI, the Gradio app and the MLflow model served over REST. Faces are
found with the detector settings the model was trained with; every face is scored; P(fake) is
calibrated on the validation split; the verdict is `fake` when any face (image) or any tracked
person (video) reaches the threshold, `no_face` when there is no face at all — the whole picture
is never scored in place of a face.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from deepfake_detector.core.artifacts import INFERENCE_FILE, MODEL_FILE
from deepfake_detector.core.model_ref import ModelRef
from deepfake_detector.inference.tracks import Track, link_tracks, video_score
from deepfake_detector.inference.video_faces import KEYFRAME_STRIDE, find_video_faces
from deepfake_detector.learning.abstention import CLOSE, overall, sharpness
from deepfake_detector.sources.face_detection import (
    Detection,
    MtcnnDetector,
    crop_face,
)
from deepfake_detector.sources.images import InputError, is_video, read_image
from deepfake_detector.sources.video_reader import VideoReadError

if TYPE_CHECKING:
    import keras
from deepfake_detector.inference.inference_config import (
    InferenceConfig,
)

log = logging.getLogger(__name__)

REGISTERED_KERAS_FILE = Path("data") / MODEL_FILE  # inside a registered model's folder
BATCH = 32


@dataclass
class FaceScore:
    """One scored face."""

    box: tuple[int, int, int, int]
    confidence: float
    p_fake: float
    crop: np.ndarray = field(repr=False)
    sharpness: float = float("inf")
    uncertain: str | None = None  # why it is not judged (`abstention`), None when it is


class Detector:
    """A trained classifier with its face detector, calibration and threshold.

    Two runtimes answer the same way (tested): LiteRT when the model folder has the `.tflite`
    files (`lite_dir`; TensorFlow is then never imported, except for a Grad-CAM heat map, which
    loads the Keras model from `keras_path` when first asked), else TensorFlow with `model`.
    """

    def __init__(
        self,
        model: keras.Model | None,
        config: InferenceConfig,
        ref: ModelRef,
        batch_size: int = BATCH,
        *,
        lite_dir: Path | None = None,
        keras_path: Path | None = None,
        folder: Path | None = None,
    ) -> None:
        if model is None and lite_dir is None:
            raise ValueError("a Detector needs a Keras model or a folder of LiteRT files")
        self.batch_size = batch_size
        self._model = model
        self.config = config
        self.ref = ref
        self.lite_dir = lite_dir
        self.keras_path = keras_path
        self.folder = folder  # the model's folder: its inference settings, its model card
        self.runtime = "litert" if lite_dir is not None else "tensorflow"

    @property
    def model(self) -> keras.Model:
        """The Keras model (Grad-CAM, TFLite export); loaded on first use under LiteRT."""
        if self._model is None:
            from deepfake_detector.learning.model import load_model

            if self.keras_path is None or not self.keras_path.is_file():
                raise FileNotFoundError("this detector has no Keras model (LiteRT files only)")
            self._model = load_model(self.keras_path)
        return self._model

    @cached_property
    def _infer(self) -> Callable[[np.ndarray], np.ndarray]:
        """Crops (float32, one size) to uncalibrated P(fake), on the detector's runtime."""
        if self.lite_dir is not None:
            from deepfake_detector.inference.lite_runtime import LiteClassifier

            return LiteClassifier(self.lite_dir)
        import tensorflow as tf

        model, size, flip = self.model, self.config.image_size, self.config.tta_flip

        @tf.function(
            input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)],
            reduce_retracing=True,
        )
        def infer(batch: tf.Tensor) -> tf.Tensor:
            # The same bilinear resize as the training input pipeline.
            x = tf.image.resize(batch, [size, size])
            p = model(x, training=False)
            if flip:
                p = (p + model(tf.reverse(x, axis=[2]), training=False)) / 2.0
            return p

        return lambda batch: infer(batch).numpy().ravel()

    def model_info(self) -> dict[str, Any]:
        """Which model answered, what it learnt from, and how its recipe scored in the study."""
        return {
            **self.ref.to_dict(),
            "runtime": self.runtime,
            "trained_on": self.config.training.get("summary", "not recorded"),
            "demo": bool(self.config.training.get("demo", False)),
            "training": self.config.training.get("datasets", {}),
            "study": self.config.study,
            "test_metrics": self.config.test_metrics,
        }

    @cached_property
    def face_detector(self) -> MtcnnDetector:
        """MTCNN with the settings the model was trained with."""
        if self.lite_dir is not None:
            from deepfake_detector.inference.lite_runtime import LiteMtcnn

            return MtcnnDetector(self.config.faces, LiteMtcnn(self.lite_dir))
        return MtcnnDetector(self.config.faces)

    @property
    def threshold(self) -> float:
        """P(fake) at or above which a face, person or video is called fake."""
        return self.config.calibration.threshold

    @property
    def operating_point(self) -> dict[str, float | None]:
        """The threshold and the false-positive rate on validation real faces it targets."""
        return self.config.calibration.operating_point

    def use_fpr(self, target: float) -> None:
        """Answer at another operating point: the threshold at which a share `target` of the
        validation real faces was called fake (read off the curve stored with the model)."""
        try:
            calibration = self.config.calibration.at_fpr(target)
        except ValueError as exc:
            raise InputError(f"--fpr {target:g}: {exc}") from exc
        self.config = replace(self.config, calibration=calibration)

    def raw_scores(self, crops: list[np.ndarray]) -> np.ndarray:
        """Uncalibrated network output for RGB crops (any size, resized like in training)."""
        if not crops:
            return np.zeros(0)
        out: list[np.ndarray] = [np.zeros(0)] * len(crops)
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, crop in enumerate(crops):  # a batch holds crops of one size; each scores alone
            by_shape.setdefault(crop.shape, []).append(i)
        for indices in by_shape.values():
            for start in range(0, len(indices), self.batch_size):
                chunk = indices[start : start + self.batch_size]
                batch = np.stack([crops[i] for i in chunk]).astype(np.float32)
                scores = np.asarray(self._infer(batch)).reshape(len(chunk), -1)
                for i, row in zip(chunk, scores, strict=True):
                    out[i] = row
        return np.concatenate(out)

    def scores(self, crops: list[np.ndarray]) -> np.ndarray:
        """Calibrated P(fake) of RGB crops."""
        return self.config.calibration.apply(self.raw_scores(crops)) if crops else np.zeros(0)

    def crop(self, rgb: np.ndarray, detection: Detection) -> np.ndarray:
        """The face crop exactly as training made it (shape, margin, clamping, size)."""
        f = self.config.faces
        return crop_face(rgb, detection.box, f.margin, f.crop_size, f.shape)

    def score_image(self, rgb: np.ndarray) -> list[FaceScore]:
        """Find, crop and score every face of one RGB image."""
        return self.score_detections(rgb, self.face_detector.detect([rgb])[0])

    def score_detections(self, rgb: np.ndarray, detections: list[Detection]) -> list[FaceScore]:
        """Crop and score faces already found in one RGB image."""
        return self.score_frames([rgb], [detections])[0]

    def score_frames(
        self, rgbs: list[np.ndarray], detections: list[list[Detection]]
    ) -> list[list[FaceScore]]:
        """Crop the faces found in each RGB image and score them all in batches."""
        crops = [
            [self.crop(rgb, d) for d in found] for rgb, found in zip(rgbs, detections, strict=True)
        ]
        p = iter(self.scores([c for here in crops for c in here]))
        limits = self.config.abstention
        out: list[list[FaceScore]] = []
        for found, here in zip(detections, crops, strict=True):
            out.append([])
            for d, crop in zip(found, here, strict=True):
                score, sharp = float(next(p)), sharpness(crop)
                why = limits.reason(score, min(d.box[2:]), d.confidence, sharp)
                out[-1].append(FaceScore(d.box, d.confidence, score, crop, sharp, why))
        return out

    def label(self, p: float | None) -> str:
        """`fake`, `real`, or `no_face` when there is no score."""
        if p is None:
            return "no_face"
        return "fake" if p >= self.threshold else "real"

    def face_label(self, face: FaceScore) -> str:
        """A face's own label: `uncertain` when it cannot be judged (`FaceScore.uncertain`)."""
        return "uncertain" if face.uncertain else self.label(face.p_fake)

    def predict_image(self, rgb: np.ndarray) -> dict[str, Any]:
        """Verdict on one RGB image: fake when any face is fake; no_face without a face."""
        return self.predict_image_scored(self.score_image(rgb))

    def predict_image_scored(self, faces: list[FaceScore]) -> dict[str, Any]:
        """The image verdict for faces already scored (so callers can reuse the crops)."""
        p, verdict = overall([(f.p_fake, f.uncertain) for f in faces], self.threshold)
        return {
            "kind": "image",
            "verdict": verdict,
            "p_fake": p,
            "threshold": self.threshold,
            "operating_point": self.operating_point,
            "faces": [_face_json(f, self.face_label(f)) for f in faces],
            "model": self.model_info(),
        }

    def predict_video(
        self, path: Path, frames: int | None = None, stride: int = KEYFRAME_STRIDE
    ) -> dict[str, Any]:
        """Verdict on a video: sampled frames, faces linked into tracks, fake when any track is.

        Faces are searched on keyframes while the video decodes and carried between those that
        agree (`video_faces`); `stride` 1 searches every sampled frame."""
        return self.predict_video_scored(path, frames, stride)[0]

    def predict_video_scored(
        self, path: Path, frames: int | None = None, stride: int = KEYFRAME_STRIDE
    ) -> tuple[dict[str, Any], list[FaceScore]]:
        """`predict_video`'s answer and its faces as scored (crops included), in the order of
        the answer's `faces`."""
        sampling = self.config.frames.model_copy(update={"count": frames} if frames else {})
        try:
            video = find_video_faces(
                path, sampling, self.face_detector.detect, self.score_frames, stride
            )
        except VideoReadError as exc:
            raise InputError(str(exc)) from exc
        fps = video.fps
        found: list[tuple[int, float, FaceScore]] = []
        timeline = []
        for index, faces, carried in zip(video.indices, video.scored, video.carried, strict=True):
            time_s = round(index / fps, 3) if fps else 0.0
            found += [(index, time_s, f) for f in faces]
            p = max((f.p_fake for f in faces), default=None)
            timeline.append({"frame": index, "time_s": time_s, "p_fake": p, "carried": carried})
        picked, frame_count = video.indices, video.frame_count
        position = {index: n for n, index in enumerate(picked)}
        tracks, assignment = link_tracks([(position[i], f.box, f.p_fake) for i, _, f in found])
        labels = self._track_labels(tracks, [f for _, _, f in found], assignment)
        p, verdict = overall([(t.p_fake, labels[t.track][1]) for t in tracks], self.threshold)
        if (
            p is not None
            and verdict == "uncertain"
            and not any(reason == CLOSE for _, reason, _ in labels.values())
        ):
            p = video_score(tracks)  # no track could be judged: the score over all of them
        answer = {
            "kind": "video",
            "verdict": verdict,
            "p_fake": p,
            "threshold": self.threshold,
            "operating_point": self.operating_point,
            "frames_sampled": len(picked),
            "frame_count": frame_count,
            "fps": fps,
            "frames_without_face": sum(1 for t in timeline if t["p_fake"] is None),
            "faces": [
                {**_face_json(f, self.face_label(f)), "frame": i, "time_s": t, "track": track}
                for (i, t, f), track in zip(found, assignment, strict=True)
            ],
            "tracks": [
                {
                    "track": t.track,
                    "p_fake": t.p_fake,
                    "label": labels[t.track][0],
                    **({"uncertain": labels[t.track][1]} if labels[t.track][1] else {}),
                    "faces": len(t.scores),
                    "judged_faces": labels[t.track][2],
                    "first_frame": t.frames[0],
                    "last_frame": t.frames[-1],
                }
                for t in tracks
            ],
            "timeline": timeline,
            "model": self.model_info(),
        }
        return answer, [f for _, _, f in found]

    def _track_labels(
        self, tracks: list[Track], faces: list[FaceScore], assignment: list[int]
    ) -> dict[int, tuple[str, str | None, int]]:
        """Each track's label, why it is uncertain, and how many of its faces could be judged.

        A track is judged on its faces of judgeable quality (size, detection confidence,
        sharpness); with fewer than `min_track_faces` of them, or a mean score too close to the
        threshold, it is uncertain. Its `p_fake` stays the mean over all its faces.
        """
        limits = self.config.abstention
        out: dict[int, tuple[str, str | None, int]] = {}
        judgeable: dict[int, list[float]] = {t.track: [] for t in tracks}
        for face, track_id in zip(faces, assignment, strict=True):
            if limits.quality_reason(min(face.box[2:]), face.confidence, face.sharpness) is None:
                judgeable[track_id].append(face.p_fake)
        for track in tracks:
            good = judgeable[track.track]
            if len(good) < limits.min_track_faces:
                out[track.track] = ("uncertain", f"{len(good)} judged face(s)", len(good))
            elif limits.close(float(np.mean(good))):
                out[track.track] = ("uncertain", CLOSE, len(good))
            else:
                out[track.track] = (self.label(track.p_fake), None, len(good))
        return out

    def error_result(self, path: Path, message: str) -> dict[str, Any]:
        """The answer for an input that cannot be judged: verdict `error` and the reason."""
        return {
            "kind": "video" if is_video(path) else "image",
            "verdict": "error",
            "p_fake": None,
            "faces": [],
            "operating_point": self.operating_point,
            "error": message,
            "model": self.model_info(),
        }

    def predict_path(self, path: Path, frames: int | None = None) -> dict[str, Any]:
        """Verdict on an image or video file; an unreadable file gives verdict `error`."""
        return self.predict_path_scored(path, frames)[0]

    def predict_path_scored(
        self, path: Path, frames: int | None = None
    ) -> tuple[dict[str, Any], list[FaceScore]]:
        """`predict_path`'s answer and its faces as scored (crops included; none on error)."""
        faces: list[FaceScore] = []
        try:
            if is_video(path):
                result, faces = self.predict_video_scored(path, frames)
            else:
                faces = self.score_image(read_image(path))
                result = self.predict_image_scored(faces)
        except (InputError, OSError) as exc:
            result, faces = self.error_result(path, str(exc)), []
        except Exception as exc:  # no input may stop a batch: this one answers with its error
            log.warning("%s: could not be analysed", path, exc_info=True)
            result = self.error_result(path, f"{path.name}: could not be analysed ({exc!r})")
            faces = []
        return {"path": str(path), **result}, faces


def _face_json(face: FaceScore, label: str) -> dict[str, Any]:
    return {
        "box": list(face.box),
        "confidence": round(face.confidence, 5),
        "p_fake": face.p_fake,
        "label": label,
        **({"sharpness": round(face.sharpness, 1)} if math.isfinite(face.sharpness) else {}),
        **({"uncertain": face.uncertain} if face.uncertain else {}),
    }


Runtime = Literal["auto", "litert", "tensorflow"]


def load_detector(
    source: str | Path,
    config_path: Path | None = None,
    runtime: Runtime = "auto",
    tracking_uri: str | None = None,
) -> Detector:
    """A Detector from a registry URI (`models:/name@alias`, `models:/name/3`) or a local model.

    A local `.keras` file needs its `inference.json`: given, beside the file, or in the folder.
    `runtime`: auto takes LiteRT when the model has its `.tflite` files (a `lite/` folder beside
    the Keras file), else TensorFlow. A registry URI is resolved straight from a SQLite tracking
    store when it can be (`registry_lookup`), else through MLflow (`tracking_uri` or MLflow's).
    """
    text = str(source)
    if text.startswith(("models:/", "runs:/")):
        from deepfake_detector.inference.registry_lookup import resolve

        folder, ref = resolve(text, tracking_uri)
        return detector_of_model_dir(folder, ref, runtime)
    keras_path = Path(source)
    if keras_path.is_dir():
        keras_path = keras_path / MODEL_FILE
    candidates = [config_path] if config_path else [keras_path.parent / INFERENCE_FILE]
    found = next((c for c in candidates if c is not None and c.is_file()), None)
    if found is None:
        if not keras_path.is_file():
            raise FileNotFoundError(f"no model at {keras_path}")
        raise FileNotFoundError(f"no {INFERENCE_FILE} for {keras_path}: give it (--config)")
    ref = ModelRef(source=str(keras_path))
    return _detector(keras_path, found, keras_path.parent, ref, runtime)


def detector_of_model_dir(folder: Path, ref: ModelRef, runtime: Runtime = "auto") -> Detector:
    """The detector of a registered model's folder (MLmodel, data/model.keras, lite/, ...)."""
    return _detector(folder / REGISTERED_KERAS_FILE, folder / INFERENCE_FILE, folder, ref, runtime)


def _detector(
    keras_path: Path, config: Path, beside: Path, ref: ModelRef, runtime: Runtime
) -> Detector:
    """LiteRT when `beside/lite` has the files (unless TensorFlow is asked for), else Keras."""
    from deepfake_detector.inference.lite_runtime import LITE_DIR, has_lite_files

    lite = beside / LITE_DIR
    settings = InferenceConfig.read(config)
    if runtime != "tensorflow" and has_lite_files(lite):
        return Detector(None, settings, ref, lite_dir=lite, keras_path=keras_path, folder=beside)
    if runtime == "litert":
        raise FileNotFoundError(f"no LiteRT files for {keras_path} (looked in {lite})")
    if not keras_path.is_file():
        raise FileNotFoundError(f"no model at {keras_path}")
    from deepfake_detector.learning.model import load_model

    return Detector(load_model(keras_path), settings, ref, keras_path=keras_path, folder=beside)
