"""`deploysim validate` warns, without failing, about scenarios that probably do not do what their
author meant. Figures are the tiny scenario's: 10 hosts, 6,000 requests a minute, flat traffic."""

from __future__ import annotations

import yaml
from click.testing import CliRunner
from conftest import patched, tiny_scenario_dict

import deploysim
from deploysim.cli import main
from deploysim.scenario.checks import scenario_warnings


def _warnings(data: dict) -> list[str]:
    return scenario_warnings(deploysim.scenario_from_dict(data))


def test_the_tiny_scenario_gets_no_warning():
    assert _warnings(tiny_scenario_dict()) == []


def test_traffic_over_the_fleets_capacity():
    """10 hosts x 500 rpm = 5,000 < 6,000 requests a minute."""
    warnings = _warnings(patched(tiny_scenario_dict(), "fleet.host_capacity_rpm", 500))
    assert any("region r1 gets 6,000 requests/min at peak, over its capacity of 5,000" in w for w in warnings)


def test_batches_over_the_headroom():
    """Capacity 1,000 rpm; the wave is the 9 hosts after the one-box. Batches of 60% take 5 hosts and
    leave 5,000 for 6,000; a third takes 2 and leaves 8,000."""
    data = patched(tiny_scenario_dict(), "fleet.host_capacity_rpm", 1000)
    big = patched(data, "policy.pipelines.code.stages.0.batching", {"max_share": 0.6})
    assert any("batches of 5 hosts leave r1 5,000 requests/min of capacity for 6,000" in w for w in _warnings(big))
    third = patched(data, "policy.pipelines.code.stages.0.batching", {"max_share": 0.33})
    assert _warnings(third) == []


def test_a_defect_on_an_api_no_alarm_watches():
    data = patched(tiny_scenario_dict(), "traffic.apis", {"read": 0.5, "write": 0.5})
    data = patched(data, "changes.code.defects", [{"name": "write-bug", "api": "write", "error_rate": 1.0}])
    data = patched(data, "alarms.metric.0.api", "read")
    assert any("defect write-bug fails write requests, and no alarm the stage watches sees write's errors" in w
               for w in _warnings(data))


def test_an_alarm_the_one_box_can_never_reach_and_min_requests_it_never_serves():
    """The one-box serves 600 requests a minute: an alarm on more than 1,000 errors a minute can never
    fire on it, and 10 million requests take longer than its bake's 7-day limit (6.05 million)."""
    data = patched(tiny_scenario_dict(), "alarms.metric",
                   [{"name": "many_errors", "metric": "errors", "threshold": 1000, "evaluation_periods": 1,
                     "datapoints_to_alarm": 1}])
    data = patched(data, "policy.pipelines.code.watch.one_box", ["many_errors"])
    data = patched(data, "policy.pipelines.code.stages.0.one_box.bake",
                   {"duration": "10m", "min_requests": {"All": 10_000_000}})
    warnings = _warnings(data)
    assert any("alarms.metric many_errors" in w and "serves at most 600 requests a period: it can never fire" in w
               for w in warnings)
    assert any("serves about 6,048,000 All requests in its bake's 168 h limit, under min_requests 10,000,000" in w
               for w in warnings)


def test_validate_prints_warnings_and_still_exits_0(tmp_path):
    path = tmp_path / "over.yaml"
    path.write_text(yaml.safe_dump(patched(tiny_scenario_dict(), "fleet.host_capacity_rpm", 500)))
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 0
    assert f"ok: {path} (tiny)" in result.output
    assert f"warning: {path}: fleet: region r1 gets 6,000 requests/min" in result.output
