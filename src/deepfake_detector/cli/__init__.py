"""`deepfake`: one sub-command per pipeline stage (the commands `dvc.yaml` runs), and more.

Errors: what a user can fix (bad params, no model yet, a tracking or Prefect server that does
not answer, a port in use, missing data: the project's `UserError`s) ends the command with one
line `error: ...` that names the remedy, exit status 2, no traceback. Servers and ports are
checked before the command starts its work (`core.runtime`'s pre-flight checks). Anything else
is a bug: one `error: unexpected ...` line that says where its traceback was written, exit
status 1; with `-v` the traceback is printed instead.
"""

from __future__ import annotations

import logging
import sys

from deepfake_detector.cli import (  # noqa: F401  (they add the commands)
    data,
    monitoring,
    pipeline,
    serving,
    verdicts,
)
from deepfake_detector.cli.common import _fail, app
from deepfake_detector.core.errors import UserError

__all__ = ["app", "main"]


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
