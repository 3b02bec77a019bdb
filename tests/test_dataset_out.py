"""Leave one dataset out: FaceForensics++ read by block, folds that hold a whole dataset or one
forgery method out of training and validation, and the levers the study weighs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import make_project, run, shared_path
from PIL import Image

from deepfake_detector.core.config import FaceSetParams, TrainParams
from deepfake_detector.recipes.training import row_weights, training_rows
from deepfake_detector.sources.face_sets import read_face_set
from deepfake_detector.studies.dataset_out import dataset_folds, method_folds
from deepfake_detector.studies.folds import check_fold


def _crops(root: Path, rows: list[dict]) -> Path:
    for i, row in enumerate(rows):
        (root / row["label"]).mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((8, 8, 3), i, "uint8")).save(root / row["file"])
    pd.DataFrame(rows).to_csv(root / "metadata.csv", index=False)
    return root


def test_a_set_is_split_by_its_group_column_and_pools_crops_into_videos(tmp_path: Path) -> None:
    """Two crops of one real video, one of each fake: blocks keep them together; the video
    columns name one video per target and method; the set's own method names the fakes."""
    rows = []
    for g, block in (("v1", "b1"), ("v2", "b1"), ("v3", "b2")):
        rows += [
            {"file": f"real/{g}_{i}.jpg", "label": "real", "group": g, "method": "original"}
            | {"block": block}
            for i in (0, 1)
        ]
        rows += [
            {"file": f"fake/{g}_{m}.jpg", "label": "fake", "group": g, "method": m, "block": block}
            for m in ("Deepfakes", "Face2Face")
        ]
    root = _crops(tmp_path / "ffpp", rows)
    face_set = FaceSetParams(
        name="ffpp", root=root, group_column="block", video_columns=("group", "method")
    )
    table = read_face_set(face_set, tmp_path)
    assert sorted(table["group"].unique()) == ["ffpp:b1", "ffpp:b2"]
    assert table["video_id"].nunique() == 9  # 3 real videos (2 crops each) + 6 fakes
    real = table[table["video_id"] == "ffpp:v1:original"]
    assert len(real) == 2 and sorted(real["frame_index"]) == [0, 1]
    assert set(table.loc[table["label"] == "fake", "method"]) == {"Deepfakes", "Face2Face"}
    assert set(table.loc[table["label"] == "real", "method"]) == {""}
    with pytest.raises(ValueError, match="missing columns"):
        read_face_set(face_set.model_copy(update={"group_column": "person"}), tmp_path)


def test_the_shared_faceforensics_crops_read_as_blocks_of_videos() -> None:
    root = shared_path("data", "ffpp_faces")
    face_set = FaceSetParams(
        name="ffpp", root=root, group_column="block", video_columns=("group", "method")
    )
    table = read_face_set(face_set, root.parent)
    assert len(table) == 2_860 and table["group"].nunique() == 75
    fakes = table[table["label"] == "fake"]
    assert set(fakes["method"]) == {"Deepfakes", "FaceSwap", "Face2Face"}
    # A real video's two crops are one video; a target video never spans two blocks.
    assert table.groupby("video_id")["group"].nunique().max() == 1
    assert table[table["label"] == "real"].groupby("video_id").size().median() == 2


