"""The Prefect flow under Prefect's test harness: same stages, cached across runs, DVC agrees."""

from __future__ import annotations

import time
from pathlib import Path
from uuid import UUID

import pytest
from conftest import make_project, run

from deepfake_detector.core.reports import read_report

pytestmark = pytest.mark.slow


def task_states(flow_run_id: UUID, expected: int | None = None) -> dict[str, list[str]]:
    """Task name -> state names of one flow run's task runs, once the server has them all.

    Task-run states reach the server as events, a moment after the flow run returns: wait
    (bounded) until none is pending or running and, if given, `expected` runs are there.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    deadline = time.monotonic() + 60
    with get_client(sync_client=True) as client:
        while True:
            runs = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
            )
            settled = all(r.state is not None and r.state.is_final() for r in runs)
            if (settled and len(runs) >= (expected or 0)) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    states: dict[str, list[str]] = {}
    for task_run in runs:
        states.setdefault(task_run.name.rsplit("-", 1)[0], []).append(task_run.state.name)
    return states


@pytest.fixture
def harness(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    from prefect.settings import PREFECT_LOCAL_STORAGE_PATH, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    results = str(tmp_path / "prefect-results")
    with temporary_settings({PREFECT_LOCAL_STORAGE_PATH: results}), prefect_test_harness():
        yield


def _run_flow(project: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[dict, dict[str, list[str]]]:
    from flows.pipeline import deepfake_pipeline

    monkeypatch.chdir(project)  # the tracking URI in params is relative to the project
    state = deepfake_pipeline(params_path="params.yaml", root=str(project), return_state=True)
    assert state.is_completed(), state.message
    reports = state.result()
    videos = reports["download_videos"]["counts"]["videos"]
    expected = len(reports) - 3 + 3 * videos  # one task per stage, one per video per per-video
    return reports, task_states(state.state_details.flow_run_id, expected)


def test_flow_twice_second_run_all_cache_hits(
    tmp_path: Path, harness: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "project")
    reports, first = _run_flow(project, monkeypatch)
    assert set(first) == {
        "make_demo_videos",
        "download_video",
        "extract_frames",
        "crop_faces",
        "split_dataset",
        "train_model",
        "evaluate_model",
        "register_model",
    }
    assert all(state == "Completed" for states in first.values() for state in states)
    assert len(first["crop_faces"]) == reports["download_videos"]["counts"]["videos"] == 12
    assert reports["register_model"]["run"]["decision"] == "champion"
    # The flow reconciled dvc.lock: DVC sees nothing to do.
    assert "up to date" in run(["dvc", "status"], project).stdout

    _, second = _run_flow(project, monkeypatch)
    assert {name: set(states) for name, states in second.items()} == {
        name: {"Cached"} for name in first
    }
    assert len(second["extract_frames"]) == 12


def test_flow_after_dvc_repro_is_all_cache_hits(
    trained_project: Path, harness: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = trained_project  # built by `dvc repro`; a flow of cache hits changes nothing
    registered = read_report(project / "models/registration")["run"]
    lock = (project / "dvc.lock").read_text()
    reports, states = _run_flow(project, monkeypatch)
    assert all(state == "Cached" for task in states.values() for state in task), states
    assert (
        reports["register_model"]["run"]["version"] == registered["version"]
    )  # not registered twice
    assert "up to date" in run(["dvc", "status"], project).stdout
    assert (project / "dvc.lock").read_text() == lock
