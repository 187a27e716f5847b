"""The experiment commands: what they print, what they write, and one-line errors with exit code 2."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from conftest import SCENARIOS, patched, tiny_scenario_dict

import deploysim
from deploysim.cli import main

BAKE = "policy.pipelines.code.stages[0].one_box.bake.duration"


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("scen") / "tiny.yaml"
    path.write_text(yaml.safe_dump(patched(tiny_scenario_dict(), "changes.code.bad_probability", 0.5)))
    return path


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_run_with_replications_prints_estimates_with_intervals(tiny_path, tmp_path):
    out = invoke("run", tiny_path, "--replications", 4, "--months", 0.25, "--workers", 2, "--out-dir", tmp_path)
    assert out.exit_code == 0, out.output
    assert "4 replication(s) of 0.25 30-day month(s) each, seed 1" in out.stdout
    # A quarter month is not a month: the breach probability is said to be of a 7.5-day run.
    assert ("each run lasts 7.5 days, and the SLA breach probability is the chance that a 7.5-day run falls "
            "below the target, not a 30-day month") in out.stdout
    assert "lead time, all changes (p50)" in out.stdout  # run and compare: all changes
    assert "95% CI of mean" in out.stdout and "SLA breach probability" in out.stdout
    reps = pd.read_csv(tmp_path / "replications.csv")
    assert len(reps) == 4 and reps["replication"].tolist() == [0, 1, 2, 3]
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert {"mean", "mean_ci_low", "mean_ci_high", "median", "p90", "p99"} <= set(summary.columns)
    assert "simulating" not in out.stderr  # no progress bar when stderr is not a terminal


def test_compare_reports_paired_differences_against_the_first(tiny_path, tmp_path):
    slow = tmp_path / "slow.yaml"
    data = yaml.safe_load(tiny_path.read_text())
    data["name"] = "slow"
    data["policy"]["pipelines"]["code"]["stages"][0]["one_box"]["bake"] = "2h"
    slow.write_text(yaml.safe_dump(data))
    out = invoke("compare", tiny_path, slow, "-n", 3, "--months", 0.25, "--workers", 1, "--json")
    assert out.exit_code == 0, out.output
    tables = json.loads(out.stdout)
    assert {r["policy"] for r in tables["paired"]} == {"slow"}
    assert {r["baseline"] for r in tables["paired"]} == {"tiny"}
    lead = next(r for r in tables["paired"] if r["metric"] == "lead_time_p50_h")
    assert lead["mean_difference"] > 1.5  # the one-box bake is 110 minutes longer
    text = invoke("compare", tiny_path, slow, "-n", 3, "--months", 0.25, "--workers", 1)
    assert "Difference from tiny, replication by replication (common random numbers)" in text.stdout
    assert "note:" not in text.stdout  # same world: fully common random numbers


def test_sweep_prints_the_tradeoff_with_the_frontier(tiny_path):
    out = invoke("sweep", tiny_path, "--param", f"{BAKE}=1m,5m,20m", "-n", 3, "--months", 0.25, "--workers", 2)
    assert out.exit_code == 0, out.output
    assert "Trade-off: code pipeline's median lead time vs SLA breach probability" in out.stdout
    assert "* code.stages[0].one_box.bake.duration=5m" in out.stdout
    assert "  code.stages[0].one_box.bake.duration=20m" in out.stdout
    assert "code lead time p50" in out.stdout  # the trade-off is of the swept pipeline, and says so


def test_tune_names_the_best_setting(tiny_path):
    out = invoke("tune", tiny_path, "--sla", 99.9, "--max-breach-probability", 0.1,
                 "--vary", f"{BAKE}=1m,2m,5m,10m", "-n", 4, "--months", 0.5, "--workers", 2, "--judge", "estimate")
    assert out.exit_code == 0, out.output
    assert f"  {BAKE} = 5m" in out.stdout
    none = invoke("tune", tiny_path, "--sla", 99.9, "--max-breach-probability", 0.1,
                  "--vary", f"{BAKE}=1m,2m", "-n", 2, "--months", 0.5, "--workers", 1)
    assert none.exit_code == 1 and "No evaluated setting meets the bound" in none.stdout
    assert "Too few replications" not in none.stdout  # these settings breach: more months would not help
    assert "bad changes no alarm caught 100%" in none.stdout  # escaped bad changes are what breaches here


@pytest.mark.parametrize("args, message", [
    (["sweep", "{s}", "--param", "policy.pipelines.code.stages[0].one_bx.bake=1h"], "unknown parameter path"),
    (["sweep", "{s}", "--param", f"{BAKE}="], "empty grid"),
    (["sweep", "{s}", "--param", f"{BAKE}"], "malformed --param"),
    (["sweep", "{s}", "--param", f"{BAKE}=1h,,2h"], "empty grid"),
    (["sweep", "{s}", "--param", f"{BAKE}=fast"], "gives an invalid scenario"),
    (["sweep", "{s}", "--param", "policy..x=1"], "malformed parameter path"),
    (["tune", "{s}", "--max-breach-probability", "1.2"], "--max-breach-probability must be in [0, 1)"),
    (["tune", "{s}", "--max-breach-probability", "0.05", "--sla", "100"], "100"),
    (["tune", "{s}", "--max-breach-probability", "0.05", "--vary", "everything"], "unknown --vary"),
    (["compare", "{s}", "{s}"], "two scenarios share the name 'tiny'"),
    (["compare", "{s}", "--baseline", "nope"], "unknown baseline 'nope'"),
    (["run", "{s}", "--replications", "0"], "0"),
    (["run", "{s}", "--workers", "2"], "--workers and --dask-scheduler need --replications"),
])
def test_bad_input_is_one_line_and_exit_code_2(tiny_path, args, message):
    out = invoke(*[a.replace("{s}", str(tiny_path)) for a in args], "-n", "1") if args[0] != "run" else \
        invoke(*[a.replace("{s}", str(tiny_path)) for a in args])
    assert out.exit_code == 2, out.output
    assert message in out.stderr
    assert "Traceback" not in out.output
    errors = [line for line in out.stderr.splitlines() if line.startswith(("error:", "Error:"))]
    assert len(errors) == 1


def test_shipped_scenarios_compare_in_one_command():
    paths = [SCENARIOS / f"{n}.yaml" for n in ("aws-typical", "startup-fast", "no-safety")]
    out = invoke("compare", *paths, "-n", 2, "--months", 0.1, "--workers", 2, "--quiet")
    assert out.exit_code == 0, out.output
    for name in ("aws-typical", "startup-fast", "no-safety"):
        assert name in out.stdout
    assert "note: these scenarios differ outside their policies" in out.stdout


def test_tune_writes_the_users_file_with_only_the_tuned_field_changed(tiny_path, tmp_path):
    out_file = tmp_path / "tuned.yaml"
    out = invoke("tune", tiny_path, "--sla", 99.9, "--max-breach-probability", 0.1, "--vary", f"{BAKE}=1m,5m,10m",
                 "-n", 4, "--months", 0.5, "--workers", 2, "--judge", "estimate", "--write-scenario", out_file)
    assert out.exit_code == 0, out.output
    before, after = tiny_path.read_text().splitlines(), out_file.read_text().splitlines()
    changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert len(changed) == 1 and changed[0][1].strip() == "bake: 5m"
    assert f"wrote the tuned scenario to {out_file}" in out.stderr


def test_write_scenario_keeps_every_other_byte_of_a_hand_written_file(tmp_path):
    from deploysim.scenario.edit import write_scenario

    source = SCENARIOS / "aws-typical.yaml"
    target = tmp_path / "tuned.yaml"
    write_scenario(source, {"policy.pipelines.code.stages[3].waves[0].bake.duration": 1800.0,  # `bake: 4h`
                            "policy.pipelines.code.stages[2].waves[0].bake.duration": 7200.0,  # `{duration: 12h, ...}`
                            "policy.pipelines.config.stages[1].batching.max_share": 0.5}, target)
    before, after = source.read_text().splitlines(), target.read_text().splitlines()
    changed = [(a.strip(), b.strip()) for a, b in zip(before, after, strict=True) if a != b]
    assert changed == [
        ("- {unit: az, count: 1, bake: {duration: 12h, min_requests: {Create: 1000}}}",
         "- {unit: az, count: 1, bake: {duration: 2h, min_requests: {Create: 1000}}}"),
        ("- {unit: az, count: 1, bake: 4h}", "- {unit: az, count: 1, bake: 30m}"),
        ("batching: {max_share: 0.33, duration: 2m}", "batching: {max_share: 0.5, duration: 2m}"),
    ]
    tuned = deploysim.load_scenario(target)
    assert tuned.policy.pipelines["code"].stages[3].waves[0].bake.duration == 1800.0


def test_frames_can_be_written_as_parquet(tiny_path, tmp_path):
    out = invoke("run", tiny_path, "-n", 2, "--months", 0.1, "--workers", 1, "--out-dir", tmp_path / "csv")
    assert out.exit_code == 0, out.output
    out = invoke("compare", tiny_path, "-n", 2, "--months", 0.1, "--workers", 1, "--out-dir", tmp_path / "pq",
                 "--format", "parquet")
    assert out.exit_code == 0, out.output
    assert "wrote replications.parquet, summary.parquet" in out.stderr
    reps = pd.read_parquet(tmp_path / "pq" / "replications.parquet")
    assert reps["replication"].tolist() == [0, 1]
    pd.testing.assert_frame_equal(reps, pd.read_csv(tmp_path / "csv" / "replications.csv"), check_dtype=False)


def test_package_is_typed_and_completion_is_available():
    import importlib.resources
    import subprocess
    import sys
    from pathlib import Path

    assert importlib.resources.files("deploysim").joinpath("py.typed").is_file()
    script = Path(sys.executable).with_name("deploysim")
    proc = subprocess.run([str(script)], env={"_DEPLOYSIM_COMPLETE": "bash_source", "PATH": str(script.parent)},
                          capture_output=True, text=True, timeout=60)
    assert "_deploysim_completion()" in proc.stdout


COMMENTED = """\
# A hand-written scenario: these comments, the order and the shorthands must survive.
name: tiny  # the policy's name
start: '2026-01-05T00:00:00Z'
metric_period: 1m
fleet:
  host_capacity_rpm: 10000
  regions:
    - {name: r1, timezone: UTC, azs: 1, cells_per_az: 1, hosts_per_cell: 10}
