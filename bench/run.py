"""Run every benchmark, each in its own process, and print one table of their figures.

A separate process per benchmark keeps one's threads, caches and memory from skewing the next.
Figures are reported, not gated: the exit status is non-zero only when a benchmark crashes.
Usage: `python bench/run.py [--only NAME] [--budget S]` (`make bench` runs it).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import TypedDict

REPO_ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = (
    "loop_overhead",
    "char_lstm_learning",
    "gpt2_nano",
    "gpt2_service",
    "service_latency",
    "generate_throughput",
    "char_lstm_sampling",
    "api_throughput",
    "sse_followers",
    "study_search",
    "fleet",
    "store_overhead",
)
# Written by bench/reference.py's print_summary: the prefix, then tab-separated fields.
SUMMARY_PREFIX = "SUMMARY"
COLUMNS = ("benchmark", "figure", "value", "target", "result")


class Options(TypedDict):
    only: str | None
    budget: float | None


class Outcome(TypedDict):
    """One benchmark's summary rows and whether its process exited cleanly."""

    name: str
    rows: list[tuple[str, ...]]
    returncode: int


def parse_options() -> Options:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", choices=BENCHMARKS, help="run just this benchmark")
    parser.add_argument("--budget", type=float, help="training seconds for char_lstm_learning")
    args = parser.parse_args()
    only: str | None = args.only
    budget: float | None = args.budget
    return {"only": only, "budget": budget}


def command(name: str, opts: Options) -> list[str]:
    """Start the benchmark as a module from the repository root, so `bench.*` imports work."""
    argv = [sys.executable, "-u", "-m", f"bench.{name}"]
    if name == "char_lstm_learning" and opts["budget"] is not None:
        argv += ["--budget", str(opts["budget"])]
    return argv


def run_benchmark(name: str, opts: Options) -> Outcome:
    """Stream the benchmark's output as it comes, keeping its summary lines for the table."""
    print(f"=== {name} ===", flush=True)
    rows: list[tuple[str, ...]] = []
    with subprocess.Popen(
        command(name, opts), cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            print(line, end="", flush=True)
            fields = line.rstrip("\n").split("\t")
            if fields[0] == SUMMARY_PREFIX and len(fields) == len(COLUMNS) + 1:
                rows.append(tuple(fields[1:]))
    return {"name": name, "rows": rows, "returncode": proc.returncode}


def crash_row(outcome: Outcome) -> tuple[str, ...]:
    return (outcome["name"], "process", f"exit {outcome['returncode']}", "exit 0", "CRASH")


def print_table(outcomes: list[Outcome]) -> None:
    """Columns sized to their widest cell; a crashed benchmark gets a CRASH row."""
    rows: list[tuple[str, ...]] = [COLUMNS]
    for outcome in outcomes:
        rows += outcome["rows"]
        if outcome["returncode"] != 0:
            rows.append(crash_row(outcome))
    widths = [max(len(row[col]) for row in rows) for col in range(len(COLUMNS))]
    print()
    for index, row in enumerate(rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
        if index == 0:
            print("  ".join("-" * width for width in widths))


def main() -> int:
    opts = parse_options()
    names = BENCHMARKS if opts["only"] is None else (opts["only"],)
    outcomes = [run_benchmark(name, opts) for name in names]
    print_table(outcomes)
    return 1 if any(outcome["returncode"] != 0 for outcome in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
