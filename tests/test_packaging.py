"""The install sets: pyproject.toml's pins, the hashed lock files `make` installs, the Python range.

`make lock` writes requirements/<set>.txt from pyproject.toml; these tests fail while a lock is
out of step with it (a pin changed, a requirement added, a lock line without a hash), and while
a third-party module the code imports is declared nowhere. Read from the files alone: no
network, no install.
"""

from __future__ import annotations

import ast
import re
import shlex
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]
# Each lock file and the extras it holds (besides the core dependencies).
LOCKS: dict[str, set[str]] = {
    "core": set(),
    "demo": {"train"},
    "gpu": {"gpu"},
    "dev": {"registry", "train", "team", "cluster", "dev"},
}
# What `make setup` / `make demo` must not install: test, lint and audit tools, the PostgreSQL
# driver, Dask.
NOT_IN_DEMO = (
    "pytest",
    "pytest-cov",
    "pytest-timeout",
    "pytest-xdist",
    "coverage",
    "ruff",
    "mypy",
    "selenium",
    "pip-audit",
    "psycopg2",
    "psycopg2-binary",
    "psycopg",
    "dask",
    "distributed",
    "prefect-dask",
)
TENSORFLOW = {"tensorflow", "tensorflow-cpu"}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement(text: str) -> tuple[str, str, str]:
    """(canonical name, version specifier, marker) of a pyproject requirement; extras dropped."""
    match = re.fullmatch(
        r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*([^;]*?)\s*(?:;\s*(.*?))?\s*",
        text,
    )
    assert match, f"cannot read the requirement {text!r}"
    return canonical(match[1]), match[2].replace(" ", ""), match[3] or ""


def requirements_of(extras: set[str]) -> list[str]:
    return list(PROJECT["dependencies"]) + [
        line for extra in sorted(extras) for line in PROJECT["optional-dependencies"][extra]
    ]


def lock_entries(name: str) -> list[tuple[str, str, str]]:
    """(canonical name, line, version) of each requirement in requirements/<name>.txt.

    A requirement and its `--hash` options span several lines joined by a backslash."""
    text = (REPO / "requirements" / f"{name}.txt").read_text()
    logical = re.sub(r"\\\n", " ", text)
    entries = []
    for line in logical.splitlines():
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        match = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)", line)
        assert match, f"requirements/{name}.txt: not pinned with ==: {line[:120]}"
        entries.append((canonical(match[1]), line, match[2]))
    return entries


def lock_header(name: str) -> list[str]:
    """The `uv pip compile` command recorded at the top of requirements/<name>.txt."""
    for line in (REPO / "requirements" / f"{name}.txt").read_text().splitlines()[:5]:
        if "uv pip compile" in line:
            return shlex.split(line.lstrip("# "))
    pytest.fail(f"requirements/{name}.txt does not say which command wrote it (make lock)")


def matches(version: str, spec: str) -> bool:
    """A version against the project's pin style: `==X.Y.*` or an exact `==X.Y.Z`."""
    assert spec.startswith("==") and "," not in spec, f"not a pin: {spec}"
    pinned = spec[2:]
    if pinned.endswith(".*"):
        return version == pinned[:-2] or version.startswith(pinned[:-1])
    return version == pinned


def python_bounds() -> tuple[tuple[int, int], tuple[int, int]]:
    """requires-python as (lowest supported, first unsupported) minor versions."""
    match = re.fullmatch(r">=(\d+)\.(\d+),<(\d+)\.(\d+)", PROJECT["requires-python"])
    assert match, f"requires-python should read >=X.Y,<X.Z: {PROJECT['requires-python']}"
    low, high = (int(match[1]), int(match[2])), (int(match[3]), int(match[4]))
    return low, high


def test_every_requirement_is_pinned_to_a_release() -> None:
    for extras in [set(), *({e} for e in PROJECT["optional-dependencies"])]:
        for line in requirements_of(extras):
            name, spec, _ = requirement(line)
            assert re.fullmatch(r"==\d+(\.\d+)*(\.\*)?", spec), f"{name}: pin it, ==X.Y.*"


def test_every_extra_has_a_lock_file_and_every_lock_file_a_set() -> None:
    assert set().union(*LOCKS.values()) == set(PROJECT["optional-dependencies"])
    on_disk = {path.stem for path in (REPO / "requirements").glob("*.txt")}
    assert on_disk == set(LOCKS)


@pytest.mark.parametrize("name", sorted(LOCKS))
def test_the_lock_file_was_written_by_make_lock_for_its_extras(name: str) -> None:
    command = lock_header(name)
    extras = {command[i + 1] for i, word in enumerate(command) if word == "--extra"}
    assert extras == LOCKS[name]
    assert {"--universal", "--generate-hashes"} <= set(command)
    low, _ = python_bounds()
    assert command[command.index("--python-version") + 1] == f"{low[0]}.{low[1]}"
    assert command[command.index("-o") + 1] == f"requirements/{name}.txt"
    # The Makefile's `lock` target writes this same command.
    makefile = re.sub(r"\\\n\s*", "", (REPO / "Makefile").read_text())
    target = next(
        (line for line in makefile.splitlines() if f"-o requirements/{name}.txt" in line), None
    )
    assert target is not None, f"make lock does not write requirements/{name}.txt"
    made = shlex.split(target.strip())
    assert {made[i + 1] for i, word in enumerate(made) if word == "--extra"} == LOCKS[name]


