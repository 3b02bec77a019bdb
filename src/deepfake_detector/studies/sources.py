"""A study's sources as faces tables: an imported faces table, a manifest run through the
video stages (through the table), or a face set; each cut with the geometry it is judged in.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from deepfake_detector.core.artifacts import FACES_INDEX
from deepfake_detector.core.config import (
    CropGeometry,
    FaceSetParams,
    Params,
    crop_geometry,
    with_geometry,
)
from deepfake_detector.core.dag import stage
from deepfake_detector.core.errors import UserError
from deepfake_detector.core.reports import StageReport
from deepfake_detector.core.study_config import StudySource, studies_of
from deepfake_detector.core.study_table import VIDEO_STAGES
from deepfake_detector.sources.face_images import read_faces_table
from deepfake_detector.sources.manifest import read_manifest
from deepfake_detector.studies.folds import (
    StudyError,
)

log = logging.getLogger(__name__)


def extra_faces(
    params: Params, root: Path, geometry: CropGeometry, report: StageReport
) -> pd.DataFrame:
    """The extra face sets (`split.extra_faces`) as study rows (re-cut as the pipeline's split
    re-cuts them), or an empty table."""
    from deepfake_detector.sources.face_sets import face_sets_table
    from deepfake_detector.sources.recut import Recutter

    return face_sets_table(
        params.split.extra_faces,
        root,
        params.split.seed,
        geometry,
        report,
        Recutter.from_params(params, root),
    )


def load_source(
    source: StudySource, params: Params, root: Path, geometry: CropGeometry
) -> pd.DataFrame:
    """A source's faces table; a video manifest is run through download, frames and faces
    (cut with `geometry`); a face set's crops are re-cut when it says so."""
    if source.face_set is not None:
        return face_set_source(source.face_set, params, root)
    if source.faces is not None:
        path = root / source.faces
        if not path.is_file():
            raise StudyError(f"source '{source.name}': no faces table {path}; run import_faces")
        table = read_faces_table(path)
    else:
        if source.manifest is None:
            raise StudyError(f"source '{source.name}': give faces, manifest or face_set")
        table = read_faces_table(_faces_from_videos(source, params, root, geometry))
        methods = {
            r.video_id: r.method or ""
            for r in read_manifest(root / source.manifest, StageReport("manifest"))
        }
        table["method"] = table["video_id"].map(methods).fillna("")
    table["dataset"] = [d or source.name for d in table["dataset"]]
    return table


def _faces_from_videos(
    source: StudySource, params: Params, root: Path, geometry: CropGeometry
) -> Path:
    """Run the per-video stages on a manifest, in the study's own working folders."""
    work = studies_of(params).work_dir / "sources" / source.name
    paths = params.paths.model_copy(
        update={
            "videos_dir": work / "videos",
            "frames_dir": work / "frames",
            "faces_dir": work / f"faces_{geometry.shape}_margin{geometry.margin:g}",
        }
    )
    derived = params.model_copy(
        update={
            "paths": paths,
            "download": params.download.model_copy(update={"manifest": source.manifest}),
            "faces": with_geometry(params.faces, geometry),
        }
    )
    for name in VIDEO_STAGES:  # through the table: the study table declares it `runs` them
        stage(name).function()(derived, root)
    return root / paths.faces_dir / FACES_INDEX


def face_set_source(face_set: FaceSetParams, params: Params, root: Path) -> pd.DataFrame:
    """A face set as a study source: its sampled crops (re-cut when the set says so), each
    with its own one-frame video unless the set names videos."""
    from deepfake_detector.sources.face_sets import read_face_set, sample_groups
    from deepfake_detector.sources.recut import Recutter, recut_table

    seed = params.split.seed
    try:
        table = read_face_set(face_set, root)
    except UserError as exc:
        raise StudyError(str(exc)) from exc
    # Drawn in another order than `split.extra_faces` draws (seed + 7), so that a set used
    # for both shares few groups; shared ones leave the test side (`cross_dataset`).
    table = sample_groups(table, face_set.limit, seed + 7).reset_index(drop=True)
    if face_set.recut:
        report = StageReport(f"recut {face_set.name}")
        table = recut_table(table, Recutter.from_params(params, root), face_set.margin, report)
        table = table.reset_index(drop=True)
        if report.skipped:
            log.warning(
                "source '%s': %d crops without a face left out", face_set.name, len(report.skipped)
            )
    table["split"] = ""
    return table


def source_geometry(source: StudySource, params: Params) -> CropGeometry:
    """How a source's crops frame the face (test videos are cropped the same way)."""
    if source.face_set is not None:
        from deepfake_detector.sources.face_sets import face_set_geometry

        return face_set_geometry(source.face_set)
    if source.faces is not None:
        return crop_geometry(params, Path(source.faces).parent)
    return CropGeometry(params.faces.shape, params.faces.margin)
