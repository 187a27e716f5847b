"""What the one brain says and hears: typed, frozen decisions and the observations that answer them.

Every decision is a hashable value object that says everything a body needs to carry it out
(a rollback's scope, whether it is automatic, and how long it takes included), so the simulator and
the real executor never decide anything themselves, and two runs can be compared decision by
decision.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..judge.verdict import Judgement


class Word(str, enum.Enum):
    """An enum whose members are words: they print, format and serialise as their value."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


class Phase(Word):
    """Where the controller is in one version's rollout."""

    START = "start"
    ENTERED = "entered"  # holds a stage, not yet deploying (blockers are checked here)
    AWAITING = "awaiting"  # holds a stage whose approval a person has not given yet
    GATED = "gated"  # a step after the stage's first is next; its blockers are checked here
    DEPLOYING = "deploying"
    BAKING = "baking"
    RELEASING = "releasing"  # the bake is over; the step's baseline hosts are being removed
    DONE = "done"
    FAILED = "failed"


class StageKind(Word):
    PREPRODUCTION = "preproduction"
    PRODUCTION = "production"


class StepKind(Word):
    PREPROD = "preprod"  # a pre-production run: deploy and test, then bake
    ONE_BOX = "one_box"
    WAVE = "wave"


class WatchScope(Word):
    """Which hosts a watched alarm is evaluated over."""

    ONE_BOX = "one_box"
    WAVE = "wave"
    REGION = "region"


class BlockReason(Word):
    """Why a stage's next step may not start yet."""

    TIME_WINDOW = "time_window"  # outside the allowed hours, on a holiday, or in a freeze
    INCIDENT = "incident"  # an infrastructure fault or the incident alarm is active in its regions


class FailReason(Word):
    """Why a version stopped without reaching production."""

    PREPROD_CAUGHT = "caught in pre-production"
    ALREADY_FAILED = "already failed"


class RollbackCause(Word):
    """What started a rollback."""

    ALARM = "alarm"  # a watched alarm went into ALARM during a deploy or bake
    OPERATOR = "operator"  # a person asked for it
    DEPLOY_FAILED = "deploy_failed"  # a batch's deploy failed on a target (the real executor's adapters)
    NOT_APPROVED = "not_approved"  # a stage's manual approval was not given before its timeout
    JUDGE_FAILED = "judge_failed"  # the step's canary judge said FAIL
    JUDGE_INCONCLUSIVE = "judge_inconclusive"  # the judge stayed inconclusive past its pause limit


class RollbackScope(Word):
    """Which hosts a rollback reverts."""

    EVERYWHERE = "everywhere"  # every host running the version
    STAGE = "stage"  # only the hosts of the stage that alarmed


@dataclass(frozen=True)
class Observation:
    """What the driver saw since the last decision."""

    alarm: str | None = None  # a watched alarm in ALARM ("name@scope"), None if all OK
    incident: bool = False  # an incident is active in the regions of the stage (or step) about to start
    preprod_failed: bool = False  # pre-production tests caught the version
    requests_seen: Mapping[str, float] = field(default_factory=dict)  # per API (and "All") since the bake began
    datapoints_seen: int = 0  # metric periods completed since the bake began
    deploy_failed: str | None = None  # a deploy of the batch failed (what failed), None if all succeeded
    approved: bool = False  # the stage awaiting approval was approved
    promoted: bool = False  # an operator ended the bake in progress early (`deploysim promote`)
    abort: str | None = None  # an operator asked to roll back (who and why; `deploysim abort`)
    judgement: Judgement | None = None  # the step's canary judge judged at the bake's `judge_at_s`


@dataclass(frozen=True)
class EnterStage:
    """Queue for stage `stage` and hold it; the next decision checks its blockers."""

    stage: int


@dataclass(frozen=True)
class WaitBlocker:
    """Start nothing until `until_s`, then observe incidents again: a blocker holds the stage's next step.

    `watch_step` is the step already deployed (the one before the blocked step) whose alarms are
    still watched while waiting, so a defect that shows during the wait rolls back; None when the
    stage's first step is blocked and the stage has deployed nothing."""

    stage: int
    until_s: float
    reason: BlockReason
    watch_step: int | None = None


