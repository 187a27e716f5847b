"""Effects of defects, faults and blockers, each against a value worked out by hand."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pytest
from conftest import bad_change, good_change, patched, tiny_scenario_dict, with_changes

import deploysim
from deploysim.exposure import ExposureLog
from deploysim.fleet import build_fleet
from deploysim.metrics import MetricModel
from deploysim.policy.blockers import Calendar, RegionCalendar
from deploysim.scenario.schema import Blockers
from deploysim.world import Fault, world_for_seed


def _model_with_defect(defect: dict, extra: dict | None = None):
    data = patched(tiny_scenario_dict(), "changes.code.defects", [defect])
    for path, value in (extra or {}).items():
        data = patched(data, path, value)
    scenario = deploysim.scenario_from_dict(data)
    layout = build_fleet(scenario)
    return scenario, layout, MetricModel(scenario, layout, world_for_seed(scenario, seed=0, months=0.01),
                                         [bad_change(scenario)])


def test_dependency_overload_fails_requests_on_every_host_of_the_region():
    """One host of ten calls the dependency 21x: load = 1 + 0.1 * 20 = 3 > capacity 2, so it sheds
    1 - 2/3 of calls; with 60% of requests calling it, 20% of the region's requests fail."""
    scenario, layout, model = _model_with_defect(
        {"name": "storm", "dependency": "auth", "dependency_load_factor": 21.0},
        {"dependencies": [{"name": "auth", "calls_share": 0.6, "baseline_error_rate": 0.0, "capacity_factor": 2.0}]},
    )
    log = ExposureLog()
    log.open(0, np.array([0]), 0.0)
    region = layout.hosts_in_region(0)
    m = model.expected(region, 0, 5, log)
    np.testing.assert_allclose(m.errors / m.requests, 0.6 * (1 - 2 / 3))
    np.testing.assert_allclose(m.dependency_error_rate["auth"], 1 - 2 / 3)
    # A host that does not run the bad change fails just as often: the damage is shared.
    other = model.expected(np.array([5]), 0, 5, log)
    np.testing.assert_allclose(other.errors / other.requests, 0.6 * (1 - 2 / 3))


def test_latency_of_a_fully_slowed_scope_is_the_baseline_times_the_factor():
    scenario, layout, model = _model_with_defect({"name": "slow", "latency_factor": 3.0})
    log = ExposureLog()
    log.open(0, np.arange(10), 0.0)
    m = model.expected(np.arange(10), 0, 3, log)
    np.testing.assert_allclose(m.latency_ms["p99"], 3 * scenario.baseline.latency_p99_ms, rtol=1e-6)
    np.testing.assert_allclose(m.latency_ms["p50"], 3 * scenario.baseline.latency_p50_ms, rtol=1e-6)


def test_a_slowed_share_raises_high_percentiles_more_than_the_median():
    """10% of requests 5x slower: p99 moves a lot, p50 little (the tail is the slowed share)."""
    scenario, layout, model = _model_with_defect({"name": "slow", "latency_factor": 5.0})
    log = ExposureLog()
    log.open(0, np.array([0]), 0.0)
    m = model.expected(np.arange(10), 0, 1, log)
    base = scenario.baseline
    assert m.latency_ms["p99"][0] / base.latency_p99_ms > 2.0
    assert m.latency_ms["p50"][0] / base.latency_p50_ms < 1.2


def test_memory_leak_crashes_the_host_when_memory_reaches_100_percent():
    """Memory grows 25%/h from 50% after a 10-minute delay: the host fails all requests from 2h10m."""
    scenario, layout, model = _model_with_defect(
        {"name": "leak", "memory_growth_pct_per_h": 25.0, "start_delay": "10m"}
    )
    log = ExposureLog()
    log.open(0, np.array([0]), 0.0)
    m = model.expected(np.array([0]), 0, 180, log)
    minute_failing = int(np.argmax(m.errors > 0))
    assert minute_failing == 130  # period 130 has its middle at 130.5 min, after 2 h 10 min
    assert m.unhealthy_hosts[129] == 0 and m.unhealthy_hosts[130] == 1
    np.testing.assert_allclose(m.memory_pct["maximum"][70], 50 + 25 * (70.5 - 10) / 60)


def test_defect_only_under_load_stays_silent_below_the_load_level():
    scenario, layout, model = _model_with_defect({"name": "peak", "error_rate": 0.5, "min_load_factor": 1.5})
    log = ExposureLog()
    log.open(0, np.array([0]), 0.0)
    m = model.expected(np.array([0]), 0, 60, log)
    assert m.errors.sum() == 0  # the tiny scenario's traffic is flat: load factor 1.0


def test_api_specific_defect_fails_only_that_api():
    scenario, layout, model = _model_with_defect(
        {"name": "create", "error_rate": 1.0, "api": "Create"},
        {"traffic.apis": {"Get": 0.9, "Create": 0.1}},
    )
    log = ExposureLog()
    log.open(0, np.arange(10), 0.0)
    m = model.expected(np.arange(10), 0, 5, log)
    np.testing.assert_allclose(m.errors / m.requests, 0.1)
    np.testing.assert_allclose(m.errors_api[1] / m.requests_api[1], 1.0)
    assert m.errors_api[0].sum() == 0


