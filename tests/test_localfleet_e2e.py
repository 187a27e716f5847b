"""The README walkthrough, for real: `deploysim local up` (fleet + Prometheus + load in one command),
`deploysim execute` of a good version (completes) and of a faulty one (one-box alarm, automatic
rollback), `deploysim local down`. The scenario is scenarios/local-fleet.yaml with shorter periods
and bakes (the logic is the same), so the whole walk takes well under a minute. Then what goes wrong
with the metrics, for real: a misspelt PromQL metric halts before anything is deployed, and a
Prometheus stopped during a bake halts the rollout blind, which `--resume` finishes once it is back."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from executor_support import action_rows
from localfleet_fixtures import REPO, VERSIONS, wait_until

from deploysim.executor.prometheus_source import DEFAULT_QUERIES
from deploysim.localfleet import procs
from deploysim.localfleet.fleet import LocalFleet
from deploysim.localfleet.prometheus import PrometheusServer

CLI = [sys.executable, "-c", "import sys; from deploysim.cli import main; sys.exit(main())"]


def deploysim(*args: str, cwd: Path, timeout_s: float = 120) -> subprocess.CompletedProcess:
    """The real command in its own process (`deploysim execute`)."""
    result = subprocess.run([*CLI, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout_s)
    print(f"$ deploysim {' '.join(args)}\n{result.stdout}{result.stderr}")
    return result


def local(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """`deploysim local ...` in this process (saves the package import; the processes it starts are
    detached all the same)."""
    from click.testing import CliRunner

    from deploysim.cli import main

    try:
        runner = CliRunner(mix_stderr=False)
    except TypeError:  # click >= 8.2 always keeps stderr apart
        runner = CliRunner()
    result = runner.invoke(main, ["local", *args], catch_exceptions=False)
    print(f"$ deploysim local {' '.join(args)}\n{result.stdout}{result.stderr}")
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)


def short_scenario(directory: Path) -> Path:
    """scenarios/local-fleet.yaml with 2 s periods, second-long bakes and 2 hosts per AZ."""
    data = yaml.safe_load((REPO / "scenarios" / "local-fleet.yaml").read_text())
    data["metric_period"] = "2s"
    data["fleet"]["regions"][0]["hosts_per_cell"] = 2
    pipeline = data["policy"]["pipelines"]["code"]
    pipeline["rollback"]["duration"] = "1s"
    beta, prod = pipeline["stages"]
    beta.update(duration="1s", bake="1s")
    prod["one_box"]["bake"] = {"duration": "6s", "min_datapoints": 2}
    prod["batching"]["duration"] = "0.5s"
    for wave in prod["waves"]:
        wave["bake"] = "2s"
    path = directory / "local-short.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    (directory / "local-short.versions.yaml").write_text(VERSIONS.read_text())
    return path


def test_real_local_rollout_good_then_faulty(prometheus_binary, tmp_path):
    scenario = short_scenario(tmp_path)
    fleet_dir = tmp_path / "fleet"
    up = local("up", str(scenario), "--dir", str(fleet_dir), "--prometheus-port",
                   str(procs.free_port()), "--rate", "40", "--scrape-interval", "0.5", cwd=tmp_path)
    try:
        assert up.returncode == 0, up.stderr
        assert "Prometheus: http://127.0.0.1:" in up.stdout and "Inventory:" in up.stdout
        inventory = fleet_dir / "inventory.yaml"
        fleet = LocalFleet(fleet_dir)
        assert [fleet.live_version(n) for n in fleet.hosts] == ["v1"] * 4

        good = deploysim("execute", str(scenario), "--inventory", str(inventory), "--version", "v2",
                         "--state-dir", str(tmp_path / "state-v2"), cwd=tmp_path)
        assert good.returncode == 0, good.stdout + good.stderr
        assert "complete: v2 runs on all 4 targets" in good.stdout
        assert [fleet.live_version(n) for n in fleet.hosts] == ["v2"] * 4
        pids = {n: fleet.identity(n)["pid"] for n in fleet.hosts}

        bad = deploysim("execute", str(scenario), "--inventory", str(inventory), "--version", "v3-faulty",
                        "--state-dir", str(tmp_path / "state-v3"), cwd=tmp_path)
        assert bad.returncode == 1, bad.stdout + bad.stderr
        assert "rolling back: alarm Service_Health@one-box" in bad.stdout + bad.stderr
        assert "rolled_back" in bad.stdout
        assert [fleet.live_version(n) for n in fleet.hosts] == ["v2"] * 4
        one_box = "local-az1-c1-h1"
        # Only the one-box was touched (deployed, then rolled back): the others kept their processes.
        assert fleet.identity(one_box)["pid"] != pids[one_box]
        assert all(fleet.identity(n)["pid"] == pids[n] for n in fleet.hosts if n != one_box)

        status = local("status", "--dir", str(fleet_dir), cwd=tmp_path)
        assert status.returncode == 0 and "ready" in status.stdout and status.stdout.count(" v2 ") >= 4
    finally:
        down = local("down", "--dir", str(fleet_dir), cwd=tmp_path)
    assert down.returncode == 0, down.stderr
    assert "4 of 4 host(s) stopped" in down.stdout and "Prometheus stopped" in down.stdout
    assert all(LocalFleet(fleet_dir).live_version(n) is None for n in fleet.hosts)


def test_local_up_with_probes_status_and_down(tmp_path):
    scenario = short_scenario(tmp_path)
    fleet_dir = tmp_path / "fleet"
    up = local("up", str(scenario), "--dir", str(fleet_dir), "--metrics", "probe",
                   "--version", "v2", "--rate", "5", cwd=tmp_path)
    try:
        assert up.returncode == 0, up.stderr
        inventory = yaml.safe_load((fleet_dir / "inventory.yaml").read_text())
        assert inventory["adapter"] == {"kind": "local", "fleet_dir": ".", "timeout": "30s", "retries": 2,
                                        "backoff": "1s"}
        assert inventory["metrics"] == {"kind": "probe"}
        assert list(inventory["targets"]) == ["local-az1-c1-h1", "local-az1-c1-h2", "local-az2-c1-h1",
                                              "local-az2-c1-h2"]
        fleet = LocalFleet(fleet_dir)
        assert all(inventory["targets"][n]["address"] == fleet.address(n) for n in fleet.hosts)
        # `up` again is harmless: same ports, hosts keep running.
        pids = [fleet.identity(n)["pid"] for n in fleet.hosts]
        again = local("up", str(scenario), "--dir", str(fleet_dir), "--metrics", "probe",
                          "--rate", "5", cwd=tmp_path)
        assert again.returncode == 0, again.stderr
        assert [fleet.identity(n)["pid"] for n in fleet.hosts] == pids
        status = local("status", "--dir", str(fleet_dir), cwd=tmp_path)
        assert status.stdout.count(" v2 ") >= 4 and "running" in status.stdout
    finally:
        down = local("down", "--dir", str(fleet_dir), cwd=tmp_path)
    assert down.returncode == 0 and "load generator stopped" in down.stdout


@pytest.mark.parametrize("args, message", [
    (["--version", "v9"], "unknown version 'v9'"),
    (["--versions", "nope.yaml"], "cannot read versions file nope.yaml"),
])
def test_local_up_bad_input_is_one_line(tmp_path, args, message):
    scenario = short_scenario(tmp_path)
    result = local("up", str(scenario), "--dir", str(tmp_path / "f"), *args, cwd=tmp_path)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_local_up_without_prometheus_says_how_to_get_it_and_starts_nothing(tmp_path):
    from click.testing import CliRunner

    from deploysim.cli import main

    scenario = short_scenario(tmp_path)
    result = CliRunner().invoke(main, ["local", "up", str(scenario), "--dir", str(tmp_path / "f")],
                                env={"PATH": str(tmp_path / "empty")})
    assert result.exit_code == 1
    assert "`prometheus` binary is not on PATH" in result.output and "--metrics probe" in result.output
    assert not (tmp_path / "f").exists()


def _up(scenario: Path, fleet_dir: Path, cwd: Path) -> LocalFleet:
    up = local("up", str(scenario), "--dir", str(fleet_dir), "--prometheus-port", str(procs.free_port()),
               "--rate", "40", "--scrape-interval", "0.5", cwd=cwd)
    assert up.returncode == 0, up.stderr
    fleet = LocalFleet(fleet_dir)
    assert [fleet.live_version(n) for n in fleet.hosts] == ["v1"] * 4
    return fleet


def test_a_typo_in_the_inventorys_promql_halts_before_anything_is_deployed(prometheus_binary, tmp_path):
    scenario = short_scenario(tmp_path)
    fleet_dir = tmp_path / "fleet"
    try:
        fleet = _up(scenario, fleet_dir, tmp_path)
        pids = {n: fleet.identity(n)["pid"] for n in fleet.hosts}
        inventory = yaml.safe_load((fleet_dir / "inventory.yaml").read_text())
        # One letter missing from the metric's name: a valid query that matches nothing.
        typo = DEFAULT_QUERIES["error_rate"].replace("deploysim_requests_total", "deploysim_requests_totl")
        assert typo != DEFAULT_QUERIES["error_rate"]
        inventory["metrics"]["queries"] = {"error_rate": typo}
        typo_path = fleet_dir / "inventory-typo.yaml"  # beside the original: its fleet_dir is "."
        typo_path.write_text(yaml.safe_dump(inventory, sort_keys=False))
        state = tmp_path / "state-v2"
        run = deploysim("execute", str(scenario), "--inventory", str(typo_path), "--version", "v2",
                        "--state-dir", str(state), cwd=tmp_path)
        assert run.returncode == 3, run.stdout + run.stderr
        assert run.stdout.startswith("halted: pre-flight: the metric source has no datapoint of error_rate")
        assert "deploysim_requests_totl" in run.stdout and "nothing was changed" in run.stdout
        # Nothing was deployed: every host still runs v1 in the same process, and no deploy was journaled.
        assert [fleet.live_version(n) for n in fleet.hosts] == ["v1"] * 4
        assert {n: fleet.identity(n)["pid"] for n in fleet.hosts} == pids
        assert action_rows(state / "journal.sqlite", "deploy") == 0
    finally:
        local("down", "--dir", str(fleet_dir), cwd=tmp_path)


def _last_decision(state: Path) -> tuple | None:
    """(kind, stage, step) of the journal's last decision, read-only; None before there is one."""
    path = state / "journal.sqlite"
    if not path.exists():
        return None
    try:
        with sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=1) as db:
            return db.execute("SELECT kind, stage, step FROM decisions ORDER BY seq DESC LIMIT 1").fetchone()
    except sqlite3.OperationalError:  # created but no tables yet
        return None


