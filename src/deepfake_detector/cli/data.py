"""The data and study commands: manifests from a dataset's layout, face folders imported, the
generalisation studies (one command each, from the study table) and their results table."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Any

import typer

from deepfake_detector.cli.common import (
    ParamsOption,
    SetOption,
    _check_tracking,
    _command_line,
    _fail,
    _guarded,
    _study_params,
    app,
)
from deepfake_detector.core.config import DEFAULT_PARAMS, load_params
from deepfake_detector.core.runtime import (
    prepare_environment,
    setup_logging,
)
from deepfake_detector.core.study_table import STUDY_STAGES


@app.command(name="make_manifest")
def make_manifest_command(
    dataset: Annotated[str, typer.Argument(help="dfd, dfdc, ffpp, celebdf or folder.")],
    root: Annotated[
        Path, typer.Argument(help="The dataset's folder, as its download lays it out.")
    ],
    out: Annotated[Path, typer.Option(help="Manifest to write.")] = Path(
        "data/manifests/dataset.csv"
    ),
    option: Annotated[
        list[str] | None,
        typer.Option(
            help="Reader option KEY=VALUE, e.g. compression=c40 or methods=Deepfakes,FaceSwap."
        ),
    ] = None,
) -> None:
    """Turn a public dataset's own layout into a manifest (labels, leakage-free groups, splits)."""
    prepare_environment()
    setup_logging()
    from deepfake_detector.sources.dataset_layouts import DatasetError
    from deepfake_detector.sources.datasets import make_manifest

    options: dict[str, object] = {}
    for item in option or []:
        key, _, value = item.partition("=")
        # Readers take typed options; the command line gives strings.
        if key == "methods":
            options[key] = value.split(",")
        elif value in ("true", "false"):
            options[key] = value == "true"
        else:
            options[key] = value
    try:
        report = make_manifest(dataset, root, out, **options)
    except DatasetError as exc:
        raise _fail(exc) from exc
    typer.echo(json.dumps(report.to_dict(), indent=2, default=str))


@app.command(name="import_faces")
def import_faces_command(
    params: ParamsOption = DEFAULT_PARAMS, overrides: SetOption = None
) -> None:
    """Index a folder of face images (real/, fake/) into a faces table: a start without videos."""
    prepare_environment()
    setup_logging()
    from deepfake_detector.sources.face_images import import_faces

    settings = _study_params(params, overrides)
    with _guarded("import_faces"):
        report = import_faces(settings, Path("."))
    typer.echo(json.dumps(report.to_dict(), indent=2, default=str))


def _study(name: str, params: Path, overrides: list[str] | None) -> None:
    prepare_environment()
    setup_logging()
    settings = _study_params(params, overrides)
    with _guarded(name):
        _check_tracking(settings)  # before the study's heavy imports
        study: Any = STUDY_STAGES[name].function()  # a study also takes the command line
        report = study(settings, Path("."), command=_command_line())
    typer.echo(json.dumps(report.to_dict(), indent=2, default=str))


def _add_study_command(name: str) -> None:
    declared = STUDY_STAGES[name]

    def command(params: ParamsOption = DEFAULT_PARAMS, overrides: SetOption = None) -> None:
        _study(name, params, overrides)

    command.__doc__ = (
        f"Study: {declared.summary} (report to studies/reports; {declared.module_name})"
    )
    app.command(name=name)(command)


for _name in STUDY_STAGES:
    if _name != "import_faces":  # a study's input, with a command of its own above
        _add_study_command(_name)


@app.command(name="study_results")
def study_results_command(
    out: Annotated[Path, typer.Option(help="Markdown table to write.")] = Path(
        "studies/RESULTS.md"
    ),
    params: ParamsOption = DEFAULT_PARAMS,
) -> None:
    """Every study run in MLflow (failed ones too), one row per configuration, as Markdown."""
    prepare_environment()
    setup_logging(logging.WARNING)
    from deepfake_detector.studies.results import write_results

    with _guarded("study_results", lock=False):
        settings = load_params(params)
        _check_tracking(settings)
        rows = write_results(settings, out)
    typer.echo(f"{out}: {rows} run(s)")
