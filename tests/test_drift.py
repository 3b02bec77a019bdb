"""Drift: the faces a detector answers against the held-out faces it was validated on
(`learning/drift.py`), for a batch of answers (`deepfake drift`) and a service's window."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, shared_path
from tiny_model import tiny_config

from deepfake_detector.core.atomic import write_json
from deepfake_detector.inference.drift_report import drift_report
from deepfake_detector.learning.drift import (
    MEASURES,
    DriftWindow,
    compare,
    face_measures,
    reference_of,
)


def faces_like(rng: np.random.Generator, n: int, shift: float = 0.0) -> list[dict]:
    """Answer faces whose measures come from one distribution (moved by `shift` SDs)."""
    return [
        {
            "box": [10, 10, int(w), int(w)],
            "confidence": float(c),
            "p_fake": float(p),
            "sharpness": float(s),
            "label": "real",
        }
        for w, c, p, s in zip(
            rng.normal(160 + 30 * shift, 30, n),
            np.clip(rng.normal(0.99 - 0.01 * shift, 0.005, n), 0, 1),
            rng.beta(2 + 3 * shift, 5, n),
            rng.normal(300 + 80 * shift, 80, n),
            strict=True,
        )
    ]


def reference_from(faces: list[dict]) -> dict[str, list[float]]:
    measures = [face_measures(f) for f in faces]
    return reference_of(
        {
            "w": [m["face_px"] for m in measures],
            "h": [m["face_px"] for m in measures],
            **{k: [m[k] for m in measures] for k in ("p_fake", "confidence", "sharpness")},
        }
    )


def test_the_same_distribution_does_not_drift_a_moved_one_does() -> None:
    rng = np.random.default_rng(0)
    reference = reference_from(faces_like(rng, 800))
    assert set(reference) == set(MEASURES) and all(len(v) == 500 for v in reference.values())
    assert all(v == sorted(v) for v in reference.values())
    same = compare(reference, [face_measures(f) for f in faces_like(rng, 300)])
    assert not any(s.drifted for s in same), same
    moved = compare(reference, [face_measures(f) for f in faces_like(rng, 300, shift=1.0)])
    assert all(s.drifted for s in moved), moved
    few = compare(reference, [face_measures(f) for f in faces_like(rng, 5, shift=1.0)])
    assert all(s.statistic is None and not s.drifted for s in few)


def test_a_measure_without_values_is_left_out_of_the_reference() -> None:
    reference = reference_of({"p_fake": [0.1, 0.2], "confidence": [np.nan, np.nan]})
    assert set(reference) == {"p_fake"}
    assert [s.measure for s in compare(reference, [])] == ["p_fake"]


def test_the_window_keeps_the_last_faces() -> None:
    rng = np.random.default_rng(1)
    window = DriftWindow(reference_from(faces_like(rng, 400)), size=50)
    for _ in range(4):
        window.add([{"kind": "image", "faces": faces_like(rng, 20, shift=1.0)}])
    assert len(window) == 50
    assert any(s.drifted for s in window.shifts())


def write_answers(path: Path, faces: list[dict], per_answer: int = 2) -> Path:
    lines = [
        json.dumps({"path": f"in/{i}.jpg", "kind": "image", "faces": faces[i : i + per_answer]})
        for i in range(0, len(faces), per_answer)
    ]
    path.write_text("\n".join([*lines, '{"path": "half-writ']) + "\n")
    return path


def test_drift_of_a_batch_of_answers_and_the_command(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from deepfake_detector.cli import app

    rng = np.random.default_rng(2)
    model = tmp_path / "model"
    model.mkdir()
    config = tiny_config().to_dict() | {"drift_reference": reference_from(faces_like(rng, 600))}
    write_json(model / "inference.json", config)
    own = write_answers(tmp_path / "own.jsonl", faces_like(rng, 200))
    moved = tmp_path / "verdicts"
    moved.mkdir()
    write_answers(moved / "day1.jsonl", faces_like(rng, 200, shift=1.5))

    report = drift_report(own, str(model))
    assert report.answers == 100 and report.skipped_lines == 1 and not report.retrain_due
    report = drift_report(moved, str(model / "inference.json"))
    assert report.retrain_due and {s.measure for s in report.shifts if s.drifted} == set(MEASURES)

    runner = CliRunner()
    result = runner.invoke(app, ["drift", str(own), "--model", str(model)])
    assert result.exit_code == 0, result.output
    assert "no drift" in result.output
    result = runner.invoke(app, ["drift", str(moved), "--model", str(model), "--json"])
    assert result.exit_code == 3, result.output
    assert json.loads(result.output)["retrain_due"] is True
    result = runner.invoke(app, ["drift", str(tmp_path / "none.jsonl"), "--model", str(model)])
    assert result.exit_code == 2 and "error: no answers at" in result.output
    write_json(model / "inference.json", tiny_config().to_dict())  # a model from before drift
    result = runner.invoke(app, ["drift", str(own), "--model", str(model)])
    assert result.exit_code == 2 and "keeps no reference faces" in result.output


DFD = shared_path("data", "dfd", "faces")
FFPP = shared_path("data", "ffpp_faces", "real")


@pytest.mark.slow
@pytest.mark.skipif(not (DFD.is_dir() and FFPP.is_dir()), reason="needs ../shared/data (DFD, FF++)")
def test_the_service_drift_gauge_moves_on_another_dataset_and_not_on_its_own() -> None:
    """Real faces through the real MTCNN and the service. The reference is what the detector
    answered on the DFD faces of even frame numbers (its held-out faces, as evaluation keeps
    them); faces of the odd frames of the same videos stay within it, while FaceForensics++'s
    real faces (other cameras, crops and compression) do not."""
    import base64
    from dataclasses import replace

    import requests
    from prometheus_client.parser import text_string_to_metric_families
    from test_service import ask, serving
    from tiny_model import tiny_model

    from deepfake_detector.core.serve_config import ServeParams
    from deepfake_detector.inference.predict import Detector, ModelRef
    from deepfake_detector.inference.rest import build_api

    files = sorted(DFD.glob("*/*.jpg"))
    halves = [[p for p in files if int(p.stem.rsplit("_", 1)[1]) % 2 == k] for k in (0, 1)]
    model, ref = tiny_model(), ModelRef("tiny", "test-model", "7")
    answered = Detector(model, tiny_config(), ref)
    reference = reference_from([f for p in halves[0] for f in answered.predict_path(p)["faces"]])
    detector = Detector(model, replace(tiny_config(), drift_reference=reference), ref)

    def gauges(files: list[Path]) -> dict[str, float]:
        with serving(build_api(detector, ServeParams(max_images=8, drift_window=100))) as url:
            for start in range(0, len(files), 8):
                batch = [base64.b64encode(p.read_bytes()).decode() for p in files[start:][:8]]
                assert ask(url, batch).status_code == 200
            text = requests.get(f"{url}/metrics", timeout=30).text
        return {
            s.labels["measure"]: s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.name == "deepfake_drift_detected"
        }

    own = gauges(halves[1][:: len(halves[1]) // 80][:80])  # spread over every video
    assert set(own) == set(MEASURES) and not any(own.values()), own
    other = gauges(sorted(FFPP.glob("*.jpg"))[:80])
    assert any(other.values()), other


@pytest.mark.slow
def test_the_prefect_flow_says_when_a_retrain_is_due(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.settings import PREFECT_LOCAL_STORAGE_PATH, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    from flows.drift import deepfake_drift

    rng = np.random.default_rng(3)
    (tmp_path / "model").mkdir()
    config = tiny_config().to_dict() | {"drift_reference": reference_from(faces_like(rng, 600))}
    write_json(tmp_path / "model" / "inference.json", config)
    (tmp_path / "params.yaml").write_text((REPO / "params.yaml").read_text())
    (tmp_path / "verdicts").mkdir()
    write_answers(tmp_path / "verdicts" / "day1.jsonl", faces_like(rng, 200, shift=1.5))
    write_answers(tmp_path / "own.jsonl", faces_like(rng, 200))
    monkeypatch.chdir(tmp_path)
    storage = {PREFECT_LOCAL_STORAGE_PATH: str(tmp_path / "results")}
    with temporary_settings(storage), prefect_test_harness():
        root = str(tmp_path)
        moved = deepfake_drift(answers="verdicts", model="model", root=root, return_state=True)
        own = deepfake_drift(answers="own.jsonl", model="model", root=root)
        assert moved.result()["retrain_due"] and not own["retrain_due"]
        logged = run_logs(moved.state_details.flow_run_id, "retrain due")
    assert "retrain due: p_fake, face_px, confidence, sharpness drifted" in logged


def run_logs(flow_run_id: object, waiting_for: str) -> str:
    """A flow run's log messages on the server, once one holds `waiting_for` (bounded wait:
    logs reach the server in batches)."""
    import time

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    deadline, text = time.monotonic() + 30, ""
    with get_client(sync_client=True) as client:
        while waiting_for not in text and time.monotonic() < deadline:
            logs = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
            text = "\n".join(log.message for log in logs)
            time.sleep(0.5)
    return text


def test_the_ks_test_is_scipys_statistic_and_nearly_its_p_value() -> None:
    """The serving install has no SciPy; the dev set has it (scikit-learn's), to check against."""
    stats = pytest.importorskip("scipy.stats")
    from deepfake_detector.learning.drift import ks_test

    rng = np.random.default_rng(0)
    for n in (30, 100, 500):
        for shift in (0.0, 0.25, 0.5, 1.0):
            seen, ref = rng.normal(shift, 1, n), rng.normal(0, 1, 500)
            statistic, p_value = ks_test(seen, ref)
            theirs = stats.ks_2samp(seen, ref)
            assert statistic == pytest.approx(theirs.statistic, abs=1e-12)
            if theirs.pvalue < 0.5:
                assert p_value == pytest.approx(theirs.pvalue, rel=0.15, abs=1e-6)
            else:
                assert p_value == pytest.approx(theirs.pvalue, abs=0.1)
