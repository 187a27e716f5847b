"""`deploysim history STATE_DIR [--json]`: every journaled decision, action and event of a real run
over the file fleet, in time order; a missing or broken state directory is one line, exit 2."""

from __future__ import annotations

import json

from click.testing import CliRunner
from executor_support import fast_scenario_dict, versions, write_inputs

from deploysim.cli import main


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def _index(records: list[dict], **match) -> int:
    """Position of the first record with all the `match` fields."""
    for i, record in enumerate(records):
        if all(record.get(k) == v for k, v in match.items()):
            return i
    raise AssertionError(f"no record with {match} in {[(r['source'], r['kind'], r['phase']) for r in records]}")


def test_history_of_a_rolled_back_run_lists_deploys_the_alarm_and_the_rollback_in_order(tmp_path):
    # "bad" in the version trips wave-1's 1-of-1 alarm: the one-box and wave-1 deploy, then roll back.
    scenario, inventory, names = write_inputs(tmp_path, fast_scenario_dict(bakes_s=(0, 2, 0)), tmp_path / "fleet")
    state = tmp_path / "state"
    rolled = run("execute", str(scenario), "--inventory", str(inventory), "--version", "v2-bad",
                 "--state-dir", str(state))
    assert rolled.exit_code == 1, rolled.output
    assert set(versions(tmp_path / "fleet", names).values()) == {"v1"}

    as_json = run("history", str(state), "--json")
    assert as_json.exit_code == 0, as_json.output
    records = json.loads(as_json.output)
    times = [r["time_s"] for r in records]
    assert times == sorted(times)
    started = _index(records, source="event", kind="started")
    first_deploy = _index(records, source="decision", kind="DeployBatch")
    deploy_intent = _index(records, source="action", kind="deploy", phase="intent", target=names[0])
    deploy_done = _index(records, source="action", kind="deploy", phase="done", target=names[0])
    rollback = _index(records, source="decision", kind="RollBack")
    rollback_started = _index(records, source="event", kind="rollback_started")
    rollback_done = _index(records, source="action", kind="rollback", phase="done", target=names[0])
    rolled_back = _index(records, source="event", kind="rolled_back")
    assert started < first_deploy < deploy_intent < deploy_done < rollback < rollback_started < rollback_done \
        < rolled_back == len(records) - 1
    decision = records[rollback]
    assert decision["detail"]["cause"] == "alarm" and decision["detail"]["alarm"] == "fault_rate@wave-1"
    assert decision["label"] == "stage 1/1 prod, step 2/3 wave-1"
    assert records[deploy_done]["current"] == "v2-bad" and records[rollback_done]["current"] == "v1"
    # Every deploy and rollback intent has its outcome; the wave-2 hosts were never touched.
    touched = {r["target"] for r in records if r["source"] == "action"}
    assert touched == set(names[:3])
    assert sum(r["source"] == "action" and r["phase"] == "intent" for r in records) == \
        sum(r["source"] == "action" and r["phase"] == "done" for r in records) == 6

    text = run("history", str(state))
    assert text.exit_code == 0, text.output
    lines = text.output.splitlines()
    assert lines[0].split() == ["time", "record", "where", "details"]
    # The same rows as --json, in the same order.
    assert len(lines) == len(records) + 1
    for line, record in zip(lines[1:], records, strict=True):
        assert f"{record['source']} {record['kind']}" in line
    assert "decision RollBack" in lines[rollback + 1]
    assert "roll back (alarm fault_rate@wave-1; scope" in lines[rollback + 1]
    assert "stage 1/1 prod, step 2/3 wave-1" in lines[rollback + 1]
    assert "action deploy done" in lines[deploy_done + 1] and "reports v2-bad" in lines[deploy_done + 1]


def test_history_shows_an_operators_rollback_with_who_and_why(tmp_path):
    scenario, inventory, names = write_inputs(tmp_path, fast_scenario_dict(bakes_s=(0, 0, 0)), tmp_path / "fleet")
    state = tmp_path / "state"
    assert run("execute", str(scenario), "--inventory", str(inventory), "--version", "v2",
               "--state-dir", str(state)).exit_code == 0
    undone = run("execute", "--resume", str(state), "--rollback", "--reason", "customer tickets")
    assert undone.exit_code == 1, undone.output
    records = json.loads(run("history", str(state), "--json").output)
    complete = _index(records, source="event", kind="complete")
    resumed = _index(records, source="event", kind="resumed")
    rollback = _index(records, source="decision", kind="RollBack")
    assert complete < resumed < rollback < _index(records, source="event", kind="rolled_back")
    assert "customer tickets" in records[resumed]["detail"]
    assert records[rollback]["detail"]["cause"] == "operator"
    assert "customer tickets" in records[rollback]["detail"]["detail"]
    text = run("history", str(state)).output
    assert "customer tickets" in text and "roll back (operator" in text
    assert set(versions(tmp_path / "fleet", names).values()) == {"v1"}


def test_history_lists_a_replaced_inventory(tmp_path):
    data = fast_scenario_dict(bakes_s=(0, 0, 0))
    scenario, inventory, names = write_inputs(tmp_path, data, tmp_path / "fleet")
    state = tmp_path / "state"
    assert run("execute", str(scenario), "--inventory", str(inventory), "--version", "v2",
               "--state-dir", str(state)).exit_code == 0
    fixed = tmp_path / "fixed.yaml"
    fixed.write_text(inventory.read_text())
    assert run("execute", "--resume", str(state), "--inventory", str(fixed)).exit_code == 0
    records = json.loads(run("history", str(state), "--json").output)
    replaced = records[_index(records, source="event", kind="inventory_replaced")]
    assert "fixed.yaml" in replaced["detail"]
    assert "event inventory_replaced" in run("history", str(state)).output


def test_history_of_a_missing_or_broken_state_dir_is_one_line_exit_2(tmp_path):
    missing = run("history", str(tmp_path / "nowhere"))
    assert missing.exit_code == 2
    assert len(missing.stderr.strip().splitlines()) == 1 and "holds no journal" in missing.stderr
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "journal.sqlite").write_text("not a database at all\n" * 50)
    result = run("history", str(broken), "--json")
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "not a readable deploysim journal" in result.stderr
    assert "Traceback" not in result.output
