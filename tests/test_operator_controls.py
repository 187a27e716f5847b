"""Operators' controls (abort, pause, resume, promote, approve) and the manual approval step, in the
one brain, the simulator and the real executor: each is journaled with who asked and why, takes
effect where the rollout stands, survives a stop or a crash, and what does not apply is journaled as
ignored. The executor runs here on a `StepClock` over a `FakeAdapter` (hours of bakes in no time);
the last tests run the real command-line processes over a fleet of version files."""

from __future__ import annotations

import copy
import datetime as dt
import threading

import pytest
import yaml
from conftest import good_change, tiny_scenario_dict, with_changes
from executor_support import CLI, cli, fast_scenario_dict, versions, write_inputs
from test_executor_failures import wait_for

import deploysim
from deploysim.executor import Executor, FakeAdapter, FakeMetricSource, Journal, StepClock, load_rollout
from deploysim.executor.status import format_status, rollout_status
from deploysim.fleet import build_fleet, host_names
from deploysim.policy.controller import new_controller
from deploysim.policy.decisions import (
    BakeWait,
    DeployBatch,
    EnterStage,
    Observation,
    RollBack,
    RollbackCause,
    WaitApproval,
)
from deploysim.policy.plan import build_plan

START_S = 1_780_000_000.0
HOUR = 3600.0
EPOCH = dt.datetime(2026, 1, 5, tzinfo=dt.timezone.utc)  # the tiny scenario's start


def slow_scenario(approval: dict | None = None) -> dict:
    """The fast scenario with hour-long bakes (one-box, wave-1, wave-2), optionally an approval."""
    scenario = fast_scenario_dict(bakes_s=("1h", "1h", "1h"))
    if approval is not None:
        scenario["policy"]["pipelines"]["code"]["stages"][0]["approval"] = approval
    return scenario


class ScriptedClock(StepClock):
    """A step clock on which, as time passes given instants, operators ask for controls (through a
    journal connection of their own, as `deploysim abort` and the like do) or Ctrl-C is pressed."""

    def __init__(self, state_dir, script):
        super().__init__(START_S)
        self.state_dir = state_dir
        self.script = sorted(script)  # (seconds after START_S, control kind or "stop", reason)
        self.stop_event: threading.Event | None = None

    def sleep(self, seconds, stop=None):
        moved = super().sleep(seconds, stop)
        while self.script and self.now() >= START_S + self.script[0][0]:
            _, kind, reason = self.script.pop(0)
            if kind == "stop":
                assert self.stop_event is not None
                self.stop_event.set()
                continue
            operator = Journal.in_dir(self.state_dir)
            operator.request_control(kind, "alice@ops", reason)
            operator.close()
        return moved


class Rig:
    """A fake fleet (all on v1) for one rollout of `version`, on a scripted step clock: `start` and
    `resume` run the executor with controls asked at given instants; the fleet and journal persist."""

    def __init__(self, tmp_path, scenario: dict, version: str = "v2"):
        self.tmp_path = tmp_path
        names = list(host_names(build_fleet(deploysim.scenario_from_dict(scenario))))
        inventory = {"adapter": {"kind": "command", "deploy": ["true"], "current_version": ["true"], "retries": 0},
                     "metrics": {"kind": "command", "command": ["true"]},
                     "targets": {name: {} for name in names}}
        self.rollout = load_rollout(yaml.safe_dump(scenario), "scenario", yaml.safe_dump(inventory), "inventory",
                                    tmp_path, version, None)
        self.clock = ScriptedClock(tmp_path, [])
        self.adapter = FakeAdapter(dict.fromkeys(names, "v1"), clock=self.clock)
        self.journal = Journal.in_dir(tmp_path, clock=self.clock)

    def _run(self, script, stop_at_s, resume: bool):
        stop = threading.Event()
        self.clock.script = sorted(list(script) + ([(stop_at_s, "stop", "")] if stop_at_s is not None else []))
        self.clock.stop_event = stop
        source = FakeMetricSource(self.adapter, {"v2-bad": {"error_rate": 1.0}})
        executor = Executor(self.rollout, self.adapter, source, self.journal, clock=self.clock, stop=stop)
        return executor.resume() if resume else executor.start()

    def start(self, script=(), stop_at_s: float | None = None):
        return self._run(script, stop_at_s, resume=False)

    def resume(self, script=(), stop_at_s: float | None = None):
        return self._run(script, stop_at_s, resume=True)


