"""The engine returns plain records; results are built from them alone; the simulator carries out
rollbacks exactly as the shared controller decides them."""

from __future__ import annotations

import gc
import pickle
import types

import numpy as np
import pytest
import simpy
from conftest import SCENARIOS, bad_change, patched, tiny_scenario_dict, with_changes

import deploysim
from deploysim.alarm_watch import AlarmWatch
from deploysim.engine import Simulation
from deploysim.exposure import ExposureLog
from deploysim.metrics import MetricModel
from deploysim.records import SimulationRecords
from deploysim.results import SimulationResult

FRAMES = ("timeline", "changes", "uptime", "monthly")
# What runs a simulation, and must not be reachable from its result.
RUNNING_THINGS = (Simulation, simpy.Environment, MetricModel, AlarmWatch, ExposureLog, np.random.Generator)


@pytest.fixture(scope="module")
def run():
    scenario = deploysim.load_scenario(SCENARIOS / "startup-fast.yaml")
    records = Simulation(scenario, seed=3, months=0.25).run()
    return scenario, records


def _reachable(root) -> list:
    """Every object reachable from `root` through references, not following into classes, modules
    or functions (which reach everything)."""
    seen, stack, out = set(), [root], []
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType)):
            continue
        seen.add(id(obj))
        out.append(obj)
        stack.extend(gc.get_referents(obj))
    return out


def test_run_returns_records_and_simulate_builds_its_result_from_them(run):
    scenario, records = run
    assert isinstance(records, SimulationRecords)
    result = deploysim.simulate(scenario, seed=3, months=0.25)
    assert isinstance(result.records, SimulationRecords)
    assert result.changes.equals(SimulationResult(records).changes)
    assert result.uptime.equals(SimulationResult(records).uptime)


def test_a_result_reaches_no_engine_model_or_random_generator(run):
    """Everything a result holds (its frames built) is plain data: no engine, metric model, alarm
    watcher, exposure log or random generator is reachable from it."""
    _, records = run
    result = SimulationResult(records)
    result.summary()
    found = [type(o).__name__ for o in _reachable(result) if isinstance(o, RUNNING_THINGS)]
    assert found == []


def test_a_result_pickles_and_unpickles_to_the_same_figures(run):
    _, records = run
    result = SimulationResult(records, sla_target_pct=99.99)
    again = pickle.loads(pickle.dumps(result))
    assert str(again.summary()) == str(result.summary())  # str: NaN != NaN
    for name in FRAMES:
        assert getattr(again, name).equals(getattr(result, name)), name


def test_building_twice_from_the_same_records_gives_identical_frames(run):
    """A result draws no random numbers: the same records give the same frames, whatever the global
    random state, and in any order of asking."""
    _, records = run
    first = SimulationResult(records)
    np.random.seed(12345)
    second = SimulationResult(records)
    for name in reversed(FRAMES):
        assert getattr(second, name).equals(getattr(first, name)), name
    assert str(second.summary()) == str(first.summary())


def test_a_manual_rollback_waits_for_people_at_the_worlds_mitigation_speed():
    """Automatic rollback off: the alarm (at 480 s, TTD 180 s) pages people, who revert after the
    change's human mitigation time (1 h in `bad_change`), not the policy's rollback duration."""
    data = patched(tiny_scenario_dict(), "policy.pipelines.code.rollback", {"automatic": False, "duration": "10m"})
    scenario = deploysim.scenario_from_dict(data)
    result = with_changes(scenario, [bad_change(scenario)])
    row = result.changes.iloc[0]
    assert row["outcome"] == "rolled_back"
    assert row["ttd_s"] == 180.0
    assert row["ttr_s"] == 180.0 + 3600.0
    start = result.timeline[result.timeline["event"] == "rollback_start"]
    assert start["automatic"].tolist() == [False]


def _two_stage_data(scope: str) -> dict:
    """Regions r1 and r2 of 10 hosts: stage prod-1 deploys r1 unwatched, stage prod-2 starts with a
    watched one-box in r2, whose alarm rolls the change back with the given scope."""
    data = tiny_scenario_dict()
    data["fleet"]["regions"].append(
        {"name": "r2", "timezone": "UTC", "azs": 1, "cells_per_az": 1, "hosts_per_cell": 10})
    data["policy"]["pipelines"]["code"]["rollback"] = {"automatic": True, "scope": scope, "duration": "10m"}
    data["policy"]["pipelines"]["code"]["stages"] = [
        {"name": "prod-1", "kind": "production", "regions": ["r1"], "batching": {"max_share": 1.0, "duration": "5m"},
         "waves": [{"unit": "region", "count": "rest", "bake": "10m"}]},
        {"name": "prod-2", "kind": "production", "regions": ["r2"], "one_box": {"hosts": 1, "bake": "10m"},
         "batching": {"max_share": 1.0, "duration": "5m"},
         "waves": [{"unit": "region", "count": "rest", "bake": "10m"}]},
    ]
    return data


@pytest.mark.parametrize("scope, r1_reverted", [("everywhere", True), ("stage", False)])
def test_a_rollback_reverts_the_hosts_the_controller_chose(scope, r1_reverted):
    """scope `stage`: only the alarming stage's hosts return to the good version; `everywhere`: all."""
    scenario = deploysim.scenario_from_dict(_two_stage_data(scope))
    result = with_changes(scenario, [bad_change(scenario)], months=0.002)
    records = result.records
    assert result.changes.iloc[0]["outcome"] == "rolled_back"
    final = records.host_versions("code")
    r1, r2 = records.layout.hosts_in_region(0), records.layout.hosts_in_region(1)
    assert (final[r2] == 0).all()
    assert bool((final[r1] == 0).all()) is r1_reverted
    still_running = records.exposures.host[records.exposures.off_s == np.inf]
    assert sorted(still_running.tolist()) == ([] if r1_reverted else r1.tolist())
