"""Typed view of `params.yaml`, the single source of paths and hyper-parameters."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, NamedTuple

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from deepfake_detector.core.errors import UserError

DEFAULT_PARAMS = Path("params.yaml")


class Section(BaseModel):
    """A frozen params section that rejects unknown keys."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class PathsParams(Section):
    """Where every stage reads and writes, relative to the project root."""

    demo_dir: Path = Path("data/demo")
    videos_dir: Path = Path("data/raw/videos")
    frames_dir: Path = Path("data/interim/frames")
    faces_dir: Path = Path("data/interim/faces")
    split_dir: Path = Path("data/processed")
    model_dir: Path = Path("models/detector")
    evaluation_dir: Path = Path("models/evaluation")
    registration_dir: Path = Path("models/registration")
    # Imported crops cut again to the model's face geometry (`sources.recut`): a cache keyed
    # by each file and the geometry, safe to delete.
    recut_dir: Path = Path("data/interim/recut")


class DemoParams(Section):
    """The embedded demo set made from face photographs shipped in installed packages."""

    clips_per_identity: int = Field(4, ge=1)
    frames_per_clip: int = Field(48, ge=2)
    fps: float = Field(12.0, gt=0)
    width: int = Field(480, ge=64)
    height: int = Field(360, ge=64)
    seed: int = 0


class DownloadParams(Section):
    """How `download_videos` reads its manifest and fetches videos."""

    manifest: Path = Path("data/demo/manifest.csv")
    timeout_s: float = Field(30.0, gt=0)
    retries: int = Field(3, ge=0)
    backoff_s: float = Field(1.0, ge=0)
    max_bytes: int = Field(2_000_000_000, gt=0)
    deadline_s: float = Field(3600.0, gt=0)  # one video's download, retries included
    allow_local: bool = True  # local paths and file:// in the manifest (false: URLs only)
    chunk_bytes: int = Field(1 << 20, gt=0)


class FramesParams(Section):
    """How `extract_frames` samples frames from each video."""

    mode: Literal["count", "stride"] = "count"
    count: int = Field(32, ge=1)
    stride: int = Field(30, ge=1)
    jpeg_quality: int = Field(95, ge=1, le=100)


CropShape = Literal["square", "box"]


class FacesParams(Section):
    """How `crop_faces` finds and crops faces (MTCNN); prediction cuts faces the same way."""

    margin: float = Field(0.3, ge=0.0, le=2.0)
    # square: a square around MTCNN's box, `margin` of its longer side added on each side;
    # box: the box itself, `margin` of its width and height added, stretched to crop_size
    # (the geometry of tight crops, which every imported set can give: `sources.recut`).
    shape: CropShape = "square"
    min_face_size: int = Field(40, ge=8)
    min_confidence: float = Field(0.9, ge=0.0, le=1.0)
    keep: Literal["all", "largest"] = "all"
    crop_size: int = Field(224, ge=32)
    jpeg_quality: int = Field(95, ge=1, le=100)


# `Real_01__talking_against_wall_frame_3`, `Fake_01_03__hugging_happy__ISF9SP4G_frame_14`:
# group = target actor, source = the actor whose face was swapped in, video = name before _frame_.
DFD_FACES_PATTERN = (
    r"(?P<video>(?:Real|Fake)_(?P<group>\d+)(?:_(?P<source>\d+))?__.+?)_frame_(?P<frame>\d+)"
)


class FaceImagesParams(Section):
    """A folder of face crops (`real/`, `fake/`) that `import_faces` turns into a faces table."""

    root: Path = Path("../shared/data/dfd/faces")
    pattern: str = DFD_FACES_PATTERN
    dataset: str = "dfd"
    method: str = "DeepFakeDetection"  # forgery method of the fakes unless the pattern names one
    margin: float = Field(0.0, ge=0, le=1)  # the margin the crops were cut with
    # Re-detect the face in every crop (MTCNN) and cut it again as MTCNN's box with `margin`
    # (`sources.recut`); off for crops already cut that way (the DFD crops).
    recut: bool = False
    out_dir: Path = Path("data/face_images")


