"""Which model gave an answer: the registry's name and version, or the local file."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelRef:
    """Which model answered: registry name and version when it came from the registry."""

    source: str
    name: str | None = None
    version: str | None = None
    run_id: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        """JSON-ready view."""
        return {
            "source": self.source,
            "name": self.name,
            "version": self.version,
            "run_id": self.run_id,
        }

    def label(self) -> str:
        """Short human label, e.g. `deepfake-detector v3`."""
        return f"{self.name} v{self.version}" if self.version else self.source
