"""Invariants that hold for every valid scenario (property-based, with hypothesis)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import SCENARIOS, tiny_scenario_dict
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import deploysim

DEFECTS = [
    {"name": "errors", "error_rate": 0.4},
    {"name": "api-errors", "error_rate": 0.6, "api": "Create"},
    {"name": "slow", "latency_factor": 5.0},
    {"name": "leak", "memory_growth_pct_per_h": 60, "start_delay": "5m"},
    {"name": "crash", "crash": True},
    {"name": "peak-only", "error_rate": 0.3, "min_load_factor": 1.1},
]


@st.composite
def scenarios(draw):
    data = tiny_scenario_dict()
    n_regions = draw(st.integers(1, 2))
    data["fleet"]["regions"] = [
        {"name": f"r{i}", "timezone": "UTC", "azs": draw(st.integers(1, 2)), "cells_per_az": draw(st.integers(1, 2)),
         "hosts_per_cell": draw(st.integers(1, 3))}
        for i in range(n_regions)
    ]
    data["traffic"] = {"requests_per_min": 4000, "daily_amplitude": draw(st.sampled_from([0.0, 0.3])),
                       "noise_cv": 0.05, "apis": {"Get": 0.8, "Create": 0.2}}
    data["baseline"] = {"error_rate": draw(st.sampled_from([0.0, 0.001, 0.01]))}
    data["changes"]["code"] = {
        "arrivals": {"changes_per_week": draw(st.sampled_from([20, 80])), "working_hours_only": False},
        "bad_probability": draw(st.sampled_from([0.0, 0.3, 1.0])),
        "preprod_catch_probability": draw(st.sampled_from([0.0, 0.5])),
        "defects": draw(st.lists(st.sampled_from(DEFECTS), min_size=1, max_size=3, unique_by=lambda d: d["name"])),
    }
    data["humans"] = {"detection_delay": draw(st.sampled_from(["20m", "2h"])), "mitigation": "10m"}
    data["alarms"]["metric"][0]["datapoints_to_alarm"] = draw(st.integers(1, 3))
    stage = {
        "name": "prod", "kind": "production", "regions": [r["name"] for r in data["fleet"]["regions"]],
        "one_box": {"hosts": 1, "bake": draw(st.sampled_from(["0s", "10m", "1h"]))},
        "batching": {"max_share": draw(st.sampled_from([0.34, 0.5, 1.0])), "duration": "3m"},
        "waves": [{"unit": draw(st.sampled_from(["az", "cell"])), "count": 1, "bake": "20m"},
                  {"unit": "region", "count": "rest", "bake": draw(st.sampled_from(["0s", "30m"]))}],
    }
    data["policy"]["pipelines"]["code"]["stages"] = [
        {"name": "beta", "kind": "preproduction", "duration": "5m", "bake": "5m"}, stage]
    data["policy"]["pipelines"]["code"]["watch"] = {"one_box": ["fault_rate"], "wave": ["fault_rate"]}
    return deploysim.scenario_from_dict(data)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(), st.integers(0, 2**16))
def test_invariants_hold_for_random_valid_scenarios(scenario, seed):
    """errors <= requests, uptime in [0, 100], one version per host, rolled-back changes run nowhere,
    same seed -> identical results."""
    result = deploysim.simulate(scenario, seed=seed, months=0.05)
    records = result.records

    up = result.uptime
    assert (up["errors"] <= up["requests"]).all()
    assert (up["errors"] >= 0).all()
    monthly = result.monthly
    for column in ("uptime_avg_error_rate_pct", "uptime_unavailable_minutes_pct"):
        assert monthly[column].between(0.0, 100.0).all()

    built = {0} | {v.version_id for v in records.versions}
    final = {name: records.host_versions(name) for name in records.plans}
    for hosts in final.values():
        # Exactly one version per host, and it is a version that was built.
        assert hosts.shape == (records.layout.n_hosts,)
        assert set(hosts.tolist()) <= built

    reverted_outcomes = {"rolled_back", "reverted_by_people", "caught_preprod"}
    exposures = records.exposures
    for cid, record in records.changes.items():
        if record.outcome in reverted_outcomes and not np.isnan(record.mitigated_s):
            running = [h for h, v in enumerate(final["code"].tolist()) if cid in records.version_changes(v)]
            assert running == [], f"reverted change {cid} still runs on {running}"
            if cid in records.bad_change_ids:
                still_open = exposures.change[exposures.off_s == np.inf]
                assert records.bad_change_ids.index(cid) not in still_open.tolist()

    changes = result.changes
    assert (changes["ttd_s"].dropna() >= 0).all()
    assert (changes["ttr_s"].dropna() >= changes["ttd_s"].fillna(0)[changes["ttr_s"].notna()]).all()

    again = deploysim.simulate(scenario, seed=seed, months=0.05)
    assert again.changes.equals(result.changes)
    assert again.uptime.equals(result.uptime)


@pytest.mark.parametrize("name", ["aws-typical", "startup-fast", "no-safety"])
def test_every_change_is_in_exactly_one_row_of_the_change_accounting(name):
    """total = deployed + in flight + caught in pre-production + caught by an alarm + found by
    people + false rollbacks + rolled back with a bad change, on several seeds."""
    scenario = deploysim.load_scenario(SCENARIOS / f"{name}.yaml")
    for seed in (0, 1, 2):
        c = deploysim.simulate(scenario, seed=seed, months=0.5).summary()["changes"]
        rows = (c["deployed"] + c["in_flight_at_end"] + c["caught_in_preprod"] + c["caught_by_alarm"]
                + c["found_by_people"] + c["false_rollbacks"] + c["rolled_back_with_bad_change"])
        assert rows == c["total"], (seed, c)
