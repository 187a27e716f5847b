"""Starting, deploying and stopping real host processes; recovery after a deploy killed with -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest
from localfleet_fixtures import REPO, targets_of, wait_until

from deploysim.executor.interfaces import Target
from deploysim.executor.local_adapter import LocalAdapter
from deploysim.localfleet import procs
from deploysim.localfleet.fleet import FleetError, LocalFleet


def pid_of(fleet: LocalFleet, name: str) -> int:
    ident = fleet.identity(name)
    assert ident is not None, f"{name} does not answer"
    return int(ident["pid"])


def test_deploy_restarts_the_host_on_the_same_port(fleet_factory):
    fleet = fleet_factory({"h1": "v1", "h2": "v1"})
    port, before = fleet.hosts["h1"], pid_of(fleet, "h1")
    outcome = fleet.deploy("h1", "v2", timeout_s=20)
    assert outcome.ok, outcome.detail
    assert "v1 -> v2" in outcome.detail
    assert fleet.live_version("h1") == "v2" and fleet.hosts["h1"] == port
    assert pid_of(fleet, "h1") != before and not procs.pid_alive(before)
    assert fleet.live_version("h2") == "v1"
    state = fleet.state("h1")
    assert state["version"] == "v2" and state["phase"] == "running" and state["previous"] == "v1"


def test_deploy_is_safe_to_repeat(fleet_factory):
    fleet = fleet_factory({"h1": "v2"})
    pid = pid_of(fleet, "h1")
    outcome = fleet.deploy("h1", "v2", timeout_s=20)
    assert outcome.ok and "already runs v2" in outcome.detail
    assert pid_of(fleet, "h1") == pid


def test_unknown_version_never_takes_the_host_down(fleet_factory):
    fleet = fleet_factory({"h1": "v1"})
    pid = pid_of(fleet, "h1")
    outcome = fleet.deploy("h1", "v9", timeout_s=20)
    assert not outcome.ok and "unknown version 'v9'" in outcome.detail
    assert pid_of(fleet, "h1") == pid


def test_a_crashing_version_fails_and_rolls_back(fleet_factory):
    fleet = fleet_factory({"h1": "v1"})
    outcome = fleet.deploy("h1", "v6-crash", timeout_s=20)
    assert not outcome.ok
    assert "exited with code 3" in outcome.detail and "crashed at start" in outcome.detail
    assert fleet.live_version("h1") is None and fleet.state("h1")["phase"] == "failed"
    assert fleet.deploy("h1", "v1", timeout_s=20).ok
    assert fleet.live_version("h1") == "v1"


def test_stop_and_start_again(fleet_factory):
    fleet = fleet_factory({"h1": "v1", "h2": "v2"})
    pids = [pid_of(fleet, "h1"), pid_of(fleet, "h2")]
    assert all(o.ok for o in fleet.stop())
    assert not any(procs.pid_alive(p) for p in pids)
    assert [s.live_version for s in fleet.status()] == [None, None]
    outcomes = fleet.start(None, timeout_s=20)  # each on its recorded version
    assert all(o.ok for o in outcomes), outcomes
    assert [s.live_version for s in fleet.status()] == ["v1", "v2"]
    assert all(s.healthy for s in fleet.status())


def test_hosts_outlive_the_process_that_started_them(tmp_path):
    script = textwrap.dedent(f"""
        from deploysim.localfleet.fleet import LocalFleet
        from deploysim.localfleet import procs
        fleet = LocalFleet.create({str(tmp_path)!r}, {{"h1": procs.free_port()}},
                                  {str(REPO / "scenarios" / "local-fleet.versions.yaml")!r})
        assert fleet.start("v1", timeout_s=20)[0].ok
    """)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    fleet = LocalFleet(tmp_path)
    try:
        pid = pid_of(fleet, "h1")
        assert fleet.live_version("h1") == "v1"
        assert os.getsid(pid) == pid != os.getsid(0)  # its own session: signals to our group miss it
    finally:
        fleet.stop()


def deploy_in_child(directory, host: str, version: str, pause: str) -> subprocess.Popen:
    script = (f"from deploysim.localfleet.fleet import LocalFleet; "
              f"print(LocalFleet({str(directory)!r}).deploy({host!r}, {version!r}, timeout_s=60))")
    env = dict(os.environ, DEPLOYSIM_LOCALFLEET_PAUSE=pause)
    return subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def test_a_deploy_killed_after_stopping_the_old_process_is_recovered(fleet_factory):
    fleet = fleet_factory({"h1": "v1", "h2": "v1"})
    old = pid_of(fleet, "h1")
    child = deploy_in_child(fleet.dir, "h1", "v2", "after_stop:60")
    wait_until(lambda: not procs.pid_alive(old) and fleet.state("h1").get("phase") == "deploying",
               20, "the deploy to stop the old process")
    child.send_signal(signal.SIGKILL)
    child.wait(10)
    # What is left: the host is down, its record says a deploy to v2 was under way.
    h1 = fleet.status()[0]
    assert h1.live_version is None and h1.recorded_version == "v2" and h1.phase == "deploying"
    assert LocalAdapter(fleet.dir).current_version(targets_of(fleet, "h1")[0], timeout_s=1) is None
    # Recovery finishes the deploy the record asked for; the other host is left alone.
    other = pid_of(fleet, "h2")
    outcomes = fleet.recover(timeout_s=20)
    assert all(o.ok for o in outcomes), outcomes
    assert fleet.live_version("h1") == "v2" and fleet.state("h1")["phase"] == "running"
    assert pid_of(fleet, "h2") == other


def test_a_deploy_killed_after_starting_the_new_process_is_recovered(fleet_factory):
    fleet = fleet_factory({"h1": "v1"})
    child = deploy_in_child(fleet.dir, "h1", "v2", "after_spawn:60")
    wait_until(lambda: fleet.live_version("h1") == "v2", 20, "the new process to serve")
    child.send_signal(signal.SIGKILL)
    child.wait(10)
    new = pid_of(fleet, "h1")  # the new process outlived its deployer
    assert fleet.state("h1")["phase"] == "deploying"
    # Repeating the deploy (as a resumed rollout does) sees the truth and does nothing.
    outcome = fleet.deploy("h1", "v2", timeout_s=20)
    assert outcome.ok and "already runs v2" in outcome.detail and pid_of(fleet, "h1") == new
    assert fleet.state("h1")["phase"] == "running"
    # Rolling back instead works just as well.
    assert fleet.deploy("h1", "v1", timeout_s=20).ok and fleet.live_version("h1") == "v1"
    assert not procs.pid_alive(new)


def test_local_adapter_over_the_fleet(fleet_factory):
    fleet = fleet_factory({"h1": "v1", "h2": "v1"})
    adapter = LocalAdapter(fleet.dir)
    h1, h2 = targets_of(fleet, "h1", "h2")
    assert adapter.current_version(h1, timeout_s=2) == "v1" and adapter.healthy(h1, timeout_s=2)
    result = adapter.deploy(h1, "v3-faulty", timeout_s=20)
    assert result.ok and "v1 -> v3-faulty" in result.detail
    assert adapter.current_version(h1, timeout_s=2) == "v3-faulty"
    assert adapter.rollback(h1, "v1", timeout_s=20).ok
    assert adapter.current_version(h1, timeout_s=2) == "v1"
    bad = adapter.deploy(h2, "v6-crash", timeout_s=20)
    assert not bad.ok and "crashed at start" in bad.detail
    assert adapter.current_version(h2, timeout_s=2) is None and not adapter.healthy(h2, timeout_s=2)
    assert adapter.rollback(h2, "v1", timeout_s=20).ok
    stranger = Target(host=9, name="nope", region="local", az="local-az1", cell="local-az1-c1",
                      address="127.0.0.1:1")
    assert not adapter.deploy(stranger, "v1", timeout_s=5).ok
    assert adapter.current_version(stranger, timeout_s=1) is None


def test_no_fleet_is_a_one_line_error(tmp_path):
    with pytest.raises(FleetError, match="no local fleet in .*fleet.json missing"):
        LocalAdapter(tmp_path)


def test_a_port_taken_by_another_program_fails_fast_and_clearly(tmp_path):
    import socket
    import time

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        fleet = LocalFleet.create(tmp_path, {"h1": port}, REPO / "scenarios" / "local-fleet.versions.yaml")
        started = time.monotonic()
        outcome = fleet.start("v1", timeout_s=20)[0]
        assert not outcome.ok and f"port {port} is still in use" in outcome.detail
        assert time.monotonic() - started < 5
