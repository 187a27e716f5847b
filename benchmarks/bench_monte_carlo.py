"""Benchmark: Monte Carlo throughput of the reference scenario on 1 and 2 local workers.

    python benchmarks/bench_monte_carlo.py              # 1,000 replications on 1 worker, then on 2
    python benchmarks/bench_monte_carlo.py --quick      # 40 replications each: a smoke check

Each replication is one simulated 30-day month of benchmarks/reference.yaml, reduced to its row of
figures (`deploysim.monte_carlo(..., keep_changes=False)`), the work `deploysim run --replications`
does. It prints replications per second for each worker count, the speed-up from 1 to 2 workers,
and whether the runs gave identical frames (they must: same seed, same results). The identical
check also runs the first replications on 2 workers started by spawn: spawned workers get their
own string hash seed, so a result that depended on set order would show here (forked ones
inherit the parent's). The issue's targets are printed beside the figures; nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import pandas as pd  # noqa: E402

import deploysim  # noqa: E402

REPLICATIONS = 1000
QUICK_REPLICATIONS = 40
SEED = 2026
TARGET_TOTAL_S = 300.0  # 1,000 simulated months in under 5 minutes (on 2 workers)
TARGET_SPEEDUP = 1.8


def timed(scenario, replications: int, workers: int, start_method=None) -> tuple[float, deploysim.Experiment]:
    t0 = time.perf_counter()
    exp = deploysim.monte_carlo(scenario, replications=replications, seed=SEED, workers=workers,
                                keep_changes=False, progress=sys.stderr.isatty(), start_method=start_method)
    return time.perf_counter() - t0, exp


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_REPLICATIONS} replications per worker count")
    parser.add_argument("--replications", type=int, default=None)
    args = parser.parse_args()
    n = args.replications or (QUICK_REPLICATIONS if args.quick else REPLICATIONS)
    scenario = deploysim.load_scenario(HERE / "reference.yaml")
    print(f"deploysim Monte Carlo benchmark: {n} replications of one month of {scenario.name}")
    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs, {platform.machine()}")
    timed(scenario, 2, 1)  # warm-up: imports and caches
    results = {}
    for workers in (1, 2):
        seconds, exp = timed(scenario, n, workers)
        results[workers] = (seconds, exp)
        print(f"  {workers} worker(s): {seconds:7.1f} s, {n / seconds:6.2f} replications/s, "
              f"{seconds / n:.3f} s per simulated month")
    (t1, e1), (t2, e2) = results[1], results[2]
    identical = e1.replications.equals(e2.replications)
    n_spawn = min(n, QUICK_REPLICATIONS)  # replication i has the same seed whatever n is
    _, e_spawn = timed(scenario, n_spawn, 2, start_method="spawn")
    first = e1.replications[e1.replications["replication"] < n_spawn].reset_index(drop=True)
    identical_spawn = first.equals(e_spawn.replications)
    speedup = t1 / t2
    projected = t2 * REPLICATIONS / n
    print(f"  speed-up 1 -> 2 workers: {speedup:.2f}x (target >= {TARGET_SPEEDUP}x)")
    print(f"  1,000 replications on 2 workers: {projected:.0f} s{' (projected)' if n != REPLICATIONS else ''} "
          f"(target < {TARGET_TOTAL_S:.0f} s)")
    print(f"  identical frames on 1 and 2 workers: {identical}")
    print(f"  identical frames on 1 worker and 2 spawned workers ({n_spawn} replications): {identical_spawn}")
    print()
    print("| workers | replications/s | s per month | speed-up |")
    print("|---|---|---|---|")
    print(f"| 1 | {n / t1:.2f} | {t1 / n:.3f} | 1.00x |")
    print(f"| 2 | {n / t2:.2f} | {t2 / n:.3f} | {speedup:.2f}x |")
    summary = e2.summary(["uptime_pct", "sla_breach", "lead_time_p50_h"])
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print()
        print(summary[["metric", "n", "mean", "mean_ci_low", "mean_ci_high", "median", "p90"]].to_string(index=False))


if __name__ == "__main__":
    main()
