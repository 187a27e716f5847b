"""The deployment policy made executable: plans, blockers, typed decisions, the rollout controller
(the one brain) and the one loop that drives it."""

from .blockers import Calendar, RegionCalendar, region_calendars
from .controller import RolloutController, new_controller
from .decisions import (
    BakeWait,
    BlockReason,
    Complete,
    Decision,
    DeployBatch,
    EnterStage,
    Fail,
    FailReason,
    Observation,
    Phase,
    RollBack,
    RollbackCause,
    RollbackScope,
    StageKind,
    StepKind,
    WaitApproval,
    WaitBlocker,
    WatchScope,
    decision_row,
)
from .drive import Driver, drive, run_to_end
from .plan import PipelinePlan, StagePlan, Step, WatchedAlarm, build_plan

__all__ = [
    "BakeWait",
    "BlockReason",
    "Calendar",
    "Complete",
    "Decision",
    "DeployBatch",
    "Driver",
    "EnterStage",
    "Fail",
    "FailReason",
    "Observation",
    "Phase",
    "PipelinePlan",
    "RegionCalendar",
    "RollBack",
    "RollbackCause",
    "RollbackScope",
    "RolloutController",
    "StageKind",
    "StagePlan",
    "Step",
    "StepKind",
    "WaitApproval",
    "WaitBlocker",
    "WatchScope",
    "WatchedAlarm",
    "build_plan",
    "decision_row",
    "drive",
    "new_controller",
    "region_calendars",
    "run_to_end",
]
