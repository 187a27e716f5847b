"""The canary judge in the simulator: it reads the alarms' datapoints of the canary and its baseline,
judges every interval over the data so far, and the one controller acts on its verdicts."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import bad_change, good_change, patched, tiny_scenario_dict, with_changes
from scipy.stats import binomtest

import deploysim

BOX = "policy.pipelines.code.stages.0.one_box"
KAYENTA = {"kind": "kayenta", "interval": "5m", "metrics": [{"metric": "error_rate", "critical": True}]}
CONFIDENCE = 0.95


def judged_scenario(judge: dict | None = None, *, rpm: float = 6000, defect_error_rate: float = 0.2,
                    bake: str = "30m"):
    """tiny (10 hosts; the one-box takes a tenth of `rpm`) with 1% baseline errors, a one-box judged
    every 5 min over a `bake`, and an alarm that never fires (threshold 100%): only the judge can catch."""
    data = patched(tiny_scenario_dict(), BOX, {"hosts": 1, "bake": bake, "judge": judge or KAYENTA})
    data["traffic"]["requests_per_min"] = rpm
    data["baseline"]["error_rate"] = 0.01
    data["changes"]["code"]["defects"] = [{"name": "errors", "error_rate": defect_error_rate}]
    data["alarms"]["metric"][0]["threshold"] = 1.0
    return deploysim.scenario_from_dict(data)


def judgements(result) -> pd.DataFrame:
    tl = result.timeline
    return tl[tl["event"] == "judgement"].reset_index(drop=True)


def test_a_large_defect_on_a_high_traffic_canary_is_caught_at_the_first_judgement():
    sc = judged_scenario()
    result = with_changes(sc, [bad_change(sc)], seed=1, months=0.02)
    first = judgements(result).iloc[0]
    bake_start = result.timeline.query("event == 'bake_start'")["time_s"].iloc[0]
    assert first["verdict"] == "fail" and first["time_s"] == bake_start + 300.0
    change = result.changes.iloc[0]
    assert change["outcome"] == "rolled_back" and change["detected_by"] == "judge@one-box"
    assert change["ttd_s"] == first["time_s"] - change["first_bad_s"]
    assert result.summary()["canary_judge"]["rollbacks_by_judge"] == 1


def test_without_a_defect_false_fails_stay_within_what_the_confidence_allows():
    """Over many seeds, a good version's rollbacks by the judge are no more frequent than 1 - confidence
    allows for the whole bake (one-sided binomial test at 1%), although it judges six times."""
    sc = judged_scenario({**KAYENTA, "confidence": CONFIDENCE})
    seeds = range(120)
    failed = sum(with_changes(sc, [good_change()], seed=s, months=0.01).summary()["canary_judge"]["fail_verdicts"] > 0
                 for s in seeds)
    assert binomtest(failed, len(seeds), 1 - CONFIDENCE, alternative="greater").pvalue > 0.01, failed


def test_a_good_version_passes_only_at_the_bakes_end_never_earlier():
    sc = judged_scenario()
    result = with_changes(sc, [good_change()], seed=2, months=0.02)
    tl = result.timeline
    bake_start = tl.query("event == 'bake_start' and step == 'one-box'")["time_s"].iloc[0]
    bake_end = tl.query("event == 'bake_end' and step == 'one-box'")["time_s"].iloc[0]
    assert set(judgements(result)["verdict"]) == {"pass"}
    assert bake_end == bake_start + 1800.0  # six passing judgements, and the bake still lasts its 30 min
    assert result.changes.iloc[0]["outcome"] == "deployed"


def test_low_traffic_gives_too_few_samples_so_the_judge_is_inconclusive_and_pages_after_its_limit():
    """60 requests/min over 10 hosts: the one-box serves 6 a period, under min_period_requests (10), so
    its error rates are no datapoints: NoData, inconclusive, never a pass, even for a large defect."""
    judge = {**KAYENTA, "inconclusive": {"limit": 2, "then": "page"}}
    sc = judged_scenario(judge, rpm=60)
    result = with_changes(sc, [bad_change(sc)], seed=1, months=0.02)
    verdicts = judgements(result)["verdict"].tolist()
    # 5 during the bake; at its end (30 min) and 5 min later it pauses; the third one past it pages.
    assert verdicts == ["inconclusive"] * 8
    events = result.timeline
    assert events.query("event == 'rollback_start'")["automatic"].tolist() == [False]
    assert result.changes.iloc[0]["detected_by"] == "judge@one-box"


def test_a_deployed_baseline_costs_host_hours_and_the_same_seed_gives_the_same_run():
    sc = judged_scenario()
    one = with_changes(sc, [good_change()], seed=5, months=0.02)
    two = with_changes(sc, [good_change()], seed=5, months=0.02)
    pd.testing.assert_frame_equal(one.timeline, two.timeline)
    summary = one.summary()["canary_judge"]
    # One host beside the one-box from its deploy (5 min) to the end of its 30 min bake.
    assert summary["baseline_host_hours"] == pytest.approx(35 / 60)
    assert summary["judgements"] == 6 and summary["pass_verdicts"] == 6


def test_a_rest_of_scope_baseline_costs_nothing_and_catches_the_defect():
    sc = judged_scenario({**KAYENTA, "baseline": "rest-of-scope"})
    result = with_changes(sc, [bad_change(sc)], seed=1, months=0.02)
    assert judgements(result)["verdict"].tolist() == ["fail"]
    assert result.summary()["canary_judge"]["baseline_host_hours"] == 0.0


@pytest.mark.parametrize("judge", [
    {"kind": "flagger", "interval": "5m", "threshold": 1, "iterations": 3,
     "metrics": [{"metric": "error_rate", "max": 0.05}]},
    {"kind": "argo", "interval": "5m", "count": 3, "metrics": [{"metric": "error_rate",
                                                                "success_condition": "result < 0.05"}]},
])
def test_threshold_judges_catch_the_defect_and_pass_the_good_version(judge):
    sc = judged_scenario(judge)
    bad = with_changes(sc, [bad_change(sc)], seed=1, months=0.02)
    assert judgements(bad)["verdict"].tolist() == ["fail"]
    good = with_changes(sc, [good_change()], seed=1, months=0.02)
    assert judgements(good)["verdict"].iloc[-1] == "pass" and good.changes.iloc[0]["outcome"] == "deployed"
    assert good.summary()["canary_judge"]["baseline_host_hours"] == 0.0  # no baseline for threshold judges


def test_the_shipped_canary_judge_scenario_judges_its_one_boxes_and_counts_the_baselines_cost():
    from conftest import SCENARIOS

    sc = deploysim.load_scenario(SCENARIOS / "canary-judge.yaml")
    judged = sc.policy.pipelines["code"].stages[1].one_box.judge
    assert judged.kind == "kayenta" and judged.baseline_kind == "deploy"
    summary = deploysim.simulate(sc, seed=1, months=0.1).summary()["canary_judge"]
    assert summary["judgements"] > 0 and summary["pass_verdicts"] > 0
    assert summary["baseline_host_hours"] > 0


def test_the_printed_summary_shows_the_judges_and_their_baselines_cost_only_when_there_is_a_judge():
    from deploysim.summary_text import format_summary

    sc = judged_scenario()
    text = format_summary(with_changes(sc, [good_change()], seed=5, months=0.02).summary())
    assert "Canary judges" in text and "judgements               6 (pass 6" in text
    assert "baseline hosts deployed  0.6 host-hours" in text
    plain = deploysim.scenario_from_dict(tiny_scenario_dict())
    assert "Canary judges" not in format_summary(with_changes(plain, [good_change()], months=0.02).summary())


def test_deploysim_detectors_measures_the_scenarios_own_judge_when_its_one_box_has_one():
    from conftest import SCENARIOS

    from deploysim.experiments.detectors import compare_detectors, format_table

    sc = deploysim.load_scenario(SCENARIOS / "canary-judge.yaml")
    summary = compare_detectors(sc, replications=5, seed=1, defects=(0.0, 0.05), traffic_rpm=(1000,))
    assert "judge: the scenario's one-box judge (kayenta on error_rate, latency_p99_ms" in format_table(summary)
    judge = summary[summary["detector"] == "judge"].set_index("defect_error_rate")["rate"]
    assert judge[0.05] == 1.0 and judge[0.0] == 0.0
