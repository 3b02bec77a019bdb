"""A team's MLflow: a tracking server on PostgreSQL with its own artifact folder.

The pipeline's registering stage, the registry lookup of `deepfake predict` and the Gradio app run
against it with nothing changed but `MLFLOW_TRACKING_URI` (the how-to: section 2 of
docs/laptop-to-cluster.md).
Every server here binds 127.0.0.1 and is stopped at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import BIN, run_env
from media import one_face, save_rgb
from postgres import libpq_url, postgres_url
from processes import free_port, start, stop
from servers import wait_http

from deepfake_detector.core.reports import read_report

pytestmark = pytest.mark.slow

__all__ = ["postgres_url"]  # the fixture, imported so that pytest finds it here

MODEL = "deepfake-detector"
CHAMPION = f"models:/{MODEL}@champion"
EXPERIMENT = "deepfake-detection"  # params.yaml: registry.experiment
COMMAND_TIMEOUT_S = 300


@dataclass(frozen=True)
class TeamServer:
    """A running `mlflow server`: its URL, artifact folder, database (libpq URL) and log."""

    url: str
    artifacts: Path
    database: str
    log: Path


@pytest.fixture(scope="module")
def team_server(
    postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TeamServer]:
    """`mlflow server` on PostgreSQL, proxying artifacts to a folder of its own."""
    folder = tmp_path_factory.mktemp("team-mlflow")
    artifacts, log, port = folder / "artifacts", folder / "mlflow-server.log", free_port()
    env = dict(os.environ) | {
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    cmd = [
        str(BIN / "mlflow"), "server",
        "--backend-store-uri", postgres_url,
        "--artifacts-destination", str(artifacts),
        "--serve-artifacts",
        "--host", "127.0.0.1",
        "--port", str(port),
        "--workers", "1",
    ]  # fmt: skip
    server = start(cmd, folder, env, log)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/health", 120, server, log)
        yield TeamServer(url, artifacts, libpq_url(postgres_url), log)
    finally:
        stop(server)


def team_env(project: Path, server: TeamServer) -> dict[str, str]:
    """The tests' usual environment for the project, plus only `MLFLOW_TRACKING_URI`."""
    return run_env(project) | {"MLFLOW_TRACKING_URI": server.url}


def team_run(cmd: list[str], project: Path, server: TeamServer) -> str:
    """Run a command in the project against the team server; its stdout, or fail with output."""
    result = subprocess.run(
        cmd,
        cwd=project,
        env=team_env(project, server),
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
    )
    if result.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} failed ({result.returncode}):\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result.stdout


def registration(project: Path, server: TeamServer) -> dict[str, Any]:
    """Run the pipeline's registering stage; what it registered (version, decision, run)."""
    team_run(["deepfake", "register_model"], project, server)
    run: dict[str, Any] = read_report(project / "models" / "registration")["run"]
    return run


def database_rows(server: TeamServer) -> dict[str, Any]:
    """What PostgreSQL itself holds: run ids, model versions and the champion alias."""
    import psycopg2

    connection = psycopg2.connect(server.database, connect_timeout=10)
    try:
        with connection.cursor() as cur:
            cur.execute("SELECT run_uuid FROM runs")
            runs = {row[0] for row in cur.fetchall()}
            cur.execute("SELECT version FROM model_versions WHERE name = %s", (MODEL,))
            versions = sorted(str(row[0]) for row in cur.fetchall())
            cur.execute(
                "SELECT version FROM registered_model_aliases WHERE name = %s AND alias = %s",
                (MODEL, "champion"),
            )
            alias = [str(row[0]) for row in cur.fetchall()]
    finally:
        connection.close()
    return {"runs": runs, "versions": versions, "champion": alias}


