"""Generalisation studies: folds that never leak an identity, and the CLI and DVC runs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from conftest import REPO, SMALL_LOAO, make_project, run, shared_path, stages_run

from deepfake_detector.core.config import CropGeometry
from deepfake_detector.studies.folds import (
    Fold,
    StudyError,
    check_fold,
    group_folds,
    validation_split,
)


def _table() -> pd.DataFrame:
    """DFD-like faces: actors 1-4 with real videos; fakes `<target>_<source>`."""
    videos = [(f"real_{a}_{s}", "real", a, a) for a in "1234" for s in "ab"]
    videos += [
        (f"fake_{t}_{src}", "fake", t, f"{t};{src}")
        for t, src in (("1", "3"), ("2", "9"), ("3", "4"), ("4", "1"), ("1", "9"), ("2", "8"))
    ]
    videos += [("fake_3_7", "fake", "3", "3;7"), ("fake_4_6", "fake", "4", "4;6")]
    rows = [
        {"video_id": v, "frame_index": i, "label": label, "group": g, "identities": ids}
        for v, label, g, ids in videos
        for i in range(3)
    ]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("val", ["group", "video"])
def test_each_fold_holds_out_one_identity_everywhere(val: str) -> None:
    table = _table()
    folds = group_folds(table, val, 0.25, seed=0)
    assert [f.name for f in folds] == ["1", "2", "3", "4"]
    for fold in folds:
        check_fold(fold)
        assert set(fold.test["group"]) == {fold.name}
        seen = ";".join(pd.concat([fold.train, fold.val])["identities"]).split(";")
        assert fold.name not in seen  # not as a real actor, not as a swapped-in face
        assert len(fold.train) + len(fold.val) + len(fold.test) + fold.excluded == len(table)
    # Actor 3's face is in fake_1_3: that fake trains no model that is tested on actor 3.
    fold3 = folds[2]
    assert "fake_1_3" not in set(fold3.train["video_id"]) | set(fold3.val["video_id"])


def test_validation_by_group_or_by_video() -> None:
    table = _table()
    train, val, dropped = validation_split(table, "group", 0.2, seed=0)
    (held,) = set(val["group"])
    assert held not in ";".join(train["identities"]).split(";")
    assert len(train) + len(val) + dropped == len(table)
    train, val, dropped = validation_split(table, "video", 0.25, seed=0)
    assert dropped == 0 and not set(train["video_id"]) & set(val["video_id"])
    assert set(val["label"]) == {"real", "fake"}


def test_leaks_and_impossible_studies_are_refused() -> None:
    table = _table()
    fold = group_folds(table, "group", 0.2, seed=0)[0]
    leaky = Fold(fold.name, pd.concat([fold.train, fold.test.head(1)]), fold.val, fold.test)
    with pytest.raises(StudyError, match="videos in train and test"):
        check_fold(leaky)
    swapped = table[table["video_id"] == "fake_4_1"]  # carries actor 1's face
    with pytest.raises(StudyError, match="carries a test identity"):
        check_fold(Fold(fold.name, pd.concat([fold.train, swapped]), fold.val, fold.test))
    with pytest.raises(StudyError, match="at least 3 groups"):
        group_folds(table[table["group"].isin(["1", "2"])], "group", 0.2, seed=0)


# --- the commands, on the real DFD face crops (small, untrained-weights model) ---------------

TINY = {
    # The repository's recipe (the MLP head alone, no fine-tuning) at 48 px with 8 hidden
    # units: these test the studies' mechanics.
    "train": {"image_size": 48, "batch_size": 32, "head_epochs": 1, "epochs": 0}
    | {"fine_tune_layers": 5, "base_weights": "none", "patience": 1, "head_hidden": 8},
    "evaluate": {"bootstrap": 40, "batch_size": 64},
}


@pytest.fixture(scope="module")
def faces_subset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every fourth crop of each DFD video (same names, so the same groups), as symlinks."""
    source = shared_path("data", "dfd", "faces")
    dest = tmp_path_factory.mktemp("faces") / "dfd_faces"
    for label in ("real", "fake"):
        (dest / label).mkdir(parents=True)
        for i, path in enumerate(sorted((source / label).glob("*.jpg"))):
            if i % 4 == 0:
                (dest / label / path.name).symlink_to(path)
    return dest


