"""Face geometry: MTCNN re-detects the face inside each source's crops and prediction's crop."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import shared_path

from deepfake_detector.core.config import Params
from deepfake_detector.studies.face_geometry import PREDICTION, face_geometry, summarise


def test_summary_counts_crops_without_a_face_and_takes_medians() -> None:
    boxes = pd.DataFrame(
        [
            {"found": True, "width": w, "height": 1.0, "centre_x": 0.5, "centre_y": 0.5}
            | {"touches_edge": w > 0.8}
            for w in (0.6, 0.8, 0.9)
        ]
        + [{"found": False}]
    )
    row = summarise("set", boxes)
    assert row["crops"] == 4 and row["no_face"] == 1
    assert row["width"] == pytest.approx(0.8) and row["touches_edge"] == pytest.approx(1 / 3)


def test_face_geometry_measures_each_source_and_the_prediction_crop(tmp_path: Path) -> None:
    dfdc = shared_path("data", "dfdc_faces")
    utk = shared_path("data", "real_faces", "utkface")
    frames = shared_path("data", "dfd", "frames")
    params = Params.model_validate(
        {
            "split": {
                "extra_faces": [
                    {"name": "utkface", "root": str(utk), "format": "real", "limit": 12}
                ]
            },
            "studies": {
                "reports_dir": str(tmp_path / "reports"),
                "leave_one_dataset_out": {
                    "datasets": [
                        {
                            "name": "dfdc",
                            "face_set": {"name": "dfdc", "root": str(dfdc), "limit": 12},
                        }
                    ]
                },
                "face_geometry": {"name": "geo", "sample": 3, "frames": str(frames)},
            },
        }
    )
    report = face_geometry(params, tmp_path, command="deepfake face_geometry")
    table = pd.read_csv(tmp_path / "reports" / "geo" / "geometry.csv")
    # Each re-cut set as shipped and re-cut; prediction's crop as the model's box and a square.
    assert table["source"].tolist() == [
        "dfdc (as shipped)",
        "dfdc (re-cut)",
        "utkface (as shipped)",
        "utkface (re-cut)",
        f"{PREDICTION} (box, margin 0)",
        f"{PREDICTION} (square, margin 0)",
    ]
    assert table["crops"].iloc[:4].tolist() == [3, 3, 3, 3]
    # A face crop holds a face that fills much of it, wherever it came from.
    found = table[table["crops"] > table["no_face"]].set_index("source")
    assert len(found) == 6 and np.all((found["width"] > 0.3) & (found["width"] <= 1.0))
    # Cut as MTCNN's box, the face fills the crop's width more than in a square around it.
    box, square = (found.loc[f"{PREDICTION} ({g}, margin 0)", "width"] for g in ("box", "square"))
    assert box > square + 0.1
    # The re-cut crops are in the project's cache, one file each, with MTCNN's findings.
    assert len(list((tmp_path / "data" / "interim" / "recut").rglob("*.jpg"))) >= 20
    text = (tmp_path / "reports" / "geo" / "report.md").read_text()
    assert "deepfake face_geometry" in text and "| dfdc (re-cut) |" in text
    saved = json.loads((tmp_path / "reports" / "geo" / "report.json").read_text())
    counts = report.to_dict()["counts"]
    assert saved["counts"]["prediction_crops_box"] == counts["prediction_crops_box"] >= 3
