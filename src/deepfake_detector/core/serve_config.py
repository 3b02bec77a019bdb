"""The `serve` section of params.yaml: the limits of `deepfake rest` for a service on a network.

Its own module, as the studies' section is: no pipeline stage imports it, so editing a limit
changes no stage's key.
"""

from __future__ import annotations

from pydantic import Field, ValidationError

from deepfake_detector.core.config import Params, ParamsError, Section


class ServeParams(Section):
    """What `deepfake rest` refuses, and how."""

    max_request_mb: float = Field(32.0, gt=0)  # a longer body: 413, counted as it streams in
    max_images: int = Field(16, ge=1)  # images in one request (413 beyond, the limit named)
    timeout_s: float = Field(60.0, gt=0)  # a request not answered by then: 504
    max_in_flight: int = Field(2, ge=1)  # requests scored at once
    max_queued: int = Field(8, ge=0)  # requests waiting for a turn; beyond: 503, Retry-After
    drift_window: int = Field(500, ge=10)  # last faces answered that drift gauges compare


def serve_of(params: Params) -> ServeParams:
    """The `serve` section, validated (errors name the key)."""
    try:
        return ServeParams.model_validate(params.serve)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(["serve", *(str(p) for p in err["loc"])])
        kind = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        raise ParamsError(f"params: '{where}': {kind}") from None
