"""`deploysim fit`: a scenario's world fitted from history with 95% intervals that hold the truth.

The proof runs deploysim's own history through it: simulate a world with known parameters, export
its history, fit it back, and find the true values inside their intervals; over many seeds the
intervals cover the truth at about their stated rate."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import SCENARIOS
from scipy import stats

import deploysim
from deploysim.cli import main
from deploysim.fit import History, fit_history, fitted_yaml
from deploysim.fit.families import Proportion, Rate, fit_durations
from deploysim.fit.history import Deployment, Incident
from deploysim.world import AZ_DOWN_KINDS, world_for_seed

WORLD = SCENARIOS / "history-sample" / "world.yaml"
BASE = SCENARIOS / "startup-fast.yaml"


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    """Three months of the sample world, exported with --history-out and fitted back with `deploysim fit`."""
    root = tmp_path_factory.mktemp("fit")
    runner = CliRunner()
    ran = runner.invoke(main, ["run", str(WORLD), "--seed", "7", "--months", "3", "--history-out", str(root / "h")])
    assert ran.exit_code == 0, ran.output
    fitted = runner.invoke(main, ["fit", "--deployments", str(root / "h" / "deployments.csv"), "--incidents",
                                  str(root / "h" / "incidents.csv"), "--fleet", str(BASE), "-o",
                                  str(root / "my-service.yaml"), "--report", str(root / "report"),
                                  "--since", "2026-01-05T00:00:00Z", "--until", "2026-04-05T00:00:00Z",
                                  "-n", "2", "--sla", "99.99"])
    assert fitted.exit_code == 0, fitted.output
    return root, fitted.output


# ------------------------------------------------------------------ recovery


def _truth() -> dict[str, float]:
    w = deploysim.load_scenario(WORLD)
    return {
        "code: changes per week": 25, "config: changes per week": 30,
        "code: change failure rate": 0.12, "config: change failure rate": 0.05,
        "code: pre-production catch rate": 0.5, "config: pre-production catch rate": 0.3,
        "people: detection delay (median)": 7200, "people: detection delay (sigma)": 0.8,
        "people: mitigation (median)": 1800, "people: mitigation (sigma)": 0.5,
        "faults: az outage rate": 3, "faults: dependency degradation rate": 3,
        "faults: az outage duration (median)": 2400, "faults: dependency degradation duration (median)": 1200,
        "config: rollback duration (median)": w.policy.pipelines["config"].rollback.duration,
        "faults: az outage failover (median)": w.faults.az_outage.failover,
    }


def test_fitting_a_simulated_history_recovers_the_true_parameters_inside_their_intervals(simulated):
    root, _ = simulated
    table = {row.parameter: row for row in pd.read_csv(root / "report" / "summary.csv").itertuples()}
    for label, true in _truth().items():
        row = table[label]
        assert row.status == "fitted", (label, row.note)
        assert row.low_95 <= true <= row.high_95, f"{label}: true {true} outside [{row.low_95}, {row.high_95}]"


def test_the_fitted_scenario_says_fitted_or_prior_on_each_value_and_validates(simulated):
    root, output = simulated
    text = (root / "my-service.yaml").read_text()
    scenario = deploysim.load_scenario(root / "my-service.yaml")
    assert "bad_probability: 0.1" in text and "# fitted: 95% [" in text
    assert "# prior: too little data" in text  # region events: none in the history
    assert "prior: faults: region event rate" in output
    assert scenario.humans.detection == "fixed_delay"
    assert scenario.changes["code"].arrivals.working_hours == (6.0, 14.0)  # 9-17 New York, in Los Angeles time
    assert {p.parameter for p in scenario.uncertainty} >= {"changes.code.bad_probability", "humans.detection_delay",
                                                             "faults.az_outage.rate_per_month"}
    assert scenario.fleet == deploysim.load_scenario(BASE).fleet  # the base's fleet and policy are kept
    assert scenario.policy.pipelines["config"].rollback.duration == 300


def test_the_report_has_the_summary_table_and_a_picture_per_fit(simulated):
    root, _ = simulated
    report = root / "report"
    names = {p.name for p in report.iterdir()}
    assert {"summary.csv", "summary.md", "probabilities.png", "arrivals-code.png", "faults.png",
            "duration-people-detection-delay.png", "duration-faults-az-outage-duration.png"} <= names
    assert all((report / n).read_bytes()[:4] == b"\x89PNG" for n in names if n.endswith(".png"))
    summary = (report / "summary.md").read_text()
    assert "| code: change failure rate |" in summary and "Too little data for" in summary


def test_with_replications_the_report_compares_breach_with_and_without_parameter_uncertainty(simulated):
    root, output = simulated
    breach = pd.read_csv(root / "report" / "breach.csv")
    assert breach["world"].tolist() == ["point estimates", "parameters drawn from the fit"]
    assert (breach["replications"] == 2).all()
    influence = pd.read_csv(root / "report" / "influence.csv")
    assert "changes.code.bad_probability" in set(influence["parameter"])
    summary = (root / "report" / "summary.md").read_text()
    assert "## Breach probability at 99.99%, knowing and not knowing the world" in summary
    assert "## Which fitted parameters dominate" in summary
    assert "breach probability at 99.99%, parameters drawn from the fit:" in output


def test_the_real_formats_fit_too(simulated, tmp_path):
    """CodePipeline executions, GitHub deployments and a PagerDuty-style export: what they can say is fitted."""
    root, _ = simulated
    h = root / "h"
    result = CliRunner().invoke(main, ["fit", "--deployments", str(h / "codepipeline" / "code.json"),
                                       "--deployments", f"config={h / 'github' / 'config.json'}",
                                       "--incidents", str(h / "pagerduty-incidents.csv"), "--fleet", str(BASE),
                                       "-o", str(tmp_path / "out.yaml"), "--report", str(tmp_path / "report"),
                                       "--since", "2026-01-05", "--until", "2026-04-05"])
    assert result.exit_code == 0, result.output
    table = {row.parameter: row for row in pd.read_csv(tmp_path / "report" / "summary.csv").itertuples()}
    for label, true in {"code: changes per week": 25, "config: changes per week": 30,
                        "code: change failure rate": 0.12, "people: mitigation (median)": 1800}.items():
        assert table[label].status == "fitted" and table[label].low_95 <= true <= table[label].high_95, label
    # PagerDuty knows when people were paged, not when the impact began: no detection delay to fit.
    assert table["people: detection delay (median)"].status == "prior"


def test_the_shipped_sample_history_is_what_deploysim_writes_for_its_world(simulated):
    root, _ = simulated
    for name in ("deployments.csv", "incidents.csv", "pagerduty-incidents.csv"):
        assert (root / "h" / name).read_bytes() == (SCENARIOS / "history-sample" / name).read_bytes(), name
    assert "generated by deploysim" in (SCENARIOS / "history-sample" / "README.md").read_text()


# ------------------------------------------------------------------ coverage over many seeds


def _synthetic_history(seed: int, scenario, months: float) -> History:
    """The history of the world drawn from `seed`, as if every bad change that reached production were
    found after people's detection delay and reverted after their mitigation time (no engine: fast)."""
    world = world_for_seed(scenario, seed=seed, months=months)
    start = scenario.start

    def at(s: float) -> dt.datetime:
        return start + dt.timedelta(seconds=s)

    deployments, incidents = [], []
    for c in world.changes:
        outcome = "failed_preprod" if c.caught_in_preprod else ("rolled_back" if c.bad else "completed")
        deployments.append(Deployment(c.pipeline, str(c.change_id), at(c.arrival_s), at(c.arrival_s + 3600),
                                      outcome, "defect" if c.bad else ""))
        if c.bad and not c.caught_in_preprod:
            t0 = c.arrival_s + 3600
            incidents.append(Incident(f"c{c.change_id}", at(t0), at(t0 + c.human_detection_delay_s),
                                      at(t0 + c.human_detection_delay_s + c.human_mitigation_s),
                                      at(t0 + c.human_detection_delay_s + c.human_mitigation_s), "change",
                                      str(c.change_id), detected_by="people"))
    seen = set()
    for n, f in enumerate(world.faults):
        if f.kind in AZ_DOWN_KINDS and (f.start_s, f.region) not in seen:
            seen.add((f.start_s, f.region))
            incidents.append(Incident(f"f{n}", at(f.start_s), at(f.start_s), at(f.start_s + f.failover_s),
                                      at(f.end_s), "infrastructure", scope="az"))
    return History(tuple(deployments), tuple(incidents), since=start, until=at(months * 30 * 86400.0))


