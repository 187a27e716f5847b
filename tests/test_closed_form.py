"""The simulator against figures computed by hand and in closed form."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import bad_change, good_change, patched, tiny_scenario_dict, with_changes
from scipy import stats

import deploysim
from deploysim.alarms import detection_probability
from deploysim.exposure import ExposureLog
from deploysim.fleet import build_fleet
from deploysim.metrics import MetricModel
from deploysim.world import world_for_seed

HOST_RPM = 6000 / 10  # every host serves a tenth of the region's flat 6000 requests/min


def test_one_box_total_failure_is_detected_and_rolled_back_exactly_as_computed(tiny):
    """100% errors on the one-box, 3-of-3 alarm at 1 min: TTD 3 min, TTR 3 + 10 min, blast = those minutes."""
    result = with_changes(tiny, [bad_change(tiny, arrival_s=0.0)])
    row = result.changes.iloc[0]
    # The one-box batch takes 5 min, so the host serves the bad version from t = 300 s.
    assert row["first_bad_s"] == 300.0
    # Periods 5, 6, 7 breach; the alarm fires at the end of period 7 (480 s).
    assert row["ttd_s"] == 180.0
    # Rollback takes 10 minutes from the alarm.
    assert row["ttr_s"] == 180.0 + 600.0
    assert row["outcome"] == "rolled_back"
    assert row["failed_requests"] == pytest.approx(HOST_RPM * (180 + 600) / 60)
    assert row["hosts_reached"] == 1 and row["regions_reached"] == 1
    assert row["peak_capacity_share"] == pytest.approx(0.1)
    assert row["impact_minutes"] == pytest.approx(13.0)


def test_good_change_takes_the_sum_of_batches_and_bakes(tiny):
    """Lead time of a good change with no blockers = one-box batch + bake + wave batches + bake."""
    result = with_changes(tiny, [good_change(arrival_s=0.0)])
    row = result.changes.iloc[0]
    # One-box: 5 min + 10 min bake; the other 9 hosts in one batch (max_share 1.0): 5 min + 10 min bake.
    assert row["outcome"] == "deployed"
    assert row["lead_time_s"] == 30 * 60
    assert row["baking_s"] == 20 * 60
    assert row["blocked_s"] == 0.0


def test_blocker_time_window_delays_the_stage_to_its_local_opening(tiny):
    """A change arriving at 06:00 local time waits for a 09:00-17:00 window in the region's time zone."""
    data = patched(tiny_scenario_dict(), "policy.pipelines.code.blockers.time_windows",
                   [{"days": ["Mon", "Tue", "Wed", "Thu", "Fri"], "start_hour": 9, "end_hour": 17}])
    data = patched(data, "fleet.regions.0.timezone", "America/New_York")
    scenario = deploysim.scenario_from_dict(data)
    # 2026-01-05 11:00 UTC is 06:00 in New York (EST, UTC-5): the stage opens at 14:00 UTC.
    result = with_changes(scenario, [good_change(arrival_s=11 * 3600.0)], months=0.05)
    row = result.changes.iloc[0]
    assert row["blocked_s"] == 3 * 3600.0
    assert row["lead_time_s"] == 3 * 3600.0 + 30 * 60


def _business_hours_utc(check: str = "every_step") -> dict:
    data = patched(tiny_scenario_dict(), "policy.pipelines.code.blockers.time_windows",
                   [{"days": ["Mon", "Tue", "Wed", "Thu", "Fri"], "start_hour": 9, "end_hour": 17}])
    return patched(data, "policy.pipelines.code.blockers.check", check)


MONDAY_1650_S = 16 * 3600.0 + 50 * 60


def test_every_step_waits_on_the_window_so_a_wave_never_starts_after_hours():
    """Monday 16:50 UTC: one-box 5 min + bake 10 min ends 17:05, so the wave waits 15 h 55 min for
    Tuesday 09:00, then 5 min + 10 min. Checked at stage start only, the wave starts at 17:05."""
    every = with_changes(deploysim.scenario_from_dict(_business_hours_utc()), [good_change(arrival_s=MONDAY_1650_S)],
                         months=0.05)
    row = every.changes.iloc[0]
    assert row["blocked_s"] == 15 * 3600.0 + 55 * 60
    assert row["lead_time_s"] == 15 * 3600.0 + 55 * 60 + 30 * 60
    tl = every.timeline
    wave_start = tl[(tl["event"] == "step_start") & (tl["step"] == "wave-1")]["time_s"].tolist()
    assert wave_start == [(24 + 9) * 3600.0]
    stage_only = with_changes(deploysim.scenario_from_dict(_business_hours_utc("stage_start")),
                              [good_change(arrival_s=MONDAY_1650_S)], months=0.05)
    assert stage_only.changes.iloc[0]["lead_time_s"] == 30 * 60


