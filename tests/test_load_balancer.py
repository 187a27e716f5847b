"""Health checks: a failing host leaves rotation after interval x unhealthy threshold (ALB defaults:
30 s x 2 = 60 s), the region's other hosts take its requests up to their capacity, and it comes back
interval x healthy threshold (30 s x 5 = 150 s) after it is healthy again."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import bad_change, patched, tiny_scenario_dict

import deploysim
from deploysim.exposure import ExposureLog
from deploysim.fleet import build_fleet
from deploysim.metrics import MetricModel
from deploysim.world import world_for_seed


def _model(defect: dict, **paths):
    data = patched(tiny_scenario_dict(), "changes.code.defects", [defect])
    for path, value in paths.items():
        data = patched(data, path.replace("__", "."), value)
    scenario = deploysim.scenario_from_dict(data)
    layout = build_fleet(scenario)
    world = world_for_seed(scenario, seed=0, months=0.01)
    return scenario, layout, MetricModel(scenario, layout, world, [bad_change(scenario)])


def _failed(model, layout, log, periods):
    return float(model.expected(layout.hosts_in_region(0), 0, periods, log).errors.sum())


@pytest.mark.parametrize("health_checks, expected", [(True, 5_000.0), (False, 750_000.0)])
def test_a_crash_looping_one_box_costs_a_minute_of_its_traffic_not_its_bake(health_checks, expected):
    """The issue's case: a one-box with 5% of 100,000 requests a minute crash-loops for 150 minutes.
    Without health checks it fails all its 5,000 a minute (750,000); with them only until it is out
    of rotation, 60 s later (5,000), and the 9 others take its share well within their capacity."""
    scenario, layout, model = _model(
        {"name": "crash", "crash": True},
        traffic__requests_per_min=100_000, fleet__host_capacity_rpm=1_000_000,
        policy__pipelines__code__stages__0__one_box={"hosts": 1, "traffic_share": 0.05, "bake": "10m"},
        load_balancer={"health_checks": health_checks})
    log = ExposureLog()
    log.open(0, np.array([0]), 0.0)
    assert _failed(model, layout, log, 150) == pytest.approx(expected)


def test_the_others_absorb_a_failed_host_only_up_to_their_capacity():
    """10 hosts of 600 rpm, capacity 650 rpm. Host 0 crashes at 0: minute 0 it fails its 600; then
    the 9 others get 666.7 rpm each and shed 16.7 each, 150 a minute: 600 + 9 x 150 = 1,950 in 10 minutes."""
    scenario, layout, model = _model({"name": "crash", "crash": True}, fleet__host_capacity_rpm=650)
    log = ExposureLog()
    log.open(0, np.array([0]), 0.0)
    assert _failed(model, layout, log, 10) == pytest.approx(1_950.0)


def test_a_host_comes_back_after_the_healthy_threshold():
    """Reverted at 10 min, host 0 passes 5 checks 30 s apart: back in rotation at 12.5 min, so it
    serves nothing in minutes 10 and 11, half of minute 12 and all of minute 13. (Per period, the
    region's hosts share what the hosts out of rotation leave: in minute 12 host 0 is out half the
    time, 5% of the region, so each host serves 1/0.95 of its share while in: 600 x 0.5 / 0.95.)"""
    scenario, layout, model = _model({"name": "crash", "crash": True})
    log = ExposureLog()
    log.open(0, np.array([0]), 0.0)
    log.close(0, np.array([0]), 600.0)
    served = model.expected(np.array([0]), 0, 14, log).requests
    np.testing.assert_allclose(served[[0, 5, 10, 11, 12, 13]], [600, 0, 0, 0, 300 / 0.95, 600])
    # The hosts left in rotation serve the region's 6,000 a minute between them.
    np.testing.assert_allclose(model.expected(np.arange(1, 10), 5, 6, log).requests, [6_000.0])


def test_a_memory_leak_leaves_rotation_when_it_crashes_the_host():
    """Memory grows 25 points an hour from 50%: the host crashes at 2 h, fails requests for 60 s and
    is then out of rotation: 600 failed requests over 3 hours."""
    scenario, layout, model = _model({"name": "leak", "memory_growth_pct_per_h": 25.0})
    log = ExposureLog()
    log.open(0, np.array([0]), 0.0)
    assert _failed(model, layout, log, 180) == pytest.approx(600.0, rel=0.02)
