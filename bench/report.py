"""The results as a console table and as `BENCHMARKS.md`."""

from __future__ import annotations

import os
import re
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
    notes = [line for o in outcomes for line in _section(o)]
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


def _section(o: Outcome) -> list[str]:
    """One benchmark's part of "Method, limits and what was tried"."""
    lines = ["", f"### {o.title}", ""]
    if o.method:
        lines += [o.method, ""]
    if o.skipped or o.failed:
        lines.append(f"Not measured in this run: {o.skipped or o.failed}")
    lines += [f"- {line}" for line in o.notes]
    lines.append(f"- Time taken by this benchmark: {o.seconds:.0f} s.")
    if o.limits and (o.explain_always or any(r.met is False for r in o.rows)):
        lines += ["", "What limits it, and what was tried:", "", o.limits]
    return lines


def merged(text: str, outcomes: list[Outcome], machine: Machine, command: str) -> str:
    """`text` (an earlier BENCHMARKS.md) with these benchmarks' rows and sections put in place
    of theirs (or added), every other benchmark's kept as it was, and a line saying so."""
    titles = {o.title for o in outcomes}
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("### ") and line[4:] in titles:
            i += 1
            while i < len(lines) and not lines[i].startswith(("### ", "## ")):
                i += 1
            while out and out[-1] == "":
                out.pop()
            continue
        if line.startswith("| ") and line.split(" | ")[0][2:] in titles:
            i += 1
            continue
        if line == "## Running the suite":
            while out and out[-1] == "":
                out.pop()
            for o in outcomes:
                out += _section(o)
            out.append("")
        out.append(line)
        i += 1
    last_row = max(n for n, line in enumerate(out) if line.startswith("| "))
    rows = [
        "| " + " | ".join(_md(c) for c in cells) + " |"
        for o in outcomes
        for cells in _status_rows(o)
    ]
    out[last_row + 1 : last_row + 1] = rows
    note = (
        f"- Also: {', '.join(sorted(titles))} from `{command}` on {machine.date} "
        f"(load average at start {machine.load}), merged into the run above."
    )
    out = [
        line for line in out if not (line.startswith("- Also: ") and any(t in line for t in titles))
    ]
    date_line = next(n for n, line in enumerate(out) if line.startswith("- Targets met: "))
    met = targets_met(out)
    out[date_line] = f"- Targets met: {sum(met)} of {len(met)} rows that have a target."
    out.insert(date_line + 1, note)
    return "\n".join(out) + "\n"


def targets_met(lines: list[str]) -> list[bool]:
    """For each row of the file's table that has a target: whether it is met (merged rows
    included, so that the count stays true after a merge)."""
    out = []
    for line in lines:
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        is_row = len(cells) == len(HEADER) and cells[0] not in (HEADER[0], "---")
        if is_row and cells[5]:  # a row with a target
            out.append(cells[6] == "yes")
    return out


def write_atomically(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file and a rename."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
