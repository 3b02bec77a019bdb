"""`python -m bench`: run the benchmarks in one process, print a table, rewrite BENCHMARKS.md.

    python -m bench                 # everything; rewrites BENCHMARKS.md
    python -m bench --quick         # fewer inputs and repeats (development); prints only
    python -m bench --only faces    # one benchmark (repeatable); prints only
    python -m bench --list          # the benchmark names

A run with `--quick` or `--only` never rewrites BENCHMARKS.md, so the file always holds one
complete, comparable run; `--write` forces it, `--no-write` prevents it, and `--merge` (with
`--only`) replaces only the chosen benchmarks' rows and sections, saying so at the top.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time
import traceback
import warnings
from importlib import import_module
from pathlib import Path
from types import ModuleType

from bench.context import REPO, Context
from bench.machine import this_machine
from bench.report import console_table, markdown, merged, write_atomically
from bench.results import Outcome, Skip

# In run order, which is also the order of the table.
MODULES = (
    "bench.face_cropping",
    "bench.frame_sampling",
    "bench.training_input",
    "bench.inference",
    "bench.incremental",
    "bench.memory",
    "bench.startup",
    "bench.dask_fanout",
    "bench.cold_verdict",
    "bench.registered_training",
    "bench.batch_verdicts",
    "bench.clip_verdict",
)
OUTPUT = REPO / "BENCHMARKS.md"
RUNNING = """\
```bash
make bench                          # every benchmark, one process run; rewrites this file
.venv/bin/python -m bench --quick   # fewer inputs and repeats, for development; prints only
.venv/bin/python -m bench --only faces --only frames   # some of them; prints only
.venv/bin/python -m bench --only dask --merge          # one of them, merged into this file
.venv/bin/python -m bench --list    # names: faces, frames, training, inference,
                                    #        incremental, memory, startup, dask, cold,
                                    #        registered, batch, clip
```

A run with `--quick` or `--only` leaves this file alone (`--write` forces it; `--merge` puts only
its own rows and sections in, and says so at the top), so it otherwise holds one complete run.
Every loop is bounded in repeats and in time; throw-away projects live in a temporary folder
that is removed at the end (`--keep` keeps it). The code is in `bench/`: one
module per benchmark, whose docstring is the method above."""


def benchmarks() -> dict[str, ModuleType]:
    """name -> module, in run order."""
    modules = [import_module(m) for m in MODULES]
    return {m.NAME: m for m in modules}


def run_one(module: ModuleType, ctx: Context) -> Outcome:
    """Run one benchmark; a Skip or an error becomes its outcome, the run goes on."""
    doc = (module.__doc__ or "").strip().split("\n", 1)
    outcome = Outcome(
        module.NAME,
        module.TITLE,
        method=doc[1].strip() if len(doc) > 1 else "",
        limits=getattr(module, "LIMITS", "").strip(),
        explain_always=getattr(module, "EXPLAIN_ALWAYS", False),
    )
    start = time.perf_counter()
    print(f"\n== {module.TITLE} ({module.NAME})", flush=True)
    try:
        outcome.rows, outcome.notes = module.run(ctx)
    except Skip as exc:
        outcome.skipped = str(exc)
    except Exception as exc:  # one broken benchmark must not cost the others' numbers
        traceback.print_exc()
        outcome.failed = f"{type(exc).__name__}: {exc}"
    outcome.seconds = time.perf_counter() - start
    print(console_table([outcome]), flush=True)
    return outcome


def parse_args(argv: list[str] | None, names: list[str]) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=names,
        metavar="NAME",
        help=f"run only this benchmark (repeatable): {', '.join(names)}",
    )
    parser.add_argument("--quick", action="store_true", help="fewer inputs and repeats")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    write = parser.add_mutually_exclusive_group()
    write.add_argument("--write", action="store_true", help="rewrite BENCHMARKS.md anyway")
    write.add_argument("--no-write", action="store_true", help="never rewrite BENCHMARKS.md")
    write.add_argument(
        "--merge",
        action="store_true",
        help="put these benchmarks' rows and sections into BENCHMARKS.md, keeping the others",
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    return parser.parse_args(argv)


def command_line(argv: list[str]) -> str:
    """How this run was started, as one would type it in the repository root."""
    python = Path(sys.executable)
    shown = python.relative_to(REPO) if python.is_relative_to(REPO) else python
    return " ".join([str(shown), "-m", "bench", *argv])


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    from deepfake_detector.core.runtime import prepare_environment

    args_list = sys.argv[1:] if argv is None else argv
    available = benchmarks()
    args = parse_args(args_list, list(available))
    if args.list:
        for name, module in available.items():
            print(f"{name:12s} {module.TITLE}")
        return
    prepare_environment(REPO)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("TQDM_DISABLE", "1")
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    chosen = [m for n, m in available.items() if not args.only or n in args.only]
    machine = this_machine()
    scratch = Path(tempfile.mkdtemp(prefix="deepfake-bench-"))
    ctx = Context(repo=REPO, scratch=scratch, quick=args.quick)
    start = time.perf_counter()
    try:
        outcomes = [run_one(m, ctx) for m in chosen]
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    seconds = time.perf_counter() - start
    print(f"\n== All benchmarks ({seconds / 60:.1f} min, {machine.describe()})")
    print(", ".join(f"{o.name} {o.seconds:.0f} s" for o in outcomes))
    print(console_table(outcomes))
    full = not args.quick and not args.only
    if args.merge and not args.quick:
        write_atomically(
            OUTPUT, merged(OUTPUT.read_text(), outcomes, machine, command_line(args_list))
        )
        print(f"\nmerged into {OUTPUT.relative_to(REPO)}")
    elif args.write or (full and not args.no_write):
        text = markdown(outcomes, machine, command_line(args_list), seconds, RUNNING)
        write_atomically(OUTPUT, text)
        print(f"\nwrote {OUTPUT.relative_to(REPO)}")
