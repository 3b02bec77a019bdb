"""The one inference path with the real MTCNN and a small Keras model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from media import no_face, one_face, pan_video, save_rgb, two_faces
from tiny_model import tiny_detector

from deepfake_detector.inference.predict import Detector, load_detector


@pytest.fixture(scope="module")
def detector() -> Detector:
    return tiny_detector()


def test_image_with_one_face(detector: Detector) -> None:
    result = detector.predict_image(one_face())
    assert result["verdict"] in ("real", "fake") and len(result["faces"]) == 1
    face = result["faces"][0]
    assert len(face["box"]) == 4 and 0 <= face["p_fake"] <= 1
    assert result["p_fake"] == face["p_fake"]
    assert result["model"]["version"] == "7"


def test_crops_of_several_sizes_score_as_each_alone(detector: Detector) -> None:
    """A list mixing crop sizes (a folder of 200 and 224 px crops) is scored, each crop as it
    would be on its own, in its place."""
    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 256, (n, n, 3), dtype=np.uint8) for n in (224, 200, 224, 48, 200)]
    together = detector.raw_scores(crops)
    alone = [float(detector.raw_scores([c])[0]) for c in crops]
    np.testing.assert_allclose(together, alone, rtol=1e-5)
    assert len(set(np.round(together, 6))) == len(crops)


def test_image_with_several_faces_takes_the_most_suspicious(detector: Detector) -> None:
    result = detector.predict_image(two_faces())
    assert len(result["faces"]) == 2
    assert result["p_fake"] == max(f["p_fake"] for f in result["faces"])
    expected = "fake" if result["p_fake"] >= detector.threshold else "real"
    assert result["verdict"] == expected


def test_no_face_is_never_scored_as_a_whole(detector: Detector) -> None:
    result = detector.predict_image(no_face())
    assert result["verdict"] == "no_face" and result["p_fake"] is None and result["faces"] == []


def test_video_tracks_and_timeline(detector: Detector, tmp_path: Path) -> None:
    result = detector.predict_path(pan_video(tmp_path / "pan.mp4"), frames=4)
    assert result["kind"] == "video" and result["frames_sampled"] == 4
    assert len(result["tracks"]) == 1 and result["tracks"][0]["faces"] == 4
    assert [f["track"] for f in result["faces"]] == [0, 0, 0, 0]
    assert result["p_fake"] == pytest.approx(np.mean([f["p_fake"] for f in result["faces"]]))
    assert [t["frame"] for t in result["timeline"]] == [0, 4, 7, 11]


def test_unreadable_files_give_verdict_error(detector: Detector, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff" + b"junk" * 100)
    result = detector.predict_path(bad)
    assert result["verdict"] == "error" and "bad.jpg" in result["error"]
    video = tmp_path / "bad.mp4"
    video.write_bytes(b"junk" * 100)
    assert detector.predict_path(video)["verdict"] == "error"
    good = detector.predict_path(save_rgb(tmp_path / "ok.png", one_face()))
    assert good["verdict"] in ("real", "fake") and good["path"].endswith("ok.png")


def test_local_model_needs_its_inference_settings(tmp_path: Path, detector: Detector) -> None:
    import json

    path = tmp_path / "model.keras"
    detector.model.save(path)
    with pytest.raises(FileNotFoundError, match=r"inference\.json"):
        load_detector(path)
    (tmp_path / "inference.json").write_text(json.dumps(detector.config.to_dict()))
    again = load_detector(path)
    assert again.config == detector.config


def test_every_answer_says_what_the_model_learnt_and_the_app_flags_the_demo(
    detector: Detector,
) -> None:
    from dataclasses import replace

    from deepfake_detector.inference.app import header_markdown

    training = {
        "demo": True,
        "summary": "learnt from 7 source clips of demo (448 faces)",
        "datasets": {"demo": {"faces": 448, "groups": 7, "group_kind": "source clip"}},
    }
    demo = Detector(detector.model, replace(detector.config, training=training), detector.ref)
    answer = demo.predict_image(one_face())["model"]
    assert answer["trained_on"] == training["summary"] and answer["demo"] is True
    assert answer["training"]["demo"]["groups"] == 7
    header = header_markdown(demo)
    assert "7 source clips of demo" in header and "This is the demo model" in header
    assert "dvc exp run register_model -S split.faces_dir=data/face_images" in header
    with_study = replace(demo.config, study={"name": "loao", "pooled_frame_auc": 0.95})
    assert "0.950" not in header_markdown(Detector(demo.model, with_study, demo.ref))
    real = replace(
        detector.config,
        training={"demo": False, "summary": "learnt from 3 people of dfd (430 faces)"},
        study={"name": "leave_one_actor_out", "pooled_frame_auc": 0.95, "same_recipe": True},
    )
    header = header_markdown(Detector(detector.model, real, detector.ref))
    assert "demo model" not in header and "3 people of dfd" in header
    assert "pooled frame AUC 0.950" in header
