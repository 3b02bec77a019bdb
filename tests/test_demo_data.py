"""The embedded demo set: real clips, real face swaps, manifest, determinism."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from deepfake_detector.core.config import DemoParams, Params
from deepfake_detector.core.keys import file_sha256
from deepfake_detector.sources.demo_clips import (
    IDENTITIES,
    clip_seed,
    detect_faces,
    fake_source,
    load_identity_photos,
    plan_clip,
    transform_points,
)
from deepfake_detector.stages.demo_data import MANIFEST_COLUMNS, make_demo_videos

PARAMS = Params(demo=DemoParams(clips_per_identity=1, frames_per_clip=6, width=320, height=240))
SWAP_PNG = Path("/tmp/demo_swap.png")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """One small demo build: its folder and report."""
    root = tmp_path_factory.mktemp("demo")
    report = make_demo_videos(PARAMS, root)
    return root / PARAMS.paths.demo_dir, report.to_dict()


@pytest.fixture(scope="module")
def manifest(built: tuple[Path, dict]) -> list[dict[str, str]]:
    with (built[0] / "manifest.csv").open() as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def detector():
    from mtcnn import MTCNN

    return MTCNN()


def read_frames(path: Path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames


def test_photos_are_rgb_and_distinct() -> None:
    photos = load_identity_photos()
    assert list(photos) == [i.name for i in IDENTITIES]
    for photo in photos.values():
        assert photo.dtype == np.uint8 and photo.ndim == 3 and photo.shape[2] == 3


def test_fake_source_is_always_another_identity() -> None:
    for identity in IDENTITIES:
        sources = {fake_source(identity.name, k) for k in range(6)}
        assert identity.name not in sources and sources


def test_import_stays_cheap() -> None:
    code = (
        "import sys, deepfake_detector.stages.demo_data; "
        "print(any(m in sys.modules for m in ('tensorflow', 'mtcnn')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_manifest_lists_every_clip(
    built: tuple[Path, dict], manifest: list[dict[str, str]]
) -> None:
    demo_dir, report = built
    n = len(IDENTITIES) * PARAMS.demo.clips_per_identity
    assert report["counts"] == {"fake": n, "real": n, "frames_written": 2 * n * 6}
    assert json.loads((demo_dir / "report.json").read_text())["stage"] == "make_demo_videos"
    assert list(manifest[0]) == list(MANIFEST_COLUMNS)
    assert [r["uri"] for r in manifest] == sorted(r["uri"] for r in manifest)
    on_disk = sorted(p.relative_to(demo_dir).as_posix() for p in demo_dir.rglob("*.mp4"))
    assert on_disk == [r["uri"] for r in manifest]
    for row in manifest:
        path = demo_dir / row["uri"]
        assert row["label"] == path.parent.name
        assert row["sha256"] == file_sha256(path)
        assert row["split"] == ""
        if row["label"] == "real":
            assert row["group"] == path.stem


def test_every_fake_belongs_to_a_real_clip(manifest: list[dict[str, str]]) -> None:
    reals = {r["group"] for r in manifest if r["label"] == "real"}
    fakes = [r for r in manifest if r["label"] == "fake"]
    assert len(fakes) == len(reals)
    for row in fakes:
        assert row["group"] in reals
        source, target = Path(row["uri"]).stem.split("_to_")
        assert target == row["group"] and source != row["group"].rsplit("_", 1)[0]


def test_same_params_give_identical_files(tmp_path: Path, manifest: list[dict[str, str]]) -> None:
    stale = tmp_path / PARAMS.paths.demo_dir / "videos" / "real" / "stale_99.mp4"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"old")
    make_demo_videos(PARAMS, tmp_path)
    with (tmp_path / PARAMS.paths.demo_dir / "manifest.csv").open() as handle:
        again = list(csv.DictReader(handle))
    assert again == manifest
    assert not stale.exists()


def test_clips_decode_to_requested_frames_and_size(
    built: tuple[Path, dict], manifest: list[dict[str, str]]
) -> None:
    demo = PARAMS.demo
    for row in manifest:
        frames = read_frames(built[0] / row["uri"])
        assert len(frames) == demo.frames_per_clip
        assert frames[0].shape == (demo.height, demo.width, 3)


def test_mtcnn_finds_a_face_in_most_frames(
    built: tuple[Path, dict], manifest: list[dict[str, str]], detector
) -> None:
    for row in manifest:
        frames = read_frames(built[0] / row["uri"])
        found = sum(
            any(
                f["confidence"] >= 0.9
                for f in detector.detect_faces(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            )
            for frame in frames
        )
        assert found >= 0.8 * len(frames), row["uri"]


def test_fake_differs_from_real_inside_the_face(
    built: tuple[Path, dict], manifest: list[dict[str, str]]
) -> None:
    faces = detect_faces(load_identity_photos())
    panels = []
    for row in (r for r in manifest if r["label"] == "fake"):
        group = row["group"]
        identity, clip = group.rsplit("_", 1)
        plan = plan_clip(
            faces[identity], PARAMS.demo, clip_seed(PARAMS.demo.seed, identity, int(clip))
        )
        real = read_frames(built[0] / "videos" / "real" / f"{group}.mp4")
        fake = read_frames(built[0] / row["uri"])
        i = len(real) // 2
        diff = np.abs(real[i].astype(np.float32) - fake[i].astype(np.float32)).mean(axis=2)

        # Eyes-to-mouth box of the target face, and everything well clear of the face.
        x0, y0 = transform_points(faces[identity].landmarks, plan.matrices[i]).min(axis=0)
        x1, y1 = transform_points(faces[identity].landmarks, plan.matrices[i]).max(axis=0)
        inside = diff[int(y0) : int(y1) + 1, int(x0) : int(x1) + 1].mean()
        outline = transform_points(faces[identity].outline(), plan.matrices[i])
        face_zone = np.zeros(diff.shape, np.uint8)
        cv2.fillConvexPoly(face_zone, np.round(outline).astype(np.int32), 1)
        face_zone = cv2.dilate(face_zone, np.ones((25, 25), np.uint8))
        outside = diff[face_zone == 0].mean()
        assert inside > 10 and inside > 5 * outside, (row["uri"], inside, outside)
        panels.append(np.hstack([real[i], fake[i]]))

    SWAP_PNG.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(SWAP_PNG), np.vstack(panels))
