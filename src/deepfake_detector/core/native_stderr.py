"""TensorFlow's C++ start-up lines kept off the terminal unless asked for (`deepfake -v`).

TensorFlow's native runtime logs through absl straight to file descriptor 2 before any Python
logging setting or `TF_CPP_MIN_LOG_LEVEL` can stop it (`I0000 ... port.cc:153] oneDNN custom
operations are on ...`, after absl's own notice that logging is not initialised), LiteRT prints
`INFO: Created TensorFlow Lite XNNPACK delegate for CPU.` the same way, and so does the TFLite
converter its settings when it quantizes (`fully_quantize: 0, inference_type: 6, ...`).
`drop_native_info` puts a filter on descriptor 2: those lines and that notice are dropped,
everything else written to stderr (Python's logs, warnings, tracebacks, progress bars) passes
through unchanged.
Partial lines (a progress bar's carriage returns) pass at once unless they could still become one
of the dropped lines.

Child processes (worker processes, a local Dask cluster, multiprocessing's resource tracker)
inherit the filtered descriptor and may keep it open past the command's end. At exit the filter
therefore does not wait for the pipe to close: it sends an end mark through it, after everything
the command wrote, and stops when the mark arrives.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import sys
import threading

# absl's INFO prefix (`I1202 13:45:01.123456  4242 file.cc:153] `; before absl is initialised the
# time reads `00:00:<seconds since 1970>`), and its pre-init notice.
NATIVE_INFO = re.compile(rb"I\d{4} [\d:.]+ +\d+ [\w.-]+:\d+\] ")
ABSL_NOTICE = (
    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
)
# LiteRT's own start-up line, printed once when its interpreter first runs.
LITERT_DELEGATE = b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
# The TFLite converter's settings line, printed (in pieces) by every quantizing conversion.
QUANTIZER_START = b"fully_quantize: "
QUANTIZER_SETTINGS = re.compile(re.escape(QUANTIZER_START) + rb"\d+, inference_type: \d+, ")
END_MARK = b"\x00deepfake-detector: end of stderr\x00\n"  # a line no program writes
_installed = False


def dropped(line: bytes) -> bool:
    """Whether one stderr line is native INFO chatter."""
    body = line.rstrip(b"\r\n")
    if body in (ABSL_NOTICE, LITERT_DELEGATE):
        return True
    return NATIVE_INFO.match(body) is not None or QUANTIZER_SETTINGS.match(body) is not None


def _may_become_dropped(partial: bytes) -> bool:
    """Whether an unfinished line could still turn into one that is dropped."""
    wholes = (ABSL_NOTICE, LITERT_DELEGATE, QUANTIZER_START)
    if any(whole.startswith(partial[: len(whole)]) for whole in wholes):
        return True
    return partial[:1] == b"I" and (len(partial) < 5 or partial[1:5].isdigit())


def drop_native_info() -> None:
    """Filter descriptor 2 for the rest of the process (once; a no-op where it cannot be done)."""
    global _installed
    if _installed:
        return
    try:
        sys.stderr.flush()
        real = os.dup(2)
        read_end, write_end = os.pipe()
        os.dup2(write_end, 2)
    except OSError:
        return
    _installed = True
    pump = threading.Thread(target=_pump, args=(read_end, real), daemon=True, name="stderr")
    pump.start()

    def restore() -> None:
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.flush()
        os.dup2(real, 2)
        with contextlib.suppress(OSError):
            os.write(write_end, END_MARK)  # after all this process wrote: the pump stops there
            os.close(write_end)
        pump.join(timeout=5)

    atexit.register(restore)


def _pump(read_end: int, real: int) -> None:
    pending = b""
    out = os.dup(real)
    try:
        while chunk := os.read(read_end, 65536):
            pending += chunk
            ended = END_MARK in pending
            if ended:
                pending = pending[: pending.index(END_MARK)]
            *lines, pending = re.split(rb"(?<=[\r\n])", pending)
            kept = b"".join(line for line in lines if not dropped(line))
            if pending and (ended or not _held_back(pending)):
                kept += b"" if ended and dropped(pending) else pending
                pending = b""
            if kept:
                os.write(out, kept)
            if ended:
                return
        if pending and not dropped(pending):
            os.write(out, pending)
    finally:
        os.close(read_end)
        os.close(out)


def _held_back(partial: bytes) -> bool:
    """Whether an unfinished line waits for more: it could still become a dropped line, or it
    ends with the start of the end mark."""
    tail = any(partial.endswith(END_MARK[:k]) for k in range(1, len(END_MARK)))
    return tail or _may_become_dropped(partial)
