"""The journal, the lock and the controller's snapshot: the pieces that make a rollout resumable."""

from __future__ import annotations

import sqlite3

import pytest
from conftest import tiny_scenario_dict

import deploysim
from deploysim.executor.journal import Journal
from deploysim.executor.lock import StateDirLock, StateDirLocked, holder_pid
from deploysim.fleet import build_fleet, host_names
from deploysim.policy.blockers import Calendar, RegionCalendar
from deploysim.policy.controller import Observation, RolloutController
from deploysim.policy.plan import build_plan


def test_intents_get_outcomes_and_the_journal_knows_each_targets_version(tmp_path):
    journal = Journal.in_dir(tmp_path)
    journal.set_targets([("h1", 0, "v1"), ("h2", 1, "v1")])
    first = journal.intend("deploy", "h1", "v2")
    second = journal.intend("deploy", "h2", "v2")
    assert [a.seq for a in journal.pending_intents()] == [first, second]
    journal.outcome(first, True, "v2", "ok", 1)
    assert [a.seq for a in journal.pending_intents()] == [second]
    journal.outcome(second, False, None, "timed out", 3)
    assert journal.pending_intents() == []
    assert journal.current_versions() == {"h1": "v2", "h2": None}
    assert journal.deployed_targets() == ["h1", "h2"]
    rollback = journal.intend("rollback", "h1", "v1")
    journal.outcome(rollback, True, "v1", "ok")
    assert journal.current_versions()["h1"] == "v1"
    assert [(a.kind, a.phase) for a in journal.actions()][-2:] == [("rollback", "intent"), ("rollback", "done")]


def test_the_journal_is_durable_and_readable_while_it_is_written(tmp_path):
    journal = Journal.in_dir(tmp_path)
    with sqlite3.connect(tmp_path / "journal.sqlite") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert journal._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    journal.set_meta({"version": "v2", "pipeline": "code"})
    journal.event("started")
    reader = Journal.in_dir(tmp_path, readonly=True)
    journal.intend("deploy", "h1", "v2")
    assert reader.meta() == {"version": "v2", "pipeline": "code"}
    assert len(reader.actions()) == 1 and reader.events()[0][2] == "started"
    with pytest.raises(sqlite3.OperationalError):
        reader._db.execute("INSERT INTO events (time_s, kind, detail) VALUES (0, 'x', '')")


def test_one_executor_per_state_dir(tmp_path):
    assert holder_pid(tmp_path) is None
    with StateDirLock(tmp_path):
        assert holder_pid(tmp_path) is not None
        with pytest.raises(StateDirLocked, match="another executor .* is running on"):
            StateDirLock(tmp_path).acquire()
    assert holder_pid(tmp_path) is None
    StateDirLock(tmp_path).acquire().release()


def test_a_restored_controller_decides_exactly_as_the_original_would():
    scenario = deploysim.scenario_from_dict(tiny_scenario_dict())
    layout = build_fleet(scenario)
    policy = scenario.policy.pipelines["code"]
    regions = [RegionCalendar(r.timezone, frozenset(r.holidays)) for r in scenario.fleet.regions]

    def new():
        return RolloutController(build_plan("code", policy, layout), Calendar(policy.blockers, scenario.start), regions)

    original = new()
    for t in (0.0, 0.0, 300.0):
        original.decide(t)
    copy = new()
    copy.restore(original.snapshot())
    assert copy.snapshot() == original.snapshot() == {"stage": 0, "step": 0, "batch": 1, "phase": "baking",
                                                      "bake_since_s": 300.0, "approved_stage": -1,
                                                      "approval_until_s": 0.0, "judgements": 0,
                                                      "judge_pauses": 0, "baseline_up": False}
    # A journal written before approvals existed holds snapshots without their keys: they restore too.
    older = new()
    older.restore({k: v for k, v in original.snapshot().items() if not k.startswith("approv")})
    for t in (900.0, 1200.0, 1800.0):
        assert repr(copy.decide(t, Observation())) == repr(original.decide(t, Observation())) == \
            repr(older.decide(t, Observation()))
        assert copy.snapshot() == original.snapshot() == older.snapshot()
    assert host_names(layout)[:2] == ("r1-az1-c1-h1", "r1-az1-c1-h2")
