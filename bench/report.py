"""The results as a console table and as `BENCHMARKS.md`."""

from __future__ import annotations

import os
from pathlib import Path

from bench.machine import Machine
from bench.results import Outcome, Row

HEADER = ("benchmark", "measure", "baseline", "ours", "ratio", "target", "met")


def _cells(row: Row) -> tuple[str, ...]:
    return (row.benchmark, row.measure, row.baseline, row.ours, row.ratio, row.target, row.verdict)


def _status_rows(outcome: Outcome) -> list[tuple[str, ...]]:
    """Rows of a benchmark, or one row saying why it has none."""
    if outcome.rows:
        return [_cells(r) for r in outcome.rows]
    why = f"skipped: {outcome.skipped}" if outcome.skipped else f"failed: {outcome.failed}"
    return [(outcome.title, why.splitlines()[0][:200], "", "", "", "", "")]


def console_table(outcomes: list[Outcome]) -> str:
    """A plain aligned table for the terminal."""
    rows = [HEADER, *(cells for o in outcomes for cells in _status_rows(o))]
    widths = [min(max(len(r[i]) for r in rows), 60) for i in range(len(HEADER))]
    lines = []
    for n, row in enumerate(rows):
        lines.append("  ".join(cell[:60].ljust(w) for cell, w in zip(row, widths, strict=True)))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _md(cell: str) -> str:
    return cell.replace("|", "\\|")


def markdown(
    outcomes: list[Outcome], machine: Machine, command: str, seconds: float, methods: str
) -> str:
    """The whole of BENCHMARKS.md."""
    table = [
        "| " + " | ".join(HEADER) + " |",
        "|" + "---|" * len(HEADER),
        *(
            "| " + " | ".join(_md(c) for c in cells) + " |"
            for o in outcomes
            for cells in _status_rows(o)
        ),
    ]
    met = [r.met for o in outcomes for r in o.rows if r.met is not None]
    make = " (`make bench`)" if command.endswith("-m bench") else ""
    notes = []
    for o in outcomes:
        notes += ["", f"### {o.title}", ""]
        if o.method:
            notes += [o.method, ""]
        if o.skipped or o.failed:
            notes.append(f"Not measured in this run: {o.skipped or o.failed}")
        notes += [f"- {line}" for line in o.notes]
        notes.append(f"- Time taken by this benchmark: {o.seconds:.0f} s.")
        if o.limits and (o.explain_always or any(r.met is False for r in o.rows)):
            notes += ["", "What limits it, and what was tried:", "", o.limits]
    return "\n".join(
        [
            "# Benchmarks",
            "",
            "How fast the pipeline's hot paths run on a plain CPU, each measured side by side with",
            "a naive baseline on the same inputs in the same process run. This file is written by",
            "the benchmark suite; edit `bench/` instead.",
            "",
            f"- Command: `{command}`{make}, run from the repository root.",
            f"- Machine: {machine.describe()}.",
            f"- Date: {machine.date}; the whole run took {seconds / 60:.1f} min.",
            f"- Targets met: {sum(met)} of {len(met)} rows that have a target.",
            "",
            "The machine is shared and its load moves absolute times by tens of percent, so the",
            "figure to read is the ratio: baseline and ours alternate on the same inputs within",
            "seconds of each other. Inputs are the real data in `../shared/data` (DFD frames,",
            "videos and face crops, DFDC clips); a benchmark whose data is absent is skipped with",
            "the reason.",
            "",
            *table,
            "",
            "## Method, limits and what was tried",
            *notes,
            "",
            "## Running the suite",
            "",
            methods,
            "",
        ]
    )


def write_atomically(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file and a rename."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
