"""A wave of unit `traffic` (a canary weight): the new version serves `weight` percent of each of the
stage's regions' requests, on whole hosts, in the plan, the simulator and the executor."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from conftest import bad_change, patched, tiny_scenario_dict, with_changes
from executor_support import fast_scenario_dict
from test_executor_fake import START_S, fake_rollout

import deploysim
from deploysim.executor import Executor, Journal
from deploysim.exposure import ExposureLog
from deploysim.fleet import build_fleet
from deploysim.metrics import MetricModel
from deploysim.policy.plan import build_plan
from deploysim.scenario.loader import ScenarioError
from deploysim.world import world_for_seed


def _traffic_waves(data: dict, waves: list[dict], one_box: dict | None = None) -> dict:
    stage = "policy.pipelines.code.stages.0"
    data = patched(data, f"{stage}.waves", waves)
    return patched(data, f"{stage}.one_box", one_box)


def _steps(data: dict):
    scenario = deploysim.scenario_from_dict(data)
    plan = build_plan("code", scenario.policy.pipelines["code"], build_fleet(scenario))
    return plan.stages[0].steps


def test_weights_are_cumulative_and_served_by_the_fewest_whole_hosts():
    """10 equal hosts: 10% is 1 host, 25% ceil(2.5) = 3 in all (2 more), 100% the other 7."""
    steps = _steps(_traffic_waves(tiny_scenario_dict(), [
        {"unit": "traffic", "weight": 10, "bake": "10m"}, {"unit": "traffic", "weight": 25, "bake": "10m"},
        {"unit": "traffic", "weight": 100}]))
    assert [s.hosts.size for s in steps] == [1, 2, 7]
    assert [s.weight for s in steps] == [10, 25, 100]


def test_hosts_of_a_one_box_count_toward_the_weight():
    """A one-box host taking 10% of the region's requests already serves a 10% weight: that wave adds no host."""
    steps = _steps(_traffic_waves(tiny_scenario_dict(), [
        {"unit": "traffic", "weight": 10}, {"unit": "traffic", "weight": 55}, {"unit": "traffic", "weight": 100}],
        one_box={"hosts": 1, "traffic_share": 0.1, "bake": "10m"}))
    assert [s.name for s in steps] == ["one-box", "wave-2", "wave-3"]
    assert [s.hosts.size for s in steps] == [1, 5, 4]  # 0.1 + 5 x 0.1 = 60% >= 55%


def test_a_ten_percent_weight_shows_a_tenth_of_the_defects_errors_and_rolls_back_as_computed():
    """A defect failing every request at weight 10%: the region's error rate is 10%, over a 5%
    region alarm (3 of 3 at 1 min): detected 3 min after the first bad request, reverted 10 min
    later; failed requests = 10% x 6000/min x 13 min, one host reached, a tenth of the capacity."""
    data = _traffic_waves(tiny_scenario_dict(), [
        {"unit": "traffic", "weight": 10, "bake": "30m"}, {"unit": "traffic", "weight": 100, "bake": "10m"}])
    data = patched(data, "alarms.metric.0.threshold", 0.05)
    data = patched(data, "policy.pipelines.code.watch", {"region": ["fault_rate"]})
    scenario = deploysim.scenario_from_dict(data)
    row = with_changes(scenario, [bad_change(scenario)]).changes.iloc[0]
    assert row["outcome"] == "rolled_back"
    assert row["first_bad_s"] == 300.0 and row["ttd_s"] == 180.0 and row["ttr_s"] == 180.0 + 600.0
    assert row["failed_requests"] == pytest.approx(0.1 * 6000 * 13)
    assert row["hosts_reached"] == 1
    assert row["peak_capacity_share"] == pytest.approx(0.1)


def test_the_region_alarms_datapoints_at_ten_percent_are_a_tenth_of_the_defect():
    """Google SRE Workbook's canary arithmetic on a traffic step: 20% errors on the hosts of a 10%
    weight (2 of 20) show as 2% errors in the region's datapoints, 20% in the canary's own."""
    data = patched(tiny_scenario_dict(), "fleet.regions.0.hosts_per_cell", 20)
    data = _traffic_waves(data, [{"unit": "traffic", "weight": 10, "bake": "1h"}, {"unit": "traffic", "weight": 100}])
    data = patched(data, "changes.code.defects", [{"name": "twenty", "error_rate": 0.2}])
    scenario = deploysim.scenario_from_dict(data)
    layout = build_fleet(scenario)
    canary = _steps(data)[0].hosts
    assert canary.size == 2
    model = MetricModel(scenario, layout, world_for_seed(scenario, seed=0, months=0.01), [bad_change(scenario)])
    log = ExposureLog()
    log.open(0, canary, 0.0)
    region = model.expected(layout.hosts_in_region(0), 0, 10, log)
    np.testing.assert_allclose(region.errors / region.requests, 0.1 * 0.2)
    own = model.expected(canary, 0, 10, log)
    np.testing.assert_allclose(own.errors / own.requests, 0.2)
    np.testing.assert_allclose(own.requests, 0.1 * 6000)