def test_the_95_percent_intervals_cover_the_truth_at_about_95_percent_over_many_seeds():
    # 5-minute periods: the same changes and faults, less traffic to draw (the fit never sees traffic).
    scenario = deploysim.load_scenario(WORLD).model_copy(update={"metric_period": 300.0})
    truth = {"code: changes per week": 25, "code: change failure rate": 0.12, "code: pre-production catch rate": 0.5,
             "people: detection delay (median)": 7200, "people: detection delay (sigma)": 0.8,
             "people: mitigation (median)": 1800, "faults: az outage rate": 3,
             "faults: az outage duration (median)": 2400}
    seeds = range(100)
    covered = dict.fromkeys(truth, 0)
    fitted = dict.fromkeys(truth, 0)
    for seed in seeds:
        fit = fit_history(_synthetic_history(seed, scenario, months=3), scenario, compare_families=False)
        for label, true in truth.items():
            e = fit.estimate(label)
            if e is not None and e.status == "fitted":
                fitted[label] += 1
                covered[label] += e.low <= true <= e.high
    for label in truth:
        n = fitted[label]
        assert n >= 0.8 * len(seeds), f"{label}: fitted in only {n} of {len(seeds)} histories"
        # 99.9% of the count of covering intervals, if each covers with probability 0.95.
        lo, hi = stats.binom.ppf([0.0005, 0.9995], n, 0.95)
        assert lo <= covered[label] <= hi, f"{label}: {covered[label]}/{n} intervals covered the truth"
    # Pooled (the parameters' intervals are nearly independent): neither too narrow nor too wide.
    n, k = sum(fitted.values()), sum(covered.values())
    lo, hi = stats.binom.ppf([0.0005, 0.9995], n, 0.95)
    assert lo <= k <= hi, f"{k}/{n} intervals covered the truth"


