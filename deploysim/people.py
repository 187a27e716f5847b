"""Detection by people: how a bad change that no alarm rolls back is found, from what it does.

People learn of a bad change from two symptoms, whichever comes first:

- a **page**: an alarm that pages on-call without rolling back (`humans.pages`: by default the
  pipelines' region-watched and incident alarms and every dependency alarm), evaluated over each
  region the change runs in, fires in a period where the healthy fleet's series would not have
  fired (a page raised by noise or a fault alone is not about the change);
- a **customer report**: reports arrive as a Poisson process whose rate is
  `humans.reports_per_failed_request` times the requests the change fails per second (its own
  failed requests, as in its blast radius); the report reaches on-call `humans.support_triage` later.

On-call then takes `humans.response_business_hours` or `humans.response_off_hours` to tie the
symptom to the change, by the local time (and holidays) of the symptom's region when they are paged.
After that people revert the change at manual speed (`humans.mitigation`, drawn with the world).
A defect that fails no request and fires no paging alarm is never found: it stays latent.

Every draw is keyed by (change id, attempt, purpose) below the run's people stream, so it does
not depend on the order in which changes are looked at, and adds no draw to any other stream.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np

from .alarm_watch import AlarmWatch
from .exposure import ExposureLog
from .fleet import FleetLayout
from .metrics import MetricModel
from .policy.decisions import WatchScope
from .policy.plan import WatchedAlarm
from .scenario.schema import WEEKDAYS, Defect, Scenario
from .seeds import child_seed
from .world import sample_duration_s

# What a keyed draw is for: part of its key, so reordering them would change every result.
REPORT_THRESHOLD = 0  # the unit-exponential the cumulative report rate must reach for the first report
SUPPORT_TRIAGE = 1  # from the report to on-call being paged
RESPONSE = 2  # from the page to on-call tying it to the change

LOOK_AHEAD_PERIODS = 1440  # periods asked of the metric model at once (a day of 1-minute periods)


@dataclass(frozen=True)
class Symptom:
    """The first sign of a bad change that reaches people: when, how, and in which region."""

    time_s: float
    kind: str  # "report" | "page"
    region: int
    alarm: str = ""  # the paging alarm ("name@region") for a page


def fails_requests(defect: Defect) -> bool:
    """Can the defect fail a request (the symptom customers report)?"""
    return (defect.error_rate > 0 or defect.crash or defect.memory_growth_pct_per_h > 0
            or defect.cpu_growth_pct_per_h > 0 or defect.dependency_load_factor > 1.0)


def shows_in_metrics(defect: Defect) -> bool:
    """Does the defect move any metric an alarm could page on?"""
    return fails_requests(defect) or defect.latency_factor > 1.0 or defect.disk_growth_pct_per_h > 0


def default_pages(scenario: Scenario) -> tuple[str, ...]:
    """The alarms that page on-call when the scenario does not list them: every pipeline's
    region-watched and incident alarms and every alarm on a dependency's error rate."""
    names: set[str] = set()
    for pipe in scenario.policy.pipelines.values():
        names.update(pipe.watch.region)
        for stage in pipe.stages:
            if stage.watch is not None:
                names.update(stage.watch.region)
        if pipe.blockers.incident_alarm:
            names.add(pipe.blockers.incident_alarm)
    names.update(a.name for a in scenario.alarms.metric if a.metric == "dependency_error_rate")
    return tuple(sorted(names))


