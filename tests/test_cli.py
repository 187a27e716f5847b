"""The `deploysim` command: what a user types and what they get back (output, files, exit codes)."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

import deploysim
from deploysim.cli import main
from deploysim.summary_text import format_summary

REPO = Path(__file__).resolve().parent.parent
AWS = str(REPO / "scenarios" / "aws-typical.yaml")
FAST = ["--months", "0.25"]  # a quarter month keeps each simulation around a second

SUMMARY_KEYS = {"scenario", "seed", "months", "sla_target_pct", "allowed_downtime_s_per_month", "regions",
                "overall", "changes", "blast_radius", "ttd_s", "ttr_s", "lead_time", "dora"}


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


@pytest.fixture(scope="module")
def json_run():
    """One `run --json` of aws-typical, shared by the tests that only read its output."""
    return invoke("run", AWS, "--seed", "7", *FAST, "--json")


@pytest.fixture
def broken_policy_file(tmp_path):
    """aws-typical with a bake duration deep in the code pipeline that is not a duration."""
    data = yaml.safe_load(Path(AWS).read_text())
    data["policy"]["pipelines"]["code"]["stages"][2]["waves"][0]["bake"] = {"duration": "soon"}
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


# ------------------------------------------------------------------ run

def test_run_json_prints_only_the_summary_dict_as_json(json_run):
    assert json_run.exit_code == 0, json_run.output
    summary = json.loads(json_run.stdout)  # the whole of stdout parses: nothing else was printed
    assert SUMMARY_KEYS <= summary.keys()
    assert summary["seed"] == 7 and summary["months"] == 0.25 and summary["scenario"] == "aws-typical"
    assert set(summary["regions"]) == {r.name for r in deploysim.load_scenario(AWS).fleet.regions}
    assert {"p50", "p90", "max"} <= summary["ttd_s"].keys()


def no_nan_constants(value):
    raise AssertionError(f"non-standard JSON constant {value}")


def test_run_json_is_strict_json(json_run):
    json.loads(json_run.stdout, parse_constant=no_nan_constants)


class StubResult:
    """Stands in for a SimulationResult whose summary has figures that could not be computed."""

    def summary(self):
        return {"scenario": "stub", "ttd_s": {"p50": math.nan, "max": math.inf}, "dora": {"rates": [0.5, math.nan]}}


def test_run_json_turns_nan_into_null(monkeypatch):
    monkeypatch.setattr(deploysim, "simulate", lambda *args, **kwargs: StubResult())
    result = invoke("run", AWS, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout, parse_constant=no_nan_constants) == {
        "scenario": "stub", "ttd_s": {"p50": None, "max": None}, "dora": {"rates": [0.5, None]}}


def test_run_same_seed_prints_identical_json(json_run):
    again = invoke("run", AWS, "--seed", "7", *FAST, "--json")
    assert again.exit_code == 0, again.output
    assert again.stdout == json_run.stdout


def test_run_text_summary_has_every_section_and_out_dir_gets_the_four_frames(tmp_path):
    out_dir = tmp_path / "results"
    result = invoke("run", AWS, *FAST, "--sla", "99.99", "--out-dir", str(out_dir))
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert text.startswith("Scenario aws-typical, seed 1, 0.25 month(s)")  # seed defaults to 1
    assert "SLA target 99.99%: allowed downtime 4.3m per 30-day month" in text
    for section in ("Uptime per region", "us-east-1", "Changes", "Blast radius", "time to detect",
                    "time to roll back", "business days", "DORA four keys", "change failure rate"):
        assert section in text
    for name in ("changes", "timeline", "uptime", "monthly"):
        frame = pd.read_csv(out_dir / f"{name}.csv")
        assert len(frame) > 0
    assert "change_id" in pd.read_csv(out_dir / "changes.csv").columns


def test_run_invalid_scenario_exits_2_with_field_path_and_no_traceback(broken_policy_file):
    result = invoke("run", str(broken_policy_file))
    assert result.exit_code == 2
    assert "policy.pipelines.code.stages[2].waves[0].bake.duration" in result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.output


def test_run_value_error_from_library_exits_2_with_its_message(monkeypatch):
    def refuse(*args, **kwargs):
        raise ValueError("months must cover at least one metric period")

    monkeypatch.setattr(deploysim, "simulate", refuse)
    result = invoke("run", AWS)
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: months must cover at least one metric period"
    assert result.exception is None or isinstance(result.exception, SystemExit)


@pytest.mark.parametrize("args", [
    ["--months", "0"], ["--months", "-1"], ["--sla", "0"], ["--sla", "100.5"], ["--seed", "x"],
    ["--credit-table", "no-such-table"],
])
def test_run_bad_option_is_a_usage_error_exit_2(args):
    result = invoke("run", AWS, *args)
    assert result.exit_code == 2
    assert "Usage:" in result.stderr


# ------------------------------------------------------------------ format_summary

def test_format_summary_renders_nan_and_null_as_n_a(json_run):
    summary = json.loads(json_run.stdout)
    summary["ttd_s"] = {"p50": math.nan, "p90": None, "max": math.nan}
    summary["dora"]["change_failure_rate"] = math.nan
    summary["lead_time"]["p50_business_days"] = math.nan
    text = format_summary(summary)
    assert "time to detect     p50 n/a   p90 n/a   max n/a" in text
    assert "change failure rate         n/a" in text
    assert "(n/a business days)" in text
    assert not re.search(r"\bnan\b", text, re.IGNORECASE)


def test_format_summary_ignores_keys_it_does_not_know(json_run):
    summary = json.loads(json_run.stdout)
    assert format_summary({**summary, "a_future_figure": {"x": 1}}) == format_summary(summary)


# ------------------------------------------------------------------ validate

def test_validate_prints_ok_with_path_and_name_for_each_valid_file():
    result = invoke("validate", AWS, str(REPO / "scenarios" / "no-safety.yaml"))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [f"ok: {AWS} (aws-typical)",
                                          f"ok: {REPO / 'scenarios' / 'no-safety.yaml'} (no-safety)"]


def test_validate_invalid_file_exits_2_naming_the_deep_field_path(broken_policy_file):
    result = invoke("validate", str(broken_policy_file))
    assert result.exit_code == 2
    assert "policy.pipelines.code.stages[2].waves[0].bake.duration" in result.stderr
    assert str(broken_policy_file) in result.stderr
    assert "Traceback" not in result.output


def test_validate_yaml_syntax_error_exits_2_with_one_line_naming_the_line(tmp_path):
    path = tmp_path / "syntax.yaml"
    path.write_text("name: x\nfleet: [unclosed\n")
    result = invoke("validate", str(path))
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "not valid YAML" in result.stderr and "line" in result.stderr


def test_validate_missing_file_exits_2_with_one_clear_line(tmp_path):
    missing = tmp_path / "nope.yaml"
    result = invoke("validate", str(missing))
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [f"error: {missing}: cannot read file: No such file or directory"]


def test_validate_file_that_is_not_utf8_text_exits_2_with_one_line_naming_it(tmp_path):
    path = tmp_path / "binary.yaml"
    path.write_bytes(b"\x1f\x8b\x08\x00 not text")
    result = invoke("validate", str(path))
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: ")


def test_validate_checks_every_file_and_fails_if_any_is_bad(tmp_path):
    result = invoke("validate", str(tmp_path / "nope.yaml"), AWS)
    assert result.exit_code == 2
    assert f"ok: {AWS} (aws-typical)" in result.stdout


def test_installed_entry_point_validate_exit_codes_without_traceback(tmp_path):
    script = Path(sys.executable).parent / "deploysim"
    if not script.exists():
        pytest.skip("entry point not installed; run `.venv/bin/pip install -e .`")
    proc = subprocess.run([str(script), "validate", AWS, str(tmp_path / "nope.yaml")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stdout == f"ok: {AWS} (aws-typical)\n"
    assert "cannot read file" in proc.stderr and "Traceback" not in proc.stderr


# ------------------------------------------------------------------ schema, version

def test_schema_prints_the_scenario_json_schema():
    result = invoke("schema")
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert "policy" in schema["properties"]
    from deploysim.scenario.json_schema import scenario_json_schema

    assert schema == scenario_json_schema()
    # The bake shorthand (`bake: 1h`) is in it, next to the long form.
    assert schema["$defs"]["Bake"]["anyOf"][1] == {"$ref": "#/$defs/BakeFields"}


def test_version_prints_the_package_version():
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"deploysim, version {deploysim.__version__}"