def test_the_pipeline_registry_and_app_work_against_a_team_server_on_postgresql(
    trained_project: Path, team_server: TeamServer, tmp_path: Path
) -> None:
    from gradio_client import Client, handle_file
    from mlflow import MlflowClient

    timings: dict[str, float] = {}
    clock = time.monotonic()

    def lap(name: str) -> None:
        nonlocal clock
        timings[name] = round(time.monotonic() - clock, 1)
        clock = time.monotonic()

    # A copy keeps the shared project as it is; without its local store nothing local can answer.
    project = tmp_path / "project"
    shutil.copytree(trained_project, project, symlinks=True)
    shutil.rmtree(project / "mlruns")
    client = MlflowClient(team_server.url)

    # (a) The registering stage: it creates the experiment (artifacts where the server keeps
    # them), then a run and a version with `champion`, all on the server.
    first = registration(project, team_server)
    lap("register_model #1")
    experiment = client.get_experiment_by_name(EXPERIMENT)
    assert experiment is not None and experiment.artifact_location.startswith("mlflow-artifacts:")
    assert first["decision"] == "champion", first
    champion = client.get_model_version_by_alias(MODEL, "champion")
    assert (champion.version, champion.run_id) == (first["version"], first["run_id"])
    run = client.get_run(first["run_id"])
    assert run.info.experiment_id == experiment.experiment_id
    assert run.info.artifact_uri.startswith("mlflow-artifacts:"), run.info.artifact_uri
    run_folder = team_server.artifacts / run.info.experiment_id / run.info.run_id / "artifacts"
    assert (run_folder / "metrics.json").is_file() and (run_folder / "inference.json").is_file()
    assert list(team_server.artifacts.rglob("MLmodel")), "the model is not in the artifact folder"
    assert not (project / "mlruns").exists(), "the project wrote a local store or artifacts"

    # (d) A second registration: version 2, and the champion/challenger decision on it.
    second = registration(project, team_server)
    lap("register_model #2")
    assert second["version"] == str(int(first["version"]) + 1), second
    assert second["previous_champion"] == first["version"], second
    tags = client.get_model_version(MODEL, second["version"]).tags
    assert (
        tags["role"] == second["decision"] and tags["champion_at_registration"] == first["version"]
    ), tags
    champion = client.get_model_version_by_alias(MODEL, "champion")
    expected = second["version"] if second["decision"] == "champion" else first["version"]
    assert champion.version == expected

    rows = database_rows(team_server)
    assert rows["runs"] == {first["run_id"], second["run_id"]}, rows
    assert rows["versions"] == [first["version"], second["version"]], rows
    assert rows["champion"] == [champion.version], rows
    lap("checks on the server and in PostgreSQL")

    # (b) The registry lookup of the CLI answers with the server's champion.
    image = save_rgb(tmp_path / "face.png", one_face())
    out = team_run(
        ["deepfake", "predict", "--json", "-m", CHAMPION, str(image)], project, team_server
    )
    results = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert len(results) == 1 and results[0]["verdict"] in ("real", "fake"), out
    assert results[0]["model"]["version"] == champion.version, results[0]["model"]
    assert results[0]["model"]["run_id"] == champion.run_id, results[0]["model"]
    lap("predict -m models:/...@champion")

    # (c) The app, started as users start it, answers with the server's champion.
    port, log = free_port(), tmp_path / "app.log"
    app = start(
        [str(BIN / "deepfake"), "app", "--port", str(port)],
        project,
        team_env(project, team_server),
        log,
    )
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_http(url, 180, app, log)
        lap("app start")
        _, _, _, result = Client(url, verbose=False).predict(
            handle_file(str(image)), api_name="/predict_image"
        )
    finally:
        stop(app)
    assert result["verdict"] in ("real", "fake"), result
    assert result["model"]["version"] == champion.version, result["model"]
    assert result["model"]["run_id"] == champion.run_id, result["model"]
    assert not (project / "mlruns").exists(), "the project wrote a local store or artifacts"
    lap("app answer")
    print(
        f"\nteam MLflow: versions {rows['versions']}, champion v{champion.version}, "
        f"second registration: {second['decision']}, runs in PostgreSQL: {len(rows['runs'])}, "
        f"timings (s): {timings}"
    )


def test_an_experiment_the_pipeline_creates_on_a_server_keeps_its_artifacts_on_the_server(
    team_server: TeamServer, tmp_path: Path
) -> None:
    from mlflow import MlflowClient

    code = (
        "from pathlib import Path\n"
        "from deepfake_detector.core.config import Params\n"
        "from deepfake_detector.core.tracking import connect\n"
        "print(connect(Params(), Path('.'), 'created-by-the-pipeline'))\n"
    )
    out = team_run([sys.executable, "-c", code], tmp_path, team_server)
    experiment = MlflowClient(team_server.url).get_experiment(out.strip().splitlines()[-1])
    assert experiment.artifact_location.startswith("mlflow-artifacts:"), experiment
