"""An HTTP file server on 127.0.0.1 that misbehaves on request: statuses, drops, stalls, resets."""

from __future__ import annotations

import re
import socket
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass
class Served:
    """A file the test server holds, and how it misbehaves."""

    body: bytes
    status: int = 200  # anything else: always answer this status
    fail_first: int = 0  # answer 500 to the first n requests
    drop_first: bool = False  # first request: close the connection half-way through the body
    stall_first: float = 0.0  # first request: stall this long half-way through the body
    no_length: bool = False  # no Content-Length: the body ends when the connection closes
    ranges: bool = True  # honour Range requests
    delay_s: float = 0.0  # every request: wait this long before answering (a slow server)
    hang: bool = False  # every request: accept, then never answer (until the server stops)
    reset: bool = False  # every request: reset the connection (TCP RST) before answering
    short: bool = False  # every request: announce the full length, send half, close
    trickle_s: float = 0.0  # every request: send the body one byte at a time, this far apart


class _Handler(BaseHTTPRequestHandler):
    server: FileServer

    def do_GET(self) -> None:
        served = self.server.files.get(self.path)
        n = self.server.record(self.path, self.headers.get("Range"))
        if served is not None and (served.hang or served.reset or served.delay_s):
            if served.hang:
                self.server.stopping.wait()
                return
            if served.reset:
                linger = struct.pack("ii", 1, 0)  # close with RST instead of FIN
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
                self.close_connection = True
                return
            time.sleep(served.delay_s)
        if served is None or served.status != 200 or n <= served.fail_first:
            status = 404 if served is None else (served.status if n > served.fail_first else 500)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body, start = served.body, 0
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
        if match and served.ranges:
            start = int(match[1])
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        payload = body[start:]
        if not served.no_length:
            self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        half = len(payload) // 2
        if served.trickle_s:
            for i in range(len(payload)):
                if self.server.stopping.is_set():
                    return
                self.wfile.write(payload[i : i + 1])
                self.wfile.flush()
                time.sleep(served.trickle_s)
            return
        if served.short:
            self.wfile.write(payload[:half])
            self.close_connection = True
            return
        if n == 1 and served.drop_first:
            self.wfile.write(payload[:half])  # HTTP/1.0: the connection closes after this
            return
        if n == 1 and served.stall_first:
            self.wfile.write(payload[:half])
            self.wfile.flush()
            time.sleep(served.stall_first)
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""


class FileServer(ThreadingHTTPServer):
    """Serves `files` by path and logs every request with its Range header."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files: dict[str, Served] = {}
        self.requests: list[tuple[str, str | None]] = []
        self.stopping = threading.Event()  # releases hanging handlers
        self._lock = threading.Lock()

    def record(self, path: str, range_header: str | None) -> int:
        """Log a request; return how many requests this path has had, this one included."""
        with self._lock:
            self.requests.append((path, range_header))
            return sum(1 for p, _ in self.requests if p == path)

    def hits(self, path: str) -> list[str | None]:
        """Range headers of the requests for `path`, in order."""
        with self._lock:
            return [r for p, r in self.requests if p == path]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client hanging up mid-body is expected here."""


@pytest.fixture
def server() -> Iterator[FileServer]:
    srv = FileServer()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield srv
    finally:
        srv.stopping.set()
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=5)
