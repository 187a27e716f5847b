"""What the executor promises (docs/executor.md, "Guarantees"): it never reports an end it did not
see on the targets themselves. An operator's rollback is a journaled decision a later plain
`--resume` continues; `complete` and `rolled_back` ask every target first; a rollback is decided
from what the targets report, not from a journal that may have lost its tail; `status` says the
right words after a no-op resume and after a kill; a broken journal is one clear line."""

from __future__ import annotations

import sqlite3
import threading
import time

import numpy as np
from click.testing import CliRunner
from executor_support import action_rows, cli, fast_scenario_dict, manual_rollback, versions, write_inputs
from test_executor_fake import fake_rollout

from deploysim.cli import main
from deploysim.executor import Executor, Journal
from deploysim.executor.actions import Actions
from deploysim.executor.alarm_reader import AlarmReader
from deploysim.executor.outcome import EXIT_COMPLETE, EXIT_HALTED, EXIT_ROLLED_BACK
from deploysim.executor.status import format_status, rollout_status


class Killed(BaseException):
    """Stands for `kill -9` in memory: nothing after it runs, nothing catches it."""


def kill_on_call(adapter, kind: str, after: int) -> None:
    """Make the adapter's `after`-th call of `kind` (deploy or rollback) die half way (the target unchanged)."""
    real = getattr(adapter, kind)
    calls = [0]

    def dying(target, version, *, timeout_s):
        calls[0] += 1
        if calls[0] == after:
            setattr(adapter, kind, real)
            raise Killed()
        return real(target, version, timeout_s=timeout_s)

    setattr(adapter, kind, dying)


def run_dies(body) -> None:
    try:
        body()
    except Killed:
        return
    raise AssertionError("the run was not killed")


def test_a_killed_operator_rollback_of_a_completed_rollout_is_continued_by_a_plain_resume(tmp_path):
    rollout, clock, adapter, source = fake_rollout(tmp_path, fast_scenario_dict(bakes_s=(0, 0, 0)), "v2")
    journal = Journal.in_dir(tmp_path, clock=clock)
    assert Executor(rollout, adapter, source, journal, clock=clock).start().status == "complete"
    kill_on_call(adapter, "rollback", after=3)  # two targets back on v1, the third dies half way
    run_dies(lambda: Executor(rollout, adapter, source, journal, clock=clock).resume(force_rollback=True,
                                                                                   operator="ann: bad latency"))
    assert sorted(set(adapter.versions.values())) == ["v1", "v2"]
    # The plain --resume that status recommends continues the operator's rollback, never reverses it.
    outcome = Executor(rollout, adapter, source, journal, clock=clock).resume()
    assert (outcome.status, outcome.exit_code) == ("rolled_back", EXIT_ROLLED_BACK), outcome.message
    assert set(adapter.versions.values()) == {"v1"}
    assert journal.decisions()[-1].detail["detail"] == "ann: bad latency"
    assert journal.decisions()[-1].detail["cause"] == "operator"


def test_an_operator_rollback_killed_before_it_touched_anything_is_still_continued(tmp_path):
    rollout, clock, adapter, source = fake_rollout(tmp_path, fast_scenario_dict(bakes_s=(0, 0, 0)), "v2")
    journal = Journal.in_dir(tmp_path, clock=clock)
    assert Executor(rollout, adapter, source, journal, clock=clock).start().status == "complete"
    kill_on_call(adapter, "rollback", after=1)
    run_dies(lambda: Executor(rollout, adapter, source, journal, clock=clock).resume(force_rollback=True))
    assert set(adapter.versions.values()) == {"v2"}
    outcome = Executor(rollout, adapter, source, journal, clock=clock).resume()
    assert outcome.status == "rolled_back" and set(adapter.versions.values()) == {"v1"}


def test_complete_is_said_only_when_every_target_reports_the_version(tmp_path):
    rollout, clock, adapter, source = fake_rollout(tmp_path, fast_scenario_dict(bakes_s=(0, 0, 0)), "v2")
    journal = Journal.in_dir(tmp_path, clock=clock)
    assert Executor(rollout, adapter, source, journal, clock=clock).start().exit_code == EXIT_COMPLETE
    drifted = rollout.targets[4].name
    adapter.versions[drifted] = "v1"  # someone put it back by hand, or it was rebuilt
    again = Executor(rollout, adapter, source, journal, clock=clock).resume()
    assert (again.status, again.exit_code) == ("halted", EXIT_HALTED)
    assert f"{drifted} reports 'v1'" in again.message and "halted: halted" not in again.message
    adapter.versions[drifted] = "v2"
    fixed = Executor(rollout, adapter, source, journal, clock=clock).resume()
    assert (fixed.status, fixed.exit_code) == ("complete", EXIT_COMPLETE)


def test_a_finished_rollback_resumed_again_asks_the_targets_and_says_already_finished(tmp_path):
    rollout, clock, adapter, source = fake_rollout(tmp_path, fast_scenario_dict(), "v2-bad")
    journal = Journal.in_dir(tmp_path, clock=clock)
    assert Executor(rollout, adapter, source, journal, clock=clock).start().status == "rolled_back"
    asked = len([c for c in adapter.calls if c[0] == "current_version"])
    again = Executor(rollout, adapter, source, journal, clock=clock).resume()
    assert again.status == "rolled_back" and again.message.startswith("already finished:")
    assert len([c for c in adapter.calls if c[0] == "current_version"]) - asked >= len(rollout.targets)
    # A target that went back to the bad version meanwhile is rolled back again, not reported as done.
    adapter.versions[rollout.targets[0].name] = "v2-bad"
    redo = Executor(rollout, adapter, source, journal, clock=clock).resume()
    assert redo.status == "rolled_back" and not redo.message.startswith("already")
    assert set(adapter.versions.values()) == {"v1"}


def test_a_rollback_is_decided_from_what_the_targets_report_not_from_the_journal(tmp_path):
    """The journal lost its action rows (the tail of its WAL): the targets still say who moved."""
    rollout, clock, adapter, source = fake_rollout(tmp_path, manual_rollback(fast_scenario_dict(bakes_s=(0, 0, 0))),
                                                   "v2")
    wave_host = rollout.targets[int(rollout.plan.stages[0].steps[2].batches[0][0])].name
    adapter.fail_next(wave_host)
    journal = Journal.in_dir(tmp_path, clock=clock)
    assert Executor(rollout, adapter, source, journal, clock=clock).start().status == "halted"
    moved = [n for n, v in adapter.versions.items() if v == "v2"]
    assert len(moved) >= 3
    with sqlite3.connect(tmp_path / "journal.sqlite") as db:
        db.execute("DELETE FROM actions")
    outcome = Executor(rollout, adapter, source, journal, clock=clock).resume(force_rollback=True)
    assert outcome.status == "rolled_back" and f"{len(moved)} target(s) returned" in outcome.message
    assert set(adapter.versions.values()) == {"v1"}


def test_status_says_the_right_words_after_a_no_op_resume_and_after_a_kill(tmp_path):
    rollout, clock, adapter, source = fake_rollout(tmp_path, fast_scenario_dict(), "v2-bad")
    journal = Journal.in_dir(tmp_path, clock=clock)
    assert Executor(rollout, adapter, source, journal, clock=clock).start().status == "rolled_back"
    Executor(rollout, adapter, source, journal, clock=clock).resume()
    assert rollout_status(tmp_path, journal)["state"] == "rolled_back"

    other = tmp_path / "killed"
    other.mkdir()
    rollout, clock, adapter, source = fake_rollout(other, fast_scenario_dict(bakes_s=(0, 0, 0)), "v2")
    journal = Journal.in_dir(other, clock=clock)
    kill_on_call(adapter, "deploy", after=2)
    run_dies(lambda: Executor(rollout, adapter, source, journal, clock=clock).start())
    info = rollout_status(other, journal)
    assert info["state"].startswith("interrupted")
    row = next(t for t in info["targets"] if t["in_progress"])
    assert row["current"] is None and row["intended"] == "v2"
    assert f"{row['name']}  v1      v2        unknown (action in progress)" in format_status(info)


def test_a_missing_or_broken_journal_is_one_clear_line(tmp_path):
    runner = CliRunner()
    empty = tmp_path / "empty"
    empty.mkdir()
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "journal.sqlite").write_text("not a database\n" * 100)
    cut = tmp_path / "cut"
    cut.mkdir()
    Journal.in_dir(cut).close()  # created, then killed before the run's metadata was written
    for state, words in ((empty, "holds no journal"), (broken, "not a readable deploysim journal"),
                         (cut, "lacks the run's")):
        for args in (["status", str(state)], ["execute", "--resume", str(state)],
                     ["status", str(state), "--verify"]):
            result = runner.invoke(main, args)
            assert result.exit_code == 2 and words in result.output, (args, result.output)
            assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_status_verify_asks_every_target(tmp_path):
    scenario, inventory, names = write_inputs(tmp_path, fast_scenario_dict(bakes_s=(0, 0, 0)), tmp_path / "fleet")
    state = tmp_path / "state"
    runner = CliRunner()
    done = runner.invoke(main, ["execute", str(scenario), "--inventory", str(inventory), "--version", "v2",
                                "--state-dir", str(state)])
    assert done.exit_code == 0, done.output
    checked = runner.invoke(main, ["status", str(state), "--verify"])
    assert checked.exit_code == 0 and "Verified: every target reports what this state says" in checked.output
    (tmp_path / "fleet" / f"{names[2]}.version").write_text("v1\n")
    drifted = runner.invoke(main, ["status", str(state), "--verify"])
    assert "NOT VERIFIED" in drifted.output
    assert any(line.split()[:1] == [names[2]] and line.split()[-1] == "v1" for line in drifted.output.splitlines())
    assert versions(tmp_path / "fleet", names)[names[0]] == "v2"


# ------------------------------------------------------------------ no data is never healthy


def test_a_metric_source_with_no_data_halts_before_anything_is_touched(tmp_path):
    rollout, clock, adapter, source = fake_rollout(tmp_path, fast_scenario_dict(), "v2-bad")
    source.default = None  # every error_rate datapoint missing (a typo in a query matches nothing)
    journal = Journal.in_dir(tmp_path, clock=clock)
    outcome = Executor(rollout, adapter, source, journal, clock=clock).start()
    assert (outcome.status, outcome.exit_code) == ("halted", EXIT_HALTED)
    assert "pre-flight" in outcome.message and "error_rate" in outcome.message
    assert set(adapter.versions.values()) == {"v1"} and not [c for c in adapter.calls if c[0] == "deploy"]


def test_a_bake_without_data_pauses_then_halts_and_resumes_once_data_is_back(tmp_path):
    rollout, clock, adapter, source = fake_rollout(tmp_path, fast_scenario_dict(), "v2-bad")
    real_deploy = adapter.deploy

    def deploy_then_lose_metrics(target, version, *, timeout_s):
        source.default = None  # the metric source goes dark once the rollout has begun
        source.values = {}
        return real_deploy(target, version, timeout_s=timeout_s)

    adapter.deploy = deploy_then_lose_metrics
    journal = Journal.in_dir(tmp_path, clock=clock)
    outcome = Executor(rollout, adapter, source, journal, clock=clock).start()
    assert (outcome.status, outcome.exit_code) == ("halted", EXIT_HALTED), outcome.message
    assert outcome.message.startswith("no data:") and "error_rate" in outcome.message
    assert any(kind == "paused_no_data" for _, _, kind, _ in journal.events())
    # The faulty version never went past the wave whose bake had no data.
    assert sum(v == "v2-bad" for v in adapter.versions.values()) < len(rollout.targets)
    adapter.deploy = real_deploy
    source.default, source.values = 0.0, {"v2-bad": {"error_rate": 1.0}}  # data is back: the alarm is seen
    resumed = Executor(rollout, adapter, source, journal, clock=clock).resume()
    assert resumed.status == "rolled_back" and set(adapter.versions.values()) == {"v1"}


# ------------------------------------------------------------------ a step is judged on its own periods


def test_a_fix_rolled_out_over_a_bad_fleet_is_not_judged_on_periods_before_its_step(tmp_path):
    """The fleet runs v1-bad (errors in every period); v2 fixes it. Each wave's 1-of-2 alarm must not
    count the period before the wave began, when its hosts still ran v1-bad."""
    scenario = fast_scenario_dict()
    scenario["alarms"]["metric"][0].update(evaluation_periods=2, datapoints_to_alarm=1)
    rollout, clock, adapter, source = fake_rollout(tmp_path, scenario, "v2")
    adapter.versions = dict.fromkeys(adapter.versions, "v1-bad")
    history = [(0.0, name, "v1-bad") for name in adapter.versions]
    real_deploy, real_datapoints = adapter.deploy, source.datapoints

    def deploy(target, version, *, timeout_s):
        result = real_deploy(target, version, timeout_s=timeout_s)
        history.append((clock.now(), target.name, version))
        return result

    def datapoints(alarm, targets, start_s, end_s, period_s):
        if alarm.metric != "error_rate":
            return real_datapoints(alarm, targets, start_s, end_s, period_s)
        names = {t.name for t in targets}
        out = []
        for k in range(int(round((end_s - start_s) / period_s))):
            end = start_s + (k + 1) * period_s
            running = {n: v for t, n, v in history if n in names and t < end}
            out.append(1.0 if "v1-bad" in running.values() else 0.0)
        return np.array(out)

    adapter.deploy, source.datapoints = deploy, datapoints
    journal = Journal.in_dir(tmp_path, clock=clock)
    outcome = Executor(rollout, adapter, source, journal, clock=clock).start()
    assert outcome.status == "complete", outcome.message
    assert set(adapter.versions.values()) == {"v2"}


def test_a_host_is_out_of_service_from_the_moment_its_deploy_begins(tmp_path):
    """A batch is watched while its deploys run, so a deploy still under way already makes the
    periods since it began missing data for its scope: a restart slower than the alarm's periods
    (a busy machine) is never judged as the new version failing."""
    rollout, clock, adapter, source = fake_rollout(tmp_path, fast_scenario_dict(), "v2")
    stop = threading.Event()
    actions = Actions(rollout, adapter, Journal.in_dir(tmp_path, clock=clock), clock, stop)
    reader = AlarmReader(rollout, source, clock, stop, lambda: actions.busy)
    target = rollout.targets[0]
    k = int(clock.now() // reader.period_s)  # the deploy begins in period k
    real_deploy, while_deploying = adapter.deploy, []

    def out_of_service() -> list[bool]:  # periods k-2 .. k+5
        return reader.out_of_service(np.array([target.host]), k - 2, k + 6).tolist()

    def slow_deploy(target, version, *, timeout_s):
        clock.sleep(5 * reader.period_s)  # the host is down for 5 periods
        while_deploying.append(out_of_service())
        return real_deploy(target, version, timeout_s=timeout_s)

    adapter.deploy = slow_deploy
    assert actions.act("deploy", target, "v2")[0]
    assert while_deploying == [[False, False, True, True, True, True, True, True]]  # every period since k
    assert out_of_service() == [False, False, True, True, True, True, True, False]  # up to its end


# ------------------------------------------------------------------ one rollout per target group


def test_a_second_rollout_over_the_same_targets_is_refused_whatever_its_version_or_state_dir(tmp_path):
    scenario, inventory, names = write_inputs(tmp_path, fast_scenario_dict(), tmp_path / "fleet", sleep_s=0.3)
    first = cli("execute", str(scenario), "--inventory", str(inventory), "--version", "v2", "--state-dir",
                str(tmp_path / "s2"), cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60
        while action_rows(tmp_path / "s2" / "journal.sqlite") < 1:
            assert first.poll() is None and time.monotonic() < deadline, "the first rollout did not start"
            time.sleep(0.02)
        second = CliRunner().invoke(main, ["execute", str(scenario), "--inventory", str(inventory), "--version",
                                           "v3", "--state-dir", str(tmp_path / "s3")])
        assert second.exit_code == 2 and "another rollout" in second.output, second.output
        assert f"state directory {(tmp_path / 's2').resolve()}" in second.output
    finally:
        out, err = first.communicate(timeout=120)
    assert first.returncode == 0, out + err
    assert set(versions(tmp_path / "fleet", names).values()) == {"v2"}
    # Once the first is over, the group is free again.
    after = CliRunner().invoke(main, ["execute", str(scenario), "--inventory", str(inventory), "--version", "v3",
                                      "--state-dir", str(tmp_path / "s3")])
    assert after.exit_code == 0, after.output


def test_an_alarm_rollback_journals_which_metric_breached_with_its_datapoints(tmp_path):
    rollout, clock, adapter, source = fake_rollout(tmp_path, fast_scenario_dict(), "v2-bad")
    journal = Journal.in_dir(tmp_path, clock=clock)
    assert Executor(rollout, adapter, source, journal, clock=clock).start().status == "rolled_back"
    started = [detail for _, _, kind, detail in journal.events() if kind == "rollback_started"]
    assert len(started) == 1
    reason, evidence = started[0].splitlines()
    assert reason.startswith("alarm fault_rate@")
    # The member alarm, the datapoints it judged (the fake source's 1.0 error rate of the bad
    # version) and its rule, so a person can tell a regression from a noisy metric.
    assert evidence.startswith("evidence: fault_rate (error_rate 1; > 0.5, 1 of 1), in the period that ended ")
