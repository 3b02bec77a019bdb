"""Process-wide settings applied by entry points (CLI, flows, app): quiet logs, no phoning home,
and the pre-flight checks that turn a server that is down or a port that is taken into one line."""

from __future__ import annotations

import errno
import logging
import os
import socket
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from deepfake_detector.core.config import RegistryParams
from deepfake_detector.core.errors import UserError

QUIET_ENV = {
    # The product must not phone home.
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "1",
    "GRADIO_ANALYTICS_ENABLED": "False",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DVC_NO_ANALYTICS": "1",
    # TensorFlow's C++ start-up chatter drowns the stage logs.
    "TF_CPP_MIN_LOG_LEVEL": "2",
    # Prefect's temporary server (a flow run without a server) gets 20 s to start by default,
    # which a busy 2-core machine can miss; the flow then fails before it begins.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
}


def prepare_environment(root: Path = Path(".")) -> None:
    """Set telemetry off and give Prefect a home inside the project unless the user chose one."""
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("PREFECT_HOME", str((root / ".prefect").resolve()))


# Third-party loggers that speak at INFO about their own work (every HTTP request, every poll of
# the Prefect API): WARNING unless the user asks for more (`deepfake -v`).
NOISY_LOGGERS = (
    "httpx", "httpcore", "urllib3", "absl", "tensorflow", "h5py", "matplotlib", "PIL",
    "mlflow.store",  # "Creating initial MLflow database tables" on a new store
)  # fmt: skip

# Set by `deepfake -v` / `-q`: overrides the level a command would choose.
chosen_level: int | None = None


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _Formatter(logging.Formatter):
    """The log format; a UserError's record without its traceback (its message says it all).

    Prefect logs a failed flow's exception with its traceback; for the project's own errors
    (`core.errors.UserError`) the command prints the message as its `error:` line. At -v the
    traceback stays.
    """

    def format(self, record: logging.LogRecord) -> str:
        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, UserError) or chosen_level == logging.DEBUG:
            return super().format(record)
        saved = record.exc_info, record.exc_text
        record.exc_info, record.exc_text = None, None
        try:
            return super().format(record)
        finally:
            record.exc_info, record.exc_text = saved


def setup_logging(level: int = logging.INFO) -> None:
    """One readable log format for every entry point; other libraries' chatter kept down."""
    level = chosen_level if chosen_level is not None else level
    root = logging.getLogger()
    if not root.handlers:  # as logging.basicConfig: a host's own handlers are left alone
        handler = logging.StreamHandler()
        handler.setFormatter(_Formatter(LOG_FORMAT))
        root.addHandler(handler)
    root.setLevel(level)
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(level if level <= logging.DEBUG else logging.WARNING)


# --- pre-flight checks --------------------------------------------------------------------
# A server that is down or a port that is taken, said in one line before a command starts its
# work: MLflow's client retries a refused connection with back-off for minutes, Prefect's
# client fails with a traceback, and a web server fails only after the model has loaded.

PROBE_TIMEOUT_S = 3.0
DEFAULT_PORTS = {
    "http": 80,
    "https": 443,
    "postgresql": 5432,
    "postgres": 5432,
    "mysql": 3306,
    "mssql": 1433,
}
PROJECT_STORE: str = RegistryParams.model_fields["tracking_uri"].default  # params' default


def unanswered(host: str, port: int, timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """Why nothing accepts a TCP connection at `host:port`; None when something does."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except socket.gaierror:
        return f"unknown host {host}"
    except TimeoutError:
        return f"no answer within {timeout:g} s"
    except OSError as exc:
        return (exc.strerror or str(exc)).lower()


def redacted(uri: str) -> str:
    """`uri` without its password (for messages)."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _endpoint(uri: str) -> tuple[str, int] | None:
    """The host and port to probe for a network URI (None: not one, no host, or via a proxy).

    Through an HTTP proxy (HTTP(S)_PROXY, not bypassed by NO_PROXY) the host may be out of
    direct reach while the client gets through: that is left to the client.
    """
    from urllib.request import getproxies, proxy_bypass  # 40 ms: only when a URI is checked

    parts = urlsplit(uri)
    scheme = parts.scheme.split("+")[0].lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    proxies = getproxies()
    proxied = scheme in ("http", "https") and (scheme in proxies or "all" in proxies)
    if proxied and not proxy_bypass(parts.hostname):
        return None
    try:
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError:  # a port that is not a number: the client's own error says it better
        return None
    return parts.hostname, port


def _unwritable(folder: Path) -> str | None:
    """Why `folder` cannot be created or written; None when it can."""
    existing = folder
    while not existing.exists():
        if existing.is_symlink():
            return f"{existing} is a broken link"
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} is not writable"
    return None


