"""The canary judges: Mann-Whitney classification, Kayenta scoring, Flagger and Argo analysis."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binomtest, mannwhitneyu

from deploysim.judge import (
    ArgoMetric,
    Classification,
    Direction,
    EffectMeasure,
    FlaggerConfig,
    FlaggerMetric,
    Measurement,
    MetricConfig,
    MetricResult,
    NanStrategy,
    Phase,
    ScoreConfig,
    ThresholdRange,
    Verdict,
    argo_analysis,
    classify,
    flagger_analysis,
    judge_canary,
    parse_condition,
    score_canary,
)
from deploysim.judge.condition import ConditionError
from deploysim.judge.kayenta import group_weights
from deploysim.judge.mann_whitney import u_test

BASE5 = [1.0, 2.0, 3.0, 4.0, 5.0]
CANARY5 = [6.0, 7.0, 8.0, 9.0, 10.0]
ALTERNATIVES = {Direction.INCREASE: "greater", Direction.DECREASE: "less", Direction.EITHER: "two-sided"}


# --- Mann-Whitney: agreement with scipy and the direction mapping ---------------------------------

def _sample_sets() -> list[tuple[list[float], list[float]]]:
    rng = np.random.default_rng(7)
    return [
        (BASE5, CANARY5),
        ([1, 2, 2, 3, 3, 3, 4], [2, 3, 3, 4, 4, 5, 5, 6]),  # ties
        ([0, 0, 0, 1, 1, 2, 0, 0], [0, 1, 1, 1, 2, 2, 3, 0, 1]),  # heavy ties, counts
        (list(rng.normal(100, 10, 40)), list(rng.normal(104, 10, 35))),
        (list(rng.exponential(5, 12)), list(rng.exponential(5, 15))),
    ]


@pytest.mark.parametrize("direction", list(Direction))
@pytest.mark.parametrize("pair", range(5))
def test_u_and_p_equal_scipy_for_every_alternative(pair, direction):
    base, canary = (np.asarray(s, dtype=float) for s in _sample_sets()[pair])
    expected = mannwhitneyu(canary, base, alternative=ALTERNATIVES[direction])
    u, p = u_test(canary, base, direction)
    assert u == pytest.approx(float(expected.statistic), abs=0)
    assert p == pytest.approx(float(expected.pvalue), rel=1e-12)
    result = classify(base, canary, MetricConfig("m", direction=direction))
    assert (result.u_statistic, result.p_value) == (u, p)


def test_hand_worked_five_against_five():
    """Every canary point is above every baseline point: U = 25, exact one-sided p = 1 / C(10, 5)."""
    up = classify(BASE5, CANARY5, MetricConfig("latency", direction=Direction.INCREASE))
    assert up.u_statistic == 25.0
    assert up.p_value == pytest.approx(1 / 252)
    assert up.shift is not None
    assert up.shift.estimate == 5.0  # median of the 25 differences 1..9
    assert up.shift.low == 3.0  # k = floor(12.5 - 1.645 * sqrt(275 / 12)) = 4 -> 4th smallest difference
    assert up.shift.high == math.inf
    assert up.effect_size == pytest.approx(8 / 3)
    assert up.classification is Classification.HIGH
    assert (up.n_baseline, up.n_canary) == (5, 5)

    either = classify(BASE5, CANARY5, MetricConfig("latency"))
    assert either.p_value == pytest.approx(2 / 252)
    assert either.shift is not None and (either.shift.low, either.shift.high) == (2.0, 8.0)  # k = 3
    assert either.classification is Classification.HIGH

    down = classify(BASE5, CANARY5, MetricConfig("latency", direction=Direction.DECREASE))
    assert down.p_value == pytest.approx(1.0)
    assert down.classification is Classification.PASS

    low = classify(CANARY5, BASE5, MetricConfig("throughput", direction=Direction.DECREASE))
    assert low.u_statistic == 0.0 and low.classification is Classification.LOW


def test_the_tolerance_band_blocks_a_significant_but_small_shift():
    """Shift 0.3 on every point: p = 0.0176 (ties, asymptotic); one-sided 95% CI low = 0.1 (16th of 64 diffs)."""
    base = [10.0, 10.1, 10.2, 10.3, 10.4, 10.5, 10.6, 10.7]
    canary = [v + 0.3 for v in base]
    narrow = classify(base, canary, MetricConfig("m", direction=Direction.INCREASE, tolerance=0.25))
    assert narrow.p_value == pytest.approx(0.01764, abs=1e-5)
    assert narrow.shift is not None and narrow.shift.low == pytest.approx(0.1)
    assert narrow.classification is Classification.HIGH  # 0.1 > band 0.25 * 0.3 = 0.075
    wide = classify(base, canary, MetricConfig("m", direction=Direction.INCREASE, tolerance=0.5))
    assert wide.classification is Classification.PASS  # 0.1 <= band 0.5 * 0.3 = 0.15, although p < alpha
    assert "tolerance band" in wide.reason


BASE10 = [98.0, 99.0, 100.0, 101.0, 102.0, 99.5, 100.5, 98.5, 101.5, 100.0]


@pytest.mark.parametrize(("factor", "expected"), [(1.099, Classification.PASS), (1.101, Classification.HIGH)])
def test_allowed_increase_boundary(factor, expected):
    canary = [v * factor for v in BASE10]
    result = classify(BASE10, canary, MetricConfig("latency", direction=Direction.INCREASE, allowed_increase=1.1))
    assert result.p_value is not None and result.p_value < 1e-3  # clearly significant either way
    assert result.effect_size == pytest.approx(factor)
    assert result.classification is expected


@pytest.mark.parametrize(("factor", "expected"), [(0.901, Classification.PASS), (0.899, Classification.LOW)])
def test_allowed_decrease_boundary(factor, expected):
    canary = [v * factor for v in BASE10]
    result = classify(BASE10, canary, MetricConfig("rps", direction=Direction.EITHER, allowed_decrease=0.9))
    assert result.classification is expected


def test_common_language_effect_size():
    result = classify(BASE5, CANARY5, MetricConfig("m", effect_measure=EffectMeasure.CLES, allowed_increase=0.9))
    assert result.effect_size == 1.0 and result.classification is Classification.HIGH
    calm = classify(BASE5, CANARY5, MetricConfig("m", effect_measure=EffectMeasure.CLES, allowed_increase=1.0))
    assert calm.classification is Classification.PASS


def test_identical_data_passes_without_a_test():
    result = classify([3, 1, 2], [1, 2, 3], MetricConfig("m"))
    assert result.classification is Classification.PASS and result.p_value is None


def test_few_samples_are_nodata_never_pass():
    result = classify([1.0, 2.0], [50.0, 60.0, 70.0], MetricConfig("m"))
    assert result.classification is Classification.NODATA
    assert (result.n_baseline, result.n_canary) == (2, 3)
    analysis = score_canary([result])
    assert analysis.verdict is Verdict.INCONCLUSIVE and analysis.outcome == "NoData"
    required = classify([1.0, 2.0], [50.0, 60.0, 70.0], MetricConfig("m", must_have_data=True))
    assert required.classification is Classification.NODATA_FAIL
    assert score_canary([required]).verdict is Verdict.FAIL
    assert classify([], [], MetricConfig("m", min_samples=1)).classification is Classification.NODATA


def test_nan_strategy_changes_the_verdict():
    """No error datapoints in the baseline (NaN) and errors in the canary, a critical metric."""
    baseline = [math.nan] * 10
    canary = [3.0, 4.0, 5.0, 6.0, 7.0, 3.0, 4.0, 5.0, 6.0, 7.0]
    metric = {"name": "errors", "direction": Direction.INCREASE, "critical": True}
    removed = classify(baseline, canary, MetricConfig(**metric, nan_strategy=NanStrategy.REMOVE))
    replaced = classify(baseline, canary, MetricConfig(**metric, nan_strategy=NanStrategy.REPLACE))
    assert removed.classification is Classification.NODATA and removed.n_baseline == 0
    assert score_canary([removed]).verdict is Verdict.INCONCLUSIVE
    assert replaced.classification is Classification.HIGH
    assert replaced.effect_size is not None and math.isnan(replaced.effect_size)  # zero baseline mean: gate skipped
    assert score_canary([replaced]).verdict is Verdict.FAIL


def _false_alarms(direction: Direction, trials: int = 2000) -> int:
    rng = np.random.default_rng(20240601)
    config = MetricConfig("m", direction=direction, confidence=0.95)
    failures = 0
    for _ in range(trials):
        base, canary = rng.normal(100.0, 10.0, 30), rng.normal(100.0, 10.0, 30)
        failures += judge_canary({"m": base}, {"m": canary}, [config]).verdict is Verdict.FAIL
    return failures


@pytest.mark.parametrize("direction", [Direction.EITHER, Direction.INCREASE])
def test_false_positive_rate_is_at_most_alpha(direction):
    failures = _false_alarms(direction)
    assert binomtest(failures, 2000, 0.05, alternative="greater").pvalue > 0.001, failures


# --- Kayenta scoring -----------------------------------------------------------------------------

def _r(name: str, label: Classification, group: str, critical: bool = False) -> MetricResult:
    return MetricResult(name, label, f"{name}: {label.value}", 30, 30, critical=critical, group=group)


def _ten(critical: bool) -> list[MetricResult]:
    """Group latency (weight 60): 5 of 5 pass -> 100; group errors (weight 40): 4 of 5 -> 80; score 92."""
    latency = [_r(f"lat{i}", Classification.PASS, "latency") for i in range(5)]
    errors = [_r(f"err{i}", Classification.PASS, "errors") for i in range(4)]
    return latency + errors + [_r("5xx", Classification.HIGH, "errors", critical=critical)]


WEIGHTS = {"latency": 60.0, "errors": 40.0}


def test_all_pass():
    analysis = score_canary([_r("a", Classification.PASS, "g1"), _r("b", Classification.PASS, "g2")])
    assert (analysis.verdict, analysis.outcome, analysis.score) == (Verdict.PASS, "Pass", 100.0)


def test_weighted_score_and_pass_threshold():
    analysis = score_canary(_ten(critical=False), ScoreConfig(pass_threshold=90, group_weights=WEIGHTS))
    assert analysis.score == pytest.approx(92.0)
    assert [g.score for g in analysis.groups] == [100.0, 80.0]
    assert analysis.verdict is Verdict.PASS


def test_one_critical_failure_fails_despite_a_high_score():
    analysis = score_canary(_ten(critical=True), ScoreConfig(pass_threshold=90, group_weights=WEIGHTS))
    assert analysis.score == pytest.approx(92.0)
    assert analysis.verdict is Verdict.FAIL and analysis.critical_failures == ("5xx",)
    assert "5xx" in analysis.reason


def test_marginal_score_is_inconclusive():
    analysis = score_canary(_ten(critical=False), ScoreConfig(pass_threshold=95, marginal_threshold=75,
                                                              group_weights=WEIGHTS))
    assert (analysis.verdict, analysis.outcome) == (Verdict.INCONCLUSIVE, "Marginal")


def test_below_marginal_fails():
    results = [_r("a", Classification.PASS, "g"), _r("b", Classification.HIGH, "g"), _r("c", Classification.LOW, "g")]
    analysis = score_canary(results)
    assert analysis.score == pytest.approx(100 / 3)
    assert (analysis.verdict, analysis.outcome) == (Verdict.FAIL, "Fail")


def test_all_nodata_is_inconclusive_not_pass():
    analysis = score_canary([_r("a", Classification.NODATA, "g"), _r("b", Classification.NODATA, "h")])
    assert (analysis.verdict, analysis.outcome, analysis.score) == (Verdict.INCONCLUSIVE, "NoData", None)


def test_nodata_group_neither_helps_nor_hurts_and_critical_nodata_is_inconclusive():
    results = [_r(n, Classification.PASS, "a") for n in "xyz"] + [_r("w", Classification.NODATA, "b")]
    analysis = score_canary(results, ScoreConfig(group_weights={"a": 50, "b": 50}))
    assert analysis.score == 100.0 and analysis.verdict is Verdict.PASS
    results[-1] = _r("w", Classification.NODATA, "b", critical=True)
    assert score_canary(results).verdict is Verdict.INCONCLUSIVE


def test_unweighted_groups_share_the_remainder():
    assert group_weights(["a", "b", "c"], {"a": 60.0}) == {"a": 60.0, "b": 20.0, "c": 20.0}


def test_worked_example_in_docs():
    """docs/canary-judge.md, "A worked example"."""
    metrics = [
        MetricConfig("latency_ms", direction=Direction.INCREASE, allowed_increase=1.1, group="latency"),
        MetricConfig("errors", direction=Direction.INCREASE, nan_strategy=NanStrategy.REPLACE, critical=True,
                     group="errors"),
    ]
    baseline = {"latency_ms": BASE5, "errors": [0.0, math.nan, 0.0, 1.0, 0.0]}
    canary = {"latency_ms": CANARY5, "errors": [0.0, 0.0, 1.0, 0.0, math.nan]}
    analysis = judge_canary(baseline, canary, metrics, ScoreConfig(group_weights={"latency": 70, "errors": 30}))
    latency, errors = analysis.metrics
    assert latency.classification is Classification.HIGH and errors.classification is Classification.PASS
    assert analysis.score == pytest.approx(30.0)
    assert (analysis.verdict, analysis.outcome) == (Verdict.FAIL, "Fail")


# --- Flagger -------------------------------------------------------------------------------------

FLAGGER = FlaggerConfig(
    metrics=(FlaggerMetric("request-success-rate", ThresholdRange(min=99.0)),
             FlaggerMetric("request-duration", ThresholdRange(max=500.0))),
    threshold=3, iterations=10)
GOOD = {"request-success-rate": 99.5, "request-duration": 320.0}
SLOW = {"request-success-rate": 99.9, "request-duration": 650.0}


def test_flagger_fails_at_the_interval_the_threshold_is_reached():
    intervals = [GOOD, SLOW, GOOD, {"request-success-rate": 97.0, "request-duration": 100.0}, GOOD, SLOW, GOOD]
    before = flagger_analysis(intervals[:5], FLAGGER)
    assert (before.verdict, before.failed_checks, before.decided_at) == (Verdict.RUNNING, 2, None)
    result = flagger_analysis(intervals, FLAGGER)
    assert (result.verdict, result.failed_checks, result.passed_intervals, result.decided_at) == (
        Verdict.FAIL, 3, 3, 6)
    assert "request-duration 650" in result.reason


def test_flagger_missing_value_is_a_failed_check_and_good_intervals_pass():
    config = FlaggerConfig(metrics=FLAGGER.metrics, threshold=2, iterations=3)
    result = flagger_analysis([GOOD, {"request-duration": 10.0}, GOOD, GOOD], config)
    assert (result.verdict, result.failed_checks, result.decided_at) == (Verdict.PASS, 1, 4)
    failed = flagger_analysis([{"request-success-rate": math.nan, "request-duration": 1.0}, SLOW], config)
    assert (failed.verdict, failed.decided_at) == (Verdict.FAIL, 2)
    assert ThresholdRange(min=1, max=2).contains(2.0) and not ThresholdRange(min=1, max=2).contains(2.01)


# --- Argo ----------------------------------------------------------------------------------------

def _m(*values: float | list[float] | None) -> list[Measurement]:
    return [Measurement(error="timeout") if v is None else Measurement(value=v) for v in values]


def test_argo_success_within_failure_limit_and_failure_beyond_it():
    metric = ArgoMetric("success-rate", success_condition="result[0] >= 0.95", interval_seconds=60, count=5,
                        failure_limit=1)
    ok = argo_analysis(metric, _m([0.97], [0.9], [0.96], [0.99], [0.98]))
    assert (ok.phase, ok.verdict, ok.successful, ok.failed, ok.measurements) == (
        Phase.SUCCESSFUL, Verdict.PASS, 4, 1, 5)
    bad = argo_analysis(metric, _m([0.97], [0.9], [0.96], [0.8], [0.98]))
    assert (bad.phase, bad.verdict, bad.failed, bad.measurements) == (Phase.FAILED, Verdict.FAIL, 2, 4)
    running = argo_analysis(metric, _m([0.97], [0.99]))
    assert (running.phase, running.verdict) == (Phase.RUNNING, Verdict.RUNNING)


def test_argo_inconclusive_limit():
    metric = ArgoMetric("error-rate", success_condition="result < 0.05", failure_condition="result > 0.1",
                        interval_seconds=30, count=10, inconclusive_limit=1)
    result = argo_analysis(metric, _m(0.01, 0.07, 0.02, 0.08, 0.01))
    assert result.phases == (Phase.SUCCESSFUL, Phase.INCONCLUSIVE, Phase.SUCCESSFUL, Phase.INCONCLUSIVE)
    assert (result.phase, result.verdict, result.inconclusive) == (Phase.INCONCLUSIVE, Verdict.INCONCLUSIVE, 2)


def test_argo_consecutive_errors():
    metric = ArgoMetric("latency", success_condition="result <= 0.5 && result >= 0.1", interval_seconds=10,
                        consecutive_error_limit=2)
    result = argo_analysis(metric, _m(None, None, 0.3, None, None, None, 0.3))
    assert (result.phase, result.verdict, result.errors, result.consecutive_errors, result.measurements) == (
        Phase.ERROR, Verdict.FAIL, 5, 3, 6)
    indefinite = argo_analysis(metric, _m(0.3, 0.2, None, 0.4))
    assert indefinite.phase is Phase.RUNNING and indefinite.consecutive_errors == 0
    once = argo_analysis(ArgoMetric("once", failure_condition="result > 1"), _m(0.5))
    assert once.phase is Phase.SUCCESSFUL  # no interval and no count: a single measurement


def test_argo_condition_that_cannot_apply_is_an_error_measurement():
    metric = ArgoMetric("m", success_condition="result[0] >= 0.95", count=1, consecutive_error_limit=0)
    assert argo_analysis(metric, _m(0.99)).phase is Phase.ERROR


@pytest.mark.parametrize(("text", "value", "expected"), [
    ("result < 0.05", 0.01, True),
    ("result < 0.05", 0.05, False),
    ("result[0] >= 0.95", [0.95], True),
    ("result[1] >= 0.95", [0.99, 0.5], False),
    ("result <= 2 && result >= 1", 1.5, True),
    ("result <= 2 && result >= 1", 2.5, False),
    ("result > 1 || result < 0 && result > -5", -6.0, False),
    ("(result > 1 || result < 0) && result > -5", -1.0, True),
    ("!(result > 1)", 0.5, True),
    ("not result > 1 and result != 0", 0.0, False),
    ("result == 1e-3", 0.001, True),
    ("result < 0.05", math.nan, False),
])
def test_condition_grammar(text, value, expected):
    assert parse_condition(text).evaluate(value) is expected


@pytest.mark.parametrize(("text", "named"), [
    ("__import__('os').system('true')", "__import__"),
    ("result < len(result)", "len"),
    ("result.__class__ == 1", "'.'"),
    ("result < 1; exit", "';'"),
    ("result < 1 +", "'\\+'"),
    ("result <", "the end"),
    ("result[0.5] > 1", "0.5"),
    ("result", "the end"),
])
def test_unsafe_or_malformed_condition_is_a_clear_value_error(text, named):
    with pytest.raises(ValueError, match=named):
        parse_condition(text)
    with pytest.raises(ValueError, match=named):
        ArgoMetric("m", success_condition=text)


def test_condition_error_on_missing_index():
    with pytest.raises(ConditionError, match=r"result\[2\]"):
        parse_condition("result[2] > 0").evaluate([1.0])