def test_a_defect_that_shows_while_the_wave_waits_overnight_is_caught_on_the_one_box():
    """The one-box serves from 16:55; its defect (100% errors) starts an hour later, at 17:55, while
    the wave waits for Tuesday. The one-box's 3-of-3 alarm still watches: it fires at 17:58 (TTD
    63 min), the rollback ends at 18:08, and the wave never starts."""
    data = patched(_business_hours_utc(), "changes.code.defects",
                   [{"name": "late", "error_rate": 1.0, "start_delay": "1h"}])
    scenario = deploysim.scenario_from_dict(data)
    result = with_changes(scenario, [bad_change(scenario, arrival_s=MONDAY_1650_S)], months=0.05)
    row = result.changes.iloc[0]
    assert row["first_bad_s"] == MONDAY_1650_S + 300
    assert row["ttd_s"] == 3600.0 + 180.0
    assert row["ttr_s"] == 3600.0 + 180.0 + 600.0
    assert row["outcome"] == "rolled_back" and row["hosts_reached"] == 1
    assert row["failed_requests"] == pytest.approx(HOST_RPM * (180 + 600) / 60)


def test_a_rollback_reverts_in_batches_each_taking_its_duration():
    """The defect shows 15 min after a host takes the change. One-box at 300 s (shows 1200 s), the
    other 9 hosts at 1200 s (show 2100 s); the wave's 3-of-3 alarm fires at 2280 s. Rollback
    everywhere in batches of 3 of the 10 hosts (max_share 0.34), 10 min each: hosts 0-2 at 2880 s,
    3-5 at 3480 s, 6-8 at 4080 s, 9 at 4680 s, so TTR = 4680 - 300 s, not 600 s."""
    data = patched(tiny_scenario_dict(), "changes.code.defects",
                   [{"name": "late", "error_rate": 1.0, "start_delay": "15m"}])
    data = patched(data, "policy.pipelines.code.watch", {"wave": ["fault_rate"]})
    data = patched(data, "policy.pipelines.code.stages.0.waves.0.bake", "1h")
    data = patched(data, "policy.pipelines.code.rollback", {"automatic": True, "duration": "10m", "max_share": 0.34})
    scenario = deploysim.scenario_from_dict(data)
    result = with_changes(scenario, [bad_change(scenario)], months=0.01)
    row = result.changes.iloc[0]
    assert row["first_bad_s"] == 300.0
    assert row["ttd_s"] == 2280.0 - 300.0
    assert row["ttr_s"] == 4680.0 - 300.0
    assert row["hosts_reached"] == 10
    # Seconds each host failed every request: 1680 (one-box), 2 x 780, 3 x 1380, 3 x 1980, 2580.
    assert row["failed_requests"] == pytest.approx(HOST_RPM * 15900 / 60)
    ends = result.timeline[result.timeline["event"] == "rollback_end"]
    assert ends["hosts"].tolist() == [10]


def test_peak_capacity_share_is_the_share_of_traffic_not_of_hosts():
    """A one-box host that takes 5% of the region's requests: caught there, its peak share is 5%,
    though it is 1 host of 10."""
    data = patched(tiny_scenario_dict(), "policy.pipelines.code.stages.0.one_box",
                   {"hosts": 1, "traffic_share": 0.05, "bake": "10m"})
    scenario = deploysim.scenario_from_dict(data)
    row = with_changes(scenario, [bad_change(scenario)]).changes.iloc[0]
    assert row["hosts_reached"] == 1
    assert row["peak_capacity_share"] == pytest.approx(0.05)


def test_canary_arithmetic_twenty_percent_errors_on_five_percent_one_box_show_one_percent():
    """Google SRE Workbook: a change failing 20% of requests on a 5% canary shows 1% errors in the region."""
    data = tiny_scenario_dict()
    data = patched(data, "policy.pipelines.code.stages.0.one_box", {"hosts": 1, "traffic_share": 0.05, "bake": "10m"})
    data = patched(data, "changes.code.defects", [{"name": "twenty", "error_rate": 0.2}])
    scenario = deploysim.scenario_from_dict(data)
    layout = build_fleet(scenario)
    # A metric model whose only bad change runs on the one-box host (host 0) for the whole window.
    model = MetricModel(scenario, layout, world_for_seed(scenario, seed=0, months=0.01), [bad_change(scenario)])
    log = ExposureLog()
    log.open(0, np.array([0]), 0.0)
    m = model.expected(layout.hosts_in_region(0), 0, 10, log)
    np.testing.assert_allclose(m.errors / m.requests, 0.01)
    one_box = model.expected(np.array([0]), 0, 10, log)
    np.testing.assert_allclose(one_box.errors / one_box.requests, 0.20)
    np.testing.assert_allclose(one_box.requests, 0.05 * 6000)


