"""The stage table is the one description of the pipeline: dvc.yaml, keys and tasks agree."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO

from deepfake_detector.core import cache_keys, keys
from deepfake_detector.core.config import Params, load_params
from deepfake_detector.core.dag import STAGES, Stage, dump, select
from deepfake_detector.core.dvc_yaml import FILES, render
from deepfake_detector.core.imports import PACKAGE, cycles, module_file
from deepfake_detector.core.study_table import STUDY_STAGES


@pytest.mark.parametrize("path", list(FILES))
def test_dvc_yaml_is_the_stage_table(path: Path) -> None:
    assert (REPO / path).read_text() == render(FILES[path]), "run `deepfake dvc_yaml`"


def test_the_package_has_no_import_cycle() -> None:
    assert cycles() == []


def test_a_stage_depends_on_every_module_it_imports() -> None:
    crop = {m.removeprefix(f"{PACKAGE}.") for m in STAGES["crop_faces"].code()}
    # What the stage module imports and what those import in turn.
    assert {"stages.faces", "stages.frames", "core.keys", "core.atomic"} <= crop
    assert {"sources.face_detection", "sources.video_reader"} <= crop
    for stage in [*STAGES.values(), *STUDY_STAGES.values()]:
        assert stage.module_name in stage.code()
        assert all(module_file(m).is_file() for m in stage.code())


def _leaves(value: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    if isinstance(value, dict) and value:
        for key, inner in value.items():
            yield from _leaves(inner, (*path, key))
    else:
        yield path


def _changed(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    if isinstance(value, list):
        return [*value, "another"]
    return f"{value}-changed"


def _with(values: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    copy = json.loads(json.dumps(values))
    node = copy
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = _changed(node[path[-1]])
    return copy


def _key(stage: Stage, values: dict[str, Any], root: Path) -> str:
    if stage.per_video:  # one video's key: the item's own input stands in for the stage's deps
        return cache_keys.item_key(stage.name, values, "one video's input")
    return cache_keys.stage_key(stage.name, values, root)


def _declared_leaves(stage: Stage, values: dict[str, Any]) -> list[tuple[str, ...]]:
    found = []
    for selector in stage.params:
        found += [tuple(selector.split(".")) + leaf for leaf in _leaves(select(values, selector))]
    return found


@pytest.mark.parametrize("name", list(STAGES))
def test_every_param_dvc_redoes_a_stage_for_changes_its_key(name: str, tmp_path: Path) -> None:
    stage = STAGES[name]
    values = dict(dump(load_params(REPO / "params.yaml")))
    before = _key(stage, values, tmp_path)
    leaves = _declared_leaves(stage, values)
    assert leaves, f"{name} declares no params"
    unchanged = [".".join(p) for p in leaves if _key(stage, _with(values, p), tmp_path) == before]
    assert unchanged == []


@pytest.mark.parametrize("name", list(STAGES))
def test_every_code_module_dvc_redoes_a_stage_for_changes_its_key(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stage = STAGES[name]
    values = dict(dump(Params()))
    before = _key(stage, values, tmp_path)
    original = keys._source_digest
    unchanged = []
    for module in stage.code():
        edited = module_file(module)
        monkeypatch.setattr(
            keys, "_source_digest", lambda f, e=edited: "edited" if f == e else original(f)
        )
        if _key(stage, values, tmp_path) == before:
            unchanged.append(module)
    assert unchanged == []


def test_an_input_change_changes_a_whole_stage_key(tmp_path: Path) -> None:
    params = Params()
    faces = tmp_path / params.split.faces_dir
    faces.mkdir(parents=True)
    (faces / "faces.csv").write_text("video_id\na\n")
    before = cache_keys.stage_key("split_dataset", params, tmp_path)
    (faces / "faces.csv").write_text("video_id\nb\n")
    assert cache_keys.stage_key("split_dataset", params, tmp_path) != before
    # A report beside the inputs holds run facts (durations), not content: it does not count.
    train = cache_keys.stage_key("train_model", params, tmp_path)
    (faces / "report.json").write_text('{"seconds": 1.5}')
    assert cache_keys.stage_key("train_model", params, tmp_path) == train


def test_prefect_tasks_cache_on_the_library_keys(tmp_path: Path) -> None:
    from deepfake_detector.core.stage_run import per_video
    from deepfake_detector.sources.manifest import ManifestRow, VideoRecord
    from deepfake_detector.stages.download import Fetch
    from deepfake_detector.stages.frames import VideoFrames
    from tasks.stage_tasks import TASKS

    params = Params()
    assert [t.name for t in TASKS.values()] == [s.task for s in STAGES.values()]
    items = {
        "download_videos": Fetch(
            ManifestRow("v", "https://h/v.mp4", "real", "g", None, None), None
        ),
        "extract_frames": VideoRecord(
            "v", Path("v.mp4"), "real", "g", "ab" * 32, None, "https://h/v.mp4"
        ),
        "crop_faces": VideoFrames("k", "v", "real", "g", None, 25.0, 10, ()),
    }
    for name, task in TASKS.items():
        stage = STAGES[name]
        if stage.per_video:
            call: dict[str, Any] = {"item": items[name], "params": params, "root": tmp_path}
            expected = per_video(stage).key(items[name], params, tmp_path)
            moved = {f"{d}_dir": Path("elsewhere") for d in ("videos", "frames", "faces")}
            elsewhere = params.model_copy(update={"paths": params.paths.model_copy(update=moved)})
            assert per_video(stage).key(items[name], elsewhere, tmp_path) != expected
        else:
            call = {"params": params, "root": tmp_path}
            expected = cache_keys.stage_key(name, params, tmp_path)
        assert task.cache_key_fn is not None
        assert task.cache_key_fn(None, call) == expected


# Each sub-package imports only from those below it (the CLI, at the top, from any).
LAYERS = {
    "core": set(),
    "sources": {"core"},
    "learning": {"core"},
    "inference": {"core", "sources", "learning"},
    "recipes": {"core", "sources", "learning", "inference"},
    "stages": {"core", "sources", "learning", "inference", "recipes"},
    "studies": {"core", "sources", "learning", "inference", "recipes"},
}


def test_sub_packages_import_only_from_the_layers_below() -> None:
    from deepfake_detector.core.imports import all_modules, imports_of

    def package(module: str) -> str:
        parts = module.split(".")
        return parts[1] if len(parts) > 2 else ""

    wrong = [
        f"{module} imports {dep}"
        for module in all_modules()
        if package(module) in LAYERS
        for dep in imports_of(module)
        if package(dep) not in LAYERS[package(module)] | {package(module)}
    ]
    assert wrong == []


def test_no_pipeline_stage_reads_a_study_s_code_or_params() -> None:
    # Editing a study (its params, its schema, its table, its code) re-runs no pipeline stage.
    study_side = {"core.study_config", "core.study_table"}
    for stage in STAGES.values():
        code = {m.removeprefix(f"{PACKAGE}.") for m in stage.code()}
        assert not code & study_side, stage.name
        assert not any(m.startswith("studies.") for m in code), stage.name
        assert not any(p.startswith("studies") for p in stage.params), stage.name
