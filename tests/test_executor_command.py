"""The command adapter: argument lists without a shell, time-outs that kill the whole command,
retries with back-off, output kept for the journal, and success only when it was seen."""

from __future__ import annotations

import sys
import time

import pytest
import yaml
from executor_support import HELPER, command_inventory, fast_scenario_dict, file_fleet, versions, write_inputs

from deploysim.executor import Executor, load_rollout
from deploysim.executor.command_adapter import CommandAdapter, run_once, run_with_retries
from deploysim.executor.interfaces import Target
from deploysim.executor.inventory import AdapterSpec, fill
from deploysim.executor.journal import Journal

PY = sys.executable
EVIL_TARGET = "x; touch pwned"
EVIL_VERSION = "$(touch pwned)"


def target(name: str = "t1") -> Target:
    return Target(host=0, name=name, region="r1", az="r1-az1", cell="r1-az1-c1", address="10.0.0.1",
                  labels={"pod": "api-0"})


def spec(**fields) -> AdapterSpec:
    base = {"kind": "command", "deploy": ["true"], "current_version": ["echo", "v1"], "timeout": "5s",
            "retries": 0, "backoff": "0.05s"}
    base.update(fields)
    return AdapterSpec.model_validate(base)


def test_names_cannot_inject_commands_because_no_shell_ever_parses_them(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    record = [PY, "-c", "import sys, json; open('argv.json', 'w').write(json.dumps(sys.argv[1:]))",
              "{target}", "--image=app:{version}", "{label_pod}"]
    adapter = CommandAdapter(spec(deploy=record))
    result = adapter.deploy(target(EVIL_TARGET), EVIL_VERSION, timeout_s=5)
    assert result.ok
    assert not (tmp_path / "pwned").exists()
    assert yaml.safe_load((tmp_path / "argv.json").read_text()) == [EVIL_TARGET, f"--image=app:{EVIL_VERSION}", "api-0"]
    # Through the file fleet too: the names end up as data (a file name, file contents), nothing runs.
    fleet = file_fleet(tmp_path / "fleet", [EVIL_TARGET])
    fleet_adapter = CommandAdapter(spec(deploy=[PY, HELPER, str(fleet), "deploy", "{target}", "{version}"],
                                        current_version=[PY, HELPER, str(fleet), "current", "{target}"]))
    assert fleet_adapter.deploy(target(EVIL_TARGET), EVIL_VERSION, timeout_s=5).ok
    assert fleet_adapter.current_version(target(EVIL_TARGET), timeout_s=5) == EVIL_VERSION
    assert not (tmp_path / "pwned").exists() and not (fleet / "pwned").exists()


def test_fill_leaves_braces_that_are_not_placeholders_alone():
    argv = ["kubectl", "patch", "deploy/{target}", "-p", '{"spec":{"image":"app:{version}"}}']
    assert fill(argv, {"target": "api", "version": "v2"})[2:] == ["deploy/api", "-p", '{"spec":{"image":"app:v2"}}']


def test_a_hanging_command_is_killed_with_its_children_at_the_time_out(tmp_path):
    marker = tmp_path / "grandchild-survived"
    grandchild = tmp_path / "grandchild.py"
    grandchild.write_text(f"import time\ntime.sleep(1.5)\nopen({str(marker)!r}, 'w').close()\n")
    # The command starts a grandchild that would write the marker after 1.5 s, then hangs.
    hang = [PY, "-c", "import subprocess, sys, time; subprocess.Popen([sys.executable, sys.argv[1]]); time.sleep(60)",
            str(grandchild)]
    start = time.monotonic()
    outcome = run_once(hang, timeout_s=0.5)
    assert time.monotonic() - start < 5
    assert not outcome.ok and outcome.returncode is None and "timed out after 0.5s" in outcome.error
    time.sleep(2.0)
    assert not marker.exists()


def test_failed_attempts_are_retried_with_doubling_back_off_and_all_output_is_kept(tmp_path):
    counter = tmp_path / "count"
    # Fails twice (saying so on stderr), then succeeds.
    flaky = [PY, "-c", "import pathlib, sys; p = pathlib.Path(sys.argv[1]); n = int(p.read_text() or 0) "
             "if p.exists() else 0; p.write_text(str(n + 1)); print('attempt', n + 1); "
             "sys.exit(0 if n >= 2 else (print('busy, try later', file=sys.stderr) or 3))", str(counter)]
    waits = []
    ok, attempts = run_with_retries(flaky, timeout_s=5, retries=3, backoff_s=0.5, sleep=waits.append)
    assert ok and len(attempts) == 3 and waits == [0.5, 1.0]
    assert [a.returncode for a in attempts] == [3, 3, 0]
    assert "busy, try later" in attempts[0].describe() and "exit 3" in attempts[0].describe()

    counter.unlink()
    adapter = CommandAdapter(spec(deploy=flaky, retries=1), sleep=lambda s: None)
    result = adapter.deploy(target(), "v2", timeout_s=5)
    assert not result.ok and result.attempts == 2
    assert "attempt 2:" in result.detail and "busy, try later" in result.detail


def test_current_version_is_none_when_it_cannot_be_told():
    adapter = CommandAdapter(spec(current_version=[PY, "-c", "import sys; sys.exit(1)"]))
    assert adapter.current_version(target(), timeout_s=5) is None
    silent = CommandAdapter(spec(current_version=["true"]))
    assert silent.current_version(target(), timeout_s=5) is None


def _executor(tmp_path, inventory_changes=None, version="v2", automatic_rollback=True):
    data = fast_scenario_dict()
    data["policy"]["pipelines"]["code"]["rollback"] = {"automatic": automatic_rollback}
    scenario_path, inventory_path, names = write_inputs(tmp_path, data, tmp_path / "fleet")
    inventory = yaml.safe_load(inventory_path.read_text())
    for key, value in (inventory_changes or {}).items():
        inventory["adapter"][key] = value
    rollout = load_rollout(scenario_path.read_text(), "scenario", yaml.safe_dump(inventory), "inventory", tmp_path,
                           version, None)
    from deploysim.executor.inventory import make_adapter, make_metric_source

    journal = Journal.in_dir(tmp_path)
    return (Executor(rollout, make_adapter(rollout.inventory, tmp_path),
                     make_metric_source(rollout.inventory, rollout.targets), journal), journal, names)


def test_a_deploy_that_claims_success_but_changes_nothing_fails_and_is_rolled_back(tmp_path):
    executor, journal, names = _executor(tmp_path, {"deploy": ["true"]})
    outcome = executor.start()
    assert outcome.status == "rolled_back" and outcome.exit_code == 1, outcome.message
    assert "deploy failed" in outcome.message and "reports 'v1'" in outcome.message and names[0] in outcome.message
    failed = [a for a in journal.actions() if a.phase == "failed"]
    assert len(failed) == 1 and "reported success but the target reports version 'v1'" in failed[0].detail
    assert not [a for a in journal.actions() if a.phase == "done"]
    assert journal.decisions()[-1].detail["cause"] == "deploy_failed"
    # With automatic rollback off, the same failure halts for people instead.
    other = tmp_path / "manual"
    other.mkdir()
    manual, _, _ = _executor(other, {"deploy": ["true"]}, automatic_rollback=False)
    halted = manual.start()
    assert (halted.status, halted.exit_code) == ("halted", 3) and "reports 'v1'" in halted.message


def test_a_hanging_deploy_times_out_is_retried_then_halts_with_a_clear_message(tmp_path):
    # Automatic rollback off: a failed action halts for people, and --resume carries on once it is fixed.
    executor, journal, names = _executor(tmp_path, {"timeout": "0.3s", "retries": 1, "backoff": "0.1s"},
                                         automatic_rollback=False)
    (tmp_path / "fleet" / f"hang-{names[1]}").touch()
    start = time.monotonic()
    outcome = executor.start()
    assert time.monotonic() - start < 20
    assert outcome.status == "halted"
    assert f"deploy of {names[1]} to v2 failed after 2 attempt(s)" in outcome.message
    assert "timed out after 0.3s" in outcome.message
    assert versions(tmp_path / "fleet", names)[names[1]] == "v1"
    assert journal.last_terminal_event()[0] == "halted"
    # Once the cause is fixed, --resume carries on from the same batch.
    (tmp_path / "fleet" / f"hang-{names[1]}").unlink()
    resumed = Executor(executor.r, executor.adapter, executor.source, journal).resume()
    assert resumed.status == "complete"
    assert set(versions(tmp_path / "fleet", names).values()) == {"v2"}


@pytest.mark.parametrize("deploy", [[PY, "-c", "import sys; sys.exit(7)"]])
def test_failures_are_journaled_with_the_commands_output(tmp_path, deploy):
    executor, journal, _ = _executor(tmp_path, {"deploy": deploy})
    assert executor.start().status == "rolled_back"
    failed = [a for a in journal.actions() if a.phase == "failed"][0]
    assert "exit 7" in failed.detail and f"$ {PY} -c" in failed.detail
    assert command_inventory  # the shared builder the other tests use
