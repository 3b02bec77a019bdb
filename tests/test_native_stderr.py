"""TensorFlow's C++ INFO lines, LiteRT's start-up line and the TFLite converter's settings are
dropped from stderr; everything else passes unchanged."""

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
    os.write(2, b"fully_quantize: ")  # the TFLite converter writes its settings in pieces
    os.write(2, b"0, inference_type: 6, input_inference_type: FLOAT32, output_inference_type: ")
    os.write(2, b"FLOAT32\\n")
    os.write(2, b"fully quantized? a line of the user's own stays\\n")
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
        "fully quantized? a line of the user's own stays\n"
        "progress  10%\rprogress 100%\n"
        "In a line of its own\n"
        "2026-12-02 14:00:00,000 INFO deepfake_detector: a log line\n"
        "error: the last line, written at exit\n"
    )


CHILD_HOLDS_STDERR = textwrap.dedent(
    """
    import atexit, os, subprocess, sys, threading
    from deepfake_detector.core.native_stderr import drop_native_info
    drop_native_info()
    # A child that outlives the command with the filtered stderr open (as multiprocessing's
    # resource tracker or a Dask worker can).
    child = subprocess.Popen(["sleep", "60"], start_new_session=True)
    os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\\n")
    os.write(2, b"a line before the end\\n")
    atexit._run_exitfuncs()  # the filter's end: it must not wait for the child's copy to close
    alive = [t.name for t in threading.enumerate() if t.name == "stderr"]
    child.kill()
    print(alive)
    """
)


def test_the_filter_ends_at_exit_although_a_child_holds_stderr_open() -> None:
    result = subprocess.run(
        [sys.executable, "-c", CHILD_HOLDS_STDERR], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"  # the filter's thread stopped at the end mark
    assert result.stderr == "a line before the end\n"


def test_an_end_mark_split_across_reads_is_never_shown() -> None:
    import os
    import threading
    import time

    from deepfake_detector.core.native_stderr import END_MARK, _pump

    source_read, source_write = os.pipe()
    shown_read, shown_write = os.pipe()
    pump = threading.Thread(target=_pump, args=(source_read, shown_write))
    pump.start()
    os.write(source_write, b"kept\n" + END_MARK[:7])
    time.sleep(0.2)  # the pump reads the first half on its own
    os.write(source_write, END_MARK[7:] + b"after the end\n")
    pump.join(timeout=10)
    assert not pump.is_alive()
    os.close(shown_write)
    os.close(source_write)
    with os.fdopen(shown_read, "rb") as shown:
        assert shown.read() == b"kept\n"
