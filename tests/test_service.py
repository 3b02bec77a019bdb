"""`deepfake rest` as a service on a network: limits and back-pressure, the access token, the
metrics, the access log. The API runs under uvicorn on 127.0.0.1 (a thread of this process, so
its memory is this process's); every flood is bounded in count and time."""

from __future__ import annotations

import base64
import http.client
import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pytest
import requests
from conftest import REPO, run_env
from media import one_face, save_rgb
from processes import free_port
from reliability import Recorder
from tiny_model import tiny_detector

from deepfake_detector.core.serve_config import ServeParams
from deepfake_detector.inference.predict import Detector
from deepfake_detector.inference.rest import build_api

MB = 2**20


@pytest.fixture(scope="module")
def detector() -> Detector:
    return tiny_detector()


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = save_rgb(tmp_path_factory.mktemp("photo") / "one.jpg", one_face())
    return base64.b64encode(path.read_bytes()).decode()


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """`app` under uvicorn on a free port of 127.0.0.1; its base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def ask(url: str, images: list[str], token: str | None = None) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = {"inputs": {"image": images}}
    return requests.post(f"{url}/invocations", json=body, headers=headers, timeout=60)


def rss() -> int:
    return psutil.Process().memory_info().rss


def test_a_200_mb_body_is_refused_with_413_and_memory_stays_flat(
    detector: Detector, reliability: Recorder
) -> None:
    limits = ServeParams(max_request_mb=4)
    with serving(build_api(detector, limits)) as url:
        port = int(url.rsplit(":", 1)[1])
        before = rss()
        # Declared: refused from the header alone, before a byte of the body is sent.
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.putrequest("POST", "/invocations")
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", str(200 * MB))
        conn.endheaders()
        answer = conn.getresponse()
        declared = answer.status, "serve.max_request_mb" in answer.read().decode()
        conn.close()

        # Streamed without a length (chunked): refused once 4 MB have come in.
        def body() -> Iterator[bytes]:
            yield b'{"inputs": {"image": ["'
            chunk = b"A" * MB
            for _ in range(200):
                yield chunk

        try:
            streamed = requests.post(f"{url}/invocations", data=body(), timeout=60).status_code
        except requests.ConnectionError:  # the server may close before the client has sent it
            streamed = "connection closed by the server"  # all: refused all the same
        grew = rss() - before
    held = reliability.add(
        section="security",
        case="a 200 MB request body (declared, then streamed without a length)",
        entry="REST (deepfake rest)",
        expected="413 before the body is parsed; server memory up by less than 50 MB",
        observed=f"declared: {declared[0]} (limit named: {declared[1]}); streamed: {streamed}; "
        f"memory up {grew / MB:.1f} MB",
        ok=declared == (413, True)
        and streamed in (413, "connection closed by the server")
        and grew < 50 * MB,
    )
    assert held, (declared, streamed, grew)


def test_too_many_images_name_the_limit(detector: Detector, photo: str) -> None:
    with serving(build_api(detector, ServeParams(max_images=2))) as url:
        refused = ask(url, [photo] * 3)
        assert refused.status_code == 413 and "at most 2 (serve.max_images)" in refused.text
        assert ask(url, [photo] * 2).status_code == 200


def test_a_flood_beyond_the_queue_is_answered_503_and_no_accepted_request_is_lost(
    detector: Detector, photo: str, monkeypatch: pytest.MonkeyPatch, reliability: Recorder
) -> None:
    slow = Detector(detector.model, detector.config, detector.ref)
    answer = slow.predict_image

    def slowly(rgb: np.ndarray) -> dict[str, Any]:
        time.sleep(0.5)
        return answer(rgb)

    monkeypatch.setattr(slow, "predict_image", slowly)
    api = build_api(slow, ServeParams(max_in_flight=1, max_queued=2))
    with serving(api) as url, ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(lambda _: ask(url, [photo]), range(12)))
    codes = [a.status_code for a in answers]
    retry = all(a.headers.get("Retry-After", "").isdigit() for a in answers if a.status_code == 503)
    verdicts = [a.json()["predictions"][0]["verdict"] for a in answers if a.status_code == 200]
    held = reliability.add(
        section="load",
        case="12 requests at once; 1 scored at a time, 2 waiting (max_in_flight 1, max_queued 2)",
        entry="REST (deepfake rest)",
        expected="503 with Retry-After beyond the queue; every accepted request answered",
        observed=f"{codes.count(200)} answered with a verdict, {codes.count(503)} refused with 503 "
        f"(Retry-After on each: {retry}); other statuses: "
        f"{sorted(c for c in codes if c not in (200, 503)) or 'none'}",
        ok=set(codes) <= {200, 503}
        and codes.count(200) >= 3
        and 503 in codes
        and retry
        and all(v in ("real", "fake", "uncertain") for v in verdicts),
    )
    assert held, codes


def test_a_request_over_its_time_is_answered_504(
    detector: Detector, photo: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow = Detector(detector.model, detector.config, detector.ref)
    monkeypatch.setattr(slow, "predict_image", lambda rgb: time.sleep(3))
    with serving(build_api(slow, ServeParams(timeout_s=0.5))) as url:
        late = ask(url, [photo])
    assert late.status_code == 504 and "serve.timeout_s" in late.text


def test_the_token_is_required_compared_and_never_logged(
    detector: Detector, photo: str, caplog: pytest.LogCaptureFixture, reliability: Recorder
) -> None:
    token = "s3cret-token-value"
    with (
        caplog.at_level(logging.INFO, "deepfake_detector.access"),
        serving(build_api(detector, token=token)) as url,
    ):
        seen = {
            "no token": ask(url, [photo]).status_code,
            "a wrong token": ask(url, [photo], token="wrong").status_code,
            "/metrics without it": requests.get(f"{url}/metrics", timeout=30).status_code,
            "/ping without it": requests.get(f"{url}/ping", timeout=30).status_code,
            "the token": ask(url, [photo], token=token).status_code,
        }
    wanted = {"no token": 401, "a wrong token": 401, "/metrics without it": 401}
    wanted |= {"/ping without it": 200, "the token": 200}
    held = reliability.add(
        section="security",
        case="requests without the access token, with a wrong one, with the right one",
        entry="REST (deepfake rest)",
        expected="401 without it or with a wrong one (health check open); 200 with it; "
        "never logged",
        observed="; ".join(f"{k}: {v}" for k, v in seen.items())
        + f"; token in the log: {token in caplog.text}",
        ok=seen == wanted and token not in caplog.text,
    )
    assert held, seen
    lines = [r.getMessage() for r in caplog.records if r.name == "deepfake_detector.access"]
    assert len(lines) == 5 and any("POST /invocations 401" in line for line in lines)
    assert token not in caplog.text and photo[:40] not in caplog.text


def test_metrics_are_prometheus_text_that_its_parser_reads(detector: Detector, photo: str) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    with serving(build_api(detector, ServeParams(max_images=1))) as url:
        assert ask(url, [photo]).status_code == 200
        assert ask(url, [photo, photo]).status_code == 413
        text = requests.get(f"{url}/metrics", timeout=30).text
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert samples[("deepfake_images_total", ())] == 1
    assert samples[("deepfake_requests_refused_total", (("reason", "too_many_images"),))] == 1
    ok = ("deepfake_requests_total", (("path", "/invocations"), ("status", "200")))
    assert samples[ok] == 1
    assert samples[("deepfake_requests_in_flight", ())] == 0
    assert sum(v for (n, _), v in samples.items() if n == "deepfake_verdicts_total") == 1
    assert ("deepfake_p_fake_count", ()) in samples
    assert ("deepfake_request_seconds_count", (("path", "/invocations"),)) in samples


@pytest.mark.parametrize("command", ["rest", "app"])
def test_beyond_the_loopback_without_a_token_it_refuses_to_start(
    tmp_path: Path, command: str
) -> None:
    import subprocess

    from conftest import BIN

    (tmp_path / "params.yaml").write_text((REPO / "params.yaml").read_text())
    env = run_env(tmp_path)
    env.pop("DEEPFAKE_API_TOKEN", None)
    result = subprocess.run(
        [str(BIN / "deepfake"), command, "--host", "0.0.0.0", "--port", str(free_port())],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "error: --host 0.0.0.0 serves beyond this machine: set DEEPFAKE_API_TOKEN" in (
        result.stderr
    )
