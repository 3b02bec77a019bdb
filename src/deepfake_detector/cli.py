"""`deepfake`: one sub-command per pipeline stage (the commands `dvc.yaml` runs), and more.

Errors: what a user can fix (bad params, no model yet, a tracking or Prefect server that does
not answer, a port in use, missing data: the project's `UserError`s) ends the command with one
line `error: ...` that names the remedy, exit status 2, no traceback. Servers and ports are
checked before the command starts its work (`core.runtime`'s pre-flight checks). Anything else
is a bug: one `error: unexpected ...` line that says where its traceback was written, exit
status 1; with `-v` the traceback is printed instead.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer

from deepfake_detector.core.config import DEFAULT_PARAMS, ParamsError, load_params
from deepfake_detector.core.dag import STAGES, STUDY_STAGES, stage, stages_until
from deepfake_detector.core.errors import UserError
from deepfake_detector.core.runtime import (
    check_port_free,
    check_prefect_api,
    check_tracking_store,
    prepare_environment,
    setup_logging,
)

if TYPE_CHECKING:
    from deepfake_detector.core.config import Params
    from deepfake_detector.inference.predict import Detector

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


def _run_stage(name: str, params_path: Path) -> None:
    prepare_environment()
    setup_logging()
    with _guarded(name):
        settings = load_params(params_path)
        if _logs_to_mlflow(name):
            _check_tracking(settings)
        report = stage(name).function()(settings, Path("."))
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
    from flows.pipeline import deepfake_pipeline

    with _guarded("flow"):
        deepfake_pipeline(params_path=str(params), until=until)


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
    from flows.pipeline import serve_deployment

    serve_deployment(str(params))


class RuntimeChoice(StrEnum):
    """`--runtime` (the values of `predict.Runtime`)."""

    auto = "auto"
    litert = "litert"
    tensorflow = "tensorflow"


class Quantization(StrEnum):
    """`export --quantize` (the values of `export.Quantize`)."""

    none = "none"
    float16 = "float16"
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


def _detector(
    model: str | None, config: Path | None, params_path: Path, runtime: str = "auto"
) -> Detector:
    """Load the model quietly (by default params' registry alias); registry URIs use the
    tracking URI from params or the env."""
    from deepfake_detector.inference.predict import Runtime, load_detector

    model = model or load_params(params_path).registry.alias_uri
    uri = _check_model_exists(model, params_path)
    try:
        return load_detector(model, config, cast(Runtime, runtime), uri)
    except FileNotFoundError as exc:
        raise UserError(f"{exc} ({NO_MODEL_YET})") from exc


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


def _inputs(paths: list[Path]) -> list[Path]:
    """Files as given; folders expanded recursively to the images and videos inside.

    Links are not followed into folders (no loop can trap the walk); a link with a media name
    that leads nowhere (dangling, or a loop) is kept, so that it gets its own error.
    """
    from deepfake_detector.sources.images import (
        IMAGE_SUFFIXES,
        UNSUPPORTED_SUFFIXES,
        VIDEO_SUFFIXES,
    )

    media = IMAGE_SUFFIXES | VIDEO_SUFFIXES | UNSUPPORTED_SUFFIXES
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out += sorted(
                p
                for p in path.rglob("*")
                if p.suffix.lower() in media
                and (p.is_file() or (p.is_symlink() and not p.exists()))
            )
        else:
            out.append(path)
    return out


@app.command()
def predict(
    paths: Annotated[list[Path], typer.Argument(help="Images, videos or folders (recursive).")],
    model: ModelOption = None,
    config: Annotated[
        Path | None, typer.Option(help="inference.json for a local model (default: beside it).")
    ] = None,
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
    runtime: RuntimeOption = RuntimeChoice.auto,
    params: ParamsOption = DEFAULT_PARAMS,
) -> None:
    """Real or fake? A verdict per image or video, with per-face evidence."""
    from tqdm import tqdm

    prepare_environment()
    setup_logging(logging.WARNING)
    with _guarded("predict", lock=False):
        detector = _detector(model, config, params, runtime.value)
        if fpr is not None:
            detector.use_fpr(fpr)
    files = _inputs(paths)
    failed = 0
    results = []
    for path in tqdm(files, desc="predict", unit="file", disable=None, file=sys.stderr):
        result = detector.predict_path(path, frames)
        failed += result["verdict"] == "error"
        if as_json:
            typer.echo(json.dumps(result, default=float))
        else:
            results.append(result)
    if not as_json:
        _print_table(results, detector.ref.label())
        info = detector.model_info()
        typer.echo(f"{detector.ref.label()} {info['trained_on']}.")
        if info["demo"]:
            typer.echo(
                "This is the demo model (synthetic identities): its verdicts say nothing "
                "about real deepfakes."
            )
    if failed or not files:
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


@app.command(name="app")
def serve_app(
    model: ModelOption = None,
    config: Annotated[Path | None, typer.Option(help="inference.json for a local model.")] = None,
    host: Annotated[
        str, typer.Option(help="Interface to bind; 0.0.0.0 exposes the app.")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(min=0, max=65535, help="Port (0: the first free one from 7860).")
    ] = 7860,
    max_file_size: Annotated[str, typer.Option(help="Largest upload accepted.")] = "50mb",
    concurrency: Annotated[int, typer.Option(help="Analyses running at once.")] = 2,
    queue_size: Annotated[int, typer.Option(help="Requests waiting at most.")] = 64,
    runtime: RuntimeOption = RuntimeChoice.auto,
    params: ParamsOption = DEFAULT_PARAMS,
) -> None:
    """The web app: upload a picture or a clip, get a verdict with per-face evidence."""
    prepare_environment()
    setup_logging(logging.WARNING)
    with _guarded("app", lock=False):
        check_port_free(host, port)  # before the model loads and Gradio is imported
    from deepfake_detector.inference.app import build_app, demo_examples
    from deepfake_detector.inference.model_card import card_markdown

    with _guarded("app", lock=False):
        detector = _detector(model, config, params, runtime.value)
        settings = load_params(params)
        card = _card_of_folder(detector.folder, settings) if detector.folder else None
        card_text = None if card is None else card_markdown(card, detector.ref)
    images, videos = demo_examples(settings.paths.frames_dir, settings.paths.demo_dir)
    demo = build_app(detector, images, videos, card_text)
    demo.queue(default_concurrency_limit=concurrency, max_size=queue_size)
    demo.launch(
        server_name=host,
        server_port=port or None,
        max_file_size=max_file_size,
        show_error=False,
        footer_links=["api"],
    )


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


@app.command(name="rest")
def serve_rest(
    model: ModelOption = None,
    config: Annotated[Path | None, typer.Option(help="inference.json for a local model.")] = None,
    host: Annotated[
        str, typer.Option(help="Interface to bind; 0.0.0.0 exposes the endpoint.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port.")] = 5001,
    runtime: RuntimeOption = RuntimeChoice.auto,
    params: ParamsOption = DEFAULT_PARAMS,
) -> None:
    """REST in MLflow's scoring protocol (POST /invocations, GET /ping), without MLflow."""
    prepare_environment()
    setup_logging(logging.WARNING)
    with _guarded("rest", lock=False):
        check_port_free(host, port)  # before the model loads
    import uvicorn

    from deepfake_detector.inference.rest import build_api

    with _guarded("rest", lock=False):
        detector = _detector(model, config, params, runtime.value)
    uvicorn.run(build_api(detector), host=host, port=port, workers=1, log_level="warning")


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
    from deepfake_detector.sources.datasets import DatasetError, make_manifest

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


SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", "-S", help="Override a parameter, e.g. -S train.epochs=2 (repeatable)."),
]


