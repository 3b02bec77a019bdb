"""Verdicts through every front end, against real running parts: CLI, Gradio app, MLflow REST."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import requests
from conftest import REPO, run, run_env, shared_path
from media import no_face, one_face, save_rgb, two_faces
from servers import running_app, running_rest

from deepfake_detector.inference.app import HEAT_TILE

pytestmark = pytest.mark.slow


def predict_json(project: Path, *inputs: str, check: bool = True) -> tuple[int, list[dict]]:
    result = run(["deepfake", "predict", "--json", "--frames", "4", *inputs], project, check=check)
    return result.returncode, [
        json.loads(line) for line in result.stdout.splitlines() if line.strip()
    ]


def test_cli_gives_a_verdict_for_every_shared_frame_and_video(trained_project: Path) -> None:
    frames = shared_path("data", "dfd", "frames")
    dfd = shared_path("data", "dfd", "videos")
    dfdc = shared_path("data", "dfdc")
    code, results = predict_json(trained_project, str(frames), str(dfd), str(dfdc))
    assert code == 0
    assert len(results) == 48 + 3 + 3
    for r in results:
        assert r["verdict"] in ("real", "fake", "uncertain", "no_face"), r
        assert {"path", "verdict", "p_fake", "faces", "model"} <= set(r)
        assert r["model"]["name"] == "deepfake-detector" and r["model"]["version"]
        for face in r["faces"]:
            assert len(face["box"]) == 4 and 0 <= face["p_fake"] <= 1
            if r["kind"] == "video":
                assert isinstance(face["track"], int)
    assert sum(r["verdict"] == "no_face" for r in results if r["kind"] == "image") <= 2
    # The champion keeps its held-out faces' measures: the answers' drift against them.
    answers = trained_project.parent / "answers.jsonl"
    answers.write_text("".join(json.dumps(r) + "\n" for r in results))
    drift = run(["deepfake", "drift", str(answers), "--json"], trained_project, check=False)
    assert drift.returncode in (0, 3), drift.stderr
    report = json.loads(drift.stdout)
    assert report["answers"] == len(results) and report["model"].startswith("deepfake-detector v")
    measures = {m["measure"] for m in report["measures"]}
    assert measures == {"p_fake", "face_px", "confidence", "sharpness"}
    assert (drift.returncode == 3) == report["retrain_due"]


def test_cli_reports_an_unreadable_file_and_goes_on(trained_project: Path, tmp_path: Path) -> None:
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0" + os.urandom(2000))
    good = save_rgb(tmp_path / "face.png", one_face())
    code, results = predict_json(trained_project, str(bad), str(good), check=False)
    assert code == 1
    by_name = {Path(r["path"]).name: r for r in results}
    assert by_name["broken.jpg"]["verdict"] == "error" and by_name["broken.jpg"]["error"]
    assert by_name["face.png"]["verdict"] in ("real", "fake")
    table = run(["deepfake", "predict", str(good)], trained_project).stdout
    assert "face.png" in table and "deepfake-detector v" in table


def test_cli_answers_at_the_operating_point_asked_for(
    trained_project: Path, tmp_path: Path
) -> None:
    image = str(save_rgb(tmp_path / "face.png", one_face()))
    _, (default,) = predict_json(trained_project, image)
    # The model's own operating point: the threshold fitted for params' rate (fpr:0.05).
    assert default["operating_point"] == {"threshold": default["threshold"], "target_fpr": 0.05}
    _, (strict,) = predict_json(trained_project, "--fpr", "0.01", image)
    _, (lenient,) = predict_json(trained_project, "--fpr", "0.5", image)
    assert strict["operating_point"]["target_fpr"] == 0.01
    assert strict["threshold"] >= default["threshold"] >= lenient["threshold"]
    assert strict["p_fake"] == default["p_fake"]  # the score stays; only the cut moves
    bad = run(["deepfake", "predict", "--fpr", "2", image], trained_project, check=False)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr


def blurred_face(path: Path) -> Path:
    """Hopper's portrait blurred far past any validation face: a face, but not one to judge."""
    return save_rgb(path, cv2.GaussianBlur(one_face(), (0, 0), 6))


def test_cli_says_uncertain_for_a_face_it_cannot_judge(
    trained_project: Path, tmp_path: Path
) -> None:
    sharp = str(save_rgb(tmp_path / "face.png", one_face()))
    blurred = str(blurred_face(tmp_path / "blurred.png"))
    code, (judged, unsure) = predict_json(trained_project, sharp, blurred)
    assert code == 0  # uncertain is an answer, not a failure
    assert judged["verdict"] in ("real", "fake") and "uncertain" not in judged["faces"][0]
    assert unsure["verdict"] == "uncertain"
    assert unsure["faces"][0]["label"] == "uncertain"
    assert unsure["faces"][0]["uncertain"] == "blurred"
    table = run(["deepfake", "predict", blurred], trained_project).stdout
    assert "uncertain" in table


