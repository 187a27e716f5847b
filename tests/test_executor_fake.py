"""The executor's seams and its one loop, in memory: `FakeAdapter`, `FakeMetricSource` and
`StepClock` (shipped in the package) behave as documented, and the executor and `--plan` carry out
the controller's decisions through `deploysim.policy.drive`, journaling exactly what it decided."""

from __future__ import annotations

import itertools
import re
import sys
import threading
import time

import numpy as np
import pytest
import yaml
from conftest import REPO
from executor_support import CtrlCAt, fast_scenario_dict, manual_rollback

import deploysim
import deploysim.executor.driver as driver_module
import deploysim.executor.plan_text as plan_text
from deploysim.executor import (
    ActionResult,
    Executor,
    FakeAdapter,
    FakeMetricSource,
    Journal,
    RealClock,
    StepClock,
    Target,
    load_rollout,
)
from deploysim.executor.command_adapter import CommandAdapter
from deploysim.executor.inventory import AdapterSpec
from deploysim.executor.recovery import decision_from_row
from deploysim.fleet import build_fleet, host_names
from deploysim.policy.decisions import (
    BakeWait,
    Complete,
    DeployBatch,
    EnterStage,
    Fail,
    RollBack,
    RollbackCause,
    RollbackScope,
)
from deploysim.scenario.schema import MetricAlarm

START_S = 1_780_000_000.0  # a Unix time; the fast scenario has no time windows


def target(name: str = "t1", host: int = 0) -> Target:
    return Target(host=host, name=name, region="r1", az="r1-az1", cell="r1-az1-c1")


def fake_rollout(tmp_path, scenario: dict, version: str, **adapter_options):
    """A rollout of `scenario` whose targets live in a FakeAdapter on a StepClock."""
    names = list(host_names(build_fleet(deploysim.scenario_from_dict(scenario))))
    inventory = {"adapter": {"kind": "command", "deploy": ["true"], "current_version": ["true"], "retries": 0,
                             "backoff": "1s", **adapter_options},
                 "metrics": {"kind": "command", "command": ["true"]},
                 "targets": {name: {} for name in names}}
    rollout = load_rollout(yaml.safe_dump(scenario), "scenario", yaml.safe_dump(inventory), "inventory", tmp_path,
                           version, None)
    clock = StepClock(START_S)
    adapter = FakeAdapter(dict.fromkeys(names, "v1"), clock=clock)
    source = FakeMetricSource(adapter, {"v2-bad": {"error_rate": 1.0}})
    return rollout, clock, adapter, source


def recording(executor: Executor) -> list:
    """Every decision the executor's controller takes, in order (operator rollbacks included)."""
    decided = []
    ctrl = executor.ctrl
    decide, operator_rollback = ctrl.decide, ctrl.operator_rollback

    def recorded(method):
        def call(*args, **kwargs):
            decision = method(*args, **kwargs)
            decided.append(decision)
            return decision
        return call

    ctrl.decide = recorded(decide)
    ctrl.operator_rollback = recorded(operator_rollback)
    return decided


def journaled(journal: Journal, rollout) -> list:
    return [decision_from_row(row, rollout) for row in journal.decisions()]


# ------------------------------------------------------------------ the clocks


def test_a_step_clock_stands_still_until_slept_on_and_a_sleep_moves_it_at_once():
    clock = StepClock(100.0)
    assert clock.now() == clock.now() == 100.0
    began = time.monotonic()
    assert clock.sleep(3600.0) is False
    assert clock.now() == 3700.0 and time.monotonic() - began < 1.0
    clock.sleep(-5.0)  # time never runs backwards
    assert clock.now() == 3700.0


def test_a_step_clock_does_not_move_once_stop_is_set():
    clock, stop = StepClock(0.0), threading.Event()
    assert clock.sleep(10.0, stop) is False and clock.now() == 10.0
    stop.set()
    assert clock.sleep(10.0, stop) is True and clock.now() == 10.0


