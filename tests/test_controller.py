"""The rollout controller alone: the decisions a policy makes from observations, with no simulator."""

from __future__ import annotations

import numpy as np

import deploysim
from deploysim.fleet import build_fleet
from deploysim.policy.blockers import Calendar, RegionCalendar
from deploysim.policy.controller import (
    BakeWait, Complete, DeployBatch, EnterStage, Observation, RollBack, RolloutController, WaitBlocker,
)
from deploysim.policy.plan import build_plan

from conftest import patched, tiny_scenario_dict


def controller(data: dict) -> RolloutController:
    scenario = deploysim.scenario_from_dict(data)
    layout = build_fleet(scenario)
    policy = scenario.policy.pipelines["code"]
    regions = [RegionCalendar(r.timezone, frozenset(r.holidays)) for r in scenario.fleet.regions]
    return RolloutController(build_plan("code", policy, layout), Calendar(policy.blockers, scenario.start), regions)


def test_a_good_rollout_walks_one_box_bake_wave_bake_complete():
    data = patched(tiny_scenario_dict(), "policy.pipelines.code.stages.0.one_box.bake",
                   {"duration": "10m", "min_requests": {"All": 1000}})
    ctrl = controller(data)
    assert ctrl.decide(0.0) == EnterStage(0)
    box = ctrl.decide(0.0)
    assert isinstance(box, DeployBatch) and box.hosts.tolist() == [0] and box.duration_s == 300.0
    bake = ctrl.decide(300.0)
    assert isinstance(bake, BakeWait) and bake.min_until_s == 900.0 and bake.min_requests == {"All": 1000}
    # Duration over but too few requests seen: keep baking.
    assert isinstance(ctrl.decide(900.0, Observation(requests_seen={"All": 999})), BakeWait)
    wave = ctrl.decide(960.0, Observation(requests_seen={"All": 1000}))
    assert isinstance(wave, DeployBatch) and wave.hosts.tolist() == list(range(1, 10))
    assert isinstance(ctrl.decide(1260.0), BakeWait)
    assert isinstance(ctrl.decide(1860.0), Complete)


def test_an_alarm_during_a_bake_rolls_back():
    ctrl = controller(tiny_scenario_dict())
    ctrl.decide(0.0)
    ctrl.decide(0.0)
    ctrl.decide(300.0)
    decision = ctrl.decide(480.0, Observation(alarm="fault_rate@one-box"))
    assert decision == RollBack(0, 0, "alarm fault_rate@one-box")


def test_a_closed_time_window_makes_the_stage_wait_for_its_opening():
    data = patched(tiny_scenario_dict(), "policy.pipelines.code.blockers.time_windows",
                   [{"days": ["Mon", "Tue", "Wed", "Thu", "Fri"], "start_hour": 9, "end_hour": 17}])
    ctrl = controller(data)
    ctrl.decide(0.0)
    assert ctrl.decide(3600.0) == WaitBlocker(9 * 3600.0, "time_window")
    assert isinstance(ctrl.decide(9 * 3600.0), DeployBatch)


def test_an_active_incident_blocks_until_rechecked():
    data = patched(tiny_scenario_dict(), "policy.pipelines.code.blockers.incidents", True)
    ctrl = controller(data)
    ctrl.decide(0.0)
    assert ctrl.decide(0.0, Observation(incident=True)) == WaitBlocker(300.0, "incident")
    assert isinstance(ctrl.decide(300.0, Observation(incident=False)), DeployBatch)


def test_batches_never_replace_more_than_the_max_share_and_spread_over_azs():
    data = patched(tiny_scenario_dict(), "fleet.regions.0", {"name": "r1", "azs": 3, "cells_per_az": 1, "hosts_per_cell": 4})
    data = patched(data, "policy.pipelines.code.stages.0.batching", {"max_share": 0.34, "duration": "5m"})
    scenario = deploysim.scenario_from_dict(data)
    layout = build_fleet(scenario)
    plan = build_plan("code", scenario.policy.pipelines["code"], layout)
    wave = plan.stages[0].steps[1]
    assert wave.hosts.size == 11
    for batch in wave.batches:
        assert batch.size <= int(0.34 * 11)
        # No AZ gives more than its share of a batch.
        assert np.bincount(layout.host_az[batch], minlength=3).max() - np.bincount(layout.host_az[batch], minlength=3).min() <= 1
