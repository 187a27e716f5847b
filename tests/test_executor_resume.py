"""Crash safety: `kill -9` of a real `deploysim execute` at many points, then `--resume`, ends with
every target on a known version (all on the new version after success, all on their previous one
after a rollback) and a journal in which every intended action has its outcome."""

from __future__ import annotations

import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from click.testing import CliRunner
from executor_support import action_rows, cli, fast_scenario_dict, versions, write_inputs

from deploysim.cli import main
from deploysim.executor.journal import Journal

DEPLOY_SLEEP_S = 0.15  # each deploy or rollback takes this long: a window to be killed in


def kill_at(proc: subprocess.Popen, journal_path: Path, k: int, kind: str = "", timeout_s: float = 60.0) -> bool:
    """SIGKILL `proc` as soon as the journal holds `k` action rows (of `kind`); False if it finished first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if action_rows(journal_path, kind) >= k:
            proc.kill()  # SIGKILL
            proc.wait()
            return True
        time.sleep(0.003)
    proc.kill()
    raise AssertionError("the executor did not reach the kill point in time")


def assert_journal_whole(state: Path, rows_at_kill: list) -> None:
    journal = Journal.in_dir(state, readonly=True)
    actions = journal.actions()
    assert [a.seq for a in actions] == list(range(1, len(actions) + 1))
    assert [(a.seq, a.kind, a.target, a.phase) for a in actions[:len(rows_at_kill)]] == rows_at_kill  # nothing lost
    assert journal.pending_intents() == []
    intents = {a.seq for a in actions if a.phase == "intent"}
    outcomes = [a.intent for a in actions if a.phase != "intent"]
    assert sorted(outcomes) == sorted(intents)  # exactly one outcome per intent
    journal.close()


def snapshot_rows(state: Path) -> list:
    journal = Journal.in_dir(state, readonly=True)
    rows = [(a.seq, a.kind, a.target, a.phase) for a in journal.actions()]
    journal.close()
    return rows


def crash_and_resume(root: Path, version: str, kill_point: tuple[str, int]):
    """Start a rollout, SIGKILL it at the journal's k-th action row (of a kind), resume it; what it ended with."""
    kind, k = kill_point
    root.mkdir()
    scenario, inventory, names = write_inputs(root, fast_scenario_dict(), root / "fleet", sleep_s=DEPLOY_SLEEP_S)
    state = root / "state"
    proc = cli("execute", str(scenario), "--inventory", str(inventory), "--version", version,
               "--state-dir", str(state), cwd=root)
    assert kill_at(proc, state / "journal.sqlite", k, kind), f"finished before {kind or 'action'} row {k}"
    rows_at_kill = snapshot_rows(state)
    resumed = cli("execute", "--resume", str(state), cwd=root)
    out, err = resumed.communicate(timeout=90)
    return resumed.returncode, out + err, versions(root / "fleet", names), state, rows_at_kill


@pytest.mark.parametrize("version, kill_points, final_version, exit_code", [
    # 6 deploys, 12 rows: kill before the first outcome, mid-batch, between waves, at the last deploy.
    ("v2", (("", 1), ("", 4), ("", 7), ("", 11)), "v2", 0),
    # The one-box, then wave-1 alarms after 1 or 2 hosts; every moved host is rolled back: kill during
    # the deploys, at the first rollback's intent, after its outcome, and at the last rollback.
    ("v2-bad", (("", 3), ("rollback", 1), ("rollback", 2), ("rollback", 3)), "v1", 1),
])
def test_kill_9_at_any_point_then_resume_ends_on_known_versions(tmp_path, version, kill_points, final_version,
                                                                 exit_code):
    # The kill points run side by side (each in its own fleet and state directory) to keep the test short.
    with ThreadPoolExecutor(max_workers=len(kill_points)) as pool:
        results = dict(
            zip(
                kill_points,
                pool.map(
                    lambda point: crash_and_resume(tmp_path / f"{point[0] or 'row'}{point[1]}", version, point),
                    kill_points,
                ),
                strict=True,
            )
        )
    for k, (code, output, final, state, rows_at_kill) in results.items():
        assert code == exit_code, (k, output)
        assert set(final.values()) == {final_version}, (k, final, output)
        assert_journal_whole(state, rows_at_kill)


def test_a_resume_killed_again_still_finishes_the_rollback(tmp_path):
    scenario, inventory, names = write_inputs(tmp_path, fast_scenario_dict(), tmp_path / "fleet",
                                              sleep_s=DEPLOY_SLEEP_S)
    state = tmp_path / "state"
    proc = cli("execute", str(scenario), "--inventory", str(inventory), "--version", "v2-bad",
               "--state-dir", str(state), cwd=tmp_path)
    assert kill_at(proc, state / "journal.sqlite", 1, "rollback")  # the first rollback under way
    resumed = cli("execute", "--resume", str(state), cwd=tmp_path)
    assert kill_at(resumed, state / "journal.sqlite", action_rows(state / "journal.sqlite") + 2)
    rows_at_kill = snapshot_rows(state)
    final = CliRunner().invoke(main, ["execute", "--resume", str(state)])
    assert final.exit_code == 1 and "rolled_back" in final.output, final.output
    assert set(versions(tmp_path / "fleet", names).values()) == {"v1"}
    assert_journal_whole(state, rows_at_kill)
    # A finished rollout resumed again does nothing and says so.
    again = CliRunner().invoke(main, ["execute", "--resume", str(state)])
    assert again.exit_code == 1 and "already finished" in again.output
