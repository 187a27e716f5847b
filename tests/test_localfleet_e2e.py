"""The README walkthrough, for real: `deploysim local up` (fleet + Prometheus + load in one command),
`deploysim execute` of a good version (completes) and of a faulty one (one-box alarm, automatic
rollback), `deploysim local down`. The scenario is scenarios/local-fleet.yaml with shorter periods
and bakes (the logic is the same), so the whole walk takes well under a minute."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from localfleet_fixtures import REPO, VERSIONS

from deploysim.localfleet import procs
from deploysim.localfleet.fleet import LocalFleet

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
