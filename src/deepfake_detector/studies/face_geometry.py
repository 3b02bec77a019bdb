"""Face geometry: where the face sits in each source's crops, against the crop that prediction cuts.

Every set comes cut its own way (DFD: an MTCNN box stretched to 224 px; DFDC: tight boxes
enlarged; FaceForensics++: OpenCV Haar boxes at 299 px; UTKFace: aligned at 200 px), while
prediction cuts a square around MTCNN's box with the model's margin (`crop_face`). A model can
learn a source's crop style instead of the forgery. This study re-detects the face with MTCNN
inside a seeded sample of every source's crops, and inside the crops that prediction cuts from
full video frames, and reports where the box lies (its size and centre as shares of the crop):
if the sources agree with prediction's crop, the crop style carries no label.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from deepfake_detector.core.atomic import atomic_path, write_text
from deepfake_detector.core.config import FacesParams, Params, StudySource
from deepfake_detector.core.dag import STUDY_GEOMETRY as GEOMETRY_FILE
from deepfake_detector.core.dag import STUDY_REPORT
from deepfake_detector.core.reports import StageReport
from deepfake_detector.sources.face_detection import MtcnnDetector, crop_face
from deepfake_detector.sources.images import read_image
from deepfake_detector.studies.protocols import load_source, source_margin
from deepfake_detector.studies.report import fmt, markdown_table

log = logging.getLogger(__name__)

PREDICTION = "prediction crop"  # the row of crops cut the way prediction cuts them
# Re-detection inside a crop: any face MTCNN finds (the crop is already a face).
REDETECT = FacesParams(min_face_size=20, min_confidence=0.5, keep="largest")


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


def prediction_crops(frames: list[Path], params: Params, margin: float) -> list[np.ndarray]:
    """Faces cut from whole frames the way prediction cuts them (pipeline's detector and
    thresholds, `margin`, crop size)."""
    faces = params.faces.model_copy(update={"margin": margin})
    detector = MtcnnDetector(faces)
    crops = []
    for path in frames:
        image = read_image(path)
        for detection in detector.detect([image])[0]:
            crops.append(crop_face(image, detection.box, margin, faces.crop_size))
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
    study = params.studies.face_geometry
    report = StageReport("face_geometry")
    detector = MtcnnDetector(REDETECT)
    sources: list[StudySource] = list(params.studies.leave_one_dataset_out.datasets)
    sources += [
        StudySource(name=s.name, face_set=s) for s in params.split.extra_faces if s.format == "real"
    ]
    margin = source_margin(sources[0], params) if sources else 0.0
    rows = []
    for source in sources:
        table = load_source(source, params, root, source_margin(source, params))
        paths = [Path(p) for p in table["path"]]
        images = [read_image(p) for p in _sample(paths, study.sample, params.split.seed)]
        rows.append(summarise(source.name, box_in_crop(detector, images)))
        report.count(f"{source.name}_crops", len(images))
    frames_dir = root / study.frames
    frames = sorted(frames_dir.rglob("*.jpg")) if frames_dir.is_dir() else []
    if frames:
        crops = prediction_crops(_sample(frames, study.sample, params.split.seed), params, margin)
        rows.append(summarise(f"{PREDICTION} (margin {margin:g})", box_in_crop(detector, crops)))
        report.count("prediction_crops", len(crops))
    else:
        report.skip(str(frames_dir), "no video frames: prediction's crop is not measured")
    table = pd.DataFrame(rows)
    out_dir = root / params.studies.reports_dir / study.name
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

MTCNN re-detects the face inside a seeded sample of at most {sample} crops of each source, and
inside the crops prediction cuts from whole video frames (`crop_face`: a square around MTCNN's
box with the model's margin). Each cell is the median [first, third quartile] of the largest
box, as a share of the crop's width or height. A source whose crops frame the face like
prediction's crop does cannot teach the model its crop style.

{markdown_table(view)}
"""
