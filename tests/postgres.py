"""A throw-away PostgreSQL cluster for tests: Debian's server binaries, 127.0.0.1, a free port.

`postgres_url` (a pytest fixture; import it into a test module) yields the SQLAlchemy URL of a
database `mlflow` owned by a user with a password, as a team's MLflow tracking server would use.
The URL names its driver, `postgresql+psycopg2://`: SQLAlchemy 2.1 reads a bare `postgresql://`
as psycopg 3, which is not installed (psycopg2-binary is); `libpq_url` drops the driver again
for psycopg2 itself.
The cluster lives in a temp folder and is stopped (`pg_ctl stop -m fast`) and removed at the end.
PostgreSQL refuses to run as root: as root, the folder belongs to Debian's `postgres` user and
`initdb`/`pg_ctl` run through `runuser -u postgres --`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from processes import free_port

NOT_INSTALLED = "PostgreSQL is not installed: `make postgres` installs Debian's package"
USER = "mlflow"
PASSWORD = "mlflow-test-password"
DATABASE = "mlflow"
WAIT_S = 60  # every wait is bounded: initdb, start, stop


def server_bindir() -> Path | None:
    """The folder with `initdb`, `pg_ctl` and `postgres`, or None if the server is not installed.

    `pg_config --bindir` names it when the server's pg_config answers (libpq-dev's alone says
    /usr/bin, which has no initdb); otherwise the newest /usr/lib/postgresql/*/bin.
    """
    candidates: list[Path] = []
    if shutil.which("pg_config"):
        try:
            out = subprocess.run(
                ["pg_config", "--bindir"], capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
            candidates.append(Path(out))
        except (OSError, subprocess.SubprocessError):
            pass

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(n) for n in re.findall(r"\d+", path.parent.name))

    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True)
    for folder in candidates:
        if all((folder / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return folder
    return None


def libpq_url(url: str) -> str:
    """The URL as libpq (`psycopg2.connect`) takes it: `postgresql://`, no SQLAlchemy driver."""
    scheme, rest = url.split("://", 1)
    return f"{scheme.split('+', 1)[0]}://{rest}"


def _as_owner() -> list[str]:
    """The prefix that runs a server tool as a user PostgreSQL accepts (not root)."""
    if os.geteuid() != 0:
        return []
    if not shutil.which("runuser"):
        pytest.skip("running as root needs `runuser` to start PostgreSQL as the postgres user")
    return ["runuser", "-u", "postgres", "--"]


def _tool(cmd: list[str], cwd: Path) -> None:
    """Run a server tool as the cluster's owner; fail with its output."""
    try:
        result = subprocess.run(
            _as_owner() + cmd, cwd=cwd, capture_output=True, text=True, timeout=WAIT_S + 30
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"{' '.join(cmd)} took over {WAIT_S + 30}s") from exc
    if result.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout[-2000:]}\n"
            f"{result.stderr[-2000:]}"
        )


@contextmanager
def postgres_cluster(folder: Path) -> Iterator[str]:
    """A cluster in `folder` on 127.0.0.1 and a free port; yields the `mlflow` database's URL."""
    bindir = server_bindir()
    if bindir is None:
        pytest.skip(NOT_INSTALLED)
    pytest.importorskip(
        "psycopg2",
        reason="the PostgreSQL driver is not installed: the [team] extra (make setup-dev)",
    )
    import psycopg2

    data, sockets, log = folder / "data", folder / "sockets", folder / "postgres.log"
    sockets.mkdir()
    if os.geteuid() == 0:
        try:
            shutil.chown(folder, "postgres", "postgres")
            shutil.chown(sockets, "postgres", "postgres")
        except LookupError:
            pytest.skip("running as root needs the `postgres` user that Debian's package creates")
    # Local (unix socket) connections as the superuser to set up; TCP needs a password.
    _tool(
        [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-E", "UTF8",
         "--auth-local=trust", "--auth-host=scram-sha-256", "--no-instructions"],
        folder,
    )  # fmt: skip
    port = free_port()
    options = f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={sockets}"
    start = [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options]
    _tool([*start, "-w", "-t", str(WAIT_S), "start"], folder)
    try:
        admin = psycopg2.connect(host=str(sockets), port=port, user="postgres", dbname="postgres")
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute(f"CREATE ROLE {USER} LOGIN PASSWORD %s", (PASSWORD,))
            cur.execute(f"CREATE DATABASE {DATABASE} OWNER {USER}")
        admin.close()
        yield f"postgresql+psycopg2://{USER}:{PASSWORD}@127.0.0.1:{port}/{DATABASE}"
    finally:
        _tool([str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "-t",
               str(WAIT_S), "stop"], folder)  # fmt: skip


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """SQLAlchemy URL of a fresh database `mlflow` on a throw-away local PostgreSQL cluster.

    The folder is made with `tempfile` (not pytest's tmp_path: its parents are private to root,
    so the postgres user could not reach a cluster inside them) and removed afterwards.
    """
    folder = Path(tempfile.mkdtemp(prefix="pg-"))
    try:
        with postgres_cluster(folder) as url:
            yield url
    finally:
        shutil.rmtree(folder, ignore_errors=True)