@pytest.mark.parametrize(("wave", "says"), [
    ({"unit": "traffic", "bake": "1m"}, "needs `weight`"),
    ({"unit": "traffic", "weight": 10, "count": 1}, "not `count`"),
    ({"unit": "az", "weight": 10}, "`weight` belongs to a wave of unit 'traffic'"),
    ({"unit": "traffic", "weight": 120}, "waves\\[0\\].weight: must be at most 100"),
])
def test_a_traffic_wave_is_checked(wave, says):
    data = _traffic_waves(tiny_scenario_dict(), [wave, {"unit": "region", "count": "rest"}])
    with pytest.raises(ScenarioError, match=says):
        deploysim.scenario_from_dict(data)


def test_validate_warns_when_whole_hosts_serve_more_than_the_weight():
    """24 hosts: 10% is 3 hosts, 12.5% of the requests (said); 25% is exactly 6 hosts (not said)."""
    from deploysim.scenario.checks import scenario_warnings

    data = patched(tiny_scenario_dict(), "fleet.regions.0.hosts_per_cell", 24)
    data = _traffic_waves(data, [{"unit": "traffic", "weight": 10}, {"unit": "traffic", "weight": 25},
                                 {"unit": "traffic", "weight": 100}])
    warnings = [w for w in scenario_warnings(deploysim.scenario_from_dict(data)) if "whole hosts" in w]
    assert warnings == ["policy.pipelines.code, stage prod, waves[0]: weight 10% in r1 is served by whole hosts: "
                        "12.5% of its requests in the simulator (a traffic router, adapter set_weight, gives the "
                        "exact weight)"]


def test_traffic_weights_must_grow_and_the_last_must_reach_every_host():
    with pytest.raises(ScenarioError, match="must grow"):
        deploysim.scenario_from_dict(_traffic_waves(tiny_scenario_dict(), [
            {"unit": "traffic", "weight": 50}, {"unit": "traffic", "weight": 20}]))
    with pytest.raises(ScenarioError, match="do not cover every host"):
        deploysim.scenario_from_dict(_traffic_waves(tiny_scenario_dict(), [{"unit": "traffic", "weight": 50}]))


def _weighted_fast() -> dict:
    data = fast_scenario_dict(hosts_per_cell=5, bakes_s=(60, 60, 60))  # 10 hosts in one region
    return _traffic_waves(data, [{"unit": "traffic", "weight": 20, "bake": 60},
                                 {"unit": "traffic", "weight": 100, "bake": 60}])


def test_the_executor_tells_a_traffic_router_each_weight_after_the_steps_hosts(tmp_path):
    rollout, clock, adapter, source = fake_rollout(tmp_path, _weighted_fast(), "v2")
    journal = Journal.in_dir(tmp_path, clock=clock)
    outcome = Executor(rollout, adapter, source, journal, clock=clock).start()
    assert outcome.status == "complete" and clock.now() > START_S
    # Journaled as actions of their own, never mistaken for a target's version.
    assert [a.target for a in journal.actions() if a.kind == "set_weight" and a.phase == "done"] == ["prod/r1"] * 2
    assert set(journal.current_versions()) == {t.name for t in rollout.targets}
    kinds = [(kind, what, value) for kind, what, value in adapter.calls if kind in ("deploy", "set_weight")]
    weights = [(i, value) for i, (kind, _, value) in enumerate(kinds) if kind == "set_weight"]
    assert [value for _, value in weights] == ["20", "100"]
    # 20%: both hosts of the canary are deployed before the router moves traffic to them.
    assert [k for k, _, _ in kinds[:weights[0][0]]] == ["deploy", "deploy"]
    assert adapter.weights == {("prod", "r1"): 100.0}


def test_a_rollback_first_sends_no_traffic_to_the_new_version(tmp_path):
    rollout, clock, adapter, source = fake_rollout(tmp_path, _weighted_fast(), "v2-bad")
    outcome = Executor(rollout, adapter, source, Journal.in_dir(tmp_path, clock=clock), clock=clock).start()
    assert outcome.status == "rolled_back"
    router = [value for kind, _, value in adapter.calls if kind == "set_weight"]
    first_rollback = next(i for i, call in enumerate(adapter.calls) if call[0] == "rollback")
    assert router[-1] == "0" and adapter.weights == {("prod", "r1"): 0.0}
    assert max(i for i, call in enumerate(adapter.calls) if call[0] == "set_weight") < first_rollback
    assert set(adapter.versions.values()) == {"v1"}