def test_incident_blocks_a_production_stage_until_the_fault_ends(tiny):
    """An AZ outage from 0 to 1 h in the stage's region: the stage rechecks every 5 min and starts at 1 h."""
    data = patched(tiny_scenario_dict(), "policy.pipelines.code.blockers.incidents", True)
    scenario = deploysim.scenario_from_dict(data)
    world = dataclasses.replace(world_for_seed(scenario, seed=0, months=0.01), changes=(good_change(),),
                                faults=(Fault("az_outage", 0, 0.0, 3600.0, az=0, failover_s=60.0),))
    row = deploysim.simulate(scenario, seed=0, months=0.01, world=world).changes.iloc[0]
    assert row["blocked_s"] == 3600.0
    assert row["lead_time_s"] == 3600.0 + 30 * 60


def test_holidays_and_freezes_push_the_start_to_the_next_open_time():
    start = dt.datetime(2026, 1, 5, tzinfo=dt.timezone.utc)  # Monday
    blockers = Blockers(
        time_windows=({"days": ["Mon", "Tue", "Wed", "Thu", "Fri"], "start_hour": 9, "end_hour": 17},),
        freezes=({"start": "2026-01-07T00:00:00Z", "end": "2026-01-08T12:00:00Z"},),
    )
    calendar = Calendar(blockers, start)
    region = RegionCalendar("UTC", frozenset({dt.date(2026, 1, 5)}))
    hour = 3600.0
    # Monday is a holiday: Tuesday 09:00.
    assert calendar.next_allowed_s(10 * hour, [region]) == (24 + 9) * hour
    # Wednesday and Thursday morning are frozen: Thursday 12:00 (inside the window).
    assert calendar.next_allowed_s((48 + 10) * hour, [region]) == (72 + 12) * hour
    # Friday 18:00 is after hours: Monday 09:00.
    assert calendar.next_allowed_s((96 + 18) * hour, [region]) == (168 + 9) * hour


def test_cpu_follows_load_over_capacity():
    """CPU = idle + (100 - idle) x requests per minute / capacity: 600 rpm on a 10,000 rpm host at 5% idle."""
    scenario, layout, model = _model_with_defect({"name": "none"})
    m = model.expected(np.arange(10), 0, 3)
    np.testing.assert_allclose(m.cpu_pct["average"], 5 + 95 * 600 / 10000)


def test_losing_an_az_at_too_little_headroom_sheds_the_excess():
    """Static stability: 3 AZs x 2 hosts at 1,000 rpm each, capacity 1,200 rpm. The lost AZ's third
    fails during failover; then 4 hosts take 1,500 rpm each and shed 300 each: 20% of the region."""
    data = patched(tiny_scenario_dict(), "fleet", {"host_capacity_rpm": 1200, "regions": [
        {"name": "r1", "timezone": "UTC", "azs": 3, "cells_per_az": 1, "hosts_per_cell": 2}]})
    scenario = deploysim.scenario_from_dict(data)
    world = dataclasses.replace(world_for_seed(scenario, seed=0, months=0.01),
                                faults=(Fault("az_outage", 0, 600.0, 3600.0, az=0, failover_s=300.0),))
    model = MetricModel(scenario, build_fleet(scenario), world, [])
    m = model.expected(np.arange(6), 0, 70)
    rate = m.errors / m.requests
    np.testing.assert_allclose(rate[:10], 0.0)
    np.testing.assert_allclose(rate[10:15], 1 / 3)  # failover: the AZ's share fails
    np.testing.assert_allclose(rate[15:60], 0.2)  # after: the others are over capacity
    np.testing.assert_allclose(rate[60:], 0.0)
    np.testing.assert_allclose(m.cpu_pct["maximum"][20], 100.0)
    np.testing.assert_allclose(m.requests[20], 6000.0)


def test_replacing_too_many_hosts_at_once_sheds_load_while_the_batch_deploys(tiny):
    """Minimum healthy share: with capacity 1,200 rpm and 600 rpm per host, replacing 9 of 10 hosts
    at once leaves one host for 5,400 extra requests a minute; batches of a third leave enough."""
    def failed(max_share):
        data = patched(tiny_scenario_dict(), "fleet.host_capacity_rpm", 1200)
        data = patched(data, "policy.pipelines.code.stages.0.batching", {"max_share": max_share, "duration": "5m"})
        scenario = deploysim.scenario_from_dict(data)
        result = with_changes(scenario, [good_change()])
        return float(result.uptime["errors"].sum())

    # All at once: the one-box batch (1 host) is fine; the 9-host batch leaves 1 host serving 6,000
    # rpm for 5 minutes, which sheds 4,800 a minute: 24,000 failed requests.
    assert failed(1.0) == pytest.approx(24000, rel=0.02)
    # Thirds (3 hosts of 10): 7 hosts take 857 rpm each, under capacity: nothing fails.
    assert failed(0.34) == 0.0


def test_changes_taken_while_serving_cost_no_capacity():
    """Feature flags and hot config reloads: hosts keep serving, so even all at once sheds nothing."""
    data = patched(tiny_scenario_dict(), "fleet.host_capacity_rpm", 1200)
    data = patched(data, "policy.pipelines.code.stages.0.batching",
                   {"max_share": 1.0, "duration": "5m", "hosts_keep_serving": True})
    result = with_changes(deploysim.scenario_from_dict(data), [good_change()])
    assert float(result.uptime["errors"].sum()) == 0.0
