"""The studies' params (`params.yaml` section `studies`), apart from the pipeline's
(`core.config`): no pipeline stage's code imports this module, so editing a study's set-up
changes no stage's key. `Params.studies` holds the section as read; `studies_of` validates it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, model_validator

from deepfake_detector.core.config import (
    DFDC_FACES,
    FFPP_FACES,
    FaceSetParams,
    Params,
    ParamsError,
    Section,
)


class StudySource(Section):
    """A labelled set for a study: a faces table, a video manifest run through the stages, or
    a face set (a folder of crops, `FaceSetParams`)."""

    name: str
    faces: Path | None = None  # faces.csv of import_faces or crop_faces
    manifest: Path | None = None  # uri,label,group[,sha256,split]: downloaded, framed, cropped
    face_set: FaceSetParams | None = None  # e.g. the DFDC face crops (limit: faces tested)

    @model_validator(mode="after")
    def _one_kind(self) -> StudySource:
        given = [k for k in ("faces", "manifest", "face_set") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                f"study source '{self.name}': give exactly one of faces, manifest or face_set"
            )
        return self


class Candidate(Section):
    """One recipe a study compares inside each fold: `section.key=value` overrides."""

    name: str
    overrides: tuple[str, ...] = ()


class LeaveOneGroupOutParams(Section):
    """Train on every group but one, test on that one, for each group in turn."""

    name: str = "loao_pasted_face"
    source: StudySource = StudySource(name="dfd_faces", faces=Path("data/face_images/faces.csv"))
    # Validation (early stopping, calibration, choice of recipe): one more held-out group, a
    # share of videos, or the validation groups of the extra face sets (split.extra_faces) alone,
    # so that every group but the tested one trains.
    val: Literal["group", "video", "extra"] = "extra"
    val_share: float = Field(0.2, gt=0, lt=1)
    # A self-blended pseudo-fake of each validation real face joins validation: recipes are
    # then chosen and calibrated on two kinds of forgery (the val AUC is their mean).
    val_self_blends: bool = True
    # Recipes compared inside each fold on its validation data (nested: the test group never
    # chooses); the fold's result is the chosen recipe's. One candidate: no choice.
    candidates: tuple[Candidate, ...] = (
        Candidate(name="self"),
        Candidate(name="both", overrides=("train.blend_donor=both",)),
        Candidate(name="other", overrides=("train.blend_donor=other",)),
    )


class CrossDatasetParams(Section):
    """Train on one set, test on others that the model never saw."""

    name: str = "cross_dataset"
    train: StudySource = StudySource(name="dfd_faces", faces=Path("data/face_images/faces.csv"))
    test: tuple[StudySource, ...] = (
        StudySource(name="dfdc_sample", manifest=Path("data/manifests/dfdc_sample.csv")),
        StudySource(name="demo", manifest=Path("data/demo/manifest.csv")),
    )
    val: Literal["group", "video", "extra"] = "extra"
    val_share: float = Field(0.2, gt=0, lt=1)
    # A self-blended pseudo-fake of each validation real face joins validation: recipes are
    # then chosen and calibrated on two kinds of forgery (the val AUC is their mean).
    val_self_blends: bool = True


class LeaveOneDatasetOutParams(Section):
    """Hold out each dataset in turn (other people and other forgery pipelines); the others,
    with the real-only sets of `split.extra_faces` and pseudo-fakes, train and validate."""

    name: str = "leave_one_dataset_out"
    datasets: tuple[StudySource, ...] = (
        StudySource(name="dfd", faces=Path("data/face_images/faces.csv")),
        StudySource(name="dfdc", face_set=FaceSetParams(**DFDC_FACES)),
        StudySource(name="ffpp", face_set=FaceSetParams(**FFPP_FACES)),
    )
    # Share of each training dataset's groups that validates (calibration, threshold, choice of
    # recipe): the held-out dataset never takes part in any of them.
    val_share: float = Field(0.2, gt=0, lt=1)
    val_self_blends: bool = True
    # A dataset whose forgery methods are also held out one at a time: its test groups' reals
    # and that method's fakes test; the method's fakes leave training and validation.
    methods_of: str = "ffpp"
    method_test_share: float = Field(0.3, gt=0, lt=1)  # its groups that test a held-out method
    candidates: tuple[Candidate, ...] = (Candidate(name="default"),)


class FaceGeometryParams(Section):
    """Where the face sits in each source's crops and in the crop prediction cuts."""

    name: str = "face_geometry"
    sample: int = Field(200, ge=1)  # crops re-detected per source (seeded)
    frames: Path = Path("../shared/data/dfd/frames")  # whole video frames: prediction's crop


class StudiesParams(Section):
    """Generalisation studies: where their reports and working files go, and each one's set-up."""

    reports_dir: Path = Path("studies/reports")
    work_dir: Path = Path("data/studies")
    experiment: str = "deepfake-studies"
    leave_one_group_out: LeaveOneGroupOutParams = LeaveOneGroupOutParams()
    cross_dataset: CrossDatasetParams = CrossDatasetParams()
    leave_one_dataset_out: LeaveOneDatasetOutParams = LeaveOneDatasetOutParams()
    face_geometry: FaceGeometryParams = FaceGeometryParams()


def studies_of(params: Params) -> StudiesParams:
    """The studies' section of `params`, validated (its own defaults where params.yaml is
    silent); a wrong key or value is a `ParamsError` that names it, as at load."""
    try:
        return StudiesParams.model_validate(params.studies)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(["studies", *(str(p) for p in err["loc"])])
            if err["type"] == "extra_forbidden":
                problems.append(f"unknown key '{where}'")
            else:
                problems.append(f"'{where}': {err['msg']}")
        raise ParamsError("; ".join(problems)) from None
