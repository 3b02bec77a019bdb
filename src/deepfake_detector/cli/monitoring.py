"""The command that watches a deployed detector: `deepfake drift`."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated

import typer

from deepfake_detector.cli.common import ParamsOption, _guarded, app
from deepfake_detector.core.config import DEFAULT_PARAMS, load_params
from deepfake_detector.core.runtime import prepare_environment, setup_logging


@app.command()
def drift(
    answers: Annotated[
        Path,
        typer.Argument(
            help="A JSONL of `deepfake predict --out`, or a folder of them.", show_default=False
        ),
    ],
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help="The model that answered: registry URI, model folder or model.keras "
            "(default: params' registry.model_name at registry.alias).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The report as JSON.")] = False,
    params: ParamsOption = DEFAULT_PARAMS,
) -> None:
    """Do the faces answered still look like the model's held-out faces? P(fake), face size,
    detector confidence and sharpness, each with a two-sample test; exit 3 when a retrain is
    due (for schedulers), else 0."""
    prepare_environment()
    setup_logging(logging.WARNING)
    from deepfake_detector.cli.verdicts import _check_model_exists
    from deepfake_detector.inference.drift_report import drift_report

    with _guarded("drift", lock=False):
        uri = model or load_params(params).registry.alias_uri
        tracking = _check_model_exists(uri, params)
        report = drift_report(answers, uri, tracking)
    typer.echo(json.dumps(report.to_dict(), indent=2) if as_json else report.table())
    if report.retrain_due:
        raise typer.Exit(3)
