"""The two small interfaces the real executor drives: an adapter that changes targets, and a
metric source that reads their metrics. Everything else in the executor is shared with the simulator.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional, Protocol, Sequence

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


class Adapter(Protocol):
    """Deploys targets; every call is synchronous, bounded by `timeout_s`, and safe to repeat."""

    def deploy(self, target: Target, version: str, *, timeout_s: float) -> ActionResult: ...

    def rollback(self, target: Target, version: str, *, timeout_s: float) -> ActionResult:
        """Put `target` back on `version` (the version it ran before the rollout)."""
        ...

    def current_version(self, target: Target, *, timeout_s: float) -> Optional[str]:
        """The version the target runs now, None if it cannot be told (unreachable)."""
        ...

    def healthy(self, target: Target, *, timeout_s: float) -> bool: ...


class MetricSource(Protocol):
    """Reads real metrics as alarm datapoints: one value per period, NaN where there is no data."""

    def datapoints(self, alarm: MetricAlarm, targets: Sequence[Target], start_s: float, end_s: float,
                   period_s: float) -> np.ndarray:
        """Values of `alarm.metric` (statistic, api and dependency as the alarm says) over `targets`,
        one per whole period in [start_s, end_s) in Unix seconds."""
        ...

    def requests(self, targets: Sequence[Target], start_s: float, end_s: float,
                 api: Optional[str] = None) -> float:
        """Requests the targets served in [start_s, end_s) (one API, or all when None)."""
        ...
