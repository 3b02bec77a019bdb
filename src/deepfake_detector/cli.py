"""`deepfake`: one sub-command per pipeline stage (the commands `dvc.yaml` runs), and more."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated

import typer

from deepfake_detector.config import DEFAULT_PARAMS, ParamsError, load_params
from deepfake_detector.runtime import prepare_environment, setup_logging
from deepfake_detector.stages import STAGES, stage

app = typer.Typer(
    help="Deepfake detection pipeline: labelled videos -> registered detector -> verdicts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
log = logging.getLogger("deepfake_detector")

ParamsOption = Annotated[
    Path, typer.Option("--params", "-p", help="params.yaml to read (paths are relative to cwd).")
]


def _run_stage(name: str, params_path: Path) -> None:
    prepare_environment()
    setup_logging()
    try:
        params = load_params(params_path)
    except ParamsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    report = stage(name)(params, Path("."))
    typer.echo(json.dumps(report.to_dict(), indent=2, default=str))


def _add_stage_command(name: str) -> None:
    module = STAGES[name]

    def command(params: ParamsOption = DEFAULT_PARAMS) -> None:
        _run_stage(name, params)

    command.__doc__ = f"Run the `{name}` stage ({module})."
    app.command(name=name)(command)


for _name in STAGES:
    _add_stage_command(_name)


@app.command()
def pipeline(params: ParamsOption = DEFAULT_PARAMS) -> None:
    """Run every stage in order in this process (without DVC's caching; `dvc repro` has it)."""
    for name in STAGES:
        _run_stage(name, params)


@app.command()
def flow(params: ParamsOption = DEFAULT_PARAMS) -> None:
    """Run the Prefect flow once (same stages, as Prefect tasks, cached across runs)."""
    prepare_environment()
    setup_logging()
    from flows.pipeline import deepfake_pipeline

    deepfake_pipeline(params_path=str(params))


@app.command()
def serve(params: ParamsOption = DEFAULT_PARAMS) -> None:
    """Serve the scheduled Prefect deployment (cron from params) until stopped."""
    prepare_environment()
    setup_logging()
    from flows.pipeline import serve_deployment

    serve_deployment(str(params))


def main() -> None:
    """Console entry point."""
    app()


if __name__ == "__main__":
    main()
