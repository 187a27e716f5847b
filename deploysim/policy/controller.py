"""The one brain: decides what one version's rollout does next (enter a stage, wait on a blocker,
deploy a batch, bake, roll back, finish).

It is a pure state machine over a plan and observations. The simulator drives it with SimPy's
clock and computed metrics; the real executor drives it with the wall clock and real adapters.
Both call `decide(now_s, observation)` and carry out the returned decision.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from ..judge.verdict import Verdict
from ..scenario.schema import Judge, Scenario
from .blockers import Calendar, RegionCalendar, region_calendars
from .decisions import (
    BakeWait,
    BlockReason,
    Complete,
    Decision,
    DeployBaseline,
    DeployBatch,
    EnterStage,
    Fail,
    FailReason,
    Observation,
    Phase,
    RemoveBaseline,
    RollBack,
    RollbackCause,
    RollbackScope,
    StageKind,
    StepKind,
    WaitApproval,
    WaitBlocker,
)
from .plan import PipelinePlan, Step

__all__ = [  # the decision types are re-exported: they are what a controller says
    "BakeWait", "Complete", "Decision", "DeployBaseline", "DeployBatch", "EnterStage", "Fail", "Observation",
    "RemoveBaseline", "RollBack", "RolloutController", "WaitApproval", "WaitBlocker", "new_controller",
]

DEFAULT_BAKE_LIMIT_S = 7 * 86400.0
NO_OBSERVATION = Observation()  # decide()'s default: nothing observed (Observation is frozen, so one is shared)


def _bake_limit_s(bake) -> float:
    """How long a bake waits for its minimum data before it gives up and lets the rollout go on."""
    return bake.max_duration if bake.max_duration is not None else max(DEFAULT_BAKE_LIMIT_S, bake.duration)


class RolloutController:
    """Walks a version through its pipeline plan, one decision at a time."""

    def __init__(self, plan: PipelinePlan, calendar: Calendar, regions: list[RegionCalendar]):
        self.plan = plan
        self.calendar = calendar
        self.regions = regions  # indexed like the fleet's regions
        self.stage = -1  # stage the version holds; -1 before the first
        self.step = 0
        self.batch = 0  # next batch to deploy in the current step
        self.phase = Phase.START
        self.bake_since_s = 0.0
        self.approved_stage = -1  # the last stage a person approved (-1: none)
        self.approval_until_s = 0.0  # the approval awaited for the current stage times out here
        self.judgements = 0  # judgements the current bake's canary judge has made
        self.judge_pauses = 0  # inconclusive judgements that paused the current step after its bake
        self.baseline_up = False  # the current step's judge has baseline hosts deployed

    def snapshot(self) -> dict:
        """The controller's state as plain data, so a real executor can journal it and resume."""
        return {"stage": self.stage, "step": self.step, "batch": self.batch, "phase": self.phase.value,
                "bake_since_s": self.bake_since_s, "approved_stage": self.approved_stage,
                "approval_until_s": self.approval_until_s, "judgements": self.judgements,
                "judge_pauses": self.judge_pauses, "baseline_up": self.baseline_up}

    def restore(self, state: Mapping) -> None:
        """Continue from a `snapshot()` (same plan): the next `decide` picks up where it left off."""
        self.stage, self.step, self.batch = int(state["stage"]), int(state["step"]), int(state["batch"])
        self.phase = Phase(str(state["phase"]))
        self.bake_since_s = float(state["bake_since_s"])
        self.approved_stage = int(state.get("approved_stage", -1))  # journals written before approvals lack it
        self.approval_until_s = float(state.get("approval_until_s", 0.0))
        self.judgements = int(state.get("judgements", 0))  # journals written before judges lack these
        self.judge_pauses = int(state.get("judge_pauses", 0))
        self.baseline_up = bool(state.get("baseline_up", False))

    @property
    def current_step(self) -> Step | None:
        if 0 <= self.stage < len(self.plan.stages):
            return self.plan.stages[self.stage].steps[self.step]
        return None

    def _stage_regions(self, stage: int) -> list[RegionCalendar]:
        return [self.regions[r] for r in self.plan.stages[stage].regions]

    def decide(self, now_s: float, obs: Observation = NO_OBSERVATION) -> Decision:
        """The next thing to do; call again after carrying it out (or when something changed)."""
        if self.phase is Phase.DONE:
            return Complete()
        if self.phase is Phase.FAILED:
            return Fail(self.stage, FailReason.ALREADY_FAILED)
        if obs.abort is not None:
            return self.operator_rollback(obs.abort)
        if self.phase in (Phase.DEPLOYING, Phase.BAKING, Phase.GATED) and obs.alarm is not None:
            return self._roll_back(RollbackCause.ALARM, alarm=obs.alarm)
        if self.phase is Phase.DEPLOYING and obs.deploy_failed is not None:
            return self._roll_back(RollbackCause.DEPLOY_FAILED, detail=obs.deploy_failed)

        if self.phase is Phase.START:
            self.phase = Phase.ENTERED
            self.stage = 0
            return EnterStage(0)

        if self.phase is Phase.AWAITING:
            if obs.approved:
                self.approved_stage = self.stage
                self.phase = Phase.ENTERED
            elif now_s >= self.approval_until_s:
                approval = self.plan.stages[self.stage].approval
                timeout = approval.timeout if approval is not None else 0.0
                return self._roll_back(RollbackCause.NOT_APPROVED,
                                       detail=f"stage {self.plan.stages[self.stage].name} was not approved "
                                       f"within {timeout:g} s")
            else:
                return WaitApproval(self.stage, self.approval_until_s)

        if self.phase is Phase.ENTERED:
            self.step, self.batch = 0, 0
            approval = self.plan.stages[self.stage].approval
            if approval is not None and self.approved_stage != self.stage:
                self.phase = Phase.AWAITING
                self.approval_until_s = now_s + approval.timeout
                return WaitApproval(self.stage, self.approval_until_s)
            return self._start_step(now_s, obs)

        if self.phase is Phase.GATED:
            return self._start_step(now_s, obs)

        if self.phase is Phase.DEPLOYING:
            return self._next_batch_or_bake(now_s)

        if self.phase is Phase.BAKING:
            step = self.plan.stages[self.stage].steps[self.step]
            bake = step.bake
            if step.judge is not None and obs.judgement is not None:
                self.judgements += 1
                if obs.judgement.verdict is Verdict.FAIL:
                    return self._roll_back(RollbackCause.JUDGE_FAILED, detail=obs.judgement.reason)
            deadline = self.bake_since_s + _bake_limit_s(bake)
            enough_time = now_s >= self.bake_since_s + bake.duration
            enough_data = obs.datapoints_seen >= bake.min_datapoints and all(
                obs.requests_seen.get(api, 0.0) >= n for api, n in bake.min_requests.items()
            )
            if not (obs.promoted or (enough_time and (enough_data or now_s >= deadline))):
                return self._bake_wait(step)
            if step.judge is not None and not obs.promoted:
                held = self._judge_holds(step.judge, obs)
                if held is not None:
                    return held if isinstance(held, RollBack) else self._bake_wait(step)
            if step.kind is StepKind.PREPROD and self.stage == self.plan.last_preprod_stage and obs.preprod_failed:
                self.phase = Phase.FAILED
                return Fail(self.stage, FailReason.PREPROD_CAUGHT)
            if self.baseline_up:
                self.baseline_up = False
                self.phase = Phase.RELEASING
                return RemoveBaseline(self.stage, self.step)
            return self._advance(now_s, obs)

        if self.phase is Phase.RELEASING:
            return self._advance(now_s, obs)

        raise RuntimeError(f"unknown phase {self.phase}")

    def operator_rollback(self, detail: str = "") -> RollBack:
        """A person asked to roll the version back (`detail`: who and why): the policy's scope, at
        automatic speed, whatever the rollout was doing."""
        return self._roll_back(RollbackCause.OPERATOR, detail=detail, automatic=True)

    def _roll_back(self, cause: RollbackCause, *, alarm: str | None = None, detail: str = "",
                   automatic: bool | None = None) -> RollBack:
        """Decide everything about a rollback: which hosts, automatic or by people, how long."""
        self.phase = Phase.FAILED
        rollback = self.plan.policy.rollback
        scope = RollbackScope(rollback.scope)
        hosts: tuple[int, ...] | None = None
        if scope is RollbackScope.STAGE and 0 <= self.stage < len(self.plan.stages):
            hosts = tuple(self.plan.stages[self.stage].hosts.tolist())
        return RollBack(self.stage, self.step, cause, scope, hosts,
                        rollback.automatic if automatic is None else automatic, float(rollback.duration),
                        alarm=alarm, detail=detail, batch_share=float(rollback.max_share))

    def _judge_holds(self, judge: Judge, obs: Observation) -> RollBack | bool | None:
        """Whether the step's judge holds a bake that is otherwise over: None when its verdict, judged
        now, is PASS; True (keep baking) while it is RUNNING, not judged yet, or INCONCLUSIVE within
        the pause limit; past the limit, the rollback (automatic) or the page (a manual rollback)."""
        verdict = obs.judgement.verdict if obs.judgement is not None else None
        if verdict is Verdict.PASS:
            return None
        if verdict is Verdict.INCONCLUSIVE:
            self.judge_pauses += 1
            if self.judge_pauses > judge.inconclusive.limit:
                assert obs.judgement is not None
                detail = (f"{self.judge_pauses} inconclusive judgements after the bake (limit "
                          f"{judge.inconclusive.limit}): {obs.judgement.reason}")
                return self._roll_back(RollbackCause.JUDGE_INCONCLUSIVE, detail=detail,
                                       automatic=judge.inconclusive.then == "rollback")
        return True

    def _bake_wait(self, step: Step) -> BakeWait:
        bake = step.bake
        judge_at = (None if step.judge is None
                    else self.bake_since_s + (self.judgements + 1) * step.judge.interval)
        return BakeWait(
            self.stage, self.step, self.bake_since_s, self.bake_since_s + bake.duration,
            tuple((api, float(n)) for api, n in bake.min_requests.items()), bake.min_datapoints,
            self.bake_since_s + _bake_limit_s(bake), judge_at,
        )

    def _next_batch_or_bake(self, now_s: float) -> Decision:
        step = self.plan.stages[self.stage].steps[self.step]
        if step.kind is StepKind.PREPROD and self.batch == 0:
            self.batch = 1
            return DeployBatch(self.stage, self.step, 0, (), step.batch_s)
        if self.batch < len(step.batches):
            b = self.batch
            self.batch += 1
            return DeployBatch(self.stage, self.step, b, tuple(step.batches[b].tolist()), step.batch_s)
        self.phase = Phase.BAKING
        self.bake_since_s = now_s
        self.judgements = self.judge_pauses = 0
        return self._bake_wait(step)

    def _blocker(self, now_s: float, obs: Observation) -> WaitBlocker | None:
        """What holds the current step of a production stage, or None if it may start now.

        Checked before the stage's first step, and before every later step unless the policy's
        `blockers.check` is `stage_start`. While a later step waits, the step before it (already
        deployed) stays watched."""
        stage = self.plan.stages[self.stage]
        if stage.kind is not StageKind.PRODUCTION:
            return None
        blockers = self.plan.policy.blockers
        if self.step > 0 and blockers.check == "stage_start":
            return None
        watch_step = self.step - 1 if self.step > 0 else None
        opens = self.calendar.next_allowed_s(now_s, self._stage_regions(self.stage))
        if opens > now_s:
            return WaitBlocker(self.stage, opens, BlockReason.TIME_WINDOW, watch_step)
        if blockers.incidents and obs.incident:
            return WaitBlocker(self.stage, now_s + blockers.recheck, BlockReason.INCIDENT, watch_step)
        return None

    def _start_step(self, now_s: float, obs: Observation) -> Decision:
        """Start the current step (its first batch) unless a blocker holds it."""
        blocked = self._blocker(now_s, obs)
        if blocked is not None:
            self.phase = Phase.GATED if self.step > 0 else Phase.ENTERED
            return blocked
        self.phase = Phase.DEPLOYING
        step = self.plan.stages[self.stage].steps[self.step]
        if step.judge is not None and step.judge.baseline_kind == "deploy" and not self.baseline_up:
            # The baseline is deployed with the canary, as Kayenta and Argo's baseline-vs-canary pattern has it.
            self.baseline_up = True
            return DeployBaseline(self.stage, self.step, int(step.hosts.size))
        return self._next_batch_or_bake(now_s)

    def _advance(self, now_s: float, obs: Observation) -> Decision:
        stage = self.plan.stages[self.stage]
        if self.step + 1 < len(stage.steps):
            self.step += 1
            self.batch = 0
            return self._start_step(now_s, obs)
        if self.stage + 1 < len(self.plan.stages):
            self.stage += 1
            self.step, self.batch = 0, 0
            self.phase = Phase.ENTERED
            return EnterStage(self.stage)
        self.phase = Phase.DONE
        return Complete()


def new_controller(plan: PipelinePlan, scenario: Scenario, epoch: dt.datetime) -> RolloutController:
    """A controller for one version of `plan`, on a clock whose 0 s is `epoch` (the scenario's
    start in the simulator, the Unix epoch in the real executor)."""
    return RolloutController(plan, Calendar(plan.policy.blockers, epoch), region_calendars(scenario))
