"""Writing the light runtime's files: the classifier and MTCNN's networks as LiteRT flatbuffers.

Runs where TensorFlow is (registration, `deepfake export`); `lite_runtime` reads the files
without it. The classifier graph holds the bilinear resize of the crops and, when the model
averages a face with its mirror image, the flip too: the runtime feeds crops and reads P(fake).
MTCNN's networks are the same for every model: converted once per `mtcnn` and TensorFlow
version and kept in the user's cache folder (`$XDG_CACHE_HOME`, else `~/.cache`), they are
copied from there after.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from deepfake_detector.core.atomic import atomic_dir
from deepfake_detector.inference.lite_runtime import CLASSIFIER, NETWORKS

log = logging.getLogger(__name__)


def _flatbuffer(model: Any) -> bytes:
    """A Keras functional model as a flatbuffer (weights frozen into constants)."""
    import tensorflow as tf

    return run_converter(tf.lite.TFLiteConverter.from_keras_model(model))


def run_converter(converter: Any) -> bytes:
    """Run a TFLite converter, without the line it prints for every captured tensor, nor its
    warning that float inputs came without quantization statistics (they need none)."""
    import contextlib
    import io
    import warnings

    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Statistics for quantized inputs were expected")
        return bytes(converter.convert())


def mirror_averaged(model: Any, tta_flip: bool) -> Callable[[Any], Any]:
    """P(fake) of a batch of crops at the model's size; with `tta_flip` averaged with the
    mirror images' scores, as the detector's own answers are."""
    import tensorflow as tf

    def scores(x: Any) -> Any:
        p = model(x, training=False)
        if tta_flip:
            p = (p + model(tf.reverse(x, axis=[2]), training=False)) / 2.0
        return p

    return scores


def frozen_converter(fn: Callable[[Any], Any], spec: Any) -> Any:
    """A TFLite converter for `fn` traced once as a `tf.function` over `spec` and frozen
    (variables to constants): the graph converting a wrapping Keras model gives, without the
    SavedModel round trip that doubles the time of every conversion.

    The converter reads the frozen graph directly when given no object to track (it warns that
    this path is the older one; TensorFlow is pinned, and with `model` as that object it gives
    the same flatbuffer at the slower speed)."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,  # what the converter itself freezes Keras models with
    )

    traced = tf.function(fn, input_signature=[spec], autograph=False).get_concrete_function()
    absl = logging.getLogger("absl")
    level = absl.level
    absl.setLevel(logging.ERROR)  # the warning about the older path, once per conversion
    try:
        return tf.lite.TFLiteConverter.from_concrete_functions(
            [convert_variables_to_constants_v2(traced)]
        )
    finally:
        absl.setLevel(level)


def classifier_flatbuffer(model: Any, image_size: int, tta_flip: bool) -> bytes:
    """The Keras classifier with its input resize (and mirror average) as one LiteRT graph,
    over crops of any size."""
    import keras
    import tensorflow as tf

    # The same bilinear resize as the training input pipeline and the TensorFlow path.
    resize = keras.layers.Resizing(image_size, image_size, interpolation="bilinear")
    scores = mirror_averaged(model, tta_flip)
    crops = tf.TensorSpec([None, None, None, 3], tf.float32, name="crops")
    return run_converter(frozen_converter(lambda x: scores(resize(x)), crops))


def mtcnn_cache_dir() -> Path:
    """Where MTCNN's converted networks are kept: one folder per `mtcnn` and TensorFlow version."""
    from importlib.metadata import version

    import tensorflow as tf

    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "deepfake-detector" / f"mtcnn-{version('mtcnn')}-tf-{tf.__version__}"


def cached_mtcnn_flatbuffers() -> dict[str, bytes]:
    """`mtcnn_flatbuffers`, from the cache folder when it holds them (else converted and, where
    the folder can be written, kept there)."""
    folder = mtcnn_cache_dir()
    files = {key: folder / name for key, name in NETWORKS.items()}
    try:
        return {key: path.read_bytes() for key, path in files.items()}
    except OSError:  # not cached yet (or swapped in by another process as it was read)
        pass
    out = mtcnn_flatbuffers()
    try:
        with atomic_dir(folder) as tmp:
            for key, data in out.items():
                (tmp / NETWORKS[key]).write_bytes(data)
    except OSError as exc:  # a read-only home: convert every time
        log.debug("MTCNN's LiteRT files not cached in %s: %s", folder, exc)
    return out


def mtcnn_flatbuffers() -> dict[str, bytes]:
    """PNet (any image size), RNet (24 px patches) and ONet (48 px) of the `mtcnn` package."""
    import keras
    from mtcnn import MTCNN

    networks = dict(zip(NETWORKS, (stage._model for stage in MTCNN().stages), strict=True))
    sizes = {"pnet": None, "rnet": 24, "onet": 48}
    out = {}
    for key, network in networks.items():  # mtcnn 1.0 (pinned) keeps them in `_model`
        x = keras.Input((sizes[key], sizes[key], 3), name="x")
        out[key] = _flatbuffer(keras.Model(x, network(x)))
    return out


def write_lite_files(model: Any, image_size: int, tta_flip: bool, folder: Path) -> Path:
    """Write the four .tflite files into `folder` (whole or not at all); return it."""
    with atomic_dir(folder) as tmp:
        (tmp / CLASSIFIER).write_bytes(classifier_flatbuffer(model, image_size, tta_flip))
        for key, data in cached_mtcnn_flatbuffers().items():
            (tmp / NETWORKS[key]).write_bytes(data)
    return folder
