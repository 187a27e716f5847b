"""The canary judge over the real local fleet: real demo-service processes under a real load
generator, scraped by a real Prometheus. The executor deploys the old version to a spare host as
the baseline, judges the one-box against it from the two targets' real Prometheus series, rolls a
faulty version back and lets a good one through, then returns the spare to what it ran."""

from __future__ import annotations

import time

import pytest
import yaml
from localfleet_fixtures import APIS, RATE, VERSIONS, served, wait_until

from deploysim.executor import Executor, Journal, load_rollout
from deploysim.executor.inventory import make_adapter, make_metric_source
from deploysim.fleet import build_fleet, host_names
from deploysim.localfleet import procs
from deploysim.localfleet.fleet import LocalFleet
from deploysim.scenario import scenario_from_dict

SPARE = "spare-1"
SCRAPE_S = 0.5
DELAY_S = 1.5  # a 1 s period's datapoint is read 1.5 s after it ends: Prometheus has scraped it by then

SCENARIO = {
    "name": "judge-local", "metric_period": "1s",
    "fleet": {"host_capacity_rpm": 6000, "regions": [
        {"name": "local", "timezone": "UTC", "azs": 1, "cells_per_az": 1, "hosts_per_cell": 2}]},
    "traffic": {"requests_per_min": 2 * RATE * 60, "daily_amplitude": 0.0, "weekend_factor": 1.0, "noise_cv": 0.0,
                "apis": APIS},
    "changes": {"code": {"arrivals": {"changes_per_week": 1}, "defects": [{"name": "faults", "error_rate": 0.3}]}},
    "policy": {"pipelines": {"code": {
        "rollback": {"automatic": True, "duration": "1s"}, "blockers": {"incidents": False, "holidays": False},
        "stages": [{"name": "prod", "kind": "production", "regions": ["local"],
                    "one_box": {"hosts": 1, "bake": "8s", "judge": {
                        "kind": "kayenta", "baseline": "deploy", "interval": "4s",
                        "metrics": [{"metric": "error_rate", "critical": True}],
                        "inconclusive": {"limit": 3, "then": "rollback"}}},
                    "batching": {"max_share": 1.0, "duration": "0s"},
                    "waves": [{"unit": "region", "count": "rest", "bake": "1s"}]}]}}},
}


@pytest.fixture(scope="module")
def judged_fleet(prometheus_binary, tmp_path_factory):
    """Two fleet hosts on v1 and a spare on v2, all under load and scraped every 0.5 s."""
    from deploysim.localfleet.control import start_loadgen, stop_loadgen
    from deploysim.localfleet.prometheus import PrometheusServer

    root = tmp_path_factory.mktemp("judge-fleet")
    names = list(host_names(build_fleet(scenario_from_dict(SCENARIO))))
    fleet = LocalFleet.create(root / "fleet", {n: procs.free_port() for n in [*names, SPARE]}, VERSIONS, APIS)
    server = PrometheusServer(root / "prometheus")
    try:
        assert all(o.ok for o in fleet.start("v1", names=names, timeout_s=30))
        assert all(o.ok for o in fleet.start("v2", names=[SPARE], timeout_s=30))
        before = {n: served(fleet, n) for n in fleet.hosts}
        start_loadgen(fleet.dir, RATE)
        wait_until(lambda: all(served(fleet, n) > before[n] for n in fleet.hosts), 60, "load on every host", 0.05)
        url = server.start({n: fleet.address(n) for n in fleet.hosts}, port=procs.free_port(),
                           scrape_interval_s=SCRAPE_S)
        server.wait_scraping([fleet.address(n) for n in fleet.hosts], timeout_s=30)
        yield root, fleet, names, url
    finally:
        stop_loadgen(fleet.dir)
        server.stop()
        fleet.stop()


def execute(root, fleet: LocalFleet, names, url, version: str, state: str):
    inventory = {"adapter": {"kind": "local", "fleet_dir": str(fleet.dir), "timeout": "30s", "retries": 1,
                             "backoff": "0.5s"},
                 "metrics": {"kind": "prometheus", "url": url},
                 "targets": {n: {"address": fleet.address(n)} for n in names},
                 "baseline_targets": {SPARE: {"address": fleet.address(SPARE)}}}
    rollout = load_rollout(yaml.safe_dump(SCENARIO), "scenario", yaml.safe_dump(inventory), "inventory", root,
                           version, None)
    (root / state).mkdir()
    journal = Journal.in_dir(root / state)
    executor = Executor(rollout, make_adapter(rollout.inventory, root), make_metric_source(rollout.inventory,
                        rollout.targets), journal, datapoint_delay_s=DELAY_S)
    started = time.monotonic()
    outcome = executor.start()
    judgements = [detail for _, _, kind, detail in journal.events() if kind == "judgement"]
    spare_deploys = [a.version for a in journal.actions() if a.target == SPARE and a.phase == "done"]
    return outcome, judgements, spare_deploys, time.monotonic() - started


def test_a_faulty_version_judged_against_a_deployed_baseline_is_rolled_back(judged_fleet):
    root, fleet, names, url = judged_fleet
    outcome, judgements, spare, took_s = execute(root, fleet, names, url, "v3-faulty", "faulty")
    assert outcome.status == "rolled_back", (outcome, judgements)
    assert "canary judge failed" in outcome.message and "error_rate: High" in outcome.message
    assert judgements[-1].split(": ")[1] == "fail"
    assert {n: fleet.live_version(n, timeout_s=5) for n in names} == dict.fromkeys(names, "v1")
    assert spare == ["v1", "v2"]  # the baseline ran the old version, then went back to what it ran
    assert fleet.live_version(SPARE, timeout_s=5) == "v2"
    assert took_s < 60


def test_a_good_version_passes_the_judge_and_completes(judged_fleet):
    root, fleet, names, url = judged_fleet
    outcome, judgements, spare, took_s = execute(root, fleet, names, url, "v2", "good")
    assert outcome.status == "complete", (outcome, judgements)
    assert judgements and judgements[-1].split(": ")[1] == "pass"
    assert all(j.split(": ")[1] != "fail" for j in judgements)
    assert {n: fleet.live_version(n, timeout_s=5) for n in names} == dict.fromkeys(names, "v2")
    assert spare[-1] == "v2" and fleet.live_version(SPARE, timeout_s=5) == "v2"
    assert took_s < 60
