"""A step's canary judge applied to datapoints: the one function both bodies call.

The simulator reads the canary's and the baseline's per-period datapoints from its metric model, the
real executor from its metric source; both hand them here, as arrays over the periods of the bake so
far (NaN: a missing datapoint), and get the same `Judgement` for the same numbers.

- kayenta: every metric's datapoints are classified against the baseline's (Mann-Whitney U,
  `deploysim.judge.mann_whitney`) and scored (`deploysim.judge.kayenta`). The judge looks several
  times during a bake, so the false-fail rate the policy's `confidence` allows is split over the
  looks the bake plans (Bonferroni): each look uses 1 - (1 - confidence) / looks.
- flagger, argo: the canary's value per interval is the mean of its datapoints in the interval
  (none: no value); Flagger checks it against `min`/`max`, Argo's conditions see it as `result`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from ..judge.argo import ArgoMetric, Measurement, argo_analysis
from ..judge.flagger import FlaggerConfig, FlaggerMetric, ThresholdRange, flagger_analysis
from ..judge.kayenta import ScoreConfig, judge_canary
from ..judge.mann_whitney import Classification, Direction, MetricConfig, NanStrategy
from ..judge.verdict import Judgement, Verdict
from ..scenario.schema import Judge, JudgeMetric

Series = Mapping[str, np.ndarray]
"""Datapoints per metric label (`JudgeMetric.label`), one per period of the bake so far."""


def planned_looks(judge: Judge, bake_s: float) -> int:
    """Judgements a bake of `bake_s` plans: one per interval (at least one)."""
    return max(1, int(math.floor(bake_s / judge.interval + 1e-9)))


def kayenta_configs(judge: Judge, looks: int) -> list[MetricConfig]:
    """The metrics as the Mann-Whitney classifier takes them, at the per-look confidence."""
    confidence = 1.0 - (1.0 - judge.confidence) / looks
    return [MetricConfig(name=m.label, direction=Direction(m.direction), confidence=confidence,
                         allowed_increase=m.allowed_increase, allowed_decrease=m.allowed_decrease,
                         tolerance=m.tolerance, nan_strategy=NanStrategy(m.nan_strategy), min_samples=m.min_samples,
                         must_have_data=m.must_have_data, critical=m.critical, group=m.group)
            for m in judge.metrics]


def interval_values(values: np.ndarray, periods_per_interval: int) -> list[float | None]:
    """The mean of the datapoints of each whole interval (None: no datapoint in it)."""
    out: list[float | None] = []
    for i in range(len(values) // periods_per_interval):
        chunk = values[i * periods_per_interval:(i + 1) * periods_per_interval]
        chunk = chunk[~np.isnan(chunk)]
        out.append(float(chunk.mean()) if chunk.size else None)
    return out


def _flagger(judge: Judge, canary: Series, per: int) -> Judgement:
    metrics = tuple(FlaggerMetric(m.label, ThresholdRange(m.min, m.max)) for m in judge.metrics)
    values = {m.label: interval_values(np.asarray(canary.get(m.label, ()), dtype=float), per) for m in judge.metrics}
    n = min((len(v) for v in values.values()), default=0)
    intervals = [{label: v[i] for label, v in values.items()} for i in range(n)]
    result = flagger_analysis(intervals, FlaggerConfig(metrics, judge.threshold, judge.iterations))
    return Judgement(result.verdict, result.reason)


def _argo_metric(judge: Judge, m: JudgeMetric) -> ArgoMetric:
    return ArgoMetric(m.label, success_condition=m.success_condition, failure_condition=m.failure_condition,
                      interval_seconds=judge.interval, count=judge.count, failure_limit=judge.failure_limit,
                      inconclusive_limit=judge.inconclusive_limit,
                      consecutive_error_limit=judge.consecutive_error_limit)


def _argo(judge: Judge, canary: Series, per: int) -> Judgement:
    """Every metric is analysed as Argo does; the run is Failed if one is, else Inconclusive if one
    is, else Running while one runs, else Successful (Argo's AnalysisRun)."""
    results = []
    for m in judge.metrics:
        values = interval_values(np.asarray(canary.get(m.label, ()), dtype=float), per)
        measurements = [Measurement(value=v) if v is not None else Measurement(error="no datapoint in the interval")
                        for v in values]
        results.append(argo_analysis(_argo_metric(judge, m), measurements))
    for verdict in (Verdict.FAIL, Verdict.INCONCLUSIVE, Verdict.RUNNING):
        hit = [r for r in results if r.verdict is verdict]
        if hit:
            return Judgement(verdict, "; ".join(r.reason for r in hit))
    return Judgement(Verdict.PASS, "; ".join(r.reason for r in results))


REQUEST_METRICS = ("error_rate", "latency_p50_ms", "latency_p90_ms", "latency_p99_ms")
"""Metrics measured on requests: a period with too few requests gives them no datapoint."""


def honest(judge: Judge, series: Series, requests: np.ndarray | None) -> dict[str, np.ndarray]:
    """`series` with the request metrics' datapoints of periods under `min_period_requests` missing."""
    out = {k: np.asarray(v, dtype=float) for k, v in series.items()}
    if requests is None or judge.min_period_requests <= 0:
        return out
    few = np.asarray(requests, dtype=float) < judge.min_period_requests
    for m in judge.metrics:
        values = out.get(m.label)
        if values is not None and m.metric in REQUEST_METRICS and values.shape == few.shape:
            out[m.label] = np.where(few, np.nan, values)
    return out


def judge_step(judge: Judge, canary: Series, baseline: Series, *, period_s: float, bake_s: float,
               canary_requests: np.ndarray | None = None, baseline_requests: np.ndarray | None = None) -> Judgement:
    """The judge's verdict on the datapoints of the bake so far (`baseline` is unused by flagger and argo).

    `canary_requests`/`baseline_requests` are each side's requests per period: where they are under
    the judge's `min_period_requests`, the side's error-rate and latency datapoints are missing."""
    canary, baseline = honest(judge, canary, canary_requests), honest(judge, baseline, baseline_requests)
    if judge.kind == "kayenta":
        score = ScoreConfig(pass_threshold=judge.pass_threshold, marginal_threshold=judge.marginal_threshold,
                            group_weights=dict(judge.group_weights))
        configs = kayenta_configs(judge, planned_looks(judge, bake_s))
        analysis = judge_canary({k: list(v) for k, v in baseline.items()}, {k: list(v) for k, v in canary.items()},
                                configs, score)
        shifted = [r.reason for r in analysis.metrics if r.classification in (Classification.HIGH, Classification.LOW)]
        return Judgement(analysis.verdict, "; ".join([f"{analysis.outcome}: {analysis.reason}", *shifted]))
    per = max(1, int(round(judge.interval / period_s)))
    return _flagger(judge, canary, per) if judge.kind == "flagger" else _argo(judge, canary, per)
