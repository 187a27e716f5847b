"""Latency that costs: requests a defect slows past the client timeout fail, and an optional latency
SLO counts slow requests as bad in the uptime figures.

Baseline latency is lognormal with p50 20 ms and p99 120 ms: sigma = ln(6) / z(0.99) = 0.7702. The share
slower than T on a host x f slower is Phi((ln(20 f) - ln T) / sigma): 0.00140 for T = 200 ms at f = 1,
0.11709 at f = 4; 0.01833 for T = 100 ms at f = 1.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import bad_change, patched, tiny_scenario_dict, with_changes

import deploysim
from deploysim.exposure import ExposureLog
from deploysim.fleet import build_fleet
from deploysim.metrics import MetricModel
from deploysim.world import world_for_seed

SLOW = {"name": "slow", "latency_factor": 4.0}


def _model(data: dict):
    scenario = deploysim.scenario_from_dict(data)
    layout = build_fleet(scenario)
    return layout, MetricModel(scenario, layout, world_for_seed(scenario, seed=0, months=0.01), [bad_change(scenario)])


def _all_hosts_slow(data: dict) -> float:
    layout, model = _model(patched(data, "changes.code.defects", [SLOW]))
    log = ExposureLog()
    log.open(0, np.arange(10), 0.0)
    return float(model.expected(np.arange(10), 0, 1, log).errors[0])


def test_a_4x_regression_fails_the_requests_it_slows_past_the_timeout():
    """6,000 requests a minute, timeout 200 ms: 6,000 x (0.11709 - 0.00140) = 694 fail a minute
    (the baseline's own timeouts are in its error rate); without a timeout none do."""
    assert _all_hosts_slow(tiny_scenario_dict()) == 0.0
    timed = patched(tiny_scenario_dict(), "traffic.client_timeout_ms", {"All": 200.0})
    assert _all_hosts_slow(timed) == pytest.approx(694.14, rel=1e-3)


def test_timeouts_are_per_api():
    """Two APIs of 3,000 a minute each; only `read` has a 200 ms timeout: 3,000 x 0.11569 = 347 fail."""
    data = patched(tiny_scenario_dict(), "traffic.apis", {"read": 0.5, "write": 0.5})
    data = patched(data, "traffic.client_timeout_ms", {"read": 200.0})
    layout, model = _model(patched(data, "changes.code.defects", [SLOW]))
    log = ExposureLog()
    log.open(0, np.arange(10), 0.0)
    m = model.expected(np.arange(10), 0, 1, log)
    np.testing.assert_allclose(m.errors_api[:, 0], [347.07, 0.0], rtol=1e-3)


def test_unknown_api_in_timeouts_is_a_clear_error():
    data = patched(tiny_scenario_dict(), "traffic.client_timeout_ms", {"search": 200.0})
    with pytest.raises(deploysim.scenario.ScenarioError, match="client_timeout_ms names unknown APIs: search"):
        deploysim.scenario_from_dict(data)


def test_a_slow_release_no_alarm_watches_now_costs_failed_requests_and_uptime():
    """The whole rollout of a 4x slower version, watched only by an error-rate alarm it never trips:
    with a 200 ms timeout it fails 694 requests a minute once everywhere; without, none."""
    def run(data):
        scenario = deploysim.scenario_from_dict(patched(data, "changes.code.defects", [SLOW]))
        return with_changes(scenario, [bad_change(scenario)])

    quiet = run(tiny_scenario_dict())
    assert quiet.changes["failed_requests"].iloc[0] == 0.0
    timed = run(patched(tiny_scenario_dict(), "traffic.client_timeout_ms", {"All": 200.0}))
    failed = timed.changes["failed_requests"].iloc[0]
    minutes_everywhere = (0.01 * 30 * 1440) - 30  # the run, less the one-box bake, wave deploy and a margin
    assert failed > 694 * minutes_everywhere
    assert timed.uptime["errors"].sum() == pytest.approx(failed, rel=0.02)


def test_a_latency_slo_counts_slow_requests_as_bad_in_uptime_only():
    """SLO 100 ms, no change at all: 1.833% of the 6,000 a minute are slower, 110 a minute count as
    bad in the uptime figures over the run's 432 minutes (47,500), though none failed."""
    data = patched(tiny_scenario_dict(), "latency_slo_ms", 100.0)
    scenario = deploysim.scenario_from_dict(data)
    result = with_changes(scenario, [])
    assert result.uptime["errors"].sum() == pytest.approx(6000 * 0.0183256 * 432, rel=0.02)
    assert with_changes(deploysim.scenario_from_dict(tiny_scenario_dict()), []).uptime["errors"].sum() == 0.0
