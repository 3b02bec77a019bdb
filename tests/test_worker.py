"""prefect.yaml deployed to a real Prefect server on 127.0.0.1 and run by a process worker."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests
import yaml
from conftest import BIN, REPO
from processes import start, stop, wait_for
from servers import prefect_server

from deepfake_detector.core.runtime import QUIET_ENV

pytestmark = pytest.mark.slow
UNSETTLED = {"PENDING", "SCHEDULED", "RUNNING"}

POOL = "deepfake-process"
DEPLOYMENT = "deepfake-pipeline/retrain"
FINAL = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")


def prefect(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    """Run a `prefect` CLI command without prompts; its output, or fail showing it."""
    result = subprocess.run(
        [str(BIN / "prefect"), "--no-prompt", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"prefect {' '.join(args)} failed:\n{output[-3000:]}"
    return output


def api_json(method: str, url: str, body: dict[str, Any] | None = None) -> Any:
    """One REST call; None while the SQLite-backed server answers 503 (busy database)."""
    answer = requests.request(method, url, json=body, timeout=10)
    if answer.status_code == 503:
        return None
    answer.raise_for_status()
    return answer.json()


def worker_children_gone(worker: subprocess.Popen) -> bool:
    """True once the worker has no live child (the flow-run process) left."""
    for child in psutil.Process(worker.pid).children(recursive=True):
        try:
            if child.status() != psutil.STATUS_ZOMBIE and "resource_tracker" not in " ".join(
                child.cmdline()
            ):
                return False
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
    return True


def test_a_process_worker_runs_the_deployment_declared_in_prefect_yaml(
    tmp_path: Path, trained_project: Path
) -> None:
    # A copy of the trained project, so the session's fixture stays as it was, plus what a
    # checkout has for workers: prefect.yaml and the flow code.
    project = tmp_path / "project"
    shutil.copytree(
        trained_project,
        project,
        symlinks=True,
        ignore=shutil.ignore_patterns(".prefect", ".deepfake.lock*", "__pycache__"),
    )
    shutil.copy(REPO / "prefect.yaml", project / "prefect.yaml")
    for package in ("flows", "tasks"):
        shutil.copytree(
            REPO / package,
            project / package,
            ignore=shutil.ignore_patterns("__pycache__"),
            dirs_exist_ok=True,  # the trained project carries them already
        )
    declared = yaml.safe_load((project / "prefect.yaml").read_text())["deployments"][0]
    schedule = yaml.safe_load((project / "params.yaml").read_text())["schedule"]
    assert declared["schedules"][0]["cron"] == schedule["cron"]
    assert declared["schedules"][0]["timezone"] == schedule["timezone"]

    api, env, server_cmd = prefect_server(
        project,
        {
            "PREFECT_CLI_PROMPT": "false",
            # The server's scheduler makes the cron's runs within seconds, not a minute.
            "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "5",
        },
    )
    server = start(server_cmd, project, env, tmp_path / "server.log")
    worker = None
    timings: dict[str, float] = {}
    began = time.monotonic()
    try:
        wait_for(lambda: requests.get(f"{api}/health", timeout=2).ok, 90, "the Prefect server")
        timings["server"] = time.monotonic() - began

        prefect(["work-pool", "create", POOL, "--type", "process"], project, env)
        deployed = prefect(["deploy", "--all"], project, env)
        assert (project / "prefect.yaml").read_text() == (REPO / "prefect.yaml").read_text()
        timings["deploy"] = time.monotonic() - began

        deployment = wait_for(
            lambda: api_json("GET", f"{api}/deployments/name/{DEPLOYMENT}"),
            30,
            "the deployment",
        )
        assert deployment["work_pool_name"] == POOL, deployed
        assert deployment["work_queue_name"] == "default"
        assert deployment["entrypoint"] == "flows/pipeline.py:deepfake_pipeline"
        assert deployment["parameters"] == {"params_path": "params.yaml"}
        assert set(deployment["tags"]) == {"deepfake", "retrain"}
        schedules = [s["schedule"] for s in deployment["schedules"]]
        assert [(s.get("cron"), s.get("timezone")) for s in schedules] == [("0 3 * * 1", "UTC")]
        assert all(s["active"] for s in deployment["schedules"])
        assert deployment["global_concurrency_limit"]["limit"] == 1
        # Runs get the quiet environment `deepfake flow` sets itself (no telemetry).
        job_env = deployment["job_variables"]["env"]
        for name in ("MLFLOW_DISABLE_TELEMETRY", "DO_NOT_TRACK", "DVC_NO_ANALYTICS"):
            assert job_env[name] == QUIET_ENV[name]
        # `prefect deploy` recorded the checkout it ran in as the runs' working directory.
        assert deployment["pull_steps"] == [
            {
                "prefect.deployments.steps.set_working_directory": {
                    "directory": str(project.resolve())
                }
            }
        ]

        # The server's scheduler turned the cron into runs waiting for Monday 03:00 UTC.
        def scheduled() -> list[dict[str, Any]] | None:
            body = {
                "deployments": {"id": {"any_": [deployment["id"]]}},
                "flow_runs": {"state": {"type": {"any_": ["SCHEDULED"]}}},
                "limit": 5,
            }
            return api_json("POST", f"{api}/flow_runs/filter", body)

        upcoming = wait_for(scheduled, 60, "the schedule's runs")
        for planned in upcoming:
            when = dt.datetime.fromisoformat(planned["expected_start_time"]).astimezone(dt.UTC)
            assert (when.weekday(), when.hour, when.minute) == (0, 3, 0), when
            assert planned["work_pool_name"] == POOL

        # A worker as on a fresh machine: none of the quiet settings of its own.
        worker_env = {k: v for k, v in env.items() if k not in QUIET_ENV}
        worker_env["PREFECT_WORKER_QUERY_SECONDS"] = "2"
        worker_cmd = [str(BIN / "prefect"), "worker", "start", "--pool", POOL, "--name", "w1"]
        worker = start(worker_cmd, project, worker_env, tmp_path / "worker.log")

        # Two runs at once: the deployment's concurrency limit holds the second back until the
        # first has released the checkout (else the pipeline lock would refuse it).
        # The client retries the busy server's 503 answers itself.
        run_ids = []
        for _ in range(2):
            triggered = prefect(["deployment", "run", DEPLOYMENT], project, env)
            match = re.search(r"UUID: ([0-9a-f-]{36})", triggered)
            assert match, triggered
            run_ids.append(match.group(1))

        def finished(run_id: str) -> dict[str, Any] | None:
            run = api_json("GET", f"{api}/flow_runs/{run_id}")
            return run if run and run["state"]["type"] in FINAL else None

        first, second = (
            wait_for(lambda r=r: finished(r), 300, "the worker to run the flow") for r in run_ids
        )
        timings["runs"] = time.monotonic() - began
        logs = (tmp_path / "worker.log").read_text()
        for run in (first, second):
            assert run["state"]["type"] == "COMPLETED", f"{run['state']}\n{logs[-3000:]}"
        # The worker may take either run first: the limit holds if they do not overlap.
        first, second = sorted(
            (first, second), key=lambda run: dt.datetime.fromisoformat(run["start_time"])
        )
        first_end = dt.datetime.fromisoformat(first["end_time"])
        assert dt.datetime.fromisoformat(second["start_time"]) >= first_end, (first, second)
        if dt.datetime.fromisoformat(second["created"]) < first_end:
            history = wait_for(
                lambda: api_json("GET", f"{api}/flow_run_states/?flow_run_id={second['id']}"),
                30,
                "the second run's states",
            )
            assert "AwaitingConcurrencySlot" in [h["name"] for h in history], history

        for run in (first, second):
            # The worker (not a `serve` process) ran it, with the deployment's parameters...
            assert run["work_pool_name"] == POOL
            assert run["work_queue_name"] == "default"
            assert run["deployment_id"] == deployment["id"]
            assert run["parameters"] == {"params_path": "params.yaml"}
            assert f"Worker 'w1' submitting flow run '{run['id']}'" in logs, logs[-3000:]

            # ...adopting the outputs `dvc repro` made in the copy: every task Cached.
            # Task-run states reach the server as events, a moment after the flow run ends.
            def settled(flow_run_id: str = run["id"]) -> list | None:
                runs = api_json(
                    "POST",
                    f"{api}/task_runs/filter",
                    {"flow_runs": {"id": {"any_": [flow_run_id]}}, "limit": 200},
                )
                names = {t["name"].rsplit("-", 1)[0] for t in runs}
                done = all(t["state"]["type"] not in UNSETTLED for t in runs)
                return runs if done and "register_model" in names else None

            task_runs = wait_for(settled, 60, "the task runs' final states")
            states = sorted({(t["name"].rsplit("-", 1)[0], t["state"]["name"]) for t in task_runs})
            assert "register_model" in {name for name, _ in states}, states
            assert {state for _, state in states} == {"Cached"}, states
        workers = api_json("POST", f"{api}/work_pools/{POOL}/workers/filter", {})
        assert [w["name"] for w in workers] == ["w1"]

        # It ran in the copy: the last run's process took the copy's pipeline lock, and the
        # flow left DVC there with nothing to do.
        holder = json.loads((project / ".deepfake.lock.json").read_text())
        assert holder["what"] == "flow deepfake-pipeline"
        assert str(holder["pid"]) == str(second["infrastructure_pid"]), (holder, second)
        status = subprocess.run(
            [str(BIN / "dvc"), "status"], cwd=project, env=env, capture_output=True, text=True
        )
        assert "up to date" in status.stdout, status.stdout + status.stderr

        # The flow-run process reports Completed a moment before it exits; stopping the worker
        # before that would mark the run cancelled.
        wait_for(lambda: worker_children_gone(worker), 120, "the flow-run process to exit")
        print("timings (s since the server started):", timings)
    finally:
        if worker is not None:
            stop(worker)
        stop(server)
