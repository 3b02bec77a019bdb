"""import_faces: folders of face crops as the pipeline's start, grouped by a file-name pattern."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import shared_path
from PIL import Image

from deepfake_detector.core.config import DFD_FACES_PATTERN, FaceImagesParams, Params
from deepfake_detector.core.reports import StageReport
from deepfake_detector.sources.face_images import (
    FaceImagesError,
    compile_pattern,
    import_faces,
    read_face_images,
    read_faces_table,
)


def test_shared_dfd_faces_give_videos_groups_and_swapped_identities(tmp_path: Path) -> None:
    root = shared_path("data", "dfd", "faces")
    params = Params(face_images=FaceImagesParams(root=root, out_dir=tmp_path / "faces"))
    report = import_faces(params, Path("."))
    assert report.skipped == []
    assert (report.counts["real_faces"], report.counts["fake_faces"]) == (312, 266)
    assert (report.counts["videos"], report.counts["groups"]) == (16, 4)
    table = read_faces_table(tmp_path / "faces" / "faces.csv")
    assert all(Path(p).is_file() for p in table["path"])  # the images in place, not copied
    video = table.groupby("video_id").agg(
        label=("label", "first"), group=("group", "first"), identities=("identities", "first")
    )
    assert video.loc["Fake_01_03__hugging_happy__ISF9SP4G"].tolist() == ["fake", "01", "01;03"]
    assert video.loc["Real_02__talking_angry_couch"].tolist() == ["real", "02", "02"]
    assert sorted(table["group"].unique()) == ["01", "02", "03", "04"]
    assert set(table.loc[table["label"] == "fake", "method"]) == {"DeepFakeDetection"}
    assert not table.duplicated(["video_id", "frame_index"]).any()


def _image(path: Path, value: int = 128) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((40, 32, 3), value, np.uint8)).save(path)


def test_bad_names_and_files_are_skipped_with_reasons(tmp_path: Path) -> None:
    root = tmp_path / "faces"
    _image(root / "Real" / "Real_07__walk_frame_0.jpg")
    _image(root / "real" / "sub" / "Real_07__walk_frame_3.png")
    _image(root / "fake" / "Fake_07_08__walk__AB12_frame_0.jpg", 30)
    _image(root / "fake" / "holiday.jpg")  # no group in the name
    (root / "fake" / "Fake_08_07__walk__CD34_frame_1.jpg").write_bytes(b"not a jpeg")
    (root / "fake" / "notes.txt").write_text("hello")
    report = StageReport("t")
    out = tmp_path / "out"
    out.mkdir()
    images = FaceImagesParams(root=root, pattern=DFD_FACES_PATTERN, out_dir=out)
    table = read_face_images(images, Path("."), out, report)
    assert sorted(table["video_id"]) == ["Fake_07_08__walk__AB12", "Real_07__walk", "Real_07__walk"]
    assert table.loc[table["label"] == "real", "frame_index"].tolist() == [0, 3]
    reasons = {Path(s.item).name: s.reason for s in report.skipped}
    assert set(reasons) == {"holiday.jpg", "Fake_08_07__walk__CD34_frame_1.jpg", "notes.txt"}
    assert "does not match" in reasons["holiday.jpg"]
    assert "not a readable image" in reasons["Fake_08_07__walk__CD34_frame_1.jpg"]
    assert "not an image" in reasons["notes.txt"]
    assert table[["x", "y", "w", "h"]].drop_duplicates().values.tolist() == [[0, 0, 32, 40]]


def test_pattern_without_video_or_frame_makes_each_image_its_own_video(tmp_path: Path) -> None:
    root = tmp_path / "faces"
    for i, person in enumerate(("ann", "ann", "bo")):
        _image(root / "real" / f"{person}-{i}.jpg")
        _image(root / "fake" / f"{person}-swap-{i}.jpg")
    out = tmp_path / "out"
    out.mkdir()
    images = FaceImagesParams(root=root, pattern=r"(?P<group>[a-z]+)-.*", method="x", out_dir=out)
    table = read_face_images(images, Path("."), out, StageReport("t"))
    assert table["video_id"].nunique() == 6 and sorted(table["group"].unique()) == ["ann", "bo"]
    assert set(table.loc[table["label"] == "fake", "method"]) == {"x"}


def test_wrong_patterns_and_layouts_are_refused_with_reasons(tmp_path: Path) -> None:
    with pytest.raises(FaceImagesError, match="must name the group"):
        compile_pattern(r"(?P<video>.+)")
    with pytest.raises(FaceImagesError, match="not a regular expression"):
        compile_pattern(r"(?P<group>")
    params = Params(face_images=FaceImagesParams(root=tmp_path / "none", out_dir=tmp_path / "o"))
    with pytest.raises(FaceImagesError, match="no such folder"):
        import_faces(params)
    (tmp_path / "flat").mkdir()
    _image(tmp_path / "flat" / "a.jpg")
    params = Params(face_images=FaceImagesParams(root=tmp_path / "flat", out_dir=tmp_path / "o"))
    with pytest.raises(FaceImagesError, match="real/ and fake/"):
        import_faces(params)
    _image(tmp_path / "flat" / "real" / "x.jpg")
    with pytest.raises(FaceImagesError, match="no face images matched"):
        import_faces(params)
    assert not (tmp_path / "o" / "faces.csv").exists()


def test_faces_table_of_crop_faces_reads_with_defaults(tmp_path: Path) -> None:
    pd.DataFrame(
        {"video_id": ["v"], "frame_index": [0], "file": ["v/0.jpg"], "label": ["fake"]}
        | {"group": ["g"], "split": [None]}
    ).to_csv(tmp_path / "faces.csv", index=False)
    table = read_faces_table(tmp_path / "faces.csv")
    row = table.iloc[0]
    assert (row["identities"], row["split"], row["dataset"], row["y"]) == ("g", "", "", 1.0)
    assert row["path"] == tmp_path / "v" / "0.jpg"
