"""Cache keys from the stage table: what DVC hashes for a stage, as one digest.

A stage's key covers its code (every module it imports, `dag.Stage.code`), the params it
declares and the content of its inputs; a per-video key covers the code, the params and that
video's own input (its bytes' digest, or the key of the work before it). The stages record the
key beside their outputs, the Prefect tasks cache on it, so a flow run recognises work
`dvc repro` already did and redoes what `dvc repro` would redo.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deepfake_detector.core.artifacts import REPORT_NAME
from deepfake_detector.core.dag import dump, resolve, select, stage
from deepfake_detector.core.keys import content_key, file_sha256, files_digest

if TYPE_CHECKING:
    from deepfake_detector.core.config import Params


def code_key(name: str) -> str:
    """Digest of the source files stage `name` runs."""
    return files_digest(stage(name).code_files())


def params_key(name: str, params: Params | Mapping[str, Any]) -> str:
    """Digest of the params stage `name` declares, as DVC reads them."""
    values = dump(params)
    chosen = {key: select(values, key) for key in stage(name).params}
    return json.dumps(chosen, sort_keys=True, default=str)


def input_digest(path: Path) -> str:
    """Content digest of an input file or folder (reports and temporary files left out)."""
    if path.is_file():
        return file_sha256(path)
    if not path.is_dir():
        return "missing"
    files = sorted(
        p
        for p in path.rglob("*")
        if p.is_file() and p.name != REPORT_NAME and not p.name.startswith(".")
    )
    digest = hashlib.sha256()
    for p in files:
        digest.update(f"{p.relative_to(path).as_posix()}\0{file_sha256(p)}\n".encode())
    return digest.hexdigest()


def stage_key(name: str, params: Params | Mapping[str, Any], root: Path = Path(".")) -> str:
    """Key of a whole stage: code, declared params, the content of every declared input."""
    values = dump(params)
    inputs = (input_digest(root / resolve(dep, values)) for dep in stage(name).deps)
    return content_key(code_key(name), None, params_key(name, values), *inputs)


def item_key(name: str, params: Params | Mapping[str, Any], *inputs: str) -> str:
    """Key of one video's work in a per-video stage: code, declared params, its own inputs."""
    return content_key(code_key(name), None, params_key(name, params), *inputs)
