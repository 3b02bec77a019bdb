"""RELIABILITY.md, written by the test suite: each input tried, fault injected and load applied.

Tests record one row per case through the `reliability` fixture and then assert on it, so a row
says what was observed whether or not the test passed. At the end of a session given
`--reliability-out FILE` (`make reliability`: RELIABILITY.md; CI: its own copy, kept with the
run) the rows are merged into that file by (section, case, entry point): a run of part of the
suite refreshes its own rows and keeps the others; a run of the whole suite writes it afresh.
Without the option the suite writes nothing.
"""

from __future__ import annotations

import datetime as dt
import platform
import re
from dataclasses import dataclass
from pathlib import Path

SECTIONS = {
    "inputs": "Bad inputs",
    "faults": "Faults injected",
    "crash": "Crash safety",
    "load": "Load",
    "security": "Security",
}
COLUMNS = ("case", "entry point", "expected", "observed", "outcome")
_ROW = re.compile(r"^\| (?P<cells>.*) \|$")


_VOLATILE = (
    (re.compile(r"/tmp/pytest-of-[^/]+/pytest-\d+/"), "<tmp>/"),  # pytest's temp folders
    (re.compile(r"127\.0\.0\.1:\d+"), "127.0.0.1:<port>"),  # free ports of test servers
)


def _cell(text: object) -> str:
    """One table cell: one line, pipes escaped, temp paths and ports made stable, bounded."""
    printable = "".join(
        c if c.isprintable() or c.isspace() else f"\\x{ord(c):02x}" for c in str(text)
    )
    cell = " ".join(printable.split())
    for pattern, stable in _VOLATILE:
        cell = pattern.sub(stable, cell)
    return cell.replace("|", "\\|")[:300]


@dataclass(frozen=True)
class Row:
    """One case through one entry point: what should happen, what did, and whether it held."""

    section: str
    case: str
    entry: str
    expected: str
    observed: str
    ok: bool | None  # None: could not be run here (the observed text says why)

    @property
    def key(self) -> tuple[str, str, str]:
        return self.section, self.case, self.entry

    def cells(self) -> list[str]:
        outcome = {True: "held", False: "**FAILED**", None: "not run here"}[self.ok]
        return [_cell(v) for v in (self.case, self.entry, self.expected, self.observed, outcome)]


class Recorder:
    """Rows recorded during one pytest session."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str, str], Row] = {}

    def add(
        self, section: str, case: str, entry: str, expected: str, observed: str, ok: bool | None
    ) -> bool:
        """Record a row (the last one for a key wins) and return `ok`, for the test to assert.

        `ok=None` records a check that could not run here; the test then skips with the reason.
        """
        if section not in SECTIONS:
            raise ValueError(f"unknown section {section!r}; one of {sorted(SECTIONS)}")
        row = Row(section, case, entry, expected, observed, None if ok is None else bool(ok))
        self.rows[row.key] = row
        return bool(row.ok)

    def failures(self, section: str | None = None, entry: str | None = None) -> list[Row]:
        """Rows that did not hold, for one section and entry point or all."""
        return [
            r
            for r in self.rows.values()
            if r.ok is False
            and (section is None or r.section == section)
            and (entry is None or r.entry == entry)
        ]


def read_rows(path: Path) -> dict[tuple[str, str, str], Row]:
    """Rows of an earlier RELIABILITY.md (to keep those this session did not cover)."""
    if not path.exists():
        return {}
    titles = {title: key for key, title in SECTIONS.items()}
    rows: dict[tuple[str, str, str], Row] = {}
    section = None
    for line in path.read_text().splitlines():
        if line.startswith("## "):
            section = titles.get(line[3:].strip())
            continue
        match = _ROW.match(line)
        if section is None or not match:
            continue
        cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", match["cells"])]
        if len(cells) != len(COLUMNS) or cells[0] in (COLUMNS[0], "---"):
            continue
        case, entry, expected, observed, outcome = cells
        ok = {"held": True, "not run here": None}.get(outcome, False)
        row = Row(section, case, entry, expected, observed, ok)
        rows[row.key] = row
    return rows


def write_report(
    path: Path, recorded: dict[tuple[str, str, str], Row], command: str, merge: bool = True
) -> None:
    """Write this session's rows to `path` (temp file, then rename), merged into the earlier rows
    when the session ran only part of the suite."""
    rows = (read_rows(path) if merge else {}) | recorded
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    held = sum(r.ok is True for r in rows.values())
    not_run = sum(r.ok is None for r in rows.values())
    lines = [
        "# Reliability",
        "",
        "What the test suite fed the pipeline, the faults it injected and the load it applied, "
        "with what happened. Written by the tests themselves (`tests/reliability.py`): every "
        "row is one case through one entry point, recorded by the test that checks it; "
        "`make test` writes it afresh; `pytest -m reliability` (these tests alone) or any part "
        "of the suite rewrites the rows it runs and keeps the others.",
        "",
        f"Last written {now} by `{command}` on {platform.machine()} "
        f"Python {platform.python_version()}; {held} of {len(rows)} rows held"
        + (f", {not_run} could not be run here." if not_run else "."),
        "",
    ]
    for key, title in SECTIONS.items():
        section = sorted((r for r in rows.values() if r.section == key), key=lambda r: r.key)
        if not section:
            continue
        lines += [f"## {title}", "", "| " + " | ".join(COLUMNS) + " |", "|---" * len(COLUMNS) + "|"]
        lines += ["| " + " | ".join(r.cells()) + " |" for r in section]
        lines.append("")
    tmp = path.with_name(f".tmp-{path.name}")
    tmp.write_text("\n".join(lines))
    tmp.replace(path)
