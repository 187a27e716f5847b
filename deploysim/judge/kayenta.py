"""Score classified metrics into one canary verdict, after Kayenta's weighted-sum scorer.

Group score = passing metrics / metrics with data in the group (x 100). The canary score is the
weighted mean of the group scores over the groups that have data (weights normalised to 100), so a
group without data neither helps nor hurts. A critical metric that is High, Low or NodataFailMetric
fails the analysis whatever the score; too much missing data makes it inconclusive, never a pass.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from deploysim.judge.mann_whitney import Classification, MetricConfig, MetricResult, classify
from deploysim.judge.verdict import Judgement, Verdict

_FAILING = (Classification.HIGH, Classification.LOW, Classification.NODATA_FAIL)
_WITHOUT_DATA = (Classification.NODATA, Classification.ERROR)


@dataclass(frozen=True)
class ScoreConfig:
    """Thresholds and group weights of the scorer. See docs/canary-judge.md."""

    pass_threshold: float = 95.0
    marginal_threshold: float = 75.0
    group_weights: Mapping[str, float] = field(default_factory=dict)
    max_nodata_fraction: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 <= self.marginal_threshold <= self.pass_threshold <= 100.0:
            raise ValueError("thresholds must satisfy 0 <= marginal_threshold <= pass_threshold <= 100, "
                             f"got marginal {self.marginal_threshold}, pass {self.pass_threshold}")
        if any(weight < 0.0 for weight in self.group_weights.values()):
            raise ValueError(f"group weights must be >= 0, got {dict(self.group_weights)}")
        if not 0.0 < self.max_nodata_fraction <= 1.0:
            raise ValueError(f"max_nodata_fraction must be in (0, 1], got {self.max_nodata_fraction}")


@dataclass(frozen=True)
class GroupScore:
    """One metric group: its weight, its counts, and its score (None when no metric has data)."""

    name: str
    weight: float
    passed: int
    with_data: int
    without_data: int
    score: float | None


@dataclass(frozen=True)
class CanaryAnalysis(Judgement):
    """Outcome of a Kayenta-style analysis: Pass, Marginal, Fail or NoData, with the score behind it."""

    outcome: str
    score: float | None
    groups: tuple[GroupScore, ...]
    metrics: tuple[MetricResult, ...]
    critical_failures: tuple[str, ...]


def group_weights(groups: Sequence[str], configured: Mapping[str, float]) -> dict[str, float]:
    """Configured weights, with the remainder of 100 shared equally by groups without one (Kayenta's rule)."""
    unweighted = [name for name in groups if name not in configured]
    remainder = max(0.0, 100.0 - sum(configured.get(name, 0.0) for name in groups))
    share = remainder / len(unweighted) if unweighted else 0.0
    return {name: configured.get(name, share) for name in groups}


def score_group(name: str, weight: float, results: Sequence[MetricResult]) -> GroupScore:
    with_data = [r for r in results if r.classification not in _WITHOUT_DATA]
    passed = sum(r.classification is Classification.PASS for r in with_data)
    score = 100.0 * passed / len(with_data) if with_data else None
    return GroupScore(name=name, weight=weight, passed=passed, with_data=len(with_data),
                      without_data=len(results) - len(with_data), score=score)


def summary_score(groups: Sequence[GroupScore]) -> float | None:
    """Weighted mean of the group scores over the groups with data; None when none has data or weight."""
    scored = [g for g in groups if g.score is not None]
    total = sum(g.weight for g in scored)
    if total <= 0.0:
        return None
    return sum(g.weight * (g.score or 0.0) for g in scored) / total


def _analysis(verdict: Verdict, outcome: str, reason: str, score: float | None, groups: tuple[GroupScore, ...],
              results: Sequence[MetricResult], critical: tuple[str, ...]) -> CanaryAnalysis:
    return CanaryAnalysis(verdict=verdict, reason=reason, outcome=outcome, score=score, groups=groups,
                          metrics=tuple(results), critical_failures=critical)


def _by_threshold(score: float, config: ScoreConfig) -> tuple[Verdict, str, str]:
    if score >= config.pass_threshold:
        return Verdict.PASS, "Pass", f"score {score:.1f} >= pass threshold {config.pass_threshold:g}"
    if score >= config.marginal_threshold:
        return Verdict.INCONCLUSIVE, "Marginal", (f"score {score:.1f} is marginal: >= {config.marginal_threshold:g} "
                                                  f"but < pass threshold {config.pass_threshold:g}")
    return Verdict.FAIL, "Fail", f"score {score:.1f} < marginal threshold {config.marginal_threshold:g}"


def score_canary(results: Sequence[MetricResult], config: ScoreConfig | None = None) -> CanaryAnalysis:
    """Combine per-metric classifications into one verdict."""
    config = config or ScoreConfig()
    if not results:
        raise ValueError("score_canary needs at least one metric result")
    names = list(dict.fromkeys(r.group for r in results))
    weights = group_weights(names, config.group_weights)
    groups = tuple(score_group(n, weights[n], [r for r in results if r.group == n]) for n in names)
    score = summary_score(groups)
    critical = tuple(r.name for r in results if r.critical and r.classification in _FAILING)
    if critical:
        return _analysis(Verdict.FAIL, "Fail", f"critical metric failed: {', '.join(critical)}", score, groups,
                         results, critical)
    missing = [r.name for r in results if r.classification in _WITHOUT_DATA]
    if len(missing) >= config.max_nodata_fraction * len(results) or score is None:
        return _analysis(Verdict.INCONCLUSIVE, "NoData", f"{len(missing)} of {len(results)} metrics without data "
                         f"({', '.join(missing)})", score, groups, results, critical)
    critical_missing = [r.name for r in results if r.critical and r.classification in _WITHOUT_DATA]
    if critical_missing:
        return _analysis(Verdict.INCONCLUSIVE, "NoData", f"critical metric without data: "
                         f"{', '.join(critical_missing)}", score, groups, results, critical)
    verdict, outcome, reason = _by_threshold(score, config)
    return _analysis(verdict, outcome, reason, score, groups, results, critical)


def judge_canary(baseline: Mapping[str, Sequence[float]], canary: Mapping[str, Sequence[float]],
                 metrics: Sequence[MetricConfig], config: ScoreConfig | None = None) -> CanaryAnalysis:
    """Classify every metric (missing series count as empty) and score the canary."""
    results = [classify(baseline.get(m.name, ()), canary.get(m.name, ()), m) for m in metrics]
    return score_canary(results, config)
