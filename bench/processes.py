"""Run a command as a child process: wall time, peak resident memory, exit status, output."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench.context import BIN

WRAPPER = Path(__file__).with_name("peak_rss.py")


@dataclass(frozen=True)
class Measured:
    """One finished command."""

    seconds: float
    peak_rss_bytes: int
    returncode: int
    output: str

    def check(self, what: str) -> Measured:
        """Raise with the tail of the output when the command failed."""
        if self.returncode != 0:
            raise RuntimeError(f"{what} failed ({self.returncode}):\n{self.output[-3000:]}")
        return self


def child_env(project: Path | None = None) -> dict[str, str]:
    """The environment for a command: the venv first on PATH, own Prefect home."""
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.pop("MLFLOW_TRACKING_URI", None)
    if project is not None:
        env["PREFECT_HOME"] = str(project / ".prefect")
    return env


def run_measured(
    cmd: list[str], cwd: Path, timeout_s: float, env: dict[str, str] | None = None
) -> Measured:
    """Run `cmd` under the small `peak_rss.py` launcher, which measures it alone.

    The launcher leads its own session, so a timeout kills it and the command's processes and
    nothing else.
    """
    with tempfile.TemporaryDirectory() as tmp:
        result, log_path = Path(tmp) / "result.json", Path(tmp) / "output.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, str(WRAPPER), str(result), "--", *cmd],
                cwd=cwd,
                env=env if env is not None else child_env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        output = log_path.read_text(errors="replace")
        if not result.is_file():
            return Measured(
                timeout_s, 0, -signal.SIGKILL, output + f"\n[killed after {timeout_s:.0f} s]"
            )
        data = json.loads(result.read_text())
    return Measured(data["seconds"], data["peak_rss_bytes"], data["returncode"], output)
