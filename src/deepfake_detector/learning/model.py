"""The classifier: MobileNetV2 base (ImageNet weights), its own input scaling, a binary head."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deepfake_detector.core.config import TrainParams
from deepfake_detector.core.errors import UserError

if TYPE_CHECKING:
    import keras

log = logging.getLogger(__name__)

KERAS_IMAGENET_FILE = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"


class WeightsError(UserError, RuntimeError):
    """The chosen base weights cannot be had."""


class FeatureLayerError(UserError, ValueError):
    """`train.feature_layer` names no layer of MobileNetV2."""


def keras_cache_file() -> Path:
    """Where Keras keeps its downloaded ImageNet weights for MobileNetV2 (no top)."""
    home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
    return home / "models" / KERAS_IMAGENET_FILE


def _remedies() -> str:
    return (
        "Either set train.base_weights to the path of a MobileNetV2 no-top weights file "
        "(for example mobilenet_v2_1.0_224_no_top.weights.h5), or set train.imagenet_file to "
        "such a file, or let Keras download its ImageNet weights on a machine with internet "
        f"(it caches them at {keras_cache_file()}). "
        "Use train.base_weights: none to train from scratch."
    )


def resolve_base_weights(params: TrainParams) -> str | None:
    """Turn `train.base_weights` into what Keras accepts: 'imagenet', a file path, or None."""
    choice = params.base_weights.strip()
    if choice.lower() == "none":
        return None
    if choice.lower() == "imagenet":
        if keras_cache_file().exists():
            return "imagenet"
        if params.imagenet_file is not None and Path(params.imagenet_file).is_file():
            log.debug("ImageNet weights from the local file %s", params.imagenet_file)
            return str(params.imagenet_file)
        return (
            "imagenet"  # Keras will try to download; build_model turns a failure into WeightsError
        )
    path = Path(choice)
    if not path.is_file():
        raise WeightsError(f"train.base_weights: no such file {path}. {_remedies()}")
    return str(path)


def build_model(params: TrainParams) -> keras.Model:
    """MobileNetV2 (no top, up to `feature_layer`, with `pooled_layers` beside it) behind its
    [-1, 1] scaling, then pooling (`pooling`), dropout, sigmoid."""
    import keras

    weights = resolve_base_weights(params)
    shape = (params.image_size, params.image_size, 3)
    try:
        base = keras.applications.MobileNetV2(input_shape=shape, include_top=False, weights=weights)
    except Exception as exc:  # Keras raises many kinds for a failed download or a bad file
        raise WeightsError(
            f"cannot load MobileNetV2 weights '{weights}': {exc}. {_remedies()}"
        ) from exc
    base = feature_base(base, params)
    base.trainable = False
    inputs = keras.Input(shape=shape, name="image")  # RGB, 0..255
    # Exactly keras.applications.mobilenet_v2.preprocess_input (x / 127.5 - 1), as a layer so the
    # saved model needs no custom code and loads in Keras' safe mode.
    x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="preprocess_input")(inputs)
    maps = base(x, training=False)  # batch-norm statistics stay those of ImageNet in fine-tuning
    if params.pooling == "mean_std":
        pooled = mean_std_pooling(base.output.shape[1:])(maps)
    else:
        pooled = keras.layers.GlobalAveragePooling2D(name="pool")(maps)
    if params.frequency:
        bands = frequency_statistics(shape)(x)
        pooled = keras.layers.Concatenate(name="with_frequency")([pooled, bands])
    h = keras.layers.Dropout(params.dropout, name="dropout")(pooled)
    if params.head == "mlp":
        width = params.head_hidden * params.head_folds  # each fold's hidden units side by side
        h = keras.layers.Dense(width, activation="relu", name="hidden")(h)
    outputs = keras.layers.Dense(1, activation="sigmoid", name="p_fake")(h)
    return keras.Model(inputs, outputs, name="deepfake_detector")


# Fixed high-pass kernels: the Laplacian and the second differences across, down and along
# both diagonals. Each responds to fine detail only, whatever the face's colour or light.
_HIGH_PASS = (
    ((0, 1, 0), (1, -4, 1), (0, 1, 0)),
    ((0, 0, 0), (1, -2, 1), (0, 0, 0)),
    ((0, 1, 0), (0, -2, 0), (0, 1, 0)),
    ((1, 0, 0), (0, -2, 0), (0, 0, 1)),
    ((0, 0, 1), (0, -2, 0), (1, 0, 0)),
)
FREQUENCY_SCALES = (1, 2, 4)


def frequency_statistics(shape: tuple[int, int, int]) -> keras.Model:
    """Frequency statistics of a crop, (H, W, 3) in [-1, 1] -> (4 * kernels * scales,), as a
    small model named `frequency` of Keras' own layers with fixed weights (nothing trains it).

    The grey crop at full, half and quarter resolution goes through the high-pass kernels
    (`_HIGH_PASS`, each with both signs so a ReLU keeps the magnitude); each response is
    summarised by its mean (how much detail each band holds: resampling and the smoothing of a
    generator take it away, their upsampling leaves periodic traces) and its spatial spread
    (how unevenly it is spread: a pasted region is sharper or softer than the rest of the face).
    """
    import keras
    import numpy as np

    crop = keras.Input(shape, name="scaled_crop")
    grey_layer = keras.layers.Conv2D(1, 1, use_bias=False, trainable=False, name="grey")
    grey = grey_layer(crop)
    kernels = np.asarray(_HIGH_PASS, "float32")
    bank = np.concatenate([kernels, -kernels]).transpose(1, 2, 0)[:, :, None, :]
    summaries, filters = [], []
    for scale in FREQUENCY_SCALES:
        level = grey
        if scale > 1:
            level = keras.layers.AveragePooling2D(scale, name=f"grey_{scale}x")(grey)
        conv = keras.layers.Conv2D(
            bank.shape[-1], 3, use_bias=False, trainable=False, name=f"high_pass_{scale}x"
        )
        response = keras.layers.ReLU(name=f"magnitude_{scale}x")(conv(level))
        filters.append(conv)
        pool = mean_std_pooling(tuple(response.shape[1:]), name=f"bands_{scale}x")
        summaries.append(pool(response))
    model = keras.Model(
        crop, keras.layers.Concatenate(name="bands")(summaries), name="frequency", trainable=False
    )
    # ITU-R BT.601 luma, on the [-1, 1] scaled crop; x8 so a response is about unit scale.
    grey_layer.set_weights([np.array([0.299, 0.587, 0.114], "float32").reshape(1, 1, 3, 1) * 8])
    for conv in filters:
        conv.set_weights([bank])
    return model


def head_features(model: keras.Model, scaled: Any, maps: Any) -> Any:
    """What the head reads, from the scaled crops and the base's feature maps: the pooled maps,
    and the frequency statistics beside them when the model has them."""
    pooled = model.get_layer("pool")(maps)
    if not any(layer.name == "frequency" for layer in model.layers):
        return pooled
    import keras

    return keras.ops.concatenate([pooled, model.get_layer("frequency")(scaled)], axis=-1)


def head_of(model: keras.Model) -> Any:
    """The head as a function of `head_features`: the hidden layer (mlp) and `p_fake`."""
    names = {layer.name for layer in model.layers}
    layers = [model.get_layer(n) for n in ("hidden", "p_fake") if n in names]

    def head(x: Any) -> Any:
        for layer in layers:
            x = layer(x)
        return x

    return head


def mean_std_pooling(shape: tuple[int | None, ...], name: str = "pool") -> keras.Model:
    """Each channel's spatial mean and standard deviation side by side, (H, W, C) -> (2C,), as a
    small model named `pool` of Keras' own layers (so the detector loads anywhere without custom
    code): the standard deviation is the mean of x * (x - mean) / std, which layer normalisation
    over the spatial axes gives.

    The mean says what a face shows; the spread says how evenly it shows it. A pasted or
    blended region has another texture, sharpness or colour than the rest of the crop, so
    texture channels vary more across it than across an untouched face (the blending cue of
    Face X-ray and self-blended images).
    """
    import keras

    maps = keras.Input(shape, name="feature_maps")
    normed = keras.layers.LayerNormalization(
        axis=(1, 2), center=False, scale=False, epsilon=1e-6, name="spatial_standardise"
    )(maps)
    spread = keras.layers.Multiply(name="spread_terms")([maps, normed])
    mean = keras.layers.GlobalAveragePooling2D(name="mean")(maps)
    std = keras.layers.GlobalAveragePooling2D(name="std")(spread)
    return keras.Model(maps, keras.layers.Concatenate(name="mean_std")([mean, std]), name=name)


def _layer_output(base: keras.Model, name: str, key: str) -> Any:
    try:
        return base.get_layer(name).output
    except ValueError as exc:
        raise FeatureLayerError(
            f"train.{key}: MobileNetV2 has no layer '{name}' (e.g. block_13_expand_relu, out_relu)"
        ) from exc


def feature_base(base: keras.Model, params: TrainParams) -> keras.Model:
    """MobileNetV2 cut at `feature_layer`, with the `pooled_layers` beside it: each earlier map
    average-pooled down to the feature layer's grid and stacked on its channels, so the base
    still gives one feature map (for pooling, fine-tuning and Grad-CAM alike)."""
    import keras

    if params.feature_layer == base.layers[-1].name and not params.pooled_layers:
        return base
    top = _layer_output(base, params.feature_layer, "feature_layer")
    maps = []
    for name in params.pooled_layers:
        side = _layer_output(base, name, "pooled_layers")
        factor = int(side.shape[1]) // int(top.shape[1])
        if factor < 1 or int(side.shape[1]) != factor * int(top.shape[1]):
            raise FeatureLayerError(
                f"train.pooled_layers: '{name}' ({side.shape[1]} px grid) does not pool down to "
                f"'{params.feature_layer}' ({top.shape[1]} px grid): choose an earlier layer"
            )
        if factor > 1:
            side = keras.layers.AveragePooling2D(factor, name=f"{name}_to_grid")(side)
        maps.append(side)
    out = keras.layers.Concatenate(name="feature_maps")([*maps, top]) if maps else top
    return keras.Model(base.input, out, name=f"{base.name}_to_{params.feature_layer}")


def base_of(model: keras.Model) -> keras.Model:
    """The MobileNetV2 sub-model inside `model`."""
    return next(layer for layer in model.layers if layer.name.startswith("mobilenetv2"))


def unfreeze_top(model: keras.Model, n_layers: int) -> None:
    """Make the top `n_layers` of the base trainable; batch-norm layers stay frozen."""
    import keras

    base = base_of(model)
    base.trainable = True
    cut = len(base.layers) - n_layers
    for i, layer in enumerate(base.layers):
        layer.trainable = i >= cut and not isinstance(layer, keras.layers.BatchNormalization)


def load_model(path: Path) -> keras.Model:
    """Load a saved detector in Keras' safe mode (no arbitrary code runs)."""
    import keras

    return keras.models.load_model(path, safe_mode=True, compile=False)