def check_tracking_store(uri: str) -> None:
    """A clear error now when the MLflow tracking store cannot answer.

    A tracking server or database (http(s)://, postgresql://, mysql://, mssql://): something
    must accept a connection at its host and port. A SQLite file that does not exist yet: its
    folder must be creatable. Other stores (file:, databricks, ...) are left to MLflow.
    """
    from_env = bool(os.environ.get("MLFLOW_TRACKING_URI"))
    instead = (
        "unset MLFLOW_TRACKING_URI to use the project's SQLite store"
        if from_env
        else f"set registry.tracking_uri in params.yaml back to {PROJECT_STORE}"
    )
    if uri.startswith("sqlite:///") and ":memory:" not in uri:
        database = Path(uri.removeprefix("sqlite:///"))
        problem = None if database.is_file() else _unwritable(database.parent)
        if problem:
            raise UserError(
                f"the MLflow tracking store {uri} cannot be created ({problem}); {instead}"
            )
        return
    endpoint = _endpoint(uri)
    if endpoint is None:
        return
    why = unanswered(*endpoint)
    if why is None:
        return
    if uri.startswith(("http://", "https://")):
        raise UserError(
            f"the MLflow tracking server at {redacted(uri)} does not answer ({why}); start it "
            f"(`make mlflow-ui` serves the project's store at http://127.0.0.1:5000) or {instead}"
        )
    raise UserError(
        f"the MLflow tracking database at {redacted(uri)} does not answer ({why}); start it "
        f"or {instead}"
    )


def check_prefect_api(url: str, scheduling: bool = False) -> None:
    """A clear error now when the Prefect API at `url` does not answer.

    `scheduling`: for `serve`, whose scheduled runs need a server (a temporary one cannot
    schedule); a single run can go without one.
    """
    endpoint = _endpoint(url)
    why = None if endpoint is None else unanswered(*endpoint)
    if why is None:
        return
    if scheduling:
        instead = "point PREFECT_API_URL at a running one (scheduled runs need a Prefect server)"
    elif os.environ.get("PREFECT_API_URL"):
        instead = "unset PREFECT_API_URL to run on a temporary local server"
    else:  # set in the Prefect profile
        instead = "`prefect config unset PREFECT_API_URL` to run on a temporary local server"
    raise UserError(
        f"the Prefect server at {redacted(url)} does not answer ({why}); start it "
        f"(`make prefect-ui`) or {instead}"
    )


def check_port_free(host: str, port: int) -> None:
    """A clear error now when a server could not listen on `host:port` (port 0: any, no check).

    Bound as the servers bind (address reuse on, as uvicorn sets it), so a port left in
    TIME_WAIT by a stopped server counts as free, and one another server listens on does not.
    """
    if port == 0:
        return
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise UserError(
            f"--host {host}: not an address of this machine ({exc.strerror}); "
            "127.0.0.1 listens on this machine only, 0.0.0.0 on every interface"
        ) from None
    with socket.socket(family, kind, proto) as probe:
        if os.name != "nt":  # on Windows the option would let two servers share the port
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise UserError(
                    f"port {port} on {host} is in use; choose another with --port"
                ) from None
            if exc.errno == errno.EACCES:
                raise UserError(
                    f"port {port} on {host} needs administrator rights; choose one above 1023 "
                    "with --port"
                ) from None
            if exc.errno == errno.EADDRNOTAVAIL:
                raise UserError(
                    f"--host {host}: not an address of this machine; 127.0.0.1 listens on this "
                    "machine only, 0.0.0.0 on every interface"
                ) from None
            raise UserError(
                f"cannot listen on {host}:{port} ({exc.strerror}); choose another --host or --port"
            ) from None