class People:
    """When symptoms of a bad change reach people, and how long on-call takes to respond."""

    def __init__(self, scenario: Scenario, layout: FleetLayout, metrics: MetricModel, alarms: AlarmWatch,
                 exposures: ExposureLog, seed_seq: np.random.SeedSequence):
        """`seed_seq` is the run's people stream (`deploysim.seeds`); every draw is keyed below it."""
        self.sc = scenario
        self.humans = scenario.humans
        self.layout = layout
        self.metrics = metrics
        self.alarms = alarms
        self.exposures = exposures
        self.seed_seq = seed_seq
        self.period_s = scenario.metric_period
        pages = default_pages(scenario) if self.humans.pages is None else self.humans.pages
        self.pages: list[tuple[WatchedAlarm, ...]] = [
            tuple(WatchedAlarm(name, WatchScope.REGION, layout.region_names[r], layout.hosts_in_region(r))
                  for name in pages)
            for r in range(layout.n_regions)
        ]
        self.alarms.watched_names.update(pages)
        regions = scenario.fleet.regions
        self._zones = [ZoneInfo(r.timezone) for r in regions]
        self._holidays = [frozenset(r.holidays) for r in regions]
        hours = self.humans.business_hours
        self._days = frozenset(WEEKDAYS.index(d) for d in hours.days)
        # The first page of a region over periods [k0, k1) depends on the exposures and the batches
        # out of service, not on which bad change asks: answers are kept until either changes.
        self._pages_seen: dict[tuple[int, int, int], tuple[int, str] | None] = {}
        self._pages_seen_for: tuple[int, int] = (-1, -1)

    # ------------------------------------------------------------ keyed draws

    def _rng(self, change_id: int, attempt: int, purpose: int) -> np.random.Generator:
        return np.random.default_rng(child_seed(self.seed_seq, change_id, attempt, purpose))

    def report_threshold(self, change_id: int, attempt: int) -> float:
        """The expected number of reports that must accumulate before the first one (a unit exponential)."""
        return float(self._rng(change_id, attempt, REPORT_THRESHOLD).exponential(1.0))

    def business_hours(self, region: int, t_s: float) -> bool:
        """Is it business hours in the region at t_s (its local time; its holidays are off hours)?"""
        local = (self.sc.start + dt.timedelta(seconds=t_s)).astimezone(self._zones[region])
        hour = local.hour + local.minute / 60.0 + local.second / 3600.0
        hours = self.humans.business_hours
        return (local.weekday() in self._days and hours.start_hour <= hour < hours.end_hour
                and local.date() not in self._holidays[region])

    def response_s(self, change_id: int, attempt: int, symptom: Symptom) -> float:
        """Seconds from the symptom to people having tied it to the change: support's triage for
        a report, then on-call's response by the hour at which they are paged."""
        paged_s = symptom.time_s
        if symptom.kind == "report":
            paged_s += sample_duration_s(self.humans.support_triage, self._rng(change_id, attempt, SUPPORT_TRIAGE))
        dist = (self.humans.response_business_hours if self.business_hours(symptom.region, paged_s)
                else self.humans.response_off_hours)
        return paged_s - symptom.time_s + sample_duration_s(dist, self._rng(change_id, attempt, RESPONSE))

    # ------------------------------------------------------------ symptoms

    def _regions_running(self, bad_idx: int, t0: float, t1: float) -> list[int]:
        ex = self.exposures
        rows = ex.rows_of(bad_idx)
        rows = rows[(ex.off_s[rows] > t0) & (ex.on_s[rows] < t1)]
        return np.unique(self.layout.host_region[ex.host[rows]]).tolist()

    def _may_report(self, defect: Defect) -> bool:
        return self.humans.reports_per_failed_request > 0 and fails_requests(defect)

    def report_rate(self, bad_idx: int, defect: Defect, regions: list[int], k0: int, k1: int) -> np.ndarray:
        """Expected reports per period (regions x periods [k0, k1)), given the exposures so far."""
        out = np.zeros((len(regions), max(k1 - k0, 0)))
        if not self._may_report(defect) or k1 <= k0:
            return out
        for i, r in enumerate(regions):
            m = self.metrics.expected(self.layout.hosts_in_region(r), k0, k1, self.exposures,
                                      only_change=bad_idx, baseline=False)
            out[i] = m.errors * self.humans.reports_per_failed_request
        return out

    def reports_between(self, bad_idx: int, defect: Defect, t0: float, t1: float) -> float:
        """Expected reports in [t0, t1) (the rate is constant within a metric period)."""
        if t1 <= t0 or not self._may_report(defect):  # no report can come: nothing to look up
            return 0.0
        p = self.period_s
        k0, k1 = int(t0 // p), min(int(math.ceil(t1 / p)), self.metrics.n_periods)
        regions = self._regions_running(bad_idx, t0, t1)
        if not regions or k1 <= k0:
            return 0.0
        rate = self.report_rate(bad_idx, defect, regions, k0, k1).sum(axis=0)
        starts = np.arange(k0, k1) * p
        cover = np.clip((np.minimum(starts + p, t1) - np.maximum(starts, t0)) / p, 0.0, 1.0)
        return float((rate * cover).sum())

    def next_symptom(self, bad_idx: int, defect: Defect, t0: float, t1: float, reports_left: float) -> Symptom | None:
        """The first symptom in [t0, t1) given the exposures so far, or None.

        `reports_left` is what remains of the report threshold: the first report comes when the
        expected reports since the change began reach it (interpolated within a period).
        """
        if not self._may_report(defect) and not shows_in_metrics(defect):  # it shows nowhere: latent
            return None
        p = self.period_s
        k0, k1 = int(t0 // p), min(int(math.ceil(t1 / p)), self.metrics.n_periods)
        regions = self._regions_running(bad_idx, t0, t1)
        if k1 <= k0 or not regions:
            return None
        found: list[Symptom] = []
        rate = self.report_rate(bad_idx, defect, regions, k0, k1)
        if rate.any():
            starts = np.arange(k0, k1) * p
            cover = np.clip((np.minimum(starts + p, t1) - np.maximum(starts, t0)) / p, 0.0, 1.0)
            total = rate.sum(axis=0) * cover
            cum = np.cumsum(total)
            idx = int(np.searchsorted(cum, reports_left - 1e-12))
            if idx < cum.size:
                before = cum[idx - 1] if idx else 0.0
                begin = max(starts[idx], t0)
                t = begin + (reports_left - before) / total[idx] * (cover[idx] * p)
                found.append(Symptom(float(min(t, t1)), "report", regions[int(np.argmax(rate[:, idx]))]))
        if shows_in_metrics(defect):
            for r in regions:
                page = self._first_page(r, k0, k1, t0)
                if page is not None:
                    found.append(page)
        if not found:
            return None
        return min(found, key=lambda s: (s.time_s, s.kind, s.region))

    def _first_page(self, region: int, k0: int, k1: int, t0: float) -> Symptom | None:
        """The first period in [k0, k1) in which a paging alarm over the region is in ALARM while the
        healthy fleet's series is not (a datapoint is known at its period's end)."""
        watched = self.pages[region]
        if not watched:
            return None
        state = (self.exposures.edits, len(self.metrics.batches_out))
        if state != self._pages_seen_for:
            self._pages_seen.clear()
            self._pages_seen_for = state
        key = (region, k0, k1)
        if key not in self._pages_seen:
            self._pages_seen[key] = self._first_caused(watched, k0, k1)
        first = self._pages_seen[key]
        if first is None:
            return None
        k, name = first
        return Symptom(max(t0, (k0 + k + 1) * self.period_s), "page", region, name)

    def _first_caused(self, watched: tuple[WatchedAlarm, ...], k0: int, k1: int) -> tuple[int, str] | None:
        """The first period (from k0) and alarm in which a watched alarm is in ALARM but not for the healthy fleet."""
        flags, names = self.alarms.series(watched, k0, k1)
        healthy = np.array([self.alarms.healthy_states(w.alarm, w.hosts)[k0:k1] for w in watched], dtype=bool)
        caused = flags & ~healthy
        hits = np.flatnonzero(caused.any(axis=0))
        if hits.size == 0:
            return None
        k = int(hits[0])
        return k, names[int(np.flatnonzero(caused[:, k])[0])]
