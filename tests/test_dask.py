"""The flow's per-video stages fanned out over a real local Dask cluster with two workers.

The reference is the same stages run locally by `dvc repro`. The Dask run must give the same
files, spread the videos over both workers, and load MTCNN (and TensorFlow) once per worker,
however many videos each worker gets.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from conftest import make_project, run

pytestmark = pytest.mark.slow
pytest.importorskip(
    "distributed", reason="Dask is not installed: the [cluster] extra (make setup-dev)"
)
pytest.importorskip("prefect_dask", reason="prefect-dask is not installed: the [cluster] extra")

OUTPUTS = ("data/raw/videos", "data/interim/frames", "data/interim/faces")


def _files(project: Path) -> dict[str, str]:
    """sha256 of every output file of the per-video stages, reports (timings) aside."""
    out = {}
    for folder in OUTPUTS:
        for path in sorted((project / folder).rglob("*")):
            if path.is_file() and path.name != "report.json":
                out[str(path.relative_to(project))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


@pytest.fixture
def cluster() -> Iterator[str]:
    """A local Dask cluster: two worker processes of one thread each, on 127.0.0.1."""
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    ) as local:
        yield local.scheduler_address


@pytest.fixture
def harness(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from prefect.settings import PREFECT_LOCAL_STORAGE_PATH, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with (
        temporary_settings({PREFECT_LOCAL_STORAGE_PATH: str(tmp_path / "prefect-results")}),
        prefect_test_harness(server_startup_timeout=180),
    ):
        yield


def test_dask_workers_give_the_local_results_and_load_the_detector_once_each(
    tmp_path: Path, cluster: str, harness: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from distributed import Client

    from flows.pipeline import deepfake_pipeline

    small = {"demo": {"clips_per_identity": 1, "frames_per_clip": 12, "fps": 6.0}}
    project = make_project(tmp_path / "project", small)  # six clips: three to each worker
    run(["dvc", "repro", "crop_faces"], project)
    reference = _files(project)
    for folder in OUTPUTS:
        shutil.rmtree(project / folder)
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["flow"] = {"task_runner": "dask", "workers": 2, "dask_address": cluster}
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    monkeypatch.chdir(project)
    state = deepfake_pipeline(
        params_path="params.yaml", root=str(project), until="crop_faces", return_state=True
    )

    assert state.is_completed(), state.message
    reports = state.result()
    assert list(reports) == ["make_demo_videos", "download_videos", "extract_frames", "crop_faces"]
    assert _files(project) == reference
    videos = reports["crop_faces"]["counts"]["videos"]
    with Client(cluster) as client:
        loads = client.run(_mtcnn_loads)
    assert len(loads) == 2 and all(misses == 1 for misses, _ in loads.values()), loads
    assert sum(misses + hits for misses, hits in loads.values()) == videos > len(loads)
    status = run(["dvc", "status", "crop_faces"], project).stdout
    assert "changed" not in status, status


def _mtcnn_loads() -> tuple[int, int]:
    """In a worker: (times MTCNN was loaded, times the loaded one was reused)."""
    from deepfake_detector.sources.face_detection import _load_mtcnn

    info = _load_mtcnn.cache_info()
    return info.misses, info.hits
