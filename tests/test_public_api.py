"""The public names users import; changing them is a breaking change and must be deliberate."""

import importlib

import pytest

import deploysim
import deploysim.alarms
import deploysim.sla

SUBPACKAGE_NAMES = {
    "deploysim.policy": [
        "BakeWait", "BlockReason", "Calendar", "Complete", "Decision", "DeployBaseline", "DeployBatch", "Driver",
        "EnterStage", "Fail", "FailReason", "Observation", "Phase", "PipelinePlan", "RegionCalendar", "RemoveBaseline",
        "RollBack", "RollbackCause",
        "RollbackScope", "RolloutController", "StageKind", "StagePlan", "Step", "StepKind", "WaitApproval",
        "WaitBlocker", "WatchScope", "WatchedAlarm", "build_plan", "decision_row", "drive", "new_controller",
        "region_calendars", "run_to_end",
    ],
    "deploysim.alarms": [
        "ALARM_STATES", "COMPARISONS", "CompositeRule", "MISSING_DATA_TREATMENTS", "RuleSyntaxError", "breaches",
        "detection_probability", "evaluate", "first_alarm_index", "parse_rule",
    ],
    "deploysim.executor": [
        "ActionResult", "Adapter", "Clock", "Executor", "FakeAdapter", "FakeMetricSource", "Inventory",
        "InventoryError", "Journal", "MetricSource", "RealClock", "Rollout", "RunOutcome", "StepClock", "Target",
        "load_inventory", "load_rollout", "load_rollout_files",
    ],
    "deploysim.judge": [
        "ArgoAnalysis", "ArgoMetric", "CanaryAnalysis", "Classification", "ConditionError", "Direction",
        "EffectMeasure", "FlaggerAnalysis", "FlaggerConfig", "FlaggerMetric", "GroupScore", "Judgement", "Measurement",
        "MetricConfig", "MetricResult", "NanStrategy", "Phase", "ScoreConfig", "ShiftInterval", "ThresholdRange",
        "Verdict", "argo_analysis", "classify", "flagger_analysis", "judge_canary", "parse_condition", "score_canary",
    ],
    "deploysim.experiments": [
        "Experiment", "METRIC_COLUMNS", "ParameterError", "SUMMARY_METRICS", "TuneResult", "compare", "get_value",
        "monte_carlo", "pareto_front", "parse_param", "same_world", "sweep", "tune", "with_values",
    ],
    "deploysim.plot": [
        "budget_burndown", "cdf", "error_rate", "policy_comparison", "rollout_timeline", "sensitivity_tornado",
        "uptime_histogram", "version_map",
    ],
    "deploysim.report": [
        "Report", "ReportFigure", "Sensitivity", "build_report", "make_report", "sensitivity", "sla_table", "to_html",
        "to_markdown", "write_report",
    ],
    "deploysim.scenario": ["Scenario", "ScenarioError", "load_scenario", "scenario_from_dict"],
    "deploysim.localfleet": ["FleetError", "LocalFleet", "PrometheusError", "PrometheusServer"],
    "deploysim.cli": ["main"],
}


def test_top_level_public_names_are_pinned():
    assert sorted(deploysim.__all__) == sorted(
        [
            "Change",
            "Experiment",
            "Fault",
            "ParameterError",
            "Scenario",
            "ScenarioError",
            "SimulationResult",
            "TuneResult",
            "alarms",
            "compare",
            "format_duration_s",
            "load_scenario",
            "monte_carlo",
            "parse_duration_s",
            "plot",
            "replay_world",
            "scenario_from_dict",
            "simulate",
            "sla",
            "sweep",
            "tune",
            "uptime",
            "with_replay",
            "World",
        ]
    )
    for name in deploysim.__all__:
        assert hasattr(deploysim, name), name


def test_alarm_evaluator_is_public_with_cloudwatch_signature():
    """deploysim.alarms.evaluate is callable on a user's own datapoints, oldest first, None for missing."""
    state = deploysim.alarms.evaluate(
        [0.1, None, 0.9, 0.95, 0.99], threshold=0.5, comparison="GreaterThanThreshold",
        evaluation_periods=3, datapoints_to_alarm=3, treat_missing_data="missing", current_state="OK")
    assert state == "ALARM"


def test_sla_helpers_are_public():
    assert deploysim.sla.allowed_downtime(99.99) == 259.2
    assert deploysim.sla.service_credit(99.5, "s3-standard") == 10.0


@pytest.mark.parametrize("module", sorted(SUBPACKAGE_NAMES))
def test_every_subpackages_public_names_are_pinned(module):
    mod = importlib.import_module(module)
    assert sorted(mod.__all__) == sorted(SUBPACKAGE_NAMES[module])
    for name in mod.__all__:
        assert hasattr(mod, name), f"{module}.{name}"


def test_decision_types_say_what_they_are_for():
    """Every decision and the words they use are documented where a user meets them."""
    import deploysim.policy as policy

    for name in ("BakeWait", "BlockReason", "Complete", "DeployBatch", "EnterStage", "Fail", "FailReason",
                 "Observation", "RollBack", "RollbackCause", "RollbackScope", "WaitBlocker", "Driver", "drive"):
        doc = getattr(policy, name).__doc__
        assert doc and len(doc.strip()) > 20, name
