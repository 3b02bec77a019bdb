"""Content keys: what DVC hashes (code, params section, input content), not path strings."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from functools import cache
from pathlib import Path

from pydantic import BaseModel

_BLOCK = 1 << 20


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


@cache
def _source_digest(source_file: Path) -> str:
    return hashlib.sha256(source_file.read_bytes()).hexdigest()


def files_digest(sources: Iterable[Path]) -> str:
    """Digest of source files' bytes, in the order given (read once per process)."""
    digest = hashlib.sha256()
    for source in sources:
        digest.update(_source_digest(source).encode())
    return digest.hexdigest()


def content_key(code: str, section: BaseModel | None, *inputs: str) -> str:
    """Key of one unit of work: code digest, params section values, input content digests."""
    digest = hashlib.sha256(code.encode())
    if section is not None:
        digest.update(section.model_dump_json().encode())
    for value in inputs:
        digest.update(b"\0" + value.encode())
    return digest.hexdigest()
