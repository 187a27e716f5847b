"""Reading the real metrics as the simulator reads its own: datapoints per metric period from the
metric source, alarm states by the simulator's evaluation (`metric_alarm_codes`,
`combine_alarm_states`: M of N, missing data, composites), the incident alarm, and what a bake
has seen. Periods in which a host was out of service for a deploy count as missing data.
"""

from __future__ import annotations

import functools
import math
import threading
import time
from collections.abc import Callable, Sequence

import numpy as np

from ..alarms import parse_rule
from ..alarms.series import EXTRA_EVALUATION_RANGE, combine_alarm_states, metric_alarm_codes
from ..policy.decisions import Observation, StageKind
from ..policy.plan import Step, WatchedAlarm
from ..scenario.schema import MetricAlarm
from .actions import BusySpan
from .clock import wait_until
from .interfaces import Clock, MetricSource
from .outcome import Halt
from .rollout import Rollout

NO_DATA_PAUSE_PERIODS = 10
"""How many metric periods a bake without evidence pauses, after its duration, before the run halts
(when the bake has no `max_duration`; with one, it pauses until then)."""

PREFLIGHT_EXTRA_PERIODS = 3
"""Before anything is touched, every watched metric must show a datapoint within its alarm's
evaluation periods plus this many (a source that is still filling in gets that long)."""

_SIGN = {"GreaterThanThreshold": ">", "GreaterThanOrEqualToThreshold": ">=", "LessThanThreshold": "<",
         "LessThanOrEqualToThreshold": "<="}

BAKE_REQUESTS = MetricAlarm(name="bake-datapoints", metric="requests", threshold=0.0)
"""The metric whose datapoints a bake counts for `min_datapoints`: the step's request count."""


