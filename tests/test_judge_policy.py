"""The canary judge in the policy: its schema and validation, and how the one controller consumes its
verdicts (FAIL rolls back, INCONCLUSIVE pauses up to a limit, PASS never shortens a bake)."""

from __future__ import annotations

import pytest
from conftest import patched, tiny_scenario_dict

import deploysim
from deploysim.fleet import build_fleet
from deploysim.judge import Judgement, Verdict
from deploysim.policy import (
    BakeWait,
    DeployBaseline,
    DeployBatch,
    EnterStage,
    Observation,
    RemoveBaseline,
    RollBack,
    RollbackCause,
    RolloutController,
    build_plan,
    new_controller,
)
from deploysim.scenario.loader import ScenarioError

BOX = "policy.pipelines.code.stages.0.one_box"
KAYENTA = {"kind": "kayenta", "interval": "5m", "metrics": [{"metric": "error_rate", "critical": True}],
           "inconclusive": {"limit": 1, "then": "rollback"}}


def judged(judge: dict | None = None, bake: str = "10m") -> dict:
    return patched(tiny_scenario_dict(), BOX, {"hosts": 1, "bake": bake, "judge": judge or KAYENTA})


def controller(data: dict) -> RolloutController:
    scenario = deploysim.scenario_from_dict(data)
    return new_controller(build_plan("code", scenario.policy.pipelines["code"], build_fleet(scenario)),
                          scenario, scenario.start)


def to_bake(ctrl: RolloutController) -> BakeWait:
    ctrl.decide(0.0)
    if isinstance(ctrl.decide(0.0), DeployBaseline):
        ctrl.decide(0.0)
    bake = ctrl.decide(300.0)
    assert isinstance(bake, BakeWait)
    return bake


def verdict(v: Verdict, reason: str = "r") -> Observation:
    return Observation(judgement=Judgement(v, reason))


# ------------------------------------------------------------ schema and validation

def test_a_judge_defaults_to_a_deployed_baseline_for_kayenta_and_none_for_threshold_judges():
    sc = deploysim.scenario_from_dict(judged())
    judge = sc.policy.pipelines["code"].stages[0].one_box.judge
    assert judge.baseline_kind == "deploy" and judge.interval == 300.0
    assert judge.inconclusive.limit == 1 and judge.inconclusive.then == "rollback"
    flagger = {"kind": "flagger", "metrics": [{"metric": "error_rate", "max": 0.01}]}
    assert deploysim.scenario_from_dict(judged(flagger)).policy.pipelines["code"].stages[0] \
        .one_box.judge.baseline_kind == "none"


@pytest.mark.parametrize(("judge", "field", "words"), [
    ({**KAYENTA, "baseline": "none"}, "one_box.judge", "kayenta compares the canary with a baseline"),
    ({"kind": "flagger", "metrics": [{"metric": "error_rate"}]}, "one_box.judge", "needs min or max"),
    ({"kind": "argo", "metrics": [{"metric": "error_rate"}]}, "one_box.judge", "success_condition or"),
    ({"kind": "argo", "metrics": [{"metric": "error_rate", "success_condition": "result < x"}]},
     "one_box.judge", "unsupported name 'x'"),
    ({**KAYENTA, "interval": "0s"}, "one_box.judge", "judge.interval must be longer than 0 s"),
    ({**KAYENTA, "metrics": [{"metric": "error_rate", "api": "Nope"}]}, "one_box.judge.metrics[0].api",
     "unknown API"),
    ({**KAYENTA, "inconclusive": {"then": "pray"}}, "one_box.judge.inconclusive.then", "rollback"),
])
def test_a_wrong_judge_is_one_line_naming_its_field(judge, field, words):
    with pytest.raises(ScenarioError) as raised:
        deploysim.scenario_from_dict(judged(judge))
    lines = [line for line in str(raised.value).splitlines() if field in line]
    assert lines and any(words in line for line in lines), str(raised.value)


def test_a_rest_of_scope_baseline_on_the_last_wave_is_refused():
    data = patched(tiny_scenario_dict(), "policy.pipelines.code.stages.0.waves.0.judge",
                   {**KAYENTA, "baseline": "rest-of-scope"})
    with pytest.raises(ScenarioError, match=r"waves\[0\]\.judge\.baseline.*leaves no host"):
        deploysim.scenario_from_dict(data)


def test_the_plan_gives_a_judged_step_its_rest_of_scope():
    sc = deploysim.scenario_from_dict(judged({**KAYENTA, "baseline": "rest-of-scope"}))
    step = build_plan("code", sc.policy.pipelines["code"], build_fleet(sc)).stages[0].steps[0]
    assert step.judge is not None and step.rest_of_scope is not None
    assert step.rest_of_scope.tolist() == list(range(1, 10))


# ------------------------------------------------------------ the controller

def test_a_judged_bake_says_when_the_next_judgement_is_due():
    bake = to_bake(controller(judged()))
    assert bake.judge_at_s == 600.0 and bake.min_until_s == 900.0


def test_a_bake_without_a_judge_has_no_judgement_due():
    assert to_bake(controller(tiny_scenario_dict())).judge_at_s is None


