"""The light runtime (LiteRT, no TensorFlow) against the TensorFlow path it stands in for.

Boxes: the LiteRT MTCNN finds the same faces as the `mtcnn` package on real 1080p DFD frames.
Scores: the registered model's classifier on LiteRT gives the Keras model's P(fake) (within
1e-3) and the same verdicts. And a verdict from the registry never imports TensorFlow.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import run, shared_path

from deepfake_detector.core.config import FacesParams
from deepfake_detector.inference.lite_runtime import (
    LITE_DIR,
    MTCNN_OUTPUTS,
    NETWORKS,
    LiteMtcnn,
    LiteNetwork,
    crop_and_resize,
    nms,
)
from deepfake_detector.sources.face_detection import Detection, MtcnnDetector
from deepfake_detector.sources.images import read_image

FRAMES_PER_LABEL = 10


def iou(a: Detection, b: Detection) -> float:
    ax, ay, aw, ah = a.box
    bx, by, bw, bh = b.box
    w = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    h = max(0, min(ay + ah, by + bh) - max(ay, by))
    inter = w * h
    return inter / (aw * ah + bw * bh - inter)


@pytest.fixture(scope="module")
def lite_mtcnn(tmp_path_factory: pytest.TempPathFactory) -> LiteMtcnn:
    from deepfake_detector.inference.lite_export import mtcnn_flatbuffers

    folder = tmp_path_factory.mktemp("lite")
    for key, data in mtcnn_flatbuffers().items():
        (folder / NETWORKS[key]).write_bytes(data)
    return LiteMtcnn(folder)


def test_mtcnn_networks_are_converted_once_then_read_from_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from deepfake_detector.inference import lite_export

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    first = lite_export.cached_mtcnn_flatbuffers()
    folder = lite_export.mtcnn_cache_dir()
    assert folder.parent.parent == tmp_path / "cache"
    assert sorted(p.name for p in folder.iterdir()) == sorted(NETWORKS.values())

    def converted_again() -> dict[str, bytes]:
        raise AssertionError("converted again although the cache holds the networks")

    monkeypatch.setattr(lite_export, "mtcnn_flatbuffers", converted_again)
    assert lite_export.cached_mtcnn_flatbuffers() == first
    # A cache folder that cannot be made: converted (here: the first bytes) and used all the same.
    (tmp_path / "not-a-folder").write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "not-a-folder"))
    monkeypatch.setattr(lite_export, "mtcnn_flatbuffers", lambda: first)
    assert lite_export.cached_mtcnn_flatbuffers() == first


@pytest.mark.shared_data
def test_lite_mtcnn_finds_the_same_faces_as_tensorflow_on_dfd_frames(
    lite_mtcnn: LiteMtcnn,
) -> None:
    frames = shared_path("data", "dfd", "frames")
    files = [f for label in ("real", "fake") for f in sorted((frames / label).glob("*.jpg"))[::2]]
    files = files[: 2 * FRAMES_PER_LABEL]
    params = FacesParams(min_confidence=0.5)  # compare low-confidence faces too
    reference, light = MtcnnDetector(params), MtcnnDetector(params, lite_mtcnn)
    compared = 0
    for path in files:
        rgb = read_image(path)
        want, got = reference.detect([rgb])[0], light.detect([rgb])[0]
        assert len(got) == len(want), f"{path.name}: {len(got)} faces, TensorFlow {len(want)}"
        for a, b in zip(want, got, strict=True):
            assert iou(a, b) >= 0.9, f"{path.name}: {a.box} vs {b.box}"
            assert b.confidence == pytest.approx(a.confidence, abs=1e-3)
            for name, (x, y) in a.landmarks.items():
                assert np.hypot(x - b.landmarks[name][0], y - b.landmarks[name][1]) <= 2.0
            compared += 1
    assert compared >= len(files)  # every DFD frame has its face


def test_a_shape_that_comes_back_gets_its_own_interpreter_within_the_budget(
    lite_mtcnn: LiteMtcnn, monkeypatch: pytest.MonkeyPatch
) -> None:
    pnet = LiteNetwork(lite_mtcnn.pnet.path, MTCNN_OUTPUTS)  # fresh: nothing seen yet
    rng = np.random.default_rng(0)
    a, b, c = (rng.uniform(-1, 1, (1, h, 40, 3)).astype(np.float32) for h in (24, 32, 48))
    monkeypatch.setattr(pnet, "KEPT_VALUES", a.size + b.size)  # room for a and b, not c
    first = pnet(a)  # seen once: the scratch interpreter
    assert not pnet._sized
    for x in (b, c, a, b, c):
        pnet(x)
    assert sorted(pnet._sized) == sorted([a.shape, b.shape])  # c came back, but over budget
    again = pnet(a)  # a's own interpreter answers as the scratch did
    for name in first:
        np.testing.assert_array_equal(again[name], first[name])
    np.testing.assert_array_equal(pnet(c)["bbox_class"], pnet(c)["bbox_class"])


def test_crop_and_resize_samples_like_tensorflow() -> None:
    import tensorflow as tf

    rng = np.random.default_rng(0)
    batch = rng.uniform(-1, 1, (2, 40, 60, 3)).astype(np.float32)
    # [image, x1, y1, x2, y2]: inside, across the border, and a sliver
    boxes = np.array(
        [[0, 5.0, 4.0, 30.0, 33.0], [1, -8.0, -3.5, 70.0, 20.0], [0, 10.0, 10.0, 12.0, 11.0]]
    )
    got = crop_and_resize(batch, boxes, 24)
    normalised = boxes[:, [2, 1, 4, 3]] / np.array([40, 60, 40, 60])
    want = tf.image.crop_and_resize(batch, normalised, boxes[:, 0].astype(int), (24, 24))
    np.testing.assert_allclose(got, want.numpy(), atol=1e-4)  # float32 rounding


def test_nms_drops_a_box_under_any_better_one_per_image() -> None:
    rows = np.array(
        [
            [0, 0, 0, 10, 10, 0.9],
            [0, 1, 1, 11, 11, 0.8],  # overlaps the first: dropped
            [0, 50, 50, 60, 60, 0.7],  # apart: kept
            [1, 1, 1, 11, 11, 0.6],  # another image: kept
        ]
    )
    kept = nms(rows, 0.5, "union")
    assert sorted(map(tuple, kept[:, [0, 5]])) == [(0, 0.7), (0, 0.9), (1, 0.6)]


@pytest.mark.slow
def test_registered_model_on_litert_scores_like_keras(
    trained_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """P(fake) within 1e-3 on the test split's crops, the same verdicts on whole frames."""
    from deepfake_detector.core.config import load_params
    from deepfake_detector.core.tracking import tracking_uri
    from deepfake_detector.inference.predict import load_detector
    from deepfake_detector.sources.face_sets import read_split

    monkeypatch.chdir(trained_project)  # the tracking URI in params is relative to the project
    uri = tracking_uri(load_params(Path("params.yaml")))
    model = "models:/deepfake-detector@champion"
    lite = load_detector(model, tracking_uri=uri)
    keras_path = lite.keras_path
    assert lite.runtime == "litert" and lite.lite_dir is not None
    assert (lite.lite_dir.parent / "MLmodel").is_file() and lite.lite_dir.name == LITE_DIR
    heavy = load_detector(model, runtime="tensorflow", tracking_uri=uri)
    assert heavy.runtime == "tensorflow" and heavy.keras_path == keras_path
    table = read_split(load_params(Path("params.yaml")), Path("."))
    crops = [read_image(Path(p)) for p in table.loc[table["split"] == "test", "path"]]
    assert len(crops) >= 10
    p_lite, p_keras = lite.scores(crops), heavy.scores(crops)
    assert np.max(np.abs(p_lite - p_keras)) <= 1e-3
    assert [lite.label(p) for p in p_lite] == [heavy.label(p) for p in p_keras]
    frames = sorted((trained_project / "data/interim/frames").rglob("*.jpg"))[::10][:12]
    for frame in frames:
        a, b = heavy.predict_path(frame), lite.predict_path(frame)
        assert a["verdict"] == b["verdict"], frame
        assert len(a["faces"]) == len(b["faces"]), frame
        if a["p_fake"] is not None:
            assert abs(a["p_fake"] - b["p_fake"]) <= 1e-3


@pytest.mark.slow
def test_a_verdict_from_the_registry_never_imports_tensorflow(trained_project: Path) -> None:
    image = next((trained_project / "data/interim/frames").rglob("*.jpg"))
    guard = (
        "import sys; sys.modules.update(tensorflow=None, keras=None, mlflow=None); "
        "from deepfake_detector.cli import main; "
        f"sys.argv = ['deepfake', 'predict', '--json', {str(image)!r}]; main()"
    )
    result = run([sys.executable, "-c", guard], trained_project, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    answer = json.loads(result.stdout.splitlines()[-1])
    assert answer["verdict"] in ("real", "fake", "uncertain", "no_face")
    assert answer["model"]["runtime"] == "litert"
    assert answer["model"]["name"] == "deepfake-detector" and answer["model"]["version"]
