"""`python peak_rss.py RESULT.json -- CMD...`: run CMD, write its wall time and peak RSS as JSON.

A child's peak RSS as the kernel reports it (wait4) counts the memory it shared with its parent
when it was forked, so the benchmarks never fork the measured command from their own (large)
process: this small stdlib-only script does, and reports the numbers of its child alone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time


def main(argv: list[str]) -> int:
    """Run the command after `--`, write {seconds, peak_rss_bytes, returncode}, pass its status."""
    if len(argv) < 3 or argv[1] != "--":
        print(__doc__, file=sys.stderr)
        return 2
    result_path, cmd = argv[0], argv[2:]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    with open(result_path, "w") as out:
        json.dump(
            {
                "seconds": seconds,
                "peak_rss_bytes": usage.ru_maxrss * 1024,  # Linux reports KiB
                "returncode": proc.returncode,
            },
            out,
        )
    return proc.returncode if proc.returncode >= 0 else 128 - proc.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