traffic: {requests_per_min: 6000, daily_amplitude: 0.0, weekend_factor: 1.0, noise_cv: 0.0}
baseline: {error_rate: 0.0, latency_noise_cv: 0.0, resource_noise_pct: 0.0}
changes:
  code:
    arrivals: {changes_per_week: 1, working_hours_only: false}
    bad_probability: 0.5
    preprod_catch_probability: 0.0
    defects: [{name: all-fail, error_rate: 1.0}]
humans: {detection_delay: 30d, mitigation: 1h}
alarms:
  metric:
    - {name: fault_rate, metric: error_rate, threshold: 0.5, evaluation_periods: 3, datapoints_to_alarm: 3}
policy:
  pipelines:
    code:
      watch: {one_box: [fault_rate]}
      rollback: {automatic: true, duration: 10m}
      blockers: {incidents: false}
      stages:
        - name: prod
          kind: production
          regions: [r1]
          one_box:
            hosts: 1
            bake:  # spelled out: only its duration may change
              duration: 10m
              min_datapoints: 2
          batching:
            max_share: 1.0  # all at once
            duration: 5m
          waves: [{unit: region, count: rest, bake: 10m}]
"""
SHARE = "policy.pipelines.code.stages[0].batching.max_share"


@pytest.mark.parametrize("pick", ["4", "code.stages[0].one_box.bake=5m, code.stages[0].batching.max_share=0.5"])
def test_sweep_writes_the_picked_setting_into_the_users_file_keeping_comments(tmp_path, pick):
    source = tmp_path / "tiny.yaml"
    source.write_text(COMMENTED)
    out_file = tmp_path / "picked.yaml"
    bake = "policy.pipelines.code.stages[0].one_box.bake"  # a bake given a duration changes only its duration
    out = invoke("sweep", source, "--param", f"{bake}=1m,5m", "--param", f"{SHARE}=1.0,0.5", "-n", 1,
                 "--months", 0.1, "--workers", 1, "--quiet", "--write-scenario", out_file, "--pick", pick)
    assert out.exit_code == 0, out.output
    label = "code.stages[0].one_box.bake=5m, code.stages[0].batching.max_share=0.5"
    assert f"  {label}  " in out.stdout  # the fourth setting the sweep printed (the first param varies slowest)
    assert out.stderr.strip().splitlines()[-1] == f"wrote setting 4/4 ({label}) to {out_file} (2 field(s) changed)"
    before, after = source.read_text().splitlines(), out_file.read_text().splitlines()
    changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert changed == [("              duration: 10m", "              duration: 5m"),
                       ("            max_share: 1.0  # all at once", "            max_share: 0.5  # all at once")]
    written = deploysim.load_scenario(out_file)
    stage = written.policy.pipelines["code"].stages[0]
    assert (stage.one_box.bake.duration, stage.one_box.bake.min_datapoints, stage.batching.max_share) == (300, 2, 0.5)
    assert written.name == "tiny"


@pytest.mark.parametrize("args, message", [
    (["--write-scenario", "{o}"], "--write-scenario FILE needs --pick SETTING (a sweep has no single best setting"),
    (["--pick", "2"], "--pick goes with --write-scenario FILE"),
    (["--write-scenario", "{o}", "--pick", "3"], "--pick: setting 3 does not exist; the sweep has settings 1 to 2"),
    (["--write-scenario", "{o}", "--pick", "0"], "--pick: setting 0 does not exist"),
    (["--write-scenario", "{o}", "--pick", "bake=7m"], "--pick: no setting is labelled 'bake=7m'; give a setting's "
     "number (1 to 2) or its label as sweep prints it (1: code.stages[0].one_box.bake.duration=1m; 2: "),
])
def test_sweep_pick_errors_are_one_line_before_anything_is_simulated(tiny_path, tmp_path, args, message):
    out_file = tmp_path / "picked.yaml"
    out = invoke("sweep", tiny_path, "--param", f"{BAKE}=1m,5m", "-n", 1, "--months", 0.1,
                 *[a.replace("{o}", str(out_file)) for a in args])
    assert out.exit_code == 2, out.output
    assert out.stderr.startswith(f"error: {message}") and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert out.stdout == "" and not out_file.exists()  # nothing was simulated, nothing written
