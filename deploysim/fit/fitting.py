"""Fit a scenario's world from a history: each parameter with its 95% interval, or, when the history
is too thin for it, the base scenario's value kept as a documented prior (docs/fit.md)."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from ..durations import format_duration_s
from ..scenario.schema import DurationDistribution, Scenario
from ..world import SECONDS_PER_MONTH
from .families import DurationFit, Proportion, Rate, fit_durations
from .history import Deployment, History

WEEK_S = 7 * 86400.0
MIN_TRIALS = 10  # a probability needs at least this many trials (changes; bad changes for the catch rate)
MIN_DURATIONS = 5  # a duration distribution needs at least this many observations
MIN_EVENTS = 3  # a fault rate needs at least this many faults
MIN_ARRIVALS = 5  # a pipeline's arrival rate and profile need at least this many changes
WEEKDAY_SHARE = 0.97  # arrivals this much on Mon-Fri in hours that span at most MAX_OPEN_H: working hours only
MAX_OPEN_H = 16.0


@dataclass(frozen=True)
class Estimate:
    """One fitted (or kept) world parameter: where it goes in the scenario, its value and 95% interval."""

    parameter: str  # the scenario field path it is written to ("" when only reported)
    label: str
    unit: str
    value: float
    low: float
    high: float
    n: int  # observations behind it
    status: str  # "fitted", "prior" (too little data: the base scenario's value is kept) or "reported"
    note: str = ""
    prior: float | None = None  # the base scenario's value
    scenario_value: Any = None  # what is written at `parameter` (a number or a distribution)
    posterior: dict[str, Any] | None = None  # what monte_carlo(parameter_uncertainty=True) draws from


@dataclass(frozen=True)
class ArrivalProfile:
    """When a pipeline's changes arrived, in its local time zone."""

    pipeline: str
    timezone: str
    offsets_s: np.ndarray = field(repr=False)  # seconds since the window's start
    weekday: np.ndarray = field(repr=False)  # 0 = Monday
    hour: np.ndarray = field(repr=False)  # local hour of day, fractional
    working_hours_only: bool
    working_hours: tuple[float, float]
    rate_per_week: float


@dataclass
class Fit:
    """Everything fitted from one history: estimates (the summary table), the duration fits and arrival
    profiles (the figures), and notes on what the history could not say."""

    history: History
    estimates: list[Estimate] = field(default_factory=list)
    durations: dict[str, DurationFit] = field(default_factory=dict)  # label -> fit
    arrivals: dict[str, ArrivalProfile] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    compare_families: bool = True

    def estimate(self, label: str) -> Estimate | None:
        """The row labelled `label`, or None (e.g. a sigma when the chosen family has none)."""
        return next((e for e in self.estimates if e.label == label), None)

    def table(self):
        """The summary table, one row per parameter (pandas)."""
        import pandas as pd

        return pd.DataFrame([{"parameter": e.label, "path": e.parameter, "value": e.value, "low_95": e.low,
                              "high_95": e.high, "unit": e.unit, "n": e.n, "status": e.status,
                              "prior": e.prior, "note": e.note} for e in self.estimates])


def fit_history(history: History, base: Scenario, compare_families: bool = True) -> Fit:
    """Fit the world of `base` (fleet, traffic and policy kept) from `history` (with a window).
    `compare_families=False` skips the gamma and Weibull fits that only the report shows (faster)."""
    history, outside = _inside(history)
    fit = Fit(history, compare_families=compare_families)
    if outside:
        fit.notes.append(f"{outside} record(s) outside the window {window_text(history)} were left out")
    weeks = history.window_s / WEEK_S
    months = history.window_s / SECONDS_PER_MONTH
    pipeline_of = {d.change_id: d.pipeline for d in history.deployments}
    for pipeline in history.pipelines:
        deployments = [d for d in history.deployments if d.pipeline == pipeline]
        _fit_pipeline(fit, pipeline, deployments, base, weeks)
    _fit_people(fit, history, base, pipeline_of)
    _fit_faults(fit, history, base, months)
    unknown = sum(1 for i in history.incidents if i.cause == "unknown")
    if unknown:
        fit.notes.append(f"{unknown} incident(s) of unknown cause were counted but not fitted (tag them: docs/fit.md)")
    return fit


