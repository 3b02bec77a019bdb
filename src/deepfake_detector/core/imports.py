"""The package's import graph, read from the source: no module is imported to draw it.

Every `import`/`from ... import` of a project module counts, at the top of a module or inside
a function (a lazy import still runs), except those under `if TYPE_CHECKING:` (types only).
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

PACKAGE = "deepfake_detector"
SRC = Path(__file__).resolve().parents[2]  # the folder holding the package


def module_file(module: str) -> Path:
    """The source file of a project module ('deepfake_detector.stages.train')."""
    path = SRC.joinpath(*module.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def all_modules() -> list[str]:
    """Every module of the package (packages' `__init__` included)."""
    out = []
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        out.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return out


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


@cache
def imports_of(module: str) -> frozenset[str]:
    """Project modules `module` imports (not counting packages' empty `__init__`)."""
    known = set(all_modules())
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        for inner in ast.iter_child_nodes(node):
            visit(inner)

    visit(ast.parse(module_file(module).read_text()))
    subpackages = {m for m in known if module_file(m).name == "__init__.py"}
    return frozenset(m for m in found if m in known and m != module and m not in subpackages)


def closure(module: str) -> set[str]:
    """`module` and every project module it imports, directly or not."""
    seen, todo = {module}, [module]
    while todo:
        for dep in imports_of(todo.pop()):
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return seen


def cycles() -> list[list[str]]:
    """Import cycles among the package's modules (each as a path that returns to its start)."""
    found = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def walk(module: str) -> None:
        state[module] = 1
        stack.append(module)
        for dep in sorted(imports_of(module)):
            if state.get(dep) == 1:
                found.append([*stack[stack.index(dep) :], dep])
            elif dep not in state:
                walk(dep)
        stack.pop()
        state[module] = 2

    for module in all_modules():
        if module not in state:
            walk(module)
    return found