def run(tmp_path, scenario: dict, script=(), stop_at_s: float | None = None):
    """Start a rollout of v2 over a fake fleet with `script`ed controls: (outcome, journal, adapter)."""
    rig = Rig(tmp_path, scenario)
    return rig.start(script, stop_at_s), rig.journal, rig.adapter


def decisions_after(journal, kind: str) -> list:
    return [(row.time_s - START_S, row) for row in journal.decisions() if row.kind == kind]


def first_deploy_s(journal, targets) -> float:
    return min(a.time_s - START_S for a in journal.actions() if a.kind == "deploy" and a.target in targets)


# ------------------------------------------------------------------ the one brain


def test_the_controller_waits_for_approval_and_rolls_back_when_none_comes_by_the_timeout(tiny):
    data = tiny_scenario_dict()
    data["policy"]["pipelines"]["code"]["stages"][0]["approval"] = {"timeout": "2h"}
    scenario = deploysim.scenario_from_dict(data)
    plan = build_plan("code", scenario.policy.pipelines["code"], build_fleet(scenario))
    ctrl = new_controller(plan, scenario, EPOCH)
    assert ctrl.decide(0.0) == EnterStage(0)
    assert ctrl.decide(0.0) == WaitApproval(0, 2 * HOUR)
    assert ctrl.decide(HOUR) == WaitApproval(0, 2 * HOUR)  # woken early: still waiting, same deadline
    approved = copy.deepcopy(ctrl)
    assert isinstance(approved.decide(HOUR, Observation(approved=True)), DeployBatch)
    late = ctrl.decide(2 * HOUR)
    assert isinstance(late, RollBack) and late.cause is RollbackCause.NOT_APPROVED and late.automatic
    assert "not approved" in late.reason


def test_the_controller_ends_a_bake_on_promote_and_rolls_back_on_abort(tiny):
    plan = build_plan("code", tiny.policy.pipelines["code"], build_fleet(tiny))
    ctrl = new_controller(plan, tiny, EPOCH)
    ctrl.decide(0.0)
    ctrl.decide(0.0)  # the one-box batch
    bake = ctrl.decide(300.0)
    assert isinstance(bake, BakeWait)
    aborting = copy.deepcopy(ctrl)
    assert isinstance(ctrl.decide(301.0, Observation(promoted=True)), DeployBatch)  # 10 min bake skipped
    rollback = aborting.decide(301.0, Observation(abort="alice@ops: canary looks wrong"))
    assert isinstance(rollback, RollBack) and rollback.cause is RollbackCause.OPERATOR
    assert rollback.reason == "operator asked: alice@ops: canary looks wrong"


def test_the_simulator_waits_the_approvals_wait_before_the_stage_starts():
    """A change's lead time grows by exactly the approval's `wait`; a wait past the timeout rolls
    the change back without it ever reaching a host."""
    base = tiny_scenario_dict()
    base["changes"]["code"]["bad_probability"] = 0.0
    approved = copy.deepcopy(base)
    approved["policy"]["pipelines"]["code"]["stages"][0]["approval"] = {"wait": "45m"}
    late = copy.deepcopy(base)
    late["policy"]["pipelines"]["code"]["stages"][0]["approval"] = {"wait": "3h", "timeout": "2h"}
    runs = {name: with_changes(deploysim.scenario_from_dict(d), [good_change()])
            for name, d in (("base", base), ("approved", approved), ("late", late))}
    done = {name: r.records.changes[0] for name, r in runs.items()}
    assert done["approved"].completed_s - done["base"].completed_s == pytest.approx(45 * 60.0)
    assert done["late"].outcome != "deployed"
    assert not any(row["event"] == "step_start" for row in runs["late"].records.timeline)
    assert any(row["event"] == "awaiting_approval" for row in runs["late"].records.timeline)


# ------------------------------------------------------------------ the executor, on a step clock


def test_an_abort_during_a_bake_rolls_every_moved_target_back_as_the_operators_journaled_decision(tmp_path):
    outcome, journal, adapter = run(tmp_path, slow_scenario(), [(1800, "abort", "error budget burning")])
    assert outcome.status == "rolled_back"
    assert set(adapter.versions.values()) == {"v1"}
    (at_s, rollback), = decisions_after(journal, "RollBack")
    assert 1800 <= at_s <= 1800 + 60  # taken within a poll of the step clock
    assert rollback.detail["cause"] == "operator" and rollback.detail["automatic"] is True
    assert rollback.detail["detail"] == "alice@ops: error budget burning"
    (control,) = journal.controls()
    assert (control.kind, control.effect, control.operator, control.reason) == (
        "abort", "aborted", "alice@ops", "error budget burning")
    assert any(kind == "aborted" and "alice@ops" in detail for _, _, kind, detail in journal.events())


