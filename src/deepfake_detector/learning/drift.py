"""Is what a deployed detector sees still what it was validated on?

A model keeps, in its `inference.json`, a sample of four measures of the held-out faces it was
evaluated on (`reference_of`): the calibrated P(fake), the face's size in pixels (the shorter
side of the detector's box), the detector's confidence and the crop's sharpness (variance of
the Laplacian at the crop size, `abstention.sharpness`). Faces answered later (a service's
rolling window, `DriftWindow`, or the JSONL of `deepfake predict`) are compared with that
sample measure by measure with a two-sample Kolmogorov-Smirnov test (`compare`, `ks_test`). A
measure drifts when the test rejects "same distribution" at `alpha` and the distributions
differ by at least `min_effect` (the KS statistic: the largest gap between the two cumulative
distributions), so that a large window does not flag a shift too small to matter.

New forgery tools, other cameras and other compression show first as shifts in these measures;
a drifting P(fake) alone may also mean that more fakes are being sent. Either way the model's
validated numbers no longer describe what it meets, and a retrain on the new inputs is due.
Everything here is NumPy: the verdict path needs no training stack (nor SciPy, whose size
the serving install is spared; `ks_test` stands in for its `ks_2samp`).
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

MEASURES = ("p_fake", "face_px", "confidence", "sharpness")
REFERENCE_SIZE = 500  # values kept per measure (a seeded sample of the held-out faces)
ALPHA = 0.01  # the KS test's level
MIN_EFFECT = 0.15  # the least KS statistic that counts as a shift
MIN_FACES = 30  # fewer observed faces than this: no comparison


@dataclass(frozen=True)
class Shift:
    """One measure compared with the model's reference."""

    measure: str
    faces: int  # observed faces with this measure
    reference: int  # reference values
    statistic: float | None  # KS statistic (None: too few faces to compare)
    p_value: float | None
    drifted: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view."""
        return asdict(self)


def _finite(values: Iterable[Any]) -> np.ndarray:
    array = np.asarray([v for v in values if v is not None], dtype=float)
    return array[np.isfinite(array)]


def reference_of(
    faces: Mapping[str, Sequence[Any]], size: int = REFERENCE_SIZE, seed: int = 0
) -> dict[str, list[float]]:
    """A seeded sample of at most `size` values of each measure, sorted, from columns
    `p_fake`, `w` and `h` (the box), `confidence` and `sharpness` of held-out faces; a measure
    with no finite value (imported crops have no detector confidence) is left out."""
    columns: dict[str, np.ndarray] = {}
    if "w" in faces and "h" in faces:
        w, h = (np.asarray(faces[k], dtype=float) for k in ("w", "h"))
        columns["face_px"] = np.minimum(w, h)
    for measure in ("p_fake", "confidence", "sharpness"):
        if measure in faces:
            columns[measure] = np.asarray(faces[measure], dtype=float)
    rng = np.random.default_rng(seed)
    reference = {}
    for measure in MEASURES:
        values = _finite(columns.get(measure, []))
        if len(values) == 0:
            continue
        if len(values) > size:
            values = rng.choice(values, size, replace=False)
        reference[measure] = [float(f"{v:.6g}") for v in np.sort(values)]
    return reference


def face_measures(face: Mapping[str, Any]) -> dict[str, float]:
    """The measures of one face of an answer (`predict`'s `faces` entries)."""
    measures = {}
    box = face.get("box")
    if isinstance(box, Sequence) and len(box) == 4:
        measures["face_px"] = float(min(box[2], box[3]))
    for measure in ("p_fake", "confidence", "sharpness"):
        value = face.get(measure)
        if isinstance(value, int | float) and math.isfinite(value):
            measures[measure] = float(value)
    return measures


def answer_faces(answers: Iterable[Mapping[str, Any]]) -> list[dict[str, float]]:
    """Every face's measures in a run of answers (images and videos alike)."""
    return [face_measures(f) for a in answers for f in a.get("faces") or []]


def ks_test(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov test, two-sided: the statistic (the largest gap between
    the two empirical distribution functions) and its p-value from the Kolmogorov distribution
    with Stephens' small-sample correction (Numerical Recipes' `kstwo`): SciPy's `ks_2samp`
    statistic exactly, its p-value to within a few percent of itself (tests/test_drift.py)."""
    a, b = np.sort(np.asarray(a, float)), np.sort(np.asarray(b, float))
    both = np.concatenate([a, b])
    gaps = np.searchsorted(a, both, side="right") / len(a)
    gaps -= np.searchsorted(b, both, side="right") / len(b)
    statistic = float(np.max(np.abs(gaps)))
    root = math.sqrt(len(a) * len(b) / (len(a) + len(b)))
    x = (root + 0.12 + 0.11 / root) * statistic
    k = np.arange(1, 101)
    tail = 2.0 * np.sum((-1.0) ** (k - 1) * np.exp(-2.0 * (k * x) ** 2))
    p_value = 1.0 if x < 0.2 else float(np.clip(tail, 0.0, 1.0))
    return statistic, p_value


def compare(
    reference: Mapping[str, Sequence[float]],
    faces: Sequence[Mapping[str, float]],
    alpha: float = ALPHA,
    min_effect: float = MIN_EFFECT,
    min_faces: int = MIN_FACES,
) -> list[Shift]:
    """Each reference measure against the observed faces' values (two-sample KS test)."""
    shifts = []
    for measure in MEASURES:
        if measure not in reference:
            continue
        ref = np.asarray(reference[measure], dtype=float)
        seen = _finite(f.get(measure) for f in faces)
        if len(seen) < min_faces or len(ref) == 0:
            shifts.append(Shift(measure, len(seen), len(ref), None, None, False))
            continue
        statistic, p_value = ks_test(seen, ref)
        drifted = p_value < alpha and statistic >= min_effect
        shifts.append(Shift(measure, len(seen), len(ref), statistic, p_value, drifted))
    return shifts


def retrain_due(shifts: Sequence[Shift]) -> bool:
    """Whether any measure drifted."""
    return any(s.drifted for s in shifts)


class DriftWindow:
    """The measures of the last `size` faces a service answered, compared on demand."""

    def __init__(self, reference: Mapping[str, Sequence[float]], size: int = 500) -> None:
        self.reference = reference
        self._faces: deque[dict[str, float]] = deque(maxlen=size)
        self._lock = threading.Lock()

    def add(self, answers: Iterable[Mapping[str, Any]]) -> None:
        """Take in a request's answers."""
        faces = answer_faces(answers)
        with self._lock:
            self._faces.extend(faces)

    def __len__(self) -> int:
        return len(self._faces)

    def shifts(self) -> list[Shift]:
        """The window against the reference."""
        with self._lock:
            faces = list(self._faces)
        return compare(self.reference, faces)
