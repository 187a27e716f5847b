"""Benchmark: every speed figure of the project in one run (`make bench`; `make bench QUICK=1` for a short one).

    python benchmarks/bench_all.py                   # full run (about an hour on 2 cores)
    python benchmarks/bench_all.py --skip-commands   # without the report and tune commands (~15 minutes)
    python benchmarks/bench_all.py --quick           # fewer repeats, small curves, Monte Carlo and commands

Prints, for one 30-day month on one core (simulate + summary, process CPU time, median and min-max
of several seeds): scenarios/aws-typical.yaml and benchmarks/reference.yaml in seconds and as a
ratio to the numpy floor, one binomial draw per cell-minute of the month (cells x 43,200 draws of
the month's errors), timed in the same run. Then the cost curve over x1..x16 hosts and x1..x8 change
rates of the reference; a Monte Carlo of 1,000 months on 1 and on 2 workers, each in a fresh process
whose pool is started by spawn, with byte-identical frames checked and the CPU time per replication;
the start-up of `deploysim run benchmarks/reference.yaml` as a whole process against
`python -c "import numpy, pandas"`; the peak RSS of one month and of a Monte Carlo at two lengths,
extrapolated to 10,000 replications; and the wall time of `deploysim report` (-n 300) and
`deploysim tune` (-n 200) of aws-typical on every core, 5 runs each. The issue's targets are printed
beside the figures; nothing asserts on time.
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS"):
    os.environ[_var] = "1"

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import yaml  # noqa: E402

import deploysim  # noqa: E402
from deploysim.world import SECONDS_PER_MONTH  # noqa: E402

sys.path.insert(0, str(HERE))
from bench_startup import argv_for, timed  # noqa: E402

AWS = REPO / "scenarios" / "aws-typical.yaml"
REFERENCE = HERE / "reference.yaml"


def cpu_model() -> str:
    """The CPU's model name (Linux), else what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def spread(values: list[float], digits: int = 3) -> str:
    return (f"{statistics.median(values):.{digits}f} s ({min(values):.{digits}f}-{max(values):.{digits}f}, "
            f"n={len(values)})")


def month_cpu_s(scenario, seeds) -> list[float]:
    """Process CPU seconds of simulate + summary of one month, one figure per seed."""
    out = []
    for seed in seeds:
        c0 = time.process_time()
        deploysim.simulate(scenario, seed=seed, months=1.0).summary()
        out.append(time.process_time() - c0)
    return out


