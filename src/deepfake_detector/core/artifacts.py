"""Artifact names: the files the stages write and the front ends and studies read, declared once.

A module of names alone, so that a stage's code (its module and everything it imports) does not
take in the pipeline's or the studies' tables for the sake of a file name.
"""

from __future__ import annotations

REPORT_NAME = "report.json"  # every stage's report, in its folder: inputs' facts only, hashed
RUN_LOG_SUFFIX = ".run.json"  # `<folder>.run.json`: one run's facts (time, host), not hashed
DEMO_MANIFEST = "manifest.csv"
VIDEOS_TABLE = "videos.csv"
FRAMES_INDEX = "frames.csv"
FRAMES_STAMP = "frames.json"  # per-video folder: the frames made and the key that made them
FACES_INDEX = "faces.csv"
FACES_STAMP = "faces.json"
SPLIT_FILE = "split.csv"
MODEL_FILE = "model.keras"
HISTORY_FILE = "history.csv"
METRICS_FILE = "metrics.json"
INFERENCE_FILE = "inference.json"  # how to run the model: sizes, threshold, calibration, origin
PREDICTIONS_FILE = "predictions.csv"
VIDEO_PREDICTIONS_FILE = "video_predictions.csv"
FIGURE_FILE = "evaluation.png"
CURVES = ("roc_frame.csv", "roc_video.csv", "pr_frame.csv", "pr_video.csv")
CONFUSIONS = ("confusion_frame.csv", "confusion_video.csv")  # one row per item: actual, predicted
RELIABILITY_FILE = "reliability_frame.csv"  # per bin of P(fake): mean predicted, share fake
CARD_JSON = "model_card.json"  # a registered version's model card, in its artifacts
CARD_MARKDOWN = "model_card.md"
STUDY_SUMMARY = "metrics.json"  # a study's headline numbers, which the evaluation quotes
