"""The README guides and the docs hold: every command they name exists, every link and path
they give is there, and the README stays short."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import REPO

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def test_the_readme_is_a_guide_of_at_most_250_lines() -> None:
    text = (REPO / "README.md").read_text()
    assert len(text.splitlines()) <= 250
    for heading in ("## Quick start", "## The pipeline", "## Using your own data",
                    "## Verdicts", "## Changing things", "## Layout"):  # fmt: skip
        assert heading in text


def _commands() -> set[str]:
    import typer

    from deepfake_detector.cli import app

    return set(typer.main.get_command(app).commands)  # type: ignore[attr-defined]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_deepfake_command_a_doc_names_exists(doc: Path) -> None:
    named = set(re.findall(r"`deepfake ([a-z][a-z_-]*)", doc.read_text()))
    named |= set(re.findall(r"^deepfake ([a-z][a-z_-]*)", doc.read_text(), re.MULTILINE))
    commands = _commands()
    assert {n for n in named if n.replace("-", "_") not in commands} == set()


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_relative_link_of_a_doc_leads_to_a_file(doc: Path) -> None:
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", doc.read_text())
    local = [link for link in links if not re.match(r"[a-z]+:", link)]
    assert [link for link in local if not (doc.parent / link).exists()] == []


def test_the_files_changing_things_points_to_exist() -> None:
    text = (REPO / "README.md").read_text()
    section = text[text.index("## Changing things") : text.index("## Layout")]
    package = REPO / "src" / "deepfake_detector"
    for path in re.findall(r"`((?:core|stages|sources|learning|inference)/[\w./]+\.py)`", section):
        assert (package / path).is_file(), path
    assert "STAGES" in (package / "core" / "dag.py").read_text()
    assert "def finish" in (package / "core" / "reports.py").read_text()


def test_the_benchmarks_count_of_targets_met_is_that_of_their_table() -> None:
    from bench.report import targets_met

    lines = (REPO / "BENCHMARKS.md").read_text().splitlines()
    met = targets_met(lines)
    assert f"- Targets met: {sum(met)} of {len(met)} rows that have a target." in lines
    assert targets_met(
        [
            "| benchmark | measure | baseline | ours | ratio | target | met |",
            "|---|---|---|---|---|---|---|",
            "| 1. A | a \\| b | 1 s | 2 s | 2x | >= 2x | yes |",
            "| 1. A | no target |  | 3 s |  |  |  |",
            "| 2. B | c | 1 s | 1 s | 1x | >= 2x | no |",
        ]
    ) == [True, False]