# ------------------------------------------------------------------ families and thin data


def test_a_probability_is_a_jeffreys_beta_posterior():
    p = Proportion(3, 50)
    assert (p.a, p.b) == (3.5, 47.5)
    assert p.interval == pytest.approx(tuple(stats.beta.ppf([0.025, 0.975], 3.5, 47.5)))


def test_a_rate_with_no_events_still_has_an_upper_bound():
    r = Rate(0, 3.0)
    assert r.interval[0] < 1e-3 and r.interval[1] == pytest.approx(stats.gamma.ppf(0.975, 0.5, scale=1 / 3))


def test_lognormal_durations_get_exact_t_and_chi_square_intervals_and_win_by_aic():
    x = np.exp(np.random.default_rng(1).normal(math.log(600), 0.6, 400))
    d = fit_durations(x)
    assert d.chosen == "lognormal" and d.best.family == "lognormal"
    logs, n = np.log(x), x.size
    half = stats.t.ppf(0.975, n - 1) * logs.std(ddof=1) / math.sqrt(n)
    assert d.median_interval == pytest.approx((math.exp(logs.mean() - half), math.exp(logs.mean() + half)))
    chi = stats.chi2.ppf([0.975, 0.025], n - 1)
    assert d.sigma_interval == pytest.approx(tuple(logs.std(ddof=1) * np.sqrt((n - 1) / chi)))
    assert fit_durations(np.random.default_rng(2).exponential(300, 400)).chosen == "exponential"
    assert fit_durations([300.0] * 6).chosen == "fixed"


def _raced(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """People's delays (lognormal, median 1 h, sigma 1) racing an alarm (exponential, mean 1 h): the
    delays people won, and the times the alarm won at (people's delay known only to be longer)."""
    rng = np.random.default_rng(seed)
    people, alarm = np.exp(rng.normal(math.log(3600), 1.0, n)), rng.exponential(3600, n)
    return people[people < alarm], alarm[people >= alarm]


def test_delays_cut_short_by_an_alarm_are_fitted_as_censored_not_dropped():
    found, raced = _raced(4, 400)
    naive, censored = fit_durations(found, compare=False), fit_durations(found, compare=False, censored_s=raced)
    assert naive.median_interval[1] < 3600  # people look twice as fast as they are
    assert censored.median_interval[0] < 3600 < censored.median_interval[1]
    assert censored.sigma_interval[0] < 1.0 < censored.sigma_interval[1]


def test_censored_intervals_cover_at_about_95_percent():
    hits = {"median": 0, "sigma": 0}
    n = 0
    for seed in range(60):
        found, raced = _raced(100 + seed, 60)
        d = fit_durations(found, compare=False, censored_s=raced)
        if d.chosen != "lognormal":
            continue
        n += 1
        hits["median"] += d.median_interval[0] <= 3600 <= d.median_interval[1]
        hits["sigma"] += d.sigma_interval[0] <= 1.0 <= d.sigma_interval[1]
    lo, hi = stats.binom.ppf([0.0005, 0.9995], n, 0.95)
    assert n >= 55 and all(lo <= k <= hi for k in hits.values()), (hits, n)


def test_thin_data_keeps_the_base_value_and_says_so(tmp_path):
    base = deploysim.load_scenario(BASE)
    t0 = dt.datetime(2026, 1, 5, 10, tzinfo=dt.timezone.utc)
    history = History(tuple(Deployment("code", str(i), t0 + dt.timedelta(hours=i), t0 + dt.timedelta(hours=i + 1),
                                       "completed") for i in range(4)),
                      since=t0, until=t0 + dt.timedelta(days=7), sources=("tiny.csv",))
    fit = fit_history(history, base)
    rate = fit.estimate("code: change failure rate")
    assert rate is not None and rate.status == "prior" and "too little data (4 < 10 trials)" in rate.note
    text = fitted_yaml(fit, BASE)
    assert "bad_probability: 0.08  # prior: too little data (4 < 10 trials): kept the base's 0.08" in text
    assert "config:  # not in the history: kept from startup-fast.yaml" in text
    assert "\nuncertainty:" not in text  # nothing fitted, nothing to draw


def test_records_outside_the_window_are_left_out_and_said_so():
    base = deploysim.load_scenario(BASE)
    t0 = dt.datetime(2026, 1, 5, 10, tzinfo=dt.timezone.utc)
    deployments = tuple(Deployment("code", str(i), t0 + dt.timedelta(days=i), t0 + dt.timedelta(days=i, hours=1),
                                   "completed") for i in range(14))
    fit = fit_history(History(deployments, since=t0, until=t0 + dt.timedelta(days=7)), base)
    rate = fit.estimate("code: changes per week")
    assert rate is not None and rate.n == 7
    assert fit.notes == ["7 record(s) outside the window 2026-01-05 10:00 to 2026-01-12 10:00 UTC (7 days) "
                         "were left out"]


def test_fit_reports_a_bad_record_on_one_line_with_file_line_and_field(tmp_path):
    bad = tmp_path / "deploys.csv"
    bad.write_text("pipeline,change_id,entered,finished,outcome\ncode,1,2026-01-05T10:00:00Z,,shipped\n")
    result = CliRunner().invoke(main, ["fit", "--deployments", str(bad), "--fleet", str(BASE),
                                       "-o", str(tmp_path / "out.yaml")])
    assert result.exit_code == 2
    assert result.output.strip() == (f"error: {bad}:2: outcome: expected one of completed, rolled_back, "
                                     "failed_preprod, in_progress, got 'shipped'")


def test_a_fleet_file_without_a_policy_gets_the_starter_policy_for_each_pipeline(tmp_path):
    fleet = tmp_path / "my-fleet.yaml"
    fleet.write_text("fleet:\n  regions:\n    - {name: us-east-1, timezone: America/New_York}\n"
                     "    - {name: eu-west-1, timezone: Europe/Dublin}\ntraffic:\n  requests_per_min: 300000\n")
    sample = SCENARIOS / "history-sample"
    result = CliRunner().invoke(main, ["fit", "--deployments", str(sample / "deployments.csv"), "--incidents",
                                       str(sample / "incidents.csv"), "--fleet", str(fleet),
                                       "-o", str(tmp_path / "my-service.yaml")])
    assert result.exit_code == 0, result.output
    assert "describes no policy: each pipeline gets `deploysim init`'s starter policy" in result.output
    scenario = deploysim.load_scenario(tmp_path / "my-service.yaml")
    assert set(scenario.policy.pipelines) == set(scenario.changes) == {"code", "config"}
    assert [r.name for r in scenario.fleet.regions] == ["us-east-1", "eu-west-1"]
    assert scenario.traffic.requests_per_min == 300000
    assert scenario.changes["code"].arrivals.working_hours == (9.0, 17.0)  # the first region's time zone
    assert "starter policy (my-fleet.yaml has none): edit it" in (tmp_path / "my-service.yaml").read_text()


def test_fit_names_a_pipeline_the_base_scenario_has_no_policy_for(tmp_path):
    history = tmp_path / "deploys.csv"
    history.write_text("pipeline,change_id,entered,finished,outcome\n"
                       "payments,1,2026-01-05T10:00:00Z,2026-01-05T11:00:00Z,completed\n")
    result = CliRunner().invoke(main, ["fit", "--deployments", str(history), "--fleet", str(BASE),
                                       "-o", str(tmp_path / "out.yaml")])
    assert result.exit_code == 2 and "pipeline(s) payments that the base scenario has no policy for" in result.output
