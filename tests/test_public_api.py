"""The public names users import; changing them is a breaking change and must be deliberate."""

import deploysim
import deploysim.alarms
import deploysim.sla


def test_top_level_public_names_are_pinned():
    assert sorted(deploysim.__all__) == sorted([
        "Experiment", "ParameterError", "Scenario", "ScenarioError", "SimulationResult", "TuneResult", "alarms",
        "compare", "format_duration_s", "load_scenario", "monte_carlo", "parse_duration_s", "plot", "scenario_from_dict",
        "simulate", "sla", "sweep", "tune", "uptime",
    ])
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
