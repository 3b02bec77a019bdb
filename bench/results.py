"""What a benchmark returns: rows of baseline, ours, their ratio, the target, and if it is met."""

from __future__ import annotations

from dataclasses import dataclass, field


class Skip(Exception):
    """A benchmark cannot run on this machine (data absent, ...); the message says why."""


@dataclass(frozen=True)
class Row:
    """One measured comparison; values are pre-formatted with their units."""

    benchmark: str
    measure: str
    baseline: str
    ours: str
    ratio: str = ""
    target: str = ""
    met: bool | None = None  # None: no target, reported only

    @property
    def verdict(self) -> str:
        """`yes`, `no`, or empty when the row has no target."""
        return "" if self.met is None else ("yes" if self.met else "no")


@dataclass
class Outcome:
    """What one benchmark produced: its rows, or why it was skipped or failed, and its notes."""

    name: str
    title: str
    method: str = ""
    limits: str = ""
    explain_always: bool = False
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    skipped: str | None = None
    failed: str | None = None
    seconds: float = 0.0


def fmt(value: float, unit: str = "", digits: int = 3) -> str:
    """A number with about `digits` significant digits, then its unit."""
    if value == 0 or not abs(value) < float("inf"):
        text = f"{value:g}"
    else:
        text = f"{value:.{digits}g}" if abs(value) < 10**digits else f"{value:,.0f}"
    return f"{text} {unit}".strip()


def times(value: float) -> str:
    """A ratio as `2.35x`."""
    return f"{value:.2f}x"
