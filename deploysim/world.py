"""The random world a policy is judged in: changes and their defects, infrastructure faults, traffic.

It is drawn from the seed alone, never from the policy, so that two policies run with the same
seed face the same world (common random numbers).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .fleet import FleetLayout, build_fleet
from .scenario.schema import ChangeSource, Defect, DurationDistribution, Scenario
from .seeds import as_seed_sequence, child_seed, keyed_child
from .traffic import local_hours_and_weekdays, requests_per_period

SECONDS_PER_MONTH = 30 * 86400.0

FAULT_KINDS = ("az_outage", "correlated_az_outage", "region_event", "dependency_degradation")
"""Kinds of infrastructure fault: one AZ down; two AZs of a region down together; a share of every
AZ of a region failing; a dependency failing a share of its calls in a region."""
AZ_DOWN_KINDS = ("az_outage", "correlated_az_outage")  # faults that take an AZ out of service


def sample_duration_s(dist: DurationDistribution, rng: np.random.Generator) -> float:
    """One draw, in seconds, from a scenario duration distribution."""
    # The schema guarantees each distribution's parameters are set (DurationDistribution._needs_parameters).
    if dist.dist == "fixed":
        return float(_given(dist.value))
    if dist.dist == "exponential":
        return float(rng.exponential(_given(dist.mean)))
    if dist.dist == "lognormal":
        return float(_given(dist.median) * np.exp(dist.sigma * rng.standard_normal()))
    return float(rng.uniform(_given(dist.low), _given(dist.high)))


def _given(value: float | None) -> float:
    if value is None:
        raise ValueError("a duration distribution is missing a parameter (the scenario was not validated)")
    return float(value)


@dataclass(frozen=True)
class Change:
    """One unit of work entering a pipeline; `defect` is None for a good change."""

    change_id: int
    pipeline: str
    arrival_s: float
    defect: Defect | None
    caught_in_preprod: bool
    human_detection_delay_s: float
    human_mitigation_s: float

    @property
    def bad(self) -> bool:
        return self.defect is not None


@dataclass(frozen=True)
class Fault:
    """An infrastructure fault not caused by a change."""

    kind: str  # one of FAULT_KINDS
    region: int
    start_s: float
    end_s: float
    az: int = -1
    dependency: str = ""
    error_rate: float = 1.0
    failover_s: float = 0.0


@dataclass(frozen=True)
class World:
    changes: tuple[Change, ...]
    faults: tuple[Fault, ...]
    requests: np.ndarray  # regions x periods


def world_for_seed(scenario: Scenario, *, seed: int | np.random.SeedSequence = 0, months: float = 1.0) -> World:
    """The world `deploysim.simulate(scenario, seed=seed, months=months)` faces: a starting point for
    hand-made worlds (replace its changes or faults and pass it as `world=`)."""
    return draw_world(scenario, build_fleet(scenario), months * SECONDS_PER_MONTH,
                      child_seed(as_seed_sequence(seed), 0))


def draw_world(scenario: Scenario, layout: FleetLayout, horizon_s: float, seed_seq: np.random.SeedSequence) -> World:
    """Draw changes, faults and traffic from independent child streams of one seed."""
    streams = [child_seed(seed_seq, i) for i in range(3 + len(scenario.changes))]
    period_s = scenario.metric_period
    n_periods = int(np.ceil(horizon_s / period_s))
    requests = requests_per_period(
        scenario.traffic, layout, scenario.start, period_s, n_periods, np.random.default_rng(streams[0])
    )
    # Region events and correlated AZ outages draw from their own keyed streams below the faults'
    # stream, so adding them shifted none of the draws of the single-AZ outages and degradations.
    faults = _draw_faults(scenario, layout, horizon_s, np.random.default_rng(streams[1]),
                          correlated_rng=np.random.default_rng(keyed_child(streams[1], "correlated_az_outage")),
                          region_rng=np.random.default_rng(keyed_child(streams[1], "region_event")))
    changes: list[Change] = []
    for k, (name, source) in enumerate(sorted(scenario.changes.items())):
        changes += _draw_changes(name, source, scenario, horizon_s, np.random.default_rng(streams[3 + k]))
    changes.sort(key=lambda c: (c.arrival_s, c.pipeline))
    changes = [
        Change(
            i, c.pipeline, c.arrival_s, c.defect, c.caught_in_preprod, c.human_detection_delay_s, c.human_mitigation_s
        )
        for i, c in enumerate(changes)
    ]
    return World(changes=tuple(changes), faults=tuple(faults), requests=requests)


def _draw_changes(
    name: str, source: ChangeSource, scenario: Scenario, horizon_s: float, rng: np.random.Generator
) -> list[Change]:
    arrivals = source.arrivals
    if arrivals.working_hours_only:
        start_h, end_h = arrivals.working_hours
        open_s_per_week = 5 * (end_h - start_h) * 3600.0
    else:
        open_s_per_week = 7 * 86400.0
    rate_per_open_s = arrivals.changes_per_week / open_s_per_week
    count = rng.poisson(rate_per_open_s * horizon_s)
    candidates = np.sort(rng.uniform(0.0, horizon_s, count))
    if arrivals.working_hours_only and candidates.size:
        hour, weekday = local_hours_and_weekdays(scenario.start, arrivals.timezone, candidates)
        start_h, end_h = arrivals.working_hours
        candidates = candidates[(weekday < 5) & (hour >= start_h) & (hour < end_h)]
    weights = np.array([d.weight for d in source.defects]) if source.defects else np.ones(1)
    weights = weights / weights.sum()
    out = []
    for t in candidates:
        # Draw every variable for every change, used or not, so streams stay aligned across scenarios.
        is_bad = rng.random() < source.bad_probability
        defect_index = int(rng.choice(weights.size, p=weights))
        caught = rng.random() < source.preprod_catch_probability
        delay = sample_duration_s(scenario.humans.detection_delay, rng)
        mitigation = sample_duration_s(scenario.humans.mitigation, rng)
        defect = source.defects[defect_index] if (is_bad and source.defects) else None
        out.append(Change(-1, name, float(t), defect, bool(caught and is_bad), delay, mitigation))
    return out


def _draw_faults(scenario: Scenario, layout: FleetLayout, horizon_s: float, rng: np.random.Generator, *,
                 correlated_rng: np.random.Generator, region_rng: np.random.Generator) -> list[Fault]:
    faults: list[Fault] = []
    months = horizon_s / SECONDS_PER_MONTH
    outage = scenario.faults.az_outage
    for _ in range(rng.poisson(outage.rate_per_month * months)):
        az = int(rng.integers(len(layout.az_names)))
        start = float(rng.uniform(0.0, horizon_s))
        duration = sample_duration_s(outage.duration, rng)
        region = int(layout.az_region[az])
        # Drawn for every outage, used or not, so each outage's draws stay aligned across scenarios.
        together = correlated_rng.random() < outage.second_az_probability
        others = [a for a in range(len(layout.az_names)) if a != az and int(layout.az_region[a]) == region]
        pick = int(correlated_rng.integers(max(len(others), 1)))
        kind = "correlated_az_outage" if together and others else "az_outage"
        for down in [az, others[pick]] if kind == "correlated_az_outage" else [az]:
            faults.append(Fault(kind, region, start, start + duration, az=down,
                                failover_s=min(outage.failover, duration)))
    event = scenario.faults.region_event
    for _ in range(region_rng.poisson(event.rate_per_month * months)):
        region = int(region_rng.integers(layout.n_regions))
        start = float(region_rng.uniform(0.0, horizon_s))
        duration = sample_duration_s(event.duration, region_rng)
        faults.append(Fault("region_event", region, start, start + duration, error_rate=event.failed_share))
    degradation = scenario.faults.dependency_degradation
    if scenario.dependencies:
        for _ in range(rng.poisson(degradation.rate_per_month * months)):
            region = int(rng.integers(layout.n_regions))
            dep = scenario.dependencies[int(rng.integers(len(scenario.dependencies)))].name
            start = float(rng.uniform(0.0, horizon_s))
            duration = sample_duration_s(degradation.duration, rng)
            faults.append(
                Fault(
                    "dependency_degradation",
                    region,
                    start,
                    start + duration,
                    dependency=dep,
                    error_rate=degradation.error_rate,
                )
            )
    faults.sort(key=lambda f: f.start_s)
    return faults
