"""Fetch one video: http(s) with timeouts, retries with back-off, resume of partial files, a
size cap and SHA-256 checks; local paths and file:// copied. The download stage's client.

HTTP downloads stream into a hidden `.<name>.part` beside `dest` and resume with a `Range`
request after a dropped connection, a read timeout or a 5xx/429 answer, within one run or on the
next one. A `.part` is kept only when the retries ran out on such transient errors; any other
failure removes it. The finished file is renamed onto `dest` only after its size and checksum
are verified.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import socket
import threading
import time
from pathlib import Path, PurePosixPath

import requests
from urllib3.exceptions import InvalidHeader
from urllib3.util.retry import Retry

from deepfake_detector.core.atomic import atomic_path
from deepfake_detector.core.config import DownloadParams
from deepfake_detector.core.errors import UserError
from deepfake_detector.core.keys import file_sha256
from deepfake_detector.sources.manifest import (
    ManifestRow,
    redact_uri,
    resolve_local,
    scrub,
    uri_basename,
    uri_scheme,
)

log = logging.getLogger(__name__)

HTTP_SCHEMES = ("http", "https")
LOCAL_SCHEMES = ("", "file")
PART_SUFFIX = ".part"
DEFAULT_EXT = ".mp4"
VIDEO_EXTS = frozenset(
    {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp"}
)


MAX_RETRY_AFTER_S = 60.0
_EXT = re.compile(r"\.[a-z0-9]{1,5}")
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


def part_path(dest: Path) -> Path:
    """Where `dest` is downloaded to until verified: hidden, so no partial file is ever in view."""
    return dest.with_name(f".{dest.name}{PART_SUFFIX}")


class DownloadError(UserError, RuntimeError):
    """A video could not be fetched or verified; the message names the uri and the cause."""


class _Transient(Exception):
    """A failure worth retrying: a 5xx or 429 answer, a cut-short body, a refused resume."""

    def __init__(self, message: str, retry_after: float = 0.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


# Connection errors cover read timeouts raised while streaming the body (requests wraps them).
_RETRYABLE = (
    _Transient,
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
)


def fetch(
    uri: str, dest: Path, *, sha256: str | None, params: DownloadParams, manifest_dir: Path
) -> str:
    """Fetch `uri` to `dest` (http(s), or local when allowed), verify it, return its sha256."""
    scheme = uri_scheme(uri)
    expected = sha256.lower() if sha256 else None
    if scheme in HTTP_SCHEMES:
        return _fetch_http(uri, dest, expected, params)
    if scheme in LOCAL_SCHEMES:
        return _copy_local(uri, dest, expected, params, manifest_dir)
    allowed = "http, https" + (", file:// or a local path" if params.allow_local else "")
    raise DownloadError(f"{uri}: unsupported scheme '{scheme}'; allowed: {allowed}")


def _checked_sha256(path: Path, expected: str | None, uri: str, dest: Path) -> str:
    """sha256 of `path`; on a mismatch remove `path` and `dest` and raise DownloadError."""
    actual = file_sha256(path)
    if expected and actual != expected:
        path.unlink(missing_ok=True)
        dest.unlink(missing_ok=True)
        raise _mismatch(uri, expected, actual)
    return actual


def _mismatch(uri: str, expected: str, actual: str) -> DownloadError:
    """The error for a file whose checksum differs from the expected one."""
    return DownloadError(f"{uri}: checksum mismatch: expected sha256 {expected}, got {actual}")


def _too_big(uri: str, size: int, params: DownloadParams) -> DownloadError:
    """The error for a file over `max_bytes`."""
    return DownloadError(f"{uri}: {size} bytes exceeds download.max_bytes={params.max_bytes}")


def _copy_local(
    uri: str, dest: Path, expected: str | None, params: DownloadParams, manifest_dir: Path
) -> str:
    """Copy a local file (temp name, then rename) and verify it."""
    if not params.allow_local:
        raise DownloadError(
            f"{uri}: local files are refused (download.allow_local is false); allowed: http, https"
        )
    try:
        src = resolve_local(uri, manifest_dir)
    except ValueError as exc:
        raise DownloadError(str(exc)) from None
    if not src.is_file():
        raise DownloadError(f"{uri}: no such file ({src})")
    if src.stat().st_size > params.max_bytes:
        raise _too_big(uri, src.stat().st_size, params)
    if dest.exists() and os.path.samefile(src, dest):
        # Source and destination are one file: verify, never delete the source.
        actual = file_sha256(src)
        if expected and actual != expected:
            raise DownloadError(
                f"{uri}: checksum mismatch: expected sha256 {expected}, got {actual}"
            )
        return actual
    try:
        with atomic_path(dest) as tmp:
            shutil.copyfile(src, tmp)
            return _checked_sha256(tmp, expected, uri, dest)
    except OSError as exc:
        raise DownloadError(f"{uri}: cannot copy {src}: {exc}") from exc


def _fetch_http(url: str, dest: Path, expected: str | None, params: DownloadParams) -> str:
    """Download `url` into its partial file with retries and resume, verify, rename onto `dest`."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = part_path(dest)
    with requests.Session() as session:
        _download_with_resume(session, url, part, params)
    actual = _checked_sha256(part, expected, url, dest)
    os.replace(part, dest)
    return actual


