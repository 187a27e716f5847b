"""Shortcuts the simulator takes for speed give exactly what the plain computation gives: the same
SLA error means to the last bit, the same answer to "is this scope touched?", and Monte Carlo jobs
that hold every replication once, in order."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import SCENARIOS

from deploysim.engine import Simulation
from deploysim.experiments.runner import CHUNK, pool_chunks
from deploysim.impact import DAY_OF_PERIODS, _sla_windows
from deploysim.scenario import load_scenario


@pytest.fixture(scope="module")
def aws_run() -> Simulation:
    """A month of aws-typical: bad changes in several regions, batches and faults."""
    sim = Simulation(load_scenario(SCENARIOS / "aws-typical.yaml"), seed=3, months=1.0)
    sim.run()
    return sim


def test_quiet_days_merged_into_one_window_give_each_period_its_daily_errors(aws_run):
    """sla_error_counts asks one window per run of quiet days; every period's expected errors (and
    SLO breaches) are bit for bit those of its own day's window."""
    sim = aws_run
    n = sim.metrics.n_periods
    merged_any = False
    for r in range(sim.layout.n_regions):
        hosts = sim.layout.hosts_in_region(r)
        windows = _sla_windows(sim.metrics, sim.layout, sim.exposures, r, n)
        assert windows[0][0] == 0 and windows[-1][1] == n
        assert all(a[1] == b[0] for a, b in zip(windows, windows[1:], strict=False))
        for k0, k1 in windows:
            merged_any |= k1 - k0 > DAY_OF_PERIODS
            whole = sim.metrics.expected(hosts, k0, k1, sim.exposures)
            for d0 in range(k0, k1, DAY_OF_PERIODS):
                d1 = min(d0 + DAY_OF_PERIODS, k1)
                day = sim.metrics.expected(hosts, d0, d1, sim.exposures)
                assert whole.errors[d0 - k0:d1 - k0].tobytes() == day.errors.tobytes(), (r, d0)
    assert merged_any


def test_touched_matches_a_scan_of_the_whole_exposure_log(aws_run):
    """_touched compares a scope's own intervals, kept between log edits; the answer is that of
    the full scan it replaced, for every watched scope and windows across the month."""
    sim = aws_run
    watch = sim.alarms
    ex = sim.exposures
    scopes = {w.hosts.tobytes(): w.hosts for state in sim.pipelines.values() for stage in state.plan.stages
              for step in stage.steps for w in step.watched}
    assert ex.size > 0
    rng = np.random.default_rng(0)
    for hosts in scopes.values():
        mask, _ = watch._scope_mask(hosts)
        for t0 in rng.uniform(0.0, sim.horizon_s, 40):
            t1 = t0 + float(rng.uniform(60.0, 12 * 3600.0))
            n = ex.size
            scan = bool((mask[ex.host[:n]] & (ex.off_s[:n] > t0) & (ex.on_s[:n] < t1)).any())
            batches = any(b.region in watch._scope_mask(hosts)[1] and b.start_s < t1 and b.end_s > t0
                          for b in sim.metrics.batches_out)
            assert watch._touched(hosts, t0, t1, None) == (scan or batches)


@pytest.mark.parametrize("n", [1, 3, 8, 40, 1000])
@pytest.mark.parametrize("workers", [2, 3])
def test_pool_jobs_hold_every_replication_once_in_order_and_end_one_at_a_time(n, workers):
    tasks = list(range(n))
    chunks = pool_chunks(tasks, workers)
    assert [t for chunk in chunks for t in chunk] == tasks
    assert all(1 <= len(chunk) <= CHUNK for chunk in chunks)
    assert [len(c) for c in chunks] == sorted((len(c) for c in chunks), reverse=True)
    assert all(len(chunk) == 1 for chunk in chunks[-min(n, 2 * workers):])
