"""The commands that serve verdicts to others: the web app and the REST endpoint, each guarded
the same way on a network (an access token beyond the loopback, limits, `/metrics`)."""

from __future__ import annotations

import hmac
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from deepfake_detector.cli.common import ParamsOption, _fail, _guarded, app
from deepfake_detector.cli.verdicts import (
    ConfigOption,
    ModelOption,
    RuntimeChoice,
    RuntimeOption,
    _card_of_folder,
    _detector,
)
from deepfake_detector.core.config import DEFAULT_PARAMS, load_params
from deepfake_detector.core.runtime import check_port_free, prepare_environment, setup_logging
from deepfake_detector.core.serve_config import serve_of

if TYPE_CHECKING:
    from deepfake_detector.inference.service_guard import ServiceMetrics

TOKEN_ENV = "DEEPFAKE_API_TOKEN"

TokenFileOption = Annotated[
    Path | None,
    typer.Option(help=f"A file holding the access token (else ${TOKEN_ENV})."),
]
GatewayOption = Annotated[
    bool,
    typer.Option(
        "--behind-gateway",
        help="Listen beyond 127.0.0.1 without a token: your own gateway authenticates.",
    ),
]


def access_token(token_file: Path | None) -> str | None:
    """The access token: the file's first line, else $DEEPFAKE_API_TOKEN, else None."""
    if token_file is not None:
        try:
            token = token_file.read_text().strip().splitlines()[0].strip()
        except (OSError, IndexError) as exc:
            raise _fail(f"--token-file {token_file}: no token in it ({exc})") from exc
        return token or None
    return os.environ.get(TOKEN_ENV, "").strip() or None


def is_loopback(host: str) -> bool:
    """Whether `host` is this machine's loopback interface (127.0.0.0/8, ::1, localhost)."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def network_token(host: str, token_file: Path | None, behind_gateway: bool) -> str | None:
    """The token a server asks for; one `error:` line when it would listen beyond the loopback
    with none and no gateway of the operator's authenticates."""
    token = access_token(token_file)
    if not token and not behind_gateway and not is_loopback(host):
        raise _fail(
            f"--host {host} serves beyond this machine: set {TOKEN_ENV} (or --token-file) "
            "to require a token, or pass --behind-gateway if a gateway of yours authenticates"
        )
    return token


@app.command(name="app")
def serve_app(
    model: ModelOption = None,
    config: ConfigOption = None,
    host: Annotated[
        str, typer.Option(help="Interface to bind; 0.0.0.0 exposes the app (token needed).")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(min=0, max=65535, help="Port (0: the first free one from 7860).")
    ] = 7860,
    max_file_size: Annotated[str, typer.Option(help="Largest upload accepted.")] = "50mb",
    concurrency: Annotated[int, typer.Option(help="Analyses running at once.")] = 2,
    queue_size: Annotated[int, typer.Option(help="Requests waiting at most.")] = 64,
    runtime: RuntimeOption = RuntimeChoice.auto,
    params: ParamsOption = DEFAULT_PARAMS,
    token_file: TokenFileOption = None,
    behind_gateway: GatewayOption = False,
) -> None:
    """The web app: upload a picture or a clip, get a verdict with per-face evidence. With an
    access token its login asks for it (any user name); GET /metrics needs it as a bearer."""
    prepare_environment()
    setup_logging(logging.WARNING)
    with _guarded("app", lock=False):
        token = network_token(host, token_file, behind_gateway)
        settings = load_params(params)
        limits = serve_of(settings)
        check_port_free(host, port)  # before the model loads and Gradio is imported
    from deepfake_detector.inference.app import NO_CARD, build_app, demo_examples
    from deepfake_detector.inference.model_card import card_markdown

    with _guarded("app", lock=False):
        detector = _detector(model, config, params, runtime.value)
        card = _card_of_folder(detector.folder, settings) if detector.folder else None
        card_text = NO_CARD if card is None else card_markdown(card, detector.ref)
    images, videos = demo_examples(settings.paths.frames_dir, settings.paths.demo_dir)
    from deepfake_detector.inference.service_guard import ServiceMetrics

    metrics = ServiceMetrics(detector.config.drift_reference, limits.drift_window)
    demo = build_app(detector, images, videos, card_text, metrics)
    demo.queue(default_concurrency_limit=concurrency, max_size=queue_size)
    demo.launch(
        server_name=host,
        server_port=port or None,
        max_file_size=max_file_size,
        show_error=False,
        footer_links=["api"],
        auth=_password_is(token) if token else None,
        auth_message="Any user name; the password is the access token.",
        prevent_thread_lock=True,
    )
    demo.app.add_route("/metrics", _metrics_route(metrics, token), methods=["GET"])
    demo.block_thread()


def _password_is(token: str) -> Any:
    def check(_user: str, password: str) -> bool:
        return hmac.compare_digest(password.encode(), token.encode())

    return check


def _metrics_route(metrics: ServiceMetrics, token: str | None) -> Any:
    """`GET /metrics` for the app's server: Prometheus' text, behind the bearer token if any."""
    from fastapi import Request
    from fastapi.responses import JSONResponse, Response

    from deepfake_detector.inference.service_guard import bearer_matches

    def scrape(request: Request) -> Response:  # a plain Starlette endpoint (`add_route`)
        headers = [(k.lower(), v) for k, v in request.headers.raw]
        if token and not bearer_matches(headers, token):
            metrics.refused.labels("unauthorised").inc()
            body = {"error_code": "UNAUTHORISED", "message": "a valid bearer token is needed"}
            return JSONResponse(body, 401, headers={"WWW-Authenticate": "Bearer"})
        return Response(metrics.exposition(), media_type=metrics.content_type)

    return scrape


@app.command(name="rest")
def serve_rest(
    model: ModelOption = None,
    config: ConfigOption = None,
    host: Annotated[
        str, typer.Option(help="Interface to bind; 0.0.0.0 exposes the endpoint.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port.")] = 5001,
    runtime: RuntimeOption = RuntimeChoice.auto,
    params: ParamsOption = DEFAULT_PARAMS,
    token_file: TokenFileOption = None,
    behind_gateway: GatewayOption = False,
) -> None:
    """REST in MLflow's scoring protocol (POST /invocations, GET /ping, GET /metrics), without
    MLflow; limits from params' `serve`; a bearer token from $DEEPFAKE_API_TOKEN or a file."""
    prepare_environment()
    setup_logging(logging.WARNING)
    with _guarded("rest", lock=False):
        token = network_token(host, token_file, behind_gateway)
        limits = serve_of(load_params(params))
        check_port_free(host, port)  # before the model loads
    import uvicorn

    from deepfake_detector.inference.rest import build_api

    with _guarded("rest", lock=False):
        detector = _detector(model, config, params, runtime.value)
    typer.echo(
        f"deepfake rest: {detector.ref.label()} ({detector.runtime}) answers POST "
        f"http://{host}:{port}/invocations (GET /ping for health); Ctrl-C stops it",
        err=True,
    )
    logging.getLogger("deepfake_detector.access").setLevel(logging.INFO)  # one line a request
    app = build_api(detector, limits, token)
    uvicorn.run(app, host=host, port=port, workers=1, log_level="warning", access_log=False)