def _download_with_resume(
    session: requests.Session, url: str, part: Path, params: DownloadParams
) -> None:
    """Stream `url` into `part`; retry transient failures with back-off, resuming each time."""
    deadline = time.monotonic() + params.deadline_s
    for attempt in range(params.retries + 1):
        try:
            _stream_once(session, url, part, params, deadline)
            return
        except _RETRYABLE as exc:
            if attempt >= params.retries:
                # Keep the .part: the next run resumes it.
                raise DownloadError(
                    f"{url}: gave up after {attempt + 1} attempt(s): {exc}"
                ) from exc
            delay = _retry_delay(exc, params, attempt)
            safe = redact_uri(url)
            log.info(
                "%s: %s; retry %d/%d in %.2fs",
                safe,
                scrub(str(exc), url),
                attempt + 1,
                params.retries,
                delay,
            )
            time.sleep(delay)
        except DownloadError:
            part.unlink(missing_ok=True)
            raise
        except requests.RequestException as exc:
            part.unlink(missing_ok=True)
            raise DownloadError(f"{url}: {exc}") from exc


def _retry_delay(exc: Exception, params: DownloadParams, attempt: int) -> float:
    """Exponential back-off, or the server's Retry-After when longer (capped)."""
    retry_after = exc.retry_after if isinstance(exc, _Transient) else 0.0
    return max(params.backoff_s * 2**attempt, min(retry_after, MAX_RETRY_AFTER_S))


