"""params.yaml parses into typed models; unknown keys and bad values are refused by name."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import REPO

from deepfake_detector.config import ParamsError, load_params


def test_repository_params_load() -> None:
    params = load_params(REPO / "params.yaml")
    assert params.frames.count == 32
    assert params.faces.margin == pytest.approx(0.3)
    assert params.registry.tracking_uri == "sqlite:///mlruns/mlflow.db"


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
