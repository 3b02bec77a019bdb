"""The pipeline's commands: one per stage (from the stage table), the whole pipeline, the
Prefect flow and its deployment, and the files generated from the code (dvc.yaml, the
parameter reference)."""

from __future__ import annotations

import importlib
import json
import logging
import sys
from pathlib import Path
from types import ModuleType
from typing import Annotated

import typer

from deepfake_detector.cli.common import (
    ParamsOption,
    _check_prefect,
    _check_tracking,
    _fail,
    _guarded,
    _logs_to_mlflow,
    app,
)
from deepfake_detector.core import runtime
from deepfake_detector.core.config import DEFAULT_PARAMS, load_params
from deepfake_detector.core.dag import STAGES, stage, stages_until
from deepfake_detector.core.runtime import (
    prepare_environment,
    setup_logging,
)


def _run_stage(name: str, params_path: Path) -> None:
    prepare_environment()
    setup_logging()
    with _guarded(name):
        settings = load_params(params_path)
        if _logs_to_mlflow(name):
            _check_tracking(settings)
        report = stage(name).function()(settings, Path("."))
    if runtime.chosen_level == logging.DEBUG:  # -v: the whole report (it is in its folder too)
        typer.echo(json.dumps(report.to_dict(), indent=2, default=str))


def _add_stage_command(name: str) -> None:
    declared = stage(name)

    def command(params: ParamsOption = DEFAULT_PARAMS) -> None:
        _run_stage(name, params)

    command.__doc__ = f"{declared.summary} (stage, {declared.module_name})"
    app.command(name=name)(command)


for _name in STAGES:
    _add_stage_command(_name)


@app.command()
def pipeline(params: ParamsOption = DEFAULT_PARAMS) -> None:
    """Run every stage in order in this process (without DVC's caching; `dvc repro` has it)."""
    with _guarded("pipeline"):
        _check_tracking(load_params(params))
        for name in STAGES:
            _run_stage(name, params)


def _project_flow(root: Path | None = None) -> ModuleType:
    """The checkout's Prefect flow (`flows/pipeline.py`, beside `tasks/`): the project's entry
    points, run from its root, not part of the installed library."""
    root = (root or Path.cwd()).resolve()
    if not (root / "flows" / "pipeline.py").is_file():
        raise _fail(
            f"no flows/pipeline.py in {root}: run `deepfake flow` and `deepfake serve` in the "
            "project's checkout (where dvc.yaml and params.yaml are)"
        )
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return importlib.import_module("flows.pipeline")


@app.command()
def flow(
    params: ParamsOption = DEFAULT_PARAMS,
    until: Annotated[
        str, typer.Option(help="Stop after this stage (e.g. crop_faces: data preparation).")
    ] = "register_model",
) -> None:
    """Run the Prefect flow once (same stages, as Prefect tasks, cached across runs).

    `flow.task_runner` in params chooses where the tasks run: threads here, or a Dask cluster.
    """
    prepare_environment()
    setup_logging()
    if until not in STAGES:
        raise _fail(f"--until: unknown stage {until!r}; stages are {', '.join(STAGES)}")
    with _guarded("flow", lock=False):  # checked before Prefect starts: no traceback in its log
        settings = load_params(params)
        if any(_logs_to_mlflow(s.name) for s in stages_until(until)):
            _check_tracking(settings)
        _check_prefect()
    with _guarded("flow"):
        _project_flow().deepfake_pipeline(params_path=str(params), until=until)


@app.command(name="dvc_yaml")
def dvc_yaml_command(
    check: Annotated[
        bool, typer.Option("--check", help="Exit 1 if a file differs from the stage table.")
    ] = False,
) -> None:
    """Write dvc.yaml and studies/dvc.yaml from the stage table (core/dag.py), or check them."""
    from deepfake_detector.core.dvc_yaml import FILES, render

    stale = []
    for path, which in FILES.items():
        text = render(which)
        if path.is_file() and path.read_text() == text:
            continue
        stale.append(str(path))
        if not check:
            path.write_text(text)
            typer.echo(f"wrote {path}")
    if check and stale:
        typer.echo(
            f"error: {', '.join(stale)} differ from the stage table: run `deepfake dvc_yaml`",
            err=True,
        )
        raise typer.Exit(1)


PARAMS_DOC = Path("docs/params.md")


@app.command(name="params_doc")
def params_doc_command(
    check: Annotated[
        bool, typer.Option("--check", help="Exit 1 if docs/params.md is out of date.")
    ] = False,
    params: ParamsOption = DEFAULT_PARAMS,
) -> None:
    """Write the parameter reference (docs/params.md) from params.yaml and config.py."""
    from deepfake_detector.core.params_doc import params_reference

    text = params_reference(params)
    if PARAMS_DOC.is_file() and PARAMS_DOC.read_text() == text:
        return
    if check:
        typer.echo(f"error: {PARAMS_DOC} is out of date: run `deepfake params_doc`", err=True)
        raise typer.Exit(1)
    PARAMS_DOC.parent.mkdir(parents=True, exist_ok=True)
    PARAMS_DOC.write_text(text)
    typer.echo(f"wrote {PARAMS_DOC}")


@app.command()
def serve(params: ParamsOption = DEFAULT_PARAMS) -> None:
    """Serve the scheduled Prefect deployment (cron from params) until stopped."""
    prepare_environment()
    setup_logging()
    with _guarded("serve", lock=False):  # each scheduled run takes the lock itself
        _check_tracking(load_params(params))
        _check_prefect(scheduling=True)
    with _guarded("serve", lock=False):
        flows = _project_flow()
    flows.serve_deployment(str(params))


@app.command()
def summary(params: ParamsOption = DEFAULT_PARAMS) -> None:
    """What the last pipeline run registered, its test AUCs, and what to try next."""
    from deepfake_detector.recipes.reporting import run_summary

    with _guarded("summary", lock=False):
        paths = load_params(params).paths
        try:
            lines = run_summary(paths.evaluation_dir, paths.registration_dir, paths.demo_dir)
        except FileNotFoundError as exc:
            raise _fail(f"no finished pipeline run here ({exc.filename}): run `make demo`") from exc
    typer.echo("\n".join(lines))


@app.command(name="plots_page")
def plots_page() -> None:
    """Make `dvc plots show` render its interactive plots offline (Vega carried in the page)."""
    import subprocess

    from deepfake_detector.recipes.plots_page import write_plots_template

    with _guarded("plots_page", lock=False):
        if not Path(".dvc").is_dir():
            raise _fail("not a DVC project here (no .dvc/): run it in the project's root")
        try:
            page = write_plots_template(Path("."))
        except ImportError as exc:
            raise _fail(f"{exc.name} is not installed: make setup installs it") from exc
        except subprocess.CalledProcessError as exc:
            raise _fail(f"dvc config failed: {exc.stderr.strip()}") from exc
    typer.echo(f"wrote {page}; `dvc plots show` now renders without the network")