def _study_params(params_path: Path, overrides: list[str] | None) -> Params:
    from deepfake_detector.core.config import with_overrides

    try:
        return with_overrides(load_params(params_path), overrides or [])
    except ParamsError as exc:
        raise _fail(exc) from exc


def _command_line() -> str:
    """How this run was asked for, for the report (`deepfake ...`)."""
    return " ".join(["deepfake", *sys.argv[1:]])


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


@app.command()
def export(
    fmt: Annotated[
        ExportFormat, typer.Option("--format", help="Only tflite for now.")
    ] = ExportFormat.tflite,
    quantize: Annotated[
        Quantization,
        typer.Option(help="none (float32), float16 weights, or int8 (float in and out)."),
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


def _hyphenated_aliases() -> None:
    """`deepfake crop-faces` beside `deepfake crop_faces`: hidden aliases of the same commands."""
    for info in list(app.registered_commands):
        if info.name and "_" in info.name and info.callback is not None:
            app.command(name=info.name.replace("_", "-"), hidden=True)(info.callback)


_hyphenated_aliases()


def main() -> None:
    """Console entry point: the project's own errors as one `error:` line (exit 2), bugs too.

    Unless `-v`, TensorFlow's native INFO lines are dropped from stderr (`native_stderr`). A
    `UserError` that no command caught prints its message. Any other exception is a bug, not
    the user's input: one line names it and the file its traceback was written to (exit 1);
    with `-v` Python prints the traceback itself.
    """
    from deepfake_detector.core import runtime
    from deepfake_detector.core.native_stderr import drop_native_info

    if not {"-v", "--verbose"} & set(sys.argv[1:]):  # TensorFlow's C++ INFO lines: no Python
        drop_native_info()  # setting reaches them; the process's stderr is filtered instead
    try:
        app()
    except UserError as exc:
        raise SystemExit(_fail(exc).exit_code) from None
    except Exception as exc:
        if runtime.chosen_level == logging.DEBUG:
            raise
        raise SystemExit(_fail(_bug(exc), status=1).exit_code) from None


def _bug(exc: Exception) -> str:
    """The message for an unexpected exception; its traceback goes to a file it names."""
    import tempfile
    import traceback

    text = "".join(traceback.format_exception(exc))
    what = f"unexpected {type(exc).__name__}: {exc}"
    try:
        with tempfile.NamedTemporaryFile(
            "w", prefix="deepfake-traceback-", suffix=".txt", delete=False
        ) as file:
            file.write(text)
    except OSError:
        sys.stderr.write(text)
        return f"{what} (a bug, not your input: the traceback is above)"
    return f"{what} (a bug, not your input: the traceback is in {file.name}, or run with -v)"


if __name__ == "__main__":
    main()
