"""Process-wide settings applied by entry points (CLI, flows, app): quiet logs, no phoning home."""

from __future__ import annotations

import logging
import os
from pathlib import Path

QUIET_ENV = {
    # The product must not phone home.
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "1",
    "GRADIO_ANALYTICS_ENABLED": "False",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DVC_NO_ANALYTICS": "1",
    # TensorFlow's C++ start-up chatter drowns the stage logs.
    "TF_CPP_MIN_LOG_LEVEL": "2",
}


def prepare_environment(root: Path = Path(".")) -> None:
    """Set telemetry off and give Prefect a home inside the project unless the user chose one."""
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("PREFECT_HOME", str((root / ".prefect").resolve()))


def setup_logging(level: int = logging.INFO) -> None:
    """One readable log format for every entry point."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
