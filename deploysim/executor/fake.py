"""An in-memory fleet for trying the executor without touching anything: `FakeAdapter` keeps each
target's version in a dict (with scripted failures, hangs and unreachable targets), and
`FakeMetricSource` reports each target's metrics from the version it runs. With a `StepClock`, a
whole rollout with its bakes runs in milliseconds. Shipped for tests and for people writing their
own adapter, who can compare theirs with it (docs/executor.md, "Writing your own adapter").
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from ..scenario.schema import MetricAlarm
from .clock import StepClock
from .interfaces import ActionResult, Clock, SpawnListener, Target

__all__ = ["FakeAdapter", "FakeMetricSource", "StepClock"]


class FakeAdapter:
    """An adapter over a dict of target name -> version.

    `deploy` and `rollback` set the target's version (taking `action_s` on `clock`), unless a
    scripted failure or hang is due: `fail_next(name)` makes the target's next call fail with
    nothing changed, `hang_next(name)` makes it take its whole `timeout_s` and fail as timed out.
    A target in `unreachable` cannot tell its version; one in `unhealthy` fails its health check.
    `preprod_passes(stage, version)`, when
    given, is the pre-production tests' verdict; without it there are none. Every call is logged in
    `calls` as (kind, target, version). Thread-safe; it starts no processes.
    """

    def __init__(self, versions: Mapping[str, str], *, clock: Clock | None = None, action_s: float = 0.0,
                 preprod_passes: Callable[[str, str], bool] | None = None):
        self.versions: dict[str, str] = dict(versions)
        self.clock = clock if clock is not None else StepClock()
        self.action_s = action_s
        self.preprod_passes = preprod_passes
        self.unreachable: set[str] = set()
        self.unhealthy: set[str] = set()
        self.backoff_wait: Callable[[float], bool | None] | None = None  # kept; it does not retry
        self.calls: list[tuple[str, str, str]] = []
        self.weights: dict[tuple[str, str], float] = {}  # (stage, region) -> percent, from set_weight
        self.spawn_listener: SpawnListener | None = None
        self._fail: Counter[str] = Counter()
        self._hang: Counter[str] = Counter()
        self._lock = threading.Lock()

    def fail_next(self, name: str, times: int = 1) -> None:
        """The next `times` deploys or rollbacks of target `name` fail and change nothing."""
        with self._lock:
            self._fail[name] += times

    def hang_next(self, name: str, times: int = 1) -> None:
        """The next `times` deploys or rollbacks of target `name` hang until their time-out and change nothing."""
        with self._lock:
            self._hang[name] += times

    def _change(self, kind: str, target: Target, version: str, timeout_s: float) -> ActionResult:
        with self._lock:
            self.calls.append((kind, target.name, version))
            hang, fail = self._hang[target.name] > 0, self._fail[target.name] > 0
            if hang:
                self._hang[target.name] -= 1
            elif fail:
                self._fail[target.name] -= 1
        if target.name not in self.versions:
            return ActionResult(False, f"{target.name}: no such target")
        if hang:
            self.clock.sleep(timeout_s)
            return ActionResult(False, f"{kind} {target.name} {version}: timed out after {timeout_s:g}s")
        self.clock.sleep(self.action_s)
        if fail:
            return ActionResult(False, f"{kind} {target.name} {version}: failed (scripted)")
        with self._lock:
            self.versions[target.name] = version
        return ActionResult(True, f"{kind} {target.name} {version}: ok")

    def deploy(self, target: Target, version: str, *, timeout_s: float) -> ActionResult:
        return self._change("deploy", target, version, timeout_s)

    def rollback(self, target: Target, version: str, *, timeout_s: float) -> ActionResult:
        return self._change("rollback", target, version, timeout_s)

    def current_version(self, target: Target, *, timeout_s: float) -> str | None:
        with self._lock:
            self.calls.append(("current_version", target.name, ""))
            if target.name in self.unreachable:
                return None
            return self.versions.get(target.name)

    def healthy(self, target: Target, *, timeout_s: float) -> bool:
        with self._lock:
            self.calls.append(("healthy", target.name, ""))
            if target.name in self.unhealthy:
                return False
        return self.current_version(target, timeout_s=timeout_s) is not None

    def preprod(self, stage: str, version: str, *, timeout_s: float) -> ActionResult | None:
        if self.preprod_passes is None:
            return None
        with self._lock:
            self.calls.append(("preprod", stage, version))
        ok = bool(self.preprod_passes(stage, version))
        return ActionResult(ok, f"pre-production tests of {version} for {stage}: {'passed' if ok else 'failed'}")

    def set_weight(self, stage: str, region: str, weight_pct: float, version: str, *,
                   timeout_s: float) -> ActionResult | None:
        """A traffic router that only remembers: `weights[(stage, region)]`, each call logged in `calls`
        as ("set_weight", "stage/region", "weight")."""
        with self._lock:
            self.calls.append(("set_weight", f"{stage}/{region}", f"{weight_pct:g}"))
            self.weights[(stage, region)] = weight_pct
        return ActionResult(True, f"{region}: {weight_pct:g}% to {version}")

    def set_backoff_wait(self, wait: Callable[[float], bool | None] | None) -> None:
        self.backoff_wait = wait  # kept, never called: it does not retry

    def set_spawn_listener(self, listener: SpawnListener | None) -> None:
        self.spawn_listener = listener  # kept, never called: nothing is spawned


class FakeMetricSource:
    """Metrics of the targets of a `FakeAdapter`, from the version each runs *when asked* (there is
    no history: a datapoint of a past period shows the version the target runs now).

    `values[version][metric]` is a target's datapoint on a version (`default` for a metric a
    version does not list; None for a missing datapoint). The datapoint of a scope is the mean of
    its targets' (missing when all are), except metric `requests`, whose datapoint is the scope's
    request count: `requests_per_s` per target, times the period.
    """

    def __init__(self, adapter: FakeAdapter, values: Mapping[str, Mapping[str, float | None]] | None = None,
                 *, default: float | None = 0.0, requests_per_s: float = 10.0,
                 api_shares: Mapping[str, float] | None = None):
        self.adapter = adapter
        self.values = {v: dict(m) for v, m in (values or {}).items()}
        self.default = default
        self.requests_per_s = requests_per_s
        self.api_shares = dict(api_shares or {})

    def _value(self, target: Target, metric: str) -> float:
        version = self.adapter.versions.get(target.name)
        value = self.values.get(version or "", {}).get(metric, self.default)
        return math.nan if value is None else float(value)

    def datapoints(self, alarm: MetricAlarm, targets: Sequence[Target], start_s: float, end_s: float,
                   period_s: float) -> np.ndarray:
        n = max(0, int(math.floor((end_s - start_s) / period_s + 1e-9)))
        if alarm.metric == "requests":
            return np.full(n, self.requests_per_s * period_s * len(targets))
        per_target = [self._value(t, alarm.metric) for t in targets]
        seen = [v for v in per_target if not math.isnan(v)]
        return np.full(n, float(np.mean(seen)) if seen else math.nan)

    def requests(self, targets: Sequence[Target], start_s: float, end_s: float, api: str | None = None) -> float:
        share = 1.0 if api is None else self.api_shares.get(api, 0.0)
        return self.requests_per_s * max(0.0, end_s - start_s) * len(targets) * share
