"""Face geometry: where the face sits in each source's crops, against the crop that prediction cuts.

Every set comes cut its own way (DFD: an MTCNN box stretched to 224 px; DFDC: tight boxes
enlarged; FaceForensics++: OpenCV Haar boxes at 299 px; UTKFace: aligned at 200 px), while
prediction cuts MTCNN's box from the whole frame (`crop_face`, the model's shape and margin). A
model can learn a source's crop style instead of the forgery, so imported sets are re-cut as
MTCNN's box (`sources.recut`). This study re-detects the face with MTCNN inside a seeded sample
of every source's crops, as shipped and as re-cut, and inside the crops that prediction cuts
from full video frames (as a square and as the box), and reports where the box lies (its size
and centre as shares of the crop): if the sources agree with prediction's crop, the crop style
carries no label.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from deepfake_detector.core.atomic import atomic_path, write_text
from deepfake_detector.core.config import CropGeometry, Params, with_geometry
from deepfake_detector.core.reports import StageReport
from deepfake_detector.core.study_config import StudySource, studies_of
from deepfake_detector.core.study_table import STUDY_GEOMETRY as GEOMETRY_FILE
from deepfake_detector.core.study_table import STUDY_REPORT
from deepfake_detector.sources.face_detection import MtcnnDetector, crop_face
from deepfake_detector.sources.images import read_image
from deepfake_detector.sources.recut import REDETECT
from deepfake_detector.studies.report import fmt, markdown_table
from deepfake_detector.studies.sources import load_source, source_geometry

log = logging.getLogger(__name__)

PREDICTION = "prediction crop"  # the rows of crops cut the way prediction cuts them


def box_in_crop(detector: MtcnnDetector, images: list[np.ndarray]) -> pd.DataFrame:
    """The largest face MTCNN finds in each crop, as shares of the crop: left, top, width,
    height, centre; `found` is False where it finds none."""
    rows = []
    for image, found in zip(images, detector.detect(images), strict=True):
        height, width = image.shape[:2]
        if not found:
            rows.append({"found": False})
            continue
        x, y, w, h = found[0].box
        rows.append(
            {
                "found": True,
                "width": w / width,
                "height": h / height,
                "centre_x": (x + w / 2) / width,
                "centre_y": (y + h / 2) / height,
                "touches_edge": x <= 1 or y <= 1 or x + w >= width - 1 or y + h >= height - 1,
            }
        )
    return pd.DataFrame(rows)


def _sample(paths: list[Path], n: int, seed: int) -> list[Path]:
    if len(paths) <= n:
        return paths
    order = np.random.default_rng(seed).permutation(len(paths))[:n]
    return [paths[i] for i in sorted(order)]


def prediction_crops(
    frames: list[Path], params: Params, geometries: list[CropGeometry]
) -> dict[CropGeometry, list[np.ndarray]]:
    """Faces cut from whole frames the way prediction cuts them (pipeline's detector and
    thresholds, crop size), once per geometry."""
    detector = MtcnnDetector(params.faces)
    crops: dict[CropGeometry, list[np.ndarray]] = {g: [] for g in geometries}
    for path in frames:
        image = read_image(path)
        for detection in detector.detect([image])[0]:
            for g in geometries:
                faces = with_geometry(params.faces, g)
                crops[g].append(crop_face(image, detection.box, g.margin, faces.crop_size, g.shape))
    return crops


def summarise(name: str, boxes: pd.DataFrame) -> dict[str, object]:
    """Medians and quartiles of the box's size and centre, and the share without a face."""
    found = boxes[boxes["found"]] if "found" in boxes and len(boxes) else boxes
    row: dict[str, object] = {
        "source": name,
        "crops": len(boxes),
        "no_face": int(len(boxes) - len(found)),
    }
    for column in ("width", "height", "centre_x", "centre_y"):
        values = found[column].astype(float) if len(found) else pd.Series(dtype=float)
        row[column] = float(values.median()) if len(values) else float("nan")
        row[f"{column}_q1"] = float(values.quantile(0.25)) if len(values) else float("nan")
        row[f"{column}_q3"] = float(values.quantile(0.75)) if len(values) else float("nan")
    row["touches_edge"] = float(found["touches_edge"].mean()) if len(found) else float("nan")
    return row


