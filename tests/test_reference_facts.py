"""The public facts of DESIGN.md that the shipped scenarios must reproduce."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import yaml
from conftest import SCENARIOS

import deploysim


def test_aws_typical_code_pipeline_median_lead_time_is_four_to_five_business_days():
    """Liguori: with no bad changes, about four to five business days to reach every region."""
    data = yaml.safe_load((SCENARIOS / "aws-typical.yaml").read_text())
    for source in data["changes"].values():
        source["bad_probability"] = 0.0
    data["faults"] = {}
    scenario = deploysim.scenario_from_dict(data)
    frames = [deploysim.simulate(scenario, seed=seed, months=2).changes for seed in (1, 2, 3, 4)]
    changes = pd.concat(frames)
    code = changes[(changes["pipeline"] == "code") & (changes["outcome"] == "deployed")]
    assert len(code) > 100
    median = float(np.median(code["lead_time_business_days"]))
    assert 4.0 <= median <= 5.0, median
    # No good change is rolled back when nothing is wrong: the alarms are quiet on noise alone.
    assert not changes["false_rollback"].any()


def test_safety_buys_uptime_against_the_same_world():
    """The AWS-style policy loses far fewer requests to the same bad changes than deploying everywhere at once."""
    safe = deploysim.simulate(deploysim.load_scenario(SCENARIOS / "aws-typical.yaml"), seed=3, months=1)
    unsafe = deploysim.simulate(deploysim.load_scenario(SCENARIOS / "no-safety.yaml"), seed=3, months=1)
    # Common random numbers: the same changes arrive at the same times in both.
    pd.testing.assert_series_equal(safe.changes["arrival_s"], unsafe.changes["arrival_s"])
    pd.testing.assert_series_equal(safe.changes["bad"], unsafe.changes["bad"])
    s, u = safe.summary(), unsafe.summary()
    assert s["blast_radius"]["failed_requests_total"] < u["blast_radius"]["failed_requests_total"] / 10
    assert s["overall"]["uptime_avg_error_rate_pct"] > u["overall"]["uptime_avg_error_rate_pct"]
    assert s["lead_time"]["p50_h"] > u["lead_time"]["p50_h"]


def _steps_started_outside_business_hours(result) -> tuple[int, int]:
    """(outside, all) starts of one-box and wave steps of pipelines with a time window, judged in
    the local time of every region of the step's stage: 09:00-17:00, Monday to Friday."""
    scenario = result.scenario
    tl = result.timeline
    outside = total = 0
    for row in tl[tl["event"] == "step_start"].itertuples():
        plan = result.records.plans[row.pipeline]
        if not plan.policy.blockers.time_windows:
            continue
        stage = next(s for s in plan.stages if s.name == row.stage)
        at = scenario.start + dt.timedelta(seconds=float(row.time_s))
        total += 1
        for r in stage.regions:
            local = at.astimezone(ZoneInfo(scenario.fleet.regions[r].timezone))
            if local.weekday() >= 5 or not 9 <= local.hour < 17:
                outside += 1
                break
    return outside, total


def test_aws_typical_starts_no_one_box_or_wave_outside_business_hours():
    """The header promises deployments only in business hours in each region's time zone: every
    step (one-box and each wave) waits for its window, not only a stage's first."""
    result = deploysim.simulate(deploysim.load_scenario(SCENARIOS / "aws-typical.yaml"), seed=0, months=1)
    outside, total = _steps_started_outside_business_hours(result)
    assert total > 300
    assert outside == 0