def test_the_real_clock_wakes_from_a_long_sleep_as_soon_as_stop_is_set():
    stop = threading.Event()
    threading.Timer(0.1, stop.set).start()
    began = time.monotonic()
    assert RealClock().sleep(30.0, stop) is True
    assert time.monotonic() - began < 5.0


# ------------------------------------------------------------------ the fake adapter and source


def test_the_fake_adapter_keeps_versions_and_fails_or_hangs_only_as_scripted():
    clock = StepClock(0.0)
    adapter = FakeAdapter({"t1": "v1", "t2": "v1"}, clock=clock, action_s=2.0)
    t1, t2 = target("t1"), target("t2", 1)
    assert adapter.deploy(t1, "v2", timeout_s=30).ok and adapter.versions["t1"] == "v2"
    assert clock.now() == 2.0  # a call takes action_s on the clock
    adapter.fail_next("t2")
    failed = adapter.deploy(t2, "v2", timeout_s=30)
    assert not failed.ok and adapter.current_version(t2, timeout_s=1) == "v1"  # nothing changed
    assert adapter.deploy(t2, "v2", timeout_s=30).ok  # only the next call was scripted to fail
    adapter.hang_next("t1")
    before = clock.now()
    hung = adapter.rollback(t1, "v1", timeout_s=30)
    assert not hung.ok and "timed out" in hung.detail and clock.now() - before == 30.0
    assert adapter.versions["t1"] == "v2"
    adapter.unreachable.add("t1")
    assert adapter.current_version(t1, timeout_s=1) is None and not adapter.healthy(t1, timeout_s=1)
    assert ("deploy", "t1", "v2") in adapter.calls and ("rollback", "t1", "v1") in adapter.calls
    assert adapter.preprod("beta", "v2", timeout_s=5) is None  # no tests unless given
    judged = FakeAdapter({}, preprod_passes=lambda stage, version: "bad" not in version)
    assert judged.preprod("beta", "v2", timeout_s=5).ok and not judged.preprod("beta", "v2-bad", timeout_s=5).ok


def test_the_fake_source_reports_each_targets_current_version_and_steady_requests():
    adapter = FakeAdapter({"t1": "v1", "t2": "v2-bad"})
    source = FakeMetricSource(adapter, {"v2-bad": {"error_rate": 1.0, "latency_p99_ms": None}}, requests_per_s=5.0,
                              api_shares={"Create": 0.1})
    t1, t2 = target("t1"), target("t2", 1)
    errors = MetricAlarm(name="e", metric="error_rate", threshold=0.5)
    assert source.datapoints(errors, [t1, t2], 0.0, 180.0, 60.0).tolist() == [0.5, 0.5, 0.5]  # the mean of the scope
    latency = MetricAlarm(name="l", metric="latency_p99_ms", threshold=500)
    assert np.isnan(source.datapoints(latency, [t2], 0.0, 60.0, 60.0)).all()  # None: no datapoint
    assert source.datapoints(latency, [t1, t2], 0.0, 60.0, 60.0).tolist() == [0.0]  # t1's default
    assert source.requests([t1, t2], 0.0, 60.0) == 600.0 and source.requests([t1, t2], 0.0, 60.0, "Create") == 60.0


def test_the_command_adapter_tells_its_spawn_listener_every_command_it_starts():
    adapter = CommandAdapter(AdapterSpec.model_validate({
        "kind": "command", "deploy": [sys.executable, "-c", "pass"], "current_version": ["echo", "v1"],
        "preprod": [sys.executable, "-c", "pass"], "timeout": "5s", "retries": 0}))
    pids: list[int] = []
    adapter.set_spawn_listener(pids.append)
    assert adapter.deploy(target(), "v2", timeout_s=5).ok
    assert adapter.preprod("beta", "v2", timeout_s=5).ok
    assert len(pids) == 2 and all(pid > 0 for pid in pids)
    adapter.set_spawn_listener(None)
    adapter.deploy(target(), "v2", timeout_s=5)
    assert len(pids) == 2


