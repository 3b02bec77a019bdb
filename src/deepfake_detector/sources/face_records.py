"""What `crop_faces` records of one video, in its per-video stamp: each face cropped with its
box, confidence and landmarks, and the frames without a face.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class FaceRow:
    """One cropped face and where it came from."""

    frame_index: int
    face_index: int
    file: str
    box: tuple[int, int, int, int]
    confidence: float
    landmarks: dict[str, tuple[float, float]]


@dataclass(frozen=True)
class VideoFaces:
    """The faces of one video, frames without a face, and the key of the work that made them."""

    key: str
    video_id: str
    label: str
    group: str
    split: str | None
    frames: int
    frames_without_face: int
    faces: tuple[FaceRow, ...]

    @classmethod
    def from_json(cls, text: str) -> VideoFaces:
        """Parse a stamp written by `to_json`."""
        data = json.loads(text)
        data["faces"] = tuple(
            FaceRow(
                **{
                    **f,
                    "box": tuple(f["box"]),
                    "landmarks": {k: tuple(v) for k, v in f["landmarks"].items()},
                }
            )
            for f in data["faces"]
        )
        return cls(**data)

    def to_json(self) -> str:
        """Serialise for the per-video stamp."""
        return json.dumps(asdict(self), indent=1)
