"""Stage `make_demo_videos`: the embedded demo set. Renders the clips (`sources.demo_clips`)
and writes their manifest; everything is seeded, so the same params give the same files.
"""

from __future__ import annotations

import csv
import io
import logging
import shutil
from pathlib import Path

from tqdm import tqdm

from deepfake_detector.core import cache_keys
from deepfake_detector.core.artifacts import DEMO_MANIFEST as MANIFEST_NAME
from deepfake_detector.core.atomic import write_text
from deepfake_detector.core.config import Params
from deepfake_detector.core.keys import file_sha256
from deepfake_detector.core.reports import StageReport
from deepfake_detector.sources.demo_clips import (
    IDENTITIES,
    clip_seed,
    detect_faces,
    fake_source,
    load_identity_photos,
    plan_clip,
    render_clip,
    write_video,
)

log = logging.getLogger(__name__)

STAGE = "make_demo_videos"
MANIFEST_COLUMNS = ("uri", "label", "group", "sha256", "split")
VIDEOS_DIR = "videos"


def _write_manifest(path: Path, rows: list[dict[str, str]]) -> None:
    """Write the manifest CSV atomically, rows sorted by uri."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=MANIFEST_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(sorted(rows, key=lambda row: row["uri"]))
    write_text(path, buffer.getvalue())


def makes_the_manifest(params: Params, root: Path = Path(".")) -> bool:
    """Whether the manifest the pipeline reads is the demo's (else the flow skips the demo)."""
    manifest = (root / params.download.manifest).resolve()
    return manifest.is_relative_to((root / params.paths.demo_dir).resolve())


def make_demo_videos(params: Params, root: Path = Path(".")) -> StageReport:
    """Make the labelled demo clips, their manifest and a report under `paths.demo_dir`."""
    report = StageReport(STAGE)
    report.details["key"] = cache_keys.stage_key("make_demo_videos", params, root)
    demo = params.demo
    out_dir = root / params.paths.demo_dir
    videos = out_dir / VIDEOS_DIR
    if videos.exists():
        shutil.rmtree(videos)
    size = (demo.width, demo.height)

    photos = load_identity_photos()
    faces = detect_faces(photos)
    rows: list[dict[str, str]] = []
    jobs = [(i.name, k) for i in IDENTITIES for k in range(demo.clips_per_identity)]
    progress = tqdm(total=2 * len(jobs), desc=STAGE, unit="clip", leave=False)  # real + fake
    for name, k in jobs:
        group = f"{name}_{k:02d}"
        plan = plan_clip(faces[name], demo, clip_seed(demo.seed, name, k))
        source = fake_source(name, k)
        outputs = {
            ("real", videos / "real" / f"{group}.mp4"): None,
            ("fake", videos / "fake" / f"{source}_to_{group}.mp4"): (photos[source], faces[source]),
        }
        for (label, path), swap in outputs.items():
            frames = render_clip(photos[name], faces[name], plan, size, swap)
            report.count("frames_written", write_video(path, frames, demo.fps, size))
            report.count(label)
            progress.update(1)
            rows.append(
                {
                    "uri": path.relative_to(out_dir).as_posix(),
                    "label": label,
                    "group": group,
                    "sha256": file_sha256(path),
                    "split": "",
                }
            )
            log.debug("wrote %s", path)
    progress.close()

    _write_manifest(out_dir / MANIFEST_NAME, rows)
    report.details["identities"] = {i.name: i.description for i in IDENTITIES}
    return report.finish(out_dir)
