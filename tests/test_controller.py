"""The rollout controller alone: the decisions a policy makes from observations, with no simulator."""

from __future__ import annotations

import numpy as np
from conftest import patched, tiny_scenario_dict

import deploysim
from deploysim.fleet import build_fleet
from deploysim.policy import (
    BakeWait,
    BlockReason,
    Complete,
    DeployBatch,
    EnterStage,
    Observation,
    RollBack,
    RollbackCause,
    RollbackScope,
    RolloutController,
    WaitBlocker,
    build_plan,
    new_controller,
)


def controller(data: dict) -> RolloutController:
    scenario = deploysim.scenario_from_dict(data)
    layout = build_fleet(scenario)
    return new_controller(build_plan("code", scenario.policy.pipelines["code"], layout), scenario, scenario.start)


def test_a_good_rollout_walks_one_box_bake_wave_bake_complete():
    data = patched(tiny_scenario_dict(), "policy.pipelines.code.stages.0.one_box.bake",
                   {"duration": "10m", "min_requests": {"All": 1000}})
    ctrl = controller(data)
    assert ctrl.decide(0.0) == EnterStage(0)
    box = ctrl.decide(0.0)
    assert box == DeployBatch(0, 0, 0, (0,), 300.0)
    bake = ctrl.decide(300.0)
    assert isinstance(bake, BakeWait) and bake.min_until_s == 900.0 and bake.min_requests == (("All", 1000.0),)
    # Duration over but too few requests seen: keep baking.
    assert isinstance(ctrl.decide(900.0, Observation(requests_seen={"All": 999})), BakeWait)
    wave = ctrl.decide(960.0, Observation(requests_seen={"All": 1000}))
    assert isinstance(wave, DeployBatch) and wave.hosts == tuple(range(1, 10))
    assert isinstance(ctrl.decide(1260.0), BakeWait)
    assert isinstance(ctrl.decide(1860.0), Complete)


def test_an_alarm_during_a_bake_rolls_back():
    ctrl = controller(tiny_scenario_dict())
    ctrl.decide(0.0)
    ctrl.decide(0.0)
    ctrl.decide(300.0)
    decision = ctrl.decide(480.0, Observation(alarm="fault_rate@one-box"))
    assert decision == RollBack(0, 0, RollbackCause.ALARM, RollbackScope.EVERYWHERE, None, True, 600.0,
                                alarm="fault_rate@one-box")
    assert decision.reason == "alarm fault_rate@one-box"


def test_the_controller_decides_a_rollbacks_scope_speed_and_who_carries_it_out():
    data = patched(tiny_scenario_dict(), "policy.pipelines.code.rollback",
                   {"automatic": False, "scope": "stage", "duration": "3m"})
    ctrl = controller(data)
    for t in (0.0, 0.0, 300.0):
        ctrl.decide(t)
    decision = ctrl.decide(480.0, Observation(alarm="fault_rate@one-box"))
    assert (decision.scope, decision.automatic, decision.duration_s) == (RollbackScope.STAGE, False, 180.0)
    assert decision.hosts == tuple(range(10))  # every host of the stage
    # A person asking for a rollback is carried out at automatic speed, with the policy's scope.
    operator = controller(data)
    operator.decide(0.0)
    asked = operator.operator_rollback("alice: bad graphs")
    assert asked.cause is RollbackCause.OPERATOR and asked.automatic and asked.hosts == tuple(range(10))
    assert asked.reason == "operator asked: alice: bad graphs"


def test_decisions_are_values_that_compare_and_hash():
    first, second = controller(tiny_scenario_dict()), controller(tiny_scenario_dict())
    decisions = [first.decide(t) for t in (0.0, 0.0, 300.0)]
    assert decisions == [second.decide(t) for t in (0.0, 0.0, 300.0)]
    assert len({*decisions, *decisions}) == 3


def test_a_closed_time_window_makes_the_stage_wait_for_its_opening():
    data = patched(tiny_scenario_dict(), "policy.pipelines.code.blockers.time_windows",
                   [{"days": ["Mon", "Tue", "Wed", "Thu", "Fri"], "start_hour": 9, "end_hour": 17}])
    ctrl = controller(data)
    ctrl.decide(0.0)
    assert ctrl.decide(3600.0) == WaitBlocker(0, 9 * 3600.0, BlockReason.TIME_WINDOW)
    assert isinstance(ctrl.decide(9 * 3600.0), DeployBatch)


