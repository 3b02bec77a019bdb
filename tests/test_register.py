"""The registry on real MLflow (SQLite): a worse model never takes `champion`."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from media import one_face

from deepfake_detector.core.config import FacesParams, FramesParams, Params, RegistryParams
from deepfake_detector.core.tracking import (
    connect,
    current_champion,
    decide_and_tag,
    log_training_run,
)
from deepfake_detector.inference import pyfunc
from deepfake_detector.inference.inference_config import InferenceConfig
from deepfake_detector.learning.calibration import Calibration


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Params, Path]:
    import keras

    monkeypatch.chdir(tmp_path)
    # An absolute URI per test: MLflow caches stores by URI, so a shared relative one would leak.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    params = Params(registry=RegistryParams(model_name="test-detector"))
    model = keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    path = tmp_path / "tiny.keras"
    model.save(path)
    return params, path


def _register(params: Params, model: Path, score: float) -> str:
    experiment = connect(params)
    config = InferenceConfig(8, FacesParams(), FramesParams(count=4), Calibration())
    logged = log_training_run(
        params,
        experiment,
        model_path=model,
        history=[{"epoch": 0, "phase": "head", "loss": 0.5}],
        test_metrics={"frame": {"auc": score}},
        artifacts=[],
        tags={"git_commit": "test"},
        log_model=lambda: pyfunc.log_model(params, model, config.to_dict()),
    )
    return logged.version


def test_alias_moves_only_to_a_better_version(registry: tuple[Params, Path]) -> None:
    from mlflow import MlflowClient

    params, model = registry
    first = decide_and_tag(params, _register(params, model, 0.80), 0.80)
    assert first["decision"] == "champion" and first["previous_champion"] is None

    worse_version = _register(params, model, 0.70)
    worse = decide_and_tag(params, worse_version, 0.70)
    assert worse["decision"] == "challenger"
    assert worse["previous_champion"] == "1" and worse[
        "previous_champion_frame_auc"
    ] == pytest.approx(0.80)
    assert current_champion("test-detector", "champion").version == "1"
    tags = MlflowClient().get_model_version("test-detector", worse_version).tags
    assert tags["role"] == "challenger" and float(tags["champion_frame_auc"]) == pytest.approx(0.8)

    nan = decide_and_tag(params, _register(params, model, math.nan), math.nan)
    assert nan["decision"] == "challenger"

    better = decide_and_tag(params, _register(params, model, 0.90), 0.90)
    assert better["decision"] == "champion"
    champion = current_champion("test-detector", "champion")
    assert champion.version == better["version"] and champion.score == pytest.approx(0.90)

    # Better, but refused by the group gate: the alias stays, the version says why.
    gap = "race Black: 30.0% of 40 held-out real faces called fake"
    refused_version = _register(params, model, 0.95)
    refused = decide_and_tag(params, refused_version, 0.95, refusal=gap)
    assert refused["decision"] == "refused" and refused["refusal"] == gap
    assert current_champion("test-detector", "champion").version == better["version"]
    tags = MlflowClient().get_model_version("test-detector", refused_version).tags
    assert tags["role"] == "refused" and tags["refusal"] == gap


def test_champion_loads_as_keras_and_pyfunc(registry: tuple[Params, Path]) -> None:
    import base64

    import cv2
    import mlflow
    import numpy as np

    params, model = registry
    decide_and_tag(params, _register(params, model, 0.75), 0.75)
    x = np.zeros((2, 8, 8, 3), "float32")
    keras_model = mlflow.keras.load_model("models:/test-detector@champion")
    assert keras_model.predict_on_batch(x).shape == (2, 1)
    pyfunc = mlflow.pyfunc.load_model("models:/test-detector@champion")
    _, jpeg = cv2.imencode(".jpg", cv2.cvtColor(one_face(), cv2.COLOR_RGB2BGR))
    results = pyfunc.predict({"image": [base64.b64encode(jpeg.tobytes()).decode(), "!!"]})
    first = results[0]
    assert first["verdict"] in ("real", "fake") and len(first["faces"]) == 1, first.get("error")
    model_info = results[0]["model"]
    assert (model_info["name"], model_info["version"]) == ("test-detector", "1")
    assert model_info["run_id"] and model_info["trained_on"] == "not recorded"
    assert results[1]["verdict"] == "error"


def test_description_says_what_the_model_learnt_and_flags_the_demo() -> None:
    from deepfake_detector.stages.register import model_description

    metrics = {"frame": {"auc": 0.9, "auc_low": 0.8, "auc_high": 0.95}, "video": {"auc": 1.0}}
    demo = {"training": {"demo": True, "summary": "learnt from 3 synthetic identities of demo"}}
    text = model_description(metrics, demo)
    assert text.startswith("DEMO MODEL") and "3 synthetic identities" in text
    assert "frame AUC 0.900 [0.800, 0.950]" in text
    real = {
        "training": {"demo": False, "summary": "learnt from 3 people of dfd (430 faces)"},
        "study": {
            "name": "leave_one_actor_out",
            "pooled_frame_auc": 0.96,
            "pooled_frame_auc_low": 0.9,
            "pooled_frame_auc_high": 0.99,
            "same_recipe": True,
        },
    }
    text = model_description(metrics, real)
    assert "DEMO" not in text and "3 people of dfd" in text
    assert "leave_one_actor_out (this recipe): pooled frame AUC 0.960 [0.900, 0.990]" in text


def test_description_quotes_each_dataset_and_each_held_out_dataset() -> None:
    from deepfake_detector.stages.register import model_description

    metrics = {
        "frame": {"auc": 0.8},
        "video": {"auc": 0.8},
        "datasets": {
            "dfd": {"auc": 0.96, "auc_low": 0.93, "auc_high": 0.98, "n": 136},
            "ffpp_faces": {"auc": 0.84, "auc_low": 0.8, "auc_high": 0.88, "n": 1495},
        },
    }
    transfer = {
        "name": "leave_one_dataset_out",
        "heldout_frame_auc": {"dfd": [0.86, 0.76, 0.95], "ffpp": [0.6, 0.58, 0.62]},
        "same_recipe": False,
    }
    text = model_description(metrics, {"training": {}, "study": {"transfer": transfer}})
    assert "dfd 0.960 [0.930, 0.980] (136 frames); ffpp_faces 0.840 [0.800, 0.880]" in text
    assert "(1,495 frames)" in text
    assert "leave_one_dataset_out (another recipe than this one)" in text
    assert "dfd 0.860 [0.760, 0.950]; ffpp 0.600 [0.580, 0.620]" in text


def _groups(race_fpr: float, n: int = 40) -> dict:
    row = {"n": 100, "fpr": 0.05, "fpr_low": 0.02, "fpr_high": 0.1}
    return {
        "faces": 300,
        "fpr": 0.05,
        "age_band": {"20-39": row},
        "gender": {"female": row, "male": row},
        "race": {
            "White": row,
            "Black": row | {"n": n, "fpr": race_fpr, "fpr_low": race_fpr * 0.6},
        },
    }


def test_the_group_gate_refuses_a_planted_gap_and_says_which_group() -> None:
    from deepfake_detector.core.config import RegistryParams
    from deepfake_detector.stages.register import group_gate

    gate = RegistryParams()  # at most twice the overall rate, groups of 20 faces or more
    reason = group_gate({"groups": _groups(0.30)}, gate)
    assert reason is not None and reason.startswith("race Black: 30.0% of 40")
    assert "more than 2 times the 5.0%" in reason
    assert group_gate({"groups": _groups(0.09)}, gate) is None  # within twice the rate
    # Above twice the rate, but its interval reaches below the line: one false alarm too many
    # in a small group is not a gap.
    assert group_gate({"groups": _groups(0.15)}, gate) is None
    assert group_gate({"groups": _groups(0.30, n=10)}, gate) is None  # too few faces to judge
    assert group_gate({"groups": _groups(0.30)}, RegistryParams(max_group_fpr_ratio=0)) is None
    assert group_gate({}, gate) is None  # no labelled people: nothing to gate on
    # The age band "60+" becomes a name MLflow accepts when the metrics are logged.
    from deepfake_detector.core.tracking import flatten

    assert "test.groups.age_band.60_.fpr" in flatten(
        "test", {"groups": {"age_band": {"60+": {"fpr": 0.1}}}}
    )


def test_false_positive_rates_by_age_gender_and_race_of_held_out_people() -> None:
    import numpy as np
    import pandas as pd

    from deepfake_detector.recipes.assessment import group_rates
    from deepfake_detector.sources.demographics import utkface_attributes

    assert utkface_attributes("utkface:61_1_3_20170110220033115") == {
        "age_band": "60+",
        "gender": "female",
        "race": "Indian",
    }
    assert utkface_attributes("dfdc_faces:abc") is None
    rng = np.random.default_rng(0)
    rows = []
    for i in range(200):
        old = i % 2 == 0
        # Old people's real faces are called fake (P >= 0.5) far more often than young ones'.
        p = rng.uniform(0.3, 1.0) if old else rng.uniform(0.0, 0.55)
        age = 70 if old else 25
        rows.append(
            {"video_id": f"utkface:{age}_{i % 2}_0_2017{i:04d}", "label": "real", "p_fake": p}
        )
    rows.append({"video_id": "dfdc_faces:x", "label": "real", "p_fake": 0.9})  # not labelled
    rows.append({"video_id": "utkface:30_0_1_20170101", "label": "fake", "p_fake": 0.9})
    groups = group_rates(pd.DataFrame(rows), 0.5, 500, 0)
    assert groups["faces"] == 200
    bands = groups["age_band"]
    assert set(bands) == {"20-39", "60+"} and bands["60+"]["n"] == 100
    assert bands["60+"]["fpr"] > 0.6 > 0.2 > bands["20-39"]["fpr"]
    for row in bands.values():
        assert row["fpr_low"] <= row["fpr"] <= row["fpr_high"]
    assert set(groups["gender"]) == {"male", "female"} and set(groups["race"]) == {"White"}