def test_prometheus_stopped_mid_bake_halts_blind_and_resume_completes_once_it_is_back(prometheus_binary, tmp_path):
    scenario = short_scenario(tmp_path)
    data = yaml.safe_load(scenario.read_text())
    prod = data["policy"]["pipelines"]["code"]["stages"][1]
    prod["one_box"]["bake"]["duration"] = "20s"  # long enough to stop Prometheus inside it
    scenario.write_text(yaml.safe_dump(data, sort_keys=False))
    fleet_dir = tmp_path / "fleet"
    try:
        fleet = _up(scenario, fleet_dir, tmp_path)
        server = PrometheusServer(fleet_dir / "prometheus")
        port, pid = server.state["port"], server.state["pid"]
        state = tmp_path / "state-v2"
        execute = subprocess.Popen([*CLI, "execute", str(scenario), "--inventory", str(fleet_dir / "inventory.yaml"),
                                    "--version", "v2", "--state-dir", str(state)],
                                   cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_until(lambda: _last_decision(state) == ("BakeWait", 1, 0), 60, "the one-box bake", interval_s=0.2)
            assert procs.stop_pid(int(pid), timeout_s=5)  # Prometheus goes away mid-bake
            out, err = execute.communicate(timeout=60)
        finally:
            if execute.poll() is None:
                execute.kill()
                execute.wait()
        print(out, err)
        # Blind, the run halts: never complete, never rolled back; the one-box keeps the new version.
        assert execute.returncode == 3, out + err
        assert out.startswith("halted: cannot read ") and "from the metric source" in out
        assert f"cannot reach Prometheus at http://127.0.0.1:{port}" in out
        assert "complete" not in out
        versions = {n: fleet.live_version(n) for n in fleet.hosts}
        assert versions == {"local-az1-c1-h1": "v2", "local-az1-c1-h2": "v1", "local-az2-c1-h1": "v1",
                            "local-az2-c1-h2": "v1"}

        # Prometheus back as `local up` starts it (same port, data and configuration): --resume finishes.
        addresses = {n: fleet.address(n) for n in fleet.hosts}
        server.start(addresses, port=port, scrape_interval_s=0.5)
        server.wait_scraping(list(addresses.values()))
        resumed = deploysim("execute", "--resume", str(state), cwd=tmp_path)
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        assert "complete: v2 runs on all 4 targets" in resumed.stdout
        assert [fleet.live_version(n) for n in fleet.hosts] == ["v2"] * 4
    finally:
        local("down", "--dir", str(fleet_dir), cwd=tmp_path)
