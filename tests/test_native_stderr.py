"""TensorFlow's C++ INFO lines and LiteRT's start-up line are dropped from stderr; everything
else passes unchanged."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import os, sys
    from deepfake_detector.core.native_stderr import drop_native_info
    drop_native_info()
    os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written"
                b" to STDERR\\n")
    os.write(2, b"I0000 00:00:1796220979.417159    9429 port.cc:153] oneDNN custom operations\\n")
    os.write(2, b"I1202 13:45:01.123456    4242 cpu_feature_guard.cc:227] This TensorFlow\\n")
    os.write(2, b"W1202 13:45:01.123456    4242 op_kernel.cc:1] a native warning stays\\n")
    os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\\n")
    os.write(2, b"progress  10%\\rprogress 100%\\n")
    os.write(2, b"In a line of its own\\n")
    sys.stderr.write("2026-12-02 14:00:00,000 INFO deepfake_detector: a log line\\n")
    raise SystemExit("error: the last line, written at exit")
    """
)


def test_native_info_lines_are_dropped_and_the_rest_passes_in_order() -> None:
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.decode() == (
        "W1202 13:45:01.123456    4242 op_kernel.cc:1] a native warning stays\n"
        "progress  10%\rprogress 100%\n"
        "In a line of its own\n"
        "2026-12-02 14:00:00,000 INFO deepfake_detector: a log line\n"
        "error: the last line, written at exit\n"
    )