def _inside(history: History) -> tuple[History, int]:
    """The history with only the deployments that entered, and the incidents that began (or, without
    a start, were detected), inside its window; and how many were left out."""
    since, until = history.since, history.until
    if since is None or until is None:
        raise ValueError("the history has no window (give --since and --until)")
    deployments = tuple(d for d in history.deployments if since <= d.entered < until)
    incidents = tuple(i for i in history.incidents if (t := i.start or i.detected) is not None and since <= t < until)
    outside = len(history.deployments) - len(deployments) + len(history.incidents) - len(incidents)
    return History(deployments, incidents, since, until, history.sources), outside


# ------------------------------------------------------------------ changes


def _fit_pipeline(fit: Fit, p: str, deployments: list[Deployment], base: Scenario, weeks: float) -> None:
    source = base.changes.get(p)
    arrivals = source.arrivals if source else None
    tz = arrivals.timezone if arrivals else "UTC"
    since = fit.history.since
    assert since is not None
    entered = sorted(d.entered for d in deployments)
    rate = Rate(len(entered), weeks)
    local = [t.astimezone(ZoneInfo(tz)) for t in entered]
    weekday = np.array([t.weekday() for t in local], dtype=int)
    hour = np.array([t.hour + t.minute / 60 + t.second / 3600 for t in local])
    only, hours = _working_hours(weekday, hour)
    prior_rate = arrivals.changes_per_week if arrivals else None
    thin = len(entered) < MIN_ARRIVALS
    fit.arrivals[p] = ArrivalProfile(p, tz, np.array([(t - since).total_seconds() for t in entered]), weekday, hour,
                                     only if not thin else (arrivals.working_hours_only if arrivals else True),
                                     hours if not thin else (arrivals.working_hours if arrivals else (9.0, 17.0)),
                                     rate.value)
    path = f"changes.{p}.arrivals"
    _add_rate(fit, f"{path}.changes_per_week", f"{p}: changes per week", "changes/week", rate, prior_rate,
              MIN_ARRIVALS)
    profile = fit.arrivals[p]
    text = (f"Mon-Fri {profile.working_hours[0]:g}:00-{profile.working_hours[1]:g}:00 {tz}"
            if profile.working_hours_only else "any hour, any day")
    share = float(np.mean(weekday < 5)) if weekday.size else math.nan
    fit.estimates.append(Estimate(f"{path}.working_hours_only", f"{p}: arrival hours", "", share, share, share,
                                  len(entered), "prior" if thin else "fitted",
                                  f"{text} ({share:.0%} of changes arrived on weekdays)" if not thin else
                                  "too few changes to tell the hours: kept from the base scenario",
                                  scenario_value={"working_hours_only": profile.working_hours_only,
                                                  "working_hours": list(profile.working_hours), "timezone": tz}))
    decided = [d for d in deployments if d.outcome != "in_progress"]
    bad_ids = {d.change_id for d in decided if d.outcome == "failed_preprod" or
               (d.outcome == "rolled_back" and d.cause in ("defect", ""))}
    bad_ids |= {i.change_id for i in fit.history.incidents
                if i.cause == "change" and i.change_id in {d.change_id for d in decided}}
    caught = sum(1 for d in decided if d.outcome == "failed_preprod" and d.change_id in bad_ids)
    _add_probability(fit, f"changes.{p}.bad_probability", f"{p}: change failure rate",
                     Proportion(len(bad_ids), len(decided)), source.bad_probability if source else None,
                     "bad changes / changes decided")
    _add_probability(fit, f"changes.{p}.preprod_catch_probability", f"{p}: pre-production catch rate",
                     Proportion(caught, len(bad_ids)), source.preprod_catch_probability if source else None,
                     "caught in pre-production / bad changes")
    durations = [(d.finished - d.entered).total_seconds() for d in decided
                 if d.outcome == "completed" and d.finished is not None]
    _add_duration(fit, "", f"{p}: deployment duration", durations, None,
                  "entered to running everywhere (follows from the policy: reported, not written)")
    rollbacks = _rollback_durations(fit.history, deployments)
    policy = base.policy.pipelines.get(p)
    writable = policy is not None and policy.rollback.automatic and policy.rollback.max_share == 1.0
    prior = DurationDistribution(dist="fixed", value=policy.rollback.duration) if policy else None
    _add_duration(fit, f"policy.pipelines.{p}.rollback.duration" if writable else "", f"{p}: rollback duration",
                  rollbacks, prior, "alarm's rollback start to the last host reverted", as_fixed=True)


