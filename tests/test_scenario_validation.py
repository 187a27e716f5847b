"""Bad scenario input gets a clear error naming the field path and what was expected."""

from __future__ import annotations

import json

import pydantic
import pytest
import yaml
from conftest import SCENARIOS, patched
from hypothesis import given, settings
from hypothesis import strategies as st

import deploysim


def aws_typical() -> dict:
    return yaml.safe_load((SCENARIOS / "aws-typical.yaml").read_text())


def problems(data) -> dict[str, str]:
    with pytest.raises(deploysim.ScenarioError) as info:
        deploysim.scenario_from_dict(data)
    return dict(info.value.problems)


@pytest.mark.parametrize("name", ["aws-typical", "startup-fast", "no-safety", "canary-judge"])
def test_shipped_scenarios_are_valid(name):
    """Every scenario we ship loads without problems."""
    scenario = deploysim.load_scenario(SCENARIOS / f"{name}.yaml")
    assert scenario.name == name


def test_scenario_objects_are_immutable():
    """Validated scenarios cannot be changed by the engine or a notebook by accident."""
    scenario = deploysim.load_scenario(SCENARIOS / "startup-fast.yaml")
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        scenario.name = "other"


def test_bad_bake_duration_names_the_full_field_path():
    """A malformed duration deep in the policy is reported at policy.pipelines.code.stages[2].waves[0].bake..."""
    data = patched(aws_typical(), "policy.pipelines.code.stages.2.waves.0.bake", {"duration": "soon"})
    found = problems(data)
    assert "policy.pipelines.code.stages[2].waves[0].bake.duration" in found
    assert "duration" in found["policy.pipelines.code.stages[2].waves[0].bake.duration"]


def test_negative_min_requests_is_rejected_with_its_path():
    data = patched(
        aws_typical(), "policy.pipelines.code.stages.2.waves.0.bake", {"duration": "1h", "min_requests": {"Create": -5}}
    )
    assert "policy.pipelines.code.stages[2].waves[0].bake.min_requests.Create" in problems(data)


def test_unknown_field_is_reported_as_unknown():
    data = patched(aws_typical(), "policy.pipelines.code.stages.2.bakee", "1h")
    assert problems(data)["policy.pipelines.code.stages[2].bakee"].startswith("unknown field")


def test_missing_required_field_is_reported():
    data = aws_typical()
    del data["traffic"]["requests_per_min"]
    assert problems(data)["traffic.requests_per_min"] == "required field is missing"


def test_unknown_region_in_a_stage_is_reported_with_the_known_ones():
    data = patched(aws_typical(), "policy.pipelines.code.stages.2.regions", ["mars-1"])
    message = problems(data)["policy.pipelines.code.stages[2].regions[0]"]
    assert "mars-1" in message and "us-east-1" in message


def test_unknown_alarm_in_a_composite_rule_is_reported():
    data = patched(aws_typical(), "alarms.composite.0.rule", 'ALARM("High_Fault_Rate") OR ALARM("Nope")')
    assert "Nope" in problems(data)["alarms.composite[0].rule"]


def test_a_composite_alarm_that_refers_to_itself_is_reported():
    data = patched(aws_typical(), "alarms.composite.0.rule", 'ALARM("High_Fault_Rate") OR ALARM("Service_Health")')
    data = patched(data, "alarms.composite.0.name", "Service_Health")
    assert "cannot refer to itself" in problems(data)["alarms.composite[0].rule"]


def test_composite_rule_syntax_error_gives_the_column():
    data = patched(aws_typical(), "alarms.composite.0.rule", 'ALARM("High_Fault_Rate") OR (ALARM("High_CPU")')
    assert "column" in problems(data)["alarms.composite[0].rule"]


def test_m_greater_than_n_is_rejected():
    data = patched(aws_typical(), "alarms.metric.0.datapoints_to_alarm", 5)
    assert "datapoints_to_alarm" in problems(data)["alarms.metric[0]"]


def test_waves_that_leave_hosts_uncovered_are_rejected():
    data = patched(aws_typical(), "policy.pipelines.code.stages.3.waves", [{"unit": "az", "count": 1}])
    assert "count: rest" in problems(data)["policy.pipelines.code.stages[3].waves"]


