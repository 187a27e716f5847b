"""The simulator's `Driver`: carries out one version's rollout decisions on the simulated fleet.

`deploysim.policy.drive` asks the controller and hands each decision to a `VersionDriver`, whose
methods are SimPy generators: they wait on the simulation's clock, change which version hosts run,
and report what they saw as an `Observation`. The driver decides nothing: batches, bakes and
rollbacks (scope, automatic or not, how long) are as the decision says. It works on the engine's
fleet state through the engine's own operations (`Simulation._switch`, `_revert`, ...), as the
engine's body for one version.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import simpy

from .judge.verdict import Verdict
from .policy.decisions import (
    BakeWait,
    Complete,
    Decision,
    DeployBaseline,
    DeployBatch,
    EnterStage,
    Fail,
    Observation,
    RemoveBaseline,
    RollBack,
    WaitApproval,
    WaitBlocker,
    decision_row,
)

if TYPE_CHECKING:
    from .engine import PipelineState, Simulation, Version


class VersionDriver:
    """One version's rollout on the simulated fleet; holds the stage lock it queues for or holds."""

    def __init__(self, sim: Simulation, version: Version):
        self.sim = sim
        self.version = version
        self.state: PipelineState = sim.pipelines[version.pipeline]
        self.plan = self.state.plan
        self.held: simpy.resources.resource.Request | None = None  # the stage lock the version holds
        self.pending: simpy.resources.resource.Request | None = None  # the stage lock it queues for
        self.planned: dict[int, float] = {}  # host -> planned switch time within the current step
        self.baseline: tuple[int, int, float] | None = None  # (stage, step, since when) of a deployed baseline

    def _log(self, event: str, **detail) -> None:
        self.sim._log(self.version.pipeline, self.version.version_id, event, **detail)

    def _stage_name(self, stage: int) -> str:
        return self.plan.stages[stage].name

    def _step_name(self, stage: int, step: int) -> str:
        return self.plan.stages[stage].steps[step].name

    # ------------------------------------------------------------ the Driver protocol

    def now(self) -> float:
        return float(self.sim.env.now)

    def record(self, now_s: float, decision: Decision) -> None:
        if self.sim.decision_log is not None:
            self.sim.decision_log.append(decision_row(self.version.pipeline, self.version.version_id, decision))

    def enter_stage(self, decision: EnterStage):
        """Leave the previous stage, then queue for the next; a newer version queued for a stage
        supersedes the older one waiting there (it contains its changes)."""
        sim, state, version = self.sim, self.state, self.version
        if self.held is not None:
            state.stage_locks[version.stage].release(self.held)
            self.held = None
        older = state.waiting.get(decision.stage)
        if older is not None and older.process is not None and older.process.is_alive:
            older.finished = True
            older.process.interrupt("superseded")
            sim._accumulate_waits(older)
            version.new_changes = tuple(older.new_changes) + tuple(version.new_changes)
        state.waiting[decision.stage] = version
        request = self.pending = state.stage_locks[decision.stage].request()
        yield request
        self.pending = None
        if state.waiting.get(decision.stage) is version:
            del state.waiting[decision.stage]
        self.held, version.stage = request, decision.stage
        self._log("stage_start", stage=self._stage_name(decision.stage), changes=list(version.new_changes))
        return Observation(incident=sim._incident(self.plan, decision.stage))

    def wait_blocker(self, decision: WaitBlocker):
        """Wait for the blocker to lift; the stage's deployed step (if any) stays watched meanwhile."""
        env, version = self.sim.env, self.version
        start = float(env.now)
        step = None if decision.watch_step is None else decision.watch_step + 1
        self._log("blocked", stage=self._stage_name(version.stage), reason=decision.reason.value,
                  until_s=decision.until_s, **({} if step is None else {"step": self._step_name(decision.stage, step)}))
        alarm = None
        if decision.watch_step is None:
            yield env.timeout(decision.until_s - start)
        else:
            watched = self.plan.stages[decision.stage].steps[decision.watch_step]
            alarm = yield from self.sim._wait_watching(version, watched, decision.until_s, {})
        version.blocked_s += float(env.now) - start
        if alarm is not None:
            return Observation(alarm=alarm)
        return Observation(incident=self.sim._incident(self.plan, version.stage))

    def wait_approval(self, decision: WaitApproval):
        """People approve the stage after its `approval.wait` (unless that is past the timeout)."""
        env, version = self.sim.env, self.version
        start = float(env.now)
        approval = self.plan.stages[decision.stage].approval
        wait = approval.wait if approval is not None else 0.0
        self._log("awaiting_approval", stage=self._stage_name(decision.stage))
        yield env.timeout(max(0.0, min(start + wait, decision.until_s) - start))
        version.blocked_s += float(env.now) - start
        return Observation(approved=start + wait < decision.until_s)

    def deploy_batch(self, decision: DeployBatch):
        """Deploy one batch (or run pre-production's tests), watching the step's alarms meanwhile."""
        sim, env, version = self.sim, self.sim.env, self.version
        step = self.plan.stages[decision.stage].steps[decision.step]
        batch_hosts = np.array(decision.hosts, dtype=np.int64)
        if step.kind == "preprod":
            self._log("preprod_start", stage=self._stage_name(decision.stage))
            yield env.timeout(decision.duration_s)
            return Observation()
        if decision.batch == 0:
            now = float(env.now)
            self.planned = {}
            for b, hosts in enumerate(step.batches):
                for h in hosts.tolist():
                    self.planned[h] = now + (b + 1) * step.batch_s
            self._log("step_start", stage=self._stage_name(decision.stage), step=step.name, hosts=int(step.hosts.size))
        if not step.hosts_keep_serving:
            sim._take_out_of_service(batch_hosts, decision.duration_s)
        alarm = yield from sim._wait_watching(version, step, float(env.now) + decision.duration_s, self.planned)
        if alarm is not None:
            return Observation(alarm=alarm)
        sim._switch(self.state, batch_hosts, version.version_id)
        for h in decision.hosts:
            self.planned.pop(h, None)
        if decision.batch == len(step.batches) - 1:
            self._log("step_deployed", stage=self._stage_name(decision.stage), step=step.name)
        return Observation()

    def deploy_baseline(self, decision: DeployBaseline) -> Observation:
        """Fresh hosts of the old version beside the canary: deployed with it (they take no batch
        time of the step's), they serve the canary's traffic per host and cost host-hours."""
        self.baseline = (decision.stage, decision.step, float(self.sim.env.now))
        self._log("baseline_deployed", stage=self._stage_name(decision.stage),
                  step=self._step_name(decision.stage, decision.step), hosts=decision.size)
        return Observation()

    def remove_baseline(self, decision: RemoveBaseline) -> Observation:
        self.end_baseline()
        return Observation()

    def end_baseline(self) -> None:
        """The baseline hosts go (the bake is over, the version rolls back, or its rollout stops): their
        host-hours since they were deployed are logged."""
        if self.baseline is None:
            return
        stage, step, since = self.baseline
        self.baseline = None
        hosts = int(self.plan.stages[stage].steps[step].hosts.size)
        self._log("baseline_removed", stage=self._stage_name(stage), step=self._step_name(stage, step),
                  hosts=hosts, host_h=hosts * (float(self.sim.env.now) - since) / 3600.0)

    def bake(self, decision: BakeWait):
        """Wait until the bake's time and data minimums are met (or its deadline), watching its alarms."""
        sim, env, version = self.sim, self.sim.env, self.version
        step = self.plan.stages[decision.stage].steps[decision.step]
        start = float(env.now)
        if start == decision.since_s:
            self._log("bake_start", stage=self._stage_name(decision.stage), step=step.name)
        ready = sim._bake_ready_s(step, decision)
        # A judged bake waits for its next judgement: the controller ends it only on a PASS judged then.
        until = ready if decision.judge_at_s is None else decision.judge_at_s
        alarm = yield from sim._wait_watching(version, step, until, self.planned)
        version.baking_s += float(env.now) - start
        if alarm is not None:
            return Observation(alarm=alarm)
        now = float(env.now)
        judgement = None
        if decision.judge_at_s is not None and now >= decision.judge_at_s:
            judgement = sim.judge.judge(step, decision.since_s, now)
            self._log("judgement", stage=self._stage_name(decision.stage), step=step.name,
                      verdict=judgement.verdict.value, reason=judgement.reason)
        # The next step of the stage checks its blockers when the bake ends: an incident is observed now.
        next_step_waits = now >= ready and decision.step + 1 < len(self.plan.stages[decision.stage].steps)
        observation = Observation(
            requests_seen=sim._requests_seen(step.hosts, decision.since_s, now) if step.hosts.size else {},
            datapoints_seen=int((now - decision.since_s) // sim.period_s + 1e-9),
            preprod_failed=any(sim.records.changes[c].change.caught_in_preprod for c in version.new_changes),
            incident=next_step_waits and sim._incident(self.plan, decision.stage),
            judgement=judgement,
        )
        if now >= ready and (step.judge is None or (judgement is not None and judgement.verdict is Verdict.PASS)):
            self._log("bake_end", stage=self._stage_name(decision.stage), step=step.name)
        return observation

    def roll_back(self, decision: RollBack):
        """Revert the version's changes on the decision's hosts, at its speed (see `Simulation._roll_back`);
        a judge's baseline hosts go at once."""
        self.end_baseline()
        yield from self.sim._roll_back(self.version, decision)

    def fail(self, decision: Fail):
        """Pre-production caught the version: revert the caught changes; the rest go round again."""
        sim, version = self.sim, self.version
        records = sim.records.changes
        self._log("preprod_caught", stage=self._stage_name(decision.stage))
        culprits = {c for c in version.new_changes if records[c].change.caught_in_preprod}
        for c in culprits:
            records[c].outcome = "caught_preprod"
        version.finished = True
        if self.held is not None:
            self.held.resource.release(self.held)
            self.held = None
        yield from sim._revert(version.pipeline, culprits, None, 0.0, "preprod", version)
        rest = tuple(c for c in version.new_changes if c not in culprits)
        if rest:
            sim._build_version(version.pipeline, rest)

    def complete(self, decision: Complete) -> None:
        """The version runs everywhere: its changes (and older ones it holds) are deployed."""
        sim, state, version = self.sim, self.state, self.version
        version.finished = True
        now = float(sim.env.now)
        self._log("complete")
        for c in [c for c in state.open_changes if version.contains(c)]:
            state.open_changes.discard(c)
            record = sim.records.changes[c]
            if record.outcome == "in_flight":
                record.completed_s = now
                record.outcome = "deployed"
        sim._accumulate_waits(version)

    # ------------------------------------------------------------ when the rollout stops

    def release_locks(self) -> None:
        """Give back the stage lock held or queued for (an interrupt can arrive after the lock was
        granted but before the version resumed)."""
        if self.pending is not None:
            if self.pending.triggered:
                self.pending.resource.release(self.pending)
            else:
                self.pending.cancel()
        if self.held is not None:
            self.held.resource.release(self.held)
