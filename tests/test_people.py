"""People find a bad change no alarm rolls back from its symptoms (deploysim/people.py), on a tiny
scenario: one region in UTC, 10 hosts, flat traffic of 6000 requests/min, no alarm that rolls back.

The one-box host (1/10 of the traffic, 600 requests/min) takes the change after its 5-minute batch,
at 300 s, and bakes 10 minutes; the rest follow. Support triage and on-call response are fixed, so
hand-worked times differ only by the report's random threshold, which is keyed by change id."""

from __future__ import annotations

import numpy as np
from conftest import bad_change, good_change, tiny_scenario_dict, with_changes

import deploysim
from deploysim.seeds import child_seed

MONDAY_10H = 10 * 3600.0  # business hours in UTC
MONDAY_22H = 22 * 3600.0  # night


def scenario(defect: dict, **humans):
    data = tiny_scenario_dict()
    data["alarms"]["metric"][0]["threshold"] = 2.0  # the one-box alarm can never fire
    data["changes"]["code"]["defects"] = [{"name": "d", **defect}]
    data["humans"] = {"mitigation": "10m", "support_triage": "30m", "response_business_hours": "10m",
                      "response_off_hours": "1h", "reports_per_failed_request": 1e-3, **humans}
    return deploysim.scenario_from_dict(data)


def report_threshold(seed: int, change_id: int) -> float:
    """The keyed unit exponential of the first report (docs/model.md, "People")."""
    seq = child_seed(child_seed(np.random.SeedSequence(seed), 3), change_id, 0, 0)
    return float(np.random.default_rng(seq).exponential(1.0))


def row(sc, arrival_s=0.0, months=0.1):
    return with_changes(sc, [bad_change(sc, arrival_s=arrival_s)], months=months).changes.iloc[0]


def test_a_change_with_no_effect_is_never_found_and_stays_latent():
    result = with_changes(scenario({}), [bad_change(scenario({}))], months=0.1)
    change = result.changes.iloc[0]
    assert change.outcome == "deployed" and change.detected_by == "" and change.failed_requests == 0
    assert result.summary()["changes"]["latent_in_production"] == 1


def test_a_good_change_is_never_found():
    change = with_changes(scenario({"error_rate": 1.0}), [good_change()], months=0.05).changes.iloc[0]
    assert change.outcome == "deployed" and change.detected_by == ""


def test_a_full_failure_is_reported_by_the_hand_worked_time():
    """100% on the one-box: 600 failed/min x 1e-3 = 0.6 reports/min from 300 s + 10 h; the first
    report when they reach the threshold E; then 30 min triage and 10 min response (business hours)."""
    change = row(scenario({"error_rate": 1.0}), arrival_s=MONDAY_10H)
    first_report_s = report_threshold(0, 0) / 0.6 * 60.0
    assert change.detected_by == "people" and change.outcome == "reverted_by_people"
    assert abs(change.ttd_s - (first_report_s + 1800.0 + 600.0)) < 1e-6


def test_a_full_failure_is_found_much_sooner_than_a_rare_one():
    full = row(scenario({"error_rate": 1.0}), arrival_s=MONDAY_10H)
    rare = row(scenario({"error_rate": 0.001}), arrival_s=MONDAY_10H, months=0.3)
    assert full.detected_by == rare.detected_by == "people"
    # 0.6 expected reports a minute against 0.006 (one-box) then 0.06 (all hosts): the first report
    # alone takes the rare defect over an hour more.
    assert rare.ttd_s - full.ttd_s > 3600.0
    assert rare.failed_requests < full.failed_requests * 10


def test_detection_at_night_waits_for_on_call():
    """Same change, same report threshold (keyed by change id): at night on-call takes 1 h, not 10 min."""
    day = row(scenario({"error_rate": 1.0}), arrival_s=MONDAY_10H)
    night = row(scenario({"error_rate": 1.0}), arrival_s=MONDAY_22H)
    assert abs((night.ttd_s - day.ttd_s) - (3600.0 - 600.0)) < 1e-6


def test_a_page_from_a_non_rollback_alarm_leads_to_detection_after_response():
    """A region alarm (error rate > 5%, 3 of 3) that pages but is watched by no step: the one-box
    fails 10% of the region's requests from 300 s, so periods 5, 6, 7 breach and it pages at 480 s
    (TTD 180 s); on-call responds in 10 min in business hours. No customer reports (rate 0)."""
    data = tiny_scenario_dict()
    data["alarms"]["metric"][0]["threshold"] = 2.0
    data["alarms"]["metric"].append({"name": "region_rate", "metric": "error_rate", "threshold": 0.05,
                                     "evaluation_periods": 3, "datapoints_to_alarm": 3})
    data["changes"]["code"]["defects"] = [{"name": "d", "error_rate": 1.0}]
    data["humans"] = {"mitigation": "10m", "pages": ["region_rate"], "reports_per_failed_request": 0,
                      "response_business_hours": "10m", "response_off_hours": "1h"}
    sc = deploysim.scenario_from_dict(data)
    result = with_changes(sc, [bad_change(sc, arrival_s=MONDAY_10H)], months=0.05)
    change = result.changes.iloc[0]
    assert change.detected_by == "people"
    assert change.ttd_s == 180.0 + 600.0
    symptoms = result.timeline[result.timeline["event"] == "symptom"]
    assert symptoms["kind"].tolist() == ["page"] and symptoms["alarm"].tolist() == ["region_rate@r1"]


def test_a_file_that_sets_the_fixed_delay_keeps_the_older_model():
    assert deploysim.scenario_from_dict(tiny_scenario_dict()).humans.detection == "fixed_delay"
    data = tiny_scenario_dict()
    del data["humans"]["detection_delay"]
    assert deploysim.scenario_from_dict(data).humans.detection == "symptoms"


def test_an_unknown_paging_alarm_is_named():
    data = tiny_scenario_dict()
    data["humans"] = {"pages": ["nope"]}
    try:
        deploysim.scenario_from_dict(data)
    except deploysim.ScenarioError as error:
        assert "humans.pages[0]: unknown alarm 'nope'" in str(error)
    else:
        raise AssertionError("expected a ScenarioError")


def test_the_report_says_how_people_find_a_change():
    from deploysim.report.policy_text import human_words

    words = human_words(scenario({"error_rate": 1.0}, pages=["fault_rate"]))
    assert "a page from fault_rate, or a customer report (0.001 per failed request" in words
    assert "10 min in business hours (Mon, Tue, Wed, Thu, Fri 9:00-17:00 local) and 1 h otherwise" in words


def test_the_people_model_moves_no_draw_of_the_world():
    """Changes, defects and people's revert times are the same under either people model (keyed streams)."""
    from deploysim.world import world_for_seed

    fixed = deploysim.scenario_from_dict(tiny_scenario_dict())
    symptoms = scenario({"name": "all-fail", "error_rate": 1.0})
    a, b = world_for_seed(fixed, seed=3, months=0.5), world_for_seed(symptoms, seed=3, months=0.5)
    assert len(a.changes) > 0
    assert [(c.arrival_s, c.bad) for c in a.changes] == [(c.arrival_s, c.bad) for c in b.changes]
    assert (a.requests == b.requests).all()
