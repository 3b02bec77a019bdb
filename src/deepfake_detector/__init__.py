"""Reproducible deepfake detection: from labelled videos to a registered detector and verdicts."""

from importlib.metadata import PackageNotFoundError, version

try:  # one source of the version: pyproject.toml, as installed
    __version__ = version("deepfake-detector")
except PackageNotFoundError:  # the code alone, e.g. copied into a registered model
    __version__ = "0+unknown"