def _rollback_durations(history: History, deployments: list[Deployment]) -> list[float]:
    """Automatic rollbacks: from the incidents an alarm detected (detected to mitigated), else from the
    deployments whose export says when their rollback began."""
    ids = {d.change_id for d in deployments}
    out = {i.change_id: (i.mitigated - i.detected).total_seconds() for i in history.incidents
           if i.cause == "change" and i.detected_by == "alarm" and i.change_id in ids
           and i.mitigated is not None and i.detected is not None}
    for d in deployments:
        if (d.change_id not in out and d.outcome == "rolled_back" and d.rollback_started is not None
                and d.finished is not None and d.rolled_back_by != "people"):
            out[d.change_id] = (d.finished - d.rollback_started).total_seconds()
    return list(out.values())


def _working_hours(weekday: np.ndarray, hour: np.ndarray) -> tuple[bool, tuple[float, float]]:
    """Mon-Fri in a span of hours, or any time: the span is the weekday arrivals' hours (trimmed of 1%
    at each end once there are 100), rounded out to whole hours."""
    if weekday.size == 0:
        return True, (9.0, 17.0)
    on_weekdays = hour[weekday < 5]
    if on_weekdays.size == 0 or np.mean(weekday < 5) < WEEKDAY_SHARE:
        return False, (9.0, 17.0)
    lo, hi = (np.quantile(on_weekdays, [0.01, 0.99]) if on_weekdays.size >= 100
              else (on_weekdays.min(), on_weekdays.max()))
    start, end = float(math.floor(lo)), float(min(24, math.floor(hi) + 1))
    if end - start > MAX_OPEN_H:
        return False, (9.0, 17.0)
    return True, (start, end)


# ------------------------------------------------------------------ people and faults


def _fit_people(fit: Fit, history: History, base: Scenario, pipeline_of: dict[str, str]) -> None:
    found = [i for i in history.incidents if i.cause == "change" and i.detected_by == "people"]
    delays = [(i.detected - i.start).total_seconds() for i in found if i.start and i.detected]
    # A bad change an alarm reverted first was one people had not found yet: their delay was longer
    # than the time it ran (right-censored), not missing; leaving it out would make people look fast.
    raced = [(end - i.start).total_seconds() for i in history.incidents
             if i.cause == "change" and i.detected_by == "alarm" and i.start is not None
             and (end := i.mitigated or i.detected) is not None]
    _add_duration(fit, "humans.detection_delay", "people: detection delay", delays, base.humans.detection_delay,
                  "a bad change's first bad request to people finding it (written with detection: fixed_delay)",
                  censored=raced)
    mitigation = [(i.mitigated - i.detected).total_seconds() for i in found if i.mitigated and i.detected]
    _add_duration(fit, "humans.mitigation", "people: mitigation", mitigation, base.humans.mitigation,
                  "people finding a bad change to the last host reverted")


def _fit_faults(fit: Fit, history: History, base: Scenario, months: float) -> None:
    faults = base.faults
    kinds = {
        "az_outage": ([i for i in history.incidents if i.cause == "infrastructure" and i.scope != "region"],
                      faults.az_outage.rate_per_month, faults.az_outage.duration),
        "region_event": ([i for i in history.incidents if i.cause == "infrastructure" and i.scope == "region"],
                         faults.region_event.rate_per_month, faults.region_event.duration),
        "dependency_degradation": ([i for i in history.incidents if i.cause == "dependency"],
                                   faults.dependency_degradation.rate_per_month,
                                   faults.dependency_degradation.duration),
    }
    for kind, (incidents, prior_rate, prior_duration) in kinds.items():
        name = kind.replace("_", " ")
        _add_rate(fit, f"faults.{kind}.rate_per_month", f"faults: {name} rate", "per month",
                  Rate(len(incidents), months), prior_rate, MIN_EVENTS)
        _add_duration(fit, f"faults.{kind}.duration", f"faults: {name} duration",
                      [(i.resolved - i.start).total_seconds() for i in incidents if i.resolved and i.start],
                      prior_duration, "impact start to resolved")
    outages = [i for i in kinds["az_outage"][0] if i.mitigated and i.start]
    _add_duration(fit, "faults.az_outage.failover", "faults: az outage failover",
                  [(i.mitigated - i.start).total_seconds() for i in outages if i.mitigated and i.start],
                  DurationDistribution(dist="fixed", value=faults.az_outage.failover),
                  "start to traffic shifted away (mitigated)", as_fixed=True)


# ------------------------------------------------------------------ rows


