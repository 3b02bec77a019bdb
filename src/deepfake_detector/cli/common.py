"""What every `deepfake` command shares: the Typer app, its options, the error policy (one
`error:` line, exit 2, for what a user can fix), the run lock, and the pre-flight checks."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from deepfake_detector.core.config import ParamsError, load_params
from deepfake_detector.core.dag import stage
from deepfake_detector.core.errors import UserError
from deepfake_detector.core.runtime import (
    check_prefect_api,
    check_tracking_store,
)

if TYPE_CHECKING:
    from deepfake_detector.core.config import Params


app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
log = logging.getLogger("deepfake_detector")


def _print_version(value: bool) -> None:
    if value:
        from deepfake_detector import __version__

        typer.echo(f"deepfake-detector {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Debug logs, other libraries' included.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Warnings and errors only.")] = False,
) -> None:
    """Deepfake detection pipeline: labelled videos -> registered detector -> verdicts.

    Every command is also accepted with hyphens (`deepfake crop-faces`).
    """
    from deepfake_detector.core import runtime

    if verbose or quiet:
        runtime.chosen_level = logging.DEBUG if verbose else logging.WARNING


ParamsOption = Annotated[
    Path, typer.Option("--params", "-p", help="params.yaml to read (paths are relative to cwd).")
]


def _fail(message: object, status: int = 2) -> typer.Exit:
    """Print `error: message` as one line; the Exit to raise."""
    typer.echo("error: " + " ".join(str(message).split()), err=True)
    return typer.Exit(status)


@contextmanager
def _guarded(what: str, lock: bool = True) -> Iterator[None]:
    """Hold the checkout's pipeline lock (when writing) and print user errors without traceback."""
    from deepfake_detector.core.runlock import exclusive_run

    try:
        with exclusive_run(Path("."), what) if lock else nullcontext():
            yield
    except UserError as exc:
        raise _fail(exc) from exc


def _check_tracking(settings: Params) -> None:
    """The MLflow tracking store answers (or can be created), before any work that logs to it."""
    from deepfake_detector.core.tracking import tracking_uri

    check_tracking_store(tracking_uri(settings))


def _logs_to_mlflow(name: str) -> bool:
    """Stages that read the `registry` params write to the tracking store."""
    return "registry" in stage(name).params


def _check_prefect(scheduling: bool = False) -> None:
    """The Prefect API in the settings (PREFECT_API_URL, env or profile) answers, if one is set."""
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if url:
        check_prefect_api(url, scheduling)


SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", "-S", help="Override a parameter, e.g. -S train.epochs=2 (repeatable)."),
]


def _study_params(params_path: Path, overrides: list[str] | None) -> Params:
    from deepfake_detector.core.config import with_overrides
    from deepfake_detector.core.study_config import studies_of

    try:
        settings = with_overrides(load_params(params_path), overrides or [])
        studies_of(settings)  # the studies' section, checked before any work
        return settings
    except ParamsError as exc:
        raise _fail(exc) from exc


def _command_line() -> str:
    """How this run was asked for, for the report (`deepfake ...`)."""
    return " ".join(["deepfake", *sys.argv[1:]])