@pytest.fixture(scope="module")
def app_url(trained_project: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """The app started as its own process with `deepfake app`, on a free port of 127.0.0.1."""
    with running_app(trained_project, tmp_path_factory.mktemp("app") / "app.log") as (url, _):
        yield url


def test_gradio_app_driven_by_gradio_client(
    app_url: str, trained_project: Path, tmp_path: Path
) -> None:
    from gradio_client import Client, handle_file

    client = Client(app_url, verbose=False)
    images = {
        "one": save_rgb(tmp_path / "one.jpg", one_face()),
        "two": save_rgb(tmp_path / "two.png", two_faces()),
        "none": save_rgb(tmp_path / "none.png", no_face()),
    }
    answers = {
        k: client.predict(handle_file(str(v)), api_name="/predict_image") for k, v in images.items()
    }
    for name, faces in (("one", 1), ("two", 2)):
        text, boxes, cams, result = answers[name]
        assert result["verdict"] in ("real", "fake") and len(result["faces"]) == faces
        assert "Verdict:" in text and Path(boxes).exists() and Path(cams).exists()
        assert cv2.imread(cams).shape[1] == HEAT_TILE * faces  # one heat map per face
        assert result["model"]["name"] == "deepfake-detector"
        assert result["operating_point"]["target_fpr"] == 0.05
        assert "calls 5% of validation real faces fake" in text
    assert answers["none"][3]["verdict"] == "no_face" and "No face found" in answers["none"][0]

    text, _, _, result = client.predict(
        handle_file(str(blurred_face(tmp_path / "blurred.png"))), api_name="/predict_image"
    )
    assert result["verdict"] == "uncertain" and "UNCERTAIN" in text and "blurred" in text

    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0" + os.urandom(3000))
    text, _, _, result = client.predict(handle_file(str(corrupt)), api_name="/predict_image")
    assert result["verdict"] == "error" and "Cannot analyse" in text and "Traceback" not in text

    clip = sorted((trained_project / "data/demo/videos/fake").glob("*.mp4"))[0]
    text, tracks, cams, line, result = client.predict(
        handle_file(str(clip)), api_name="/predict_video"
    )
    assert result["verdict"] in ("real", "fake", "uncertain") and result["tracks"]
    assert "Verdict:" in text
    # Each tracked person's most suspicious face with its heat map; scores rounded.
    assert cv2.imread(cams).shape[1] == HEAT_TILE * len(result["tracks"])
    assert all(len(str(row[1]).split(".")[-1]) <= 3 for row in tracks["data"])
    assert len(line["data"]) == result["frames_sampled"] - result["frames_without_face"]


def test_the_app_on_a_network_asks_for_the_token_and_serves_metrics(
    trained_project: Path, tmp_path: Path
) -> None:
    from gradio_client import Client, handle_file
    from prometheus_client.parser import text_string_to_metric_families

    token = "app-s3cret"
    (tmp_path / "token").write_text(token + "\n")
    log = tmp_path / "app.log"
    with running_app(trained_project, log, "--token-file", str(tmp_path / "token")) as (url, _):
        assert requests.get(f"{url}config", timeout=30).status_code == 401  # not logged in
        login = requests.post(f"{url}login", data={"username": "x", "password": "no"}, timeout=30)
        assert login.status_code != 200 or login.json().get("success") is not True
        assert requests.get(f"{url}metrics", timeout=30).status_code == 401
        client = Client(url, auth=("anyone", token), verbose=False)
        photo = save_rgb(tmp_path / "one.jpg", one_face())
        result = client.predict(handle_file(str(photo)), api_name="/predict_image")[3]
        assert result["verdict"] in ("real", "fake")
        bearer = {"Authorization": f"Bearer {token}"}
        text = requests.get(f"{url}metrics", headers=bearer, timeout=30).text
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert samples[("deepfake_images_total", ())] == 1
    assert samples[("deepfake_drift_window_faces", ())] == 1  # the champion keeps its reference
    assert token not in log.read_text()


def test_the_champions_card_is_the_same_in_the_cli_in_mlflow_and_in_the_app(
    app_url: str, trained_project: Path
) -> None:
    import mlflow
    from mlflow import MlflowClient

    text = run(["deepfake", "card"], trained_project).stdout  # models:/NAME@ALIAS of params
    card = json.loads(run(["deepfake", "card", "--json"], trained_project).stdout)
    assert text.startswith("# Model card: deepfake-detector v")
    assert "**Demo model.**" in text and card["demo"] is True
    for section in (
        "Intended use",
        "Out of scope",
        "Training data",
        "Test results",
        "Calibration",
        "Error rates by group",
        "Uncertain answers",
        "Studies",
        "Data versions (DVC)",
    ):
        assert f"## {section}" in text
    version = text.split(" v", 1)[1].split()[0]
    assert card["model"]["git_commit"] and card["model"]["data_versions"]["data/demo"]
    # MLflow: the version's artifacts hold the card, and its description points to it.
    mlflow.set_tracking_uri(f"sqlite:///{trained_project}/mlruns/mlflow.db")
    uri = f"models:/deepfake-detector/{version}"
    stored = Path(mlflow.artifacts.download_artifacts(f"{uri}/model_card.md")).read_text()
    body = stored[stored.index("## Intended use") :]
    assert text.rstrip().endswith(body.rstrip())
    described = MlflowClient().get_model_version("deepfake-detector", version).description
    assert f"`{uri}/model_card.md`" in described and "deepfake card" in described
    # The app: a "Model card" tab with the same text.
    config = requests.get(f"{app_url}config", timeout=30).json()
    shown = [c["props"].get("value") for c in config["components"] if c["type"] == "markdown"]
    assert any(isinstance(v, str) and body.rstrip() in v for v in shown)
    tabs = [c["props"].get("label") for c in config["components"] if c["type"] == "tabitem"]
    assert "Model card" in tabs


def test_screenshot_of_the_app_with_a_result(app_url: str, tmp_path: Path) -> None:
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        pytest.skip("needs Debian's chromium and chromium-driver (`make browser`)")
    shot, card = tmp_path / "app.png", tmp_path / "card.png"
    image = save_rgb(tmp_path / "one.jpg", one_face())
    script = str(REPO / "docs/screenshot.py")
    out = subprocess.run(
        [sys.executable, script, app_url, str(image), str(shot), "--card", str(card)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith("Verdict:"), out.stdout
    assert shot.stat().st_size > 20_000 and card.stat().st_size > 20_000


def test_mlflow_models_serve_answers_invocations(trained_project: Path, tmp_path: Path) -> None:
    with running_rest(trained_project, tmp_path / "serve.log") as (url, _):
        encoded = base64.b64encode(
            save_rgb(tmp_path / "two.jpg", two_faces()).read_bytes()
        ).decode()
        body = {
            "dataframe_split": {"columns": ["image"], "data": [[encoded], ["bm90IGFuIGltYWdl"]]}
        }
        answer = requests.post(f"{url}/invocations", json=body, timeout=120)
        assert answer.status_code == 200, answer.text[:2000]
        first, second = answer.json()["predictions"]
        assert len(first["faces"]) == 2 and first["verdict"] in ("real", "fake")
        assert first["model"]["name"] == "deepfake-detector" and first["model"]["version"]
        assert first["operating_point"]["threshold"] == first["threshold"]
        assert second["verdict"] == "error"
        blurred = base64.b64encode(blurred_face(tmp_path / "blurred.png").read_bytes()).decode()
        unsure = requests.post(
            f"{url}/invocations", json={"inputs": {"image": [blurred]}}, timeout=120
        ).json()["predictions"][0]
        assert unsure["verdict"] == "uncertain" and unsure["faces"][0]["uncertain"] == "blurred"
        inputs = requests.post(
            f"{url}/invocations",
            json={"inputs": {"image": [encoded]}},
            timeout=120,
        )
        assert inputs.status_code == 200 and len(inputs.json()["predictions"][0]["faces"]) == 2


def test_mlflow_models_serve_in_an_environment_built_from_the_model(
    trained_project: Path, tmp_path: Path
) -> None:
    """`--env-manager uv`: MLflow builds a fresh environment from the registered version's own
    requirements (LiteRT, no TensorFlow; the project's code rides in the model) and serves it."""
    with running_rest(trained_project, tmp_path / "serve.log", "uv", timeout_s=900) as (url, _):
        image = save_rgb(tmp_path / "two.jpg", two_faces()).read_bytes()
        body = {"inputs": {"image": [base64.b64encode(image).decode()]}}
        answer = requests.post(f"{url}/invocations", json=body, timeout=120)
        assert answer.status_code == 200, answer.text[:2000]
        result = answer.json()["predictions"][0]
        assert len(result["faces"]) == 2 and result["model"]["runtime"] == "litert"
    envs = list((trained_project / ".mlflow-envs").glob("mlflow-*/bin/python"))
    assert envs, "MLflow built no environment"
    probe = subprocess.run([str(envs[0]), "-c", "import tensorflow"], capture_output=True)
    assert probe.returncode != 0, "the model's environment has TensorFlow"


def test_deepfake_rest_answers_mlflow_requests_without_mlflow(
    trained_project: Path, tmp_path: Path
) -> None:
    """`deepfake rest`: the light install's REST endpoint, MLflow's request and answer format."""
    from processes import free_port, start, stop
    from servers import wait_http

    port = free_port()
    guard = (
        "import sys; sys.modules.update(tensorflow=None, keras=None, mlflow=None); "
        "from deepfake_detector.cli import main; "
        f"sys.argv = ['deepfake', 'rest', '--port', '{port}']; main()"
    )
    log = tmp_path / "rest.log"
    server = start([sys.executable, "-c", guard], trained_project, run_env(trained_project), log)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/ping", 120, server, log)
        encoded = base64.b64encode(
            save_rgb(tmp_path / "two.jpg", two_faces()).read_bytes()
        ).decode()
        split = {
            "dataframe_split": {"columns": ["image"], "data": [[encoded], ["bm90IGFuIGltYWdl"]]}
        }
        first, second = requests.post(f"{url}/invocations", json=split, timeout=120).json()[
            "predictions"
        ]
        assert len(first["faces"]) == 2 and first["model"]["runtime"] == "litert"
        assert first["model"]["name"] == "deepfake-detector" and first["model"]["version"]
        assert first["operating_point"]["threshold"] == first["threshold"]
        assert second["verdict"] == "error" and second["error"]
        inputs = requests.post(
            f"{url}/invocations", json={"inputs": {"image": [encoded]}}, timeout=120
        )
        assert inputs.status_code == 200 and len(inputs.json()["predictions"][0]["faces"]) == 2
        bad = requests.post(
            f"{url}/invocations",
            data=b"{not json",
            headers={"Content-Type": "application/json"},
            timeout=30,
        )
        assert bad.status_code == 400 and "Traceback" not in bad.text
        said = log.read_text()
        assert f"answers POST http://127.0.0.1:{port}/invocations" in said
        assert "deepfake-detector v" in said and "(litert)" in said
        # The documented request, as written, with a photograph far over a command line's limit.
        photo = tmp_path / "photo.jpg"
        noisy = np.random.default_rng(0).integers(0, 256, (1080, 1440, 3), dtype=np.uint8)
        noisy[200:600, 400:900] = cv2.resize(two_faces(), (500, 400))
        cv2.imwrite(
            str(photo), cv2.cvtColor(noisy, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95]
        )
        assert photo.stat().st_size > 1_000_000
        answer = subprocess.run(
            ["bash", "-c", documented_request().replace("5001", str(port))],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        assert json.loads(answer.stdout)["predictions"][0]["verdict"] != "error", answer.stdout
    finally:
        stop(server)


def documented_request() -> str:
    """The lines of docs/serving.md that write request.json and send it."""
    lines = (REPO / "docs" / "serving.md").read_text().splitlines()
    return "\n".join(line for line in lines if "request.json" in line and "```" not in line)


def test_tflite_export_agrees_with_keras(trained_project: Path) -> None:
    out = run(
        ["deepfake", "export", "--format", "tflite", "--quantize", "float16"], trained_project
    ).stdout
    report = json.loads(out[out.index("{") :])["details"]
    assert Path(trained_project / report["file"]).stat().st_size == report["bytes"] > 1_000_000
    assert report["max_abs_diff_p_fake"] < 0.02
    # A few test videos: one pair of near-equal scores swapping order moves the AUC by ~0.03.
    assert report["auc_keras"] == pytest.approx(report["auc_tflite"], abs=0.05)


def test_a_quantization_that_loses_the_model_is_refused_and_writes_no_file(
    trained_project: Path,
) -> None:
    """8-bit activations flatten the small feature differences the frozen-feature head reads:
    the demo model's int8 file scores every face alike. The export says so and writes no file;
    8-bit weights with float activations (`dynamic`) keep the ranking."""
    refused = run(["deepfake", "export", "--quantize", "int8"], trained_project, check=False)
    assert refused.returncode != 0
    message = refused.stdout + refused.stderr
    assert "--quantize int8 loses what this model reads" in message, message
    assert "Traceback" not in message
    assert not (trained_project / "models/export/model-int8.tflite").exists()
    out = run(["deepfake", "export", "--quantize", "dynamic"], trained_project).stdout
    report = json.loads(out[out.index("{") :])["details"]
    assert report["rank_correlation"] >= 0.9, report
    assert (trained_project / report["file"]).stat().st_size == report["bytes"]
