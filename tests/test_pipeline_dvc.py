"""The whole DAG through the real `dvc` CLI on a small demo set, ending in a registered champion.

That every stage gives the same bytes when run again from nothing (nothing of a run, its time,
host or MLflow ids, gets into what DVC hashes) is checked by CI at full size, on a fresh machine:
`.ci/run` runs `make demo` and then `git diff --exit-code dvc.lock` against the committed lock,
the demo clips' hashes included."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import FIRST_OUTPUT, REPO, run, stages_run

from deepfake_detector.core.artifacts import CONFUSIONS, CURVES, FIGURE_FILE, RELIABILITY_FILE
from deepfake_detector.core.dag import STAGES
from deepfake_detector.core.reports import read_report
from deepfake_detector.core.study_table import STUDY_FIGURE

pytestmark = pytest.mark.slow

ALL = list(STAGES)


@pytest.fixture(scope="module")
def repro(trained_project: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A copy of the session's built project (the experiment below moves it on) and what its
    first `dvc repro` printed."""
    project = tmp_path_factory.mktemp("dvc") / "project"
    shutil.copytree(trained_project, project, symlinks=True)
    return project, (trained_project.parent / FIRST_OUTPUT).read_text()


def test_first_repro_runs_every_stage_and_registers_a_champion(repro: tuple[Path, str]) -> None:
    project, output = repro
    assert stages_run(output) == ALL
    registration = read_report(project / "models/registration")
    assert registration["run"]["decision"] == "champion"
    assert registration["details"]["alias_uri"] == "models:/deepfake-detector@champion"
    metrics = json.loads((project / "models/evaluation/metrics.json").read_text())
    assert set(metrics) == {
        "frame",
        "video",
        "datasets",
        "operating_point",
        "abstention",
        "risk_coverage",
    }
    assert metrics["operating_point"]["target_fpr"] == 0.05
    assert set(metrics["datasets"]) == {"demo"}  # the demo trains on its own data alone
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
    # What a person reads: a few lines a stage, no warning that is no problem, no report dumps.
    lines = [line for line in output.split("\n") if line.strip()]  # a progress bar: one line
    assert not [line for line in lines if "WARNING" in line or "Warning" in line], output
    assert not [line for line in lines if line.strip() in ("{", "}")], output
    assert len(lines) <= 60, output
    summary = run(["deepfake", "summary"], project).stdout.splitlines()
    assert summary[0] == "Registered models:/deepfake-detector/1 as champion."
    assert summary[1].startswith("Test split: frame AUC ") and "video AUC" in summary[1]
    assert summary[2] == "Next:" and summary[-1].lstrip().startswith("dvc exp run register_model")
    assert len(summary) <= 8


def test_second_repro_does_nothing(repro: tuple[Path, str]) -> None:
    project, _ = repro
    output = run(["dvc", "repro"], project).stdout
    assert stages_run(output) == []
    assert "up to date" in run(["dvc", "status"], project).stdout


def test_editing_a_study_leaves_the_pipeline_up_to_date(repro: tuple[Path, str]) -> None:
    """A study's param and its name changed in params.yaml: no pipeline stage is stale."""
    project, _ = repro
    path = project / "params.yaml"
    before = path.read_text()
    values = yaml.safe_load(before)
    study = values["studies"]["leave_one_dataset_out"]
    study["name"] = "renamed_study"
    study["val_share"] = 0.3
    values["studies"]["experiment"] = "other-studies"
    try:
        path.write_text(yaml.safe_dump(values, sort_keys=False))
        status = run(["dvc", "status", "dvc.yaml"], project).stdout
    finally:
        path.write_text(before)
    assert "up to date" in status, status


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


def test_cropping_param_reruns_cropping_and_after(repro: tuple[Path, str]) -> None:
    project, _ = repro
    output = run(["dvc", "exp", "run", "-S", "faces.margin=0.25"], project).stdout
    # New crops, same faces table (boxes do not depend on the margin): DVC re-runs what reads the
    # crops, and the split, which joins other sets only when they frame faces like the own crops.
    assert stages_run(output) == [
        "crop_faces",
        "split_dataset",
        "train_model",
        "evaluate_model",
        "register_model",
    ]
    # A second version, champion only if it beats the first on the test split. (Which stages
    # each param re-runs is checked for every key without a run: test_dag.)
    registration = read_report(project / "models/registration")["run"]
    assert registration["version"] == "2"
    previous = registration["previous_champion_frame_auc"]
    score = registration["frame_auc"]
    better = score is not None and round(score, 6) > previous
    assert registration["decision"] == ("champion" if better else "challenger")