@pytest.mark.parametrize("name", sorted(LOCKS))
def test_every_locked_package_has_an_exact_version_and_a_hash(name: str) -> None:
    entries = lock_entries(name)
    assert entries, f"requirements/{name}.txt is empty"
    for package, line, _ in entries:
        assert "--hash=sha256:" in line, f"requirements/{name}.txt: {package} has no hash"


@pytest.mark.parametrize("name", sorted(LOCKS))
def test_the_lock_file_holds_each_requirement_at_its_pinned_release(name: str) -> None:
    locked: dict[str, list[str]] = {}
    for package, _, version in lock_entries(name):
        locked.setdefault(package, []).append(version)
    for line in requirements_of(LOCKS[name]):
        package, spec, _ = requirement(line)
        assert package in locked, f"{package} ({line}) is not in requirements/{name}.txt"
        for version in locked[package]:
            assert matches(version, spec), (
                f"requirements/{name}.txt has {package}=={version}, pyproject.toml {spec}: "
                "make lock"
            )


def test_the_demo_set_has_no_test_tools_no_postgresql_driver_and_no_dask() -> None:
    locked = {package for package, _, _ in lock_entries("demo")}
    unwanted = sorted(p for p in locked if p in NOT_IN_DEMO or p.startswith("pytest"))
    assert not unwanted, f"requirements/demo.txt should not hold {unwanted}"
    # The pipeline itself is there.
    assert {"tensorflow-cpu", "keras", "mtcnn", "dvc", "prefect", "mlflow", "gradio"} <= locked


def test_the_gpu_set_is_the_training_set_with_tensorflow_for_tensorflow_cpu() -> None:
    extras = PROJECT["optional-dependencies"]
    train = [requirement(line) for line in extras["train"]]
    gpu = [requirement(line) for line in extras["gpu"]]
    assert sorted(r for r in train if r[0] not in TENSORFLOW) == sorted(
        r for r in gpu if r[0] not in TENSORFLOW
    )
    assert "tensorflow-cpu" in {r[0] for r in train}
    assert "tensorflow-cpu" not in {r[0] for r in gpu}
    assert "tensorflow-cpu" not in {package for package, _, _ in lock_entries("gpu")}


def test_make_and_ci_accept_every_python_that_requires_python_allows() -> None:
    low, high = python_bounds()
    makefile = (REPO / "Makefile").read_text()
    assert f"PYTHON_RANGE  := {low} <= sys.version_info[:2] < {high}" in makefile
    supported = [f"python{low[0]}.{minor}" for minor in range(low[1], high[1])]
    candidates = re.search(r"^PYTHONS\s*:=(.*)$", makefile, re.M)
    assert candidates and candidates[1].split() == [*supported, "python3"]
    assert "VENV   ?= .venv" in makefile
    # A lock change installs the set again: each set's stamp depends on its lock file.
    assert "$(VENV)/.installed-%: requirements/%.txt pyproject.toml" in makefile
    assert "--require-hashes -r requirements/$*.txt" in makefile
    ci = (REPO / ".ci" / "run").read_text()
    assert "python3.11" not in ci and "make --no-print-directory python" in ci


def _imports(paths: list[Path]) -> dict[str, set[str]]:
    """Top-level modules imported by the Python files under `paths`, and where."""
    found: dict[str, set[str]] = {}
    for root in paths:
        for path in root.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for module in names:
                    found.setdefault(module.split(".")[0], set()).add(str(path.relative_to(REPO)))
    return found


def _local_modules() -> set[str]:
    local = {"deepfake_detector", "flows", "tasks", "tests", "bench", "docs"}
    for folder in ("tests", "bench", "docs", "flows", "tasks"):
        local |= {path.stem for path in (REPO / folder).glob("*.py")}
    return local


@pytest.mark.parametrize(
    ("folders", "sets"),
    [
        (["src", "flows", "tasks"], ["registry", "train", "gpu", "team", "cluster"]),
        (["tests", "bench", "docs"], list(LOCKS["dev"])),
    ],
    ids=["package", "tests-bench-docs"],
)
def test_every_imported_third_party_module_is_declared(folders: list[str], sets: list[str]) -> None:
    declared = {requirement(line)[0] for line in requirements_of(set(sets))}
    providers = packages_distributions()
    local = _local_modules()
    missing = []
    for module, where in sorted(_imports([REPO / f for f in folders]).items()):
        if module in sys.stdlib_module_names or module in local:
            continue
        dists = {canonical(d) for d in providers.get(module, [])}
        if not dists & declared:
            missing.append(f"{module} (installed by {sorted(dists) or 'nothing'}): {sorted(where)}")
    assert not missing, "imported but not declared in pyproject.toml:\n" + "\n".join(missing)


def test_every_sub_package_of_the_library_is_in_the_wheel() -> None:
    """A sub-package missing from pyproject's list works in the editable install and is gone
    from `pip install .`."""
    import tomllib

    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(setuptools["packages"])
    src = REPO / "src"
    found = {
        ".".join(init.parent.relative_to(src).parts)
        for init in (src / "deepfake_detector").rglob("__init__.py")
    }
    assert found - listed == set()
    # The wheel is the library alone: no generic top-level `flows` or `tasks` in site-packages.
    assert listed == found and setuptools["package-dir"] == {"": "src"}


def test_the_library_never_imports_the_project_entry_points() -> None:
    """`flows/` and `tasks/` stand on the library; nothing under src/ imports them (the CLI runs
    the checkout's flow by its path)."""
    imports = _imports([REPO / "src"])
    assert not {m: w for m, w in imports.items() if m in {"flows", "tasks"}}
