"""The executor over the real local fleet (one demo-service process per host, `deploysim.localfleet`),
with HTTP probes as its metric source: `kill -9` during the rollout and during its rollback, then
`--resume`, leaves every host serving a known version (all the new one, or all the previous one
after the faulty version's alarm), and the journal gives every intended action an outcome."""

from __future__ import annotations

import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml
from executor_support import action_rows, cli
from test_executor_resume import assert_journal_whole, kill_at, snapshot_rows

import deploysim
from deploysim.fleet import build_fleet, host_names
from deploysim.localfleet import procs
from deploysim.localfleet.fleet import LocalFleet

REPO = Path(__file__).resolve().parent.parent


def fast_local_scenario() -> dict:
    """scenarios/local-fleet.yaml with 1 s periods, 2-of-2 error alarms (3-of-3 timing alarms) and
    bakes of a few seconds."""
    data = yaml.safe_load((REPO / "scenarios" / "local-fleet.yaml").read_text())
    data["metric_period"] = "1s"
    for alarm in data["alarms"]["metric"]:
        alarm.update(evaluation_periods=2, datapoints_to_alarm=2)
        # The probe is the executor's own client: on a busy machine its latencies and health-check
        # time-outs include its own scheduling delays. These tests are about crash safety (the
        # faulty versions they use fail requests), so the timing alarms ask for 3 slow periods.
        if alarm["metric"] in ("latency_p99_ms", "unhealthy_hosts"):
            alarm.update(evaluation_periods=3, datapoints_to_alarm=3)
        if alarm["metric"] == "latency_p99_ms":
            alarm["threshold"] = 1000
    preprod, prod = data["policy"]["pipelines"]["code"]["stages"]
    preprod.update(duration="0s", bake="0s")
    prod["one_box"] = {"hosts": 1, "bake": {"duration": "5s", "min_datapoints": 2}}
    prod["batching"] = {"max_share": 0.5, "duration": "0s"}
    for wave in prod["waves"]:
        wave["bake"] = "3s"
    return data


def finished_early(proc, kill_point) -> str:
    """Why a run to be killed at `kill_point` ended first: its exit code and everything it printed."""
    out, err = proc.communicate(timeout=60)
    return f"finished before the kill point {kill_point}, exit code {proc.returncode}:\n{out}{err}"


def rollbacks_journaled(state: Path) -> list[str]:
    """Why each rollback of the run began (the alarm and the datapoints that tripped it): what a
    failed assertion needs to tell a false alarm from a real one."""
    with sqlite3.connect(f"{(state / 'journal.sqlite').resolve().as_uri()}?mode=ro", uri=True, timeout=5) as db:
        return [row[0] for row in db.execute("SELECT detail FROM events WHERE kind = 'rollback_started' ORDER BY seq")]


def crash_resume_over_local_fleet(root: Path, version: str, kill_point: tuple[str, int]):
    root.mkdir()
    data = fast_local_scenario()
    names = list(host_names(build_fleet(deploysim.scenario_from_dict(data))))
    fleet = LocalFleet.create(root / "fleet", {n: procs.free_port() for n in names},
                              REPO / "scenarios" / "local-fleet.versions.yaml", data["traffic"]["apis"])
    try:
        assert all(o.ok for o in fleet.start("v1", timeout_s=30))
        (root / "scenario.yaml").write_text(yaml.safe_dump(data))
        (root / "inventory.yaml").write_text(yaml.safe_dump({
            "adapter": {"kind": "local", "fleet_dir": "fleet", "timeout": "30s", "retries": 1, "backoff": "0.5s"},
            "metrics": {"kind": "probe"},
            "targets": {n: {"address": fleet.address(n)} for n in names}}))
        state = root / "state"
        proc = cli("execute", "scenario.yaml", "--inventory", "inventory.yaml", "--version", version,
                   "--state-dir", "state", cwd=root)
        kind, k = kill_point
        if not kill_at(proc, state / "journal.sqlite", k, kind, timeout_s=120):
            pytest.fail(finished_early(proc, kill_point))
        rows_at_kill = snapshot_rows(state)
        resumed = cli("execute", "--resume", "state", cwd=root)
        out, err = resumed.communicate(timeout=180)
        live = {n: fleet.live_version(n, timeout_s=5) for n in names}
        return resumed.returncode, out + err, live, state, rows_at_kill
    finally:
        fleet.stop()


