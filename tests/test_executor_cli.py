"""`deploysim execute` and `deploysim status` as a user runs them: the plan touches nothing, bad
input is reported by field before anything is touched, one executor per state directory, Ctrl-C
stops safely and `--resume` continues, `status` tells where every target stands."""

from __future__ import annotations

import json
import signal
import time

import yaml
from click.testing import CliRunner
from executor_support import action_rows, cli, fast_scenario_dict, versions, write_inputs

from deploysim.cli import main
from deploysim.executor.journal import Journal


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def test_plan_prints_steps_hosts_bakes_alarms_and_expected_duration_and_changes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    scenario, inventory, names = write_inputs(tmp_path, fast_scenario_dict(), tmp_path / "fleet")
    result = run("execute", str(scenario), "--inventory", str(inventory), "--version", "v2", "--plan")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "\nstage 1/1 prod (production, regions r1)\n" in out
    assert "stage 1/1 prod, step 1/3 one-box: 1 host(s) in 1 batch(es)" in out
    assert "stage 1/1 prod, step 3/3 wave-2: 3 host(s) in 3 batch(es)" in out
    assert "watches: fault_rate@wave-1 (2 hosts)" in out
    assert f"batch 1/1: {names[0]} (file:{names[0]})" in out
    # Bakes 1 s + 2 s + 1 s, batches of 0 s, no blockers.
    assert "Expected duration: 4.0s" in out and "Nothing was changed" in out
    assert set(versions(tmp_path / "fleet", names).values()) == {"v1"}
    assert not (tmp_path / ".deploysim-state").exists()