def test_a_pause_starts_no_deploy_until_resumed_while_the_bake_goes_on(tmp_path):
    outcome, journal, adapter = run(tmp_path, slow_scenario(),
                                    [(1800, "pause", "checking a dashboard"), (5 * HOUR, "resume", "all clear")])
    assert outcome.status == "complete" and set(adapter.versions.values()) == {"v2"}
    (_, wave1), = [(t, r) for t, r in decisions_after(journal, "DeployBatch") if r.step == 1 and r.batch == 0]
    assert first_deploy_s(journal, wave1.detail["hosts"]) >= 5 * HOUR  # held from 1 h (bake end) to 5 h
    effects = [(c.kind, c.effect) for c in journal.controls()]
    assert effects == [("pause", "paused"), ("resume", "unpaused")]


def test_a_promote_ends_the_current_bake_at_once_and_only_that_one(tmp_path):
    outcome, journal, _ = run(tmp_path, slow_scenario(), [(600, "promote", "one-box looks fine")])
    assert outcome.status == "complete"
    starts = {r.step: t for t, r in decisions_after(journal, "DeployBatch") if r.batch == 0}
    assert 600 <= starts[1] <= 660  # the one-box's hour-long bake ended at the promote
    bakes = {r.step: t for t, r in decisions_after(journal, "BakeWait")}
    assert starts[2] - bakes[1] >= HOUR  # wave-1 baked its full hour
    (control,) = journal.controls()
    assert (control.effect, control.stage, control.step) == ("promoted", 0, 0)


def test_a_stage_with_an_approval_starts_only_once_approved(tmp_path):
    outcome, journal, adapter = run(tmp_path, slow_scenario({"timeout": "1d"}),
                                    [(2 * HOUR, "approve", "change ticket 1234")])
    assert outcome.status == "complete" and set(adapter.versions.values()) == {"v2"}
    assert [r.kind for r in journal.decisions()][:3] == ["EnterStage", "WaitApproval", "DeployBatch"]
    assert min(a.time_s for a in journal.actions()) - START_S >= 2 * HOUR
    assert [k for _, _, k, _ in journal.events()][:3] == ["started", "awaiting_approval", "approved"]


def test_no_approval_by_the_timeout_rolls_back_having_touched_nothing(tmp_path):
    outcome, journal, adapter = run(tmp_path, slow_scenario({"timeout": "1h"}), [])
    assert outcome.status == "rolled_back"
    assert not journal.actions() and set(adapter.versions.values()) == {"v1"}
    (at_s, rollback), = decisions_after(journal, "RollBack")
    assert rollback.detail["cause"] == "not_approved" and at_s == pytest.approx(HOUR, abs=60)


def test_controls_that_do_not_apply_where_the_rollout_stands_are_journaled_as_ignored(tmp_path):
    outcome, journal, _ = run(tmp_path, slow_scenario(), [(600, "resume", ""), (700, "approve", "")])
    assert outcome.status == "complete"
    taken = {c.kind: (c.effect, c.detail) for c in journal.controls()}
    assert taken["resume"][0] == "ignored" and "not paused" in taken["resume"][1]
    assert taken["approve"][0] == "ignored" and "no stage awaits approval" in taken["approve"][1]


def test_a_pause_holds_across_a_stop_and_resume_until_lifted(tmp_path):
    rig = Rig(tmp_path, slow_scenario())
    assert rig.start([(1800, "pause", "")], stop_at_s=3 * HOUR).status == "stopped"
    held = len(rig.journal.actions())
    # Resumed at 3 h: still paused, so nothing moves until an operator lifts the pause at 6 h.
    assert rig.resume([(6 * HOUR, "resume", "")]).status == "complete"
    moved = [a.time_s - START_S for a in rig.journal.actions()[held:]]
    assert moved and min(moved) >= 6 * HOUR
    assert set(rig.adapter.versions.values()) == {"v2"}