def test_region_left_out_of_every_stage_is_rejected():
    data = aws_typical()
    data["fleet"]["regions"].append({"name": "ca-central-1", "timezone": "America/Toronto"})
    assert "ca-central-1" in problems(data)["policy.pipelines.code.stages"]


def test_multi_region_stage_whose_business_hours_never_overlap_is_rejected():
    """Dublin and Tokyo business hours never overlap: such a stage could never start."""
    data = patched(aws_typical(), "policy.pipelines.config.stages.2.regions", ["ap-northeast-1", "eu-west-1"])
    data = patched(data, "policy.pipelines.config.stages.3.regions", ["us-east-1"])
    assert "do not overlap" in problems(data)["policy.pipelines.config.stages[2].regions"]


def test_stage_whose_windows_stop_overlapping_after_daylight_saving_is_rejected():
    """Tokyo 09-10 and Los Angeles 16-17 overlap in winter only: once US daylight saving time starts
    (2026-03-08) they never do, and the stage would wait until November."""
    data = patched(aws_typical(), "policy.pipelines.config.stages.2.regions", ["ap-northeast-1", "us-west-2"])
    data = patched(data, "policy.pipelines.config.stages.4.regions", ["ap-northeast-1"])
    data["policy"]["pipelines"]["config"]["stages"].pop(4)
    message = problems(data)["policy.pipelines.config.stages[2].regions"]
    assert "2026-03" in message


def test_unknown_time_zone_is_rejected():
    data = patched(aws_typical(), "fleet.regions.0.timezone", "Mars/Olympus")
    assert "time zone" in problems(data)["fleet.regions[0].timezone"]


def test_all_problems_are_reported_at_once():
    data = patched(aws_typical(), "fleet.regions.0.timezone", "Mars/Olympus")
    data = patched(data, "traffic.daily_amplitude", 3)
    assert {"fleet.regions[0].timezone", "traffic.daily_amplitude"} <= set(problems(data))