def test_a_blocked_stage_shows_its_wait_in_the_plan(tmp_path):
    data = fast_scenario_dict()
    now = time.gmtime()
    # A one-hour window that opens two hours from now (UTC), every day.
    start = (now.tm_hour + 2) % 24
    data["policy"]["pipelines"]["code"]["blockers"]["time_windows"] = [
        {"days": ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"], "start_hour": start, "end_hour": start + 1}]
    if start + 1 > 24:
        return
    scenario, inventory, _ = write_inputs(tmp_path, data, tmp_path / "fleet")
    result = run("execute", str(scenario), "--inventory", str(inventory), "--version", "v2", "--plan")
    assert result.exit_code == 0, result.output
    assert "blocked by its time window until" in result.output
    assert "Expected duration: 1h" in result.output or "Expected duration: 2h" in result.output


def test_bad_inventories_are_reported_by_field_before_anything_is_touched(tmp_path):
    scenario, inventory, names = write_inputs(tmp_path, fast_scenario_dict(), tmp_path / "fleet")
    good = yaml.safe_load(inventory.read_text())
    cases = []
    missing = yaml.safe_load(inventory.read_text())
    del missing["targets"][names[2]]
    missing["targets"]["r9-az1-c1-h1"] = {}
    cases.append((missing, [f"targets: missing 1 host(s) of the scenario's fleet: {names[2]}",
                            "targets.r9-az1-c1-h1: not a host of the scenario's fleet"]))
    placeholder = yaml.safe_load(inventory.read_text())
    placeholder["adapter"]["deploy"][-1] = "{versoin}"
    cases.append((placeholder, ["adapter.deploy[5]: unknown placeholder {versoin}"]))
    no_current = yaml.safe_load(inventory.read_text())
    del no_current["adapter"]["current_version"]
    cases.append((no_current, ["adapter: kind 'command' needs current_version"]))
    bad_timeout = dict(good, adapter=dict(good["adapter"], timeout="soon"))
    cases.append((bad_timeout, ["adapter.timeout: expected a duration such as 90 (seconds), '5m', '1h30m' or '2d', "
                                "got 'soon'"]))
    kind = dict(good, metrics={"kind": "graphite"})
    cases.append((kind, ["metrics.kind: expected 'prometheus', 'probe' or 'command'"]))
    for data, expected in cases:
        inventory.write_text(yaml.safe_dump(data))
        result = run("execute", str(scenario), "--inventory", str(inventory), "--version", "v2",
                     "--state-dir", str(tmp_path / "state"))
        assert result.exit_code == 2, result.output
        for line in expected:
            assert line in result.output, (line, result.output)
        assert not (tmp_path / "state").exists()
    assert set(versions(tmp_path / "fleet", names).values()) == {"v1"}
    bad_version = run("execute", str(scenario), "--inventory", str(inventory), "--version", "--rm")
    assert bad_version.exit_code == 2


def test_an_unknown_pipeline_or_a_missing_option_is_bad_input(tmp_path):
    scenario, inventory, _ = write_inputs(tmp_path, fast_scenario_dict(), tmp_path / "fleet")
    result = run("execute", str(scenario), "--inventory", str(inventory), "--version", "v2", "--pipeline", "config")
    assert result.exit_code == 2 and "--pipeline: unknown pipeline 'config'" in result.output
    assert run("execute", str(scenario), "--version", "v2").exit_code == 2
    assert "holds no journal" in run("execute", "--resume", str(tmp_path / "nowhere")).output


def test_a_second_executor_on_the_same_state_dir_gets_a_clear_error_and_status_works_meanwhile(tmp_path):
    scenario, inventory, names = write_inputs(tmp_path, fast_scenario_dict(), tmp_path / "fleet", sleep_s=0.3)
    state = tmp_path / "state"
    first = cli("execute", str(scenario), "--inventory", str(inventory), "--version", "v2", "--state-dir", str(state),
                cwd=tmp_path)
    try:
        while action_rows(state / "journal.sqlite") < 1:
            assert first.poll() is None
            time.sleep(0.01)
        second = run("execute", "--resume", str(state))
        assert second.exit_code == 2
        assert f"another executor (pid {first.pid}) is running on {state}" in second.output
        status = run("status", str(state), "--json")
        assert status.exit_code == 0, status.output
        info = json.loads(status.output)
        assert info["state"] == "running" and info["executor_pid"] == first.pid
        assert [t["name"] for t in info["targets"]] == names and info["targets"][0]["before"] == "v1"
    finally:
        out, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    text = run("status", str(state))
    assert "State: complete" in text.output and f"{names[-1]}  v1      v2        v2" in text.output


def test_ctrl_c_finishes_the_current_action_journals_where_it_stopped_and_resume_continues(tmp_path):
    scenario, inventory, names = write_inputs(tmp_path, fast_scenario_dict(), tmp_path / "fleet", sleep_s=0.3)
    state = tmp_path / "state"
    proc = cli("execute", str(scenario), "--inventory", str(inventory), "--version", "v2", "--state-dir", str(state),
               cwd=tmp_path)
    while action_rows(state / "journal.sqlite") < 3:  # the second deploy has started
        assert proc.poll() is None
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, (out, err)
    assert "stopped at DeployBatch" in out and "--resume" in out
    journal = Journal.in_dir(state, readonly=True)
    assert journal.pending_intents() == []  # the deploy under way finished and was journaled
    assert [a.phase for a in journal.actions()] == ["intent", "done", "intent", "done"]
    assert journal.last_terminal_event()[0] == "stopped"
    journal.close()
    assert versions(tmp_path / "fleet", names)[names[1]] == "v2"
    assert "State: stopped" in run("status", str(state)).output
    resumed = run("execute", "--resume", str(state))
    assert resumed.exit_code == 0, resumed.output
    assert set(versions(tmp_path / "fleet", names).values()) == {"v2"}


def test_a_state_dir_holding_a_rollout_is_not_reused_by_a_fresh_start(tmp_path):
    scenario, inventory, _ = write_inputs(tmp_path, fast_scenario_dict(bakes_s=(0, 0, 0)), tmp_path / "fleet")
    state = tmp_path / "state"
    args = ["execute", str(scenario), "--inventory", str(inventory), "--version", "v2", "--state-dir", str(state)]
    assert run(*args).exit_code == 0
    again = run(*args)
    assert again.exit_code == 2 and "already holds a rollout; continue it with --resume" in again.output


def test_resume_with_rollback_returns_every_moved_target(tmp_path):
    scenario, inventory, names = write_inputs(tmp_path, fast_scenario_dict(bakes_s=(0, 0, 0)), tmp_path / "fleet")
    state = tmp_path / "state"
    assert run("execute", str(scenario), "--inventory", str(inventory), "--version", "v2",
               "--state-dir", str(state)).exit_code == 0
    undone = run("execute", "--resume", str(state), "--rollback")
    assert undone.exit_code == 1 and "rolled_back" in undone.output
    assert set(versions(tmp_path / "fleet", names).values()) == {"v1"}


def test_plan_without_an_inventory_names_hosts_by_the_scenarios_fleet(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    scenario, inventory, names = write_inputs(tmp_path, fast_scenario_dict(), tmp_path / "fleet")
    result = CliRunner().invoke(main, ["execute", str(scenario), "--version", "v2", "--plan"])
    assert result.exit_code == 0, result.output + result.stderr
    out = result.stdout
    assert "(6 hosts)" in out and "No inventory: hosts are named by the scenario's fleet" in out
    # The same steps, batches and hosts as the plan with the inventory, without the addresses.
    assert f"batch 1/1: {names[0]}\n" in out and f"batch 1/2: {names[1]}\n" in out
    assert "stage 1/1 prod, step 3/3 wave-2: 3 host(s) in 3 batch(es)" in out
    assert "Expected duration: 4.0s" in out and "Nothing was changed" in out
    with_inventory = run("execute", str(scenario), "--inventory", str(inventory), "--version", "v2", "--plan").output
    with_inventory = with_inventory.split("\nCurrent versions and what would change")[0]  # the plan, not the diff
    steps = [line for line in out.splitlines() if line.startswith("  stage ")]
    assert steps and steps == [line for line in with_inventory.splitlines() if line.startswith("  stage ")]
    assert not (tmp_path / ".deploysim-state").exists()
    assert set(versions(tmp_path / "fleet", names).values()) == {"v1"}


def test_a_real_rollout_still_needs_its_inventory_and_says_so_in_one_line(tmp_path):
    scenario, _, names = write_inputs(tmp_path, fast_scenario_dict(), tmp_path / "fleet")
    result = CliRunner().invoke(main, ["execute", str(scenario), "--version", "v2",
                                       "--state-dir", str(tmp_path / "state")])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "error: missing --inventory (see deploysim execute --help); only --plan runs without --inventory"]
    assert "Traceback" not in result.output and not (tmp_path / "state").exists()
    assert set(versions(tmp_path / "fleet", names).values()) == {"v1"}
    bad = CliRunner().invoke(main, ["execute", str(scenario), "--version", "v2", "--plan", "--pipeline", "config"])
    assert bad.exit_code == 2 and "--pipeline: unknown pipeline 'config'" in bad.stderr
    assert "Traceback" not in bad.output


def _plan_step_labels(plan_text: str) -> list[str]:
    """The step labels a plan prints: '  stage 1/2 beta, step 1/1 preprod: ...' -> the text before ': '."""
    return [line.strip().split(": ")[0] for line in plan_text.splitlines()
            if line.startswith("  stage ") and ", step " in line]


def test_status_labels_stages_and_steps_as_the_plan_does(tmp_path):
    data = fast_scenario_dict(bakes_s=(0, 0, 0))
    data["policy"]["pipelines"]["code"]["stages"].insert(
        0, {"name": "beta", "kind": "preproduction", "duration": "0s", "bake": "0s"})
    scenario, inventory, _ = write_inputs(tmp_path, data, tmp_path / "fleet")
    plan = run("execute", str(scenario), "--version", "v2", "--plan")
    assert plan.exit_code == 0, plan.output
    labels = _plan_step_labels(plan.output)
    assert labels == ["stage 1/2 beta, step 1/1 preprod", "stage 2/2 prod, step 1/3 one-box",
                      "stage 2/2 prod, step 2/3 wave-1", "stage 2/2 prod, step 3/3 wave-2"]
    assert "\nstage 2/2 prod (production, regions r1)\n" in plan.output
    # A version named "bad" trips the first wave's alarm: the rollout rolls back from stage 2's wave-1.
    state = tmp_path / "state"
    rolled = run("execute", str(scenario), "--inventory", str(inventory), "--version", "v2-bad",
                 "--state-dir", str(state))
    assert rolled.exit_code == 1, rolled.output
    text = run("status", str(state)).output
    for label in labels:
        assert f"\n  {label}  " in text, (label, text)
    assert "Last decision: RollBack stage 2/2 prod, step 2/3 wave-1 (" in text
    steps = dict(line.strip().split("  ", 1) for line in text.split("\nSteps\n")[1].split("\n\n")[0].splitlines())
    assert {label: state.strip() for label, state in steps.items()} == {
        labels[0]: "done", labels[1]: "done", labels[2]: "baking, rolled back from here", labels[3]: "not reached"}
    info = json.loads(run("status", str(state), "--json").output)
    assert info["last_decision"]["label"] == "stage 2/2 prod, step 2/3 wave-1"
    assert [row["label"] for row in info["steps"]] == labels
