"""Timing helpers: a clock, bounded repeats, and robust summaries of noisy samples."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np


@contextmanager
def stopwatch() -> Iterator[list[float]]:
    """`with stopwatch() as t: ...` then `t[0]` holds the elapsed seconds."""
    box: list[float] = []
    start = time.perf_counter()
    try:
        yield box
    finally:
        box.append(time.perf_counter() - start)


def repeat(fn: Callable[[], object], times: int, budget_s: float) -> list[float]:
    """Time `fn` up to `times` runs, stopping early once `budget_s` seconds are spent (>= 1 run)."""
    samples: list[float] = []
    deadline = time.perf_counter() + budget_s
    for _ in range(max(times, 1)):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
        if time.perf_counter() > deadline:
            break
    return samples


def median(samples: list[float]) -> float:
    """The median of the samples."""
    return float(np.median(samples))


def percentile(samples: list[float], q: float) -> float:
    """The `q`-th percentile (0..100) of the samples."""
    return float(np.percentile(samples, q))
