"""Face sets of other people: read, sampled by whole groups, split into train and val only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import shared_path
from PIL import Image

from deepfake_detector.core.config import CropGeometry, FaceSetParams
from deepfake_detector.core.reports import StageReport
from deepfake_detector.sources.face_sets import (
    FaceSetError,
    face_sets_table,
    read_face_set,
    training_summary,
    with_face_sets,
)


def _set(tmp_path, n_groups: int = 10):
    root = tmp_path / "set"
    rows = []
    for g in range(n_groups):
        for label in ("real", "fake"):
            (root / label).mkdir(parents=True, exist_ok=True)
            name = f"{label}/{label}{g}.jpg"
            Image.fromarray(np.full((8, 8, 3), g, "uint8")).save(root / name)
            rows.append({"file": name, "label": label, "group": f"src{g}"})
    pd.DataFrame(rows).to_csv(root / "metadata.csv", index=False)
    return root


def test_metadata_set_keeps_a_fake_with_its_source_and_never_tests(tmp_path):
    root = _set(tmp_path)
    params = FaceSetParams(name="other", root=root, limit=12, val_share=0.34)
    table = face_sets_table(
        (params,), tmp_path, seed=0, geometry=CropGeometry("box", 0.0), report=StageReport("t")
    )
    assert len(table) == 12 and table["group"].str.startswith("other:").all()
    assert set(table["split"]) == {"train", "val"}  # never test
    assert (table.groupby("group")["split"].nunique() == 1).all()  # whole groups
    assert (table.groupby("group")["label"].nunique() == 2).all()  # fake beside its source
    again = face_sets_table(
        (params,), tmp_path, seed=0, geometry=CropGeometry("box", 0.0), report=StageReport("t")
    )
    assert table["file"].tolist() == again["file"].tolist()


def test_a_set_cut_with_another_margin_or_missing_is_skipped_with_the_reason(tmp_path):
    root = _set(tmp_path)
    report = StageReport("t")
    sets = (
        FaceSetParams(name="wide", root=root, margin=0.3),
        FaceSetParams(name="gone", root=tmp_path / "nowhere"),
    )
    table = pd.DataFrame({"file": ["a.jpg"], "label": ["real"], "group": ["1"], "split": ["test"]})
    extra = face_sets_table(sets, tmp_path, 0, CropGeometry("box", 0.0), report)
    assert extra.empty and with_face_sets(table, extra, tmp_path).equals(table)
    reasons = {s["item"]: s["reason"] for s in report.to_dict()["skipped"]}
    assert "margin 0.3" in reasons["wide"] and "no such folder" in reasons["gone"]


def test_real_only_folder_and_a_bad_metadata_file(tmp_path):
    root = tmp_path / "reals"
    root.mkdir()
    for i in range(3):
        Image.fromarray(np.zeros((8, 8, 3), "uint8")).save(root / f"{i}_0_0_x.jpg")
    table = read_face_set(FaceSetParams(name="r", root=root, format="real"), tmp_path)
    assert set(table["label"]) == {"real"} and table["group"].nunique() == 3
    bad = _set(tmp_path)
    pd.DataFrame({"file": ["x.jpg"], "label": ["maybe"], "group": ["g"]}).to_csv(
        bad / "metadata.csv", index=False
    )
    with pytest.raises(FaceSetError, match="labels other than real/fake"):
        read_face_set(FaceSetParams(name="b", root=bad), tmp_path)


def test_training_summary_counts_people_and_groups():
    table = pd.DataFrame(
        {
            "dataset": ["dfd"] * 3 + ["dfdc_faces"] * 2,
            "group": ["01", "02", "02", "dfdc_faces:a", "dfdc_faces:a"],
            "label": ["real", "fake", "real", "real", "fake"],
        }
    )
    from deepfake_detector.sources.face_sets import _plural

    assert [_plural(n, 2) for n in ("person", "identity", "day", "source video")] == [
        "people",
        "identities",
        "days",
        "source videos",
    ]
    summary = training_summary(table, {"dfdc_faces": "source video"})
    assert summary["datasets"]["dfd"] == {
        "faces": 3,
        "real_faces": 2,
        "fake_faces": 1,
        "groups": 2,
        "group_kind": "person",
    }
    assert summary["summary"] == (
        "learnt from 2 people of dfd (3 faces), 1 source video of dfdc_faces (2 faces)"
    )


def test_the_shared_dfdc_crops_read_as_pairs():
    root = shared_path("data", "dfdc_faces")
    table = read_face_set(FaceSetParams(name="dfdc_faces", root=root), root.parent)
    assert len(table) == 10_000 and table["group"].nunique() == 5_000
    assert (table.groupby("group")["label"].value_counts().unstack() == 1).all().all()


def test_split_dataset_trains_on_every_own_person_when_another_set_validates(tmp_path):
    """Four own people: with another set validating, three train and one tests (no own
    person is spent on validation); the set's faces never test."""
    from deepfake_detector.core.config import Params
    from deepfake_detector.stages.split import SPLIT_FILE, split_dataset

    own = tmp_path / "faces"
    rows = []
    for person in range(4):
        for label in ("real", "fake"):
            video = f"p{person}_{label}"
            (own / video).mkdir(parents=True)
            Image.fromarray(np.zeros((8, 8, 3), "uint8")).save(own / video / "0.jpg")
            rows.append(
                {
                    "video_id": video,
                    "frame_index": 0,
                    "file": f"{video}/0.jpg",
                    "label": label,
                    "group": f"p{person}",
                    "split": "",
                }
            )
    pd.DataFrame(rows).to_csv(own / "faces.csv", index=False)
    other = _set(tmp_path, n_groups=10)

    def split(extra: tuple) -> pd.DataFrame:
        params = Params.model_validate(
            {
                "paths": {"split_dir": str(tmp_path / "split")},
                "face_images": {"out_dir": str(own), "margin": 0.0},
                "split": {"faces_dir": str(own), "extra_faces": extra},
            }
        )
        split_dataset(params, tmp_path)
        return pd.read_csv(tmp_path / "split" / SPLIT_FILE, dtype={"group": str})

    # Blank images hold no face to re-cut: the set is taken as it is (recut: false).
    with_other = split(({"name": "other", "root": str(other), "val_share": 0.3, "recut": False},))
    mine = with_other[~with_other["group"].str.startswith("other:")]
    assert mine.groupby("split")["group"].nunique().to_dict() == {"train": 3, "test": 1}
    theirs = with_other[with_other["group"].str.startswith("other:")]
    assert theirs.groupby("split")["group"].nunique().to_dict() == {"train": 7, "val": 3}
    assert (tmp_path / "split" / theirs["file"].iloc[0]).resolve().is_file()
    alone = split(())  # no other set: one own person validates, as before
    assert alone.groupby("split")["group"].nunique().to_dict() == {"train": 2, "val": 1, "test": 1}