def _stream_once(
    session: requests.Session, url: str, part: Path, params: DownloadParams, deadline: float
) -> None:
    """One GET: append to `part` on 206, start over on 200; raise _Transient on a short body.

    `timeout_s` bounds each wait for bytes; `deadline` bounds the whole download, so a server
    that trickles a byte at a time cannot hold the stage: the response is closed when it passes.
    """
    offset = part.stat().st_size if part.exists() else 0
    # identity: byte ranges and Content-Length must refer to the file's own bytes.
    headers = {"Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    late = DownloadError(f"{url}: took longer than download.deadline_s={params.deadline_s:g}")
    if time.monotonic() >= deadline:
        raise late
    with session.get(url, headers=headers, stream=True, timeout=params.timeout_s) as resp:
        plan = _plan(resp, url, part, offset, params)
        if plan is None:
            return
        start, total = plan
        size = start
        expired = threading.Event()

        def expire() -> None:
            expired.set()
            _abort(resp)

        timer = threading.Timer(max(0.0, deadline - time.monotonic()), expire)
        timer.daemon = True
        timer.start()
        try:
            with part.open("ab" if start else "wb") as out:
                for chunk in resp.iter_content(chunk_size=params.chunk_bytes):
                    if expired.is_set():
                        raise late
                    size += len(chunk)
                    if size > params.max_bytes:
                        raise _too_big(url, size, params)
                    out.write(chunk)
        except DownloadError:
            raise
        except Exception as exc:  # reading a response the timer closed fails in many ways
            if expired.is_set():
                raise late from exc
            raise
        finally:
            timer.cancel()
        if expired.is_set():
            raise late
    if total is not None and size != total:
        raise _Transient(f"body ended after {size} of {total} bytes")


def _abort(resp: requests.Response) -> None:
    """Wake a read blocked on `resp` from another thread: shut its socket down, then close it."""
    sock = getattr(getattr(resp.raw, "_connection", None), "sock", None)
    if sock is None:  # http.client lets go of the connection's socket once a body streams
        reader = getattr(getattr(resp.raw, "_fp", None), "fp", None)
        sock = getattr(getattr(reader, "raw", None), "_sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
    resp.close()


def _plan(
    resp: requests.Response, url: str, part: Path, offset: int, params: DownloadParams
) -> tuple[int, int | None] | None:
    """(byte offset to write from, expected total size) for a response; None if already whole."""
    code = resp.status_code
    if code == 416 and offset:
        if _range_total(resp) == offset:
            return None
        part.unlink(missing_ok=True)
        raise _Transient("server refused the resume range; starting over")
    if code == 429 or code >= 500:
        raise _Transient(f"HTTP {code} {resp.reason}", _retry_after(resp))
    if code >= 400:
        raise DownloadError(f"{url}: HTTP {code} {resp.reason}")
    if code == 206:
        start, total = _partial_plan(resp, part, offset)
    elif code == 200:
        start, total = 0, _content_length(resp)
    else:
        raise DownloadError(f"{url}: unexpected HTTP {code} {resp.reason}")
    if total is not None and total > params.max_bytes:
        raise _too_big(url, total, params)
    return start, total


def _partial_plan(resp: requests.Response, part: Path, offset: int) -> tuple[int, int | None]:
    """Check a 206 answer starts where `part` ends; otherwise drop `part` and retry from zero."""
    match = _CONTENT_RANGE.fullmatch(resp.headers.get("Content-Range", "").strip())
    if match is None or int(match[1]) != offset:
        part.unlink(missing_ok=True)
        raise _Transient("206 answer does not continue the partial file; starting over")
    if match[3] != "*":
        return offset, int(match[3])
    length = _content_length(resp)
    return offset, None if length is None else offset + length


def _content_length(resp: requests.Response) -> int | None:
    """Declared body size, or None when absent, invalid or content-encoded."""
    if resp.headers.get("Content-Encoding", "identity").lower() != "identity":
        return None
    value = resp.headers.get("Content-Length", "")
    return int(value) if value.isdigit() else None


def _range_total(resp: requests.Response) -> int | None:
    """Total size from a 416 answer's `Content-Range: bytes */N`."""
    match = re.fullmatch(r"bytes\s+\*/(\d+)", resp.headers.get("Content-Range", "").strip())
    return int(match[1]) if match else None


def _retry_after(resp: requests.Response) -> float:
    """Seconds the server asks us to wait (Retry-After, seconds or HTTP date), 0 if none."""
    value = resp.headers.get("Retry-After")
    if not value:
        return 0.0
    try:
        return Retry().parse_retry_after(value)
    except InvalidHeader:  # a malformed header only means "no hint"
        return 0.0


def video_filename(row: ManifestRow) -> str:
    """File name of a row's video: its id plus the uri's lower-case extension (default .mp4)."""
    suffix = PurePosixPath(uri_basename(row.uri)).suffix.lower()
    return row.video_id + (suffix if _EXT.fullmatch(suffix) else DEFAULT_EXT)
