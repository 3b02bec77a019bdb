"""`register_model`: log the trained detector to MLflow and crown it if it beats the champion."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import pandas as pd

from deepfake_detector import __version__
from deepfake_detector.core import cache_keys
from deepfake_detector.core.artifacts import (
    CARD_JSON,
    CARD_MARKDOWN,
    HISTORY_FILE,
    INFERENCE_FILE,
    METRICS_FILE,
    MODEL_FILE,
    REPORT_NAME,
    SPLIT_FILE,
)
from deepfake_detector.core.config import Params, RegistryParams
from deepfake_detector.core.keys import file_sha256
from deepfake_detector.core.reports import StageReport, run_log_path
from deepfake_detector.core.tracking import (
    connect,
    decide_and_tag,
    describe_version,
    git_commit,
    log_training_run,
)
from deepfake_detector.inference import pyfunc
from deepfake_detector.inference.model_card import (
    build_card,
    data_versions,
    interval,
    study_lines,
)
from deepfake_detector.recipes.assessment import study_score
from deepfake_detector.sources.demographics import ATTRIBUTES

log = logging.getLogger(__name__)


def register_model(params: Params, root: Path = Path(".")) -> StageReport:
    """Stage: one MLflow run per trained model; register a version; move `champion` if better."""
    report = StageReport("register_model")
    report.details["key"] = cache_keys.stage_key("register_model", params, root)
    model_dir, eval_dir = root / params.paths.model_dir, root / params.paths.evaluation_dir
    metrics = json.loads((eval_dir / METRICS_FILE).read_text())
    history = (
        pd.read_csv(model_dir / HISTORY_FILE).to_dict("records")
        if (model_dir / HISTORY_FILE).stat().st_size > 1
        else []
    )
    # The gate: frame-level test AUC (hundreds of frames; video AUC moves in steps of 1/n).
    score = metrics["frame"]["auc"]
    score = float("nan") if score is None else float(score)
    inference = registered_inference(params, root)
    experiment_id = connect(params, root)
    card = workspace_card(params, root)
    commit, split_sha = card["model"]["git_commit"], card["model"]["split_sha256"]
    artifacts = sorted(p for p in eval_dir.iterdir() if p.suffix in {".png", ".json", ".csv"})
    artifacts += [model_dir / HISTORY_FILE, model_dir / REPORT_NAME, run_log_path(model_dir)]
    logged = log_training_run(
        params,
        experiment_id,
        model_path=model_dir / MODEL_FILE,
        history=history,
        test_metrics=metrics,
        artifacts=[p for p in artifacts if p.exists()],
        log_model=lambda: pyfunc.log_model(params, model_dir / MODEL_FILE, inference, card),
        tags={
            "git_commit": commit,
            "data_version": split_sha[:16],
            "manifest": str(params.download.manifest),
        },
    )
    card_uri = f"models:/{params.registry.model_name}/{logged.version}"
    describe_version(params, logged.version, model_description(metrics, inference, card_uri))
    refusal = group_gate(metrics, params.registry)
    if refusal:
        log.warning("register_model: the group gate refuses the alias: %s", refusal)
    decision = decide_and_tag(params, logged.version, score, refusal)
    # What was put forward follows from the inputs; what the registry made of it (the version,
    # the run, the decision against the champion of the day) is this run's own fact.
    report.details["model_sha256"] = card["model"]["model_sha256"]
    report.details["selection_score"] = None if math.isnan(score) else score
    report.details["alias_uri"] = params.registry.alias_uri
    report.run.update(decision, run_id=logged.run_id, model_uri=logged.model_uri)
    report.count("registered_versions")
    log.info("register_model: version %s -> %s", logged.version, decision["decision"])
    return report.finish(root / params.paths.registration_dir)


def registered_inference(params: Params, root: Path = Path(".")) -> dict[str, Any]:
    """The evaluation's inference settings with the studies of the recipe as their reports stand
    (`study`): the version carries the numbers it was registered with. The evaluation quotes no
    study, so a study's new run changes no output of the pipeline's stages."""
    inference = json.loads((root / params.paths.evaluation_dir / INFERENCE_FILE).read_text())
    return dict(inference) | {"study": study_score(params, root)}


def workspace_card(params: Params, root: Path = Path(".")) -> dict[str, Any]:
    """The model card of the workspace's trained model, from its evaluation and provenance:
    what `register_model` writes into the version it registers."""
    eval_dir, model_dir = root / params.paths.evaluation_dir, root / params.paths.model_dir
    return build_card(
        json.loads((eval_dir / METRICS_FILE).read_text()),
        registered_inference(params, root),
        model_name=params.registry.model_name,
        data_terms=params.registry.data_terms,
        provenance={
            "git_commit": git_commit(root),
            "package_version": __version__,
            "model_sha256": file_sha256(model_dir / MODEL_FILE),
            "split_sha256": file_sha256(root / params.paths.split_dir / SPLIT_FILE),
            "data_versions": data_versions(root),
        },
    )


def group_gate(metrics: dict[str, Any], registry: RegistryParams) -> str | None:
    """Why a version may not take the alias: a group (age band, gender or race, with at least
    `min_group_faces` held-out real faces) called real faces fake more than
    `max_group_fpr_ratio` times as often as all labelled people together, its whole 95%
    interval above that line (one false alarm in twenty faces is not a gap); None when it may."""
    groups = metrics.get("groups") or {}
    ratio = registry.max_group_fpr_ratio
    if not groups or ratio <= 0:
        return None
    rows = [
        (attribute, value, row)
        for attribute in ATTRIBUTES
        for value, row in (groups.get(attribute) or {}).items()
        if row["n"] >= registry.min_group_faces
    ]
    if not rows:
        return None
    overall = float(groups["fpr"])

    def low(row: dict[str, Any]) -> float:
        bound = row.get("fpr_low")
        return float(row["fpr"]) if bound is None or math.isnan(float(bound)) else float(bound)

    attribute, value, worst = max(rows, key=lambda r: (low(r[2]), r[2]["fpr"]))
    if low(worst) <= ratio * overall:
        return None
    return (
        f"{attribute} {value}: {worst['fpr']:.1%} of {worst['n']} held-out real faces called "
        f"fake (95% interval from {low(worst):.1%}), more than {ratio:g} times the "
        f"{overall:.1%} of all {groups['faces']} labelled people (registry.max_group_fpr_ratio)"
    )


def model_description(metrics: dict, inference: dict, card_uri: str | None = None) -> str:
    """The registered version's description: what it learnt from, how it scored, the study
    scores of its recipe (so that no reader takes the demo model for a real detector), and
    where its model card is."""
    training = inference.get("training", {})
    lines = []
    if training.get("demo"):
        lines.append(
            "DEMO MODEL: trained on the embedded demo set (synthetic identities made from "
            "three photographs); its verdicts say nothing about real deepfakes."
        )
    lines.append(f"Training: {training.get('summary', 'not recorded')}.")
    lines.append(
        f"Test split: frame AUC {interval(metrics.get('frame', {}), 'auc')}, "
        f"video AUC {interval(metrics.get('video', {}), 'auc')} (95% bootstrap intervals)."
    )
    datasets = metrics.get("datasets") or {}
    if len(datasets) > 1:
        parts = [
            f"{name} {interval(m, 'auc')} ({m.get('n', 0):,} frames)"
            for name, m in datasets.items()
        ]
        lines.append(
            "Frame AUC on each dataset's test groups (people or videos never trained on): "
            + "; ".join(parts)
            + "."
        )
    lines += [f"Study {line}" for line in study_lines(inference.get("study") or {})]
    if card_uri:
        lines.append(
            f"Model card: `{CARD_MARKDOWN}` and `{CARD_JSON}` in this version's artifacts "
            f"(`{card_uri}/{CARD_MARKDOWN}`), or `deepfake card {card_uri}`."
        )
    return "\n\n".join(lines)
