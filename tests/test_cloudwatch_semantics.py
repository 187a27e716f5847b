"""CloudWatch semantics in the simulated alarms: INSUFFICIENT_DATA in composites, the evaluation
range with missing data, percentiles of few requests, and the delays before an alarm sees a datapoint.

The scenario is tests/conftest.py's tiny one: 10 hosts, 600 requests a minute each, 1-minute periods,
no noise; latency p50 20 ms, p99 120 ms.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from conftest import bad_change, patched, tiny_scenario_dict, with_changes

import deploysim
from deploysim.alarms import parse_rule
from deploysim.engine import Simulation
from deploysim.world import world_for_seed

LAT = {"name": "lat", "metric": "latency_p99_ms", "threshold": 1000.0, "evaluation_periods": 3,
       "datapoints_to_alarm": 3}


def _sim(defect: dict, metric_alarms: list[dict], composites: list[dict] = ()) -> Simulation:
    data = patched(tiny_scenario_dict(), "changes.code.defects", [defect])
    data = patched(data, "alarms", {"metric": metric_alarms, "composite": list(composites)})
    data = patched(data, "policy.pipelines.code.watch", {"one_box": []})
    scenario = deploysim.scenario_from_dict(data)
    # The bad change is known to the metric model; the tests open its exposures by hand.
    world = dataclasses.replace(world_for_seed(scenario, seed=0, months=0.01),
                                changes=(bad_change(scenario, arrival_s=1e9),), faults=())
    return Simulation(scenario, seed=0, months=0.01, world=world)


def test_composites_see_insufficient_data_on_a_crashed_one_box():
    """A crashed host publishes no latency: its alarm is INSUFFICIENT_DATA from the first period, so
    INSUFFICIENT_DATA(lat) and NOT ALARM(lat) hold while OK(lat) does not."""
    sim = _sim({"name": "crash", "crash": True}, [LAT], [
        {"name": "no_data", "rule": 'INSUFFICIENT_DATA("lat")'},
        {"name": "ok", "rule": 'OK("lat")'},
        {"name": "not_alarm", "rule": 'NOT ALARM("lat")'},
    ])
    sim.exposures.open(0, np.array([0]), 0.0)
    assert sim.alarm_states("no_data", [0], 0, 10).all()
    assert not sim.alarm_states("ok", [0], 0, 10).any()
    assert sim.alarm_states("not_alarm", [0], 0, 10).all()
    # A healthy host has data: OK holds, INSUFFICIENT_DATA does not.
    assert sim.alarm_states("ok", [5], 0, 10).all()
    assert not sim.alarm_states("no_data", [5], 0, 10).any()


def test_insufficient_data_starts_when_the_n_plus_2_range_holds_no_datapoint():
    """Crash at 5 min, N = 3: ranges of N + 2 = 5 periods still hold a healthy point until period 8,
    so the alarm goes to INSUFFICIENT_DATA at period 9 = 5 + 5 - 1."""
    sim = _sim({"name": "crash", "crash": True}, [LAT], [{"name": "no_data", "rule": 'INSUFFICIENT_DATA("lat")'}])
    sim.exposures.open(0, np.array([0]), 300.0)
    np.testing.assert_array_equal(np.flatnonzero(sim.alarm_states("no_data", [0], 0, 14)), np.arange(9, 14))


def test_a_window_asked_for_late_gets_the_full_evaluation_range():
    """treat_missing_data: breaching, crash at 5 min: ALARM from period 9, whichever period the
    question starts at (with only N - 1 periods of history a window from period 7 fired 2 periods early)."""
    sim = _sim({"name": "crash", "crash": True}, [{**LAT, "treat_missing_data": "breaching"}])
    sim.exposures.open(0, np.array([0]), 300.0)
    whole = sim.alarm_states("lat", [0], 0, 14)
    np.testing.assert_array_equal(np.flatnonzero(whole), np.arange(9, 14))
    for k in range(5, 12):
        np.testing.assert_array_equal(sim.alarm_states("lat", [0], k, 14), whole[k:])


def test_a_p99_of_five_requests_is_the_largest_of_five():
    """The nearest-rank p99 of 5 requests is their maximum, whose quantile is U**(1/5): at the median
    uniform 0.5**0.2 = 0.871, i.e. 120 ms * exp(sigma * (z(0.871) - z(0.99))) = 47.7 ms, well under
    the p99 of the distribution (sigma = ln(120/20) / z(0.99) = 0.770)."""
    sim = _sim({"name": "none"}, [LAT])
    model = sim.metrics
    u = model.sampled_quantile("p99", np.array([5.0, 1e6]), np.array([0.5, 0.5]))
    assert u[0] == pytest.approx(0.5 ** 0.2)
    assert u[1] == pytest.approx(0.99, abs=1e-6)  # a million requests: almost exactly the p99
    assert model._latency_at("p99", u[:1], None, None)[0] == pytest.approx(47.7, abs=0.1)


def test_a_one_box_p99_spreads_widely_and_ignore_holds_the_state():
    """One host serves 600 requests a minute, under the 1,000 a p99 needs (10 / (1 - 0.99)): a 4x
    slower one-box crosses 300 ms in most periods when evaluated, but an alarm set to ignore low
    sample counts never changes state (OK throughout)."""
    alarm = {**LAT, "threshold": 300.0, "evaluation_periods": 1, "datapoints_to_alarm": 1}
    sim = _sim({"name": "slow", "latency_factor": 4.0},
               [alarm, {**alarm, "name": "lat_ignore", "evaluate_low_sample_count_percentile": "ignore"}])
    sim.exposures.open(0, np.array([0]), 0.0)
    values = sim.datapoints("lat", [0], 0, 200)
    # 4 x 120 ms = 480 ms is the distribution's p99; the sample p99 of 600 requests spreads around it.
    assert 0.8 * 480 < np.median(values) < 1.2 * 480
    assert values.std() > 0.05 * 480
    assert sim.alarm_states("lat", [0], 0, 200).mean() > 0.9
    assert not sim.alarm_states("lat_ignore", [0], 0, 200).any()
    # The whole 10-host region serves 6,000 a minute: enough samples, so ignore evaluates as usual.
    region = np.arange(10)
    sim.exposures.open(0, np.arange(1, 10), 0.0)
    assert sim.alarm_states("lat_ignore", region, 0, 200).mean() > 0.9


def test_ingestion_and_evaluation_delays_add_to_the_time_to_detect():
    """The one-box alarm (3 of 3 on error rate) fires 3 minutes after the one-box starts failing;
    with a 2-minute ingestion delay and a 1-minute evaluation delay it fires 3 minutes later still."""
    def ttd(alarms_extra):
        data = tiny_scenario_dict()
        data["alarms"].update(alarms_extra)
        scenario = deploysim.scenario_from_dict(data)
        result = with_changes(scenario, [bad_change(scenario)])
        return float(result.changes["ttd_s"].iloc[0])

    base = ttd({})
    assert base == pytest.approx(180.0, abs=60.0)
    assert ttd({"ingestion_delay": "2m", "evaluation_delay": "1m"}) == pytest.approx(base + 180.0)


def test_evaluate_series_reads_state_codes():
    """A series of codes (0 OK, 1 ALARM, 2 INSUFFICIENT_DATA) evaluates like evaluate() per period."""
    rule = parse_rule('OK("a") OR INSUFFICIENT_DATA("b")')
    codes = {"a": np.array([0, 1, 2, 1], dtype=np.int8), "b": np.array([1, 2, 0, 0], dtype=np.int8)}
    names = ("OK", "ALARM", "INSUFFICIENT_DATA")
    expected = [rule.evaluate({k: names[v[i]] for k, v in codes.items()}) == "ALARM" for i in range(4)]
    np.testing.assert_array_equal(rule.evaluate_series(codes), expected)
    assert expected == [True, True, False, False]
