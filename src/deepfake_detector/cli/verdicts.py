"""The commands that answer "real or fake?" and say what answers: predict, the web app, REST,
the model card, and the export for devices."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from deepfake_detector.core.config import DEFAULT_PARAMS, load_params
from deepfake_detector.core.errors import UserError
from deepfake_detector.core.runtime import (
    check_tracking_store,
    prepare_environment,
    setup_logging,
)
from deepfake_detector.inference import fanout

if TYPE_CHECKING:
    from deepfake_detector.core.config import Params
    from deepfake_detector.inference.predict import Detector

from deepfake_detector.cli.common import ParamsOption, _guarded, app


class RuntimeChoice(StrEnum):
    """`--runtime` (the values of `predict.Runtime`)."""

    auto = "auto"
    litert = "litert"
    tensorflow = "tensorflow"


class Quantization(StrEnum):
    """`export --quantize` (the values of `export.Quantize`)."""

    none = "none"
    float16 = "float16"
    dynamic = "dynamic"
    int8 = "int8"


class ExportFormat(StrEnum):
    """`export --format`."""

    tflite = "tflite"


RuntimeOption = Annotated[
    RuntimeChoice,
    typer.Option(help="auto: LiteRT when the model has its .tflite files, else TensorFlow."),
]
ModelOption = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        help="Registry URI (models:/NAME@ALIAS, models:/NAME/VERSION) or a local model.keras "
        "(default: params' registry.model_name at registry.alias).",
    ),
]


ConfigOption = Annotated[
    Path | None, typer.Option(help="inference.json for a local model (default: beside it).")
]


def _spec(
    model: str | None, config: Path | None, params_path: Path, runtime: str, fpr: float | None
) -> fanout.DetectorSpec:
    """What loads the detector, here and in worker processes (default model: params')."""
    model = model or load_params(params_path).registry.alias_uri
    uri = _check_model_exists(model, params_path)
    return fanout.DetectorSpec(model, str(config) if config else None, runtime, uri, fpr)


def _load(spec: fanout.DetectorSpec) -> Detector:
    """The detector of a spec, quietly; a missing model is one error line."""
    try:
        return spec.load()
    except FileNotFoundError as exc:
        raise UserError(f"{exc} ({NO_MODEL_YET})") from exc


def _detector(
    model: str | None, config: Path | None, params_path: Path, runtime: str = "auto"
) -> Detector:
    """Load the model quietly (by default params' registry alias); registry URIs use the
    tracking URI from params or the env."""
    return _load(_spec(model, config, params_path, runtime, None))


NO_MODEL_YET = "to train and register one: `make demo`, or `dvc repro` in an activated .venv"


def _check_model_exists(model: str, params_path: Path) -> str | None:
    """The tracking URI for a registry model; a clear error when there is nothing to load yet."""
    from deepfake_detector.core.tracking import tracking_uri

    if not model.startswith(("models:/", "runs:/")):
        if not Path(model).exists():
            raise UserError(f"no model at {model} ({NO_MODEL_YET})")
        return None
    uri = tracking_uri(load_params(params_path))
    check_tracking_store(uri)
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        raise UserError(f"no model is registered yet ({uri} does not exist): {NO_MODEL_YET}")
    return uri


@app.command()
def predict(
    paths: Annotated[list[Path], typer.Argument(help="Images, videos or folders (recursive).")],
    model: ModelOption = None,
    config: ConfigOption = None,
    frames: Annotated[
        int | None, typer.Option(help="Frames to sample per video (default: as in training).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per input.")] = False,
    fpr: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Operating point: the threshold that called this share of the validation real "
            "faces fake (e.g. 0.01; default: the model's own).",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Append one JSON answer per input to this file as it is made (synced); inputs "
            "it already answers (same path, same content) are skipped, so a killed run resumes.",
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Worker processes, each loading the model once (default: one per core, at "
            f"most {fanout.AUTO_MAX_WORKERS}, for {fanout.AUTO_MIN_INPUTS} "
            "inputs or more on the light runtime; else 1).",
        ),
    ] = None,
    dask: Annotated[
        str | None,
        typer.Option(
            help="Answer on a Dask cluster: its scheduler (tcp://host:8786), or `local` for one "
            "started on this machine. Inputs must be readable from every worker."
        ),
    ] = None,
    runtime: RuntimeOption = RuntimeChoice.auto,
    params: ParamsOption = DEFAULT_PARAMS,
) -> None:
    """Real or fake? A verdict per image or video, with per-face evidence."""
    from deepfake_detector.inference.batch import AnswerLog, Progress, content_key, media_files

    prepare_environment()
    setup_logging(logging.WARNING)
    with _guarded("predict", lock=False):
        spec = _spec(model, config, params, runtime.value, fpr)
        detector = _load(spec)
        try:
            answers = AnswerLog(out) if out is not None else None
        except OSError as exc:
            raise UserError(f"{out}: cannot write the answers there ({exc.strerror})") from exc
    total = sum(1 for _ in media_files(paths))  # counted first: the listing is never held
    progress = Progress(total)
    failed = 0
    results = []
    keys: dict[Path, str] = {}  # the content hashes of the inputs in flight

    def pending() -> Iterator[Path]:
        for path in media_files(paths):
            key = content_key(path) if answers is not None else ""
            if answers is not None and answers.done(path, key):
                progress.step(skipped=True)
                continue
            keys[path] = key
            yield path

    if dask:
        stream = fanout.on_dask(spec, pending(), frames, dask)
    elif (processes := workers or fanout.auto_workers(total, detector.runtime)) > 1:
        stream = fanout.on_processes(spec, pending(), frames, processes)
    else:
        stream = ((p, detector.predict_path(p, frames)) for p in pending())
    with _guarded("predict", lock=False):  # a cluster that does not answer: one error line
        for path, result in stream:
            failed += result["verdict"] == "error"
            if answers is not None:
                answers.append(result, keys.pop(path, ""))
            elif as_json:
                typer.echo(json.dumps(result, default=float))
            else:
                results.append(result)
            progress.step()
    progress.close()
    if answers is not None:
        answers.close()
        typer.echo(
            f"{out}: {progress.done - progress.skipped} answered now, {progress.skipped} "
            f"before, {failed} error(s) among the new ones",
            err=True,
        )
    elif not as_json:
        _print_table(results, detector.ref.label())
        info = detector.model_info()
        typer.echo(f"{detector.ref.label()} {info['trained_on']}.")
        if info["demo"]:
            typer.echo(
                "This is the demo model (synthetic identities): its verdicts say nothing "
                "about real deepfakes."
            )
    if failed or not total:
        raise typer.Exit(1)