@pytest.mark.slow
def test_leave_one_actor_out_from_the_cli_writes_a_report_and_mlflow_runs(
    faces_subset: Path, tmp_path: Path
) -> None:
    dfdc = shared_path("data", "dfdc_faces")
    nested = {
        "leave_one_group_out": SMALL_LOAO
        | {
            "val": "extra",  # the DFDC crops' validation groups validate; every actor trains
            "val_self_blends": True,  # with a self-blend of each validation real face
            "candidates": [
                {"name": "head", "overrides": []},
                {
                    "name": "head_std",
                    "overrides": [
                        "train.pooled_layers=[block_6_expand_relu]",
                        "train.pooling=mean_std",
                    ],
                },
            ],
        }
    }
    extra = [{"name": "dfdc_faces", "root": str(dfdc), "limit": 40, "val_share": 0.5}]
    project = make_project(
        tmp_path / "project",
        TINY
        | {
            "face_images": {"root": str(faces_subset)},
            "studies": nested,
            "split": {"extra_faces": extra},
        },
    )
    out = run(["deepfake", "import_faces"], project).stdout
    assert json.loads(out[out.index("{") :])["counts"]["groups"] == 4
    run(["deepfake", "leave_one_group_out", "-S", "evaluate.tta_flip=true"], project)
    report_dir = project / "studies" / "reports" / "leave_one_actor_out"
    folds = pd.read_csv(report_dir / "folds.csv", dtype={"fold": str})
    assert folds["fold"].tolist() == ["01", "02", "03", "04"]
    assert (folds["test_videos"] == 4).all() and (folds["train_videos"] >= 3).all()
    # Nested: both recipes trained in every fold; each fold's result is its best on validation.
    candidates = pd.read_csv(report_dir / "candidates.csv", dtype={"fold": str})
    assert len(candidates) == 8 and set(candidates["candidate"]) == {"head", "head_std"}
    for fold, rows in candidates.groupby("fold"):
        best = rows.loc[rows["val_frame_auc"].idxmax()]
        assert bool(best["chosen"]) and rows["chosen"].sum() == 1
        row = folds[folds["fold"] == fold].iloc[0]
        assert row["recipe"] == best["candidate"]
        assert row["frame_auc"] == pytest.approx(best["test_frame_auc"])
    text = (report_dir / "report.md").read_text()
    assert "Choice of recipe (nested)" in text and "pooled frame AUC" in text
    assert "one self-blended pseudo-fake of each validation real face" in text
    assert "deepfake leave_one_group_out -S evaluate.tta_flip=true" in text
    assert "| evaluate.tta_flip | True |" in text and (report_dir / "roc.png").stat().st_size
    breakdown = pd.read_csv(report_dir / "breakdown.csv")
    assert set(breakdown["scope"]) == {"all", "dataset", "method"}
    summary = json.loads((report_dir / "metrics.json").read_text())
    assert summary["mean_video_auc"] == pytest.approx(folds["video_auc"].mean())
    stage_report = json.loads((report_dir / "report.json").read_text())
    details = stage_report["details"]
    assert details["chosen_recipe"] in {"head", "head_std"} and details["recipe_key"]
    blends = list((project / "data" / "studies" / "self_blends").glob("*/*.png"))
    assert len(blends) == stage_report["counts"]["validation_self_blends"] > 0

    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlruns' / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["deepfake-studies"])
    parents = runs[runs["tags.mlflow.parentRunId"].isna()]
    assert len(parents) == 1 and len(runs) == 5  # the study and its four folds
    assert parents.iloc[0]["params.evaluate.tta_flip"] == "True"
    assert parents.iloc[0]["metrics.mean_video_auc"] == pytest.approx(summary["mean_video_auc"])

    run(["deepfake", "study_results", "--out", "studies/RESULTS.md"], project)
    table = (project / "studies" / "RESULTS.md").read_text()
    assert "| leave_one_group_out | leave_one_actor_out | FINISHED |" in table

    bad = run(["deepfake", "leave_one_group_out", "-S", "train.epochz=2"], project, check=False)
    assert bad.returncode == 2 and "unknown key 'train.epochz'" in bad.stderr