def test_an_active_incident_blocks_until_rechecked():
    data = patched(tiny_scenario_dict(), "policy.pipelines.code.blockers.incidents", True)
    ctrl = controller(data)
    ctrl.decide(0.0)
    assert ctrl.decide(0.0, Observation(incident=True)) == WaitBlocker(0, 300.0, BlockReason.INCIDENT)
    assert isinstance(ctrl.decide(300.0, Observation(incident=False)), DeployBatch)


def test_batches_never_replace_more_than_the_max_share_and_spread_over_azs():
    data = patched(
        tiny_scenario_dict(), "fleet.regions.0", {"name": "r1", "azs": 3, "cells_per_az": 1, "hosts_per_cell": 4}
    )
    data = patched(data, "policy.pipelines.code.stages.0.batching", {"max_share": 0.34, "duration": "5m"})
    scenario = deploysim.scenario_from_dict(data)
    layout = build_fleet(scenario)
    plan = build_plan("code", scenario.policy.pipelines["code"], layout)
    wave = plan.stages[0].steps[1]
    assert wave.hosts.size == 11
    for batch in wave.batches:
        assert batch.size <= int(0.34 * 11)
        # No AZ gives more than its share of a batch.
        assert (
            np.bincount(layout.host_az[batch], minlength=3).max()
            - np.bincount(layout.host_az[batch], minlength=3).min()
            <= 1
        )


def _business_hours(data: dict, check: str = "every_step") -> dict:
    data = patched(data, "policy.pipelines.code.blockers.time_windows",
                   [{"days": ["Mon", "Tue", "Wed", "Thu", "Fri"], "start_hour": 9, "end_hour": 17}])
    return patched(data, "policy.pipelines.code.blockers.check", check)


def test_a_wave_whose_one_box_bake_ends_after_hours_waits_for_the_next_opening_watching_the_one_box():
    """Monday 16:50 the one-box starts (5 min batch, 10 min bake): its bake ends at 17:05, after the
    09-17 window, so the wave waits until Tuesday 09:00 while the one-box's alarms stay watched."""
    ctrl = controller(_business_hours(tiny_scenario_dict()))
    t = 16 * 3600.0 + 50 * 60
    assert ctrl.decide(t) == EnterStage(0)
    assert isinstance(ctrl.decide(t), DeployBatch)
    assert isinstance(ctrl.decide(t + 300), BakeWait)
    wait = ctrl.decide(t + 900)
    assert wait == WaitBlocker(0, (24 + 9) * 3600.0, BlockReason.TIME_WINDOW, watch_step=0)
    # The opening comes: the wave starts.
    wave = ctrl.decide((24 + 9) * 3600.0)
    assert isinstance(wave, DeployBatch) and wave.step == 1 and wave.hosts == tuple(range(1, 10))


def test_with_blockers_checked_at_stage_start_only_the_wave_goes_on_after_hours():
    ctrl = controller(_business_hours(tiny_scenario_dict(), "stage_start"))
    t = 16 * 3600.0 + 50 * 60
    for now in (t, t, t + 300):
        ctrl.decide(now)
    wave = ctrl.decide(t + 900)
    assert isinstance(wave, DeployBatch) and wave.step == 1


def test_an_alarm_while_a_wave_waits_on_a_blocker_rolls_back():
    ctrl = controller(_business_hours(tiny_scenario_dict()))
    t = 16 * 3600.0 + 50 * 60
    for now in (t, t, t + 300, t + 900):
        ctrl.decide(now)
    decision = ctrl.decide(20 * 3600.0, Observation(alarm="fault_rate@one-box"))
    assert isinstance(decision, RollBack) and decision.alarm == "fault_rate@one-box"


def test_an_incident_at_the_end_of_the_one_box_bake_holds_the_wave():
    data = patched(tiny_scenario_dict(), "policy.pipelines.code.blockers.incidents", True)
    ctrl = controller(data)
    for now in (0.0, 0.0, 300.0):
        ctrl.decide(now)
    assert ctrl.decide(900.0, Observation(incident=True)) == WaitBlocker(0, 1200.0, BlockReason.INCIDENT, 0)
    wave = ctrl.decide(1200.0, Observation(incident=False))
    assert isinstance(wave, DeployBatch) and wave.step == 1
    # The state survives a snapshot: a resumed controller waiting on the wave's blocker decides the same.
    again = controller(data)
    for now in (0.0, 0.0, 300.0):
        again.decide(now)
    again.decide(900.0, Observation(incident=True))
    resumed = controller(data)
    resumed.restore(again.snapshot())
    assert resumed.decide(1200.0) == wave
