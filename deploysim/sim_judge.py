"""The simulator's canary judge: the canary's and its baseline's datapoints, read as the alarms read
theirs, handed to the shared judge (`deploysim.policy.judging`).

- The canary is the step's hosts, with the exposures recorded so far and the scope's keyed noise:
  the very datapoints an alarm on the same metric over those hosts sees.
- A `rest-of-scope` baseline is the stage's hosts not yet deployed, read the same way.
- A `deploy` baseline is as many fresh hosts of the old version beside the canary, taking the same
  traffic per host: the canary hosts' metrics with no bad change running (the old version is
  modelled as healthy), with noise of its own, keyed by purpose (`judge-baseline`), scope, metric and
  period. Those hosts cost host-hours, which the driver records.
"""

from __future__ import annotations

import math

import numpy as np

from .alarm_watch import AlarmWatch
from .judge.verdict import Judgement
from .noise import NoiseStreams
from .policy.judging import judge_step
from .policy.plan import Step
from .scenario.schema import Judge, JudgeMetric, MetricAlarm
from .seeds import keyed_child

REQUESTS = "\0requests"
REQUESTS_ALARM = MetricAlarm(name="judge:requests", metric="requests", threshold=0.0)
"""Each side's requests per period: periods with too few give the judge no rate or latency."""

BASELINE_NOISE = "judge-baseline"
"""The purpose whose keyed child of the run's noise stream draws a deployed baseline's noise."""


def as_alarm(metric: JudgeMetric) -> MetricAlarm:
    """The alarm whose datapoints the judge reads for `metric` (the threshold is not used)."""
    return MetricAlarm(name=f"judge:{metric.label}", metric=metric.metric, threshold=0.0, api=metric.api,
                       statistic=metric.statistic)


class SimJudge:
    """Judges simulated canaries against their baselines from the simulator's own datapoints."""

    def __init__(self, alarms: AlarmWatch, noise_seq: np.random.SeedSequence):
        """`noise_seq` is the run's noise stream (the one `AlarmWatch` draws below)."""
        self.alarms = alarms
        self.period_s = float(alarms.period_s)
        self.baseline_noise = NoiseStreams(keyed_child(noise_seq, BASELINE_NOISE))

    def periods(self, since_s: float, now_s: float) -> tuple[int, int]:
        """The periods [k0, k1) of the bake whose datapoints are readable at `now_s`."""
        k0 = int(math.ceil(since_s / self.period_s - 1e-9))
        k1 = int(math.floor((now_s - self.alarms.delay_s) / self.period_s + 1e-9))
        return k0, max(k0, k1)

    def _side(self, judge: Judge, step: Step, side: str, k0: int, k1: int) -> dict[str, np.ndarray]:
        """One side's datapoints per metric label (and its requests under REQUESTS) for periods [k0, k1)."""
        hosts, noise, healthy = step.hosts, None, False
        if side == "baseline":
            if judge.baseline_kind == "deploy":
                noise, healthy = self.baseline_noise.scope(step.hosts), True
            elif judge.baseline_kind == "rest-of-scope" and step.rest_of_scope is not None:
                hosts = step.rest_of_scope
            else:
                return {}
        if hosts.size == 0:
            return {}
        alarms = [(m.label, as_alarm(m)) for m in judge.metrics] + [(REQUESTS, REQUESTS_ALARM)]
        return {label: self.alarms.observed(alarm, hosts, k0, k1, noise=noise, healthy=healthy)
                for label, alarm in alarms}

    def judge(self, step: Step, since_s: float, now_s: float) -> Judgement:
        """The step's judge over the datapoints of its bake from `since_s` readable at `now_s`."""
        judge = step.judge
        assert judge is not None
        k0, k1 = self.periods(since_s, now_s)
        canary = self._side(judge, step, "canary", k0, k1)
        baseline = self._side(judge, step, "baseline", k0, k1)
        return judge_step(judge, canary, baseline, period_s=self.period_s, bake_s=step.bake.duration,
                          canary_requests=canary.pop(REQUESTS), baseline_requests=baseline.pop(REQUESTS, None))