@dataclass(frozen=True)
class WaitApproval:
    """Start nothing in stage `stage` until a person approves it; no approval by `until_s` rolls
    the version back. The simulator approves after the stage's `approval.wait`."""

    stage: int
    until_s: float


@dataclass(frozen=True)
class DeployBatch:
    """Deploy the version to `hosts` (indices in the fleet layout); it takes at least `duration_s`.

    A pre-production step has no hosts: it runs its tests for `duration_s`."""

    stage: int
    step: int
    batch: int
    hosts: tuple[int, ...]
    duration_s: float


@dataclass(frozen=True)
class BakeWait:
    """Bake the step: wait until its duration has passed and its minimum data has been seen
    (or `deadline_s` passes), watching its alarms."""

    stage: int
    step: int
    since_s: float
    min_until_s: float  # the bake's duration ends here
    min_requests: tuple[tuple[str, float], ...]  # (API or "All", requests) pairs
    min_datapoints: int
    deadline_s: float  # stop waiting for data here
    judge_at_s: float | None = None  # the step's canary judge judges the data so far here (None: no judge)

    @property
    def min_requests_by_api(self) -> dict[str, float]:
        return dict(self.min_requests)


@dataclass(frozen=True)
class DeployBaseline:
    """Deploy the old version to `size` fresh hosts beside step `step`'s canary: its judge's baseline
    (`baseline: deploy`), kept until the bake is over (`RemoveBaseline`) or the version rolls back."""

    stage: int
    step: int
    size: int


@dataclass(frozen=True)
class RemoveBaseline:
    """The step's bake is over: remove its baseline hosts (they cost host-hours while they run)."""

    stage: int
    step: int


@dataclass(frozen=True)
class RollBack:
    """Revert the version on `hosts` (None: every host running it).

    `automatic` rollbacks start at once and revert the hosts in batches of at most `batch_share` of
    them (spread over AZs, like a deployment's), each taking `duration_s`; a manual one (automatic
    rollback is off) pages people, who halt the rollout and revert when they act.
    """

    stage: int
    step: int
    cause: RollbackCause
    scope: RollbackScope
    hosts: tuple[int, ...] | None
    automatic: bool
    duration_s: float
    alarm: str | None = None  # the alarm ("name@scope") for cause ALARM
    detail: str = ""  # for cause OPERATOR: who asked and why; for DEPLOY_FAILED: what failed
    batch_share: float = 1.0  # largest share of the hosts to revert that one batch reverts

    @property
    def reason(self) -> str:
        """One line for people: what started the rollback."""
        if self.cause is RollbackCause.ALARM:
            return f"alarm {self.alarm}"
        if self.cause is RollbackCause.DEPLOY_FAILED:
            return f"deploy failed: {self.detail}"
        if self.cause is RollbackCause.NOT_APPROVED:
            return f"not approved: {self.detail}"
        if self.cause is RollbackCause.JUDGE_FAILED:
            return f"canary judge failed: {self.detail}"
        if self.cause is RollbackCause.JUDGE_INCONCLUSIVE:
            return f"canary judge inconclusive: {self.detail}"
        return f"operator asked{': ' + self.detail if self.detail else ''}"


@dataclass(frozen=True)
class Fail:
    """The version stops here without reaching production (pre-production caught it)."""

    stage: int
    reason: FailReason


@dataclass(frozen=True)
class Complete:
    """The version runs on every host of every stage."""


Decision = (EnterStage | WaitBlocker | WaitApproval | DeployBatch | DeployBaseline | BakeWait | RemoveBaseline
            | RollBack | Fail | Complete)
FINAL_DECISIONS = (RollBack, Fail, Complete)
"""Decisions after which the controller has nothing more to say about the version."""


DecisionRow = tuple[str, object, str, int | None, int | None, int | None]


def decision_row(pipeline: str, version: object, decision: Decision) -> DecisionRow:
    """A decision as (pipeline, version, kind, stage, step, batch): what the simulator and the real
    executor both record, so one policy driven by both can be compared decision by decision."""
    return (pipeline, version, type(decision).__name__, getattr(decision, "stage", None),
            getattr(decision, "step", None), getattr(decision, "batch", None))
