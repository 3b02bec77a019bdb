"""Data versions shared through a DVC remote: push, lose everything local, pull, up to date."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from conftest import run

pytestmark = pytest.mark.slow


def _outputs(project: Path) -> list[Path]:
    """Every output DVC keeps in its cache (metrics, plots and reports marked `cache: false`
    are small and committed to git instead)."""
    from dvc.repo import Repo

    with Repo(str(project)) as repo:
        return [Path(out.fs_path) for out in repo.index.outs if out.use_cache]


def _hashes(paths: list[Path], project: Path) -> dict[str, str]:
    files = [f for p in paths for f in ([p] if p.is_file() else sorted(p.rglob("*")))]
    return {
        str(f.relative_to(project)): hashlib.sha256(f.read_bytes()).hexdigest()
        for f in files
        if f.is_file()
    }


def test_pipeline_outputs_pushed_to_a_local_remote_come_back_with_pull(
    trained_project: Path, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    shutil.copytree(trained_project, project, symlinks=True)
    outputs = _outputs(project)
    before = _hashes(outputs, project)
    assert len(outputs) >= 8 and before
    remote = tmp_path / "remote"
    run(["dvc", "remote", "add", "--default", "shared", str(remote)], project)

    run(["dvc", "push"], project)
    assert any(remote.rglob("*"))

    for path in outputs:
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    shutil.rmtree(project / ".dvc" / "cache")
    assert "deleted" in run(["dvc", "status"], project).stdout

    run(["dvc", "pull"], project)

    assert _hashes(outputs, project) == before
    status = run(["dvc", "status"], project).stdout
    assert "up to date" in status, status
