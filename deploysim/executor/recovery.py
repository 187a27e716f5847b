"""Picking a journaled rollout up again: decisions as the journal keeps them and back, and what a
crash left unfinished (commands still running, intents without an outcome) settled before the
rollout goes on.
"""

from __future__ import annotations

import dataclasses
import enum
import os
from pathlib import Path

from ..policy.decisions import (
    BakeWait,
    BlockReason,
    Complete,
    Decision,
    DeployBaseline,
    DeployBatch,
    EnterStage,
    Fail,
    FailReason,
    RemoveBaseline,
    RollBack,
    RollbackCause,
    RollbackScope,
    StepKind,
    WaitApproval,
    WaitBlocker,
)
from .actions import Actions
from .clock import wait_until
from .command_adapter import kill_group
from .journal import DecisionRow, Journal
from .rollout import Rollout

REAP_POLL_S = 0.05
"""How often a command a crashed executor started is looked at while it may still finish."""


def decision_detail(decision: Decision, rollout: Rollout) -> dict:
    """A decision's fields as the journal keeps them (JSON; hosts by their target names)."""
    detail = {}
    for f in dataclasses.fields(decision):
        value = getattr(decision, f.name)
        if f.name == "hosts" and value is not None:
            value = [rollout.targets[h].name for h in value]
        elif f.name == "min_requests":
            value = dict(value)
        elif isinstance(value, enum.Enum):
            value = value.value
        detail[f.name] = value
    return detail


def _position(row: DecisionRow, name: str, value: int | None) -> int:
    """A stage/step/batch number the row's kind of decision always records."""
    if value is None:
        raise ValueError(f"the journal's {row.kind} decision #{row.seq} has no {name}")
    return value


def decision_from_row(row: DecisionRow, rollout: Rollout) -> Decision:
    """The decision a journal row records, to carry it out again after a crash."""
    d = row.detail
    if row.kind not in ("EnterStage", "WaitBlocker", "WaitApproval", "DeployBatch", "DeployBaseline", "BakeWait",
                        "RemoveBaseline", "RollBack", "Fail", "Complete"):
        raise ValueError(f"the journal holds a decision of unknown kind {row.kind!r}")
    if row.kind == "Complete":
        return Complete()
    stage = _position(row, "stage", row.stage)
    if row.kind == "EnterStage":
        return EnterStage(stage)
    if row.kind == "WaitBlocker":
        return WaitBlocker(stage, d["until_s"], BlockReason(d["reason"]), d.get("watch_step"))
    if row.kind == "WaitApproval":
        return WaitApproval(stage, float(d["until_s"]))
    if row.kind == "Fail":
        return Fail(stage, FailReason(d["reason"]))
    step_index = _position(row, "step", row.step)
    if row.kind == "DeployBatch":
        batch = _position(row, "batch", row.batch)
        step = rollout.plan.stages[stage].steps[step_index]
        hosts = () if step.kind == StepKind.PREPROD else tuple(step.batches[batch].tolist())
        return DeployBatch(stage, step_index, batch, hosts, d["duration_s"])
    if row.kind == "DeployBaseline":
        return DeployBaseline(stage, step_index, int(d["size"]))
    if row.kind == "RemoveBaseline":
        return RemoveBaseline(stage, step_index)
    if row.kind == "BakeWait":
        return BakeWait(stage, step_index, float(d["since_s"]), float(d["min_until_s"]),
                        tuple((api, float(n)) for api, n in d["min_requests"].items()), int(d["min_datapoints"]),
                        float(d["deadline_s"]),
                        None if d.get("judge_at_s") is None else float(d["judge_at_s"]))  # older journals lack it
    if row.kind == "RollBack":
        by_name = {t.name: t.host for t in rollout.targets}
        rollback_hosts = None if d.get("hosts") is None else tuple(by_name[n] for n in d["hosts"])
        return RollBack(stage, step_index, RollbackCause(d["cause"]), RollbackScope(d["scope"]), rollback_hosts,
                        bool(d["automatic"]), float(d["duration_s"]), d.get("alarm"), d.get("detail", ""),
                        float(d.get("batch_share", 1.0)))
    raise AssertionError(f"decision kind {row.kind!r} is listed above but not handled")


def resolve_interrupted(journal: Journal, actions: Actions, rollout: Rollout) -> None:
    """Give every intent a crash left without an outcome one: wait for (or end) the command it
    started, then ask the target which version it runs."""
    for action in journal.pending_intents():
        reap(journal, actions, action.seq, rollout)
        if action.kind in ("preprod", "set_weight"):  # not a target's: it runs again when the step does
            journal.outcome(action.seq, False, None, "interrupted by a crash; it runs again")
            continue
        target = next(t for t in rollout.all_targets if t.name == action.target)
        current = actions.current_version(target)
        journal.outcome(action.seq, current == action.version, current,
                        f"interrupted by a crash; on resume the target reports {current!r}")


def reap(journal: Journal, actions: Actions, intent: int, rollout: Rollout) -> None:
    """A command started before a crash may still run: let it finish within its time-out, then kill
    its process group. Only a process the journal identifies (its pid *and* create time) is ever
    waited for or signalled: a pid now held by another process (pids are reused) means the
    command is gone, and that process is left alone."""
    spec = rollout.inventory.adapter
    clock = actions.clock
    for pid, started_s, create_time in journal.spawned_pids(intent):
        if not still_ours(pid, create_time):
            continue
        deadline = started_s + spec.timeout * (1 + spec.retries)
        while group_alive(pid) and clock.now() < deadline:
            wait_until(clock, actions.stop, clock.now() + REAP_POLL_S)
        if group_alive(pid) and still_ours(pid, create_time):
            kill_group(pid)


def still_ours(pgid: int, create_time: float | None) -> bool:
    """May process group `pgid` still be the command the journal recorded?

    Its leader's pid with the create time journaled: yes. A process with that pid but another create
    time: no, the pid was reused, so the command and its group are gone (a group's id is not
    reused while the group lives). No process with that pid: the leader is gone but members of its
    group may remain, and the id cannot belong to anyone else's group. A journal entry without a
    create time (an older journal) cannot be told apart from a reused pid: no."""
    import psutil

    if create_time is None:
        return False
    try:
        return abs(psutil.Process(pgid).create_time() - create_time) < 0.01
    except psutil.NoSuchProcess:
        return True
    except psutil.Error:  # cannot look (another user's process): not ours to signal
        return False


def group_alive(pgid: int) -> bool:
    """Does process group `pgid` still have a running member? Zombies do not count: in a container
    whose init does not reap orphans, a finished command stays a zombie forever."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
            return True
        except (ProcessLookupError, PermissionError):
            return False
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) ": state ppid pgrp ...
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            return True
    return False