def test_m_of_n_detection_probability_matches_the_binomial_closed_form():
    """Over many seeds, the share of bakes in which a 2-of-3 alarm catches a weak defect lies in the
    binomial confidence interval of the exact probability computed from Poisson error counts."""
    data = tiny_scenario_dict()
    data = patched(data, "changes.code.defects", [{"name": "weak", "error_rate": 0.02}])
    data = patched(data, "alarms.metric.0", {"name": "fault_rate", "metric": "error_rate", "threshold": 0.025,
                                             "evaluation_periods": 3, "datapoints_to_alarm": 2})
    scenario = deploysim.scenario_from_dict(data)
    # Errors per period on the one-box ~ Poisson(600 * 0.02 = 12); a datapoint breaches above 15 errors.
    p_breach = float(stats.poisson.sf(15, 12.0))
    # The host is bad from 300 s; the one-box bake ends at 900 s: periods 5..14, ten datapoints.
    expected = detection_probability(p_breach, 10, evaluation_periods=3, datapoints_to_alarm=2)
    runs = 400
    caught = 0
    for seed in range(runs):
        result = with_changes(scenario, [bad_change(scenario)], seed=seed, months=0.005)
        events = result.timeline
        alarms = events[events["event"] == "alarm"]
        caught += int(len(alarms) > 0 and (alarms["time_s"] <= 900.0).all())
    test = stats.binomtest(caught, runs, expected)
    assert test.pvalue > 0.001, (caught / runs, expected)


def test_same_seed_gives_identical_results_and_another_seed_differs():
    """Reproducibility: same scenario + same seed -> identical frames; a different seed changes the world."""
    scenario = deploysim.load_scenario(str(pytest.importorskip("conftest").SCENARIOS / "startup-fast.yaml"))
    a = deploysim.simulate(scenario, seed=7, months=0.25)
    b = deploysim.simulate(scenario, seed=7, months=0.25)
    c = deploysim.simulate(scenario, seed=8, months=0.25)
    assert a.changes.equals(b.changes)
    assert a.timeline.equals(b.timeline)
    assert a.uptime.equals(b.uptime)
    assert a.summary() == b.summary() or str(a.summary()) == str(b.summary())
    assert not a.changes[["arrival_s"]].equals(c.changes[["arrival_s"]])


def _crash_on_one_box(treat_missing_data: str):
    """A crash-looping one-box watched only by a CPU alarm: a crashed host publishes no CPU datapoints."""
    data = tiny_scenario_dict()
    data = patched(data, "changes.code.defects", [{"name": "crash", "crash": True}])
    data = patched(data, "alarms.metric.0", {"name": "fault_rate", "metric": "cpu_pct", "threshold": 90,
                                             "evaluation_periods": 3, "datapoints_to_alarm": 3,
                                             "treat_missing_data": treat_missing_data})
    scenario = deploysim.scenario_from_dict(data)
    return with_changes(scenario, [bad_change(scenario)]).changes.iloc[0]


def test_missing_datapoints_treated_as_breaching_roll_back_a_crashed_one_box():
    """CloudWatch's evaluation range (N + 2 = 5 points): the host is down from period 5; periods 5-8
    still hold enough real or filled non-breaching points; at period 9 all five are missing -> ALARM."""
    row = _crash_on_one_box("breaching")
    assert row["outcome"] == "rolled_back"
    assert row["ttd_s"] == 600.0 - 300.0


def test_missing_datapoints_treated_as_not_breaching_never_fire():
    """With notBreaching (or missing), a host that stopped reporting looks healthy: no rollback."""
    for treatment in ("notBreaching", "missing"):
        row = _crash_on_one_box(treatment)
        # It goes on to every host; only people (after 30 days here) would notice.
        assert row["outcome"] == "deployed"
        assert row["detected_by"] == ""


def test_a_seed_sequence_can_be_reused_and_gives_the_same_run(tiny):
    """Seeds are used by position, never consumed: passing the same SeedSequence twice reproduces the run."""
    seed = np.random.SeedSequence(42)
    data = patched(tiny_scenario_dict(), "changes.code.arrivals.changes_per_week", 200)
    scenario = deploysim.scenario_from_dict(data)
    a = deploysim.simulate(scenario, seed=seed, months=0.02)
    b = deploysim.simulate(scenario, seed=seed, months=0.02)
    assert len(a.changes) > 3
    assert a.changes.equals(b.changes) and a.uptime.equals(b.uptime)
