"""Shared fixtures: the shared real data, and a small throw-away copy of the project."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from reliability import Recorder, write_report

from deepfake_detector.core.runtime import prepare_environment

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SHARED_WEIGHTS = SHARED / "weights" / "mobilenet_v2_1.0_224_no_top.weights.h5"
BIN = Path(sys.executable).parent
pytest_plugins = ("fileserver",)  # the `server` fixture: a misbehaving HTTP server

prepare_environment(REPO)


def shared_path(*parts: str) -> Path:
    """A path under ../shared, or skip the test with the reason."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent: this test needs the shared real data (../shared)")
    return path


def run_env(project: Path) -> dict[str, str]:
    """Environment for subprocesses in a throw-away project: venv on PATH, own Prefect home."""
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PREFECT_HOME"] = str(project / ".prefect")
    env.pop("MLFLOW_TRACKING_URI", None)
    for who in ("AUTHOR", "COMMITTER"):
        env.setdefault(f"GIT_{who}_NAME", "tests")
        env.setdefault(f"GIT_{who}_EMAIL", "tests@localhost")
    return env


SMALL_LOAO = {
    "name": "leave_one_actor_out",
    "source": {"name": "dfd_faces", "faces": "data/face_images/faces.csv"},
    "val": "group",
    "val_share": 0.2,
    "candidates": [{"name": "default", "overrides": []}],
}
SMALL = {
    "demo": {
        "clips_per_identity": 2,
        "frames_per_clip": 12,
        "fps": 6.0,
        "width": 320,
        "height": 240,
    },
    "frames": {"count": 6},
    "faces": {"crop_size": 96, "min_face_size": 24},
    "split": {"train": 0.5, "val": 0.25, "test": 0.25},
    # The logistic head: on a few dozen faces of three people the MLP head's scores crowd the
    # threshold, and the serving tests need clear verdicts to check their mechanics. No
    # fine-tuning, as params.yaml ships (a study test runs it: `-S train.epochs=1`).
    "train": {"image_size": 96, "batch_size": 16, "head_epochs": 1, "epochs": 0, "patience": 1}
    | {"head": "logistic"},
    "evaluate": {"batch_size": 32},
    # One recipe, validated by a held-out group: the tests' projects have no extra face sets.
    "studies": {"leave_one_group_out": SMALL_LOAO},
}


def small_params(overrides: dict | None = None) -> dict:
    """The repository's params.yaml shrunk for tests (fewer, smaller clips; short training)."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for section, values in {**SMALL, **(overrides or {})}.items():
        params[section].update(values)
    params["train"]["imagenet_file"] = str(SHARED_WEIGHTS)
    if not SHARED_WEIGHTS.exists():
        params["train"]["base_weights"] = "none"
    return params


def make_project(dest: Path, overrides: dict | None = None) -> Path:
    """A runnable copy of the project (code, dvc.yaml, small params) with its own git and DVC."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("dvc.yaml",):
        shutil.copy(REPO / name, dest / name)
    for code in ("src", "flows", "tasks"):  # the library and the checkout's Prefect entry points
        shutil.copytree(
            REPO / code, dest / code, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
        )
    (dest / "params.yaml").write_text(yaml.safe_dump(small_params(overrides), sort_keys=False))
    env = run_env(dest)
    for cmd in (
        ["git", "init", "-q"],
        ["dvc", "init", "-q"],
        ["dvc", "config", "core.analytics", "false"],
        ["git", "add", "-A"],
        ["git", "commit", "-qm", "project under test"],
    ):
        subprocess.run(cmd, cwd=dest, check=True, env=env, capture_output=True)
    return dest


