"""Every entry point's first errors: one line `error: ...` with the remedy, exit 2, no traceback.

A tracking server or database that does not answer, a SQLite store that cannot be created, a
Prefect server that does not answer, a port in use, bad params and missing data; and a bug,
which says so in one line and keeps its traceback.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import BIN, REPO, run_env
from processes import free_port

from deepfake_detector import cli
from deepfake_detector.core import runtime
from deepfake_detector.core.errors import UserError
from deepfake_detector.core.runtime import (
    check_port_free,
    check_prefect_api,
    check_tracking_store,
)

# Each of these returns within seconds; MLflow's own retries would take minutes.
QUICKLY_S = 30


def _environment(cwd: Path, env: dict[str, str | None]) -> dict[str, str | None]:
    """What the command sees: the project's Prefect home, no tracking or Prefect server from
    the caller, and `env`'s changes (None: removes a variable)."""
    changes: dict[str, str | None] = {
        "PREFECT_HOME": str(cwd / ".prefect"),
        "PREFECT_API_URL": None,
        "MLFLOW_TRACKING_URI": None,
    }
    return changes | env


def deepfake(args: list[str], cwd: Path, **env: str | None) -> subprocess.CompletedProcess[str]:
    """`deepfake args` in `cwd`, in this process through Typer's `CliRunner` (no start-up of
    a new interpreter and TensorFlow per case); `env` adds variables (None: removes one)."""
    from typer.testing import CliRunner

    before = Path.cwd()
    os.chdir(cwd)
    try:
        result = CliRunner().invoke(cli.app, args, env=_environment(cwd, env))
    finally:
        os.chdir(before)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # a bug: its traceback, in the test's failure
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)


