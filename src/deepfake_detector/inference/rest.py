"""`deepfake rest`: the REST endpoint of the light install, in MLflow's scoring protocol.

`mlflow models serve` needs MLflow in the serving environment; this endpoint answers the same
requests (`POST /invocations` with `dataframe_split`, `dataframe_records` or `inputs` holding
base64-encoded images; `GET /ping`) with the same answers (the pyfunc's `PyfuncDetector`), on
FastAPI and uvicorn, which the core install has through Gradio.

For a network (`serve` in params.yaml, `service_guard`): a body longer than `max_request_mb` is
refused with 413 while it streams in, before anything parses it; more than `max_images` images,
413 naming the limit; `max_in_flight` requests are scored at once and `max_queued` wait, beyond
which the answer is 503 with `Retry-After`; a request not answered in `timeout_s` gets 504. With
an access token every path but `/ping` needs `Authorization: Bearer <token>`. `GET /metrics`
serves Prometheus' text format, with drift gauges: the last `drift_window` faces answered against
the model's held-out faces (`learning/drift.py`); one access-log line per request
(`deepfake_detector.access`).
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from deepfake_detector.core.serve_config import ServeParams
from deepfake_detector.inference.pyfunc import PyfuncDetector, _images_of
from deepfake_detector.inference.service_guard import (
    RETRY_AFTER_S,
    ServiceGuard,
    ServiceMetrics,
    too_large,
)

if TYPE_CHECKING:
    from deepfake_detector.inference.predict import Detector

FORMATS = ("dataframe_split", "dataframe_records", "inputs", "instances")


def request_input(body: Any) -> Any:
    """The model input of one request body; ValueError (a 400) when it has none."""
    import pandas as pd

    if not isinstance(body, dict) or not any(key in body for key in FORMATS):
        raise ValueError(f"expected a JSON object with one of {', '.join(FORMATS)}")
    if "dataframe_split" in body:
        split = body["dataframe_split"]
        if not isinstance(split, dict):
            raise ValueError("dataframe_split must be an object with columns and data")
        return pd.DataFrame(split.get("data", []), columns=split.get("columns"))
    if "dataframe_records" in body:
        return pd.DataFrame(body["dataframe_records"])
    return body.get("inputs", body.get("instances"))


def _refusal(status: int, code: str, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"error_code": code, "message": message}, status, headers=headers or None)


def build_api(
    detector: Detector, limits: ServeParams | None = None, token: str | None = None
) -> Any:
    """The ASGI app: `/ping`, `/invocations` and `/metrics` over one detector, behind the
    service guard (token, body limit, access log)."""
    limits = limits or ServeParams()
    scorer = PyfuncDetector(detector)
    metrics = ServiceMetrics(detector.config.drift_reference, limits.drift_window)
    api = FastAPI(title="deepfake-detector", docs_url=None, redoc_url=None, openapi_url=None)
    turns = asyncio.Semaphore(limits.max_in_flight)
    waiting = {"n": 0}  # requests admitted: scored now or waiting for a turn

    @api.get("/ping")
    def ping() -> dict[str, str]:
        return {"status": "ok", "model": detector.ref.label(), "runtime": detector.runtime}

    @api.get("/metrics")
    def prometheus() -> Response:
        return Response(metrics.exposition(), media_type=metrics.content_type)

    max_bytes = int(limits.max_request_mb * 2**20)

    @api.post("/invocations")
    async def invocations(request: Request) -> Any:
        body = await read_limited(request, max_bytes)
        if body is None:
            metrics.refused.labels("too_large").inc()
            return _refusal(413, "REQUEST_TOO_LARGE", too_large(max_bytes), Connection="close")
        try:
            model_input = request_input(json.loads(body))
            images = _images_of(model_input)
        except ValueError as exc:  # not JSON, or no known format: a 400 with the reason
            return _refusal(400, "BAD_REQUEST", str(exc))
        if len(images) > limits.max_images:
            metrics.refused.labels("too_many_images").inc()
            return _refusal(
                413,
                "TOO_MANY_IMAGES",
                f"{len(images)} images in one request; at most {limits.max_images} "
                "(serve.max_images)",
            )
        if waiting["n"] >= limits.max_in_flight + limits.max_queued:
            metrics.refused.labels("busy").inc()
            return _refusal(
                503,
                "BUSY",
                f"{limits.max_in_flight} requests are being scored and {limits.max_queued} "
                f"wait; try again in {RETRY_AFTER_S} s",
                **{"Retry-After": str(RETRY_AFTER_S)},
            )
        waiting["n"] += 1
        try:
            async with turns:
                metrics.in_flight.inc()
                try:
                    answers = await asyncio.wait_for(
                        run_in_threadpool(scorer.predict, model_input), limits.timeout_s
                    )
                finally:
                    metrics.in_flight.dec()
        except TimeoutError:
            metrics.refused.labels("timeout").inc()
            return _refusal(
                504, "TIMEOUT", f"not answered in {limits.timeout_s:g} s (serve.timeout_s)"
            )
        finally:
            waiting["n"] -= 1
        metrics.answered(answers)
        return {"predictions": answers}

    return ServiceGuard(api, metrics, max_bytes, token)


async def read_limited(request: Request, max_bytes: int) -> bytes | None:
    """The request body, or None as soon as more than `max_bytes` of it have come in (the rest
    is never read)."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            return None
    return bytes(body)
