"""make_manifest: each public dataset's layout read into labelled, grouped, leakage-free rows."""

from __future__ import annotations

import json
import shutil
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
import pytest

from deepfake_detector.core.reports import StageReport
from deepfake_detector.sources.dataset_layouts import (
    DatasetError,
    GroupLeakageError,
    read_celebdf,
    read_dfdc,
    read_folder,
)
from deepfake_detector.sources.datasets import READERS, make_manifest
from deepfake_detector.sources.faceforensics_layout import read_dfd, read_ffpp
from deepfake_detector.sources.manifest import ManifestRow, read_manifest, resolve_local

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def shared_data(name: str) -> Path:
    """A folder of ../shared/data, or skip the test saying why."""
    path = SHARED / "data" / name
    if not path.is_dir():
        pytest.skip(f"{path} is absent: this test needs the shared real data (../shared/data)")
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real, decodable 8-frame 64x48 mp4v video that the layouts below copy."""
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 8.0, (64, 48))
    assert writer.isOpened()
    for i in range(8):
        frame = np.full((48, 64, 3), 30 * i, np.uint8)
        cv2.rectangle(frame, (8 + i, 8), (40 + i, 40), (0, 0, 255), -1)
        writer.write(frame)
    writer.release()
    capture = cv2.VideoCapture(str(path))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 8
    capture.release()
    return path


def place(clip: Path, root: Path, *names: str) -> None:
    """Copy the clip to each relative path under root."""
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(clip, root / name)


def by_name(rows: list[ManifestRow]) -> dict[str, ManifestRow]:
    return {Path(r.uri).name: r for r in rows}


def assert_no_group_on_two_splits(rows: list[ManifestRow]) -> None:
    sides: dict[str, set[str | None]] = defaultdict(set)
    for row in rows:
        sides[row.group].add(row.split)
    assert {g: s for g, s in sides.items() if len(s) > 1} == {}


def assert_round_trip(dataset: str, root: Path, out: Path, **options: object) -> StageReport:
    """make_manifest writes what read_manifest reads back whole, each uri naming the same file."""
    report = make_manifest(dataset, root, out, **options)
    rows = READERS[dataset](root, StageReport("t"), **options)
    back_report = StageReport("read")
    back = read_manifest(out, back_report)
    assert back_report.skipped == []
    assert len(back) == report.counts["rows"]
    assert out.read_text().splitlines()[0] == "uri,label,group,sha256,split,method"
    source = {Path(r.uri).resolve(): r for r in rows}
    for row in back:
        assert not Path(row.uri).is_absolute()
        path = resolve_local(row.uri, out.parent).resolve()
        assert path.is_file()
        assert (row.label, row.group, row.split, row.method) == (
            source[path].label,
            source[path].group,
            source[path].split,
            source[path].method,
        )
    assert report.counts["label_real"] + report.counts["label_fake"] == len(back)
    return report


# --- DFD ------------------------------------------------------------------------------------


def test_dfd_shared_sample_groups_by_actor_and_round_trips(tmp_path: Path) -> None:
    root = shared_data("dfd") / "videos"
    rows = by_name(read_dfd(root, StageReport("t")))
    assert {n: (r.label, r.group) for n, r in rows.items()} == {
        "01__talking_against_wall.mp4": ("real", "actor01"),
        "01_11__talking_against_wall__9229VVZ3.mp4": ("fake", "actor01"),
        "06_03__talking_against_wall__4I8LRXWF.mp4": ("fake", "actor06"),
    }
    report = assert_round_trip("dfd", root, tmp_path / "manifests" / "dfd.csv")
    assert report.counts["groups"] == 2 and report.skipped == []


def test_dfd_faceforensics_layout_picks_one_compression(clip: Path, tmp_path: Path) -> None:
    root = tmp_path / "ff"
    real = "original_sequences/actors/{}/videos/"
    fake = "manipulated_sequences/DeepFakeDetection/{}/videos/"
    place(
        clip,
        root,
        real.format("c23") + "01__walking_outside.mp4",
        real.format("c23") + "02__walking_outside.mp4",
        fake.format("c23") + "01_02__walking_outside__ABCD1234.mp4",
        fake.format("c23") + "02_01__walking_outside__XYZ98765.mp4",
        fake.format("c23") + "badname.mp4",
        real.format("c40") + "03__walking_outside.mp4",
    )
    report = StageReport("t")
    rows = by_name(read_dfd(root, report))
    assert {n: (r.label, r.group) for n, r in rows.items()} == {
        "01__walking_outside.mp4": ("real", "actor01"),
        "02__walking_outside.mp4": ("real", "actor02"),
        "01_02__walking_outside__ABCD1234.mp4": ("fake", "actor01"),
        "02_01__walking_outside__XYZ98765.mp4": ("fake", "actor02"),
    }
    assert [s.item.endswith("badname.mp4") for s in report.skipped] == [True]
    assert {r.group for r in read_dfd(root, StageReport("t"), compression="c40")} == {"actor03"}
    with pytest.raises(DatasetError, match="compression"):
        read_dfd(root, StageReport("t"), compression="c99")
    assert_round_trip("dfd", root, tmp_path / "dfd.csv")


# --- DFDC -----------------------------------------------------------------------------------


def test_dfdc_shared_sample_fakes_go_with_their_originals(tmp_path: Path) -> None:
    root = shared_data("dfdc")
    rows = by_name(read_dfdc(root, StageReport("t")))
    assert {n: (r.label, r.group) for n, r in rows.items()} == {
        "abofeumbvv.mp4": ("fake", "atvmxvwyns"),
        "abqwwspghj.mp4": ("fake", "qzimuostzz"),
        "lynaeydofd.mp4": ("real", "lynaeydofd"),
    }
    report = assert_round_trip("dfdc", root, tmp_path / "dfdc.csv")
    assert report.skipped == [] and report.counts["split_unset"] == 3


def _dfdc_parts(clip: Path, root: Path) -> None:
    meta = {
        "part_0": {
            "real1.mp4": {"label": "REAL", "split": "train", "original": None},
            "fake1.mp4": {"label": "FAKE", "split": "train", "original": "real1.mp4"},
            "gone.mp4": {"label": "FAKE", "split": "train", "original": "real1.mp4"},
        },
        "part_1": {
            "fake2.mp4": {"label": "FAKE", "split": "train", "original": "real1.mp4"},
            "real2.mp4": {"label": "REAL", "split": "train", "original": None},
        },
    }
    for part, entries in meta.items():
        place(clip, root, *(f"{part}/{n}" for n in entries if n != "gone.mp4"))
        (root / part / "metadata.json").write_text(json.dumps(entries))
    place(clip, root, "part_1/unlisted.mp4")


def test_dfdc_parts_missing_and_unlisted_files_are_skipped_with_reasons(
    clip: Path, tmp_path: Path
) -> None:
    root = tmp_path / "dfdc"
    _dfdc_parts(clip, root)
    report = StageReport("t")
    rows = by_name(read_dfdc(root, report))
    assert {n: (r.label, r.group, r.split) for n, r in rows.items()} == {
        "real1.mp4": ("real", "real1", None),
        "fake1.mp4": ("fake", "real1", None),
        "fake2.mp4": ("fake", "real1", None),  # its original sits in another part
        "real2.mp4": ("real", "real2", None),
    }
    reasons = {Path(s.item).name: s.reason for s in report.skipped}
    assert "absent on disk" in reasons["gone.mp4"]
    assert "not listed" in reasons["unlisted.mp4"]
    assert report.counts["skipped"] == 2
    assert_round_trip("dfdc", root, tmp_path / "out" / "dfdc.csv")


def test_dfdc_metadata_splits_that_split_a_group_are_refused(clip: Path, tmp_path: Path) -> None:
    root = tmp_path / "dfdc"
    _dfdc_parts(clip, root)
    meta = root / "part_1" / "metadata.json"
    entries = json.loads(meta.read_text())
    entries["fake2.mp4"]["split"] = "test"
    meta.write_text(json.dumps(entries))
    rows = read_dfdc(root, StageReport("t"), splits=True)
    assert {r.split for r in rows} == {"train", "test"}
    out = tmp_path / "dfdc.csv"
    with pytest.raises(GroupLeakageError, match="real1"):
        make_manifest("dfdc", root, out, splits=True)
    assert not out.exists()


# --- FaceForensics++ ------------------------------------------------------------------------

FFPP_REAL = "original_sequences/youtube/c23/videos/"


def _ffpp(clip: Path, root: Path, methods: tuple[str, ...] = ("Deepfakes", "Face2Face")) -> None:
    place(clip, root, *(FFPP_REAL + f"{n}.mp4" for n in ("000", "003", "001", "002", "004")))
    for method in methods:
        fakes = f"manipulated_sequences/{method}/c23/videos/"
        place(clip, root, *(fakes + f"{n}.mp4" for n in ("000_003", "003_000", "001_002")))
    place(clip, root, "manipulated_sequences/Deepfakes/c40/videos/000_003.mp4")
    place(clip, root, "manipulated_sequences/Deepfakes/masks/videos/000_003.mp4")


def test_ffpp_pairs_group_reals_with_their_fakes(clip: Path, tmp_path: Path) -> None:
    root = tmp_path / "ffpp"
    _ffpp(clip, root)
    rows = read_ffpp(root, StageReport("t"), methods=["Deepfakes"])
    assert {Path(r.uri).stem: (r.label, r.group, r.split) for r in rows} == {
        "000": ("real", "000_003", None),
        "003": ("real", "000_003", None),
        "001": ("real", "001_002", None),
        "002": ("real", "001_002", None),
        "004": ("real", "004", None),  # no fake made from it: on its own
        "000_003": ("fake", "000_003", None),
        "003_000": ("fake", "000_003", None),
        "001_002": ("fake", "001_002", None),
    }
    assert all("/c23/" in r.uri and "/masks/" not in r.uri for r in rows)
    assert {r.method for r in rows} == {None, "Deepfakes"}  # the method names the fakes only
    both = read_ffpp(root, StageReport("t"), methods=["Face2Face"])
    assert {r.method for r in both if r.label == "fake"} == {"Face2Face"}
    report = assert_round_trip("ffpp", root, tmp_path / "ffpp.csv", methods=["Deepfakes"])
    assert report.skipped == []
    with pytest.raises(DatasetError, match="unknown FaceForensics"):
        read_ffpp(root, StageReport("t"), methods=["Nope"])
    with pytest.raises(DatasetError, match="absent"):
        read_ffpp(root, StageReport("t"), methods=["FaceSwap"])


def test_ffpp_official_splits_set_split_and_keep_pairs_together(clip: Path, tmp_path: Path) -> None:
    root = tmp_path / "ffpp"
    _ffpp(clip, root)
    (root / "splits").mkdir()
    for split, pairs in {"train": [["003", "000"]], "val": [], "test": [["001", "002"]]}.items():
        (root / "splits" / f"{split}.json").write_text(json.dumps(pairs))
    rows = read_ffpp(root, StageReport("t"), methods=["Deepfakes"])
    got = {Path(r.uri).stem: (r.group, r.split) for r in rows}
    assert got["000"] == got["003"] == got["000_003"] == got["003_000"] == ("003_000", "train")
    assert got["001"] == got["002"] == got["001_002"] == ("001_002", "test")
    assert got["004"] == ("004", None)
    assert_no_group_on_two_splits(rows)
    assert_round_trip("ffpp", root, tmp_path / "ffpp.csv", methods=["Deepfakes"])

    # A fake whose two videos sit in pairs on two sides would leak: refused, nothing written.
    place(clip, root, "manipulated_sequences/Deepfakes/c23/videos/000_001.mp4")
    out = tmp_path / "leak.csv"
    with pytest.raises(GroupLeakageError, match="more than one side"):
        make_manifest("ffpp", root, out, methods=["Deepfakes"])
    assert not out.exists()


def test_ffpp_same_file_names_across_methods_are_skipped_with_reason(
    clip: Path, tmp_path: Path
) -> None:
    root = tmp_path / "ffpp"
    _ffpp(clip, root)
    out = tmp_path / "ffpp.csv"
    report = make_manifest("ffpp", root, out)
    assert report.details["methods"] == ["Deepfakes", "Face2Face"]
    skipped = [s for s in report.skipped if "duplicate video_id" in s.reason]
    assert len(skipped) == 3 and all("/Face2Face/" in s.item for s in skipped)
    back_report = StageReport("read")
    assert len(read_manifest(out, back_report)) == report.counts["rows"] == 8
    assert back_report.skipped == []


# --- Celeb-DF -------------------------------------------------------------------------------


def _celebdf(clip: Path, root: Path) -> None:
    place(
        clip,
        root,
        "Celeb-real/id0_0000.mp4",
        "Celeb-real/id0_0001.mp4",
        "Celeb-real/id1_0000.mp4",
        "Celeb-real/id2_0000.mp4",
        "YouTube-real/00000.mp4",
        "YouTube-real/00001.mp4",
        "Celeb-synthesis/id0_id1_0000.mp4",
        "Celeb-synthesis/id1_id0_0000.mp4",
        "Celeb-synthesis/id2_id0_0000.mp4",
    )
    (root / "List_of_testing_videos.txt").write_text(
        "1 Celeb-real/id0_0000.mp4\n0 Celeb-synthesis/id1_id0_0000.mp4\n1 YouTube-real/00001.mp4\n"
    )


def test_celebdf_groups_by_target_identity_and_moves_whole_groups_to_test(
    clip: Path, tmp_path: Path
) -> None:
    root = tmp_path / "Celeb-DF-v2"
    _celebdf(clip, root)
    report = StageReport("t")
    rows = read_celebdf(root, report)
    assert {Path(r.uri).stem: (r.label, r.group, r.split) for r in rows} == {
        "id0_0000": ("real", "id0", "test"),
        "id0_0001": ("real", "id0", "test"),  # moved: its identity has a test video
        "id1_0000": ("real", "id1", "test"),  # moved
        "id2_0000": ("real", "id2", None),
        "00000": ("real", "yt_00000", None),
        "00001": ("real", "yt_00001", "test"),
        # idX_idY_NNNN is idX's video NNNN with idY's face: it goes with idX.
        "id0_id1_0000": ("fake", "id0", "test"),  # moved
        "id1_id0_0000": ("fake", "id1", "test"),
        "id2_id0_0000": ("fake", "id2", None),
    }
    assert report.counts["celebdf_groups_moved_to_test"] == 2
    assert report.counts["celebdf_videos_moved_to_test"] == 3
    assert report.details["celebdf_groups_moved_to_test"] == ["id0", "id1"]
    assert report.counts["celebdf_test_list_label_mismatch"] == 0
    assert_no_group_on_two_splits(rows)
    made = assert_round_trip("celebdf", root, tmp_path / "celebdf.csv")
    assert made.counts["split_test"] == 6 and made.skipped == []


def test_celebdf_video_grouping_and_no_test_list(clip: Path, tmp_path: Path) -> None:
    root = tmp_path / "Celeb-DF-v2"
    _celebdf(clip, root)
    rows = read_celebdf(root, StageReport("t"), group_by="video")
    got = {Path(r.uri).stem: (r.group, r.split) for r in rows}
    assert got["id0_id1_0000"] == got["id0_0000"] == ("id0_0000", "test")
    assert got["id0_0001"] == ("id0_0001", None)  # its own group now, so not moved
    assert_no_group_on_two_splits(rows)
    plain = read_celebdf(root, StageReport("t"), test_list=False)
    assert {r.split for r in plain} == {None}


# --- plain folders --------------------------------------------------------------------------


def test_folder_layout_groups_by_subfolder_else_by_file(clip: Path, tmp_path: Path) -> None:
    root = tmp_path / "mine"
    place(
        clip,
        root,
        "REAL/alice/a.mp4",
        "fake/alice/b.mp4",
        "Real/c.mp4",
        "fake/d.avi",
        "real/notes.txt",
        "fake/.hidden/e.mp4",
    )
    report = StageReport("t")
    rows = read_folder(root, report)
    assert {Path(r.uri).name: (r.label, r.group) for r in rows} == {
        "a.mp4": ("real", "alice"),
        "b.mp4": ("fake", "alice"),
        "c.mp4": ("real", "c"),
        "d.avi": ("fake", "d"),
    }
    assert [Path(s.item).name for s in report.skipped] == ["notes.txt"]
    assert report.counts["hidden_files_ignored"] == 1
    assert {r.group for r in read_folder(root, StageReport("t"), group_by_subfolder=False)} == {
        "a",
        "b",
        "c",
        "d",
    }
    assert_round_trip("folder", root, tmp_path / "out" / "folder.csv")


# --- the stage ------------------------------------------------------------------------------


def test_make_manifest_names_what_is_wrong(clip: Path, tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="unknown dataset 'nope'"):
        make_manifest("nope", tmp_path, tmp_path / "m.csv")
    with pytest.raises(DatasetError, match="no such folder"):
        make_manifest("dfd", tmp_path / "absent", tmp_path / "m.csv")
    with pytest.raises(DatasetError, match="bad options"):
        make_manifest("dfd", tmp_path, tmp_path / "m.csv", methods=["Deepfakes"])
    (tmp_path / "real").mkdir()
    with pytest.raises(DatasetError, match="no usable videos"):
        make_manifest("folder", tmp_path, tmp_path / "m.csv")
    assert not (tmp_path / "m.csv").exists()


# --- leakage: every reader's groups keep a fake on the side of the videos it was made from ---


def _dfd_tree(clip: Path, root: Path) -> None:
    names = [f"{a}__walk.mp4" for a in ("01", "02", "03")] + ["04__kitchen.mp4"]
    place(clip, root, *(f"real/{n}" for n in names))
    place(
        clip,
        root,
        *(
            f"fake/{t}_{s}__walk__ID{t}{s}.mp4"
            for t, s in (("01", "02"), ("02", "01"), ("03", "01"))
        ),
    )


def _dfdc_tree(clip: Path, root: Path) -> None:
    entries = {f"real{i}.mp4": {"label": "REAL", "original": None} for i in range(4)}
    entries.update(
        {f"fake{i}.mp4": {"label": "FAKE", "original": f"real{i % 3}.mp4"} for i in range(5)}
    )
    place(clip, root, *(f"part_0/{n}" for n in entries))
    (root / "part_0" / "metadata.json").write_text(json.dumps(entries))


def _folder_tree(clip: Path, root: Path) -> None:
    people = ("alice", "bob", "carol")
    place(clip, root, *(f"real/{p}/{p}{i}.mp4" for p in people for i in range(2)))
    place(clip, root, *(f"fake/{p}/swap_{p}.mp4" for p in people))


def _made_from(dataset: str, fake: str, reals: list[str]) -> list[str]:
    """The real videos a fake was made from, by each dataset's own naming (not the reader's)."""
    if dataset == "dfd":  # <target>_<source>__...: the target actor's video
        return [r for r in reals if r.startswith(fake.split("_")[0] + "__")]
    if dataset == "dfdc":  # metadata: fake<i> from real<i % 3>
        return [f"real{int(fake.removeprefix('fake')) % 3}"]
    if dataset == "ffpp":  # <target>_<source>: both videos of the pair
        return fake.split("_")
    if dataset == "celebdf":  # id<t>_id<s>_<n>: the target identity's videos
        return [r for r in reals if r.startswith(fake.split("_")[0] + "_")]
    return [r for r in reals if r.startswith(fake.removeprefix("swap_"))]  # folder: same person


LEAKAGE_LAYOUTS = {
    "dfd": (_dfd_tree, {}),
    "dfdc": (_dfdc_tree, {}),
    "ffpp": (_ffpp, {"methods": ["Deepfakes"]}),
    "celebdf": (_celebdf, {}),
    "folder": (_folder_tree, {}),
}


@pytest.mark.parametrize("dataset", sorted(LEAKAGE_LAYOUTS))
def test_no_group_crosses_the_split_for_any_reader(
    dataset: str, clip: Path, tmp_path: Path
) -> None:
    import pandas as pd

    from deepfake_detector.core.config import SplitParams
    from deepfake_detector.recipes.splitting import split_faces

    build, options = LEAKAGE_LAYOUTS[dataset]
    build(clip, tmp_path / dataset)
    rows = READERS[dataset](tmp_path / dataset, StageReport("t"), **options)
    assert {r.label for r in rows} == {"real", "fake"}
    faces = pd.DataFrame(
        [
            {"video_id": Path(r.uri).stem, "file": f"{r.video_id}/{i}.jpg", "label": r.label}
            | {"group": r.group, "split": r.split or ""}
            for r in rows
            for i in range(3)
        ]
    )
    reals = sorted(faces.loc[faces["label"] == "real", "video_id"].unique())
    fakes = sorted(faces.loc[faces["label"] == "fake", "video_id"].unique())
    for seed in range(10):
        table = split_faces(faces, SplitParams(seed=seed))  # raises on any leak it can see
        side = table.groupby("video_id")["split"].agg(set)
        assert side.map(len).max() == 1, "a video's faces on two sides"
        side = side.map(lambda s: next(iter(s)))
        assert table.groupby("group")["split"].nunique().max() == 1
        for fake in fakes:
            sources = _made_from(dataset, fake, reals)
            assert sources, f"{dataset}: no source video for {fake} in the layout"
            assert {side[s] for s in sources} == {side[fake]}, (dataset, seed, fake)
