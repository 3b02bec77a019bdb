"""Every command of the README's code blocks, and the REST request of docs/serving.md, works as
written.

Each command is run literally in a copy of the trained test project, with the files it names made
first (`photo.jpg`, `clip.mp4`, `folder/`) and `N` read from the registry. What is changed, and
only that: servers get a free port of 127.0.0.1 (`--port`, `MLFLOW_PORT`) so parallel tests do not
collide, and `make` runs the checkout's Makefile with the suite's own environment. Four commands
are not run here, each for a stated reason, and each is checked to run where it is said to run.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import requests
from conftest import BIN, REPO, run_env
from media import one_face, save_rgb
from processes import free_port, start, stop
from servers import wait_http

# Where the commands come from: the README's shell blocks, and docs/serving.md's REST request.
README = REPO / "README.md"
REST_EXAMPLE = REPO / "docs/serving.md"

# Commands run elsewhere, with the file that runs them as written (checked below).
RUN_ELSEWHERE = {
    "make demo": (".ci/run", "the clean clone's first command"),
    "make test": (".ci/run", "the clean clone's test command (this suite)"),
    "source .venv/bin/activate": (".ci/run", "`make demo` makes .venv; the suite runs in it"),
    "dvc exp run register_model -S split.faces_dir=data/face_images": (
        "bench/registered_training.py",
        "the real detector: every face set of ../shared, about 7 minutes (make bench times it)",
    ),
}
SERVERS = {"deepfake app", "deepfake rest", "make mlflow-ui"}


def shell_blocks(doc: Path) -> list[str]:
    """The commands of a Markdown file's bash blocks, comments and blank lines dropped."""
    commands = []
    for block in re.findall(r"```(?:bash|sh)\n(.*?)```", doc.read_text(), re.S):
        for line in block.splitlines():
            command = line.split(" #", 1)[0].strip()
            if command and not command.startswith("#"):
                commands.append(command)
    return commands


def readme_commands() -> list[str]:
    return shell_blocks(README)


def rest_request() -> list[str]:
    """docs/serving.md's request: written to a file, then sent from it."""
    return [c for c in shell_blocks(REST_EXAMPLE) if "request.json" in c]


def test_the_commands_not_run_here_run_where_they_are_said_to() -> None:
    for command, (where, _) in RUN_ELSEWHERE.items():
        assert command in readme_commands(), f"{command!r} is no longer in the README"
        text = (REPO / where).read_text()
        if where == ".ci/run":
            assert command.split()[0] == "source" or command in text, (command, where)
        else:  # the benchmark runs the same stages on the same params override
            assert (
                "register_model" in command and "faces_dir" in text and "data/face_images" in text
            )
    assert len(rest_request()) == 2, "docs/serving.md's REST request: write the file, send it"


def make(target: str, venv: Path, **variables: str) -> list[str]:
    """`make TARGET` with the checkout's Makefile, in the project, on the suite's venv."""
    extra = [f"{key}={value}" for key, value in variables.items()]
    return ["make", "--no-print-directory", "-f", str(REPO / "Makefile"), f"VENV={venv}",
            "-o", "setup", "-o", f"{venv}/.installed-demo", *extra, target]  # fmt: skip


def as_run(command: str, venv: Path, port: int) -> list[str]:
    """The argument list that runs `command` here (see the module's docstring for what differs)."""
    words = shlex.split(command)
    if words[0] == "make":
        return make(
            words[1], venv, **({"MLFLOW_PORT": str(port)} if words[1] == "mlflow-ui" else {})
        )
    if command in SERVERS:  # deepfake app | deepfake rest
        return [*words[:2], "--port", str(port)]
    return ["bash", "-c", command.replace("5001", str(port))]


def champion_version(project: Path) -> str:
    """The version the alias names in the project's registry (the README's `N`)."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlruns/mlflow.db'}")
    return str(client.get_model_version_by_alias("deepfake-detector", "champion").version)


def serve_and_ask(cmd: list[str], project: Path, log: Path, port: int) -> None:
    """Start a README server, wait until it answers, ask it what its README line promises."""
    proc = start(cmd, project, run_env(project), log)
    try:
        wait_http(f"http://127.0.0.1:{port}/", 240, proc, log)
        if cmd[:2] == ["deepfake", "rest"]:
            assert requests.get(f"http://127.0.0.1:{port}/ping", timeout=30).status_code == 200
            for command in rest_request():
                sent = subprocess.run(
                    ["bash", "-c", command.replace("5001", str(port))], cwd=project,
                    env=run_env(project), capture_output=True, text=True, timeout=120,
                )  # fmt: skip
                assert sent.returncode == 0, (command, sent.stderr)
            answer = json.loads(sent.stdout)
            assert answer["predictions"][0]["verdict"] in {"real", "fake", "uncertain"}
        else:
            time.sleep(1)
            assert proc.poll() is None, log.read_text()[-2000:]
    finally:
        stop(proc)
    assert "Traceback" not in log.read_text(), log.read_text()[-3000:]


@pytest.mark.slow
def test_every_readme_command_works_as_written(trained_project: Path, tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(trained_project, project, symlinks=True)
    photo = save_rgb(project / "photo.jpg", one_face())
    clip = next((project / "data/demo/videos").rglob("*.mp4"))
    shutil.copy(clip, project / "clip.mp4")
    (project / "folder").mkdir()
    shutil.copy(photo, project / "folder/photo.jpg")
    shutil.copy(clip, project / "folder/clip.mp4")
    version = champion_version(project)
    venv = BIN.parent
    ran = []
    for command in readme_commands():
        if command in RUN_ELSEWHERE:
            continue
        command = command.replace("/N", f"/{version}")
        port = free_port()
        cmd = as_run(command, venv, port)
        if command in SERVERS:
            serve_and_ask(cmd, project, tmp_path / f"server-{len(ran)}.log", port)
        else:
            done = subprocess.run(
                cmd, cwd=project, env=run_env(project), capture_output=True, text=True,
                timeout=600,
            )  # fmt: skip
            allowed = {0, 3} if command.startswith("deepfake drift") else {0}  # 3: drift found
            errors = [line for line in done.stderr.splitlines() if "rror" in line]
            assert done.returncode in allowed, (command, errors or done.stderr[-3000:])
            assert "Traceback" not in done.stderr, (command, done.stderr[-3000:])
        ran.append(command)
    assert len(ran) == len(readme_commands()) - len(RUN_ELSEWHERE)
    answers = (project / "answers.jsonl").read_text().splitlines()
    assert len(answers) == 2  # folder/'s picture and clip, one line each
    assert (project / "dvc_plots/index.html").exists()
