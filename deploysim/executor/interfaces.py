"""The three small seams the real executor drives: an adapter that changes targets, a metric source
that reads their metrics, and a clock. Everything the executor does to the outside world goes
through them; everything else in the executor is shared with the simulator.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from ..scenario.schema import MetricAlarm


@dataclass(frozen=True)
class Target:
    """One real host: the policy's host (by its layout index and name) and where it really is."""

    host: int  # index in the scenario's FleetLayout
    name: str  # e.g. "us-east-1-az1-c1-h1"
    region: str
    az: str
    cell: str
    address: str = ""  # adapter-specific: "127.0.0.1:8101", a k8s pod, an ansible host ...
    labels: Mapping[str, str] = field(default_factory=dict)  # free-form, filled into commands and queries


@dataclass(frozen=True)
class ActionResult:
    """What an adapter call really did; `ok` only when success was seen."""

    ok: bool
    detail: str = ""  # captured output or the error, kept in the journal
    attempts: int = 1


SpawnListener = Callable[[int], None]
"""Told the process group id of every command an adapter starts, in the thread that started it."""


BackoffWait = Callable[[float], "bool | None"]
"""Waits a retry's back-off in the thread that retries; True: give up at once (the run is stopping)."""


class Adapter(Protocol):
    """Deploys targets; every call is synchronous, bounded by `timeout_s`, and safe to repeat.

    The executor may call `deploy`, `rollback` and `current_version` from several threads at once
    (the inventory's `parallel`).
    """

    def deploy(self, target: Target, version: str, *, timeout_s: float) -> ActionResult: ...

    def rollback(self, target: Target, version: str, *, timeout_s: float) -> ActionResult:
        """Put `target` back on `version` (the version it ran before the rollout)."""
        ...

    def current_version(self, target: Target, *, timeout_s: float) -> str | None:
        """The version the target runs now, None if it cannot be told (unreachable)."""
        ...

    def healthy(self, target: Target, *, timeout_s: float) -> bool: ...

    def preprod(self, stage: str, version: str, *, timeout_s: float) -> ActionResult | None:
        """Run the pre-production tests of `version` for pre-production stage `stage`; None when the
        adapter has none to run (it ran nothing, and the stage only waits its duration)."""
        ...

    def set_backoff_wait(self, wait: BackoffWait | None) -> None:
        """Wait the back-off between a call's attempts with `wait(seconds)`, in the calling thread,
        and make no further attempt once it returns True (Ctrl-C or SIGTERM: the executor stops at
        once instead of retrying; never during a rollback). None: plain sleeps. An adapter that does
        not retry keeps it and never calls it; one without this method is not told (its retries then
        run to their end before a stop is noticed)."""
        ...

    def set_spawn_listener(self, listener: SpawnListener | None) -> None:
        """Call `listener` with the process group id of every process a later call starts (None:
        stop telling), so that after a crash the executor can wait for or end what is still running.
        An adapter that starts no processes keeps the listener and never calls it."""
        ...


class WeightAdapter(Protocol):
    """An adapter that can also split a region's requests by weight (a traffic router: a service
    mesh, a load balancer's weighted target groups, a Lambda alias). Optional: the executor calls
    `set_weight` only on an adapter that has it; without it, a traffic step's weight is what its
    whole hosts serve (as Argo Rollouts without a traffic router)."""

    def set_weight(self, stage: str, region: str, weight_pct: float, version: str, *,
                   timeout_s: float) -> ActionResult | None:
        """Send `weight_pct` percent of `region`'s requests (in production stage `stage`) to the hosts
        running `version`, the rest to the others; None when the adapter has no router (it did nothing)."""
        ...


class MetricSource(Protocol):
    """Reads real metrics as alarm datapoints: one value per period, NaN where there is no data."""

    def datapoints(self, alarm: MetricAlarm, targets: Sequence[Target], start_s: float, end_s: float,
                   period_s: float) -> np.ndarray:
        """Values of `alarm.metric` (statistic, api and dependency as the alarm says) over `targets`,
        one per whole period in [start_s, end_s) in Unix seconds."""
        ...

    def requests(self, targets: Sequence[Target], start_s: float, end_s: float,
                 api: str | None = None) -> float:
        """Requests the targets served in [start_s, end_s) (one API, or all when None)."""
        ...


class Clock(Protocol):
    """Where the executor's time comes from: the real clock (`RealClock`), or a clock that moves only
    when it is slept on (`StepClock`, for tests and for trying an adapter out)."""

    def now(self) -> float:
        """Unix seconds."""
        ...

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> bool:
        """Let `seconds` pass, returning early once `stop` is set (Ctrl-C); True if `stop` is set."""
        ...
