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


# Third-party loggers that speak at INFO about their own work (every HTTP request, every poll of
# the Prefect API): WARNING unless the user asks for more (`deepfake -v`).
NOISY_LOGGERS = ("httpx", "httpcore", "urllib3", "absl", "tensorflow", "h5py", "matplotlib", "PIL")

# Set by `deepfake -v` / `-q`: overrides the level a command would choose.
chosen_level: int | None = None


def setup_logging(level: int = logging.INFO) -> None:
    """One readable log format for every entry point; other libraries' chatter kept down."""
    level = chosen_level if chosen_level is not None else level
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger().setLevel(level)
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(level if level <= logging.DEBUG else logging.WARNING)
