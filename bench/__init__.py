"""Benchmarks of the pipeline's hot paths, each measured side by side with a naive baseline.

`python -m bench` (or `make bench`) runs them all in one process run, prints a table and rewrites
`BENCHMARKS.md`; see `bench/run.py` for the options.
"""