class AlarmReader:
    """Judges a rollout's alarms from a metric source, at the end of every metric period (plus the
    source's delay in publishing a period's datapoint)."""

    def __init__(self, rollout: Rollout, source: MetricSource, clock: Clock, stop: threading.Event,
                 busy: Callable[[], Sequence[BusySpan]], *, datapoint_delay_s: float = 0.0):
        self.r = rollout
        self.source = source
        self.clock = clock
        self.stop = stop
        self.busy = busy
        self.period_s = float(rollout.scenario.metric_period)
        self.delay_s = datapoint_delay_s
        self.metric_alarms = {a.name: a for a in rollout.scenario.alarms.metric}
        self.composites = {a.name: parse_rule(a.rule) for a in rollout.scenario.alarms.composite}
        self.last_evidence: tuple[str, str] = ("", "")
        """The last alarm `check_alarms` found ("name@scope") and what it saw (see `explain`)."""
        self.history_periods = max((a.evaluation_periods for a in rollout.scenario.alarms.metric), default=1) \
            + EXTRA_EVALUATION_RANGE - 1

    def periods_ended(self, now_s: float) -> int:
        """Index of the first period whose datapoint is not yet published at `now_s`."""
        return int(math.floor((now_s - self.delay_s) / self.period_s + 1e-9))

    def next_period_end_s(self, now_s: float) -> float:
        """When the next period's datapoint is published."""
        return (math.floor((now_s - self.delay_s) / self.period_s) + 1) * self.period_s + self.delay_s

    # ------------------------------------------------------------ reading

    def read(self, read: Callable[[], object], what: str):
        """A metric read, retried with back-off like adapter calls; the rollout halts if it keeps
        failing, since alarms that cannot be read cannot be trusted to be quiet."""
        spec = self.r.inventory.adapter
        wait_s = spec.backoff
        for attempt in range(spec.retries + 1):
            try:
                return read()
            except Exception as error:  # any failure of the source: network, query, parsing
                if attempt == spec.retries:
                    raise Halt(f"cannot read {what} from the metric source after {attempt + 1} attempt(s): "
                               f"{error}") from None
            wait_until(self.clock, self.stop, self.clock.now() + wait_s)
            wait_s *= 2

    def datapoints(self, alarm: MetricAlarm, hosts: np.ndarray, k0: int, k1: int) -> np.ndarray:
        targets = [self.r.targets[h] for h in hosts.tolist()]
        values = np.asarray(self.read(
            lambda: self.source.datapoints(alarm, targets, k0 * self.period_s, k1 * self.period_s, self.period_s),
            f"{alarm.metric} datapoints"), dtype=float)
        if values.shape != (k1 - k0,):
            raise Halt(f"metric source gave {values.shape} datapoints of {alarm.metric} for {k1 - k0} periods")
        return values

    def out_of_service(self, hosts: np.ndarray, k0: int, k1: int) -> np.ndarray:
        """Periods [k0, k1) in which one of `hosts` was (or still is) being deployed or rolled back
        by this process.

        Their datapoints count as missing: the host was out of service (as the simulator models a
        batch), and the failed requests a restart causes are the deployment's, not the version's.
        An action still under way covers every period from its start on: a batch is watched while
        it runs, and a restart that takes longer than the alarm's periods must not pass for a fault.
        Not so for steps whose hosts keep serving while they take a change (`hosts_keep_serving`).
        """
        mask = np.zeros(k1 - k0, dtype=bool)
        scope = set(hosts.tolist())
        p = self.period_s
        for span in list(self.busy()):
            if span.host in scope and span.end_s > span.start_s and not span.keeps_serving:
                first = int(span.start_s // p)  # periods overlapping the span
                last = k1 if math.isinf(span.end_s) else int(math.ceil(span.end_s / p))
                mask[max(first, k0) - k0: max(min(last, k1), k0) - k0] = True
        return mask

    # ------------------------------------------------------------ alarms

    def alarm_states(self, name: str, hosts: np.ndarray, k_first: int, k_end: int,
                     k_min: int | None = None) -> np.ndarray:
        """ALARM flags of alarm `name` over `hosts` for periods [k_first, k_end), with history before
        (but none before period `k_min`: a step is judged only on periods after it started)."""
        k0 = k_first - self.history_periods if k_min is None else max(k_first - self.history_periods, k_min)
        seen: dict[tuple, np.ndarray] = {}

        def states_of(alarm: MetricAlarm) -> np.ndarray:
            # Alarms on the same metric see the same datapoints, as in the simulator.
            key = (alarm.metric, alarm.api, alarm.statistic, alarm.dependency)
            if key not in seen:
                values = self.datapoints(alarm, hosts, k0, k_end)
                seen[key] = np.where(self.out_of_service(hosts, k0, k_end), np.nan, values)
            # State codes, so composites see INSUFFICIENT_DATA as CloudWatch does.
            return metric_alarm_codes(seen[key], alarm, k_first - k0)

        return combine_alarm_states(name, self.metric_alarms, self.composites, states_of)

    def check_alarms(self, step: Step, watch_from_s: float, now_s: float) -> str | None:
        """The first watched alarm ("name@scope") in ALARM in a period that ended since `watch_from_s`."""
        if not step.watched:
            return None
        # The first whole period after the watch began: a period that began before the step (a bad
        # version being replaced, a restart by an earlier process) is not the step's to answer for.
        k_first = int(math.ceil(watch_from_s / self.period_s - 1e-9))
        k_end = self.periods_ended(now_s)
        if k_end <= k_first:
            return None
        first: tuple[int, str, WatchedAlarm] | None = None
        for w in step.watched:
            hits = np.flatnonzero(self.alarm_states(w.alarm, w.hosts, k_first, k_end, k_min=k_first))
            if hits.size and (first is None or hits[0] < first[0]):
                first = (int(hits[0]), f"{w.alarm}@{w.label}", w)
        if first is None:
            return None
        self.last_evidence = (first[1], self.explain(first[2], k_first, k_first + first[0]))
        return first[1]

    def explain(self, watched: WatchedAlarm, k_first: int, k_hit: int) -> str:
        """Which metric alarms of `watched` were in ALARM in period `k_hit`, with the datapoints of
        their evaluation periods (oldest first, "-" where missing or out of service): what a person
        reading the journal needs to tell a real regression from a noisy metric."""
        parts = []
        for alarm in self.metric_alarms_of(watched.alarm):
            codes = self.alarm_states(alarm.name, watched.hosts, k_hit, k_hit + 1, k_min=k_first)
            if not codes.any():
                continue
            k0 = max(k_first, k_hit + 1 - alarm.evaluation_periods)
            values = np.where(self.out_of_service(watched.hosts, k0, k_hit + 1), np.nan,
                              self.datapoints(alarm, watched.hosts, k0, k_hit + 1))
            shown = ", ".join("-" if np.isnan(v) else f"{v:.4g}" for v in values.tolist())
            parts.append(f"{alarm.name} ({alarm.metric} {shown}; {_SIGN[alarm.comparison]} {alarm.threshold:g}, "
                         f"{alarm.datapoints_to_alarm} of {alarm.evaluation_periods})")
        ended = time.strftime("%H:%M:%S UTC", time.gmtime((k_hit + 1) * self.period_s))
        return (", ".join(parts) or "no member alarm in ALARM") + f", in the period that ended {ended}"

    def watch(self, step: Step, watch_from_s: float) -> Callable[[float, bool], str | None]:
        """A watch of `step`'s alarms from `watch_from_s`: called with (now, something changed), it
        judges the datapoints once per period that ended (and again when something changed)."""
        judged: list[int | None] = [None]

        def check(now_s: float, changed: bool = False) -> str | None:
            k_end = self.periods_ended(now_s)
            if k_end == judged[0] and not changed:
                return None
            judged[0] = k_end
            return self.check_alarms(step, watch_from_s, now_s)

        return check

    def incident(self, stage_index: int, now_s: float) -> bool:
        """Is the incident alarm in ALARM in any region of the stage, on the last completed period?"""
        blockers = self.r.plan.policy.blockers
        stage = self.r.plan.stages[stage_index]
        if not blockers.incidents or blockers.incident_alarm is None or stage.kind != StageKind.PRODUCTION:
            return False
        k = int(math.floor((now_s - self.delay_s) / self.period_s)) - 1
        return any(bool(self.alarm_states(blockers.incident_alarm, self.r.layout.hosts_in_region(r), k, k + 1).any())
                   for r in stage.regions)

    # ------------------------------------------------------------ evidence

    def metric_alarms_of(self, name: str) -> list[MetricAlarm]:
        """The metric alarms alarm `name` is made of (itself, or a composite's members, nested)."""
        if name in self.metric_alarms:
            return [self.metric_alarms[name]]
        return [a for member in sorted(self.composites[name].alarm_names) for a in self.metric_alarms_of(member)]

    def evidence_needed(self, step: Step, min_datapoints: int) -> int:
        """Datapoints a bake must see of every metric it watches before it may pass: its
        `min_datapoints`, and at least the evaluation periods of each watched alarm (no data is never healthy)."""
        periods = [a.evaluation_periods for w in step.watched for a in self.metric_alarms_of(w.alarm)]
        return max([min_datapoints, *periods])

    def evidence(self, step: Step, since_s: float, now_s: float) -> tuple[int, str]:
        """The fewest datapoints any watched metric (over its scope, out-of-service periods left out)
        has in whole periods since `since_s`, and which one that is ("" when nothing is watched)."""
        k0 = int(math.ceil(since_s / self.period_s - 1e-9))
        k1 = self.periods_ended(now_s)
        fewest: tuple[int, str] = (10**9, "")
        for w in step.watched:
            for alarm in self.metric_alarms_of(w.alarm):
                if k1 <= k0:
                    return 0, f"{alarm.metric}@{w.label}"
                values = np.where(self.out_of_service(w.hosts, k0, k1), np.nan, self.datapoints(alarm, w.hosts, k0, k1))
                fewest = min(fewest, (int(np.count_nonzero(~np.isnan(values))), f"{alarm.metric}@{w.label}"))
        return fewest if fewest[1] else (10**9, "")

    def preflight(self) -> None:
        """Before anything is touched: read every metric a step of the plan watches, over all the
        targets, and wait (a few periods at most) until each shows a datapoint. A query the source
        rejects, or one that matches nothing (a typo in a PromQL name), halts the run here."""
        every = np.arange(len(self.r.targets))
        alarms = {a.name: a for stage in self.r.plan.stages for step in stage.steps for w in step.watched
                  for a in self.metric_alarms_of(w.alarm)}
        if not alarms:
            return
        start = self.clock.now()
        limit = start + (max(a.evaluation_periods for a in alarms.values()) + PREFLIGHT_EXTRA_PERIODS) * self.period_s
        k_from = self.periods_ended(start) - max(a.evaluation_periods for a in alarms.values())
        waiting = dict(sorted(alarms.items()))
        while waiting:
            k_end = self.periods_ended(self.clock.now())
            for name, alarm in list(waiting.items()):
                if k_end > k_from and not np.isnan(self.datapoints(alarm, every, k_from, k_end)).all():
                    del waiting[name]
            if not waiting:
                return
            if self.clock.now() >= limit:
                metrics = ", ".join(sorted({a.metric for a in waiting.values()}))
                raise Halt(f"pre-flight: the metric source has no datapoint of {metrics} for any target "
                           f"(alarm(s) {', '.join(waiting)}) in the last periods; check its query"
                           f"{self._queries_of(waiting.values())}; nothing was changed")
            wait_until(self.clock, self.stop, min(limit, self.next_period_end_s(self.clock.now())))

    def _queries_of(self, alarms) -> str:
        """' (METRIC: QUERY, ...)': the queries a source with templates (Prometheus) runs for these
        alarms, so a misspelt name can be seen in the message; '' for a source without templates."""
        template_for = getattr(self.source, "template_for", None)
        if not callable(template_for):
            return ""
        shown: dict[str, str] = {}  # query -> the metric it is for (each query once)
        for alarm in alarms:
            template = template_for(alarm)
            if isinstance(template, str):
                shown.setdefault(" ".join(template.split()), alarm.metric)
        return (" (" + "; ".join(f"{metric}: {query}" for query, metric in sorted(shown.items(), key=lambda kv: kv[1]))
                + ")") if shown else ""

    # ------------------------------------------------------------ bakes

    def bake_observation(self, step: Step, since_s: float, now_s: float) -> Observation:
        """Requests per API and datapoints the step's hosts produced in whole periods since the bake began."""
        p = self.period_s
        k0 = int(math.ceil(since_s / p - 1e-9))
        k1 = int(math.floor((now_s - self.delay_s) / p + 1e-9))
        if k1 <= k0:
            return Observation(requests_seen={}, datapoints_seen=0)
        if step.hosts.size == 0:  # pre-production: nothing real to count, periods pass
            return Observation(datapoints_seen=k1 - k0)
        targets = [self.r.targets[h] for h in step.hosts.tolist()]
        apis = dict.fromkeys([*step.bake.min_requests, "All"])  # read in declared order, never set order
        requests = {api: float(self.read(
            functools.partial(self.source.requests, targets, k0 * p, k1 * p, None if api == "All" else api),
            f"requests ({api})")) for api in apis}
        points = self.datapoints(BAKE_REQUESTS, step.hosts, k0, k1)
        return Observation(requests_seen=requests, datapoints_seen=int(np.count_nonzero(~np.isnan(points))))
