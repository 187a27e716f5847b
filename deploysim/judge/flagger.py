"""Flagger-style threshold analysis: per interval every metric must lie in its `thresholdRange`.

Each interval in which any metric is outside its range (or has no value) is one failed check; the
analysis fails when the failed checks reach `threshold` and passes after `iterations` intervals in
which every check passed. Failed checks are never reset by later good intervals, as in Flagger.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from deploysim.judge.verdict import Judgement, Verdict


@dataclass(frozen=True)
class ThresholdRange:
    """Inclusive bounds for a metric value; a missing bound is unbounded."""

    min: float | None = None
    max: float | None = None

    def __post_init__(self) -> None:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"thresholdRange min {self.min} is above max {self.max}")

    def contains(self, value: float) -> bool:
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)


@dataclass(frozen=True)
class FlaggerMetric:
    name: str
    threshold_range: ThresholdRange


@dataclass(frozen=True)
class FlaggerConfig:
    """`threshold`: failed checks that fail the analysis; `iterations`: passing intervals that pass it."""

    metrics: tuple[FlaggerMetric, ...]
    threshold: int
    iterations: int

    def __post_init__(self) -> None:
        if not self.metrics:
            raise ValueError("a Flagger analysis needs at least one metric")
        if self.threshold < 1 or self.iterations < 1:
            raise ValueError(f"threshold and iterations must be >= 1, got {self.threshold} and {self.iterations}")


@dataclass(frozen=True)
class FlaggerAnalysis(Judgement):
    """Counts after the intervals seen; `decided_at` is the 1-based interval of a pass or fail."""

    failed_checks: int
    passed_intervals: int
    intervals_seen: int
    decided_at: int | None


def check_interval(values: Mapping[str, float | None], metrics: Sequence[FlaggerMetric]) -> list[str]:
    """The problems of one interval: metrics without a value or outside their range."""
    problems = []
    for metric in metrics:
        value = values.get(metric.name)
        if value is None or math.isnan(value):
            problems.append(f"{metric.name} has no value")
        elif not metric.threshold_range.contains(value):
            bounds = metric.threshold_range
            problems.append(f"{metric.name} {value:g} outside [{bounds.min}, {bounds.max}]")
    return problems


def flagger_analysis(intervals: Sequence[Mapping[str, float | None]], config: FlaggerConfig) -> FlaggerAnalysis:
    """Run the checks interval by interval until the analysis is decided or the intervals run out."""
    failed = passed = 0
    for number, values in enumerate(intervals, start=1):
        problems = check_interval(values, config.metrics)
        if problems:
            failed += 1
            if failed >= config.threshold:
                reason = (f"failed checks {failed} reached threshold {config.threshold} at interval {number}: "
                          f"{'; '.join(problems)}")
                return FlaggerAnalysis(Verdict.FAIL, reason, failed, passed, number, number)
        else:
            passed += 1
            if passed >= config.iterations:
                reason = f"{passed} intervals passed all checks ({failed} failed checks < threshold {config.threshold})"
                return FlaggerAnalysis(Verdict.PASS, reason, failed, passed, number, number)
    reason = (f"running: {passed} of {config.iterations} passing intervals, "
              f"{failed} failed checks of threshold {config.threshold}")
    return FlaggerAnalysis(Verdict.RUNNING, reason, failed, passed, len(intervals), None)