class FaceSetParams(Section):
    """A labelled folder of face crops that joins training (and, by its shares, validation and
    the test side).

    More people than the pipeline's own data holds: a set of other identities teaches what a
    forgery looks like on faces the test set never shows. Its crops must frame the face like
    the pipeline's (MTCNN's box with the same `margin`), or the model learns to tell the
    sources apart: by default every crop is re-detected and cut again that way (`recut`).
    """

    name: str
    root: Path
    # metadata: `metadata.csv` with file, label, group (the DFDC face crops);
    # real: every image is a real face of its own group (e.g. UTKFace), used only beside
    # synthetic fakes made from those same faces (a real-only source would teach the source).
    format: Literal["metadata", "real"] = "metadata"
    group_kind: str = "source video"  # what one group is, for reports ("person", "source video")
    limit: int = Field(0, ge=0)  # at most this many faces, whole groups drawn seeded; 0: all
    val_share: float = Field(0.0, ge=0, lt=1)  # share of its groups kept for validation
    # Share of its groups that test the pipeline's model (its own row in the evaluation);
    # studies never test on it (they hold whole datasets out instead).
    test_share: float = Field(0.0, ge=0, lt=1)
    margin: float = Field(0.0, ge=0, le=2)  # the margin its crops were (or are re-)cut with
    # Re-detect the face in each crop (MTCNN) and cut it again as MTCNN's box with `margin`
    # (`sources.recut`): every set then frames the face alike; a crop without a face is skipped.
    recut: bool = True
    # metadata: the column whose values the split keeps on one side (FaceForensics++: `block`,
    # runs of neighbouring videos, so a rare mis-paired original cannot cross the split).
    group_column: str = "group"
    # metadata: the columns that together name a video (its crops are pooled at video level
    # and weigh as one); none: every crop is a one-frame video of its own.
    video_columns: tuple[str, ...] = ()


# The shared face sets as params.yaml names them (split.extra_faces and the studies).
DFDC_FACES: dict[str, Any] = {
    "name": "dfdc_faces",
    "root": Path("../shared/data/dfdc_faces"),
    "group_kind": "source video",
}
FFPP_FACES: dict[str, Any] = {
    "name": "ffpp_faces",
    "root": Path("../shared/data/ffpp_faces"),
    "group_column": "block",
    "video_columns": ("group", "method"),
    "group_kind": "block of videos",
}


class SplitParams(Section):
    """How `split_dataset` assigns groups to train, validation and test."""

    # The faces table to split: crop_faces' folder (videos), or import_faces' (face images).
    faces_dir: Path = Path("data/interim/faces")
    train: float = Field(0.6, gt=0, lt=1)
    val: float = Field(0.2, ge=0, lt=1)  # 0: validation comes from the extra face sets alone
    test: float = Field(0.2, gt=0, lt=1)
    seed: int = 0
    # Face sets of other people added to the train side (and, by `val_share` and `test_share`,
    # to validation and test).
    extra_faces: tuple[FaceSetParams, ...] = (
        FaceSetParams(**DFDC_FACES, val_share=0.1, test_share=0.2),
        FaceSetParams(**FFPP_FACES, val_share=0.1, test_share=0.2),
        FaceSetParams(
            name="utkface",
            root=Path("../shared/data/real_faces/utkface"),
            format="real",
            group_kind="person",
            limit=1000,
            test_share=0.3,
        ),
    )

    @model_validator(mode="after")
    def _fractions_sum_to_one(self) -> SplitParams:
        total = self.train + self.val + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"split fractions must sum to 1, got {total:.4f}")
        return self