def numpy_floor_s(scenario, repeats: int) -> list[float]:
    """One binomial draw per cell-minute of a month: the least a month's error counts can cost."""
    cells = sum(r.azs * r.cells_per_az for r in scenario.fleet.regions)
    minutes = int(SECONDS_PER_MONTH // 60)
    per_cell = scenario.traffic.requests_per_min / cells
    rng = np.random.default_rng(0)
    out = []
    for _ in range(repeats):
        c0 = time.process_time()
        rng.binomial(int(per_cell), scenario.baseline.error_rate, size=(cells, minutes))
        out.append(time.process_time() - c0)
    return out


def headline(label: str, path: Path, seeds, target_s: float) -> None:
    scenario = deploysim.load_scenario(path)
    deploysim.simulate(scenario, seed=seeds[0], months=1.0).summary()  # warm-up
    cpu = month_cpu_s(scenario, seeds)
    floor = numpy_floor_s(scenario, len(seeds))
    med, fl = statistics.median(cpu), statistics.median(floor)
    verdict = "met" if med <= target_s else f"NOT met (x{med / target_s:.1f} over)"
    print(f"{label}: simulate + summary of one month, CPU {spread(cpu)}; target <= {target_s} s: {verdict}")
    print(f"  numpy floor (one binomial draw per cell-minute): {spread(floor, 4)}; "
          f"month / floor = {med / fl:.0f}x; target as a ratio: {target_s / fl:.2f}x")


def scaled(data: dict, hosts: int = 1, rate: int = 1) -> dict:
    out = copy.deepcopy(data)
    for region in out["fleet"]["regions"]:
        region["cells_per_az"] = region.get("cells_per_az", 1) * hosts
    for source in out["changes"].values():
        source["arrivals"]["changes_per_week"] *= rate
    out["name"] = f"{data['name']}-hosts-x{hosts}-rate-x{rate}"
    return out


def curve(factors: tuple[int, ...], rates: tuple[int, ...], seeds) -> None:
    data = yaml.safe_load(REFERENCE.read_text(encoding="utf-8"))
    print("\nCost curve of benchmarks/reference.yaml (CPU s per month, simulate + summary, median over seeds "
          f"{list(seeds)}; linear means ratio <= factor):")
    print("  | case | hosts | CPU s | ratio to x1 |")
    print("  |---|---:|---:|---:|")
    base = None
    for kind, values in (("hosts", factors), ("change rate", rates)):
        for k in values:
            d = scaled(data, hosts=k) if kind == "hosts" else scaled(data, rate=k)
            sc = deploysim.scenario_from_dict(d, source=d["name"])
            s = statistics.median(month_cpu_s(sc, seeds))
            base = base if base is not None else s
            n_hosts = sum(r.azs * r.cells_per_az * r.hosts_per_cell for r in sc.fleet.regions)
            print(f"  | {kind} x{k} | {n_hosts} | {s:.3f} | {s / base:.2f} |", flush=True)


MONTE_CARLO_CODE = """
import sys, deploysim
from deploysim.process_tuning import tune_process
scenario = deploysim.load_scenario(sys.argv[1])
tune_process()  # as the command line does
exp = deploysim.monte_carlo(scenario, replications=int(sys.argv[2]), seed=2026, workers=int(sys.argv[3]),
                            keep_changes=False, progress=False, start_method="spawn")
exp.replications.to_csv(sys.argv[4], index=False)
"""


def monte_carlo(n: int, tmp: Path) -> None:
    """Both worker counts in fresh processes, each pool started by spawn: neither run is warmed by
    the other or by this benchmark, and each pays its own start-up."""
    print(f"\nMonte Carlo: {n} months of benchmarks/reference.yaml, one fresh process per worker count, "
          "pool started by spawn, keep_changes=False (one run each; wall and CPU of the whole process tree)")
    walls = {}
    for workers in (1, 2):
        frame = tmp / f"monte-carlo-{workers}.csv"
        wall, cpu = timed([sys.executable, "-c", MONTE_CARLO_CODE, str(REFERENCE), str(n), str(workers), str(frame)])
        walls[workers] = wall
        print(f"  {workers} worker(s): wall {wall:.1f} s, CPU {cpu:.1f} s, CPU per replication {cpu / n:.3f} s",
              flush=True)
    speedup = walls[1] / walls[2]
    verdict = "met" if speedup >= 1.85 else f"NOT met ({speedup / 1.85 * 100:.0f}% of it)"
    print(f"  speed-up 1 -> 2 workers: {speedup:.2f}x; target >= 1.85x: {verdict}")
    same = (tmp / "monte-carlo-1.csv").read_bytes() == (tmp / "monte-carlo-2.csv").read_bytes()
    print(f"  byte-identical replication frames on 1 and 2 workers: {same}")


def commands(report_n: int, tune_n: int, runs: int, tmp: Path) -> None:
    """The two commands a user waits for, as whole processes on every core (the default workers)."""
    cases = (
        (f"deploysim report scenarios/aws-typical.yaml --sla 99.99 -n {report_n} -o DIR",
         ["report", "scenarios/aws-typical.yaml", "--sla", "99.99", "-n", str(report_n), "-o", str(tmp / "report"),
          "--quiet"], 90.0 if report_n == 300 else None, (0,)),
        (f'deploysim tune scenarios/aws-typical.yaml --sla 99.99 --max-breach-probability 0.05 '
         f'--vary "bake durations" -n {tune_n}',
         ["tune", "scenarios/aws-typical.yaml", "--sla", "99.99", "--max-breach-probability", "0.05",
          "--vary", "bake durations", "-n", str(tune_n), "--quiet"], 180.0 if tune_n == 200 else None,
         (0, 1)),  # tune exits 1 when no setting is shown within the bound: a finished run all the same
    )
    print(f"\nCommands, whole processes on {os.cpu_count()} CPUs (default workers), {runs} run(s) each "
          "(wall seconds; CPU of the whole process tree):")
    for title, args, target, ok in cases:
        walls, cpus = [], []
        for _ in range(runs):
            wall, cpu = timed(argv_for(sys.executable, args), ok=ok)
            walls.append(wall)
            cpus.append(cpu)
        med = statistics.median(walls)
        verdict = ("" if target is None else
                   f"; target <= {target:.0f} s: " + ("met" if med <= target else f"NOT met (x{med / target:.1f})"))
        print(f"  {title}: wall {spread(walls, 1)}, CPU {statistics.median(cpus):.0f} s{verdict}", flush=True)


def startup(runs: int) -> None:
    print(f"\nStart-up, whole processes, {runs} runs after 1 warm-up (wall seconds):")
    walls = {}
    for title, args in (("deploysim run benchmarks/reference.yaml", ["run", "benchmarks/reference.yaml"]),
                        ('python -c "import numpy, pandas"', None)):
        argv = argv_for(sys.executable, args)
        times = [timed(argv)[0] for _ in range(runs + 1)][1:]
        walls[title] = times
        print(f"  {title}: {spread(times)}", flush=True)
    a, b = (statistics.median(v) for v in walls.values())
    verdict = "met" if a <= 2 * b else f"NOT met (x{a / b:.1f})"
    print(f"  ratio {a / b:.1f}x the import of numpy and pandas; target <= 2x: {verdict}")


MEMORY_CODE = """
import resource, sys, deploysim
sc = deploysim.load_scenario(sys.argv[1])
n = int(sys.argv[2])
if n == 0:
    deploysim.simulate(sc, seed=1, months=1.0).summary()
else:
    exp = deploysim.monte_carlo(sc, replications=n, seed=1, workers=1, keep_changes=False, progress=False)
    assert len(exp.replications) == n
try:  # the peak RSS of this process's own memory (VmHWM, KiB); ru_maxrss would also count the
    # parent's peak before exec on Linux, so a child of a big benchmark process reads as big as it
    print(next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:")))
except OSError:
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def peak_rss_mib(path: Path, replications: int) -> float:
    out = subprocess.run([sys.executable, "-c", MEMORY_CODE, str(path), str(replications)], cwd=REPO,
                         capture_output=True, text=True, check=True)
    return int(out.stdout.split()[-1]) / 1024.0  # KiB


def memory(n: int) -> None:
    print("\nMemory (peak RSS of a fresh process):")
    one = peak_rss_mib(AWS, 0)
    print(f"  one month of aws-typical (simulate + summary): {one:.0f} MiB; target <= 250 MiB: "
          f"{'met' if one <= 250 else 'NOT met'}")
    # The slope between n/2 and n months: the first months grow the heap more (imports, caches,
    # the allocator's arenas), so a slope from fewer months would overstate the growth per month.
    few = max(n // 2, 1)
    small, large = peak_rss_mib(REFERENCE, few), peak_rss_mib(REFERENCE, n)
    if n < 40:
        print(f"  Monte Carlo of reference on 1 worker: {few} months {small:.0f} MiB, {n} months {large:.0f} MiB "
              "(too few months to extrapolate to 10,000: run without --quick)")
        return
    slope = max(0.0, (large - small) / (n - few))
    projected = large + slope * (10_000 - n)
    print(f"  Monte Carlo of reference on 1 worker: {few} months {small:.0f} MiB, {n} months {large:.0f} MiB "
          f"({slope * 1024:.1f} KiB per replication); 10,000 months extrapolated linearly: {projected:.0f} MiB; "
          f"target <= 1024 MiB: {'met' if projected <= 1024 else 'NOT met'} (extrapolated, not run)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short run: 3 seeds, small curves and Monte Carlo")
    parser.add_argument("--skip-commands", action="store_true",
                        help="leave out the report and tune commands (the longest part of a full run)")
    args = parser.parse_args()
    seeds = (1, 2, 3) if args.quick else (1, 2, 3, 4, 5)
    print("deploysim benchmark" + (" (--quick)" if args.quick else ""))
    print(f"  python {platform.python_version()}, numpy {np.__version__}; {os.cpu_count()} CPUs, {cpu_model()}; "
          "BLAS/OpenMP threads = 1; times are process CPU seconds unless said")
    headline("aws-typical", AWS, seeds, 0.10)
    headline("reference", REFERENCE, seeds, 0.05)
    if args.quick:
        curve((1, 2), (1, 2), seeds[:1])
    else:
        curve((1, 2, 4, 8, 16), (1, 2, 4, 8), seeds[:1])
    with tempfile.TemporaryDirectory(prefix="deploysim-bench-") as tmp:
        monte_carlo(8 if args.quick else 1000, Path(tmp))
        startup(5)
        memory(8 if args.quick else 80)
        if not args.skip_commands:
            commands(4 if args.quick else 300, 4 if args.quick else 200, 1 if args.quick else 5, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