def _print_table(results: list[dict], model_label: str) -> None:
    """A readable table: one row per input."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Verdicts by {model_label}")
    table.add_column("path", overflow="fold")
    for column in ("verdict", "P(fake)", "faces", "note"):
        table.add_column(column)
    for r in results:
        p = "" if r["p_fake"] is None else f"{r['p_fake']:.3f}"
        note = r.get("error", "")
        if r.get("kind") == "video" and "tracks" in r:
            note = f"{len(r['tracks'])} track(s), {r['frames_sampled']} frames"
        table.add_row(r["path"], r["verdict"], p, str(len(r["faces"])), note)
    Console().print(table)


def _card_of_folder(folder: Path, settings: Params) -> dict | None:
    """The model card a model folder carries; for the workspace's own trained model (never
    registered) the card `register_model` would write, built from its evaluation; else None."""
    from deepfake_detector.inference.model_card import read_card

    card = read_card(folder)
    if card is None and folder.resolve() == Path(settings.paths.model_dir).resolve():
        from deepfake_detector.stages.register import workspace_card

        card = workspace_card(settings)
    return card


@app.command()
def card(
    model: Annotated[
        str | None,
        typer.Argument(
            help="Registry URI (models:/NAME@ALIAS, models:/NAME/VERSION) or a model folder "
            "(default: params' registry.model_name at registry.alias)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The card as JSON.")] = False,
    params: ParamsOption = DEFAULT_PARAMS,
) -> None:
    """A model's card: intended use, training data, test results, error rates by group."""
    prepare_environment()
    setup_logging(logging.WARNING)
    from deepfake_detector.core.model_ref import ModelRef
    from deepfake_detector.inference.model_card import card_markdown

    with _guarded("card", lock=False):
        settings = load_params(params)
        uri = model or settings.registry.alias_uri
        tracking = _check_model_exists(uri, params)
        if tracking is not None:
            from deepfake_detector.inference.registry_lookup import resolve

            folder, ref = resolve(uri, tracking)
        else:
            path = Path(uri)
            folder, ref = (path if path.is_dir() else path.parent), ModelRef(uri)
        found = _card_of_folder(folder, settings)
        if found is None:
            raise UserError(
                f"{uri} has no model card (a version registered before cards were written, "
                "or a model file alone): register it again with `deepfake register_model`"
            )
    typer.echo(json.dumps(found, indent=2) if as_json else card_markdown(found, ref))


@app.command()
def export(
    fmt: Annotated[
        ExportFormat, typer.Option("--format", help="Only tflite for now.")
    ] = ExportFormat.tflite,
    quantize: Annotated[
        Quantization,
        typer.Option(
            help="none (float32), float16 weights, dynamic (8-bit weights, float activations) "
            "or int8 (8-bit weights and activations, float in and out); a quantized file whose "
            "test AUC falls over 0.05 below the model's is refused."
        ),
    ] = Quantization.none,
    model: Annotated[
        str, typer.Option("--model", "-m", help="Registry URI or local model.keras.")
    ] = "models/detector/model.keras",
    out: Annotated[Path, typer.Option(help="Folder for the exported model and its report.")] = Path(
        "models/export"
    ),
    params: ParamsOption = DEFAULT_PARAMS,
) -> None:
    """Export for devices (TFLite) and report agreement with the Keras model on the test split."""
    prepare_environment()
    setup_logging(logging.WARNING)
    with _guarded("export", lock=False):
        settings = load_params(params)
        _check_model_exists(model, params)
        from deepfake_detector.inference.export import export_tflite  # TensorFlow: after checks

        report = export_tflite(settings, model, out, quantize.value)
    typer.echo(json.dumps(report.to_dict(), indent=2, default=str))
