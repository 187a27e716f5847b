"""Benchmark: how fast deploysim simulates a month of the reference scenario, and how that cost scales.

    python benchmarks/bench_simulate.py            # full run (a few minutes)
    python benchmarks/bench_simulate.py --quick    # smoke check: 1 repeat, 1x and 2x only

It loads benchmarks/reference.yaml (360 hosts, 1-minute metrics, ~40 code and ~150 config changes
a month), times `deploysim.simulate(scenario, seed=s, months=1)` for a few seeds on one core, and
prints simulated months per second and seconds per simulated month (median over repeats). Then it
scales the fleet (cells per AZ x2, x4, x8) and, separately, the change arrival rates of both
pipelines (x2, x4, x8), and prints each case's seconds per simulated month with its ratio to the
1x case: a ratio at or below the scale factor means cost grows no faster than linearly.

Only the `simulate` call is timed (drawing the world, the SimPy run, and the blast radii and SLA
error counts the engine computes when the run ends); post-processing (`result.summary()`: frames
and figures from the records) is timed separately for the 1x case. Nothing here asserts on time: the
figures are printed, ending with a markdown table for the README.
"""

from __future__ import annotations

import argparse
import copy
import gc
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

# One core: keep every BLAS/OpenMP pool at one thread. Must happen before numpy is imported.
for _var in (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
):
    os.environ[_var] = "1"

# ---------------------------------------------------------------- settings

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SCENARIO_PATH = HERE / "reference.yaml"

SEEDS = (1, 2, 3)  # every timing is the mean over these seeds (different random worlds)
MONTHS = 1.0  # simulated 30-day months per run
REPEATS = 3  # each case is timed this many times; the median is reported
SCALES = (1, 2, 4, 8)  # scale factors for cells per AZ and for change arrival rates
QUICK_REPEATS = 1
QUICK_SCALES = (1, 2)
WARMUP = True  # one untimed run first (imports, time-zone and other caches)
PIN_TO_ONE_CPU = False  # also restrict the process to one CPU (os.sched_setaffinity); off by default
                        # because on a shared machine the chosen CPU may be the busy one
TARGET_S_PER_MONTH = 0.5  # performance target: one simulated month of the reference in < 0.5 s

# Run from a checkout without relying on how (or whether) the package is installed.
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import yaml  # noqa: E402

import deploysim  # noqa: E402

# ---------------------------------------------------------------- cases


@dataclass
class Case:
    """One scenario variant and what timing it produced."""

    label: str
    kind: str  # "base" | "cells" | "rates"
    scale: int
    data: dict
    scenario: object = None
    s_per_month: list[float] = field(default_factory=list)  # wall clock, one figure per repeat (mean over seeds)
    cpu_s_per_month: list[float] = field(default_factory=list)  # process CPU time, same runs
    summary_s_per_month: list[float] = field(default_factory=list)
    hosts: int = 0
    changes_per_month: float = 0.0
    versions_per_month: float = 0.0
    events_per_month: float = 0.0

    @property
    def median_s(self) -> float:
        return statistics.median(self.s_per_month)

    @property
    def median_cpu_s(self) -> float:
        return statistics.median(self.cpu_s_per_month)


