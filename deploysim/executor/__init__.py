"""The real executor: the policy the simulator ran, applied to a real rollout.

It drives the same `RolloutController` as the simulator, through the same rollout loop
(`deploysim.policy.drive`), with a clock, an adapter that deploys targets (`command`, `local` for
the local fleet, or your own) and a metric source (Prometheus, HTTP probes or a command),
journaling every step in SQLite so a crash or Ctrl-C can be resumed. `FakeAdapter`,
`FakeMetricSource` and `StepClock` run it in memory, for tests and for trying an adapter out.
"""

from .clock import RealClock, StepClock
from .driver import Executor
from .fake import FakeAdapter, FakeMetricSource
from .interfaces import ActionResult, Adapter, Clock, MetricSource, Target
from .inventory import Inventory, InventoryError, load_inventory
from .journal import Journal
from .outcome import RunOutcome
from .rollout import Rollout, load_rollout, load_rollout_files

__all__ = [
    "ActionResult",
    "Adapter",
    "Clock",
    "Executor",
    "FakeAdapter",
    "FakeMetricSource",
    "Inventory",
    "InventoryError",
    "Journal",
    "MetricSource",
    "RealClock",
    "Rollout",
    "RunOutcome",
    "StepClock",
    "Target",
    "load_inventory",
    "load_rollout",
    "load_rollout_files",
]