def test_the_command_adapter_runs_set_weight_with_its_placeholders_and_none_without_it(tmp_path):
    from deploysim.executor.command_adapter import CommandAdapter
    from deploysim.executor.inventory import AdapterSpec

    out = tmp_path / "weights"
    spec = AdapterSpec(kind="command", deploy=["true"], current_version=["true"], retries=0,
                       set_weight=["sh", "-c", f'echo "$0 $1 $2 $3" >> {out}', "{stage}", "{region}", "{weight}",
                                   "{version}"])
    result = CommandAdapter(spec).set_weight("prod", "us-east-1", 12.5, "v2", timeout_s=10)
    assert result is not None and result.ok
    assert out.read_text() == "prod us-east-1 12.5 v2\n"
    plain = AdapterSpec(kind="command", deploy=["true"], current_version=["true"])
    assert CommandAdapter(plain).set_weight("prod", "us-east-1", 10, "v2", timeout_s=10) is None


def test_an_inventory_set_weight_command_takes_no_target_placeholder(tmp_path):
    from test_executor_fake import fake_rollout

    with pytest.raises(ValueError, match=r"adapter.set_weight \(line 9, column 3\): runs once per region"):
        fake_rollout(tmp_path, _weighted_fast(), "v2", set_weight=["route", "{target}", "{weight}"])
    rollout = fake_rollout(tmp_path, _weighted_fast(), "v2", set_weight=["route", "{region}", "{weight}"])[0]
    assert list(rollout.inventory.adapter.set_weight) == ["route", "{region}", "{weight}"]


# ----------------------------------------------------------------------------- the local fleet


def test_the_load_generator_splits_requests_by_weight_between_the_versions():
    from deploysim.localfleet.loadgen import split_rates

    versions = {"h1": "v2", "h2": "v1", "h3": "v1", "h4": "v1", "h5": "v1"}
    rates = split_rates(10.0, versions, {"version": "v2", "weight_pct": 20})
    assert rates["h1"] == pytest.approx(10.0) and rates["h2"] == pytest.approx(10.0)  # 20% of 50 on one host
    rates = split_rates(10.0, versions, {"version": "v2", "weight_pct": 50})
    assert rates["h1"] == pytest.approx(25.0) and sum(rates.values()) == pytest.approx(50.0)
    assert split_rates(10.0, versions, {"version": "v2", "weight_pct": 0})["h1"] == 0.0
    assert split_rates(10.0, versions, None) == dict.fromkeys(versions, 10.0)
    # Every host on one side (the weight's version everywhere, or nowhere): nothing to split.
    assert split_rates(10.0, dict.fromkeys(versions, "v1"), {"version": "v2", "weight_pct": 20}) == dict.fromkeys(
        versions, 10.0)


def test_a_weighted_local_fleet_sends_the_new_version_its_share_of_real_requests(tmp_path):
    """Real processes: 1 host of 4 on v2 with a 50% weight gets about half the requests (not a
    quarter); a deploy of another version (a rollback) ends the weight."""
    from localfleet_fixtures import APIS, make_fleet, targets_of

    from deploysim.executor.local_adapter import LocalAdapter
    from deploysim.localfleet import loadgen

    hosts = {"h1": "v2", "h2": "v1", "h3": "v1", "h4": "v1"}
    fleet = make_fleet(tmp_path / "fleet", hosts)
    try:
        adapter = LocalAdapter(tmp_path / "fleet")
        assert adapter.set_weight("prod", "local", 50, "v2", timeout_s=5).ok
        result: dict = {}
        # In a thread of its own: run() takes SIGINT and SIGTERM only in the main thread (the test's).
        worker = threading.Thread(target=lambda: result.update(loadgen.run(
            {n: fleet.address(n) for n in hosts}, 20.0, APIS, duration_s=3.0, report_every_s=60,
            fleet_dir=tmp_path / "fleet")))
        worker.start()
        worker.join(timeout=60)
        counts = result
        sent = {n: c["sent"] for n, c in counts.items()}
        share = sent["h1"] / sum(sent.values())
        assert 0.38 < share < 0.62, sent
        assert adapter.deploy(targets_of(fleet, "h1")[0], "v1", timeout_s=20).ok
        assert not (tmp_path / "fleet" / loadgen.WEIGHTS_FILE).exists()
    finally:
        fleet.stop(timeout_s=10)
