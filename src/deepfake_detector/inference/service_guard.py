"""What stands in front of `deepfake rest` on a network: the access token, the request-size limit
(enforced while the body streams in, before anything parses it), Prometheus metrics (drift
gauges included) and one access-log line per request.

An ASGI middleware of its own rather than FastAPI's: a body that declares more than the limit is
refused from its `Content-Length`, before a byte of it is read; one without a length is counted
as it streams in (`rest.read_limited`), and never read whole first.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from deepfake_detector.learning.drift import DriftWindow

access = logging.getLogger("deepfake_detector.access")

RETRY_AFTER_S = 5  # what a busy server asks a client to wait (503's Retry-After)
OPEN_PATHS = ("/ping",)  # answered without the token: health checks
KNOWN_PATHS = ("/invocations", "/ping", "/metrics")  # metric labels (others: "other")

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class ServiceMetrics:
    """The service's Prometheus metrics, in a registry of their own (one per app); with drift
    gauges when given the model's reference (`InferenceConfig.drift_reference`)."""

    def __init__(
        self, drift_reference: dict[str, list[float]] | None = None, drift_window: int = 500
    ) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "deepfake_requests", "HTTP requests by path and status", ["path", "status"], registry=r
        )
        self.latency = Histogram(
            "deepfake_request_seconds",
            "Time from request to answer",
            ["path"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
            registry=r,
        )
        self.images = Counter("deepfake_images", "Images answered", registry=r)
        self.faces = Histogram(
            "deepfake_faces_per_image",
            "Faces found per image",
            buckets=(0, 1, 2, 3, 5, 10),
            registry=r,
        )
        self.verdicts = Counter("deepfake_verdicts", "Verdicts by kind", ["verdict"], registry=r)
        self.p_fake = Histogram(
            "deepfake_p_fake",
            "Calibrated P(fake) of the images judged",
            buckets=tuple(i / 10 for i in range(1, 11)),
            registry=r,
        )
        self.in_flight = Gauge("deepfake_requests_in_flight", "Requests being scored", registry=r)
        self.refused = Counter(
            "deepfake_requests_refused", "Requests refused, by reason", ["reason"], registry=r
        )
        self.content_type = CONTENT_TYPE_LATEST
        self.drift: DriftWindow | None = None
        if drift_reference:
            self.watch_drift(drift_reference, drift_window)

    def watch_drift(self, reference: dict[str, list[float]], window: int) -> None:
        """Compare the last `window` faces answered with the model's held-out faces
        (`drift.compare`) and export the result as gauges, one per measure, worked out when
        scraped (never on a request's path)."""
        self.drift = DriftWindow(reference, window)
        r = self.registry
        self.drift_faces = Gauge(
            "deepfake_drift_window_faces", "Faces in the drift window", registry=r
        )
        self.drift_statistic = Gauge(
            "deepfake_drift_statistic",
            "KS statistic of the window against the model's held-out faces (-1: too few faces)",
            ["measure"],
            registry=r,
        )
        self.drift_p_value = Gauge(
            "deepfake_drift_p_value", "KS test p-value (-1: too few faces)", ["measure"], registry=r
        )
        self.drifted = Gauge(
            "deepfake_drift_detected", "1 when the measure has drifted", ["measure"], registry=r
        )

    def _update_drift(self) -> None:
        if self.drift is None:
            return
        self.drift_faces.set(len(self.drift))
        for shift in self.drift.shifts():
            statistic, p_value = shift.statistic, shift.p_value
            self.drift_statistic.labels(shift.measure).set(-1 if statistic is None else statistic)
            self.drift_p_value.labels(shift.measure).set(-1 if p_value is None else p_value)
            self.drifted.labels(shift.measure).set(int(shift.drifted))

    def answered(self, answers: list[dict[str, Any]]) -> None:
        """Count a request's answers: images, faces, verdicts, P(fake); the drift window."""
        if self.drift is not None:
            self.drift.add(answers)
        for answer in answers:
            self.images.inc()
            self.verdicts.labels(str(answer.get("verdict"))).inc()
            self.faces.observe(len(answer.get("faces") or []))
            if isinstance(answer.get("p_fake"), int | float):
                self.p_fake.observe(float(answer["p_fake"]))

    def exposition(self) -> bytes:
        """The text format Prometheus scrapes (the drift gauges brought up to date first)."""
        self._update_drift()
        return generate_latest(self.registry)


def bearer_matches(headers: list[tuple[bytes, bytes]], token: str) -> bool:
    """Whether the request carries `Authorization: Bearer <token>` (compared in constant time)."""
    given = dict(headers).get(b"authorization", b"")
    scheme, _, value = given.partition(b" ")
    return scheme.lower() == b"bearer" and hmac.compare_digest(value.strip(), token.encode())


async def _respond(send: Send, status: int, body: dict[str, Any], extra: list[Any]) -> None:
    data = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(data))]
    await send({"type": "http.response.start", "status": status, "headers": headers + extra})
    await send({"type": "http.response.body", "body": data})


class ServiceGuard:
    """ASGI middleware: token, body limit, metrics and access log around `app`."""

    def __init__(
        self, app: Any, metrics: ServiceMetrics, max_body_bytes: int, token: str | None
    ) -> None:
        self.app, self.metrics = app, metrics
        self.max_body_bytes, self.token = max_body_bytes, token

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, seen = time.perf_counter(), {"status": 0, "bytes": 0}

        async def tracked_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                seen["status"] = int(message["status"])
            await send(message)

        try:
            await self._guarded(scope, receive, tracked_send, seen)
        finally:
            path = scope["path"] if scope["path"] in KNOWN_PATHS else "other"
            status = str(seen["status"] or 500)
            self.metrics.requests.labels(path, status).inc()
            self.metrics.latency.labels(path).observe(time.perf_counter() - started)
            client = (scope.get("client") or ("-", 0))[0]
            access.info(
                "%s %s %s %s %d bytes %.3f s",
                client,
                scope["method"],
                scope["path"],
                status,
                seen["bytes"],
                time.perf_counter() - started,
            )

    async def _guarded(
        self, scope: Message, receive: Receive, send: Send, seen: dict[str, int]
    ) -> None:
        guarded = self.token and scope["path"] not in OPEN_PATHS
        if guarded and not bearer_matches(scope["headers"], str(self.token)):
            self.metrics.refused.labels("unauthorised").inc()
            body = {"error_code": "UNAUTHORISED", "message": "a valid bearer token is needed"}
            await _respond(send, 401, body, [(b"www-authenticate", b"Bearer")])
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit():
            seen["bytes"] = int(declared)
            if seen["bytes"] > self.max_body_bytes:  # refused before a byte of the body is read
                await self._too_large(send)
                return
        await self.app(scope, receive, send)  # a body without a length: counted as it streams

    async def _too_large(self, send: Send) -> None:
        self.metrics.refused.labels("too_large").inc()
        body = {"error_code": "REQUEST_TOO_LARGE", "message": too_large(self.max_body_bytes)}
        await _respond(send, 413, body, [(b"connection", b"close")])


def too_large(limit_bytes: int) -> str:
    """The 413's message."""
    return f"request body over {limit_bytes / 2**20:g} MB (serve.max_request_mb)"