class AugmentParams(Section):
    """Training-time augmentation applied inside the tf.data pipeline."""

    flip: bool = True
    brightness: float = Field(0.15, ge=0, le=1)
    contrast: float = Field(0.2, ge=0, le=1)
    blur_prob: float = Field(0.2, ge=0, le=1)
    jpeg_prob: float = Field(0.5, ge=0, le=1)
    jpeg_quality_min: int = Field(40, ge=1, le=100)
    jpeg_quality_max: int = Field(100, ge=1, le=100)


class TrainParams(Section):
    """MobileNetV2 transfer learning: head first, then fine-tuning of the top layers."""

    image_size: int = Field(224, ge=32)
    # The MobileNetV2 layer the classifier reads: `out_relu` (the whole base) or an earlier
    # block's output (e.g. block_13_expand_relu), whose mid-level features hold less of who a
    # face is and more of how it was made.
    feature_layer: str = "block_13_expand_relu"
    # Earlier layers read beside `feature_layer` (each brought to its grid by average pooling),
    # so the head also sees lower-level texture: e.g. [block_6_expand_relu, block_10_expand_relu].
    pooled_layers: tuple[str, ...] = ("block_6_expand_relu", "block_10_expand_relu")
    # How each channel is summarised over the face: mean (global average pooling) or mean_std
    # (mean and spatial standard deviation: how unevenly a texture spreads over the crop).
    pooling: Literal["mean", "mean_std"] = "mean_std"
    base_weights: str = "imagenet"
    imagenet_file: Path | None = Path("../shared/weights/mobilenet_v2_1.0_224_no_top.weights.h5")
    batch_size: int = Field(32, ge=1)
    # The head: logistic (L2-regularised logistic regression on the frozen base's features, a
    # convex fit, repeatable to the bit), mlp (one hidden ReLU layer of `head_hidden` units on
    # the same features, the same L2 strength) or adam (gradient descent on images, head_epochs).
    head: Literal["logistic", "mlp", "adam"] = "mlp"
    head_c: float = Field(0.01, gt=0)  # logistic, mlp: inverse L2 strength (standardised features)
    head_hidden: int = Field(64, ge=1)  # mlp: hidden units
    # Fold-model averaging: the head fitted `head_folds` times, each time without one of as many
    # seeded folds of the training faces, the fits' logits averaged (folded into one head).
    # Validation chose 5 over 1 in every fold of the leave-one-dataset-out study.
    head_folds: int = Field(5, ge=1, le=20)  # logistic, mlp; 1: one head on every face
    # Frequency statistics beside the CNN features: fixed high-pass filters (Laplacian and
    # second differences) on the grey crop at three scales, each response's mean and spread.
    frequency: bool = False
    augmented_views: int = Field(1, ge=0)  # logistic: augmented copies of each training face
    head_epochs: int = Field(3, ge=0)
    epochs: int = Field(0, ge=0)
    fine_tune_layers: int = Field(30, ge=0)
    head_learning_rate: float = Field(1e-3, gt=0)
    learning_rate: float = Field(1e-4, gt=0)
    dropout: float = Field(0.2, ge=0, lt=1)
    label_smoothing: float = Field(0.0, ge=0, lt=0.5)
    patience: int = Field(2, ge=1)
    seed: int = 0
    augment: AugmentParams = AugmentParams()
    # Self-blended fakes (SBI): none; sbi: real faces and pseudo-fakes made from them only;
    # mix: the real fakes and the pseudo-fakes together.
    synthetic_fakes: Literal["none", "sbi", "mix"] = "mix"
    synthetic_share: float = Field(0.5, gt=0, le=1)  # real faces that also give a pseudo-fake
    # Whose face a pseudo-fake pastes in: self (a jittered copy of the same face, SBI), other
    # (another person's real face, Face X-ray's blended images) or both (half each).
    blend_donor: Literal["self", "other", "both"] = "self"
    # Where a self-blend pastes: face (the whole face ellipse), parts (one of eyes, nose, mouth
    # or lower face, as tools that swap parts or re-render a mouth do) or both (half each).
    blend_region: Literal["face", "parts", "both"] = "face"
    # How the logistic head weighs its rows: none (each face alike, classes balanced) or equal
    # (each dataset and label alike, and within them each video alike, however many it brings).
    dataset_weighting: Literal["none", "equal"] = "equal"