def save_model(model: keras.Model, path: Path) -> None:
    """Save in Keras' format, byte for byte the same for the same weights.

    Keras stamps each save with the time (`date_saved` in `metadata.json` and the zip entries'
    dates) and names objects shared between layers by their memory address (`shared_object_id`
    in `config.json`), which would give the same model a new hash in `dvc.lock` on every run:
    the dates are written fixed and the ids renumbered in order of appearance (they only link
    the uses of one object). The weights file itself is already stable.
    """
    import json
    import zipfile

    raw = path.with_name(path.name + ".raw.keras")
    try:
        model.save(raw)
        with zipfile.ZipFile(raw) as src, zipfile.ZipFile(path, "w") as dst:
            for info in src.infolist():
                data = src.read(info)
                if info.filename == "metadata.json":
                    meta = json.loads(data)
                    meta.pop("date_saved", None)
                    data = json.dumps(meta, sort_keys=True).encode()
                elif info.filename == "config.json":
                    data = json.dumps(_renumber_shared(json.loads(data), {})).encode()
                entry = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
                entry.compress_type, entry.external_attr = info.compress_type, info.external_attr
                dst.writestr(entry, data)
    finally:
        raw.unlink(missing_ok=True)


def _renumber_shared(node: Any, ids: dict[int, int]) -> Any:
    """The config with each `shared_object_id` (a memory address) replaced by 1, 2, 3, ..."""
    if isinstance(node, dict):
        return {
            k: ids.setdefault(v, len(ids) + 1)
            if k == "shared_object_id"
            else _renumber_shared(v, ids)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_renumber_shared(v, ids) for v in node]
    return node
