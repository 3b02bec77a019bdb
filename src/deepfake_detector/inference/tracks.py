"""Linking faces across sampled frames into tracks (box overlap), and the video rule.

A track is one person followed through the video. Each face joins the open track whose last box
is most similar: overlapping it (intersection over union at least `min_iou`) or, since sampled
frames can be far apart, with its centre within `max_shift` box sizes and a size within a factor
of two. A face with no such track starts a new one; a track closes after `max_gap` sampled frames
without a face. A track's score is the mean P(fake) of its faces. The video is fake when any
track is fake: its P(fake) is the highest track score.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

Box = tuple[int, int, int, int]  # x, y, w, h


def match_score(a: Box, b: Box, min_iou: float, max_shift: float) -> float | None:
    """How well box `a` continues box `b`: above 1 for overlap, (0, 1] for a near, same-size box."""
    overlap = iou(a, b)
    if overlap >= min_iou:
        return 1.0 + overlap
    size_a, size_b = max(a[2], a[3]), max(b[2], b[3])
    if not 0.5 <= size_a / max(size_b, 1) <= 2.0:
        return None
    dx = (a[0] + a[2] / 2) - (b[0] + b[2] / 2)
    dy = (a[1] + a[3] / 2) - (b[1] + b[3] / 2)
    shift = (dx * dx + dy * dy) ** 0.5 / max(size_a, size_b, 1)
    return 1.0 - shift / max_shift if shift < max_shift else None


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    ax1, ay1, bx1, by1 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw = max(0, min(ax1, bx1) - max(a[0], b[0]))
    ih = max(0, min(ay1, by1) - max(a[1], b[1]))
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


@dataclass
class Track:
    """Faces of one person across frames."""

    track: int
    frames: list[int] = field(default_factory=list)
    boxes: list[Box] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)

    @property
    def p_fake(self) -> float:
        """Mean P(fake) of the track's faces."""
        return float(np.mean(self.scores))


def link_tracks(
    faces: Sequence[tuple[int, Box, float]],
    min_iou: float = 0.3,
    max_gap: int = 3,
    max_shift: float = 1.0,
) -> tuple[list[Track], list[int]]:
    """Group (sample_position, box, p_fake) faces into tracks.

    `sample_position` counts sampled frames (0, 1, 2, ...), not video frame numbers. Returns
    the tracks and, for each input face, the id of its track.
    """
    tracks: list[Track] = []
    last_seen: dict[int, int] = {}
    assignment = [-1] * len(faces)
    order = sorted(range(len(faces)), key=lambda i: faces[i][0])
    position = 0
    while position < len(order):
        frame = faces[order[position]][0]
        same_frame = []
        while position < len(order) and faces[order[position]][0] == frame:
            same_frame.append(order[position])
            position += 1
        open_tracks = [t for t in tracks if frame - last_seen[t.track] <= max_gap]
        scored = (
            (match_score(faces[i][1], t.boxes[-1], min_iou, max_shift), i, t.track)
            for i in same_frame
            for t in open_tracks
        )
        pairs = sorted(((m, i, t) for m, i, t in scored if m is not None), reverse=True)
        taken_faces: set[int] = set()
        taken_tracks: set[int] = set()
        for _, i, track_id in pairs:
            if i in taken_faces or track_id in taken_tracks:
                continue
            taken_faces.add(i)
            taken_tracks.add(track_id)
            assignment[i] = track_id
        for i in same_frame:
            if assignment[i] == -1:
                tracks.append(Track(len(tracks)))
                assignment[i] = tracks[-1].track
            track = tracks[assignment[i]]
            track.frames.append(frame)
            track.boxes.append(faces[i][1])
            track.scores.append(faces[i][2])
            last_seen[track.track] = frame
    return tracks, assignment


def video_score(tracks: Sequence[Track]) -> float | None:
    """The video's P(fake): its most suspicious track, or None with no face at all."""
    return max((t.p_fake for t in tracks), default=None)