class EvaluateParams(Section):
    """How `evaluate_model` calibrates on the validation split and scores the test split."""

    # fpr:R: the threshold at which a share R of the validation real faces is called fake,
    # each dataset weighted alike (an operating point that says what to expect on real faces);
    # auto: Youden's J on validation; or a fixed number.
    threshold: str | float = "fpr:0.05"
    calibrate: bool = True
    # "uncertain": the share of validation faces answered (the rest: blurrier than
    # `blur_quantile` of them, or scored in a band around the threshold); 1: always answer.
    coverage: float = Field(0.9, gt=0, le=1)
    blur_quantile: float = Field(0.02, ge=0, lt=1)
    min_face_px: int = Field(64, ge=0)  # a smaller face (MTCNN box, shorter side) is not judged
    min_confidence: float = Field(0.95, ge=0, le=1)  # nor one MTCNN is less sure of
    min_track_faces: int = Field(2, ge=1)  # a video track with fewer judged faces is uncertain
    tta_flip: bool = True  # average each face's score with its mirror image's
    bootstrap: int = Field(1000, ge=0)  # resamples for the 95% intervals; 0 turns them off
    batch_size: int = Field(64, ge=1)

    @model_validator(mode="after")
    def _threshold_in_range(self) -> EvaluateParams:
        if self.threshold == "auto":
            return self
        value = self.target_fpr if _is_fpr(self.threshold) else _number(self.threshold)
        if value is None or not 0 < value < 1:
            raise ValueError(
                "threshold must be 'auto', fpr:R (a false-positive rate between 0 and 1, e.g. "
                "fpr:0.05) or a number between 0 and 1"
            )
        return self

    @property
    def target_fpr(self) -> float | None:
        """The false-positive rate the threshold is fitted for (`fpr:R`), else None."""
        if not _is_fpr(self.threshold):
            return None
        return _number(str(self.threshold).split(":", 1)[1])

    @property
    def fixed_threshold(self) -> float | None:
        """The threshold given as a number, else None (fitted on validation)."""
        if self.threshold == "auto" or _is_fpr(self.threshold):
            return None
        return _number(self.threshold)


def _is_fpr(value: str | float) -> bool:
    return isinstance(value, str) and value.strip().lower().startswith("fpr:")


def _number(value: str | float) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


class RegistryParams(Section):
    """MLflow tracking and registry settings (`MLFLOW_TRACKING_URI` overrides `tracking_uri`)."""

    tracking_uri: str = "sqlite:///mlruns/mlflow.db"
    artifact_root: Path = Path("mlruns/artifacts")
    experiment: str = "deepfake-detection"
    model_name: str = "deepfake-detector"
    alias: str = "champion"
    # The group gate: a version whose worst group (age band, gender, race; at least
    # `min_group_faces` test faces) calls real faces fake more than this many times as often as
    # all labelled people together never takes the alias (0: no gate).
    max_group_fpr_ratio: float = Field(2.0, ge=0)
    min_group_faces: int = Field(20, ge=1)
    # The terms each training dataset may be used under, by dataset name: the model card's
    # training data table (a dataset left out reads "not stated").
    data_terms: dict[str, str] = Field(
        default_factory=lambda: {
            "demo": "made here from sample photographs shipped with matplotlib and scikit-image",
            "dfd": "research use only (FaceForensics++ terms)",
            "dfdc_faces": "research use only (Deepfake Detection Challenge terms)",
            "ffpp_faces": "research use only (FaceForensics++ terms)",
            "utkface": "non-commercial research use only (UTKFace terms)",
        }
    )

    @property
    def alias_uri(self) -> str:
        """The registry URI of the version behind the alias, `models:/NAME@ALIAS`."""
        return f"models:/{self.model_name}@{self.alias}"


