"""Argo Rollouts-style analysis of one metric: conditions on each measurement, limits on the counts.

Each measurement is Successful, Failed, Inconclusive or Error. After each one the metric is assessed
as Argo does: failed > failureLimit -> Failed; inconclusive > inconclusiveLimit -> Inconclusive;
consecutive errors > consecutiveErrorLimit -> Error (later checks win); otherwise Successful once
`count` measurements are taken, else Running.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum

from deploysim.judge.condition import ConditionError, Node, ResultValue, parse_condition
from deploysim.judge.verdict import Judgement, Verdict


class Phase(str, Enum):
    SUCCESSFUL = "Successful"
    FAILED = "Failed"
    INCONCLUSIVE = "Inconclusive"
    ERROR = "Error"
    RUNNING = "Running"


_VERDICT = {Phase.SUCCESSFUL: Verdict.PASS, Phase.FAILED: Verdict.FAIL, Phase.ERROR: Verdict.FAIL,
            Phase.INCONCLUSIVE: Verdict.INCONCLUSIVE, Phase.RUNNING: Verdict.RUNNING}


@dataclass(frozen=True)
class Measurement:
    """One measurement: a value (a number or a list such as a Prometheus vector) or a provider error."""

    value: ResultValue | None = None
    error: str | None = None


@dataclass(frozen=True)
class ArgoMetric:
    """An Argo AnalysisTemplate metric; see docs/canary-judge.md for each field and its default."""

    name: str
    success_condition: str | None = None
    failure_condition: str | None = None
    interval_seconds: float | None = None
    count: int | None = None
    failure_limit: int = 0
    inconclusive_limit: int = 0
    consecutive_error_limit: int = 4
    _success: Node | None = field(init=False, repr=False, compare=False, default=None)
    _failure: Node | None = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        if min(self.failure_limit, self.inconclusive_limit, self.consecutive_error_limit) < 0:
            raise ValueError(f"{self.name}: limits must be >= 0")
        if self.count is not None and self.count < 1:
            raise ValueError(f"{self.name}: count must be >= 1, got {self.count}")
        if self.interval_seconds is not None and self.interval_seconds <= 0:
            raise ValueError(f"{self.name}: interval must be > 0, got {self.interval_seconds}")
        success = parse_condition(self.success_condition) if self.success_condition else None
        failure = parse_condition(self.failure_condition) if self.failure_condition else None
        object.__setattr__(self, "_success", success)
        object.__setattr__(self, "_failure", failure)

    @property
    def effective_count(self) -> int | None:
        """`count`, else 1 for a metric without an interval, else None (measure until stopped)."""
        if self.count is not None:
            return self.count
        return 1 if self.interval_seconds is None else None

    def phase_of(self, measurement: Measurement) -> Phase:
        """Argo's rule: failure wins; with both conditions and neither true, Inconclusive."""
        if measurement.error is not None or measurement.value is None:
            return Phase.ERROR
        try:
            failed = self._failure is not None and self._failure.evaluate(measurement.value)
            succeeded = self._success is not None and self._success.evaluate(measurement.value)
        except ConditionError:
            return Phase.ERROR
        if self._success is None:
            succeeded = not failed
        elif self._failure is None:
            failed = not succeeded
        if failed:
            return Phase.FAILED
        return Phase.SUCCESSFUL if succeeded else Phase.INCONCLUSIVE


@dataclass(frozen=True)
class ArgoAnalysis(Judgement):
    """Phase of the metric with Argo's counters after the measurements it used."""

    phase: Phase
    measurements: int
    successful: int
    failed: int
    inconclusive: int
    errors: int
    consecutive_errors: int
    phases: tuple[Phase, ...]


@dataclass
class _Counts:
    successful: int = 0
    failed: int = 0
    inconclusive: int = 0
    errors: int = 0
    consecutive_errors: int = 0

    def add(self, phase: Phase) -> None:
        self.consecutive_errors = self.consecutive_errors + 1 if phase is Phase.ERROR else 0
        self.errors += phase is Phase.ERROR
        self.failed += phase is Phase.FAILED
        self.inconclusive += phase is Phase.INCONCLUSIVE
        self.successful += phase is Phase.SUCCESSFUL


def assess(metric: ArgoMetric, counts: _Counts, taken: int) -> tuple[Phase, str]:
    """Assess the metric after `taken` measurements (Argo's order: later checks override earlier ones)."""
    phase, reason = Phase.RUNNING, f"{taken} measurements taken"
    if counts.failed > metric.failure_limit:
        phase, reason = Phase.FAILED, f"failed ({counts.failed}) > failureLimit ({metric.failure_limit})"
    if counts.inconclusive > metric.inconclusive_limit:
        phase, reason = Phase.INCONCLUSIVE, (f"inconclusive ({counts.inconclusive}) > "
                                             f"inconclusiveLimit ({metric.inconclusive_limit})")
    if counts.consecutive_errors > metric.consecutive_error_limit:
        phase, reason = Phase.ERROR, (f"consecutiveErrors ({counts.consecutive_errors}) > "
                                      f"consecutiveErrorLimit ({metric.consecutive_error_limit})")
    count = metric.effective_count
    if phase is Phase.RUNNING and count is not None and taken >= count:
        phase, reason = Phase.SUCCESSFUL, f"count ({count}) reached within the limits"
    return phase, reason


def argo_analysis(metric: ArgoMetric, measurements: Sequence[Measurement]) -> ArgoAnalysis:
    """Take the measurements in order and stop at the first completed phase (Argo stops measuring then)."""
    counts, phases = _Counts(), []
    phase, reason = Phase.RUNNING, "no measurement yet"
    for measurement in measurements:
        phases.append(metric.phase_of(measurement))
        counts.add(phases[-1])
        phase, reason = assess(metric, counts, len(phases))
        if phase is not Phase.RUNNING:
            break
    return ArgoAnalysis(verdict=_VERDICT[phase], reason=f"{metric.name}: {phase.value}: {reason}", phase=phase,
                        measurements=len(phases), successful=counts.successful, failed=counts.failed,
                        inconclusive=counts.inconclusive, errors=counts.errors,
                        consecutive_errors=counts.consecutive_errors, phases=tuple(phases))
