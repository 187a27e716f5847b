"""Shared builders for small scenarios whose figures can be worked out by hand."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import pytest

import deploysim
from deploysim.world import Change, world_for_seed

REPO = Path(__file__).resolve().parent.parent
SCENARIOS = REPO / "scenarios"


def tiny_scenario_dict() -> dict:
    """One region, 1 AZ, 1 cell, 10 hosts, flat noiseless traffic of 6000 requests/min, no baseline errors.

    One pipeline `code` with one production stage: a one-box host (bake 10 min), then the rest.
    The one-box is watched by a 3-of-3 alarm on error rate > 50% at a 1-minute period.
    """
    return {
        "name": "tiny",
        "start": "2026-01-05T00:00:00Z",
        "metric_period": "1m",
        "fleet": {"host_capacity_rpm": 10000, "regions": [
            {"name": "r1", "timezone": "UTC", "azs": 1, "cells_per_az": 1, "hosts_per_cell": 10}]},
        "traffic": {"requests_per_min": 6000, "daily_amplitude": 0.0, "weekend_factor": 1.0, "noise_cv": 0.0},
        "baseline": {"error_rate": 0.0, "latency_noise_cv": 0.0, "resource_noise_pct": 0.0},
        "changes": {"code": {
            "arrivals": {"changes_per_week": 1, "working_hours_only": False},
            "bad_probability": 1.0, "preprod_catch_probability": 0.0,
            "defects": [{"name": "all-fail", "error_rate": 1.0}]}},
        "humans": {"detection_delay": "30d", "mitigation": "1h"},
        "alarms": {"metric": [
            {"name": "fault_rate", "metric": "error_rate", "threshold": 0.5,
             "evaluation_periods": 3, "datapoints_to_alarm": 3}]},
        "policy": {"pipelines": {"code": {
            "watch": {"one_box": ["fault_rate"]},
            "rollback": {"automatic": True, "duration": "10m"},
            "blockers": {"incidents": False},
            "stages": [{"name": "prod", "kind": "production", "regions": ["r1"],
                        "one_box": {"hosts": 1, "bake": "10m"},
                        "batching": {"max_share": 1.0, "duration": "5m"},
                        "waves": [{"unit": "region", "count": "rest", "bake": "10m"}]}]}}},
    }


def with_changes(scenario, changes, *, seed=0, months=0.01):
    """Simulate `scenario` with exactly the given changes (and no infrastructure faults)."""
    world = dataclasses.replace(world_for_seed(scenario, seed=seed, months=months), changes=tuple(changes), faults=())
    return deploysim.simulate(scenario, seed=seed, months=months, world=world)


def bad_change(scenario, change_id=0, arrival_s=0.0, pipeline="code", defect_index=0):
    defect = scenario.changes[pipeline].defects[defect_index]
    return Change(change_id, pipeline, arrival_s, defect, False, 30 * 86400.0, 3600.0)


def good_change(change_id=0, arrival_s=0.0, pipeline="code"):
    return Change(change_id, pipeline, arrival_s, None, False, 30 * 86400.0, 3600.0)


@pytest.fixture
def tiny():
    return deploysim.scenario_from_dict(tiny_scenario_dict())


def patched(data: dict, path: str, value) -> dict:
    """A deep copy of `data` with the dotted/indexed `path` set to `value`."""
    out = copy.deepcopy(data)
    node = out
    parts = path.replace("]", "").replace("[", ".").split(".")
    for part in parts[:-1]:
        node = node[int(part)] if part.isdigit() else node[part]
    last = parts[-1]
    if last.isdigit():
        node[int(last)] = value
    else:
        node[last] = value
    return out

from localfleet_fixtures import fleet_factory, prometheus_binary, prometheus_server, shared_fleet, shared_load  # noqa: E402,F401  (real processes for tests/test_localfleet_*.py)
