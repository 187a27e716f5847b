"""The quiet-period bound (deploysim/quiet.py): healthy scopes draw noise only where a datapoint could
breach, and their alarm states are those of the full computation."""

from __future__ import annotations

from math import comb
from pathlib import Path

import numpy as np
import pytest
from scipy.special import pdtrc

from deploysim.alarms.series import metric_alarm_codes
from deploysim.engine import Simulation
from deploysim.metrics import WindowMetrics
from deploysim.noise import poisson
from deploysim.quiet import FP_SLACK, poisson_tail_below, quiet_periods, quiet_probability, replaceable
from deploysim.scenario import load_scenario

ROOT = Path(__file__).resolve().parent.parent
AWS = ROOT / "scenarios" / "aws-typical.yaml"
REFERENCE = ROOT / "benchmarks" / "reference.yaml"


def _full_codes(sim: Simulation, hosts: np.ndarray, m: WindowMetrics, alarm) -> tuple[np.ndarray, np.ndarray]:
    """The old way: every datapoint of the run drawn, then the alarm's state codes."""
    values = sim.alarms._flags(m, alarm, sim.alarms._noise_of(hosts))
    hold = sim.metrics.low_sample(m, alarm.metric) if alarm.evaluate_low_sample_count_percentile == "ignore" else None
    return values, metric_alarm_codes(values, alarm, 0, hold)


@pytest.mark.parametrize("path,seed", [(AWS, 1), (AWS, 2), (AWS, 3), (REFERENCE, 1), (REFERENCE, 2)])
def test_quiet_periods_never_breach_and_states_match_the_full_draw(path, seed):
    sim = Simulation(load_scenario(path), seed=seed, months=0.25)
    sim.run()
    aw = sim.alarms
    scopes = {scope for scope, _ in aw._healthy}
    assert scopes, "the run computed no healthy scope"
    quiet_share = []
    for scope in sorted(scopes):
        hosts = np.frombuffer(scope, dtype=np.int64)
        m = sim.metrics.expected(hosts, 0, aw.n_periods, with_batches=False)
        full: dict[str, np.ndarray] = {}
        for alarm in aw.metric_alarms.values():
            values, codes = _full_codes(sim, hosts, m, alarm)
            full[alarm.name] = codes
            quiet = quiet_periods(sim.metrics, m, alarm)
            if quiet is None:
                continue
            quiet_share.append(quiet.mean())
            # A quiet datapoint is present and does not breach, whatever the seed.
            assert not np.isnan(values[quiet]).any()
            assert not (values[quiet] > alarm.threshold).any(), (alarm.name, seed)
        # The cached (partly drawn) states equal those of the full draw, for every alarm computed.
        for (s, name), flags in aw._healthy.items():
            if s != scope:
                continue
            expected = aw._combine(name, lambda a, codes=full: codes[a.name])
            assert np.array_equal(flags, expected), (name, seed)
    assert max(quiet_share) == 1.0, "no alarm was found quiet: the test exercises nothing"


def test_a_scope_near_its_threshold_is_not_quiet():
    sc = load_scenario(AWS)
    sim = Simulation(sc, seed=1, months=0.1)
    hosts = sim.layout.hosts_in_region(1)
    m = sim.metrics.expected(hosts, 0, sim.metrics.n_periods, with_batches=False)
    alarms = {a.name: a for a in sc.alarms.metric}
    # Far from its threshold: quiet.
    assert quiet_periods(sim.metrics, m, alarms["High_Memory"]).all()
    # Thresholds moved next to the mean: never quiet.
    rate = float(np.median(m.errors / m.requests))
    near_rate = alarms["High_Fault_Rate"].model_copy(update={"threshold": rate * 1.5})
    assert not quiet_periods(sim.metrics, m, near_rate).any()
    cpu = m.cpu_pct["maximum"]
    near_cpu = alarms["High_CPU"].model_copy(update={"threshold": float(cpu.max()) + 3.0})
    quiet_cpu = quiet_periods(sim.metrics, m, near_cpu)
    # M = N = 5 tolerates 5-deviation datapoints (p* ~ 2e-7 here); within 5 of the threshold is never quiet.
    assert not quiet_cpu[cpu > cpu.max() - 2.0].any()
    assert quiet_cpu[cpu < cpu.max() - 12.0].all()  # 15 deviations below it
    p99 = alarms["High_P99_Latency"].model_copy(update={"threshold": 150.0})
    assert not quiet_periods(sim.metrics, m, p99).any()
    # "Less than" thresholds are not bounded: every period is drawn.
    low = alarms["High_Fault_Rate"].model_copy(update={"comparison": "LessThanThreshold"})
    assert quiet_periods(sim.metrics, m, low) is None


def test_poisson_tail_bound_holds_exactly_and_for_the_implementation():
    lam = np.geomspace(1e-4, 300.0, 400)
    for c_factor in (1.5, 3.0, 10.0, 40.0):
        c = np.floor(lam * c_factor) + np.arange(1, 5)[:, None]
        for p in (1e-8, 1e-12):
            quiet = poisson_tail_below(np.broadcast_to(lam, c.shape), c, p)
            lam_q, c_q = np.broadcast_to(lam, c.shape)[quiet], c[quiet]
            if not lam_q.size:
                continue
            assert (pdtrc(c_q - 1.0, lam_q) <= p).all()  # P(N >= c) = P(N > c - 1)
            # The inversion the model uses: the uniform that would give c counts lies above 1 - p - slack.
            u = np.full(lam_q.shape, 1.0 - p - FP_SLACK)
            assert (poisson(u, lam_q) < c_q).all()


def test_replaceable_keeps_a_margin_around_every_loud_period():
    class Alarm:
        evaluation_periods = 3

    rng = np.random.default_rng(0)
    radius = 2 * (3 + 2)
    for size in (1, 9, 10, 11, 21, 22, 200):
        for _ in range(50):
            quiet = rng.random(size) > rng.random() * 0.2
            want = np.array([quiet[max(0, k - radius):k + radius + 1].all() for k in range(size)])
            assert np.array_equal(replaceable(quiet, Alarm), want)


def test_quiet_probability_meets_the_budget():
    sc = load_scenario(AWS)
    for alarm in sc.alarms.metric:
        p = quiet_probability(alarm, 43_200)
        assert 43_200 * comb(alarm.evaluation_periods, alarm.datapoints_to_alarm) * p ** alarm.datapoints_to_alarm \
            <= 1.0000001e-30