@pytest.mark.slow
def test_a_study_runs_from_dvc_exp_run(faces_subset: Path, tmp_path: Path) -> None:
    demo_only = {
        "cross_dataset": {
            "name": "cross_dataset",
            "train": {"name": "dfd_faces", "faces": "data/face_images/faces.csv"},
            "test": [{"name": "demo", "manifest": "data/demo/manifest.csv"}],
            "val": "group",
            "val_share": 0.2,
        },
        "leave_one_group_out": SMALL_LOAO,
    }
    project = make_project(
        tmp_path / "project",
        TINY
        | {
            "face_images": {"root": str(faces_subset)},
            "studies": demo_only,
            "split": {"extra_faces": []},  # the studies' mechanics: the own faces suffice
        },
    )
    shutil.copytree(REPO / "studies", project / "studies", ignore=shutil.ignore_patterns("reports"))
    shutil.copytree(REPO / "data" / "manifests", project / "data" / "manifests")
    run(["git", "add", "-A"], project)
    run(["git", "commit", "-qm", "studies"], project)
    out = run(
        ["dvc", "exp", "run", "studies/dvc.yaml:cross_dataset", "-S", "train.epochs=1"],
        project,
    ).stdout
    assert sorted(stages_run(out)) == [
        "make_demo_videos",  # the main pipeline's stage that makes the demo test set
        "studies/dvc.yaml:cross_dataset",
        "studies/dvc.yaml:import_faces",
    ]
    report_dir = project / "studies" / "reports" / "cross_dataset"
    breakdown = pd.read_csv(report_dir / "breakdown.csv")
    assert set(breakdown.loc[breakdown["scope"] == "dataset", "name"]) == {"demo"}
    folds = pd.read_csv(report_dir / "folds.csv")
    # The experiment's setting reached the study: the head, then one epoch of fine-tuning.
    assert folds["test_videos"].item() == 12 and folds["epochs"].item() == 2
    # Test videos were cropped the way the training crops were cut: without margin.
    crops = project / "data" / "studies" / "sources" / "demo" / "faces_box_margin0"
    assert (crops / "faces.csv").is_file()
    # The same experiment again: nothing to do.
    again = run(
        ["dvc", "exp", "run", "studies/dvc.yaml:cross_dataset", "-S", "train.epochs=1"],
        project,
    ).stdout
    assert stages_run(again) == []
    # The study's metrics are DVC's (the leave-one-actor-out study's mechanics: the CLI test).
    metrics = run(["dvc", "metrics", "show", "--json"], project).stdout
    assert "mean_video_auc" in metrics and "pooled_frame_auc" in metrics


@pytest.mark.slow
def test_pipeline_starts_from_face_images_without_the_video_stages(
    faces_subset: Path, tmp_path: Path
) -> None:
    # Another set beside the own faces: a quarter of its groups validates, a quarter tests.
    dfdc = {"name": "dfdc_faces", "root": str(shared_path("data", "dfdc_faces")), "limit": 40}
    dfdc |= {"val_share": 0.25, "test_share": 0.25}
    overrides = TINY | {
        "face_images": {"root": str(faces_subset)},
        "split": {"faces_dir": "data/face_images", "train": 0.5, "val": 0.25, "test": 0.25}
        | {"extra_faces": [dfdc]},
    }
    project = make_project(tmp_path / "project", overrides)
    shutil.copytree(REPO / "studies", project / "studies", ignore=shutil.ignore_patterns("reports"))
    run(["git", "add", "-A"], project)
    run(["git", "commit", "-qm", "studies"], project)
    out = run(["dvc", "repro", "register_model"], project).stdout
    assert sorted(stages_run(out)) == [
        "evaluate_model",
        "register_model",
        "split_dataset",
        "studies/dvc.yaml:import_faces",
        "train_model",
    ]
    split = pd.read_csv(project / "data" / "processed" / "split.csv", dtype={"group": str})
    assert split.groupby("group")["split"].nunique().max() == 1
    assert all((project / "data" / "processed" / f).resolve().is_file() for f in split["file"])
    inference = json.loads((project / "models" / "evaluation" / "inference.json").read_text())
    assert inference["faces"]["margin"] == 0.0  # as the crops were cut, not faces.margin
    metrics = json.loads((project / "models" / "evaluation" / "metrics.json").read_text())
    # One DFD actor's four videos and five DFDC source videos (ten crops) test.
    assert metrics["video"]["n"] == 4 + 10 and "auc_low" in metrics["video"]
    assert sorted(metrics["datasets"]) == ["dfd", "dfdc_faces"]
    assert metrics["datasets"]["dfdc_faces"]["n"] == 10
    assert "auc_low" in metrics["datasets"]["dfd"]
    assert split.loc[split["dataset"] == "dfdc_faces", "split"].value_counts()["test"] == 10


