"""The executor over the real local fleet (one demo-service process per host, `deploysim.localfleet`),
with HTTP probes as its metric source: `kill -9` during the rollout and during its rollback, then
`--resume`, leaves every host serving a known version (all the new one, or all the previous one
after the faulty version's alarm), and the journal gives every intended action an outcome."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml
from executor_support import cli
from test_executor_resume import assert_journal_whole, kill_at, snapshot_rows

import deploysim
from deploysim.fleet import build_fleet, host_names
from deploysim.localfleet import procs
from deploysim.localfleet.fleet import LocalFleet

REPO = Path(__file__).resolve().parent.parent


def fast_local_scenario() -> dict:
    """scenarios/local-fleet.yaml with 1 s periods, 2-of-2 alarms and bakes of a few seconds."""
    data = yaml.safe_load((REPO / "scenarios" / "local-fleet.yaml").read_text())
    data["metric_period"] = "1s"
    for alarm in data["alarms"]["metric"]:
        alarm.update(evaluation_periods=2, datapoints_to_alarm=2)
    preprod, prod = data["policy"]["pipelines"]["code"]["stages"]
    preprod.update(duration="0s", bake="0s")
    prod["one_box"] = {"hosts": 1, "bake": {"duration": "5s", "min_datapoints": 2}}
    prod["batching"] = {"max_share": 0.5, "duration": "0s"}
    for wave in prod["waves"]:
        wave["bake"] = "3s"
    return data


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
        assert kill_at(proc, state / "journal.sqlite", k, kind, timeout_s=120), f"finished before {kill_point}"
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
        assert code == exit_code, (version, output)
        assert set(live.values()) == {final}, (version, live, output)
        assert_journal_whole(state, rows_at_kill)