def run(cmd: list[str], project: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a command in the project; on failure show its output."""
    result = subprocess.run(cmd, cwd=project, env=run_env(project), capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} failed ({result.returncode}):\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result


def stages_run(output: str) -> list[str]:
    """Names of the stages DVC ran, from its 'Running stage' lines."""
    return [line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage")]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A fresh small project in a temp folder."""
    return make_project(tmp_path / "project")


FIRST_OUTPUT = "first-run-output.txt"
"""Beside a built project: what its first `dvc repro` printed."""


def build_project(request: pytest.FixtureRequest, dest: Path) -> tuple[Path, str]:
    """For a fixture of `BUILT`: a small project after a full `dvc repro`, and what it printed
    (also kept beside it, `FIRST_OUTPUT`)."""
    refuse_a_second_build(request)
    project = make_project(dest)
    result = run(["dvc", "repro"], project)
    output = result.stdout + result.stderr  # DVC's lines, then the stages' logs
    (project.parent / FIRST_OUTPUT).write_text(output)
    return project, output


@pytest.fixture(scope="session")
def trained_project(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Path:
    """A small project after a full `dvc repro`: a registered champion with its settings.
    Shared by the session: tests that change it work on a copy (`shutil.copytree`)."""
    project, _ = build_project(request, tmp_path_factory.mktemp("trained") / "project")
    return project


_RECORDER = Recorder()


@pytest.fixture(scope="session")
def reliability() -> Recorder:
    """Rows for RELIABILITY.md (see tests/reliability.py)."""
    return _RECORDER


BUILT = ("trained_project",)
"""The session fixture that runs the whole pipeline: built once, on one worker (fixtures that
work on a copy of it, like `repro` in test_pipeline_dvc, request it and so join it)."""
GROUP = "built_projects"


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own hook reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under pytest-xdist (`make test`), the tests of the built project (`BUILT`) share a worker,
    so it is built once; the other worker takes the rest. The whole-pipeline and load tests run
    untraced by coverage (`no_cover`): tracing their in-process Prefect, TensorFlow and HTTP
    clients made the suite about 40% slower; the coverage figure is that of the other tests."""
    for item in items:
        if any(fixture in getattr(item, "fixturenames", ()) for fixture in BUILT):
            item.add_marker(pytest.mark.xdist_group(GROUP))
        if item.get_closest_marker("slow") or item.get_closest_marker("load"):
            item.add_marker(pytest.mark.no_cover)


def refuse_a_second_build(request: pytest.FixtureRequest) -> None:
    """Fail a built project's fixture on a pytest-xdist worker whose group did not take.

    pytest-xdist marks a group by a suffix of the test's id; on a pytest where that suffix does
    not take (pytest 9.2, pytest-xdist#1386) the group would spread silently and each project
    would be built on both workers."""
    if not getattr(request.config.option, "loadgroup", False):  # not a --dist loadgroup worker
        return
    grouped = [
        item.nodeid for item in request.session.items if item.get_closest_marker("xdist_group")
    ]
    lost = [nodeid for nodeid in grouped if not nodeid.endswith(f"@{GROUP}")]
    if lost:
        pytest.fail(
            f"--dist loadgroup did not group {lost[0]} and {len(lost) - 1} more: this pytest "
            "and pytest-xdist do not work together (pytest-xdist#1386); install the locked "
            "dev set (make setup-dev)",
            pytrace=False,
        )


def pytest_testnodedown(node, error) -> None:  # type: ignore[no-untyped-def]
    """pytest-xdist: a worker is done; keep the rows it recorded."""
    for row in getattr(node, "workeroutput", {}).get("reliability", []):
        _RECORDER.add(**row)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--reliability-out",
        default=None,
        help="write the reliability rows this session records to this Markdown file "
        "(make reliability: RELIABILITY.md); without it the suite writes nothing",
    )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Merge the rows this session recorded into the `--reliability-out` file, if one is given
    (a pytest-xdist worker hands its rows to the controller instead, which writes them all)."""
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["reliability"] = [
            {
                "section": r.section,
                "case": r.case,
                "entry": r.entry,
                "expected": r.expected,
                "observed": r.observed,
                "ok": r.ok,
            }
            for r in _RECORDER.rows.values()
        ]
        return
    out = session.config.getoption("--reliability-out")
    if _RECORDER.rows and out:
        args = list(session.config.invocation_params.args)
        option = session.config.option
        chosen = session.config.args_source != pytest.Config.ArgsSource.TESTPATHS  # files given
        whole = not (
            option.keyword
            or option.markexpr
            or getattr(option, "lf", False)
            or option.deselect
            or chosen
        )
        command = " ".join(["pytest", *args])
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        write_report(Path(out), _RECORDER.rows, command, merge=not whole)
