"""Tracks: faces linked across sampled frames, and the video rule (fake if any person is)."""

from __future__ import annotations

import pytest

from deepfake_detector.inference.tracks import iou, link_tracks, video_score


def test_iou() -> None:
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (20, 20, 5, 5)) == 0.0
    assert iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)


def test_two_people_stay_two_tracks_and_the_fake_one_decides() -> None:
    left = [(i, (100 + 5 * i, 100, 80, 80), 0.1) for i in range(5)]
    right = [(i, (600 - 5 * i, 120, 90, 90), 0.9) for i in range(5)]
    tracks, assignment = link_tracks(left + right)
    assert len(tracks) == 2
    assert assignment[:5] == [assignment[0]] * 5 and assignment[5:] == [assignment[5]] * 5
    assert video_score(tracks) == pytest.approx(0.9)
    assert sorted(t.p_fake for t in tracks) == pytest.approx([0.1, 0.9])


def test_far_apart_samples_of_a_moving_face_still_link() -> None:
    # Boxes that no longer overlap enough, but sit within a box size of each other.
    faces = [(0, (100, 100, 100, 100), 0.2), (1, (170, 110, 100, 100), 0.4)]
    tracks, _ = link_tracks(faces)
    assert len(tracks) == 1 and tracks[0].p_fake == pytest.approx(0.3)


def test_gaps_close_tracks_and_no_face_gives_no_score() -> None:
    faces = [(0, (10, 10, 50, 50), 0.5), (9, (10, 10, 50, 50), 0.5)]
    tracks, _ = link_tracks(faces, max_gap=3)
    assert len(tracks) == 2
    assert video_score([]) is None