def test_an_abort_asked_while_no_executor_runs_is_carried_out_by_the_next_resume(tmp_path):
    rig = Rig(tmp_path, slow_scenario())
    assert rig.start(stop_at_s=1800).status == "stopped" and "v2" in rig.adapter.versions.values()
    rig.journal.request_control("abort", "bob@ops", "rolled back while the pipeline was down")
    assert rig.resume().status == "rolled_back"
    assert set(rig.adapter.versions.values()) == {"v1"}
    assert rig.journal.last_decision().detail["detail"] == "bob@ops: rolled back while the pipeline was down"


def test_status_says_paused_and_awaiting_approval_and_lists_pending_controls(tmp_path):
    outcome, journal, _ = run(tmp_path, slow_scenario({"timeout": "1d"}), [(60, "pause", "freeze")],
                              stop_at_s=120)
    assert outcome.status == "stopped"
    journal.request_control("approve", "carol@ops", "")
    text = format_status(rollout_status(tmp_path, journal))
    assert "PAUSED by alice@ops (freeze)" in text
    assert "AWAITING APPROVAL of stage 1" in text
    assert "stopped at WaitApproval stage 1/1 prod;" in text
    assert "Controls not taken yet: #2 approve by carol@ops" in text


# ------------------------------------------------------------------ the real command line


def _journal_has(state_dir, kind: str) -> bool:
    path = state_dir / "journal.sqlite"
    if not path.exists():
        return False
    journal = Journal(path, readonly=True)
    try:
        last = journal.last_decision()
        return last is not None and last.kind == kind
    except Exception:  # created, no tables yet
        return False
    finally:
        journal.close()


def _control(*args, cwd):
    import subprocess

    return subprocess.run([*CLI, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def test_deploysim_abort_rolls_a_running_rollout_back_and_a_plain_resume_never_reverses_it(tmp_path):
    scenario = fast_scenario_dict(bakes_s=("60s", "1s", "1s"))
    scenario_path, inventory_path, names = write_inputs(tmp_path, scenario, tmp_path / "fleet")
    state = tmp_path / "state"
    proc = cli("execute", str(scenario_path), "--inventory", str(inventory_path), "--version", "v2",
               "--state-dir", str(state), cwd=tmp_path)
    wait_for(lambda: _journal_has(state, "BakeWait"), 60, "the one-box bake", proc)
    done = _control("abort", str(state), "--reason", "latency spike", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("aborted: control #1 abort by ") and "latency spike" in done.stdout
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and out.startswith("rolled_back"), (out, err)
    assert set(versions(tmp_path / "fleet", names).values()) == {"v1"}
    again = _control("execute", "--resume", str(state), cwd=tmp_path)
    assert again.returncode == 1 and "already finished" in again.stdout
    assert set(versions(tmp_path / "fleet", names).values()) == {"v1"}
    refused = _control("abort", str(state), cwd=tmp_path)
    assert refused.returncode == 2 and "already ended: rolled_back" in refused.stderr
    history = _control("history", str(state), cwd=tmp_path)
    assert "control abort" in history.stdout and "latency spike" in history.stdout


def test_deploysim_approve_lets_a_waiting_stage_start_and_the_rollout_completes(tmp_path):
    scenario = fast_scenario_dict()
    scenario["policy"]["pipelines"]["code"]["stages"][0]["approval"] = {"timeout": "10m"}
    scenario_path, inventory_path, names = write_inputs(tmp_path, scenario, tmp_path / "fleet")
    state = tmp_path / "state"
    proc = cli("execute", str(scenario_path), "--inventory", str(inventory_path), "--version", "v2",
               "--state-dir", str(state), cwd=tmp_path)
    wait_for(lambda: _journal_has(state, "WaitApproval"), 60, "the approval request", proc)
    status = _control("status", str(state), cwd=tmp_path)
    assert "AWAITING APPROVAL of stage 1/1 prod" in status.stdout
    early = _control("promote", str(state), cwd=tmp_path)
    assert early.returncode == 2 and "nothing to promote" in early.stderr
    assert set(versions(tmp_path / "fleet", names).values()) == {"v1"}  # nothing moved before approval
    approved = _control("approve", str(state), "--reason", "CAB approved", cwd=tmp_path)
    assert approved.returncode == 0 and approved.stdout.startswith("approved: "), approved
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == 0 and out.startswith("complete"), (out, err)
    assert set(versions(tmp_path / "fleet", names).values()) == {"v2"}
