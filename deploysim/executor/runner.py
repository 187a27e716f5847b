"""Where the executor's entry points were before it was split by responsibility; kept so that
`from deploysim.executor.runner import Executor, load_rollout_files, ...` goes on working.

The code lives in `rollout` (inputs), `outcome` (how a run ends), `clock`, `actions` (journaled
adapter calls), `alarm_reader` (metrics and alarms), `recovery` (resuming) and `driver` (the
`Driver` of the one rollout loop, and `Executor`).
"""

from .clock import RealClock, StepClock
from .driver import Executor, ExecutorDriver
from .interfaces import Clock
from .outcome import (
    EXIT_BAD_INPUT, EXIT_COMPLETE, EXIT_FAILED, EXIT_INTERRUPTED, FINAL_STATUSES, Halt, RunOutcome, Stopped,
)
from .rollout import (
    UNIX_EPOCH_UTC, Rollout, check_version, load_rollout, load_rollout_files, new_controller, rollout_from_meta,
    rollout_meta,
)

__all__ = [
    "EXIT_BAD_INPUT", "EXIT_COMPLETE", "EXIT_FAILED", "EXIT_INTERRUPTED", "FINAL_STATUSES", "UNIX_EPOCH_UTC",
    "Clock", "Executor", "ExecutorDriver", "Halt", "RealClock", "Rollout", "RunOutcome", "StepClock", "Stopped",
    "check_version", "load_rollout", "load_rollout_files", "new_controller", "rollout_from_meta", "rollout_meta",
]