def test_an_empty_test_side_is_refused() -> None:
    fold = group_folds(_table(), "group", 0.2, seed=0)[0]
    with pytest.raises(StudyError, match="empty test set"):
        check_fold(Fold(fold.name, fold.train, fold.val, fold.test.head(0)))


def test_each_kind_of_forgery_counts_alike_in_the_validation_auc() -> None:
    """Learned-swap fakes all caught, self-blends all missed: 0.5, however many of each."""
    from types import SimpleNamespace

    from deepfake_detector.studies.folds import SELF_BLEND
    from deepfake_detector.studies.nested import validation_auc

    def rows(prefix: str, label: str, scores: list[float]) -> list[dict]:
        return [
            {"video_id": f"{prefix}{i}", "frame_index": 0, "label": label, "group": "g"}
            | {"p_raw": p}
            for i, p in enumerate(scores)
        ]

    reals = rows("real", "real", [0.2, 0.3, 0.4, 0.5])
    swaps = rows("swap", "fake", [0.9, 0.8])
    blends = rows(f"{SELF_BLEND}:real", "fake", [0.1] * 10)
    val = pd.DataFrame(reals + swaps + blends)
    assert validation_auc(SimpleNamespace(val=val)) == pytest.approx(0.5)  # type: ignore[arg-type]
    only_swaps = pd.DataFrame(reals + swaps)
    assert validation_auc(SimpleNamespace(val=only_swaps)) == pytest.approx(1.0)  # type: ignore[arg-type]


def test_validation_self_blends_are_written_once_beside_their_source(tmp_path: Path) -> None:
    """One seeded PNG pseudo-fake per real face, same person and group, fake label; a second
    call finds them and leaves the files alone; only validation reals get one."""
    import numpy as np
    from PIL import Image

    from deepfake_detector.core.config import load_params
    from deepfake_detector.core.reports import StageReport
    from deepfake_detector.studies.folds import SELF_BLEND, add_self_blends

    crops = sorted(shared_path("data", "dfd", "faces", "real").glob("*.jpg"))[:3]
    val = pd.DataFrame(
        {
            "path": crops,
            "video_id": [f"v{i}" for i in range(3)],
            "frame_index": 0,
            "label": "real",
            "y": 0.0,
            "group": ["01", "01", "02"],
            "identities": ["01", "01", "02"],
        }
    )
    fake = val.head(1).assign(label="fake", y=1.0, video_id="f0")
    fold = Fold("03", val.head(0), pd.concat([val, fake], ignore_index=True), val.head(0))
    params = load_params(REPO / "params.yaml").model_copy(deep=True)
    params = params.model_copy(update={"studies": {**params.studies, "work_dir": "work"}})
    report = StageReport("t")
    (out,) = add_self_blends([fold], params, tmp_path, CropGeometry("box", 0.0), report)
    blends = out.val[out.val["video_id"].str.startswith(SELF_BLEND + ":")]
    assert len(blends) == 3 == report.counts["validation_self_blends"]
    assert set(blends["label"]) == {"fake"} and list(blends["group"]) == ["01", "01", "02"]
    files = sorted((tmp_path / "work" / "self_blends").glob("*/*.png"))
    assert len(files) == 3
    stamps = [f.stat().st_mtime_ns for f in files]
    first = np.asarray(Image.open(files[0]))
    source = np.asarray(Image.open(crops[0]).convert("RGB").resize((224, 224)))
    assert first.shape == (224, 224, 3) and np.abs(first.astype(int) - source).max() > 10
    add_self_blends([fold], params, tmp_path, CropGeometry("box", 0.0), StageReport("t"))
    assert [f.stat().st_mtime_ns for f in files] == stamps