class ScheduleParams(Section):
    """The Prefect deployment that retrains on a schedule."""

    deployment: str = "retrain"
    cron: str = "0 3 * * 1"
    timezone: str = "UTC"


class FlowParams(Section):
    """Where the Prefect flow runs its tasks; the results are the same whichever is chosen."""

    task_runner: Literal["threads", "dask"] = "threads"
    workers: int = Field(2, ge=1)  # threads, or worker processes of a local Dask cluster
    dask_address: str = ""  # an existing Dask scheduler (tcp://host:8786); empty: a local one


class Params(Section):
    """Everything in `params.yaml`."""

    paths: PathsParams = PathsParams()
    demo: DemoParams = DemoParams()
    download: DownloadParams = DownloadParams()
    frames: FramesParams = FramesParams()
    faces: FacesParams = FacesParams()
    face_images: FaceImagesParams = FaceImagesParams()
    split: SplitParams = SplitParams()
    train: TrainParams = TrainParams()
    evaluate: EvaluateParams = EvaluateParams()
    registry: RegistryParams = RegistryParams()
    schedule: ScheduleParams = ScheduleParams()
    flow: FlowParams = FlowParams()
    serve: dict[str, Any] = Field(default_factory=dict)  # core.serve_config.serve_of reads it
    # The studies' section as read: validated by `core.study_config.studies_of`, which no
    # pipeline stage imports (editing a study changes no stage's key).
    studies: dict[str, Any] = Field(default_factory=dict)


class CropGeometry(NamedTuple):
    """How a crop frames the face: the shape cut around MTCNN's box and the margin added."""

    shape: CropShape
    margin: float

    def __str__(self) -> str:
        return f"{self.shape}, margin {self.margin:g}"


def crop_geometry(params: Params, faces_dir: Path) -> CropGeometry:
    """The geometry of the crops in `faces_dir`: imported face images are MTCNN boxes with
    their own margin; crop_faces' are cut as `faces` says. A model trained on them has it."""
    if Path(faces_dir) == Path(params.face_images.out_dir):
        return CropGeometry("box", params.face_images.margin)
    return CropGeometry(params.faces.shape, params.faces.margin)


def with_geometry(faces: FacesParams, geometry: CropGeometry) -> FacesParams:
    """`faces` cutting crops with `geometry` (prediction's settings for a model)."""
    return faces.model_copy(update={"shape": geometry.shape, "margin": geometry.margin})


class ParamsError(UserError, ValueError):
    """params.yaml is missing, malformed, or holds an unknown or invalid key."""


def load_params(path: Path | str = DEFAULT_PARAMS) -> Params:
    """Parse and validate params.yaml; errors name the offending key."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError as exc:
        raise ParamsError(f"{path}: no such file; run from the project root") from exc
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: expected a mapping of sections at the top level")
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"])
            if err["type"] == "extra_forbidden":
                problems.append(f"unknown key '{where}'")
            else:
                problems.append(f"'{where}': {err['msg']}")
        raise ParamsError(f"{path}: " + "; ".join(problems)) from None


def with_overrides(params: Params, overrides: list[str]) -> Params:
    """`params` with `section.key=value` overrides (values parsed as YAML), re-validated."""
    data = params.model_dump(mode="json")
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ParamsError(f"override '{item}': expected section.key=value")
        *parents, leaf = key.strip().split(".")
        node = data
        for name in parents:
            if not isinstance(node.get(name), dict):
                raise ParamsError(f"override '{item}': unknown key '{key}'")
            node = node[name]
        if leaf not in node:
            raise ParamsError(f"override '{item}': unknown key '{key}'")
        node[leaf] = yaml.safe_load(text)
    try:
        return Params.model_validate(data)
    except ValidationError as exc:
        raise ParamsError(f"overrides {overrides}: {exc.errors()[0]['msg']}") from None
