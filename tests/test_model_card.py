"""The model card: built from the evaluation's numbers, rendered the same everywhere."""

from __future__ import annotations

from pathlib import Path

from deepfake_detector.core.model_ref import ModelRef
from deepfake_detector.inference.model_card import (
    build_card,
    card_markdown,
    data_versions,
    read_card,
    write_card,
)

# The shape `evaluate_model` writes for a model trained on face crops of several datasets,
# with UTKFace people held out (numbers made up, so that each can be found in the text).
METRICS = {
    "frame": {"auc": 0.816, "auc_low": 0.79, "auc_high": 0.84, "fpr": 0.019, "tpr": 0.41},
    "video": {"auc": 0.83, "auc_low": 0.8, "auc_high": 0.86, "ece": 0.031},
    "operating_point": {"threshold": 0.799, "target_fpr": 0.05},
    "datasets": {
        "dfd": {
            "n": 136,
            "n_fake": 60,
            "auc": 0.948,
            "auc_low": 0.9,
            "auc_high": 0.98,
            "video_auc": 0.97,
            "video_auc_low": 0.91,
            "video_auc_high": 1.0,
            "fpr": 0.079,
            "tpr": 0.7,
            "ece": 0.05,
        },
        "utkface": {"n": 590, "n_fake": 0, "fpr": 0.014, "tpr": None, "ece": 0.02},
    },
    "groups": {
        "faces": 590,
        "fpr": 0.014,
        "age_band": {"60+": {"n": 41, "fpr": 0.049, "fpr_low": 0.0, "fpr_high": 0.122}},
        "gender": {"female": {"n": 300, "fpr": 0.01, "fpr_low": 0.0, "fpr_high": 0.023}},
        "race": {"Indian": {"n": 77, "fpr": 0.026, "fpr_low": 0.0, "fpr_high": 0.065}},
    },
    "abstention": {
        "coverage": 0.9,
        "min_face_px": 64,
        "min_confidence": 0.95,
        "min_sharpness": 40.5,
        "band_low": 0.61,
        "band_high": 0.92,
    },
    "risk_coverage": {
        "1": {"target_coverage": 1.0, "answered": 1.0, "accuracy": 0.712, "fpr": 0.019},
        "0.9": {"target_coverage": 0.9, "answered": 0.947, "accuracy": 0.72, "fpr": 0.011},
    },
}
INFERENCE = {
    "calibration": {"method": "platt", "fitted_on": 1234, "fpr_curve": [[0.0, 1.0]]},
    "training": {
        "demo": False,
        "faces": 5000,
        "summary": "learnt from 3 people of dfd (300 faces), 700 people of utkface",
        "datasets": {
            "dfd": {
                "faces": 300,
                "real_faces": 160,
                "fake_faces": 140,
                "groups": 3,
                "group_kind": "person",
            },
            "utkface": {
                "faces": 700,
                "real_faces": 700,
                "fake_faces": 0,
                "groups": 700,
                "group_kind": "person",
            },
        },
    },
    "study": {
        "transfer": {
            "name": "leave_one_dataset_out",
            "same_recipe": True,
            "heldout_frame_auc": {"ffpp": [0.632, 0.607, 0.655]},
        },
    },
}


def card_of(metrics: dict = METRICS, inference: dict = INFERENCE) -> dict:
    return build_card(
        metrics,
        inference,
        model_name="deepfake-detector",
        data_terms={"dfd": "research use only (FaceForensics++ terms)"},
        provenance={"git_commit": "abc123", "data_versions": {"data/processed": "d41d8.dir"}},
    )