def test_fail_rolls_back_at_once_with_the_judges_reason():
    ctrl = controller(judged())
    to_bake(ctrl)
    decision = ctrl.decide(600.0, verdict(Verdict.FAIL, "error_rate: High"))
    assert isinstance(decision, RollBack) and decision.cause is RollbackCause.JUDGE_FAILED
    assert decision.automatic and decision.reason == "canary judge failed: error_rate: High"


def test_pass_never_shortens_a_bake_below_its_duration():
    ctrl = controller(judged())
    to_bake(ctrl)
    early = ctrl.decide(600.0, verdict(Verdict.PASS))
    assert isinstance(early, BakeWait) and early.judge_at_s == 900.0
    assert isinstance(ctrl.decide(900.0, verdict(Verdict.PASS)), RemoveBaseline)
    assert isinstance(ctrl.decide(900.0), DeployBatch)


def test_a_deployed_baseline_comes_with_the_canary_and_goes_when_the_bake_is_over():
    ctrl = controller(judged())
    assert ctrl.decide(0.0) == EnterStage(0)
    assert ctrl.decide(0.0) == DeployBaseline(0, 0, 1)  # as many hosts as the one-box, before its batch
    assert isinstance(ctrl.decide(0.0), DeployBatch)
    assert isinstance(ctrl.decide(300.0), BakeWait)
    assert ctrl.snapshot()["baseline_up"] is True
    assert ctrl.decide(900.0, verdict(Verdict.PASS)) == RemoveBaseline(0, 0)
    assert ctrl.snapshot()["baseline_up"] is False
    wave = ctrl.decide(900.0)
    assert isinstance(wave, DeployBatch) and wave.step == 1


def test_a_rest_of_scope_or_threshold_judge_deploys_no_baseline():
    for judge in ({**KAYENTA, "baseline": "rest-of-scope"},
                  {"kind": "flagger", "metrics": [{"metric": "error_rate", "max": 0.01}]}):
        ctrl = controller(judged(judge))
        ctrl.decide(0.0)
        assert isinstance(ctrl.decide(0.0), DeployBatch)


def test_a_bake_that_is_over_waits_for_a_passing_judgement():
    ctrl = controller(judged())
    to_bake(ctrl)
    ctrl.decide(600.0, verdict(Verdict.PASS))
    # The duration is over but no judgement was made now: wait for the one due.
    held = ctrl.decide(900.0)
    assert isinstance(held, BakeWait) and held.judge_at_s == 900.0
    running = ctrl.decide(900.0, verdict(Verdict.RUNNING))
    assert isinstance(running, BakeWait) and running.judge_at_s == 1200.0
    assert isinstance(ctrl.decide(1200.0, verdict(Verdict.PASS)), RemoveBaseline)


def test_inconclusive_during_the_bake_only_waits_and_after_it_pauses_up_to_the_limit_then_rolls_back():
    ctrl = controller(judged())
    to_bake(ctrl)
    assert isinstance(ctrl.decide(600.0, verdict(Verdict.INCONCLUSIVE)), BakeWait)
    assert ctrl.judge_pauses == 0  # before the bake's end an inconclusive judgement pauses nothing
    assert isinstance(ctrl.decide(900.0, verdict(Verdict.INCONCLUSIVE)), BakeWait)
    assert ctrl.judge_pauses == 1
    decision = ctrl.decide(1200.0, verdict(Verdict.INCONCLUSIVE, "NoData"))
    assert isinstance(decision, RollBack) and decision.cause is RollbackCause.JUDGE_INCONCLUSIVE
    assert decision.automatic and "2 inconclusive judgements" in decision.reason and "NoData" in decision.reason


def test_inconclusive_past_the_limit_pages_people_when_told_to():
    ctrl = controller(judged({**KAYENTA, "inconclusive": {"limit": 0, "then": "page"}}))
    to_bake(ctrl)
    decision = ctrl.decide(900.0, verdict(Verdict.INCONCLUSIVE))
    assert isinstance(decision, RollBack) and decision.cause is RollbackCause.JUDGE_INCONCLUSIVE
    assert not decision.automatic  # a page: people halt the rollout and decide


def test_an_operators_promote_ends_a_judged_bake():
    ctrl = controller(judged())
    to_bake(ctrl)
    assert isinstance(ctrl.decide(400.0, Observation(promoted=True)), RemoveBaseline)


def test_the_judges_counters_round_trip_a_snapshot_and_old_snapshots_restore():
    ctrl = controller(judged())
    to_bake(ctrl)
    ctrl.decide(600.0, verdict(Verdict.PASS))
    ctrl.decide(900.0, verdict(Verdict.INCONCLUSIVE))
    state = ctrl.snapshot()
    assert state["judgements"] == 2 and state["judge_pauses"] == 1
    again = controller(judged())
    again.restore(state)
    assert again.decide(1200.0) == ctrl.decide(1200.0)
    old = {k: v for k, v in state.items() if k not in ("judgements", "judge_pauses")}
    older = controller(judged())
    older.restore(old)
    assert older.judgements == 0 and older.judge_pauses == 0


def test_the_reports_policy_words_say_how_a_step_is_judged():
    from deploysim.report.policy_text import stage_words

    sc = deploysim.scenario_from_dict(judged())
    words = stage_words(sc.policy.pipelines["code"].stages[0])
    assert "judged kayenta-style on error_rate against a baseline of the old version deployed beside it" in words
