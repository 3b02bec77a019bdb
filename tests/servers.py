"""The project's own servers, started as users start them: the Gradio app and MLflow's REST."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests
from conftest import BIN, run_env
from processes import POLL_S, free_port, start, stop

CHAMPION = "models:/deepfake-detector@champion"


def wait_http(url: str, timeout: float, proc: subprocess.Popen, log: Path) -> None:
    """Wait until `url` answers below 500; fail with the server's log if it exits or is slow."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited:\n{log.read_text()[-3000:]}")
        try:
            if requests.get(url, timeout=2).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(POLL_S)
    raise AssertionError(f"{url} did not answer in {timeout}s:\n{log.read_text()[-3000:]}")


def serve(
    cmd: list[str], project: Path, log: Path, extra: dict[str, str] | None = None
) -> subprocess.Popen:
    """Start a server in the trained project, with its tracking store."""
    env = run_env(project) | {"MLFLOW_TRACKING_URI": "sqlite:///mlruns/mlflow.db"} | (extra or {})
    return start(cmd, project, env, log)


@contextmanager
def running_app(project: Path, log: Path, *args: str) -> Iterator[tuple[str, subprocess.Popen]]:
    """`deepfake app` on a free port of 127.0.0.1; yields its URL and process."""
    port = free_port()
    app = serve([str(BIN / "deepfake"), "app", "--port", str(port), *args], project, log)
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_http(url, 180, app, log)
        yield url, app
    finally:
        stop(app)


@contextmanager
def running_rest(
    project: Path, log: Path, env_manager: str = "local", timeout_s: float = 180
) -> Iterator[tuple[str, subprocess.Popen]]:
    """The champion behind `mlflow models serve` (as `make serve-model`); yields its base URL.

    `env_manager`: local (this environment) or uv (an environment MLflow builds from the
    model's own requirements, with the venv's `uv`; its environments live in the project)."""
    port = free_port()
    cmd = [
        str(BIN / "mlflow"),
        "models",
        "serve",
        "-m",
        CHAMPION,
        "--env-manager",
        env_manager,
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "--workers",
        "1",
    ]
    server = serve(cmd, project, log, {"MLFLOW_ENV_ROOT": str(project / ".mlflow-envs")})
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/ping", timeout_s, server, log)
        yield url, server
    finally:
        stop(server)


def prefect_server(
    project: Path, extra: dict[str, str] | None = None
) -> tuple[str, dict[str, str], list[str]]:
    """A Prefect server for `project`: its API URL, the environment for it and its clients, and
    the command that starts it (127.0.0.1, a free port, no UI, no analytics)."""
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = run_env(project) | {
        "PREFECT_API_URL": api,
        "PREFECT_SERVER_API_HOST": "127.0.0.1",
        "PREFECT_SERVER_API_PORT": str(port),
        "PREFECT_UI_ENABLED": "false",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        **(extra or {}),
    }
    cmd = [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    return api, env, cmd
