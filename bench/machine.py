"""The machine a run was measured on, from /proc: CPU model, cores, memory, load."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path


@dataclass(frozen=True)
class Machine:
    """A short description of the machine and the moment of the run."""

    cpu: str
    cores: int
    memory_gib: float
    load: str
    system: str
    date: str

    def describe(self) -> str:
        """One line for the report."""
        return (
            f"{self.cpu}, {self.cores} cores, {self.memory_gib:.1f} GiB RAM, {self.system}; "
            f"load average at start {self.load}"
        )


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def cpu_model() -> str:
    """`model name` from /proc/cpuinfo, or what `platform` knows."""
    for line in _read("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def memory_gib() -> float:
    """MemTotal from /proc/meminfo, in GiB."""
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 2**20
    return 0.0


def this_machine() -> Machine:
    """The machine now."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return Machine(
        cpu=cpu_model(),
        cores=cores or 1,
        memory_gib=memory_gib(),
        load=" ".join(_read("/proc/loadavg").split()[:3]) or "unknown",
        system=f"{platform.system()} {platform.release()}, Python {platform.python_version()}",
        date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )
