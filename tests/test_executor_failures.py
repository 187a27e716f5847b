"""How the executor stops and fails: Ctrl-C or SIGTERM during a retry's back-off stops at once
(exit 130), the back-off is capped, a stop never cuts a rollback short; a failed deploy or health
check rolls back when automatic rollback is on; the local fleet's adapter retries; `--resume`
signals only the commands the journal identifies, never a process that reuses their pid."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import threading
import time

import numpy as np
import psutil
import pytest
import yaml
from executor_support import CLI, action_rows, cli, fast_scenario_dict, manual_rollback, versions, write_inputs
from test_executor_fake import fake_rollout

from deploysim.executor import Executor, Journal, StepClock
from deploysim.executor.command_adapter import run_with_retries
from deploysim.executor.recovery import group_alive


def wait_for(condition, timeout_s: float, what: str, proc: subprocess.Popen | None = None):
    """Poll `condition` until it is truthy; fail after `timeout_s` (or if `proc` ends first)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the executor ended before {what}: {proc.communicate()}")
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout_s:g}s waiting for {what}")
        time.sleep(0.02)


def spawned_pids(journal_path) -> list[int]:
    try:
        with sqlite3.connect(f"{journal_path.resolve().as_uri()}?mode=ro", uri=True, timeout=1) as db:
            return [row[0] for row in db.execute("SELECT pid FROM spawned")]
    except sqlite3.OperationalError:
        return []


# ------------------------------------------------------------------ back-off: capped, cut short by a stop


def test_the_back_off_doubles_up_to_its_cap():
    from deploysim.executor.retry import MAX_BACKOFF_S

    waits: list[float] = []
    ok, attempts = run_with_retries(["false"], timeout_s=5, retries=4, backoff_s=50, sleep=waits.append)
    assert not ok and len(attempts) == 5
    assert waits == [50, MAX_BACKOFF_S, MAX_BACKOFF_S, MAX_BACKOFF_S] and MAX_BACKOFF_S == 60


def test_sigterm_during_a_retry_back_off_stops_at_once_with_exit_130_and_resume_carries_on(tmp_path):
    scenario, inventory, names = write_inputs(tmp_path, fast_scenario_dict(), tmp_path / "fleet", retries=5,
                                              backoff="20s")
    fail = tmp_path / "fleet" / f"fail-{names[0]}"
    fail.touch()
    state = tmp_path / "state"
    proc = cli("execute", str(scenario), "--inventory", str(inventory), "--version", "v2", "--state-dir", str(state),
               cwd=tmp_path)
    try:
        # The one-box's first deploy attempt has run and failed: the adapter waits 20 s to retry.
        wait_for(lambda: action_rows(state / "journal.sqlite", "deploy") >= 1 and spawned_pids(state / "journal.sqlite")
                 and not group_alive(spawned_pids(state / "journal.sqlite")[-1]), 30, "the first attempt", proc)
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)  # well before the 20 s back-off ends
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert time.monotonic() - sent < 10
    assert proc.returncode == 130, (out, err)
    assert out.count("stopped:") == 1 and "--resume" in out
    journal = Journal.in_dir(state, readonly=True)
    deploys = [a for a in journal.actions() if a.kind == "deploy"]
    assert [a.phase for a in deploys] == ["intent", "failed"] and deploys[1].attempts == 1
    assert "stopped (Ctrl-C or SIGTERM) before another attempt" in deploys[1].detail
    assert journal.last_terminal_event()[0] == "stopped"
    journal.close()
    fail.unlink()
    resumed = subprocess.run([*CLI, "execute", "--resume", str(state)], cwd=tmp_path, capture_output=True, text=True,
                             timeout=120)
    assert resumed.returncode == 0, (resumed.stdout, resumed.stderr)
    assert set(versions(tmp_path / "fleet", names).values()) == {"v2"}


def test_sigterm_during_an_automatic_rollback_does_not_cut_its_retries_short(tmp_path):
    """The rollback of a wave host fails once and is retried after a back-off; a SIGTERM meanwhile
    does not stop it: every target ends on its previous version, exit 1."""
    scenario, inventory, names = write_inputs(tmp_path, fast_scenario_dict(), tmp_path / "fleet", retries=2,
                                              backoff="1s", sleep_s=0.2)
    (tmp_path / "fleet" / f"fail-once-{names[1]}-v1").touch()
    state = tmp_path / "state"
    proc = cli("execute", str(scenario), "--inventory", str(inventory), "--version", "v2-bad", "--state-dir",
               str(state), cwd=tmp_path)
    try:
        wait_for(lambda: action_rows(state / "journal.sqlite", "rollback") >= 1, 60, "the rollback", proc)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1 and out.startswith("rolled_back:"), (out, err)
    assert set(versions(tmp_path / "fleet", names).values()) == {"v1"}
    journal = Journal.in_dir(state, readonly=True)
    retried = [a for a in journal.actions() if a.kind == "rollback" and a.target == names[1] and a.phase == "done"]
    assert retried and retried[-1].attempts == 2
    journal.close()


class _StopWhenAlarming:
    """A metric source that plays Ctrl-C (sets `stop`) the moment its datapoints show the alarm."""

    def __init__(self, inner, stop: threading.Event):
        self.inner, self.stop = inner, stop

    def datapoints(self, alarm, targets, start_s, end_s, period_s):
        values = self.inner.datapoints(alarm, targets, start_s, end_s, period_s)
        if alarm.metric == "error_rate" and np.nanmax(values, initial=0.0) >= 0.5:
            self.stop.set()
        return values

    def requests(self, targets, start_s, end_s, api=None):
        return self.inner.requests(targets, start_s, end_s, api)


def test_a_stop_as_an_alarm_is_seen_still_rolls_back_before_it_stops(tmp_path):
    rollout, clock, adapter, source = fake_rollout(tmp_path, fast_scenario_dict(), "v2-bad")
    stop = threading.Event()
    journal = Journal.in_dir(tmp_path, clock=clock)
    outcome = Executor(rollout, adapter, _StopWhenAlarming(source, stop), journal, clock=clock, stop=stop).start()
    assert stop.is_set()
    assert (outcome.status, outcome.exit_code) == ("rolled_back", 1), outcome.message
    assert set(adapter.versions.values()) == {"v1"}


# ------------------------------------------------------------------ failed deploys and health checks


def test_a_failed_deploy_rolls_back_the_targets_with_automatic_rollback_on(tmp_path):
    rollout, clock, adapter, source = fake_rollout(tmp_path, fast_scenario_dict(), "v2")
    wave_host = rollout.targets[int(rollout.plan.stages[0].steps[1].batches[-1][0])].name
    adapter.fail_next(wave_host)
    journal = Journal.in_dir(tmp_path, clock=clock)
    outcome = Executor(rollout, adapter, source, journal, clock=clock).start()
    assert (outcome.status, outcome.exit_code) == ("rolled_back", 1), outcome.message
    assert outcome.message.startswith(f"rolled back (deploy failed: deploy of {wave_host} to v2 failed")
    assert set(adapter.versions.values()) == {"v1"}
    asked = [c[1] for c in adapter.calls if c[0] == "current_version"]
    assert all(t.name in asked[-len(rollout.targets):] for t in rollout.targets)  # every host verified at the end


def test_a_target_failing_its_health_check_after_a_deploy_fails_the_deploy(tmp_path):
    rollout, clock, adapter, source = fake_rollout(tmp_path, fast_scenario_dict(), "v2")
    one_box = rollout.targets[int(rollout.plan.stages[0].steps[0].batches[0][0])].name
    real_deploy = adapter.deploy

    def deploy(target, version, *, timeout_s):
        result = real_deploy(target, version, timeout_s=timeout_s)
        if target.name == one_box:
            (adapter.unhealthy.add if version == "v2" else adapter.unhealthy.discard)(one_box)
        return result

    adapter.deploy = deploy
    adapter.rollback = deploy
    journal = Journal.in_dir(tmp_path, clock=clock)
    outcome = Executor(rollout, adapter, source, journal, clock=clock).start()
    assert outcome.status == "rolled_back" and "fails its health check" in outcome.message, outcome.message
    assert set(adapter.versions.values()) == {"v1"}
    failed = [a for a in journal.actions() if a.phase == "failed"]
    assert len(failed) == 1 and failed[0].current == "v2" and "fails its health check" in failed[0].detail


def test_a_target_failing_its_health_check_before_the_run_halts_it_with_nothing_changed(tmp_path):
    rollout, clock, adapter, source = fake_rollout(tmp_path, fast_scenario_dict(), "v2")
    adapter.unhealthy.add(rollout.targets[3].name)
    journal = Journal.in_dir(tmp_path, clock=clock)
    outcome = Executor(rollout, adapter, source, journal, clock=clock).start()
    assert (outcome.status, outcome.exit_code) == ("halted", 3)
    assert f"{rollout.targets[3].name} fail(s) the health check before the rollout; nothing was changed" \
        in outcome.message
    assert set(adapter.versions.values()) == {"v1"} and not journal.actions()