def plots_shown(project: Path, out: Path) -> dict[str, list[dict]]:
    """`dvc plots show --json`: plot id -> renderers; fails on any warning DVC prints."""
    result = run(["dvc", "plots", "show", "--json", "-o", str(out)], project)
    assert "WARNING" not in result.stdout + result.stderr, result.stderr
    shown: dict[str, list[dict]] = json.loads(result.stdout)["data"]
    return shown


def test_dvc_plots_show_draws_each_table_once_without_warnings(
    repro: tuple[Path, str], tmp_path: Path
) -> None:
    from deepfake_detector.core.dvc_yaml import PLOTS

    project, _ = repro
    shown = plots_shown(project, tmp_path)
    figure = f"models/evaluation/{FIGURE_FILE}"
    # One plot per definition and the figure: no table drawn again on its own.
    assert set(shown) == {title for title, *_ in PLOTS} | {figure}, sorted(shown)
    assert [r["type"] for r in shown[figure]] == ["image"]
    drawn: list[str] = []
    for title, _, _, _, files in PLOTS:
        (renderer,) = shown[title]
        values = renderer["content"]["data"]["values"]
        if len(files) > 1:  # DVC names each point's file when a plot has several
            assert {v["filename"] for v in values} == set(files), title
        else:
            rows = len((project / "models/evaluation" / files[0]).read_text().splitlines()) - 1
            assert len(values) == rows > 0, title
        drawn += files
    # Every curve and confusion table is in exactly one plot; frame and video ROC share one.
    assert sorted(drawn) == sorted((*CURVES, *CONFUSIONS, RELIABILITY_FILE))
    assert any(set(f) == {"roc_frame.csv", "roc_video.csv"} for *_, f in PLOTS)


def test_the_repository_plots_render_on_a_clean_checkout(tmp_path: Path) -> None:
    """What is committed draws without a run: the evaluation's tables and figure, and the
    studies' ROC figures as images."""
    shown = plots_shown(REPO, tmp_path)
    images = sorted(i for i, r in shown.items() if r[0]["type"] == "image")
    assert f"models/evaluation/{FIGURE_FILE}" in images
    assert any(i.startswith("studies/reports/") and i.endswith(STUDY_FIGURE) for i in images)
    assert all(r[0]["type"] in ("vega", "image") for r in shown.values())


def test_the_version_registered_quotes_the_studies_as_their_reports_stand(
    repro: tuple[Path, str],
) -> None:
    """The evaluation quotes no study, so a study's new run changes nothing DVC tracks (and
    `dvc status` says so truly); registration reads the reports as they stand and the version
    carries them: in its inference settings and its model card."""
    from deepfake_detector.core.config import load_params
    from deepfake_detector.recipes.assessment import recipe_key
    from deepfake_detector.stages.register import registered_inference, workspace_card

    project, _ = repro
    params = load_params(project / "params.yaml")
    evaluation = json.loads((project / "models/evaluation/inference.json").read_text())
    assert not evaluation.get("study")
    assert registered_inference(params, project)["study"] == {}  # no report: nothing quoted
    folder = project / params.studies["reports_dir"] / params.studies["leave_one_group_out"]["name"]
    folder.mkdir(parents=True)
    try:
        (folder / "metrics.json").write_text(json.dumps({"pooled_frame_auc": 0.91, "folds": 4}))
        (folder / "report.json").write_text(
            json.dumps({"details": {"recipe_key": recipe_key(params)}})
        )
        study = registered_inference(params, project)["study"]
        assert study["pooled_frame_auc"] == 0.91 and study["same_recipe"] is True
        assert workspace_card(params, project)["studies"]["pooled_frame_auc"] == 0.91
        assert "up to date" in run(["dvc", "status", "dvc.yaml"], project).stdout
    finally:
        shutil.rmtree(folder)
