"""The whole DAG through the real `dvc` CLI on a small demo set, ending in a registered champion."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import make_project, run, stages_run

from deepfake_detector.core.dag import STAGES

pytestmark = pytest.mark.slow

ALL = list(STAGES)


@pytest.fixture(scope="module")
def repro(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    project = make_project(tmp_path_factory.mktemp("dvc") / "project")
    return project, run(["dvc", "repro"], project).stdout


def test_first_repro_runs_every_stage_and_registers_a_champion(repro: tuple[Path, str]) -> None:
    project, output = repro
    assert stages_run(output) == ALL
    registration = json.loads((project / "models/registration/report.json").read_text())
    assert registration["details"]["decision"] == "champion"
    assert registration["details"]["alias_uri"] == "models:/deepfake-detector@champion"
    metrics = json.loads((project / "models/evaluation/metrics.json").read_text())
    assert set(metrics) == {"frame", "video"}
    for key in ("auc", "ap", "eer", "log_loss", "accuracy", "confusion_matrix"):
        assert key in metrics["frame"] and key in metrics["video"]
    for name in ("evaluation.png", "roc_video.csv", "pr_frame.csv", "predictions.csv"):
        assert (project / "models/evaluation" / name).stat().st_size > 0
    for folder in (
        "data/raw/videos",
        "data/interim/frames",
        "data/interim/faces",
        "data/processed",
    ):
        assert json.loads((project / folder / "report.json").read_text())["stage"]


def test_second_repro_does_nothing(repro: tuple[Path, str]) -> None:
    project, _ = repro
    output = run(["dvc", "repro"], project).stdout
    assert stages_run(output) == []
    assert "up to date" in run(["dvc", "status"], project).stdout


def test_champion_loads_from_the_registry(
    repro: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import base64

    import cv2
    import mlflow
    import numpy as np
    import pandas as pd

    project, _ = repro
    monkeypatch.chdir(project)
    mlflow.set_tracking_uri(f"sqlite:///{project}/mlruns/mlflow.db")
    split = pd.read_csv(project / "data/processed/split.csv")
    crops = [cv2.imread(str(project / "data/processed" / f)) for f in split["file"][:4]]
    faces = np.stack([cv2.cvtColor(c, cv2.COLOR_BGR2RGB) for c in crops]).astype("float32")
    # The Keras flavour: the network itself, uncalibrated P(fake) of face crops.
    p_keras = mlflow.keras.load_model("models:/deepfake-detector@champion").predict_on_batch(faces)
    assert p_keras.shape == (4, 1) and ((p_keras >= 0) & (p_keras <= 1)).all()
    # The pyfunc: the whole inference path on base64 image files, one result per image.
    frame = sorted((project / "data/interim/frames").glob("*/000000.jpg"))[0]
    encoded = base64.b64encode(frame.read_bytes()).decode()
    pyfunc = mlflow.pyfunc.load_model("models:/deepfake-detector@champion")
    (result,) = pyfunc.predict(pd.DataFrame({"image": [encoded]}))
    assert result["verdict"] in ("real", "fake") and len(result["faces"]) == 1
    assert result["model"]["name"] == "deepfake-detector" and result["model"]["version"]
    # It says what it knows: the demo set alone, and that it is the demo's model.
    assert result["model"]["demo"] is True
    assert result["model"]["trained_on"].startswith("learnt from ")
    assert "source clips of demo" in result["model"]["trained_on"]
    from mlflow import MlflowClient

    version = MlflowClient().get_model_version("deepfake-detector", result["model"]["version"])
    assert version.description.startswith("DEMO MODEL")


def test_training_param_reruns_training_and_after(repro: tuple[Path, str]) -> None:
    project, _ = repro
    output = run(["dvc", "exp", "run", "-S", "train.epochs=2"], project).stdout
    assert stages_run(output) == ["train_model", "evaluate_model", "register_model"]
    registration = json.loads((project / "models/registration/report.json").read_text())["details"]
    assert registration["version"] == "2"
    previous = registration["previous_champion_frame_auc"]
    score = registration["frame_auc"]
    better = score is not None and round(score, 6) > previous
    assert registration["decision"] == ("champion" if better else "challenger")


def test_cropping_param_reruns_cropping_and_after(repro: tuple[Path, str]) -> None:
    project, _ = repro
    output = run(["dvc", "exp", "run", "-S", "faces.margin=0.25"], project).stdout
    # New crops, same faces table (boxes do not depend on the margin): DVC re-runs what reads the
    # crops and skips the split, whose only input did not change.
    assert stages_run(output) == ["crop_faces", "train_model", "evaluate_model", "register_model"]
