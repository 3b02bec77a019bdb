"""A video's faces at the pace of its decoding: keyframes searched, faces carried between those
that agree, searched afresh where they do not; with a scripted face detector (the
`FaceDetector` protocol), so each case says exactly which frames were searched."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pytest

from deepfake_detector.core.config import FramesParams
from deepfake_detector.inference.video_faces import (
    STABLE_IOU,
    find_video_faces,
    keyframes,
)
from deepfake_detector.sources.face_detection import Detection

SIZE = (160, 120)


def numbered_video(path: Path, frames: int, fourcc: str = "mp4v") -> Path:
    """Frame i is a flat grey of level 10 * i: the frame a detector sees says which it is."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10.0, SIZE)
    assert writer.isOpened()
    for i in range(frames):
        writer.write(np.full((SIZE[1], SIZE[0], 3), 10 * i, np.uint8))
    writer.release()
    return path


def face(x: int, y: int = 20, size: int = 40, confidence: float = 0.99) -> Detection:
    marks = {"left_eye": (x + 10.0, y + 15.0), "right_eye": (x + 30.0, y + 15.0)}
    return Detection((x, y, size, size), confidence, marks)


class ScriptedDetector:
    """A `FaceDetector` whose faces per video frame come from a function of the frame's index
    (read back from its grey level); it records which frames it was asked about."""

    def __init__(self, script: dict[int, list[Detection]] | None = None) -> None:
        self.script = script or {}
        self.asked: list[int] = []

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Detection]]:
        out = []
        for image in images:
            index = int(round(float(image.mean()) / 10))
            self.asked.append(index)
            out.append(self.script.get(index, [face(10 + 2 * index)]))
        return out


def boxes(video_faces: list[list[Detection]]) -> list[list[tuple[int, int, int, int]]]:
    return [[d.box for d in here] for here in video_faces]


def count_faces(frames: list[np.ndarray], faces: list[list[Detection]]) -> list[list[int]]:
    return [[len(here)] for here in faces]


def sampling(n: int) -> FramesParams:
    return FramesParams(mode="count", count=n)


def test_keyframes_are_every_strideth_and_the_last() -> None:
    assert keyframes(9, 4) == [0, 4, 8]
    assert keyframes(10, 4) == [0, 4, 8, 9]
    assert keyframes(3, 1) == [0, 1, 2]
    assert keyframes(0, 4) == []


def test_faces_that_agree_are_carried_in_a_straight_line(tmp_path: Path) -> None:
    video = numbered_video(tmp_path / "v.mp4", 9)
    detector = ScriptedDetector()  # one face moving 2 px a frame: keyframes agree
    found = find_video_faces(video, sampling(9), detector.detect, count_faces, stride=4)
    assert sorted(detector.asked) == [0, 4, 8]
    assert found.indices == list(range(9))
    assert found.carried == [False, True, True, True, False, True, True, True, False]
    assert boxes(found.faces) == [[(10 + 2 * i, 20, 40, 40)] for i in range(9)]
    assert found.faces[2][0].landmarks["left_eye"] == pytest.approx((24.0, 35.0))
    assert found.scored == [[1]] * 9  # every frame's faces went to the scorer once


def test_every_frame_is_searched_at_stride_one(tmp_path: Path) -> None:
    video = numbered_video(tmp_path / "v.mp4", 6)
    detector = ScriptedDetector()
    found = find_video_faces(video, sampling(6), detector.detect, count_faces, stride=1)
    assert sorted(detector.asked) == list(range(6)) and not any(found.carried)


@pytest.mark.parametrize(
    ("script", "why"),
    [
        ({4: [face(18), face(100)]}, "a second face appears"),
        ({4: []}, "the face leaves"),
        ({4: [face(90)]}, f"the face moves: overlap below {STABLE_IOU}"),
    ],
    ids=["appears", "leaves", "moves"],
)
def test_keyframes_that_disagree_have_the_frames_between_searched(
    tmp_path: Path, script: dict[int, list[Detection]], why: str
) -> None:
    video = numbered_video(tmp_path / "v.mp4", 9)
    detector = ScriptedDetector(script)
    found = find_video_faces(video, sampling(9), detector.detect, count_faces, stride=4)
    assert sorted(detector.asked) == list(range(9)), why  # both spans touch keyframe 4
    assert not any(found.carried)
    assert boxes(found.faces)[4] == [d.box for d in script[4]]


def test_a_carried_span_keeps_each_face_with_its_own_partner(tmp_path: Path) -> None:
    video = numbered_video(tmp_path / "v.mp4", 5)
    two = {0: [face(10), face(100)], 4: [face(104), face(14)]}  # listed in another order
    detector = ScriptedDetector(two)
    found = find_video_faces(video, sampling(5), detector.detect, count_faces, stride=4)
    assert found.carried == [False, True, True, True, False]
    assert boxes(found.faces)[2] == [(12, 20, 40, 40), (102, 20, 40, 40)]


def test_a_file_that_declares_more_frames_than_decode_is_sampled_on_what_does(
    tmp_path: Path,
) -> None:
    whole = numbered_video(tmp_path / "whole.avi", 20, "MJPG")
    data = whole.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) * 11 // 20])  # about half the frames; header says 20
    detector = ScriptedDetector()
    found = find_video_faces(cut, sampling(8), detector.detect, count_faces, stride=4)
    assert found.frame_count < 20 and found.indices[-1] < found.frame_count
    assert len(found.indices) == min(8, found.frame_count)
    assert len(found.faces) == len(found.scored) == len(found.carried) == len(found.indices)
    assert found.indices[-1] == found.frame_count - 1  # resampled: its last frame is the last


@pytest.mark.slow
def test_the_registered_model_gives_todays_verdicts_and_tracks_on_real_clips(
    trained_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keyframes and carried faces against every sampled frame searched (stride 1, the path
    before keyframes): the same verdict on each demo clip and on the shared DFDC and DFD
    videos; where the face was found in every sampled frame, the same tracks. (Where the
    detector misses a face on some frames, searching every frame splits its track at the gaps,
    which carried faces fill. P(fake) moves with the carried boxes: the small model trained here
    is far more sensitive to a crop's framing than a real one.)"""
    from conftest import SHARED

    from deepfake_detector.core.config import load_params
    from deepfake_detector.core.tracking import tracking_uri
    from deepfake_detector.inference.predict import load_detector

    monkeypatch.chdir(trained_project)
    uri = tracking_uri(load_params(Path("params.yaml")))
    detector = load_detector("models:/deepfake-detector@champion", tracking_uri=uri)
    clips = sorted(Path("data/demo/videos").glob("*/*.mp4"))
    assert len(clips) >= 12
    clips += sorted((SHARED / "data" / "dfdc").glob("*.mp4"))  # none where it is absent
    clips += sorted((SHARED / "data" / "dfd" / "videos").glob("*/*.mp4"))
    same_tracks = carried_frames = 0
    for clip in clips:
        every, carried = detector.predict_video(clip, stride=1), detector.predict_video(clip)
        assert carried["verdict"] == every["verdict"], clip.name
        if all(t["p_fake"] is not None for t in every["timeline"]):
            assert [t["faces"] for t in carried["tracks"]] == [t["faces"] for t in every["tracks"]]
            same_tracks += 1
        carried_frames += sum(t["carried"] for t in carried["timeline"])
    assert same_tracks >= 12 and carried_frames > 0
