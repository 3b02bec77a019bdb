"""crop_faces: margin and clamping, the real MTCNN on real frames, no-face frames counted."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import shared_path

from deepfake_detector.core.config import FacesParams, Params, PathsParams
from deepfake_detector.core.reports import StageReport
from deepfake_detector.sources.face_detection import MtcnnDetector, crop_box, crop_face
from deepfake_detector.sources.images import read_rgb
from deepfake_detector.stages.faces import crop_faces
from deepfake_detector.stages.frames import FrameRef, VideoFrames, finish_extract_frames


def test_crop_box_is_a_square_with_margin_on_each_side() -> None:
    x0, y0, x1, y1 = crop_box((100, 100, 40, 60), margin=0.3, width=1000, height=1000)
    assert x1 - x0 == y1 - y0 == 96  # 60 * (1 + 2 * 0.3)
    assert (x0 + x1) / 2 == pytest.approx(120, abs=1) and (y0 + y1) / 2 == pytest.approx(130, abs=1)


def test_crop_face_clamps_at_the_border_and_pads_black() -> None:
    image = np.full((100, 100, 3), 200, np.uint8)
    crop = crop_face(image, (0, 0, 40, 40), margin=0.5, size=80)
    assert crop.shape == (80, 80, 3)
    assert crop[:10, :10].max() == 0  # outside the image: padding, face geometry kept
    assert crop[-10:, -10:].min() == 200


def test_keep_largest_and_thresholds() -> None:
    photo = shared_path(
        "data", "dfd", "frames", "real", "Real_01__talking_against_wall_frame_0.jpg"
    )
    rgb = read_rgb(photo)
    assert rgb is not None
    small = cv2.resize(rgb, None, fx=0.7, fy=0.7)  # the same person, smaller, beside the frame
    two = np.zeros((rgb.shape[0], rgb.shape[1] + small.shape[1], 3), np.uint8)
    two[:, : rgb.shape[1]] = rgb
    two[: small.shape[0], rgb.shape[1] :] = small
    found_all = MtcnnDetector(FacesParams(keep="all")).detect([two])[0]
    found_one = MtcnnDetector(FacesParams(keep="largest")).detect([two])[0]
    assert len(found_all) >= 2 and len(found_one) == 1
    assert found_one[0].area == max(d.area for d in found_all)
    none = MtcnnDetector(FacesParams(min_face_size=2000)).detect([two])[0]
    assert none == []


@pytest.mark.shared_data
def test_mtcnn_finds_a_face_in_at_least_95_percent_of_the_real_1080p_frames() -> None:
    frames = sorted(shared_path("data", "dfd", "frames").rglob("*.jpg"))
    assert len(frames) == 48
    detector = MtcnnDetector(FacesParams())
    hits = 0
    for start in range(0, len(frames), 8):
        images = [read_rgb(p) for p in frames[start : start + 8]]
        hits += sum(bool(found) for found in detector.detect(images))
    assert hits / len(frames) >= 0.95, f"faces found in {hits}/{len(frames)} frames"


def test_stage_counts_frames_without_a_face(tmp_path: Path) -> None:
    photo = shared_path(
        "data", "dfd", "frames", "real", "Real_02__talking_against_wall_frame_0.jpg"
    )
    params = Params(
        paths=PathsParams(frames_dir=tmp_path / "frames", faces_dir=tmp_path / "faces"),
        faces=FacesParams(crop_size=64),
    )
    folder = tmp_path / "frames" / "clip"
    folder.mkdir(parents=True)
    cv2.imwrite(str(folder / "000000.jpg"), cv2.imread(str(photo)))
    cv2.imwrite(str(folder / "000010.jpg"), np.full((1080, 1920, 3), 90, np.uint8))  # no face
    refs = (FrameRef(0, 0.0, "000000.jpg"), FrameRef(10, 0.4, "000010.jpg"))
    video = VideoFrames("k", "clip", "real", "g1", None, 25.0, 11, refs)
    (folder / "frames.json").write_text(video.to_json())
    finish_extract_frames(params, [video], StageReport("extract_frames"), tmp_path)

    report = crop_faces(params, tmp_path)
    assert report.counts["frames"] == 2
    assert report.counts["frames_without_face"] == 1
    assert report.details["frames_without_face_per_video"] == {"clip": 1}
    assert report.counts["faces"] >= 1
    table = (tmp_path / "faces" / "faces.csv").read_text().splitlines()
    assert table[0].startswith("video_id,frame_index,face_index,file,x,y,w,h,confidence,landmarks")
    crop = cv2.imread(str(tmp_path / "faces" / "clip" / "000000_00.jpg"))
    assert crop.shape == (64, 64, 3)
