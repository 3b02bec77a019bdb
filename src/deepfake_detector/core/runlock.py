"""One pipeline run per checkout at a time: a second one is refused with a message saying why.

The lock is an OS file lock (`filelock`) on `.deepfake.lock` in the project root, so it is
released when its process ends in any way, SIGKILL included: a killed run never blocks the next
one. Who holds it (pid, command, start time) is written beside it for the refusal message.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from deepfake_detector.core.errors import UserError

LOCK_FILE = ".deepfake.lock"
HOLDER_FILE = ".deepfake.lock.json"

_held: set[Path] = set()  # lock files this process holds (nested runs pass straight through)


class PipelineBusy(UserError):
    """Another run of the pipeline holds this checkout."""


def _holder(root: Path) -> str:
    try:
        info = json.loads((root / HOLDER_FILE).read_text())
    except (OSError, ValueError):
        return "another process"
    return f"pid {info.get('pid')} (`{info.get('command')}`, started {info.get('started')})"


@contextmanager
def exclusive_run(root: Path, what: str) -> Iterator[None]:
    """Hold the checkout's pipeline lock for the block, or raise PipelineBusy at once."""
    path = (root / LOCK_FILE).resolve()
    if path in _held:
        yield
        return
    lock = FileLock(path, timeout=0)
    try:
        lock.acquire()
    except Timeout as exc:
        raise PipelineBusy(
            f"{what}: another pipeline run is using this checkout: {_holder(root)}. "
            f"Wait for it to finish (or stop it), then run again; nothing was changed."
        ) from exc
    _held.add(path)
    try:
        info = {
            "pid": os.getpid(),
            "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
            "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "what": what,
        }
        (root / HOLDER_FILE).write_text(json.dumps(info) + "\n")
        yield
    finally:
        _held.discard(path)
        lock.release()
