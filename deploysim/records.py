"""What one simulated run leaves behind: plain rows and numpy arrays, nothing that runs.

`Simulation.run()` returns a `SimulationRecords`; `SimulationResult` turns it into frames and
figures. Records hold no engine, no metric model and no random generator, so they pickle small,
travel to other processes, and give the same frames every time they are read.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from .fleet import FleetLayout
from .policy.plan import PipelinePlan
from .scenario.schema import Scenario
from .world import Change, Fault


@dataclass
class ChangeRecord:
    """One change's fate: the engine fills it in while the run goes on (times in seconds since the start)."""

    change: Change
    outcome: str = "in_flight"  # deployed | rolled_back | reverted_by_people | caught_preprod | in_flight
    completed_s: float = math.nan  # running on every host
    first_bad_s: float = math.nan  # first host served a version holding this (bad) change
    detected_s: float = math.nan
    detected_by: str = ""  # the alarm ("name@scope"), "people", or "" when nobody noticed
    mitigated_s: float = math.nan  # the last host running it was returned to a good version
    blocked_s: float = 0.0  # time its versions waited on blockers and manual approvals
    baking_s: float = 0.0  # time its versions baked
    false_rollback: bool = False  # rolled back by an alarm although its version held no bad change


@dataclass(frozen=True)
class VersionRecord:
    """One build of a pipeline's artifact, as built: every change that had arrived in the pipeline
    (the first `changes_upto` of `SimulationRecords.arrivals[pipeline]`) minus those reverted before it."""

    version_id: int
    pipeline: str
    built_s: float
    changes_upto: int
    excluded: frozenset[int]  # change ids reverted before the build
    new_changes: tuple[int, ...]  # the changes that triggered the build


@dataclass(frozen=True)
class ExposureIntervals:
    """Which host ran which bad change, and when: one row per interval [on_s, off_s).

    `change` indexes `SimulationRecords.bad_change_ids`; `off_s` is +inf for a host still running it when
    the run ended. Same columns as the engine's `ExposureLog`.
    """

    change: np.ndarray
    host: np.ndarray
    on_s: np.ndarray
    off_s: np.ndarray

    @property
    def size(self) -> int:
        return int(self.change.size)


@dataclass(frozen=True)
class BlastRadius:
    """How much damage one bad change did in production (DESIGN.md, "Blast radius")."""

    failed_requests: float = 0.0  # requests it failed, everywhere, over the whole run
    impact_minutes: float = 0.0  # minutes in which it failed requests anywhere
    peak_capacity_share: float = 0.0  # largest share of the fleet's requests served by hosts running it at once
    hosts_reached: int = 0
    cells_reached: int = 0
    azs_reached: int = 0
    regions_reached: int = 0

    def as_dict(self) -> dict[str, float]:
        return {"failed_requests": self.failed_requests, "impact_minutes": self.impact_minutes,
                "peak_capacity_share": self.peak_capacity_share, "hosts_reached": self.hosts_reached,
                "cells_reached": self.cells_reached, "azs_reached": self.azs_reached,
                "regions_reached": self.regions_reached}


@dataclass
class RunRecords:
    """Rows the engine appends while the run goes on."""

    # One row per deployment event: time_s, pipeline, version, event, then the event's details.
    timeline: list[dict[str, Any]] = field(default_factory=list)
    changes: dict[int, ChangeRecord] = field(default_factory=dict)  # change id -> its fate
    versions: list[VersionRecord] = field(default_factory=list)  # in build order
    # Every time hosts switch version: time_s, pipeline, version, hosts (their indices).
    switches: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class SimulationRecords:
    """Everything a run's frames and figures are built from (see the module docstring); its repr
    shows only the run's seed and length."""

    scenario: Scenario = field(repr=False)
    seed: Any  # as given to the run: an int or a numpy SeedSequence
    months: float
    horizon_s: float  # months x 30 days
    period_s: float  # the metric period
    layout: FleetLayout = field(repr=False)  # which region, AZ and cell each host is in
    plans: Mapping[str, PipelinePlan] = field(repr=False)  # each pipeline's stages and steps over the hosts
    # The rows appended during the run (see `RunRecords`).
    timeline: list[dict[str, Any]] = field(repr=False)
    changes: dict[int, ChangeRecord] = field(repr=False)
    versions: list[VersionRecord] = field(repr=False)
    switches: list[dict[str, Any]] = field(repr=False)
    arrivals: Mapping[str, tuple[int, ...]] = field(repr=False)  # pipeline -> change ids in arrival order
    faults: tuple[Fault, ...] = field(repr=False)  # the world's infrastructure faults
    # The world's bad changes; a bad change's position here is its index in `exposures.change`.
    bad_change_ids: tuple[int, ...] = field(repr=False)
    exposures: ExposureIntervals = field(repr=False)
    # Bad change id -> the damage it did (computed by the engine with the metric model).
    blast_radius: Mapping[int, BlastRadius] = field(repr=False)
    requests_per_period: np.ndarray = field(repr=False)  # regions x metric periods: requests each region received
    # Regions x metric periods: failed requests, sampled (Poisson) around the metric model's expected
    # errors and capped at the rounded requests: what the SLA's uptime is computed from.
    sla_errors_per_period: np.ndarray = field(repr=False)
    # Fault kind -> expected failed requests its faults caused by themselves (`deploysim.impact.fault_costs`).
    fault_failed_requests: Mapping[str, float] = field(default_factory=dict, repr=False)

    @property
    def region_names(self) -> tuple[str, ...]:
        return self.layout.region_names

    def version_changes(self, version_id: int) -> frozenset[int]:
        """The change ids a version holds (version 0, what the fleet ran at the start, holds none)."""
        if version_id == 0:
            return frozenset()
        v = self._versions_by_id[version_id]
        return frozenset(self.arrivals[v.pipeline][: v.changes_upto]) - v.excluded

    def host_versions(self, pipeline: str, at_s: float = math.inf) -> np.ndarray:
        """The version each host runs of the pipeline's artifact at `at_s` (default: the end of the run)."""
        current = np.zeros(self.layout.n_hosts, dtype=np.int64)
        for s in self.switches:
            if s["pipeline"] == pipeline and s["time_s"] <= at_s:
                current[s["hosts"]] = s["version"]
        return current

    @cached_property
    def _versions_by_id(self) -> dict[int, VersionRecord]:
        return {v.version_id: v for v in self.versions}
