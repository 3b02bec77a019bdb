"""Load on the two servers a user meets: the Gradio app and the MLflow REST endpoint.

For each server, started as users start it (`deepfake app`, `mlflow models serve`):

* Memory: requests one after another, with the resident memory (RSS) of the server process and
  all its children taken after 40 and after 120 of them. A server that keeps something per
  request (images, sessions, TensorFlow graphs retraced per call) grows between the two; the
  test allows 10 % for allocator noise and fails beyond that.
* Concurrency: 32 users at once (each with its own `gradio_client.Client` or
  `requests.Session`), 5 pictures each. Every one of the 160 answers must be a verdict for the
  one face in the picture; the median and 95th percentile latency, wall time and throughput are
  recorded in RELIABILITY.md but not asserted on (the CPU is shared, timings are noisy).

The memory phase runs first, on the freshly started server, so that the high-water mark of the
concurrent phase does not hide a leak. Everything is bounded: fixed counts, a timeout per
request and a wall-clock deadline per phase; a phase that overruns stops and fails with what it
had done. The picture is Grace Hopper's portrait shrunk to 256 px wide, so a request is cheap
and the load, not the model, is what is measured; every user sends the same one, as users who
all click the app's example do (identical answers, hence identical output files, at once).
"""

from __future__ import annotations

import base64
import contextlib
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import psutil
import pytest
import requests
from media import one_face, save_rgb
from reliability import Recorder
from servers import running_app, running_rest

pytestmark = [pytest.mark.slow, pytest.mark.load, pytest.mark.reliability]

USERS = 32
PER_USER = 5
RSS_FIRST = 40
RSS_LAST = 120
RSS_GROWTH = 1.10
REQUEST_TIMEOUT_S = 60.0
CONNECT_DEADLINE_S = 60.0
CONCURRENT_DEADLINE_S = 200.0
SEQUENTIAL_DEADLINE_S = 300.0
IMAGE_WIDTH = 256

CONCURRENT_CASE = f"{USERS} users x {PER_USER} images"
RSS_CASE = f"RSS after {RSS_LAST} vs {RSS_FIRST} sequential requests"
APP = "app (gradio_client)"
REST = "REST (/invocations)"

Ask = Callable[[], dict[str, Any]]
"""One request; returns the result dict for the picture or raises."""
Connect = Callable[[], tuple[Ask, Callable[[], None]]]
"""Open one user's connection; returns its `Ask` and the function that closes it."""


@dataclass
class Load:
    """What one phase did: latency of each good answer, and every error."""

    planned: int
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, latency: float, error: str | None) -> None:
        """One request: its latency when it gave a verdict, else why not."""
        with self.lock:
            if error is None:
                self.latencies.append(latency)
            else:
                self.errors.append(error)

    @property
    def ok(self) -> bool:
        """Every planned request answered with a verdict, nothing else."""
        return len(self.latencies) == self.planned and not self.errors

    def summary(self) -> str:
        """'160/160 answered, median 0.41 s, p95 0.92 s, 7.8 req/s (41 s)' and the first error."""
        done = len(self.latencies)
        text = f"{done}/{self.planned} answered"
        if done:
            rate = done / self.wall_s if self.wall_s else float("nan")
            text += (
                f", median {statistics.median(self.latencies):.2f} s, "
                f"p95 {percentile(self.latencies, 95):.2f} s, {rate:.1f} req/s "
                f"({self.wall_s:.0f} s)"
            )
        if self.errors:
            text += f"; {len(self.errors)} errors, first: {self.errors[0][:150]}"
        return text


def percentile(values: list[float], pct: int) -> float:
    """The `pct`th percentile (linear between the closest ranks)."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


def verdict_error(result: Any) -> str | None:
    """None for a real verdict on one face, else what is wrong with the answer."""
    if not isinstance(result, dict):
        return f"not a result: {str(result)[:120]}"
    if result.get("verdict") not in ("real", "fake"):
        return f"verdict {result.get('verdict')!r}: {result.get('error', '')}"
    if len(result.get("faces") or []) != 1:
        return f"{len(result.get('faces') or [])} faces instead of 1"
    return None


def timed(ask: Ask, load: Load) -> None:
    """Send one request and record its latency or its error."""
    start = time.monotonic()
    try:
        error = verdict_error(ask())
    except Exception as exc:  # every failure of a request is a finding, not a crash
        error = f"{type(exc).__name__}: {exc}"
    load.record(time.monotonic() - start, error)


def tree_rss(pid: int) -> int:
    """Resident memory in bytes of a process and all its children."""
    root = psutil.Process(pid)
    total = 0
    for proc in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += proc.memory_info().rss
    return total


def mib(size: int) -> str:
    """Bytes as whole MiB."""
    return f"{size / 2**20:.0f} MiB"


def concurrent_users(connect: Connect, users: int, per_user: int, deadline_s: float) -> Load:
    """`users` threads, each with its own connection, send `per_user` requests at once.

    Connections open before the clock starts; a user stops early once `deadline_s` has passed
    (the requests it did not send are missing from the count and fail the phase).
    """
    load = Load(planned=users * per_user)
    start_line = threading.Barrier(users + 1)
    deadline = [float("inf")]

    def user() -> None:
        try:
            ask, close = connect()
        except Exception as exc:
            load.record(0.0, f"connect: {type(exc).__name__}: {exc}")
            start_line.abort()
            return
        try:
            start_line.wait(timeout=CONNECT_DEADLINE_S)
            for _ in range(per_user):
                if time.monotonic() > deadline[0]:
                    load.record(0.0, f"phase deadline of {deadline_s:.0f} s passed")
                    break
                timed(ask, load)
        except threading.BrokenBarrierError:
            load.record(0.0, "another user could not connect")
        finally:
            close()

    threads = [threading.Thread(target=user, daemon=True) for _ in range(users)]
    for thread in threads:
        thread.start()
    try:
        start_line.wait(timeout=CONNECT_DEADLINE_S)
    except threading.BrokenBarrierError:
        load.record(0.0, f"not all {users} users connected in {CONNECT_DEADLINE_S:.0f} s")
    started = time.monotonic()
    deadline[0] = started + deadline_s
    for thread in threads:
        thread.join(timeout=max(0.0, deadline[0] + REQUEST_TIMEOUT_S + 10 - time.monotonic()))
    load.wall_s = time.monotonic() - started
    if any(thread.is_alive() for thread in threads):
        load.record(0.0, "users still waiting after the deadline and a request timeout")
    return load


def sequential(ask: Ask, pid: int, deadline_s: float) -> tuple[Load, dict[int, int]]:
    """`RSS_LAST` requests one after another; the server's RSS after `RSS_FIRST` and after all."""
    load = Load(planned=RSS_LAST)
    rss: dict[int, int] = {}
    started = time.monotonic()
    for sent in range(1, RSS_LAST + 1):
        if time.monotonic() - started > deadline_s:
            load.record(0.0, f"phase deadline of {deadline_s:.0f} s passed after {sent - 1}")
            break
        timed(ask, load)
        if sent in (RSS_FIRST, RSS_LAST):
            try:
                rss[sent] = tree_rss(pid)
            except psutil.NoSuchProcess:
                load.record(0.0, f"the server exited after {sent} requests")
                break
    load.wall_s = time.monotonic() - started
    return load, rss


