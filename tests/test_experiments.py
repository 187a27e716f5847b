"""Monte Carlo replications, common random numbers, sweeps and tuning, on small scenarios whose
answers can be worked out by hand, and on the shipped scenarios."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from conftest import SCENARIOS, patched, tiny_scenario_dict

import deploysim
from deploysim.experiments import METRIC_COLUMNS, ParameterError, same_world
from deploysim.experiments.runner import child_seeds


@pytest.fixture(scope="module")
def small():
    """The tiny scenario with a code pipeline whose changes are bad half the time."""
    data = patched(tiny_scenario_dict(), "changes.code.bad_probability", 0.5)
    return deploysim.scenario_from_dict(data)


def test_replications_frame_is_tidy_and_complete(small):
    exp = deploysim.monte_carlo(small, replications=3, seed=5, workers=1, months=0.25)
    reps = exp.replications
    assert list(reps.columns) == ["policy", "replication", *METRIC_COLUMNS]
    assert list(reps["replication"]) == [0, 1, 2]
    assert set(reps["policy"]) == {"tiny"}
    assert set(exp.changes["replication"]) <= {0, 1, 2}
    # Each row is exactly the run of its child seed.
    one = deploysim.simulate(small, seed=child_seeds(5, 3)[1], months=0.25)
    assert reps.loc[1, "changes"] == len(one.changes)
    assert reps.loc[1, "downtime_s"] == pytest.approx(
        (100 - one.summary()["overall"]["uptime_avg_error_rate_pct"]) / 100 * 30 * 86400)
    # Every change of a replication is in exactly one row of its accounting.
    rows = reps[["deployed", "in_flight_at_end", "caught_in_preprod", "caught_by_alarm", "found_by_people",
                 "false_rollbacks", "rolled_back_with_bad_change"]].sum(axis=1)
    assert (rows == reps["changes"]).all()
    assert (reps["bad_changes"] > 0).any()


def test_same_seed_same_frames_on_one_or_two_workers(small):
    a = deploysim.monte_carlo(small, replications=6, seed=11, workers=1, months=0.25)
    b = deploysim.monte_carlo(small, replications=6, seed=11, workers=2, months=0.25)
    pd.testing.assert_frame_equal(a.replications, b.replications)
    pd.testing.assert_frame_equal(a.changes, b.changes)
    c = deploysim.monte_carlo(small, replications=6, seed=12, workers=1, months=0.25)
    assert not a.replications["changes"].equals(c.replications["changes"])


def test_replications_are_independent_streams():
    seeds = child_seeds(3, 4)
    draws = [np.random.default_rng(s).random(3).tolist() for s in seeds]
    assert len({tuple(d) for d in draws}) == 4
    assert [s.spawn_key for s in seeds] == [(0,), (1,), (2,), (3,)]
    assert child_seeds(3, 4)[2].generate_state(4).tolist() == seeds[2].generate_state(4).tolist()


def test_policies_share_the_random_world_per_replication(small):
    """Common random numbers: the same changes arrive at the same times under every policy."""
    slow = deploysim.experiments.with_values(small, {"policy.pipelines.code.stages[0].one_box.bake": "1h"}, name="slow")
    exp = deploysim.compare([small, slow], replications=3, seed=2, workers=1, months=0.25)
    ch = exp.changes
    for rep in range(3):
        a = ch[(ch["policy"] == "tiny") & (ch["replication"] == rep)]
        b = ch[(ch["policy"] == "slow") & (ch["replication"] == rep)]
        assert a["arrival_s"].tolist() == b["arrival_s"].tolist()
        assert a["bad"].tolist() == b["bad"].tolist()


def test_paired_interval_is_narrower_than_unpaired_on_shipped_scenarios():
    """aws-typical and no-safety share their world section, so the month-to-month variation that
    both see (how many changes arrive, which are bad) cancels in paired differences. Against a
    variant of aws-typical with a longer one-box bake, the downtime both see cancels too."""
    aws = deploysim.load_scenario(SCENARIOS / "aws-typical.yaml")
    none = deploysim.load_scenario(SCENARIOS / "no-safety.yaml")
    slower = deploysim.experiments.with_values(aws, {"policy.pipelines.code.stages[2].one_box.bake": "3h"},
                                               name="aws-typical-3h-one-box")
    assert same_world(aws, none) and same_world(aws, slower)
    exp = deploysim.compare([aws, none, slower], replications=8, seed=1, months=0.25, workers=2, keep_changes=False)
    paired = exp.paired(["deployments_per_week", "change_failure_rate", "downtime_s", "uptime_pct"])
    checked = [("no-safety", "deployments_per_week"), ("no-safety", "change_failure_rate"),
               ("aws-typical-3h-one-box", "downtime_s"), ("aws-typical-3h-one-box", "uptime_pct"),
               ("aws-typical-3h-one-box", "deployments_per_week")]
    for policy, metric in checked:
        row = paired[(paired["policy"] == policy) & (paired["metric"] == metric)].iloc[0]
        width, unpaired = row["ci_high"] - row["ci_low"], row["unpaired_ci_high"] - row["unpaired_ci_low"]
        # No interval (NaN) means every paired difference was the same: the narrowest there is.
        assert np.isnan(width) or width < 0.8 * unpaired, (policy, metric, width, unpaired)


def test_summary_reports_intervals_that_contain_the_estimate(small):
    exp = deploysim.monte_carlo(small, replications=12, seed=4, workers=2, months=0.25)
    summary = exp.summary().set_index("metric")
    for metric in ("downtime_s", "lead_time_p50_h", "uptime_pct"):
        row = summary.loc[metric]
        values = exp.replications[metric].dropna()
        if values.nunique() == 1:  # no spread: resampling cannot bound the mean, so there is no interval
            assert math.isnan(row["mean_ci_low"]) and math.isnan(row["mean_ci_high"]), metric
        else:
            assert row["mean_ci_low"] <= row["mean"] <= row["mean_ci_high"], metric
        if row["n"] >= 6:  # with 5 or fewer values, 95% cannot bound a median (0.5**5 > 0.025)
            assert row["median_ci_low"] <= row["median"] <= row["median_ci_high"], metric
        else:
            assert math.isnan(row["median_ci_low"]) and math.isnan(row["median_ci_high"]), metric
    breach = summary.loc["sla_breach"]
    k = int(exp.replications["sla_breach"].sum())
    assert breach["mean"] == pytest.approx(k / 12)
    assert breach["mean_ci_low"] <= breach["mean"] <= breach["mean_ci_high"]


def test_sweep_applies_each_value_and_labels_rows():
    good = deploysim.scenario_from_dict(patched(tiny_scenario_dict(), "changes.code.bad_probability", 0.0))
    path = "policy.pipelines.code.stages[0].waves[0].bake.duration"
    exp = deploysim.sweep(good, {path: ["10m", "2h"]}, replications=2, seed=3, workers=1, months=0.25)
    label = "code.stages[0].waves[0].bake.duration"
    assert exp.policies == [f"{label}=10m", f"{label}=2h"]
    assert set(exp.replications[label]) == {"10m", "2h"}
    ch = exp.changes[exp.changes["outcome"] == "deployed"]
    by = ch.groupby("policy")["lead_time_s"].min()
    # Hand-worked: the last bake is 110 minutes longer; nothing else changes for good changes.
    assert by[f"{label}=2h"] - by[f"{label}=10m"] == pytest.approx(110 * 60)
    tradeoff = exp.tradeoff(pipeline="code").set_index("policy")
    assert tradeoff["on_frontier"].any()
    lead = tradeoff["lead_time_p50_h"]
    assert lead[f"{label}=2h"] - lead[f"{label}=10m"] == pytest.approx(110 / 60)


@pytest.mark.parametrize("grid, message", [
    ({"policy.pipelines.code.stages[0].wavez[0].bake": ["1h"]}, "no field 'policy.pipelines.code.stages[0].wavez'"),
    ({"policy.pipelines.code.stages[5].one_box.bake": ["1h"]}, "out of range"),
    ({"policy.pipelines.code.stages[0].one_box.bake": []}, "empty grid"),
    ({}, "empty grid"),
    ({"policy.pipelines.code.stages[0].one_box.bake": ["soon"]}, "gives an invalid scenario"),
    ({"policy.pipelines.code.stages[0].batching.max_share": [1.5]}, "max_share"),
])
def test_bad_grids_are_reported_before_any_run(small, grid, message):
    with pytest.raises(ParameterError, match=None) as info:
        deploysim.sweep(small, grid, replications=1, workers=1)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_tuner_finds_the_hand_worked_shortest_safe_one_box_bake(small):
    """The one-box host switches at 5 min; its 3-of-3 one-minute alarm fires at 8 min, 3 min into
    the bake, and only the one-box is watched. A bake shorter than 3 min lets every bad change
    reach the whole region, which fails for the rest of the month (breach); a bake of 3 min or
    more catches it on the one-box (10% of traffic for minutes: no breach). Lead time grows with
    the bake, so the optimum on the ladder 1m, 2m, 5m, 10m, 20m is 5 minutes."""
    path = "policy.pipelines.code.stages[0].one_box.bake.duration"
    result = deploysim.tune(small, sla_target_pct=99.9, max_breach_probability=0.1,
                            vary={path: ["1m", "2m", "5m", "10m", "20m"]}, replications=6, seed=1,
                            months=0.5, workers=2, criterion="estimate")
    assert result.best is not None
    assert deploysim.parse_duration_s(result.best_values[path]) == 300.0
    cand = result.candidates.set_index(
        result.candidates["code.stages[0].one_box.bake.duration"].map(deploysim.parse_duration_s)
    )
    assert cand.loc[60.0, "breach_probability"] > 0.5 and cand.loc[120.0, "breach_probability"] > 0.5
    assert (cand.loc[[300.0, 600.0, 1200.0], "breach_probability"] == 0).all()
    assert cand.loc[[300.0, 600.0, 1200.0], "lead_time_p50_h"].is_monotonic_increasing
    assert bool(cand.loc[300.0, "on_frontier"]) and not bool(cand.loc[600.0, "on_frontier"])
    assert result.scenario.policy.pipelines["code"].stages[0].one_box.bake.duration == 300.0


def test_tuner_does_not_call_a_setting_safe_on_too_few_replications(small):
    """By default the bound is judged on the upper confidence limit: with 6 months and no breach the
    Clopper-Pearson bound is 0.46, far above 0.1, so no bake is shown safe enough (the estimate would
    pick 5 minutes), and the result says 36 months would show a setting without breaches within 0.1
    (1 - 0.025**(1/36) = 0.097 while 35 months give 0.100)."""
    path = "policy.pipelines.code.stages[0].one_box.bake.duration"
    result = deploysim.tune(small, sla_target_pct=99.9, max_breach_probability=0.1,
                            vary={path: ["5m", "10m", "20m"]}, replications=6, seed=1, months=0.5, workers=2)
    assert result.criterion == "upper"
    assert result.best is None and not result.candidates["feasible"].any()
    assert (result.candidates["breach_probability"] == 0).all()
    evidence = result.evidence()
    assert evidence is not None and evidence["held_back"] == 3
    assert evidence["replications_needed"] == evidence["replications_minimum"] == 36
    from deploysim.experiments.text import format_tune

    text = format_tune(result, "tiny", seed=1)
    assert "Too few replications to separate the settings" in text and "-n 36" in text


def test_tuner_reports_when_no_setting_meets_the_bound(small):
    path = "policy.pipelines.code.stages[0].one_box.bake.duration"
    result = deploysim.tune(small, sla_target_pct=99.9, max_breach_probability=0.1,
                            vary={path: ["1m", "2m"]}, replications=4, seed=1, months=0.5, workers=1)
    assert result.best is None and result.scenario is None
    assert not result.candidates["feasible"].any()
    causes = result.breach_causes()
    assert causes["breaching_months"] >= 1
    assert causes["downtime_share_by_cause"]["bad changes no alarm caught"] == pytest.approx(1.0)


@pytest.mark.parametrize("kwargs, message", [
    ({"max_breach_probability": 1.5}, "max breach probability must be in [0, 1)"),
    ({"max_breach_probability": -0.1}, "max breach probability must be in [0, 1)"),
    ({"max_breach_probability": 0.05, "sla_target_pct": 100.0}, "SLA target must be between 0 and 100"),
    ({"max_breach_probability": 0.05, "vary": "alarm thresholds"}, "unknown --vary"),
    ({"max_breach_probability": 0.05, "pipeline": "flags"}, "unknown pipeline 'flags'"),
])
def test_tuner_rejects_impossible_bounds(small, kwargs, message):
    args = {"sla_target_pct": 99.9, "replications": 1, "workers": 1} | kwargs
    with pytest.raises(ParameterError) as info:
        deploysim.tune(small, **args)
    assert message in str(info.value)


def test_bake_duration_group_moves_every_production_bake_in_three_dimensions():
    from deploysim.experiments.tune import dimensions

    aws = deploysim.load_scenario(SCENARIOS / "aws-typical.yaml")
    dims = dimensions(aws, "bake durations", "code")
    assert [d.name for d in dims] == ["one-box bakes", "first-wave bakes", "later-wave bakes"]
    stages = [s for s in aws.policy.pipelines["code"].stages if s.kind == "production"]
    assert len(dims[0].fields) == sum(s.one_box is not None for s in stages)
    assert len(dims[1].fields) == sum(len(s.waves) >= 1 for s in stages)
    assert len(dims[2].fields) == sum(max(len(s.waves) - 1, 0) for s in stages)
    for field in [f for d in dims for f in d.fields]:
        assert field.at(0) == deploysim.experiments.get_value(aws, field.path)  # offset 0 is the current policy
        assert field.at(-1) < field.at(0) or field.at(0) == 0.0


def test_progress_bar_only_when_asked_or_on_a_terminal(small, capsys):
    deploysim.monte_carlo(small, replications=2, seed=1, workers=1, months=0.1)
    assert capsys.readouterr().err == ""  # stderr is not a terminal under pytest
    deploysim.monte_carlo(small, replications=2, seed=1, workers=1, months=0.1, progress=True)
    assert "simulating" in capsys.readouterr().err


def test_pareto_front_keeps_exactly_the_non_dominated_points():
    lead = [1.0, 2.0, 3.0, 2.0, 5.0, math.nan]
    breach = [0.5, 0.2, 0.2, 0.6, 0.0, 0.0]
    assert deploysim.experiments.pareto_front(lead, breach).tolist() == [True, True, False, False, True, False]


def test_parameter_paths_can_name_stages_instead_of_counting_them():
    """`stages[name=prod-2-ap-northeast-1]` is the fourth code stage of aws-typical (beta, gamma, prod-1, prod-2)."""
    from deploysim.experiments.params import get_value, parse_path, resolve_path

    aws = deploysim.load_scenario(SCENARIOS / "aws-typical.yaml")
    named = "policy.pipelines.code.stages[name=prod-2-ap-northeast-1].waves[0].bake.duration"
    assert parse_path(named)[4] == ("name", "prod-2-ap-northeast-1")
    assert resolve_path(aws, named) == "policy.pipelines.code.stages[3].waves[0].bake.duration"
    assert get_value(aws, named) == get_value(aws, "policy.pipelines.code.stages[3].waves[0].bake.duration")
    changed = deploysim.experiments.with_values(aws, {named: "30m"})
    assert changed.policy.pipelines["code"].stages[3].waves[0].bake.duration == 1800.0
    assert changed.policy.pipelines["code"].stages[2].waves[0].bake.duration == \
        aws.policy.pipelines["code"].stages[2].waves[0].bake.duration
    with pytest.raises(ParameterError, match="no item of policy.pipelines.code.stages with name 'prod-9'"):
        get_value(aws, "policy.pipelines.code.stages[name=prod-9].waves[0]")