# ------------------------------------------------------------------ one loop, one brain


def test_the_executor_journals_exactly_the_controllers_decisions_through_drive(tmp_path, monkeypatch):
    """A bad version over the fake fleet: the first wave's alarm rolls it back; every decision the
    controller took is journaled, field for field, and the executor ran them through `drive`."""
    drives = []
    real_drive = driver_module.drive
    monkeypatch.setattr(driver_module, "drive", lambda *a, **k: drives.append(a) or real_drive(*a, **k))
    rollout, clock, adapter, source = fake_rollout(tmp_path, fast_scenario_dict(), "v2-bad")
    journal = Journal.in_dir(tmp_path, clock=clock)
    executor = Executor(rollout, adapter, source, journal, clock=clock)
    decided = recording(executor)
    outcome = executor.start()
    assert outcome.status == "rolled_back" and outcome.exit_code == 1
    assert len(drives) == 1
    assert journaled(journal, rollout) == decided
    last = decided[-1]
    assert isinstance(last, RollBack) and last.cause is RollbackCause.ALARM and last.alarm == "fault_rate@wave-1"
    assert [type(d) for d in decided[:3]] == [EnterStage, DeployBatch, BakeWait]
    assert set(adapter.versions.values()) == {"v1"}
    assert [row[2] for row in executor.decision_log] == [type(d).__name__ for d in decided]
    assert journal.decisions()[0].time_s == START_S  # the journal is stamped with the executor's clock


def test_a_good_version_completes_over_the_fake_fleet_with_bakes_on_the_step_clock(tmp_path):
    rollout, clock, adapter, source = fake_rollout(tmp_path, fast_scenario_dict(bakes_s=(60, 600, 60)), "v2")
    journal = Journal.in_dir(tmp_path, clock=clock)
    executor = Executor(rollout, adapter, source, journal, clock=clock)
    decided = recording(executor)
    began = time.monotonic()
    outcome = executor.start()
    assert outcome.status == "complete" and outcome.exit_code == 0
    assert set(adapter.versions.values()) == {"v2"}
    assert isinstance(decided[-1], Complete) and journaled(journal, rollout) == decided
    assert clock.now() - START_S >= 720.0 and time.monotonic() - began < 30.0  # 12 minutes of bakes, no real wait


def test_an_operator_rollback_is_the_controllers_decision_journaled_before_it_is_carried_out(tmp_path):
    """A deploy fails and the run halts; `--resume --rollback` asks the controller for an operator
    rollback, journals it as a RollBack decision, then returns every moved target."""
    rollout, clock, adapter, source = fake_rollout(tmp_path, manual_rollback(fast_scenario_dict()), "v2")
    names = [t.name for t in rollout.targets]
    wave_host = rollout.targets[int(rollout.plan.stages[0].steps[1].batches[-1][0])].name
    adapter.fail_next(wave_host)
    journal = Journal.in_dir(tmp_path, clock=clock)
    halted = Executor(rollout, adapter, source, journal, clock=clock).start()
    assert halted.status == "halted" and halted.exit_code == 3
    moved = {n for n in names if adapter.versions[n] == "v2"}
    assert moved and wave_host not in moved

    resumed = Executor(rollout, adapter, source, journal, clock=clock)
    decided = recording(resumed)
    outcome = resumed.resume(force_rollback=True)
    assert outcome.status == "rolled_back" and outcome.exit_code == 1
    assert len(decided) == 1
    rollback = decided[0]
    assert isinstance(rollback, RollBack) and rollback.cause is RollbackCause.OPERATOR
    assert rollback.detail == "--rollback" and rollback.automatic and rollback.scope is RollbackScope.EVERYWHERE
    assert journaled(journal, rollout)[-1] == rollback
    assert journal.decisions()[-1].controller["phase"] == "failed"
    assert set(adapter.versions.values()) == {"v1"}
    # The rollback's journal row comes before its first rollback action.
    rollback_row_s = journal.decisions()[-1].time_s
    assert all(a.time_s >= rollback_row_s for a in journal.actions() if a.kind == "rollback")


