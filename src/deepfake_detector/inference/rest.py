"""`deepfake rest`: the REST endpoint of the light install, in MLflow's scoring protocol.

`mlflow models serve` needs MLflow in the serving environment; this endpoint answers the same
requests (`POST /invocations` with `dataframe_split`, `dataframe_records` or `inputs` holding
base64-encoded images; `GET /ping`) with the same answers (the pyfunc's `PyfuncDetector`), on
FastAPI and uvicorn, which the core install has through Gradio.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from deepfake_detector.inference.pyfunc import PyfuncDetector

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


def build_api(detector: Detector) -> FastAPI:
    """The FastAPI app: `/ping` and `/invocations` over one detector."""
    scorer = PyfuncDetector(detector)
    api = FastAPI(title="deepfake-detector", docs_url=None, redoc_url=None)

    @api.get("/ping")
    def ping() -> dict[str, str]:
        return {"status": "ok", "model": detector.ref.label(), "runtime": detector.runtime}

    @api.post("/invocations")
    async def invocations(request: Request) -> Any:
        try:
            model_input = request_input(await request.json())
        except ValueError as exc:  # not JSON, or no known format: a 400 with the reason
            return JSONResponse({"error_code": "BAD_REQUEST", "message": str(exc)}, 400)
        return {"predictions": await run_in_threadpool(scorer.predict, model_input)}

    return api