def test_invalid_yaml_and_missing_file_are_scenario_errors(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: x\nfleet: [unclosed\n")
    with pytest.raises(deploysim.ScenarioError, match="not valid YAML at line"):
        deploysim.load_scenario(broken)
    with pytest.raises(deploysim.ScenarioError, match="cannot read file"):
        deploysim.load_scenario(tmp_path / "absent.yaml")


def test_yaml_is_loaded_safely(tmp_path):
    """Python object tags in a scenario file are refused, never executed."""
    evil = tmp_path / "evil.yaml"
    evil.write_text("name: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(deploysim.ScenarioError, match="not valid YAML"):
        deploysim.load_scenario(evil)


def test_value_fitting_no_form_of_a_field_lists_every_accepted_form():
    """A wave count is a whole number or 'rest': 'all' is reported once, at the field, with both forms."""
    found = problems(patched(aws_typical(), "policy.pipelines.code.stages.2.waves.0.count", "all"))
    message = found["policy.pipelines.code.stages[2].waves[0].count"]
    assert "integer" in message and "'rest'" in message
    assert len(found) == 1


def test_a_long_freeze_is_allowed_but_windows_that_never_open_are_not():
    """A three-week change freeze is a deliberate block; a window on no weekday is a mistake."""
    data = patched(aws_typical(), "policy.pipelines.code.blockers.freezes",
                   [{"start": "2026-01-05T00:00:00Z", "end": "2026-01-26T00:00:00Z"}])
    deploysim.scenario_from_dict(data)
    data = patched(aws_typical(), "policy.pipelines.code.blockers.time_windows", [{"days": []}])
    assert "policy.pipelines.code.blockers.time_windows[0].days" in problems(data)


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, prefix + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _paths(value, prefix + (index,))


ALL_PATHS = [p for p in _paths(yaml.safe_load((SCENARIOS / "aws-typical.yaml").read_text())) if p]


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(ALL_PATHS), st.sampled_from([None, "x", -1, 0, 1e12, [], {}, True, "1h"]))
def test_any_corrupted_field_is_a_scenario_error_never_a_crash(path, value):
    """Whatever one field is set to, loading gives a valid scenario or a ScenarioError naming fields."""
    data = aws_typical()
    node = data
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    try:
        deploysim.scenario_from_dict(data)
    except deploysim.ScenarioError as error:
        assert error.problems and all(isinstance(p, str) and m for p, m in error.problems)


# ---------------------------------------------------------------- the JSON Schema agrees with validate

class _EditorLoader(yaml.SafeLoader):
    """YAML as an editor's schema checker reads it: timestamps stay text (JSON has no dates)."""


_EditorLoader.yaml_implicit_resolvers = {
    first: [r for r in resolvers if r[0] != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _schema_validator():
    import jsonschema
    from click.testing import CliRunner

    from deploysim.cli import main

    out = CliRunner().invoke(main, ["schema"])
    assert out.exit_code == 0
    schema = json.loads(out.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


SCENARIO_FILES = sorted(p for p in SCENARIOS.glob("*.yaml") if not p.name.endswith(".versions.yaml"))


@pytest.mark.parametrize("path", SCENARIO_FILES, ids=lambda p: p.name)
def test_every_shipped_scenario_passes_the_emitted_json_schema(path):
    """`deploysim schema` accepts what `validate` accepts: the string forms of bakes and random durations."""
    errors = [f"{list(e.absolute_path)}: {e.message}"
              for e in _schema_validator().iter_errors(yaml.load(path.read_text(), Loader=_EditorLoader))]
    assert errors == []
    deploysim.load_scenario(path)


def _good() -> dict:
    return yaml.load((SCENARIOS / "aws-typical.yaml").read_text(), Loader=_EditorLoader)


GOOD_VARIANTS = [
    ("policy.pipelines.code.stages.2.waves.0.bake", "1h 30m"),
    ("policy.pipelines.code.stages.2.waves.0.bake", 5400),
    ("policy.pipelines.code.stages.2.waves.0.bake", {"duration": "90", "min_datapoints": 3}),
    ("faults.az_outage.duration", "45m"),
    ("faults.az_outage.duration", {"dist": "exponential", "mean": "20m"}),
]
BAD_VARIANTS = [
    ("policy.pipelines.code.stages.2.waves.0.bake", "5x"),
    ("policy.pipelines.code.stages.2.waves.0.bake", -5),
    ("policy.pipelines.code.stages.2.waves.0.bake", {"duration": "1h", "wait": 3}),
    ("faults.az_outage.duration", "lots"),
    ("faults.az_outage.duration", {"dist": "gamma", "mean": "20m"}),
    ("changes.code.bad_probability", "1%"),
    ("changes.code.bad_probability", 5),
    ("policy.pipelines.code.stages.2.waves.1.count", "all"),
    ("fleet.regions", []),
    ("traffic.peak_hour_local", 24),
]


@pytest.mark.parametrize("path, value", GOOD_VARIANTS)
def test_forms_validate_accepts_the_schema_accepts(path, value):
    data = patched(_good(), path, value)
    assert list(_schema_validator().iter_errors(data)) == []
    deploysim.scenario_from_dict(yaml.safe_load(yaml.safe_dump(data)))


@pytest.mark.parametrize("path, value", BAD_VARIANTS)
def test_forms_validate_rejects_the_schema_rejects(path, value):
    data = patched(_good(), path, value)
    assert list(_schema_validator().iter_errors(data)) != []
    with pytest.raises(deploysim.ScenarioError):
        deploysim.scenario_from_dict(yaml.safe_load(yaml.safe_dump(data)))


def test_problems_name_line_and_column_and_never_pydantic_words(tmp_path):
    data = yaml.safe_load((SCENARIOS / "aws-typical.yaml").read_text())
    data = patched(data, "changes.code.bad_probability", "1%")
    data = patched(data, "fleet.regions", [])
    data = patched(data, "policy.pipelines.code.stages.2.regions", "us-east-1")
    data = patched(data, "policy.pipelines.code.stages.2.waves.0.bake", "5x")
    data = patched(data, "faults.az_outage.duration", "lots")
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data, sort_keys=False))
    lines = bad.read_text().splitlines()
    with pytest.raises(deploysim.ScenarioError) as info:
        deploysim.load_scenario(bad)
    error = info.value
    found = dict(error.problems)
    assert found["changes.code.bad_probability"] == "expected a fraction, e.g. 0.0001 for 0.01%, not a percentage"
    assert found["fleet.regions"] == "needs at least 1 item(s), got 0"
    assert found["policy.pipelines.code.stages[2].regions"].startswith("expected a list")
    # A shorthand is reported where the author wrote it, not at the long form's hidden field.
    assert "policy.pipelines.code.stages[2].waves[0].bake" in found and "faults.az_outage.duration" in found
    line, column = error.positions["changes.code.bad_probability"]
    assert lines[line - 1][column - 1:].startswith("bad_probability: 1%")
    line, column = error.positions["faults.az_outage.duration"]
    assert lines[line - 1][column - 1:].startswith("duration: lots")
    text = str(error)
    assert f"changes.code.bad_probability (line {error.positions['changes.code.bad_probability'][0]}, column" in text
    for word in ("Input should", "Tuple should", "after validation", ".value", "valid tuple"):
        assert word not in text


def test_a_key_given_twice_is_an_error_naming_both_lines(tmp_path):
    text = (SCENARIOS / "startup-fast.yaml").read_text()
    twice = tmp_path / "twice.yaml"
    twice.write_text(text.replace("name: startup-fast", "name: startup-fast\nname: other", 1))
    first = next(i for i, line in enumerate(text.splitlines(), 1) if line.startswith("name:"))
    with pytest.raises(deploysim.ScenarioError) as info:
        deploysim.load_scenario(twice)
    assert info.value.problems == [("name", f"duplicate key 'name' at line {first + 1} (first given at line {first}); "
                                             "give each field once")]


def test_validate_passes_on_the_project_scenarios_folder():
    """The CI recipe in docs/howto.md, on the shipped folder: a local fleet's versions file is recognised."""
    from click.testing import CliRunner

    from deploysim.cli import main

    out = CliRunner().invoke(main, ["validate", *map(str, sorted(SCENARIOS.glob("*.yaml")))])
    assert out.exit_code == 0, out.output
    assert "ok: " + str(SCENARIOS / "local-fleet.versions.yaml") + " (versions file of a local fleet" in out.stdout


def test_init_writes_a_commented_starter_that_validates_and_fits_the_schema(tmp_path):
    from click.testing import CliRunner

    from deploysim.cli import main

    target = tmp_path / "shop.yaml"
    out = CliRunner().invoke(main, ["init", str(target), "--region", "us-east-1=America/New_York",
                                    "--region", "eu-west-1=Europe/Dublin", "--azs", "2", "--hosts-per-az", "5"])
    assert out.exit_code == 0, out.output
    text = target.read_text()
    assert text.startswith("# A starter scenario written by `deploysim init`")
    assert sum(line.lstrip().startswith("#") for line in text.splitlines()) >= 8  # every section explained
    scenario = deploysim.load_scenario(target)
    assert scenario.name == "shop"
    assert [(r.name, r.timezone, r.azs, r.hosts_per_cell) for r in scenario.fleet.regions] == [
        ("us-east-1", "America/New_York", 2, 5), ("eu-west-1", "Europe/Dublin", 2, 5)]
    assert [s.name for s in scenario.policy.pipelines["code"].stages] == [
        "pre-production", "prod-1-us-east-1", "prod-2-eu-west-1"]
    assert list(_schema_validator().iter_errors(yaml.load(text, Loader=_EditorLoader))) == []
    again = CliRunner().invoke(main, ["init", str(target)])
    assert again.exit_code == 2 and "exists; pass --force" in again.output
    bad = CliRunner().invoke(main, ["init", str(tmp_path / "x.yaml"), "--region", "a=Mars/Base"])
    assert bad.exit_code == 2 and "unknown IANA time zone 'Mars/Base'" in bad.output
    assert "needs at least" not in bad.output and not (tmp_path / "x.yaml").exists()
