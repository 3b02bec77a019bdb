"""Reproducible deepfake detection: from labelled videos to a registered detector and verdicts."""

__version__ = "0.1.0"