def test_a_resume_carries_out_the_journaled_decision_again_as_drives_first(tmp_path, monkeypatch):
    rollout, clock, adapter, source = fake_rollout(tmp_path, manual_rollback(fast_scenario_dict()), "v2")
    wave_host = rollout.targets[int(rollout.plan.stages[0].steps[1].batches[0][0])].name
    adapter.fail_next(wave_host)
    journal = Journal.in_dir(tmp_path, clock=clock)
    assert Executor(rollout, adapter, source, journal, clock=clock).start().status == "halted"
    interrupted = journaled(journal, rollout)[-1]
    assert isinstance(interrupted, DeployBatch)
    firsts = []
    real_drive = driver_module.drive
    monkeypatch.setattr(driver_module, "drive",
                        lambda ctrl, driver, first=None: firsts.append(first) or real_drive(ctrl, driver, first))
    outcome = Executor(rollout, adapter, source, journal, clock=clock).resume()
    assert outcome.status == "complete" and set(adapter.versions.values()) == {"v2"}
    assert firsts == [interrupted]


def test_failed_pre_production_tests_fail_the_version_through_the_adapters_preprod(tmp_path):
    scenario = fast_scenario_dict()
    scenario["policy"]["pipelines"]["code"]["stages"].insert(
        0, {"name": "beta", "kind": "preproduction", "duration": "2s", "bake": "1s"})
    rollout, clock, adapter, source = fake_rollout(tmp_path, scenario, "v2-bad")
    adapter.preprod_passes = lambda stage, version: "bad" not in version
    journal = Journal.in_dir(tmp_path, clock=clock)
    executor = Executor(rollout, adapter, source, journal, clock=clock)
    decided = recording(executor)
    outcome = executor.start()
    assert outcome.status == "failed" and outcome.exit_code == 1
    assert isinstance(decided[-1], Fail) and journaled(journal, rollout) == decided
    assert ("preprod", "beta", "v2-bad") in adapter.calls and set(adapter.versions.values()) == {"v1"}


def test_the_plan_is_the_happy_path_of_drive_with_a_planning_driver(tmp_path, monkeypatch):
    drives = []
    real_drive = plan_text.drive
    monkeypatch.setattr(plan_text, "drive", lambda *a, **k: drives.append(a) or real_drive(*a, **k))
    rollout, *_ = fake_rollout(tmp_path, fast_scenario_dict(bakes_s=(60, 600, 60)), "v2")
    timeline = plan_text.expected_timeline(rollout, START_S)
    assert len(drives) == 1 and isinstance(drives[0][1], plan_text.PlanningDriver)
    assert timeline[0] == (START_S, EnterStage(0)) and isinstance(timeline[-1][1], Complete)
    assert timeline[-1][0] - START_S == pytest.approx(720.0)  # the bakes; batches take no time here
    assert all(t1 <= t2 for (t1, _), (t2, _) in itertools.pairwise(timeline))
    assert not any(isinstance(d, RollBack) for _, d in timeline)


def test_fake_adapter_results_are_action_results():
    assert isinstance(FakeAdapter({"t1": "v1"}).deploy(target(), "v2", timeout_s=1), ActionResult)


def test_the_example_of_writing_your_own_adapter_runs_as_documented(capsys, monkeypatch):
    text = (REPO / "docs" / "executor.md").read_text()
    section = text[text.index("## Writing your own adapter"):]
    block = re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)
    monkeypatch.chdir(REPO)
    exec(compile(block, "docs/executor.md", "exec"), {})
    expected = [line[2:] for line in block.splitlines() if line.startswith("# ")]
    assert capsys.readouterr().out.splitlines() == expected