def deepfake_process(
    args: list[str], cwd: Path, **env: str | None
) -> subprocess.CompletedProcess[str]:
    """`deepfake args` as a user runs it: the installed command, in a process of its own."""
    environment: dict[str, str] = run_env(cwd)
    for key, value in _environment(cwd, env).items():
        if value is None:
            environment.pop(key, None)
        else:
            environment[key] = value
    return subprocess.run(
        [str(BIN / "deepfake"), *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )


def the_error(result: subprocess.CompletedProcess[str]) -> str:
    """The one `error:` line of a refused command (exit 2, no traceback)."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then let go)."""
    return free_port()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A fresh clone's state: params.yaml, an image, no data, no registry, no model."""
    (tmp_path / "params.yaml").write_text((REPO / "params.yaml").read_text())
    (tmp_path / "x.jpg").write_bytes((REPO / "docs" / "app.png").read_bytes())
    return tmp_path


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port another server listens on, for as long as the test runs."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        yield held.getsockname()[1]


# --- the MLflow tracking store -------------------------------------------------------------

# Every command that reads or writes the registry or the study runs.
TRACKED = {
    "predict": ["predict", "x.jpg"],
    "app": ["app", "--port", "0"],
    "rest": ["rest", "--port", "{free}"],
    "export": ["export", "-m", "models:/deepfake-detector@champion"],
    "register_model": ["register_model"],
    "pipeline": ["pipeline"],
    "flow": ["flow"],
    "serve": ["serve"],
    "leave_one_group_out": ["leave_one_group_out"],
    "cross_dataset": ["cross_dataset"],
    "study_results": ["study_results"],
}


@pytest.mark.parametrize("command", list(TRACKED.values()), ids=list(TRACKED))
def test_a_tracking_server_that_does_not_answer_is_one_error_line(
    project: Path, command: list[str]
) -> None:
    uri = f"http://127.0.0.1:{closed_port()}"
    args = [a.replace("{free}", str(free_port())) for a in command]
    started = time.monotonic()
    run = deepfake_process if command == TRACKED["predict"] else deepfake  # one as users run it
    result = run(args, project, MLFLOW_TRACKING_URI=uri)
    assert time.monotonic() - started < QUICKLY_S
    error = the_error(result)
    assert error.startswith(f"error: the MLflow tracking server at {uri} does not answer")
    assert "make mlflow-ui" in error and "unset MLFLOW_TRACKING_URI" in error


def test_a_tracking_server_named_in_params_names_the_key(project: Path) -> None:
    params = project / "params.yaml"
    store = "sqlite:///mlruns/mlflow.db"
    assert store in params.read_text()
    params.write_text(params.read_text().replace(store, f"http://127.0.0.1:{closed_port()}"))
    error = the_error(deepfake(["predict", "x.jpg"], project))
    assert "does not answer" in error and "registry.tracking_uri in params.yaml" in error


def test_a_tracking_database_that_does_not_answer_hides_the_password(project: Path) -> None:
    uri = f"postgresql://mlflow:s3cret@127.0.0.1:{closed_port()}/mlflow"
    result = deepfake(["register_model"], project, MLFLOW_TRACKING_URI=uri)
    error = the_error(result)
    assert "the MLflow tracking database at postgresql://mlflow:***@127.0.0.1:" in error
    assert "s3cret" not in result.stderr + result.stdout
    assert "unset MLFLOW_TRACKING_URI" in error


@pytest.mark.parametrize(
    "command", [["register_model"], ["predict", "x.jpg"]], ids=["register_model", "predict"]
)
def test_a_sqlite_store_that_cannot_be_created_is_one_error_line(
    project: Path, command: list[str]
) -> None:
    (project / "blocker").write_text("a file where the store's folder should be")
    uri = f"sqlite:///{project}/blocker/mlruns/mlflow.db"
    error = the_error(deepfake(command, project, MLFLOW_TRACKING_URI=uri))
    assert f"the MLflow tracking store {uri} cannot be created" in error
    assert f"{project / 'blocker'} is not a folder" in error
    assert "unset MLFLOW_TRACKING_URI" in error


def test_stores_that_answer_pass_and_others_are_left_to_mlflow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    check_tracking_store(f"sqlite:///{tmp_path}/new/folder/mlflow.db")  # creatable
    check_tracking_store("databricks")
    check_tracking_store("file:///nowhere/mlruns")
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        check_tracking_store(f"http://127.0.0.1:{server.getsockname()[1]}")
    # Through a proxy the client may get where this machine cannot: not probed.
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    check_tracking_store(f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with pytest.raises(UserError, match="does not answer"):
        check_tracking_store(f"http://127.0.0.1:{closed_port()}")


# --- the Prefect server --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "remedy"),
    [
        (["flow"], "unset PREFECT_API_URL to run on a temporary local server"),
        (["serve"], "point PREFECT_API_URL at a running one"),
    ],
    ids=["flow", "serve"],
)
def test_a_prefect_server_that_does_not_answer_is_one_error_line(
    project: Path, command: list[str], remedy: str
) -> None:
    url = f"http://127.0.0.1:{closed_port()}/api"
    # In a process of its own: Prefect reads its settings once, when it is first imported.
    error = the_error(deepfake_process(command, project, PREFECT_API_URL=url))
    assert error.startswith(f"error: the Prefect server at {url} does not answer")
    assert "make prefect-ui" in error and remedy in error


def test_a_prefect_server_set_in_the_profile_names_prefect_config(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    with pytest.raises(UserError, match="`prefect config unset PREFECT_API_URL`"):
        check_prefect_api(f"http://127.0.0.1:{closed_port()}/api")


# --- ports ---------------------------------------------------------------------------------


@pytest.mark.parametrize("server", ["app", "rest"])
def test_a_port_in_use_is_one_error_line_before_the_model_loads(
    project: Path, taken_port: int, server: str
) -> None:
    # No model exists here: the port is checked first, before anything loads.
    error = the_error(deepfake([server, "--port", str(taken_port)], project))
    assert error == f"error: port {taken_port} on 127.0.0.1 is in use; choose another with --port"


def test_a_host_that_is_not_this_machine_is_one_error_line() -> None:
    with pytest.raises(UserError, match="not an address of this machine"):
        check_port_free("192.0.2.1", free_port())  # TEST-NET-1: never a local address
    with pytest.raises(UserError, match="not an address of this machine"):
        check_port_free("no-such-host.invalid", free_port())
    check_port_free("127.0.0.1", free_port())
    check_port_free("127.0.0.1", 0)  # any free port: nothing to check


# --- params and data -----------------------------------------------------------------------

ANY_PARAMS = {
    "serve": ["serve"],
    "flow": ["flow"],
    "pipeline": ["pipeline"],
    "register_model": ["register_model"],
    "leave_one_group_out": ["leave_one_group_out"],
    "cross_dataset": ["cross_dataset"],
    "study_results": ["study_results"],
    "import_faces": ["import_faces"],
}


@pytest.mark.parametrize("command", list(ANY_PARAMS.values()), ids=list(ANY_PARAMS))
def test_an_unknown_params_key_is_one_error_line(project: Path, command: list[str]) -> None:
    params = project / "params.yaml"
    params.write_text(params.read_text() + "\nnot_a_section: 1\n")
    error = the_error(deepfake(command, project))
    assert error == "error: params.yaml: unknown key 'not_a_section'"


@pytest.mark.parametrize("study", ["leave_one_group_out", "cross_dataset"])
def test_a_study_without_its_faces_table_names_import_faces(project: Path, study: str) -> None:
    error = the_error(deepfake([study], project))
    assert "no faces table data/face_images/faces.csv" in error and "import_faces" in error


def test_import_faces_without_its_folder_names_the_key(project: Path) -> None:
    error = the_error(deepfake(["import_faces"], project))
    assert "face_images.root" in error and "no such folder" in error


@pytest.mark.slow
def test_a_flow_without_its_manifest_is_one_error_line_without_traceback(project: Path) -> None:
    """Prefect logs a failed flow's exception; for the project's own errors, without traceback."""
    params = project / "params.yaml"
    default = "manifest: data/demo/manifest.csv"
    assert default in params.read_text()
    params.write_text(params.read_text().replace(default, "manifest: data/nothing.csv", 1))
    for package in ("flows", "tasks"):  # a checkout's Prefect entry points
        shutil.copytree(REPO / package, project / package)
    result = deepfake_process(["flow", "--until", "download_videos"], project)
    assert the_error(result) == "error: data/nothing.csv: no such file"


def test_a_user_errors_log_record_keeps_its_traceback_only_at_debug(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    formatter = runtime._Formatter(runtime.LOG_FORMAT)

    def record_of(exc: Exception) -> logging.LogRecord:
        try:
            raise exc
        except Exception:
            return logging.LogRecord(
                "x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info()
            )

    assert "Traceback" not in formatter.format(record_of(UserError("fix this")))
    assert "Traceback" in formatter.format(record_of(RuntimeError("a bug")))
    monkeypatch.setattr(runtime, "chosen_level", logging.DEBUG)
    assert "Traceback" in formatter.format(record_of(UserError("fix this")))


# --- what main() does with what no command caught -------------------------------------------


def _raising(exc: Exception) -> Callable[[], None]:
    def app() -> None:
        raise exc

    return app


def test_a_user_error_no_command_caught_is_one_error_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "app", _raising(UserError("bad thing; do this")))
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    assert exit_.value.code == 2
    assert capsys.readouterr().err == "error: bad thing; do this\n"


def test_a_bug_is_one_line_that_says_where_its_traceback_is(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setattr(runtime, "chosen_level", None)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)  # TMPDIR read afresh
    monkeypatch.setattr(cli, "app", _raising(KeyError("boom")))
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("error: unexpected KeyError: 'boom' (a bug, not your input")
    (saved,) = tmp_path.glob("deepfake-traceback-*.txt")
    assert str(saved) in err and "Traceback" in saved.read_text()
    assert "KeyError: 'boom'" in saved.read_text()


def test_a_bug_at_verbose_raises_with_its_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "chosen_level", logging.DEBUG)
    monkeypatch.setattr(cli, "app", _raising(KeyError("boom")))
    with pytest.raises(KeyError, match="boom"):
        cli.main()


@pytest.mark.parametrize("command", [["flow"], ["serve"]], ids=["flow", "serve"])
def test_the_flow_outside_the_projects_checkout_is_one_error_line(
    project: Path, command: list[str]
) -> None:
    """The Prefect flow is the checkout's (`flows/`), not the installed library's."""
    error = the_error(deepfake(command, project))
    assert error.startswith(f"error: no flows/pipeline.py in {project.resolve()}")
    assert "in the project's checkout" in error


def test_a_summary_before_any_run_names_make_demo(project: Path) -> None:
    error = the_error(deepfake(["summary"], project))
    assert error.startswith("error: no finished pipeline run here") and "make demo" in error