def small_portrait(folder: Path) -> Path:
    """Grace Hopper's portrait, 256 px wide, as JPEG: one face, cheap to analyse."""
    rgb = one_face()
    height = round(rgb.shape[0] * IMAGE_WIDTH / rgb.shape[1])
    small = cv2.resize(rgb, (IMAGE_WIDTH, height), interpolation=cv2.INTER_AREA)
    return save_rgb(folder / "hopper.jpg", small)


def app_connect(url: str, image: Path, downloads: Path) -> Connect:
    """A user of the app: its own `gradio_client.Client`, asking `/predict_image`."""
    from gradio_client import Client, handle_file

    def connect() -> tuple[Ask, Callable[[], None]]:
        client = Client(
            url,
            verbose=False,
            download_files=str(downloads),
            httpx_kwargs={"timeout": REQUEST_TIMEOUT_S},
        )

        def ask() -> dict[str, Any]:
            job = client.submit(handle_file(str(image)), api_name="/predict_image")
            return job.result(timeout=REQUEST_TIMEOUT_S)[3]

        return ask, client.close

    return connect


def rest_connect(url: str, image: Path) -> Connect:
    """A user of the REST endpoint: its own `requests.Session`, posting to `/invocations`."""
    encoded = base64.b64encode(image.read_bytes()).decode()
    body = {"dataframe_split": {"columns": ["image"], "data": [[encoded]]}}

    def connect() -> tuple[Ask, Callable[[], None]]:
        session = requests.Session()

        def ask() -> dict[str, Any]:
            answer = session.post(f"{url}/invocations", json=body, timeout=REQUEST_TIMEOUT_S)
            if answer.status_code != 200:
                raise AssertionError(f"HTTP {answer.status_code}: {answer.text[:200]}")
            return answer.json()["predictions"][0]

        return ask, session.close

    return connect


def check_server(connect: Connect, pid: int, entry: str, reliability: Recorder) -> None:
    """Both phases against one running server; record a row for each, then assert both."""
    ask, close = connect()
    try:
        memory, rss = sequential(ask, pid, SEQUENTIAL_DEADLINE_S)
    finally:
        close()
    if len(rss) == 2:
        ratio = rss[RSS_LAST] / rss[RSS_FIRST]
        grew = f"{mib(rss[RSS_FIRST])} -> {mib(rss[RSS_LAST])} ({ratio:.2f}x)"
        memory_ok = memory.ok and ratio <= RSS_GROWTH
    else:
        grew, memory_ok = "not reached", False
    memory_seen = f"{grew}; {memory.summary()}"
    memory_held = reliability.add(
        section="load",
        case=RSS_CASE,
        entry=entry,
        expected=f"no errors, RSS grows at most {RSS_GROWTH - 1:.0%}",
        observed=memory_seen,
        ok=memory_ok,
    )

    users = concurrent_users(connect, USERS, PER_USER, CONCURRENT_DEADLINE_S)
    users_held = reliability.add(
        section="load",
        case=CONCURRENT_CASE,
        entry=entry,
        expected="no errors",
        observed=users.summary(),
        ok=users.ok,
    )
    assert users_held, users.summary()
    assert memory_held, memory_seen


def test_rest_under_load(trained_project: Path, tmp_path: Path, reliability: Recorder) -> None:
    """`mlflow models serve` of the champion: memory over 200 requests, then 32 users."""
    image = small_portrait(tmp_path)
    with running_rest(trained_project, tmp_path / "serve.log") as (url, server):
        check_server(rest_connect(url, image), server.pid, REST, reliability)


def test_app_under_load(trained_project: Path, tmp_path: Path, reliability: Recorder) -> None:
    """`deepfake app` with its default concurrency and queue: memory, then 32 users."""
    image = small_portrait(tmp_path)
    downloads = tmp_path / "downloads"
    with running_app(trained_project, tmp_path / "app.log") as (url, app):
        check_server(app_connect(url, image, downloads), app.pid, APP, reliability)
