"""Which files a registry URI names, found cheaply when the tracking store is a SQLite file.

Importing MLflow costs about 2 s, more than the whole light verdict. For a SQLite store whose
artifacts are on this machine, `models:/NAME@ALIAS` and `models:/NAME/VERSION` are read straight
from MLflow's tables (alias -> version -> storage location), read-only, and the version's own
folder is used in place; the answer still names the version that gave it. Anything else (a
tracking server, PostgreSQL, remote artifacts, `runs:/`, a schema this does not know) goes
through MLflow as before.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from urllib.parse import unquote, urlparse

from deepfake_detector.core.errors import UserError
from deepfake_detector.core.model_ref import ModelRef

log = logging.getLogger(__name__)

SQLITE = "sqlite:///"


class ModelNotFoundError(UserError, LookupError):
    """The registry has no model under that name, alias or version."""


BY_ALIAS = (
    "SELECT v.name, v.version, v.run_id, v.storage_location FROM registered_model_aliases a "
    "JOIN model_versions v ON v.name = a.name AND v.version = a.version "
    "AND v.workspace = a.workspace WHERE a.name = ? AND a.alias = ?"
)
BY_VERSION = (
    "SELECT name, version, run_id, storage_location FROM model_versions "
    "WHERE name = ? AND version = ?"
)


def resolve(uri: str, tracking_uri: str | None = None) -> tuple[Path, ModelRef]:
    """The local folder of a registered model (with its MLmodel file) and which version it is."""
    found = resolve_from_sqlite(uri, tracking_uri) if tracking_uri else None
    if found is not None:
        return found
    from importlib.util import find_spec

    if find_spec("mlflow") is None:  # the light install reads SQLite stores and model folders
        raise UserError(
            f"{uri}: this tracking store ({tracking_uri or 'MLflow default'}) is read through "
            "MLflow, which this install lacks: pip install 'deepfake-detector[registry]'"
        )
    from deepfake_detector.core.tracking import fetch_registered_model

    return fetch_registered_model(uri, tracking_uri)


def resolve_from_sqlite(uri: str, tracking_uri: str) -> tuple[Path, ModelRef] | None:
    """The answer from the SQLite tables, or None when this store or URI needs MLflow."""
    if not tracking_uri.startswith(SQLITE) or not uri.startswith("models:/"):
        return None
    database = Path(tracking_uri.removeprefix(SQLITE))
    if not database.is_file():
        return None
    rest = uri.removeprefix("models:/")
    if "@" in rest:
        name, alias = rest.split("@", 1)
        args: tuple[str, str] | tuple[str, int] = (name, alias)
        query = BY_ALIAS
    elif "/" in rest and rest.rsplit("/", 1)[1].isdigit():
        name, number = rest.rsplit("/", 1)
        query, args = BY_VERSION, (name, int(number))
    else:
        return None
    try:
        with sqlite3.connect(f"{database.resolve().as_uri()}?mode=ro", uri=True) as db:
            row = db.execute(query, args).fetchone()
    except sqlite3.Error as exc:  # another schema, a locked file: MLflow knows better
        log.debug("registry lookup through MLflow (%s)", exc)
        return None
    if row is None:
        raise ModelNotFoundError(
            f"{uri}: no such registered model in {database} (train and register one first: "
            "`dvc repro`, or `make demo`)"
        )
    name, version, run_id, location = row
    folder = _local_folder(location)
    if folder is None or not (folder / "MLmodel").is_file():
        return None
    return folder, ModelRef(uri, name, str(version), run_id)


def _local_folder(location: str | None) -> Path | None:
    if not location:
        return None
    parsed = urlparse(location)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme == "" and location.startswith("/"):
        return Path(location)
    return None
