"""Writes that never leave a half-written file behind: temp name in the same folder, then rename."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

TMP_PREFIX = ".tmp-"


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temp path beside `target`; rename it onto `target` only if the block succeeds."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, suffix=target.suffix, dir=target.parent)
    os.close(fd)
    os.chmod(tmp, 0o644)  # mkstemp makes 0600; outputs are meant to be read by others
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


@contextmanager
def atomic_dir(target: Path) -> Iterator[Path]:
    """Yield a temp folder beside `target`; swap it in for `target` only if the block succeeds.

    At no moment is a half-written or half-deleted folder visible under `target`'s name.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=TMP_PREFIX, dir=target.parent))
    tmp.chmod(0o755)
    old = None
    try:
        yield tmp
        if target.exists():  # move the old folder out of view in one step, delete it after
            old = Path(tempfile.mkdtemp(prefix=TMP_PREFIX, dir=target.parent))
            os.replace(target, old / target.name)
        os.replace(tmp, target)
    finally:
        for leftover in (tmp, old):
            if leftover is not None and leftover.exists():
                shutil.rmtree(leftover, ignore_errors=True)


def write_text(target: Path, text: str) -> None:
    """Write text atomically."""
    with atomic_path(target) as tmp:
        tmp.write_text(text)


def write_json(target: Path, obj: Any) -> None:
    """Write JSON atomically, pretty-printed and key-sorted so diffs stay readable."""
    write_text(target, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def remove_stale_temps(folder: Path) -> int:
    """Delete temp files or folders a killed run left behind; return how many."""
    if not folder.exists():
        return 0
    removed = 0
    for path in folder.rglob(f"{TMP_PREFIX}*"):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed += 1
    return removed
