"""Region-wide events and correlated AZ outages: what they fail, how they are drawn, and how the
budget breakdown names them."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from conftest import patched, tiny_scenario_dict

import deploysim
from deploysim.figures import replication_row
from deploysim.fleet import build_fleet
from deploysim.metrics import MetricModel
from deploysim.world import Fault, world_for_seed


def _three_azs(**paths) -> dict:
    """The tiny scenario over 3 AZs of 10 hosts: 200 requests a minute each, capacity 300."""
    data = patched(tiny_scenario_dict(), "fleet.regions.0.azs", 3)
    data = patched(data, "fleet.host_capacity_rpm", 300)
    for path, value in paths.items():
        data = patched(data, path, value)
    return data


def _failed(data: dict, faults: tuple[Fault, ...], periods: int) -> float:
    scenario = deploysim.scenario_from_dict(data)
    layout = build_fleet(scenario)
    world = dataclasses.replace(world_for_seed(scenario, seed=0, months=0.01), changes=(), faults=faults)
    model = MetricModel(scenario, layout, world, [])
    return float(model.expected(layout.hosts_in_region(0), 0, periods).errors.sum())


def test_a_region_event_fails_its_share_whatever_the_headroom():
    """30% of 6,000 requests a minute for 10 minutes: 18,000 failed; no AZ to shift to."""
    event = Fault("region_event", 0, 0.0, 600.0, error_rate=0.3)
    assert _failed(_three_azs(), (event,), 20) == pytest.approx(18_000.0)


def test_a_second_az_down_is_past_what_static_stability_covers():
    """Outage of 30 min with 5 min failover. One AZ: its third fails for 5 min (10,000), then the 20
    hosts left serve 300 a minute each, at capacity: nothing more. Two AZs: two thirds fail for 5 min
    (20,000), then 10 hosts get 600 a minute each and shed 300 each, 3,000 a minute for 25 min (75,000)."""
    one = (Fault("az_outage", 0, 0.0, 1800.0, az=0, failover_s=300.0),)
    two = tuple(Fault("correlated_az_outage", 0, 0.0, 1800.0, az=az, failover_s=300.0) for az in (0, 1))
    assert _failed(_three_azs(), one, 40) == pytest.approx(10_000.0)
    assert _failed(_three_azs(), two, 40) == pytest.approx(95_000.0)


def test_new_fault_kinds_do_not_shift_the_draws_of_the_others():
    """Turning on correlated outages and region events leaves every single-AZ outage (start, length,
    first AZ) where it was: their draws come from their own keyed streams."""
    base = _three_azs(faults={"az_outage": {"rate_per_month": 40}})
    more = _three_azs(faults={"az_outage": {"rate_per_month": 40, "second_az_probability": 1.0},
                                    "region_event": {"rate_per_month": 20}})
    before = world_for_seed(deploysim.scenario_from_dict(base), seed=3, months=1.0).faults
    after = world_for_seed(deploysim.scenario_from_dict(more), seed=3, months=1.0).faults
    first_az = {(f.start_s, f.end_s): f.az for f in before}
    pairs: dict[tuple[float, float], list[int]] = {}
    for f in after:
        if f.kind == "correlated_az_outage":
            pairs.setdefault((f.start_s, f.end_s), []).append(f.az)
    assert len(first_az) > 10 and set(pairs) == set(first_az)
    for span, azs in pairs.items():
        assert azs[0] == first_az[span] and len(set(azs)) == 2  # the same AZ, and another one of its region
    assert sum(f.kind == "region_event" for f in after) > 5


def test_the_budget_breakdown_names_the_fault_kind():
    """A run whose only failed requests are a region event's: its downtime is the region event's."""
    scenario = deploysim.scenario_from_dict(_three_azs())
    world = dataclasses.replace(world_for_seed(scenario, seed=0, months=0.01), changes=(),
                                faults=(Fault("region_event", 0, 0.0, 600.0, error_rate=0.3),))
    result = deploysim.simulate(scenario, seed=0, months=0.01, world=world)
    assert result.records.fault_failed_requests["region_event"] == pytest.approx(18_000.0)
    assert result.records.fault_failed_requests["az_outage"] == 0.0
    row = replication_row(result)
    assert row["downtime_s"] > 0
    assert row["downtime_region_event_s"] == pytest.approx(row["downtime_s"], rel=0.02)
    assert row["downtime_az_outage_s"] == 0.0
    parts = ("alarm_caught", "no_alarm", "baseline", "az_outage", "correlated_az_outage", "region_event",
             "dependency_degradation", "other")
    assert sum(row[f"downtime_{p}_s"] for p in parts) == pytest.approx(row["downtime_s"])
    assert np.isfinite(row["downtime_faults_s"])


def test_replayed_region_event_and_correlated_outage_fail_the_hand_worked_requests():
    """The same two faults as above, scripted in a scenario's `replay:` section: a region event of
    30% for 10 minutes (18,000 failed) and an outage of AZs 1 and 2 for 30 minutes (95,000)."""
    data = _three_azs()
    data["replay"] = {"faults": [
        {"kind": "region_event", "region": "r1", "start": 0, "duration": "10m", "error_rate": 0.3},
        {"kind": "az_outage", "region": "r1", "az": 1, "second_az": 2, "start": 0, "duration": "30m",
         "failover": "5m"}]}
    world = deploysim.replay_world(deploysim.scenario_from_dict(data), months=0.01)
    kinds = sorted((f.kind, f.az) for f in world.faults)
    assert kinds == [("correlated_az_outage", 0), ("correlated_az_outage", 1), ("region_event", -1)]
    event = tuple(f for f in world.faults if f.kind == "region_event")
    outage = tuple(f for f in world.faults if f.kind != "region_event")
    assert _failed(data, event, 20) == pytest.approx(18_000.0)
    assert _failed(data, outage, 40) == pytest.approx(95_000.0)


def test_a_second_az_must_be_another_az_of_the_region():
    data = _three_azs()
    data["replay"] = {"faults": [{"kind": "az_outage", "region": "r1", "az": 1, "second_az": 4, "start": 0,
                                  "duration": "30m"}]}
    with pytest.raises(deploysim.ScenarioError, match=r"replay.faults\[0\].second_az: region 'r1' has 3 AZ"):
        deploysim.scenario_from_dict(data)