def _protocol_methods(protocol) -> set[str]:
    return {name for name, value in vars(protocol).items() if callable(value) and not name.startswith("_")}


def test_every_shipped_adapter_and_clock_implements_its_whole_seam():
    """The executor uses nothing of an adapter or a clock that its protocol does not say."""
    from deploysim.executor.clock import RealClock as Real
    from deploysim.executor.interfaces import Adapter, Clock
    from deploysim.executor.local_adapter import LocalAdapter

    assert {"deploy", "rollback", "current_version", "healthy", "preprod", "set_spawn_listener"} <= \
        _protocol_methods(Adapter)
    for adapter in (CommandAdapter, LocalAdapter, FakeAdapter):
        assert _protocol_methods(Adapter) <= set(dir(adapter)), adapter
    assert _protocol_methods(Clock) == {"now", "sleep"}
    for clock in (Real, StepClock):
        assert _protocol_methods(Clock) <= set(dir(clock)), clock


class _OnlyTheSeam:
    """An adapter with the protocol's methods and nothing else; no attribute can be set on it."""

    __slots__ = ("_inner",)

    def __init__(self, inner):
        object.__setattr__(self, "_inner", inner)

    def __setattr__(self, name, value):
        raise AttributeError(f"the executor set adapter.{name}: not part of the Adapter protocol")

    def deploy(self, target, version, *, timeout_s):
        return self._inner.deploy(target, version, timeout_s=timeout_s)

    def rollback(self, target, version, *, timeout_s):
        return self._inner.rollback(target, version, timeout_s=timeout_s)

    def current_version(self, target, *, timeout_s):
        return self._inner.current_version(target, timeout_s=timeout_s)

    def healthy(self, target, *, timeout_s):
        return self._inner.healthy(target, timeout_s=timeout_s)

    def preprod(self, stage, version, *, timeout_s):
        return self._inner.preprod(stage, version, timeout_s=timeout_s)

    def set_spawn_listener(self, listener):
        self._inner.set_spawn_listener(listener)


def test_the_executor_needs_nothing_of_an_adapter_beyond_the_protocol(tmp_path):
    scenario = fast_scenario_dict()
    scenario["policy"]["pipelines"]["code"]["stages"].insert(
        0, {"name": "beta", "kind": "preproduction", "duration": "2s", "bake": "1s"})
    rollout, clock, fake, source = fake_rollout(tmp_path, scenario, "v2")
    fake.preprod_passes = lambda stage, version: True
    journal = Journal.in_dir(tmp_path, clock=clock)
    outcome = Executor(rollout, _OnlyTheSeam(fake), source, journal, clock=clock).start()
    assert outcome.status == "complete" and set(fake.versions.values()) == {"v2"}
    assert fake.spawn_listener is not None  # the executor asked to hear of spawned commands
    again = Executor(rollout, _OnlyTheSeam(fake), source, journal, clock=clock).resume(force_rollback=True)
    assert again.status == "rolled_back" and set(fake.versions.values()) == {"v1"}


def test_ctrl_c_during_a_bake_stops_through_the_clock_and_resume_finishes(tmp_path):
    rollout, _, adapter, source = fake_rollout(tmp_path, fast_scenario_dict(bakes_s=(60, 600, 60)), "v2")
    stop = threading.Event()
    clock = CtrlCAt(START_S, START_S + 300.0, stop)  # in the first wave's bake
    adapter.clock = clock
    journal = Journal.in_dir(tmp_path, clock=clock)
    stopped = Executor(rollout, adapter, source, journal, clock=clock, stop=stop).start()
    assert stopped.status == "stopped" and stopped.exit_code == 130 and "BakeWait" in stopped.message
    assert START_S + 300.0 <= clock.now() < START_S + 400.0  # the sleep ended when stop was set
    resumed = Executor(rollout, adapter, source, journal, clock=StepClock(clock.now())).resume()
    assert resumed.status == "complete" and set(adapter.versions.values()) == {"v2"}