def face_geometry(params: Params, root: Path = Path("."), command: str = "") -> StageReport:
    """Study: the re-detected face box in a sample of each source's crops and in prediction's
    own crops; `geometry.csv` and `report.md`."""
    study = studies_of(params).face_geometry
    report = StageReport("face_geometry")
    detector = MtcnnDetector(REDETECT)
    sources: list[StudySource] = list(studies_of(params).leave_one_dataset_out.datasets)
    sources += [
        StudySource(name=s.name, face_set=s) for s in params.split.extra_faces if s.format == "real"
    ]
    geometry = source_geometry(sources[0], params) if sources else CropGeometry("box", 0.0)
    rows = []
    for source in sources:
        views = [(source.name, source)]
        if source.face_set is not None and source.face_set.recut:
            shipped = source.face_set.model_copy(update={"recut": False})
            views = [
                (f"{source.name} (as shipped)", StudySource(name=source.name, face_set=shipped)),
                (f"{source.name} (re-cut)", source),
            ]
        for name, view in views:
            table = load_source(view, params, root, source_geometry(view, params))
            paths = [Path(p) for p in table["path"]]
            images = [read_image(p) for p in _sample(paths, study.sample, params.split.seed)]
            rows.append(summarise(name, box_in_crop(detector, images)))
            report.count(f"{name}_crops", len(images))
    frames_dir = root / study.frames
    frames = sorted(frames_dir.rglob("*.jpg")) if frames_dir.is_dir() else []
    if frames:
        # The model's geometry, and the square with its margin (the pipeline's own shape).
        geometries = list(dict.fromkeys([geometry, CropGeometry("square", geometry.margin)]))
        sample = _sample(frames, study.sample, params.split.seed)
        for g, crops in prediction_crops(sample, params, geometries).items():
            rows.append(summarise(f"{PREDICTION} ({g})", box_in_crop(detector, crops)))
            report.count(f"prediction_crops_{g.shape}", len(crops))
    else:
        report.skip(str(frames_dir), "no video frames: prediction's crop is not measured")
    table = pd.DataFrame(rows)
    out_dir = root / studies_of(params).reports_dir / study.name
    with atomic_path(out_dir / GEOMETRY_FILE) as tmp:
        table.to_csv(tmp, index=False)
    write_text(out_dir / STUDY_REPORT, _text(table, command, study.sample))
    report.details["geometry"] = table.to_dict(orient="records")
    return report.finish(out_dir)


def _text(table: pd.DataFrame, command: str, sample: int) -> str:
    def span(column: str) -> list[str]:
        return [
            f"{fmt(m)} [{fmt(a)}, {fmt(b)}]"
            for m, a, b in zip(
                table[column], table[f"{column}_q1"], table[f"{column}_q3"], strict=True
            )
        ]

    view = pd.DataFrame(
        {
            "source": table["source"],
            "crops (no face)": [
                f"{c} ({n})" for c, n in zip(table["crops"], table["no_face"], strict=True)
            ],
            "box width": span("width"),
            "box height": span("height"),
            "centre x": span("centre_x"),
            "centre y": span("centre_y"),
            "box touches the edge": [fmt(v) for v in table["touches_edge"]],
        }
    )
    return f"""# Face geometry

Made by:

```
{command}
```

MTCNN re-detects the face inside a seeded sample of at most {sample} crops of each source (a
re-cut set as shipped and as re-cut: MTCNN's box cut again, `sources.recut`), and inside the
crops prediction cuts from whole video frames (`crop_face`: MTCNN's box stretched to the crop,
or a square around it, with the model's margin). Each cell is the median [first, third
quartile] of the largest box, as a share of the crop's width or height. A source whose crops
frame the face like prediction's crop does cannot teach the model its crop style.

{markdown_table(view)}
"""