def test_kill_9_then_resume_over_the_real_local_fleet(tmp_path):
    cases = {  # version -> (kill point, exit code, the version every host serves at the end)
        "v2": (("", 5), 0, "v2"),  # during the first wave
        "v3-faulty": (("rollback", 1), 1, "v1"),  # the one-box alarms; killed while it is rolled back
    }
    with ThreadPoolExecutor(max_workers=len(cases)) as pool:
        results = dict(zip(cases, pool.map(
            lambda v: crash_resume_over_local_fleet(tmp_path / v, v, cases[v][0]), cases), strict=True))
    for version, (code, output, live, state, rows_at_kill) in results.items():
        _, exit_code, final = cases[version]
        assert code == exit_code, (version, output, rollbacks_journaled(state))
        assert set(live.values()) == {final}, (version, live, output, rollbacks_journaled(state))
        assert_journal_whole(state, rows_at_kill)


def operator_rollback_killed(root: Path, plan: list[tuple[str, ...]]):
    """Roll v2 out over a real local fleet (to the end, or killed at its `("", k)`-th action row),
    then run each step of `plan`: ("rollback", k) is `--resume --rollback` killed at the journal's
    k-th rollback row, ("kill", k) a plain `--resume` killed k action rows later, ("resume",) and
    ("resume", "--rollback") run to the end. Returns the last exit code, its output, every host's
    live version (asked of the hosts themselves), the state directory and the rows at the last kill."""
    root.mkdir()
    data = fast_local_scenario()
    names = list(host_names(build_fleet(deploysim.scenario_from_dict(data))))
    fleet = LocalFleet.create(root / "fleet", {n: procs.free_port() for n in names},
                              REPO / "scenarios" / "local-fleet.versions.yaml", data["traffic"]["apis"])
    try:
        assert all(o.ok for o in fleet.start("v1", timeout_s=30))
        (root / "scenario.yaml").write_text(yaml.safe_dump(data))
        (root / "inventory.yaml").write_text(yaml.safe_dump({
            "adapter": {"kind": "local", "fleet_dir": "fleet", "timeout": "30s", "retries": 1, "backoff": "0.5s"},
            "metrics": {"kind": "probe"},
            "targets": {n: {"address": fleet.address(n)} for n in names}}))
        state = root / "state"
        journal = state / "journal.sqlite"
        first = cli("execute", "scenario.yaml", "--inventory", "inventory.yaml", "--version", "v2",
                    "--state-dir", "state", cwd=root)
        code, output, rows_at_kill = None, "", []
        for step in plan:
            if step[0] == "complete":
                out, err = first.communicate(timeout=180)
                assert first.returncode == 0, out + err
            elif step[0] == "deploy":
                if not kill_at(first, journal, int(step[1]), "deploy", timeout_s=180):
                    pytest.fail(finished_early(first, step))
            elif step[0] == "rollback":
                proc = cli("execute", "--resume", "state", "--rollback", "--reason", "test", cwd=root)
                if not kill_at(proc, journal, int(step[1]), "rollback", timeout_s=120):
                    pytest.fail(finished_early(proc, step))
            elif step[0] == "kill":
                proc = cli("execute", "--resume", "state", cwd=root)
                assert kill_at(proc, journal, action_rows(journal) + int(step[1]), timeout_s=120)
            else:
                proc = cli("execute", *step[1:], "--resume", "state", cwd=root)
                out, err = proc.communicate(timeout=180)
                code, output = proc.returncode, out + err
            rows_at_kill = snapshot_rows(state)
        live = {n: fleet.live_version(n, timeout_s=5) for n in names}
        # Its own process: the cases run in threads, and CliRunner swaps the process-wide sys.stdout,
        # so two cases invoking it at once can capture each other's output (or none).
        status, _ = cli("status", "--verify", "state", cwd=root).communicate(timeout=60)
        return code, output, live, state, rows_at_kill, status
    finally:
        fleet.stop()


def test_a_killed_operator_rollback_is_continued_never_reversed_on_the_real_local_fleet(tmp_path):
    cases = {
        # A completed rollout; its operator rollback killed at its first rollback row; plain --resume.
        "complete-rb1-resume": [("complete",), ("rollback", 1), ("resume",)],
        # Killed during the rollout; the operator rollback killed after its second row; --resume --rollback.
        "deploy-rb2-rollback": [("deploy", 5), ("rollback", 2), ("resume", "--rollback")],
        # Killed during the rollout; operator rollback killed; the --resume killed again; --resume.
        "deploy-rb3-kill-resume": [("deploy", 7), ("rollback", 3), ("kill", 1), ("resume",)],
    }
    with ThreadPoolExecutor(max_workers=len(cases)) as pool:
        results = dict(zip(cases, pool.map(lambda c: operator_rollback_killed(tmp_path / c, cases[c]), cases),
                           strict=True))
    for case, (code, output, live, state, rows_at_kill, status) in results.items():
        assert code == 1 and "rolled_back" in output, (case, output, rollbacks_journaled(state))
        # `live` is asked of the hosts themselves.
        assert set(live.values()) == {"v1"}, (case, live, output, rollbacks_journaled(state))
        assert "Verified: every target reports what this state says" in status, (case, status)
        assert_journal_whole(state, rows_at_kill)
