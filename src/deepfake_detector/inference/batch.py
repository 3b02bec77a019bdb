"""Batch verdicts that survive a crash: a folder of any size, answered into a JSON Lines file.

`media_files` streams the inputs (folders walked in sorted order, one directory listing in
memory at a time, links not followed into folders). `AnswerLog` appends one answer per input as
it is made, flushed and synced to disk, each with the SHA-256 of the input's content; a second
run with the same file skips every input already answered with the same content, so a run that
was killed resumes where it stopped, and nothing is answered twice. A line cut off by the kill
is dropped when the log is opened again. `Progress` says how far a batch is: a bar when stderr
is a terminal, a plain line every few seconds otherwise.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

from deepfake_detector.core.keys import file_sha256
from deepfake_detector.sources.images import IMAGE_SUFFIXES, UNSUPPORTED_SUFFIXES, VIDEO_SUFFIXES

MEDIA_SUFFIXES = IMAGE_SUFFIXES | VIDEO_SUFFIXES | UNSUPPORTED_SUFFIXES
CONTENT_KEY = "sha256"  # the field of an answer that holds its input's content hash


def media_files(paths: Iterable[Path]) -> Iterator[Path]:
    """Files as given; folders walked recursively (sorted, streamed) to the images and videos
    inside. A link with a media name that leads nowhere (dangling, or a loop) is kept, so that
    it gets its own error; links are never followed into folders, so no loop traps the walk."""
    for path in paths:
        if path.is_dir() and not path.is_symlink():
            yield from _walk(path)
        else:
            yield path


def _walk(folder: Path) -> Iterator[Path]:
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        path = Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            yield from _walk(path)
        elif path.suffix.lower() in MEDIA_SUFFIXES and _file_or_broken_link(entry):
            yield path


def _file_or_broken_link(entry: os.DirEntry[str]) -> bool:
    """A file, or a link that leads nowhere (dangling, or a loop: asking raises ELOOP)."""
    try:
        if entry.is_file():
            return True
    except OSError:
        return True
    return entry.is_symlink() and not os.path.exists(entry.path)  # never raises


def content_key(path: Path) -> str:
    """The input's content hash; empty when it cannot be read (its answer says why)."""
    try:
        return file_sha256(path)
    except OSError:
        return ""


class AnswerLog:
    """A JSON Lines file of answers, one per input, appended and synced as each is made."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.answered: set[tuple[str, str]] = set()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._drop_cut_line()
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    answer = json.loads(line)
                except ValueError:
                    continue
                if isinstance(answer, dict) and answer.get(CONTENT_KEY):
                    self.answered.add((str(answer.get("path")), str(answer[CONTENT_KEY])))
        self._file: TextIO = path.open("a", encoding="utf-8")

    def _drop_cut_line(self) -> None:
        """A run killed while writing leaves a last line without its newline: cut it off."""
        if not self.path.is_file():
            return
        with self.path.open("rb+") as file:
            data = file.read()
            if data and not data.endswith(b"\n"):
                file.truncate(data.rfind(b"\n") + 1)

    def done(self, path: Path, key: str) -> bool:
        """Whether this input, with this content, is answered already."""
        return bool(key) and (str(path), key) in self.answered

    def append(self, answer: dict[str, Any], key: str) -> None:
        """Write one answer with its input's content hash, and make it durable."""
        self._file.write(json.dumps({**answer, CONTENT_KEY: key}, default=float) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())
        self.answered.add((str(answer.get("path")), key))

    def close(self) -> None:
        self._file.close()


class Progress:
    """How far a batch is: tqdm's bar on a terminal, else one plain line every `every_s`."""

    def __init__(self, total: int, stream: TextIO = sys.stderr, every_s: float = 10.0) -> None:
        self.total, self.stream, self.every_s = total, stream, every_s
        self.done = self.skipped = self.lines = 0
        self.started = self.last = time.monotonic()
        self.bar = None
        if stream.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc="predict", unit="file", file=stream)

    def step(self, skipped: bool = False) -> None:
        """One more input answered (or found answered already)."""
        self.done += 1
        self.skipped += skipped
        if self.bar is not None:
            self.bar.update(1)
            return
        now = time.monotonic()
        # Short runs stay quiet; a long one says where it is, and where it ended.
        if now - self.last >= self.every_s or (self.done == self.total and self.lines):
            self.last = now
            self.lines += 1
            self.stream.write(self.line(now) + "\n")
            self.stream.flush()

    def line(self, now: float) -> str:
        """`predict: 120/1000 files (20 answered before), 3.1 files/s, about 5 min left`."""
        worked = self.done - self.skipped
        rate = worked / max(now - self.started, 1e-9)
        left = self.total - self.done
        eta = f", about {_duration(left / rate)} left" if rate > 0 and left else ""
        before = f" ({self.skipped} answered before)" if self.skipped else ""
        return f"predict: {self.done}/{self.total} files{before}, {rate:.2f} files/s{eta}"

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
