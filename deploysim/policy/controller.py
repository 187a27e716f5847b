"""The one brain: decides what one version's rollout does next (enter a stage, wait on a blocker,
deploy a batch, bake, roll back, finish).

It is a pure state machine over a plan and observations. The simulator drives it with SimPy's
clock and computed metrics; the real executor drives it with the wall clock and real adapters.
Both call `decide(now_s, observation)` and carry out the returned decision.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional, Union

import numpy as np

from .blockers import Calendar, RegionCalendar
from .plan import PipelinePlan, Step

DEFAULT_BAKE_LIMIT_S = 7 * 86400.0


@dataclass(frozen=True)
class Observation:
    """What the driver saw since the last decision."""

    alarm: Optional[str] = None  # a watched alarm in ALARM ("name@scope"), None if all OK
    incident: bool = False  # an incident is active in the regions of the stage about to start
    preprod_failed: bool = False  # pre-production tests caught the version
    requests_seen: Mapping[str, float] = field(default_factory=dict)  # per API (and "All") since the bake began
    datapoints_seen: int = 0  # metric periods completed since the bake began


@dataclass(frozen=True)
class EnterStage:
    stage: int


@dataclass(frozen=True)
class WaitBlocker:
    until_s: float
    reason: str  # "time_window" | "incident"


@dataclass(frozen=True)
class DeployBatch:
    stage: int
    step: int
    batch: int
    hosts: np.ndarray
    duration_s: float


@dataclass(frozen=True)
class BakeWait:
    stage: int
    step: int
    since_s: float
    min_until_s: float  # the bake's duration ends here
    min_requests: Mapping[str, float]
    min_datapoints: int
    deadline_s: float  # stop waiting for data here


@dataclass(frozen=True)
class RollBack:
    stage: int
    step: int
    reason: str


@dataclass(frozen=True)
class Fail:
    stage: int
    reason: str


@dataclass(frozen=True)
class Complete:
    pass


def _bake_limit_s(bake) -> float:
    """How long a bake waits for its minimum data before it gives up and lets the rollout go on."""
    return bake.max_duration if bake.max_duration is not None else max(DEFAULT_BAKE_LIMIT_S, bake.duration)


Decision = Union[EnterStage, WaitBlocker, DeployBatch, BakeWait, RollBack, Fail, Complete]


class RolloutController:
    """Walks a version through its pipeline plan, one decision at a time."""

    def __init__(self, plan: PipelinePlan, calendar: Calendar, regions: list[RegionCalendar]):
        self.plan = plan
        self.calendar = calendar
        self.regions = regions  # indexed like the fleet's regions
        self.stage = -1  # stage the version holds; -1 before the first
        self.step = 0
        self.batch = 0  # next batch to deploy in the current step
        self.phase = "start"  # start | entered | deploying | baking | done | failed
        self.bake_since_s = 0.0

    def snapshot(self) -> dict:
        """The controller's state as plain data, so a real executor can journal it and resume."""
        return {"stage": self.stage, "step": self.step, "batch": self.batch, "phase": self.phase,
                "bake_since_s": self.bake_since_s}

    def restore(self, state: Mapping) -> None:
        """Continue from a `snapshot()` (same plan): the next `decide` picks up where it left off."""
        self.stage, self.step, self.batch = int(state["stage"]), int(state["step"]), int(state["batch"])
        self.phase = str(state["phase"])
        self.bake_since_s = float(state["bake_since_s"])

    @property
    def current_step(self) -> Optional[Step]:
        if 0 <= self.stage < len(self.plan.stages):
            return self.plan.stages[self.stage].steps[self.step]
        return None

    def _stage_regions(self, stage: int) -> list[RegionCalendar]:
        return [self.regions[r] for r in self.plan.stages[stage].regions]

    def decide(self, now_s: float, obs: Observation = Observation()) -> Decision:
        """The next thing to do; call again after carrying it out (or when something changed)."""
        if self.phase in ("done", "failed"):
            return Complete() if self.phase == "done" else Fail(self.stage, "already failed")
        if self.phase in ("deploying", "baking") and obs.alarm is not None:
            self.phase = "failed"
            return RollBack(self.stage, self.step, f"alarm {obs.alarm}")

        if self.phase == "start":
            self.phase = "entered"
            self.stage = 0
            return EnterStage(0)

        if self.phase == "entered":
            stage = self.plan.stages[self.stage]
            if stage.kind == "production":
                blockers = self.plan.policy.blockers
                opens = self.calendar.next_allowed_s(now_s, self._stage_regions(self.stage))
                if opens > now_s:
                    return WaitBlocker(opens, "time_window")
                if blockers.incidents and obs.incident:
                    return WaitBlocker(now_s + blockers.recheck, "incident")
            self.phase = "deploying"
            self.step, self.batch = 0, 0
            return self._next_batch_or_bake(now_s)

        if self.phase == "deploying":
            return self._next_batch_or_bake(now_s)

        if self.phase == "baking":
            step = self.current_step
            bake = step.bake
            deadline = self.bake_since_s + _bake_limit_s(bake)
            enough_time = now_s >= self.bake_since_s + bake.duration
            enough_data = obs.datapoints_seen >= bake.min_datapoints and all(
                obs.requests_seen.get(api, 0.0) >= n for api, n in bake.min_requests.items()
            )
            if not (enough_time and (enough_data or now_s >= deadline)):
                return self._bake_wait(step)
            if step.kind == "preprod" and self.stage == self.plan.last_preprod_stage and obs.preprod_failed:
                self.phase = "failed"
                return Fail(self.stage, "caught in pre-production")
            return self._advance(now_s)

        raise RuntimeError(f"unknown phase {self.phase}")

    def _bake_wait(self, step: Step) -> BakeWait:
        bake = step.bake
        return BakeWait(
            self.stage, self.step, self.bake_since_s, self.bake_since_s + bake.duration,
            dict(bake.min_requests), bake.min_datapoints, self.bake_since_s + _bake_limit_s(bake),
        )

    def _next_batch_or_bake(self, now_s: float) -> Decision:
        step = self.current_step
        if step.kind == "preprod" and self.batch == 0:
            self.batch = 1
            return DeployBatch(self.stage, self.step, 0, step.hosts, step.batch_s)
        if self.batch < len(step.batches):
            b = self.batch
            self.batch += 1
            return DeployBatch(self.stage, self.step, b, step.batches[b], step.batch_s)
        self.phase = "baking"
        self.bake_since_s = now_s
        return self._bake_wait(step)

    def _advance(self, now_s: float) -> Decision:
        stage = self.plan.stages[self.stage]
        if self.step + 1 < len(stage.steps):
            self.step += 1
            self.batch = 0
            self.phase = "deploying"
            return self._next_batch_or_bake(now_s)
        if self.stage + 1 < len(self.plan.stages):
            self.stage += 1
            self.step, self.batch = 0, 0
            self.phase = "entered"
            return EnterStage(self.stage)
        self.phase = "done"
        return Complete()
