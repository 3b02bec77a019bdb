"""Verdicts on more than one process: local worker processes, or a Dask cluster.

Each worker loads the model once (`DetectorSpec.load`, cached per worker) and answers the
inputs it is sent; the answers come back in the order the inputs were listed, through the same
`Detector.predict_path` as a single process, so the verdicts are the same. At most a few inputs
per worker are in flight at once: the listing stays a stream, and memory stays flat however many
files a batch holds. The inputs' paths must be readable from every worker (a shared disk).
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from deepfake_detector.core.errors import UserError

if TYPE_CHECKING:
    from deepfake_detector.inference.predict import Detector, Runtime

IN_FLIGHT_PER_WORKER = 2
# `deepfake predict` without --workers: worker processes for a batch of at least AUTO_MIN_INPUTS
# inputs on the light runtime (below that, starting them costs more than they save: 16 1080p
# frames take as long on one process as on two), one per core, at most AUTO_MAX_WORKERS.
AUTO_MIN_INPUTS, AUTO_MAX_WORKERS = 17, 4


def auto_workers(inputs: int, runtime: str) -> int:
    """The processes a batch of `inputs` gets when the user does not say: one unless the batch
    is large and the model runs on LiteRT (a TensorFlow process holds about 800 MiB)."""
    if runtime != "litert" or inputs < AUTO_MIN_INPUTS:
        return 1
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, AUTO_MAX_WORKERS))


@dataclass(frozen=True)
class DetectorSpec:
    """What a worker needs to load the same detector as the command: the model, its settings,
    the runtime, the tracking store and the operating point."""

    model: str
    config: str | None = None
    runtime: str = "auto"
    tracking_uri: str | None = None
    fpr: float | None = None

    def load(self) -> Detector:
        """The detector, loaded once per process (later calls return the same one)."""
        found = _LOADED.get(self)
        if found is None:
            from deepfake_detector.inference.predict import load_detector

            config = Path(self.config) if self.config else None
            runtime = cast("Runtime", self.runtime)
            found = load_detector(self.model, config, runtime, self.tracking_uri)
            if self.fpr is not None:
                found.use_fpr(self.fpr)
            _LOADED[self] = found
        return found


_LOADED: dict[DetectorSpec, Detector] = {}  # per process: each worker's own detector


def answer(spec: DetectorSpec, path: str, frames: int | None) -> dict[str, Any]:
    """One input's answer on this worker (the model loaded on its first input)."""
    return spec.load().predict_path(Path(path), frames)


def _in_order(submit: Any, paths: Iterable[Path], window: int) -> Iterator[tuple[Path, Any]]:
    """Submit each path (`submit(path) -> future`), at most `window` ahead of the one awaited;
    yield (path, future) in the order the paths came."""
    pending: deque[tuple[Path, Any]] = deque()
    for path in paths:
        pending.append((path, submit(path)))
        if len(pending) >= window:
            yield pending.popleft()
    while pending:
        yield pending.popleft()


def on_processes(
    spec: DetectorSpec, paths: Iterable[Path], frames: int | None, workers: int
) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Answers from `workers` local processes (spawned: TensorFlow does not survive a fork)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        window = workers * IN_FLIGHT_PER_WORKER
        for path, future in _in_order(
            lambda p: pool.submit(answer, spec, str(p), frames), paths, window
        ):
            yield path, future.result()


def on_dask(
    spec: DetectorSpec, paths: Iterable[Path], frames: int | None, address: str
) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Answers from a Dask cluster: `address` of its scheduler (tcp://host:8786), or `local`
    for a cluster of this machine's cores started for the command (on 127.0.0.1)."""
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise UserError(
            "--dask needs Dask's distributed, which this install lacks: "
            "pip install 'deepfake-detector[cluster]' (make setup-dev)"
        ) from exc
    cluster = None
    try:
        if address == "local":
            cluster = LocalCluster(host="127.0.0.1", threads_per_worker=1, dashboard_address=None)
            client = Client(cluster)
        else:
            client = Client(address, timeout="10s")
    except OSError as exc:
        raise UserError(f"--dask {address}: no Dask scheduler answers there ({exc})") from exc
    try:
        workers = max(len(client.scheduler_info().get("workers", {})), 1)
        window = workers * IN_FLIGHT_PER_WORKER
        for path, future in _in_order(
            lambda p: client.submit(answer, spec, str(p), frames, pure=False), paths, window
        ):
            yield path, future.result()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