def test_the_card_of_a_model_trained_on_face_crops_holds_every_section() -> None:
    card = card_of()
    text = card_markdown(
        card, ModelRef("models:/deepfake-detector@champion", "deepfake-detector", "7", "run9")
    )
    assert text.startswith("# Model card: deepfake-detector v7")
    assert "`models:/deepfake-detector/7`" in text and "`run9`" in text and "`abc123`" in text
    assert "Demo model" not in text
    assert "fake when calibrated P(fake) >= 0.799, chosen for 5.0% of validation" in text
    # Training data, with each dataset's terms; a dataset without terms says so.
    assert "| dfd | 3 (person) | 160 | 140 | research use only (FaceForensics++ terms) |" in text
    assert "| utkface | 700 (person) | 700 | 0 | not stated |" in text
    # Test metrics per dataset: frame and video AUC with intervals, rates, ECE.
    assert (
        "| dfd | 136 | 0.948 [0.900, 0.980] | 0.970 [0.910, 1.000] | 7.9% | 70.0% | 0.050 |" in text
    )
    assert "| utkface | 590 | n/a | n/a | 1.4% | n/a | 0.020 |" in text
    assert "Platt scaling fitted on 1,234 validation faces" in text
    assert "| age_band | 60+ | 41 | 4.9% [0.0%, 12.2%] |" in text
    assert "| 90.0% | 94.7% | 0.720 | 1.1% |" in text
    assert "faces smaller than 64 px across" in text
    assert "leave_one_dataset_out (this recipe)" in text and "ffpp 0.632 [0.607, 0.655]" in text
    assert "| `data/processed` | `d41d8.dir` |" in text
    assert "fpr_curve" not in card["calibration"]  # the curve stays in inference.json


def test_the_demo_models_card_says_so_and_what_it_did_not_measure() -> None:
    demo = {"training": {"demo": True, "summary": "learnt from 7 source clips of demo"}}
    text = card_markdown(card_of({"frame": {"auc": 1.0}}, demo))
    assert text.startswith("# Model card: deepfake-detector (not registered)")
    assert "**Demo model.**" in text
    assert "Not measured: no held-out face of this test split carries group labels." in text
    assert "None recorded for this model." in text


def test_a_card_written_to_a_folder_reads_back_the_same(tmp_path: Path) -> None:
    card = card_of()
    write_card(tmp_path, card)
    assert read_card(tmp_path) == card
    assert (tmp_path / "model_card.md").read_text() == card_markdown(card)
    assert read_card(tmp_path / "elsewhere") is None


def test_data_versions_are_dvcs_hashes_of_the_data_the_model_was_made_from(
    tmp_path: Path,
) -> None:
    (tmp_path / "studies").mkdir()
    lock = """schema: '2.0'
stages:
  make_demo_videos:
    cmd: x
    outs:
    - {path: data/demo, md5: demo.dir}
  extract_frames:
    cmd: x
    deps:
    - {path: data/demo, md5: demo.dir}
    - {path: src/x.py, md5: code}
    outs:
    - {path: data/interim/frames, md5: frames.dir}
  split_dataset:
    cmd: x
    deps:
    - {path: FACES, md5: table}
    outs:
    - {path: data/processed, md5: split.dir}
  train_model:
    cmd: x
    outs:
    - {path: models/detector, md5: model.dir}
"""
    (tmp_path / "studies" / "dvc.lock").write_text(  # wdir: the project root
        """schema: '2.0'
stages:
  import_faces:
    cmd: x
    deps:
    - {path: ../shared/data/dfd/faces, md5: crops.dir}
    outs:
    - {path: data/face_images, md5: imported.dir}
"""
    )
    # Trained from the video path: the split's table came from the frames, from the clips.
    (tmp_path / "dvc.lock").write_text(lock.replace("FACES", "data/interim/frames/faces.csv"))
    assert data_versions(tmp_path) == {
        "data/demo": "demo.dir",
        "data/interim/frames": "frames.dir",
        "data/interim/frames/faces.csv": "table",
        "data/processed": "split.dir",
    }
    # Trained from imported crops: the clips had no part in it.
    (tmp_path / "dvc.lock").write_text(lock.replace("FACES", "data/face_images/faces.csv"))
    assert data_versions(tmp_path) == {
        "../shared/data/dfd/faces": "crops.dir",
        "data/face_images": "imported.dir",
        "data/face_images/faces.csv": "table",
        "data/processed": "split.dir",
    }
    assert data_versions(tmp_path / "nowhere") == {}
