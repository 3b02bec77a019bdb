"""How a trained model is run, stored beside it as `inference.json`: input size, face finding
and cutting, frame sampling, calibration and operating point, abstention limits, what the model
learnt from and how it scored, and the measures of its held-out faces that drift is measured
against (`drift`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepfake_detector.core.config import FacesParams, FramesParams
from deepfake_detector.learning.abstention import Abstention
from deepfake_detector.learning.calibration import Calibration


@dataclass(frozen=True)
class InferenceConfig:
    """Everything besides the weights that a verdict depends on; stored with the model."""

    image_size: int
    faces: FacesParams
    frames: FramesParams
    calibration: Calibration
    test_metrics: dict[str, Any] = field(default_factory=dict)
    tta_flip: bool = False  # score each face and its mirror image, average the two
    # What the model learnt from (face_sets.training_summary) and the study score of its recipe.
    training: dict[str, Any] = field(default_factory=dict)
    study: dict[str, Any] = field(default_factory=dict)
    # When a face or a video is `uncertain`; the default never abstains (older models).
    abstention: Abstention = field(default_factory=Abstention)
    # Samples of the held-out faces' measures (`drift.reference_of`): what drift is measured
    # against; empty for models stored before it existed.
    drift_reference: dict[str, list[float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view."""
        return {
            "image_size": self.image_size,
            "faces": self.faces.model_dump(mode="json"),
            "frames": self.frames.model_dump(mode="json"),
            "calibration": self.calibration.to_dict(),
            "test_metrics": self.test_metrics,
            "tta_flip": self.tta_flip,
            "training": self.training,
            "study": self.study,
            "abstention": self.abstention.to_dict(),
            "drift_reference": self.drift_reference,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InferenceConfig:
        """Parse `to_dict` output."""
        return cls(
            image_size=int(data["image_size"]),
            faces=FacesParams(**data["faces"]),
            frames=FramesParams(**data["frames"]),
            calibration=Calibration(**data["calibration"]),
            test_metrics=data.get("test_metrics", {}),
            tta_flip=bool(data.get("tta_flip", False)),
            training=data.get("training", {}),
            study=data.get("study", {}),
            abstention=Abstention(**data.get("abstention", {})),
            drift_reference=data.get("drift_reference", {}),
        )

    @classmethod
    def read(cls, path: Path) -> InferenceConfig:
        """Load from a JSON file."""
        return cls.from_dict(json.loads(path.read_text()))