def load_reference_dict() -> dict:
    with open(SCENARIO_PATH, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def scaled_cells(data: dict, k: int) -> dict:
    out = copy.deepcopy(data)
    for region in out["fleet"]["regions"]:
        region["cells_per_az"] = region.get("cells_per_az", 1) * k
    out["name"] = f"{data['name']}-cells-x{k}"
    return out


def scaled_rates(data: dict, k: int) -> dict:
    out = copy.deepcopy(data)
    for source in out["changes"].values():
        source["arrivals"]["changes_per_week"] = source["arrivals"]["changes_per_week"] * k
    out["name"] = f"{data['name']}-rates-x{k}"
    return out


def build_cases(scales: tuple[int, ...]) -> list[Case]:
    data = load_reference_dict()
    cases = [Case("1x (reference)", "base", 1, data)]
    for k in scales:
        if k != 1:
            cases.append(Case(f"cells x{k}", "cells", k, scaled_cells(data, k)))
    for k in scales:
        if k != 1:
            cases.append(Case(f"change rates x{k}", "rates", k, scaled_rates(data, k)))
    for case in cases:
        case.scenario = deploysim.scenario_from_dict(case.data, source=case.label)
        case.hosts = sum(r.azs * r.cells_per_az * r.hosts_per_cell for r in case.scenario.fleet.regions)
    return cases


# ---------------------------------------------------------------- timing


def time_case(case: Case, with_summary: bool) -> None:
    """One repeat: simulate every seed once; record the mean seconds per simulated month."""
    sim_s, cpu_s, summary_s = 0.0, 0.0, 0.0
    changes = versions = events = 0
    for seed in SEEDS:
        gc.collect()
        t0, c0 = time.perf_counter(), time.process_time()
        result = deploysim.simulate(case.scenario, seed=seed, months=MONTHS)
        sim_s += time.perf_counter() - t0
        cpu_s += time.process_time() - c0
        if with_summary:
            gc.collect()
            t0 = time.perf_counter()
            result.summary()
            summary_s += time.perf_counter() - t0
        records = result.records
        changes += len(records.changes)
        versions += len(records.versions)
        events += len(records.timeline)
        del result
    runs = len(SEEDS) * MONTHS
    case.s_per_month.append(sim_s / runs)
    case.cpu_s_per_month.append(cpu_s / runs)
    if with_summary:
        case.summary_s_per_month.append(summary_s / runs)
    case.changes_per_month, case.versions_per_month, case.events_per_month = (
        changes / runs,
        versions / runs,
        events / runs,
    )


def pin_to_one_cpu() -> str:
    if not PIN_TO_ONE_CPU or not hasattr(os, "sched_setaffinity"):
        return "not pinned"
    try:
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        return f"pinned to CPU {cpu}"
    except OSError as error:
        return f"not pinned ({error.strerror})"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# ---------------------------------------------------------------- printing


def fmt_s(x: float) -> str:
    return f"{x:.3f}"


def print_scaling(title: str, base: Case, cases: list[Case]) -> None:
    print(f"\n{title}")
    header = (f"  {'case':<20}{'hosts':>7}{'changes/mo':>12}{'versions/mo':>13}{'events/mo':>11}"
              f"{'s/month':>10}{'ratio':>8}{'cpu s/mo':>10}{'cpu ratio':>11}{'linear':>8}")
    print(header)
    print("  " + "-" * (len(header) - 2))
    for case in [base, *cases]:
        print(f"  {case.label:<20}{case.hosts:>7}{case.changes_per_month:>12.1f}{case.versions_per_month:>13.1f}"
              f"{case.events_per_month:>11.0f}{case.median_s:>10.3f}{case.median_s / base.median_s:>8.2f}"
              f"{case.median_cpu_s:>10.3f}{case.median_cpu_s / base.median_cpu_s:>11.2f}{case.scale:>7}x")


def print_markdown(base: Case, cases: list[Case]) -> None:
    print("\n| Case | Hosts | Changes / month | s per simulated month | Simulated months / s | Ratio to 1x "
          "| CPU s per simulated month | CPU ratio to 1x |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for case in [base, *cases]:
        print(f"| {case.label} | {case.hosts} | {case.changes_per_month:.0f} | {case.median_s:.3f} | "
              f"{1.0 / case.median_s:.2f} | {case.median_s / base.median_s:.2f} | "
              f"{case.median_cpu_s:.3f} | {case.median_cpu_s / base.median_cpu_s:.2f} |")
    summary = statistics.median(base.summary_s_per_month)
    print(f"\nSeeds {list(SEEDS)}, {MONTHS:g} month per run, median of repeats, one core. Post-processing "
          f"(`result.summary()`, 1x): {summary:.3f} s per simulated month. "
          f"Target: < {TARGET_S_PER_MONTH} s per simulated month of the reference scenario.")


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 repeat, 1x and 2x only (smoke check)")
    args = parser.parse_args(argv)
    repeats = QUICK_REPEATS if args.quick else REPEATS
    scales = QUICK_SCALES if args.quick else SCALES

    pinned = pin_to_one_cpu()
    print("deploysim simulate benchmark" + (" (--quick)" if args.quick else ""))
    print(f"  scenario: {SCENARIO_PATH.relative_to(REPO)}; seeds {list(SEEDS)}; {MONTHS:g} month(s) per run; "
          f"{repeats} repeat(s); median of repeats")
    print(f"  python {platform.python_version()}, numpy {np.__version__}, deploysim {deploysim.__version__}; "
          f"{cpu_model()}; {pinned}; BLAS/OpenMP threads = 1")

    cases = build_cases(scales)
    base = cases[0]
    if WARMUP:
        deploysim.simulate(base.scenario, seed=SEEDS[0], months=MONTHS)

    for r in range(repeats):
        for case in cases:
            time_case(case, with_summary=case is base)
        print(f"  repeat {r + 1}/{repeats}: 1x {fmt_s(base.s_per_month[-1])} s/month", flush=True)

    s = base.median_s
    summary = statistics.median(base.summary_s_per_month)
    print(f"\nReference scenario ({base.hosts} hosts, {base.changes_per_month:.0f} changes, "
          f"{base.versions_per_month:.0f} versions, {base.events_per_month:.0f} timeline events per month):")
    print(f"  simulate:            {s:.3f} s per simulated month = {1.0 / s:.2f} simulated months per second")
    print(f"    per repeat:        {', '.join(fmt_s(x) for x in base.s_per_month)} s/month")
    note = " (well below wall clock: the machine is busy; trust CPU time)" if base.median_cpu_s < 0.9 * s else ""
    print(f"    process CPU time:  {base.median_cpu_s:.3f} s per simulated month{note}")
    print(f"  result.summary():    {summary:.3f} s per simulated month (post-processing, not included above)")
    verdict = "meets" if s < TARGET_S_PER_MONTH else f"misses (x{s / TARGET_S_PER_MONTH:.1f} too slow)"
    print(f"  target < {TARGET_S_PER_MONTH} s/month: {verdict}")

    print_scaling("Scaling with fleet size (cells per AZ scaled):", base, [c for c in cases if c.kind == "cells"])
    print_scaling(
        "Scaling with change arrival rate (both pipelines scaled):", base, [c for c in cases if c.kind == "rates"]
    )
    print("\n  s/month: wall clock, median of repeats; cpu s/mo: process CPU time of the same runs;\n"
          "  ratio: to the 1x case; cost grows no faster than linearly while ratio <= linear.")

    print_markdown(base, cases[1:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