def _add_probability(fit: Fit, path: str, label: str, p: Proportion, prior: float | None, what: str) -> None:
    lo, hi = p.interval
    if p.n < MIN_TRIALS:
        fit.estimates.append(Estimate(path, label, "probability", p.value, lo, hi, p.n, "prior",
                                      f"too little data ({p.n} < {MIN_TRIALS} trials): kept the base's "
                                      f"{_num(prior)}", prior, prior))
        return
    fit.estimates.append(Estimate(path, label, "probability", p.value, lo, hi, p.n, "fitted", f"{p.k}/{p.n} {what}",
                                  prior, float(f"{p.value:.4g}"), p.posterior()))


def _add_rate(fit: Fit, path: str, label: str, unit: str, r: Rate, prior: float | None, minimum: int) -> None:
    lo, hi = r.interval
    if r.k < minimum:
        fit.estimates.append(Estimate(path, label, unit, r.value, lo, hi, r.k, "prior",
                                      f"too little data ({r.k} < {minimum} events): kept the base's {_num(prior)}",
                                      prior, prior))
        return
    fit.estimates.append(Estimate(path, label, unit, r.value, lo, hi, r.k, "fitted",
                                  f"{r.k} over {r.exposure:.3g} {unit.split('/')[-1].replace('per ', '')}s",
                                  prior, float(f"{r.value:.4g}"), r.posterior()))


def _add_duration(fit: Fit, path: str, label: str, values: list[float], prior: DurationDistribution | None,
                  what: str, as_fixed: bool = False, censored: list[float] | None = None) -> None:
    """A duration distribution (median and, for a lognormal, sigma). `as_fixed`: the field holds one
    duration, not a distribution: the fitted median is written."""
    prior_median = _median_of(prior)
    if len(values) < MIN_DURATIONS:
        median = float(np.median(values)) if values else math.nan
        fit.estimates.append(Estimate(path, f"{label} (median)", "s", median, math.nan, math.nan, len(values), "prior",
                                      f"too little data ({len(values)} < {MIN_DURATIONS}): kept the base's "
                                      f"{_dist_text(prior)}", prior_median, None))
        return
    d = fit_durations(values, fit.compare_families, censored)
    if d.censored_s.size:
        what += (f"; {d.censored_s.size} more known only to be longer (reverted by an alarm first), fitted by "
                 "maximum likelihood")
    fit.durations[label] = d
    lo, hi = d.median_interval
    best = d.best.family if d.families else "fixed"
    family_note = f"{d.chosen}" + (f" (by AIC {best} fits better; a scenario holds lognormal or exponential)"
                                   if best not in (d.chosen, "fixed") and d.families else "")
    value: Any = round(d.median_s, 3) if as_fixed else d.scenario_value()
    fit.estimates.append(Estimate(path, f"{label} (median)", "s", d.median_s, lo, hi, d.n,
                                  "fitted" if path else "reported", f"{what}; {family_note}", prior_median, value,
                                  None if as_fixed else d.posterior()))
    if d.chosen == "lognormal":
        slo, shi = d.sigma_interval
        fit.estimates.append(Estimate("", f"{label} (sigma)", "log s", d.log_sd, slo, shi, d.n,
                                      "fitted" if path else "reported", "lognormal shape", None))


def _median_of(dist: DurationDistribution | None) -> float | None:
    if dist is None:
        return None
    if dist.dist == "fixed":
        return dist.value
    if dist.dist == "lognormal":
        return dist.median
    if dist.dist == "exponential" and dist.mean is not None:
        return dist.mean * math.log(2)
    return None if dist.low is None or dist.high is None else (dist.low + dist.high) / 2


def _dist_text(dist: DurationDistribution | None) -> str:
    if dist is None:
        return "(none)"
    median = _median_of(dist)
    if dist.dist == "fixed" and median is not None:
        return format_duration_s(median)
    text = f"{dist.dist}, median {format_duration_s(median)}" if median is not None else dist.dist
    return text + (f", sigma {dist.sigma:g}" if dist.dist == "lognormal" else "")


def _num(value: float | None) -> str:
    return "(none)" if value is None else f"{value:g}"


def window_text(history: History) -> str:
    assert history.since and history.until
    days = (history.until - history.since) / dt.timedelta(days=1)
    return f"{history.since:%Y-%m-%d %H:%M} to {history.until:%Y-%m-%d %H:%M} UTC ({days:g} days)"
