"""The real executor: the policy the simulator ran, applied to a real rollout.

It drives the same `RolloutController` as the simulator with the real clock, an adapter that
deploys targets (`command`, or `local` for the local fleet) and a metric source (Prometheus,
HTTP probes or a command), journaling every step in SQLite so a crash or Ctrl-C can be resumed.
"""

from .interfaces import ActionResult, Adapter, MetricSource, Target
from .inventory import Inventory, InventoryError, load_inventory
from .journal import Journal
from .runner import Clock, Executor, RealClock, Rollout, RunOutcome, load_rollout_files

__all__ = [
    "ActionResult",
    "Adapter",
    "Clock",
    "Executor",
    "Inventory",
    "InventoryError",
    "Journal",
    "MetricSource",
    "RealClock",
    "Rollout",
    "RunOutcome",
    "Target",
    "load_inventory",
    "load_rollout_files",
]
