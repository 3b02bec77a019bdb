"""4. Inference: image latency, folder and clip throughput, and the TFLite export.

One `Detector` (the predict path the CLI, app and REST share) around a detector built with
params.yaml's settings; its head is untrained, which changes the scores but not the work.

- Image latency: `predict_path` on each DFD frame (read, detect, crop, score, verdict), against
  the sum of its two parts timed alone on the same decoded image right after: the face detector
  (`face_detector.detect`) and the classifier (`scores` of the crops). The ratio is the overhead
  of everything else.
- Folder: faces per second of the same `predict_path` calls, one file after another as
  `deepfake predict folder/` runs them, against the seed's way on the same files (OpenCV read,
  full-resolution MTCNN, first box, `model.predict` on that one crop).
- Clip: seconds of `predict_video` per 10-second 1080p DFDC clip, against the seed's way on the
  same clip: the same sampled frames, full-resolution MTCNN, the first box, `model.predict`.
- TFLite: milliseconds per face crop at batch size 1, the float32 TFLite export
  (`export.convert`) in the TFLite interpreter against the Keras model through the predict path.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from bench.context import Context
from bench.quiet import silenced
from bench.results import Row, fmt, times
from bench.timing import median, percentile, stopwatch

if TYPE_CHECKING:
    import keras

    from deepfake_detector.inference.predict import Detector

NAME = "inference"
TITLE = "4. Inference"
MAX_OVERHEAD = 0.15


def make_detector(ctx: Context) -> Detector:
    """A Detector as `load_detector` builds one, around a freshly built (untrained) model."""
    from bench.projects import params_with
    from deepfake_detector.core.config import Params
    from deepfake_detector.inference.inference_config import InferenceConfig
    from deepfake_detector.inference.predict import Detector, ModelRef
    from deepfake_detector.learning.calibration import Calibration
    from deepfake_detector.learning.model import build_model

    params = Params.model_validate(params_with(ctx, {}))
    config = InferenceConfig(
        image_size=params.train.image_size,
        faces=params.faces,
        frames=params.frames,
        calibration=Calibration(),
    )
    return Detector(build_model(params.train), config, ModelRef(source="untrained head"))


class SeedPredictor:
    """The seed's way: full-resolution MTCNN, the first box, `model.predict` on that crop."""

    def __init__(self, model: keras.Model, size: int) -> None:
        from mtcnn import MTCNN

        self.mtcnn, self.model, self.size = MTCNN(), model, size

    def frame(self, rgb: np.ndarray) -> int:
        """Score the first face of one RGB frame; the number of faces scored (0 or 1)."""
        found = self.mtcnn.detect_faces(rgb)
        if not found:
            return 0
        x, y, w, h = (int(v) for v in found[0]["box"])
        crop = cv2.resize(rgb[max(y, 0) : y + h, max(x, 0) : x + w], (self.size, self.size))
        self.model.predict(crop[None].astype("float32"), verbose=0)
        return 1

    def file(self, path: Path) -> int:
        """Score one image file."""
        return self.frame(cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB))


def image_latency(detector: Detector, files: list[Path]) -> dict[str, list[float]]:
    """Per file: end-to-end seconds, detector seconds, classifier seconds, faces."""
    from deepfake_detector.sources.images import read_image

    out: dict[str, list[float]] = {"e2e": [], "det": [], "cls": [], "faces": []}
    detector.predict_path(files[0])  # warm-up: tracing
    for path in files:
        with stopwatch() as t:
            result = detector.predict_path(path)
        rgb = read_image(path)
        with stopwatch() as d:
            found = detector.face_detector.detect([rgb])[0]
        crops = [detector.crop(rgb, f) for f in found]
        with stopwatch() as c:
            detector.scores(crops)
        out["e2e"].append(t[0])
        out["det"].append(d[0])
        out["cls"].append(c[0])
        out["faces"].append(len(result["faces"]))
    return out


def face_crops(detector: Detector, files: list[Path], count: int) -> list[np.ndarray]:
    """`count` face crops from the files (repeated when fewer), as the predict path cuts them."""
    from deepfake_detector.sources.images import read_image

    crops = []
    for path in files:
        rgb = read_image(path)
        crops += [detector.crop(rgb, d) for d in detector.face_detector.detect([rgb])[0]]
    if not crops:
        raise RuntimeError("no face found in the TFLite inputs")
    return (crops * count)[:count]


