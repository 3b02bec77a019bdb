"""Imported crops cut again as MTCNN's box (real MTCNN, real crops): cache, skips, face sets."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import shared_path
from PIL import Image

from deepfake_detector.core.config import CropGeometry, FaceSetParams, Params
from deepfake_detector.core.reports import StageReport
from deepfake_detector.sources.face_sets import face_sets_table
from deepfake_detector.sources.images import read_image
from deepfake_detector.sources.recut import INDEX, Recutter, recut_table


def _crops(tmp_path: Path, n: int = 4) -> list[Path]:
    """A few FaceForensics++ crops (299 px, Haar boxes) copied into the test's folder."""
    source = shared_path("data", "ffpp_faces", "real")
    out = tmp_path / "crops"
    out.mkdir()
    return [Path(shutil.copy(p, out)) for p in sorted(source.glob("*.jpg"))[:n]]


def test_a_crop_is_cut_again_as_the_box_mtcnn_finds_in_it(tmp_path: Path) -> None:
    crops = _crops(tmp_path)
    recutter = Recutter(tmp_path / "cache", crop_size=224)
    report = StageReport("t")
    cuts = recutter.recut(crops, 0.0, report)
    assert all(c is not None for c in cuts) and report.counts["recut_detected"] == 4
    for cut in cuts:
        assert cut is not None
        image = read_image(cut.path)
        assert image.shape == (224, 224, 3)
        x, y, w, h = cut.box
        assert y >= 0 and h > 0.8 * 299
        # MTCNN's box of a face inside its own 299 px crop: narrower than the crop (Haar boxes
        # are wide); the landmarks lie inside the box.
        assert x >= 0 and x + w <= 299 and w < 0.95 * 299
        marks = np.array(list(json.loads(cut.landmarks).values()))
        assert marks.shape == (5, 2)
        assert np.all((marks[:, 0] > x) & (marks[:, 0] < x + w))
    # Cached: the same files are not detected again; another margin is another folder.
    again = StageReport("t")
    assert [c.path for c in recutter.recut(crops, 0.0, again) if c] == [c.path for c in cuts if c]
    assert again.counts["recut_detected"] == 0
    assert recutter.folder(0.1) != recutter.folder(0.0)
    # The same crops copied elsewhere with new modification times (a re-synced share): cached.
    moved = tmp_path / "moved"
    moved.mkdir()
    copies = [Path(shutil.copyfile(p, moved / p.name)) for p in crops]
    for copy in copies:
        os.utime(copy, ns=(1, 1))
    elsewhere = StageReport("t")
    assert [c.path for c in recutter.recut(copies, 0.0, elsewhere) if c] == [
        c.path for c in cuts if c
    ]
    assert elsewhere.counts["recut_detected"] == 0
    # A re-cut crop deleted by hand is cut again; a changed source crop gets a new key.
    first = cuts[0]
    assert first is not None
    first.path.unlink()
    third = StageReport("t")
    assert recutter.recut(crops, 0.0, third)[0] == first
    assert third.counts["recut_detected"] == 1


def test_a_crop_without_a_face_or_unreadable_is_reported_and_skipped(tmp_path: Path) -> None:
    crops = _crops(tmp_path, 2)
    blank = tmp_path / "crops" / "blank.jpg"
    Image.fromarray(np.full((224, 224, 3), 128, "uint8")).save(blank)
    broken = tmp_path / "crops" / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    table = pd.DataFrame(
        {"path": [crops[0], blank, broken, crops[1]], "file": "", "label": "real", "group": "g"}
    )
    report = StageReport("t")
    out = recut_table(table, Recutter(tmp_path / "cache"), 0.0, report)
    assert [Path(p).name for p in table.loc[out.index, "path"]] == [crops[0].name, crops[1].name]
    assert out["landmarks"].str.startswith("{").all() and (out["w"] > 0).all()
    reasons = {Path(s["item"]).name: s["reason"] for s in report.to_dict()["skipped"]}
    assert reasons["blank.jpg"] == "MTCNN finds no face in the crop"
    assert reasons["broken.jpg"].startswith("cannot re-cut")
    # What found no face is remembered, not detected again; the index says why.
    again = StageReport("t")
    recut_table(table, Recutter(tmp_path / "cache"), 0.0, again)
    assert again.counts["recut_detected"] == 0 and len(again.skipped) == 2
    index = pd.read_csv(Recutter(tmp_path / "cache").folder(0.0) / INDEX)
    assert sorted(index["found"].tolist()) == [False, False, True, True]


def test_a_face_set_joins_re_cut_and_only_beside_crops_framed_alike(tmp_path: Path) -> None:
    root = shared_path("data", "ffpp_faces")
    ffpp = FaceSetParams(
        name="ffpp", root=root, group_column="block", video_columns=("group", "method"), limit=20
    )
    params = Params.model_validate({"paths": {"recut_dir": str(tmp_path / "recut")}})
    recutter = Recutter.from_params(params, tmp_path)
    report = StageReport("t")
    table = face_sets_table((ffpp,), tmp_path, 0, CropGeometry("box", 0.0), report, recutter)
    assert len(table) >= 18 and report.counts["recut_faces"] == len(table)
    assert all(Path(p).is_relative_to(tmp_path / "recut") for p in table["path"])
    assert table["landmarks"].str.startswith("{").all()
    # Beside the pipeline's own square crops with a margin, the set does not join at all.
    square = StageReport("t")
    alone = face_sets_table((ffpp,), tmp_path, 0, CropGeometry("square", 0.3), square, recutter)
    assert alone.empty
    assert "the pipeline's as square, margin 0.3" in square.to_dict()["skipped"][0]["reason"]


@pytest.mark.parametrize("shape", ["square", "box"])
def test_training_crops_and_prediction_crops_share_one_cut(shape: str) -> None:
    from deepfake_detector.sources.face_detection import crop_box, crop_face

    image = np.arange(400 * 300 * 3, dtype=np.uint32).reshape(300, 400, 3).astype("uint8")
    box = (100, 50, 80, 120)
    x0, y0, x1, y1 = crop_box(box, 0.1, 400, 300, shape)
    if shape == "box":  # the box, 10% of its width and height added on each side
        assert (x1 - x0, y1 - y0) == (96, 144)
    else:  # a square on the longer side
        assert x1 - x0 == y1 - y0 == 144
    assert crop_face(image, box, 0.1, 64, shape).shape == (64, 64, 3)


def test_many_skips_show_ten_lines_and_a_count_and_the_report_keeps_them_all(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    from deepfake_detector.core.reports import SKIPS_SHOWN

    report = StageReport("split_dataset")
    with caplog.at_level(logging.INFO, logger="deepfake_detector.core.reports"):
        for i in range(SKIPS_SHOWN + 290):
            report.skip(f"crop_{i}.jpg", "MTCNN finds no face in the crop")
        report.skip("videos.csv", "a skip the settings intend", level=logging.INFO)
        report.finish(tmp_path)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == SKIPS_SHOWN + 1
    assert warnings[0] == "split_dataset: skipped crop_0.jpg: MTCNN finds no face in the crop"
    assert warnings[-1].startswith("split_dataset: 290 more skipped (each with its reason in")
    assert any("a skip the settings intend" in r.getMessage() for r in caplog.records)
    written = json.loads((tmp_path / "report.json").read_text())
    assert len(written["skipped"]) == SKIPS_SHOWN + 291 == written["counts"]["skipped"]
