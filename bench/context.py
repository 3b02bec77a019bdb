"""What every benchmark gets: the repository, the shared real data, a scratch folder, the mode."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from bench.results import Skip

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SHARED_WEIGHTS = REPO.parent / "shared" / "weights" / "mobilenet_v2_1.0_224_no_top.weights.h5"


@dataclass(frozen=True)
class Context:
    """The run's settings: `quick` trades repeats and inputs for speed during development."""

    repo: Path
    scratch: Path
    quick: bool = False

    @property
    def shared_data(self) -> Path:
        """`../shared/data` next to the repository: the real videos, frames and face crops."""
        return self.repo.parent / "shared" / "data"

    def data(self, *parts: str) -> Path:
        """A path under the shared data, or Skip with the reason when it is absent."""
        path = self.shared_data.joinpath(*parts)
        if not path.exists():
            raise Skip(f"{path} is absent: this benchmark needs the shared real data")
        return path

    def files(self, pattern: str, *parts: str) -> list[Path]:
        """Files matching `pattern` under a shared data folder, sorted; Skip when none."""
        found = sorted(self.data(*parts).glob(pattern))
        if not found:
            raise Skip(f"no {pattern} under {self.shared_data.joinpath(*parts)}")
        return found

    def pick(self, full: T, quick: T) -> T:
        """`quick` in quick mode, else `full`."""
        return quick if self.quick else full

    def weights(self) -> Path | None:
        """The local ImageNet weights of MobileNetV2, when present."""
        return SHARED_WEIGHTS if SHARED_WEIGHTS.is_file() else None