def tflite_latency(detector: Detector, crops: list[np.ndarray]) -> tuple[float, float, float]:
    """Median seconds per crop at batch 1 for Keras and TFLite, and their largest P difference."""
    import tensorflow as tf

    from deepfake_detector.inference.export import convert

    with silenced():
        interpreter = tf.lite.Interpreter(model_content=convert(detector, "none", []))
        interpreter.allocate_tensors()
    source = interpreter.get_input_details()[0]["index"]
    target = interpreter.get_output_details()[0]["index"]
    size = detector.config.image_size

    def lite(crop: np.ndarray) -> float:
        x = tf.image.resize(crop[None].astype(np.float32), [size, size]).numpy()
        interpreter.set_tensor(source, x)
        interpreter.invoke()
        return float(interpreter.get_tensor(target).ravel()[0])

    keras_s, lite_s, diff = [], [], 0.0
    detector.raw_scores(crops[:1])
    lite(crops[0])
    for crop in crops:
        with stopwatch() as k:
            p_keras = float(detector.raw_scores([crop])[0])
        with stopwatch() as t:
            p_lite = lite(crop)
        keras_s.append(k[0])
        lite_s.append(t[0])
        diff = max(diff, abs(p_keras - p_lite))
    return median(keras_s), median(lite_s), diff


def clip_seconds(detector: Detector, seed: SeedPredictor, clips: list[Path]) -> tuple[float, float]:
    """Mean seconds per clip: the seed's way and `predict_video`, clip by clip."""
    from deepfake_detector.sources.video_reader import sample_frames

    seed_s, ours_s = 0.0, 0.0
    for clip in clips:
        start = time.perf_counter()
        _, _, picked = sample_frames(clip, detector.config.frames)
        for _, bgr in picked:
            seed.frame(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        seed_s += time.perf_counter() - start
        with stopwatch() as t:
            detector.predict_video(clip)
        ours_s += t[0]
    return seed_s / len(clips), ours_s / len(clips)


def run(ctx: Context) -> tuple[list[Row], list[str]]:
    """Latency, overhead, throughput and the TFLite comparison."""
    files = ctx.files("*/*.jpg", "dfd", "frames")[:: ctx.pick(1, 6)]
    clips = ctx.files("*.mp4", "dfdc")[: ctx.pick(2, 1)]
    detector = make_detector(ctx)
    lat = image_latency(detector, files)
    parts = [d + c for d, c in zip(lat["det"], lat["cls"], strict=True)]
    overhead = sum(lat["e2e"]) / sum(parts) - 1.0

    seed = SeedPredictor(detector.model, detector.config.image_size)
    subset = files[: ctx.pick(16, 4)]
    seed.file(subset[0])  # warm-up
    with stopwatch() as t:
        seed_faces = sum(seed.file(p) for p in subset)
    seed_rate = seed_faces / t[0]
    ours_rate = sum(lat["faces"][: len(subset)]) / sum(lat["e2e"][: len(subset)])

    seed_clip, ours_clip = clip_seconds(detector, seed, clips)

    crops = face_crops(detector, files[: ctx.pick(8, 2)], ctx.pick(32, 8))
    keras_s, lite_s, diff = tflite_latency(detector, crops)

    e2e, sums = lat["e2e"], parts
    rows = [
        Row(
            TITLE,
            f"image latency, file to verdict, {len(files)} 1080p frames: median / p95",
            f"{median(sums):.3f} / {percentile(sums, 95):.3f} s (detector + classifier)",
            f"{median(e2e):.3f} / {percentile(e2e, 95):.3f} s",
            f"+{overhead:.1%} overhead",
            f"<= +{MAX_OVERHEAD:.0%}",
            overhead <= MAX_OVERHEAD,
        ),
        Row(
            TITLE,
            f"faces/s scoring a folder, {len(subset)} files (vs the seed's way)",
            fmt(seed_rate, "faces/s"),
            fmt(ours_rate, "faces/s"),
            times(ours_rate / seed_rate),
        ),
        Row(
            TITLE,
            f"s per 10-second 1080p clip, {len(clips)} DFDC clips (vs the seed's way)",
            fmt(seed_clip, "s"),
            fmt(ours_clip, "s"),
            times(seed_clip / ours_clip) + " faster",
        ),
        Row(
            TITLE,
            "ms per face at batch 1, TFLite float32 vs Keras",
            fmt(keras_s * 1000, "ms (Keras)"),
            fmt(lite_s * 1000, "ms (TFLite)"),
            times(keras_s / lite_s) + " faster",
        ),
    ]
    notes = [
        f"Image latency: detector alone median {median(lat['det']):.3f} s, classifier alone "
        f"median {median(lat['cls']):.3f} s, {sum(lat['faces'])} faces in {len(files)} frames.",
        f"TFLite against Keras: largest difference of P(fake) {diff:.2g} over {len(crops)} crops.",
    ]
    return rows, notes
