"""The `deepfake` command's conventions, and what a newcomer meets before any model exists."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
from conftest import BIN, REPO, run_env
from processes import free_port


def deepfake(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "deepfake"), *args],
        cwd=cwd,
        env=run_env(cwd),
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def fresh_clone(tmp_path: Path) -> Path:
    """What a fresh clone has before `make demo`: params.yaml, no registry, no trained model."""
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    (tmp_path / "x.jpg").write_bytes((REPO / "docs" / "app.png").read_bytes())
    return tmp_path


def test_version_comes_from_the_installed_metadata(tmp_path: Path) -> None:
    result = deepfake(["--version"], tmp_path)
    assert result.returncode == 0
    assert result.stdout.strip() == f"deepfake-detector {version('deepfake-detector')}"


def test_commands_are_accepted_with_hyphens(tmp_path: Path) -> None:
    hyphen = deepfake(["crop-faces", "--help"], tmp_path)
    assert hyphen.returncode == 0, hyphen.stderr
    assert "Crop the faces" in hyphen.stdout
    assert deepfake(["crop_faces", "--help"], tmp_path).returncode == 0


@pytest.mark.parametrize(
    "command",
    # Ports free for sure: the servers check theirs before the model.
    [["predict", "x.jpg"], ["app", "--port", "0"], ["export"], ["rest", "--port", "{free}"]],
    ids=["predict", "app", "export", "rest"],
)
def test_before_any_model_one_error_line_names_make_demo(
    fresh_clone: Path, command: list[str]
) -> None:
    result = deepfake([a.replace("{free}", str(free_port())) for a in command], fresh_clone)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert "make demo" in errors[0]


def test_an_unknown_params_key_is_one_error_line(fresh_clone: Path) -> None:
    params = fresh_clone / "params.yaml"
    params.write_text(params.read_text() + "\nnot_a_section: 1\n")
    result = deepfake(["predict", "x.jpg"], fresh_clone)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error:") and "not_a_section" in result.stderr


def test_choices_are_listed_and_match_what_the_library_takes(tmp_path: Path) -> None:
    from typing import get_args

    from deepfake_detector.cli.verdicts import Quantization, RuntimeChoice
    from deepfake_detector.inference.export import Quantize
    from deepfake_detector.inference.predict import Runtime

    assert [c.value for c in RuntimeChoice] == list(get_args(Runtime))
    assert [c.value for c in Quantization] == list(get_args(Quantize))
    shown = deepfake(["predict", "--help"], tmp_path).stdout
    assert all(name in shown for name in get_args(Runtime))
    refused = deepfake(["export", "--quantize", "int4"], tmp_path)
    assert refused.returncode == 2 and "int4" in refused.stderr


def test_a_users_own_prefect_home_is_kept(tmp_path: Path) -> None:
    """PREFECT_HOME set by the user (a saved API URL, a Cloud login) wins over the project's."""
    script = (
        "import os; from pathlib import Path; "
        "from deepfake_detector.core.runtime import prepare_environment; "
        "prepare_environment(Path('.')); print(os.environ['PREFECT_HOME'])"
    )
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_HOME"}
    mine = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env={**env, "PREFECT_HOME": "/home/me/.prefect"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert mine.stdout.strip() == "/home/me/.prefect"
    project = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert project.stdout.strip() == str((tmp_path / ".prefect").resolve())
