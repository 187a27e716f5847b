"""The real executor's canary judge: the canary targets' and the baseline targets' datapoints, read
from the metric source per target set (Prometheus: the query templated with their instances), handed
to the shared judge (`deploysim.policy.judging`) as the simulator hands it its own.

The baseline is the inventory's `baseline_targets` running the old version (`baseline: deploy`), or
the stage's targets not yet deployed (`rest-of-scope`); flagger and argo judges read no baseline.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np

from ..judge.verdict import Judgement
from ..policy.judging import judge_step
from ..policy.plan import Step
from ..scenario.schema import Judge, MetricAlarm
from .alarm_reader import AlarmReader
from .interfaces import Target
from .rollout import Rollout

REQUESTS_ALARM = MetricAlarm(name="judge:requests", metric="requests", threshold=0.0)
"""Each side's requests per period: periods with too few give the judge no rate or latency."""


def as_alarm(judge: Judge, label: str) -> MetricAlarm:
    metric = next(m for m in judge.metrics if m.label == label)
    return MetricAlarm(name=f"judge:{label}", metric=metric.metric, threshold=0.0, api=metric.api,
                       statistic=metric.statistic)


def baseline_targets(rollout: Rollout, step: Step) -> list[Target]:
    """The targets a step's judge compares its canary with (none for flagger and argo)."""
    judge = step.judge
    if judge is None:
        return []
    if judge.baseline_kind == "deploy":
        return list(rollout.baseline_targets[:step.hosts.size])
    if judge.baseline_kind == "rest-of-scope" and step.rest_of_scope is not None:
        return [rollout.targets[h] for h in step.rest_of_scope.tolist()]
    return []


class JudgeReader:
    """Judges a real step's canary from the metric source, through the alarm reader's retries."""

    def __init__(self, rollout: Rollout, alarms: AlarmReader):
        self.r = rollout
        self.alarms = alarms

    def series(self, judge: Judge, targets: Sequence[Target], k0: int, k1: int) -> tuple[dict[str, np.ndarray],
                                                                                            np.ndarray | None]:
        """One side's datapoints per metric label for periods [k0, k1), and its requests per period."""
        if not targets or k1 <= k0:
            return {}, None
        p = self.alarms.period_s
        out: dict[str, np.ndarray] = {}
        for alarm in [as_alarm(judge, m.label) for m in judge.metrics] + [REQUESTS_ALARM]:
            read = functools.partial(self.alarms.source.datapoints, alarm, list(targets), k0 * p, k1 * p, p)
            values = np.asarray(self.alarms.read(read, f"{alarm.metric} datapoints for the canary judge"),
                                dtype=np.float64)
            out[alarm.name] = values if values.shape == (k1 - k0,) else np.full(k1 - k0, np.nan)
        requests = out.pop(REQUESTS_ALARM.name)
        return {label.removeprefix("judge:"): v for label, v in out.items()}, requests

    def judge(self, step: Step, since_s: float, now_s: float) -> Judgement:
        """The step's judge over the datapoints of its bake from `since_s` readable at `now_s`."""
        judge = step.judge
        assert judge is not None
        p = self.alarms.period_s
        k0 = int(math.ceil(since_s / p - 1e-9))
        k1 = max(k0, self.alarms.periods_ended(now_s))
        canary, canary_requests = self.series(judge, [self.r.targets[h] for h in step.hosts.tolist()], k0, k1)
        baseline, baseline_requests = self.series(judge, baseline_targets(self.r, step), k0, k1)
        return judge_step(judge, canary, baseline, period_s=p, bake_s=step.bake.duration,
                          canary_requests=canary_requests, baseline_requests=baseline_requests)
