"""The scheduled deployment served against a real Prefect server on 127.0.0.1."""

from __future__ import annotations

import signal
from pathlib import Path

import psutil
import pytest
import requests
from conftest import BIN, make_project
from processes import start, stop, wait_for
from servers import prefect_server

pytestmark = pytest.mark.slow


def test_served_deployment_has_the_schedule_runs_and_survives_a_server_kill(tmp_path: Path) -> None:
    project = make_project(tmp_path / "project")
    api, env, server_cmd = prefect_server(project)
    server = start(server_cmd, project, env, tmp_path / "server.log")
    serve = None
    try:
        wait_for(lambda: requests.get(f"{api}/health", timeout=2).ok, 90, "the Prefect server")
        serve = start([str(BIN / "deepfake"), "serve"], project, env, tmp_path / "serve.log")
        url = f"{api}/deployments/name/deepfake-pipeline/retrain"
        deployment = wait_for(
            lambda: (r := requests.get(url, timeout=5)).ok and r.json(),
            120,
            "the deployment to register",
        )
        crons = [s["schedule"].get("cron") for s in deployment["schedules"]]
        assert crons == ["0 3 * * 1"]

        # SQLite-backed servers answer 503 while the database is busy; clients retry (Prefect's do).
        create = f"{api}/deployments/{deployment['id']}/create_flow_run"
        # The run goes as far as the frames: the mechanics are the same for every stage, and the
        # whole flow runs under Prefect in tests/test_flow.py.
        body = {"parameters": {"until": "extract_frames"}}
        created = wait_for(
            lambda: (r := requests.post(create, json=body, timeout=10)).ok and r.json(),
            60,
            "the server to accept the flow run",
        )
        flow_run = f"{api}/flow_runs/{created['id']}"

        def finished() -> str | None:
            answer = requests.get(flow_run, timeout=5)
            if not answer.ok:  # busy database: ask again
                return None
            state = answer.json()["state"]["type"]
            return state if state in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED") else None

        assert wait_for(finished, 400, "the triggered flow run") == "COMPLETED", (
            tmp_path / "serve.log"
        ).read_text()[-3000:]
        assert (project / "data/interim/frames/report.json").exists()
        assert not (project / "data/interim/faces").exists()  # it stopped where it was asked
        # The run's process reports Completed a moment before it exits; stopping the runner
        # before that would mark the run cancelled.
        runner = psutil.Process(serve.pid)

        def run_process_gone() -> bool:
            alive = []
            for child in runner.children():
                try:
                    if (
                        child.status() != psutil.STATUS_ZOMBIE
                        and "resource_tracker" not in " ".join(child.cmdline())
                    ):
                        alive.append(child)
                except (psutil.NoSuchProcess, psutil.ZombieProcess):
                    continue
            return not alive

        wait_for(run_process_gone, 120, "the flow-run process to exit")

        # A server killed hard restarts on the same database, deployment and run history intact.
        stop(serve)
        serve = None
        stop(server, signal.SIGKILL)
        server = start(server_cmd, project, env, tmp_path / "server2.log")
        wait_for(lambda: requests.get(f"{api}/health", timeout=2).ok, 90, "the restarted server")
        assert requests.get(url, timeout=5).ok
        assert requests.get(flow_run, timeout=5).json()["state"]["type"] == "COMPLETED"
    finally:
        if serve is not None:
            stop(serve)
        stop(server)
