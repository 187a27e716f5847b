"""Fixtures with real processes for the local-fleet tests: demo-service hosts, a load generator
and a real Prometheus (Debian's `prometheus` package) on free loopback ports.

Imported by tests/conftest.py so that the session-scoped ones are shared by every module.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from deploysim.executor.interfaces import Target
from deploysim.localfleet import procs
from deploysim.localfleet.fleet import LocalFleet
from deploysim.localfleet.loadgen import fleet_targets

REPO = Path(__file__).resolve().parent.parent
VERSIONS = REPO / "scenarios" / "local-fleet.versions.yaml"
APIS = {"Get": 0.8, "Create": 0.15, "Delete": 0.05}

SCRAPE_S = 0.5  # Prometheus scrape interval in these tests
PERIOD_S = 2.0  # alarm period in these tests (the demo uses 1 s scrapes and 5 s periods)
RATE = 40.0  # requests per second the load generator sends to each host

# The shared fleet: host name -> the version it runs for the whole session.
SHARED_HOSTS = {"good-1": "v1", "good-2": "v2", "faulty": "v3-faulty", "slow": "v4-slow",
                "create-bug": "v5-create-bug"}


def wait_until(condition: Callable[[], object], timeout_s: float, what: str, interval_s: float = 0.1):
    """Poll `condition` until it returns something truthy (returned), or fail after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout_s:g}s waiting for {what}")
        time.sleep(interval_s)


def make_fleet(directory: Path, hosts: dict[str, str]) -> LocalFleet:
    """A fleet of `hosts` (name -> version) on free ports, started."""
    fleet = LocalFleet.create(directory, {name: procs.free_port() for name in hosts}, VERSIONS, APIS)
    for name, version in hosts.items():
        outcome = fleet.start(version, names=[name], timeout_s=20)[0]
        assert outcome.ok, outcome.detail
    return fleet


def targets_of(fleet: LocalFleet, *names: str) -> list[Target]:
    return [Target(host=i, name=n, region="local", az="local-az1", cell="local-az1-c1", address=fleet.address(n))
            for i, n in enumerate(names)]


@pytest.fixture
def fleet_factory(tmp_path):
    """Make fleets in a temporary directory; every process is stopped afterwards."""
    made: list[LocalFleet] = []

    def make(hosts: dict[str, str], name: str = "fleet") -> LocalFleet:
        fleet = make_fleet(tmp_path / name, hosts)
        made.append(fleet)
        return fleet

    yield make
    for fleet in made:
        fleet.stop()


@pytest.fixture(scope="session")
def prometheus_binary() -> str:
    path = shutil.which("prometheus")
    if path is None:
        pytest.skip("the `prometheus` binary is not on PATH (Debian: apt-get install prometheus; "
                    "`make system-deps`); CI installs it")
    return path


@pytest.fixture(scope="session")
def shared_fleet(tmp_path_factory):
    """SHARED_HOSTS running (idle until a test sends load), stopped at the end of the session."""
    directory = tmp_path_factory.mktemp("shared-fleet")
    fleet = make_fleet(directory, SHARED_HOSTS)
    targets, apis = fleet_targets(directory)
    assert set(targets) == set(SHARED_HOSTS) and apis == APIS
    yield fleet
    fleet.stop()


def served(fleet: LocalFleet, name: str) -> float:
    """Requests host `name` has counted so far (its /metrics)."""
    import urllib.request

    with urllib.request.urlopen(fleet.url(name, "/metrics"), timeout=5) as response:
        text = response.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("deploysim_requests_total{"))


@pytest.fixture(scope="module")
def shared_load(shared_fleet):
    """A real load generator process sending RATE req/s to each shared host, for one test module
    (so that it does not load the machine while other modules run); yields when its first requests
    reached every host: on a busy machine the process can take a second or more to start sending."""
    from deploysim.localfleet.control import start_loadgen, stop_loadgen

    fleet = shared_fleet
    before = {name: served(fleet, name) for name in fleet.hosts}
    start_loadgen(fleet.dir, RATE)
    wait_until(lambda: all(served(fleet, name) > before[name] for name in fleet.hosts), 60,
               "the load generator's requests to reach every host", 0.05)
    yield time.time()
    stop_loadgen(fleet.dir)


@pytest.fixture(scope="session")
def prometheus_server(prometheus_binary, shared_fleet, tmp_path_factory):
    """A real Prometheus on a free loopback port, temporary storage, scraping the shared fleet."""
    from deploysim.localfleet.prometheus import PrometheusServer

    fleet = shared_fleet
    server = PrometheusServer(tmp_path_factory.mktemp("prometheus"))
    url = server.start({n: fleet.address(n) for n in fleet.hosts}, port=procs.free_port(),
                       scrape_interval_s=SCRAPE_S)
    server.wait_scraping([fleet.address(n) for n in fleet.hosts], timeout_s=30)
    yield url, time.time()  # from here on every host has been scraped
    server.stop()
