"""params.yaml parses into typed models; unknown keys and bad values are refused by name."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import REPO
from pydantic import ValidationError

from deepfake_detector.core.config import FlowParams, Params, ParamsError, load_params


def test_the_code_defaults_are_the_shipped_params_in_every_value() -> None:
    # One recipe: a params file that leaves a key out gets params.yaml's value, and a test that
    # builds TrainParams() tests the model the project ships. The studies' section is read as
    # it stands and validated by its own schema (core.study_config), whose defaults agree too.
    from deepfake_detector.core.serve_config import ServeParams, serve_of
    from deepfake_detector.core.study_config import StudiesParams, studies_of

    shipped = load_params(REPO / "params.yaml")
    assert Params(studies=shipped.studies, serve=shipped.serve) == shipped
    assert StudiesParams() == studies_of(shipped)
    assert ServeParams() == serve_of(shipped)


def test_a_wrong_serve_key_is_named() -> None:
    from deepfake_detector.core.serve_config import serve_of

    shipped = load_params(REPO / "params.yaml")
    wrong = shipped.model_copy(update={"serve": {**shipped.serve, "max_images": 0}})
    with pytest.raises(ParamsError, match=r"'serve\.max_images'"):
        serve_of(wrong)


def test_a_wrong_study_key_is_named() -> None:
    from deepfake_detector.core.study_config import studies_of

    shipped = load_params(REPO / "params.yaml")
    wrong = shipped.model_copy(update={"studies": {**shipped.studies, "leave_one_grup_out": {}}})
    with pytest.raises(ParamsError, match=r"unknown key 'studies\.leave_one_grup_out'"):
        studies_of(wrong)


def test_the_parameter_reference_is_generated_from_params_and_code() -> None:
    from deepfake_detector.core.params_doc import params_reference

    page = (REPO / "docs" / "params.md").read_text()
    assert page == params_reference(REPO / "params.yaml"), "run `deepfake params_doc`"
    # Each key with its value and the comment params.yaml gives it; each section's docstring.
    assert "| `margin` | `0.3` | share of the face size added on each side |" in page
    assert "How `extract_frames` samples frames from each video." in page


def test_unknown_key_is_named(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("train:\n  epochz: 3\n")
    with pytest.raises(ParamsError, match=r"unknown key 'train\.epochz'"):
        load_params(path)


def test_bad_value_and_bad_file(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("faces:\n  keep: some\n")
    with pytest.raises(ParamsError, match=r"'faces\.keep'"):
        load_params(path)
    path.write_text("- a\n- b\n")
    with pytest.raises(ParamsError, match="mapping"):
        load_params(path)
    with pytest.raises(ParamsError, match="no such file"):
        load_params(tmp_path / "missing.yaml")


def test_params_are_frozen() -> None:
    params = load_params(REPO / "params.yaml")
    with pytest.raises(ValueError):
        params.train.epochs = 9  # type: ignore[misc]


def test_the_flow_task_runner_comes_from_params() -> None:
    from prefect.task_runners import ThreadPoolTaskRunner

    pytest.importorskip("prefect_dask", reason="prefect-dask is not installed: the [cluster] extra")
    from prefect_dask import DaskTaskRunner

    from flows.pipeline import task_runner_for

    threads = task_runner_for(FlowParams(workers=3))
    assert isinstance(threads, ThreadPoolTaskRunner) and threads._max_workers == 3
    local = task_runner_for(FlowParams(task_runner="dask", workers=2))
    assert isinstance(local, DaskTaskRunner) and local.address is None
    assert local.cluster_kwargs["n_workers"] == 2 and local.cluster_kwargs["host"] == "127.0.0.1"
    remote = task_runner_for(FlowParams(task_runner="dask", dask_address="tcp://10.0.0.5:8786"))
    assert remote.address == "tcp://10.0.0.5:8786"
    with pytest.raises(ValidationError):
        FlowParams(task_runner="ray")