def _dataset(name: str, n_groups: int, methods: tuple[str, ...]) -> pd.DataFrame:
    rows = []
    for g in range(n_groups):
        group = f"{name}:g{g}"
        rows.append({"video_id": f"{name}:r{g}", "label": "real", "group": group, "method": ""})
        rows += [
            {"video_id": f"{name}:{m}{g}", "label": "fake", "group": group, "method": m}
            for m in methods
        ]
    table = pd.DataFrame(rows).assign(
        frame_index=0, identities=lambda t: t["group"], dataset=name, real_only=False
    )
    groups = sorted(table["group"].unique())
    table["split"] = np.where(table["group"].isin(groups[: max(1, n_groups // 4)]), "val", "train")
    return table


def test_every_fold_keeps_its_dataset_or_method_out_of_training_and_validation() -> None:
    tables = {
        "dfd": _dataset("dfd", 4, ("DeepFakeDetection",)),
        "dfdc": _dataset("dfdc", 8, ("dfdc",)),
        "ffpp": _dataset("ffpp", 20, ("Deepfakes", "FaceSwap", "Face2Face")),
    }
    real_only = pd.DataFrame(
        {"video_id": ["utk:1"], "label": ["real"], "group": ["utk:1"], "dataset": ["utk"]}
    ).assign(real_only=True, split="train", identities="utk:1", frame_index=0, method="")
    columns = sorted(tables["ffpp"].columns)
    folds = dataset_folds(tables, real_only, columns)
    assert [f.name for f in folds] == ["dfd", "dfdc", "ffpp"]
    for fold in folds:
        check_fold(fold)
        assert set(fold.test["dataset"]) == {fold.name}
        assert fold.name not in set(fold.train["dataset"]) | set(fold.val["dataset"])
        assert "utk" in set(fold.train["dataset"]) and "utk" not in set(fold.val["dataset"])
    by_method = method_folds(tables, real_only, columns, "ffpp", 0.3, seed=0)
    assert [f.name for f in by_method] == ["ffpp-Deepfakes", "ffpp-Face2Face", "ffpp-FaceSwap"]
    for fold, method in zip(by_method, ["Deepfakes", "Face2Face", "FaceSwap"], strict=True):
        check_fold(fold)  # no test video or identity on the train or val side
        assert set(fold.test.loc[fold.test["label"] == "fake", "method"]) == {method}
        assert method not in set(fold.train["method"]) | set(fold.val["method"])
        assert fold.test["group"].nunique() == 6  # 0.3 of 20 groups
        trained = set(fold.train["method"])
        assert {"Deepfakes", "FaceSwap", "Face2Face"} - {method} <= trained
    with pytest.raises(ValueError, match="not one of the datasets"):
        method_folds(tables, real_only, columns, "celebdf", 0.3, seed=0)


def test_each_dataset_counts_alike_in_the_validation_auc() -> None:
    """Dataset a's fakes all caught, b's all missed (against b's own reals): 0.5, whatever
    the counts; scored against all reals pooled, b's would have looked half caught."""
    from types import SimpleNamespace

    from deepfake_detector.studies.nested import validation_auc

    def rows(dataset: str, label: str, scores: list[float]) -> list[dict]:
        return [
            {"video_id": f"{dataset}{label}{i}", "frame_index": 0, "label": label}
            | {"group": "g", "dataset": dataset, "p_raw": p}
            for i, p in enumerate(scores)
        ]

    val = pd.DataFrame(
        rows("a", "real", [0.1, 0.2])
        + rows("a", "fake", [0.9] * 8)
        + rows("b", "real", [0.7, 0.8])
        + rows("b", "fake", [0.3, 0.4])
    )
    assert validation_auc(SimpleNamespace(val=val)) == pytest.approx(0.5)  # type: ignore[arg-type]


def _train_rows() -> pd.DataFrame:
    rows = [
        {"path": f"a{i}.jpg", "y": 0.0, "dataset": "a", "video_id": f"a{i // 2}", "group": "a"}
        for i in range(8)
    ]
    rows += [
        {"path": f"b{i}.jpg", "y": float(i % 2), "dataset": "b", "video_id": f"b{i}", "group": "b"}
        for i in range(4)
    ]
    return pd.DataFrame(rows)


def test_equal_weighting_gives_each_dataset_label_and_video_the_same_weight() -> None:
    rows = _train_rows()
    weights = row_weights(rows)
    assert weights.mean() == pytest.approx(1.0)
    cells = pd.Series(weights).groupby([rows["dataset"], rows["y"]]).sum()
    assert np.allclose(cells, cells.iloc[0])  # a/real (8 crops), b/real (2), b/fake (2)
    a = weights[:8]
    assert np.allclose(a, a[0])  # four videos of two crops each: each crop half its video
    cfg = TrainParams(synthetic_fakes="mix", dataset_weighting="equal")
    prepared = training_rows(rows, cfg)
    assert prepared.weights is not None and len(prepared.weights) == len(prepared.y)
    unweighted = TrainParams(synthetic_fakes="mix", dataset_weighting="none")
    assert training_rows(rows, unweighted).weights is None


def test_part_blends_narrow_the_mask_to_one_facial_part_of_the_self_blends() -> None:
    from deepfake_detector.learning.synthetic import DEFAULT_ELLIPSE, PARTS, part_ellipse

    rows = _train_rows()
    face = training_rows(rows, TrainParams(synthetic_fakes="mix", blend_region="face"))
    parts = training_rows(rows, TrainParams(synthetic_fakes="mix", blend_region="parts"))
    both = training_rows(rows, TrainParams(synthetic_fakes="mix", blend_region="both"))
    blended = face.blend
    assert np.allclose(face.ellipses[blended], DEFAULT_ELLIPSE)
    assert parts.counts["synthetic_fakes_part"] == blended.sum() == 5
    assert both.counts["synthetic_fakes_part"] == 2  # every second (floor of half)
    allowed = np.array([part_ellipse(DEFAULT_ELLIPSE, p) for p in PARTS])
    for ellipse in parts.ellipses[blended]:
        assert np.isclose(allowed, ellipse).all(axis=1).any()
        assert ellipse[2] < DEFAULT_ELLIPSE[2] and ellipse[3] < DEFAULT_ELLIPSE[3]
    assert np.allclose(parts.ellipses[~blended], face.ellipses[~blended])  # reals untouched
    again = training_rows(rows, TrainParams(synthetic_fakes="mix", blend_region="parts"))
    assert np.array_equal(again.ellipses, parts.ellipses)  # seeded


@pytest.mark.slow
def test_leave_one_dataset_out_from_the_cli(tmp_path: Path) -> None:
    """Three small datasets: three dataset folds and one per FF++ method, each nested."""
    source = shared_path("data", "dfd", "faces")
    dfd = tmp_path / "dfd_faces"  # every sixth crop of each actor's videos (same names)
    for label in ("real", "fake"):
        (dfd / label).mkdir(parents=True)
        for path in sorted((source / label).glob("*.jpg"))[::6]:
            (dfd / label / path.name).symlink_to(path)
    ffpp = shared_path("data", "ffpp_faces")
    dfdc = shared_path("data", "dfdc_faces")
    utk = shared_path("data", "real_faces", "utkface")
    ffpp_set = {"name": "ffpp_faces", "root": str(ffpp), "limit": 100}
    ffpp_set |= {"group_column": "block", "video_columns": ["group", "method"]}
    study = {
        "name": "lodo_small",
        "datasets": [
            {"name": "dfd", "faces": "data/face_images/faces.csv"},
            {"name": "dfdc", "face_set": {"name": "dfdc_faces", "root": str(dfdc), "limit": 40}},
            {"name": "ffpp", "face_set": ffpp_set},
        ],
        "val_share": 0.25,
        "methods_of": "ffpp",
        "method_test_share": 0.4,
        # One recipe: the choice among several is the nested runner's, tested in test_studies.
        "candidates": [{"name": "default", "overrides": []}],
    }
    extra = [{"name": "utkface", "root": str(utk), "format": "real", "limit": 20}]
    project = make_project(
        tmp_path / "project",
        {
            "face_images": {"root": str(dfd)},
            "split": {"extra_faces": extra},
            "studies": {"leave_one_dataset_out": study},
            "train": {"image_size": 48, "epochs": 0, "base_weights": "none"}
            | {"augmented_views": 0, "head_hidden": 8},
            "evaluate": {"bootstrap": 20, "batch_size": 64, "tta_flip": False},
        },
    )
    run(["deepfake", "import_faces"], project)
    run(["deepfake", "leave_one_dataset_out"], project)
    out = project / "studies" / "reports" / "lodo_small"
    folds = pd.read_csv(out / "folds.csv")
    names = ["dfd", "dfdc", "ffpp", "ffpp-Deepfakes", "ffpp-Face2Face", "ffpp-FaceSwap"]
    assert folds["fold"].tolist() == names
    candidates = pd.read_csv(out / "candidates.csv")
    assert len(candidates) == 6 and candidates["chosen"].all()
    summary = json.loads((out / "metrics.json").read_text())
    for name in names:
        assert 0 <= summary[f"heldout_{name}_frame_auc"] <= 1
    dataset_mean = folds.set_index("fold").loc[names[:3], "frame_auc"].mean()
    assert summary["mean_heldout_dataset_frame_auc"] == pytest.approx(dataset_mean)
    text = (out / "report.md").read_text()
    assert "# Leave one dataset out" in text and "held-out dataset" in text


def test_a_group_kind_with_of_takes_the_plural_on_its_head() -> None:
    from deepfake_detector.sources.face_sets import _plural

    assert _plural("block of videos", 2) == "blocks of videos"
    assert _plural("block of videos", 1) == "block of videos"
    assert _plural("person", 3) == "people" and _plural("source video", 2) == "source videos"


def test_the_results_table_names_each_face_set_drawn_down_to_a_limit() -> None:
    from deepfake_detector.studies.results import _limits

    study = "[{'name': 'dfd', 'face_set': None}, {'name': 'dfdc', 'face_set': {'name': "
    study += "'dfdc_faces', 'limit': 0, 'recut': True}}]"
    extra = "[{'name': 'dfdc_faces', 'limit': 2000}, {'name': 'utkface', 'limit': 1000}]"
    assert _limits(study, extra) == "utkface 1000"  # the study's own DFDC set: all of it
    assert _limits("", extra) == "dfdc_faces 2000, utkface 1000"
    assert _limits("", "[{'name': 'ffpp_faces', 'limit': 0}]") == "none"
