"""Benchmark: how long the `deploysim` command takes to start, as whole processes.

    python benchmarks/bench_startup.py                      # this interpreter's deploysim, 7 runs each
    python benchmarks/bench_startup.py --runs 11
    python benchmarks/bench_startup.py --python before=OLD/.venv/bin/python --python after=.venv/bin/python

Each command is started RUNS times after one warm-up run that is not counted, from the repository's
root, with its output thrown away: `deploysim --help`, `deploysim validate scenarios/aws-typical.yaml`,
`deploysim run benchmarks/reference.yaml` and, as the yardstick of what the heavy libraries alone
cost, `python -c "import numpy, pandas"`. `deploysim` is the console script beside the interpreter
(its venv's bin/), else `python -c` calling `deploysim.cli.main`. For each it prints the wall time
and the CPU time (user + system, the kernel's accounting of the finished child) as median (min-max).

To compare two checkouts, install each in its own venv (`pip install -e .`) and pass both with
--python LABEL=PATH: the runs alternate between them (A B A B ...) so a machine that speeds up or
slows down during the benchmark moves both alike, and a last column gives the ratio of medians to the
first. Nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

COMMANDS = [
    ("deploysim --help", ["--help"]),
    ("deploysim validate scenarios/aws-typical.yaml", ["validate", "scenarios/aws-typical.yaml"]),
    ("deploysim run benchmarks/reference.yaml", ["run", "benchmarks/reference.yaml"]),
    ('python -c "import numpy, pandas"', None),
]


def argv_for(python: str, args: list[str] | None) -> list[str]:
    """The process to start: the venv's `deploysim` script with `args`, or the import yardstick."""
    if args is None:
        return [python, "-c", "import numpy, pandas"]
    script = Path(python).parent / "deploysim"  # not resolved: a venv's python is a symlink out of the venv
    if script.is_file():
        return [str(script), *args]
    return [python, "-c", "import sys; from deploysim.cli import main; sys.exit(main())", *args]


def timed(argv: list[str], ok: tuple[int, ...] = (0,)) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one whole process, from start to exit; an exit code not in
    `ok` stops the benchmark."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in ok:
        raise SystemExit(f"{' '.join(argv)} exited with {proc.returncode}")
    return wall, usage.ru_utime + usage.ru_stime


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} s ({min(values):.3f}-{max(values):.3f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="counted runs per command and interpreter (>= 5)")
    parser.add_argument("--python", action="append", metavar="[LABEL=]PATH",
                        help="interpreter whose deploysim to time (repeatable; default: this one)")
    args = parser.parse_args()
    if args.runs < 5:
        parser.error("--runs must be at least 5")
    pythons = []
    for spec in args.python or [sys.executable]:
        label, _, path = spec.rpartition("=")
        pythons.append((label or path, path))

    print(f"{args.runs} runs per command after 1 warm-up; wall and CPU (user + system) seconds, median (min-max)")
    for title, cmd_args in COMMANDS:
        walls: dict[str, list[float]] = {label: [] for label, _ in pythons}
        cpus: dict[str, list[float]] = {label: [] for label, _ in pythons}
        for run in range(args.runs + 1):
            for label, python in pythons:  # alternate, so drift in the machine's speed moves all alike
                wall, cpu = timed(argv_for(python, cmd_args))
                if run:
                    walls[label].append(wall)
                    cpus[label].append(cpu)
        print(f"\n{title}")
        first = pythons[0][0]
        for label, _ in pythons:
            ratio = ""
            if label != first:
                ratio = (f"   wall x{statistics.median(walls[label]) / statistics.median(walls[first]):.2f}, "
                         f"cpu x{statistics.median(cpus[label]) / statistics.median(cpus[first]):.2f} of {first}")
            print(f"  {label:<12} wall {spread(walls[label])}   cpu {spread(cpus[label])}{ratio}")


if __name__ == "__main__":
    main()
