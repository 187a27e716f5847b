"""Replay one incident: a scripted change (and fault) under different policies, from YAML and from Python.

The tiny scenario (tests/conftest.py): one region, 10 hosts, 6000 requests/min, one-box (600/min)
watched by error rate > 50% 3 of 3; the batch takes 5 min, so a change entering at 1 h first
serves at 3900 s, the alarm fires after three bad periods (TTD 180 s) and the 10-minute automatic
rollback restores at 4680 s (TTR 780 s): 600/min x 13 min = 7,800 failed requests.
"""

from __future__ import annotations

import pytest
from conftest import tiny_scenario_dict

import deploysim

SCRIPT = {"changes": [{"pipeline": "code", "at": "1h", "defect": "all-fail"}]}


def replayed(data=None, **policy_patch):
    data = data or tiny_scenario_dict()
    data["replay"] = SCRIPT
    data["policy"]["pipelines"]["code"]["rollback"].update(policy_patch)
    return deploysim.scenario_from_dict(data)


def test_a_yaml_replay_runs_exactly_the_scripted_change_by_hand_worked_figures():
    result = deploysim.simulate(replayed(), months=0.05)
    assert len(result.changes) == 1
    row = result.changes.iloc[0]
    assert (row.arrival_s, row.first_bad_s, row.ttd_s, row.ttr_s) == (3600.0, 3900.0, 180.0, 780.0)
    assert row.failed_requests == pytest.approx(600 * 13)
    assert row.hosts_reached == 1


def test_the_same_incident_under_two_policies():
    """Automatic rollback off: the alarm pages people, who revert in the scripted 1 h (TTR 180 s + 1 h)."""
    data = tiny_scenario_dict()
    data["replay"] = {"changes": [{"pipeline": "code", "at": "1h", "defect": "all-fail", "mitigation": "1h"}]}
    auto = deploysim.simulate(deploysim.scenario_from_dict(data), months=0.05).changes.iloc[0]
    data["policy"]["pipelines"]["code"]["rollback"]["automatic"] = False
    manual = deploysim.simulate(deploysim.scenario_from_dict(data), months=0.05).changes.iloc[0]
    assert (auto.ttr_s, manual.ttr_s) == (780.0, 180.0 + 3600.0)
    assert manual.failed_requests == pytest.approx(600 * 63)


def test_python_replay_equals_yaml_replay_and_times_can_be_dates():
    sc = deploysim.scenario_from_dict(tiny_scenario_dict())
    world = deploysim.replay_world(sc, months=0.05, changes=[
        {"pipeline": "code", "at": "2026-01-05T01:00:00Z", "defect": "all-fail"}])
    assert isinstance(world, deploysim.World) and isinstance(world.changes[0], deploysim.Change)
    from_python = deploysim.simulate(sc, months=0.05, world=world).changes
    from_yaml = deploysim.simulate(replayed(), months=0.05).changes
    assert from_python.equals(from_yaml)


def test_a_scripted_az_outage_blocks_and_fails_its_share():
    data = tiny_scenario_dict()
    data["replay"] = {"changes": [], "faults": [
        {"kind": "az_outage", "region": "r1", "az": 1, "start": "2h", "duration": "30m", "failover": "5m"}]}
    result = deploysim.simulate(deploysim.scenario_from_dict(data), months=0.05)
    (fault,) = result.records.faults
    assert (fault.kind, fault.start_s, fault.end_s, fault.failover_s) == ("az_outage", 7200.0, 9000.0, 300.0)
    assert len(result.changes) == 0


def test_a_bad_script_is_named_by_field():
    data = tiny_scenario_dict()
    data["replay"] = {"changes": [{"pipeline": "code", "at": "1h", "defect": "nope"}],
                      "faults": [{"kind": "az_outage", "region": "r1", "az": 2, "start": 0, "duration": "1h"}]}
    with pytest.raises(deploysim.ScenarioError) as error:
        deploysim.scenario_from_dict(data)
    assert "replay.changes[0].defect: unknown defect 'nope'" in str(error.value)
    assert "replay.faults[0].az: region 'r1' has 1 AZ(s)" in str(error.value)