def test_the_inventorys_health_command_is_run_and_a_sick_version_is_rolled_back(tmp_path):
    scenario, inventory, names = write_inputs(tmp_path, fast_scenario_dict(), tmp_path / "fleet", health=True)
    result = subprocess.run([*CLI, "execute", str(scenario), "--inventory", str(inventory), "--version", "v2-sick",
                             "--state-dir", str(tmp_path / "state")], cwd=tmp_path, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert result.stdout.startswith("rolled_back: rolled back (deploy failed: deploy of ")
    assert "fails its health check" in result.stdout
    assert set(versions(tmp_path / "fleet", names).values()) == {"v1"}


def test_a_halt_is_printed_with_one_status_word(tmp_path):
    scenario, inventory, names = write_inputs(tmp_path, manual_rollback(fast_scenario_dict()), tmp_path / "fleet")
    (tmp_path / "fleet" / f"fail-{names[0]}").touch()
    result = subprocess.run([*CLI, "execute", str(scenario), "--inventory", str(inventory), "--version", "v2",
                             "--state-dir", str(tmp_path / "state")], cwd=tmp_path, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 3 and result.stdout.startswith("halted: deploy of ")
    assert (result.stdout + result.stderr).count("halted:") == 1


# ------------------------------------------------------------------ resume signals only its own commands


def _leader(*argv: str) -> subprocess.Popen:
    """A process leading its own group and session, as the command adapter starts commands."""
    return subprocess.Popen(list(argv), start_new_session=True)


def test_resume_never_signals_a_process_that_reuses_a_journaled_pid(tmp_path):
    rollout, clock, adapter, source = fake_rollout(tmp_path, fast_scenario_dict(bakes_s=(0, 0, 0)), "v2")
    journal = Journal.in_dir(tmp_path, clock=clock)
    assert Executor(rollout, adapter, source, journal, clock=clock).start().status == "complete"
    stranger = _leader("sleep", "60")  # an unrelated process now holding a pid the journal names
    ours = _leader("sleep", "60")  # a command the crashed executor really started, still running
    try:
        created = psutil.Process(stranger.pid).create_time()
        crashed = journal.intend("deploy", rollout.targets[0].name, "v2")
        journal.spawned(crashed, stranger.pid, created - 1000.0, "kubectl rollout status deployment/api")
        journal.spawned(crashed, ours.pid, psutil.Process(ours.pid).create_time(), "sleep 60")
        outcome = Executor(rollout, adapter, source, journal, clock=StepClock(clock.now())).resume()
        assert outcome.status == "complete", outcome.message
        assert ours.wait(timeout=10) == -signal.SIGKILL  # ours outlived its time-out: killed
        assert stranger.poll() is None and psutil.Process(stranger.pid).status() != psutil.STATUS_ZOMBIE
    finally:
        for proc in (stranger, ours):
            if proc.poll() is None:
                proc.kill()
            proc.wait()


# ------------------------------------------------------------------ the local fleet's adapter retries


def test_the_local_fleets_adapter_retries_a_failed_deploy_as_the_inventory_says(tmp_path):
    from localfleet_fixtures import make_fleet, targets_of

    from deploysim.executor.inventory import Inventory, make_adapter

    fleet = make_fleet(tmp_path / "fleet", {"h1": "v1"})
    try:
        inventory = Inventory.model_validate({
            "adapter": {"kind": "local", "fleet_dir": "fleet", "timeout": "20s", "retries": 2, "backoff": "0.1s"},
            "metrics": {"kind": "probe"}, "targets": {"h1": {}}})
        adapter = make_adapter(inventory, tmp_path)
        result = adapter.deploy(targets_of(fleet, "h1")[0], "v6-crash", timeout_s=20)
        assert not result.ok and result.attempts == 3
        assert "attempt 3:" in result.detail and "crash" in result.detail
        assert adapter.deploy(targets_of(fleet, "h1")[0], "v1", timeout_s=20).ok
    finally:
        fleet.stop()


def test_a_version_that_fails_to_start_on_the_one_box_is_rolled_back_on_the_local_fleet(tmp_path):
    from test_executor_local_fleet import REPO, fast_local_scenario

    import deploysim
    from deploysim.fleet import build_fleet, host_names
    from deploysim.localfleet import procs
    from deploysim.localfleet.fleet import LocalFleet

    data = fast_local_scenario()
    names = list(host_names(build_fleet(deploysim.scenario_from_dict(data))))
    fleet = LocalFleet.create(tmp_path / "fleet", {n: procs.free_port() for n in names},
                              REPO / "scenarios" / "local-fleet.versions.yaml", data["traffic"]["apis"])
    try:
        assert all(o.ok for o in fleet.start("v1", timeout_s=30))
        (tmp_path / "scenario.yaml").write_text(yaml.safe_dump(data))
        (tmp_path / "inventory.yaml").write_text(yaml.safe_dump({
            "adapter": {"kind": "local", "fleet_dir": "fleet", "timeout": "20s", "retries": 1, "backoff": "0.2s"},
            "metrics": {"kind": "probe"}, "targets": {n: {"address": fleet.address(n)} for n in names}}))
        result = subprocess.run([*CLI, "execute", "scenario.yaml", "--inventory", "inventory.yaml", "--version",
                                 "v6-crash", "--state-dir", "state"], cwd=tmp_path, capture_output=True, text=True,
                                timeout=180)
        assert result.returncode == 1, (result.stdout, result.stderr)
        assert result.stdout.startswith("rolled_back: rolled back (deploy failed: deploy of ")
        assert "after 2 attempt(s)" in result.stdout
        assert {n: fleet.live_version(n, timeout_s=5) for n in names} == dict.fromkeys(names, "v1")
    finally:
        fleet.stop()

