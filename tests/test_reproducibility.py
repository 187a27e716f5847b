"""Randomness is keyed, not sequenced: the same seed gives the same result in any process, and a
datapoint's noise depends on its scope, metric and period only, never on who asks, when or in
what order (DESIGN.md, "Randomness is passed in and keyed")."""

from __future__ import annotations

import copy
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import tiny_scenario_dict
from scipy import stats
from scipy.special import pdtr

import deploysim
from deploysim.engine import Simulation
from deploysim.noise import keyed_uniforms, philox_key, poisson, scope_id

REPO = Path(__file__).resolve().parent.parent
REFERENCE = str(REPO / "benchmarks" / "reference.yaml")


def noisy_scenario_dict() -> dict:
    """The tiny scenario with noise on every metric, weak defects and a composite of three alarms.

    Two cells of 5 hosts: one-box, then wave 1 (the rest of cell 1), then wave 2 (cell 2).
    Alarm thresholds sit near the noise, so states flicker and any change of noise shows.
    """
    data = tiny_scenario_dict()
    data["fleet"]["regions"][0].update(cells_per_az=2, hosts_per_cell=5)
    data["fleet"]["host_capacity_rpm"] = 100_000
    data["traffic"]["requests_per_min"] = 60_000  # 6,000 a host: 12 errors a minute at baseline
    data["baseline"] = {"error_rate": 0.002, "latency_noise_cv": 0.1, "resource_noise_pct": 2.0}
    data["changes"]["code"]["arrivals"]["changes_per_week"] = 40
    data["changes"]["code"]["bad_probability"] = 0.5
    data["changes"]["code"]["defects"] = [{"name": "weak", "error_rate": 0.004},
                                          {"name": "slow", "latency_factor": 1.3}]
    data["alarms"] = {
        "metric": [
            {"name": "fault_rate", "metric": "error_rate", "threshold": 0.0035,
             "evaluation_periods": 3, "datapoints_to_alarm": 2},
            {"name": "p99", "metric": "latency_p99_ms", "threshold": 150.0,
             "evaluation_periods": 3, "datapoints_to_alarm": 2},
            {"name": "cpu", "metric": "cpu_pct", "threshold": 16.0, "statistic": "maximum",
             "evaluation_periods": 3, "datapoints_to_alarm": 2},
        ],
        "composite": [{"name": "health", "rule": 'ALARM("fault_rate") OR ALARM("p99") OR ALARM("cpu")'}],
    }
    stage = data["policy"]["pipelines"]["code"]["stages"][0]
    stage["batching"] = {"max_share": 1.0, "duration": "5m"}
    stage["waves"] = [{"unit": "cell", "count": 1, "bake": "30m"}, {"unit": "cell", "count": "rest", "bake": "30m"}]
    data["policy"]["pipelines"]["code"]["watch"] = {"one_box": ["health"], "wave": ["health"]}
    return data


def run_sim(data: dict, *, seed: int = 3, months: float = 0.05) -> Simulation:
    sim = Simulation(deploysim.scenario_from_dict(data), seed=seed, months=months)
    sim.run()
    return sim


def cli_command() -> list[str]:
    script = Path(sys.executable).parent / "deploysim"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from deploysim.cli import main; main()"]


# ------------------------------------------------------------------ any process


def test_same_seed_gives_byte_identical_json_whatever_the_string_hash_seed():
    outputs = []
    for hash_seed in ("1", "3", "12345"):
        env = dict(os.environ, PYTHONHASHSEED=hash_seed)
        proc = subprocess.run([*cli_command(), "run", REFERENCE, "--seed", "2", "--json"],
                              capture_output=True, env=env, timeout=300)
        assert proc.returncode == 0, proc.stderr.decode()
        outputs.append(proc.stdout)
    assert outputs[0] == outputs[1] == outputs[2]


@pytest.mark.parametrize("start_method", ["spawn", "fork"])
def test_monte_carlo_frames_are_identical_on_one_worker_and_on_a_pool_started_by(start_method):
    if start_method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"{start_method} is not available here")
    scenario = deploysim.scenario_from_dict(noisy_scenario_dict())
    kwargs = {"replications": 4, "seed": 21, "months": 0.03, "keep_changes": True, "progress": False}
    here = deploysim.monte_carlo(scenario, workers=1, **kwargs)
    pooled = deploysim.monte_carlo(scenario, workers=2, start_method=start_method, **kwargs)
    assert here.replications.equals(pooled.replications)
    assert here.changes.equals(pooled.changes)


def test_an_unknown_pool_start_method_is_refused_before_any_work():
    scenario = deploysim.scenario_from_dict(tiny_scenario_dict())
    with pytest.raises(ValueError, match="start_method"):
        deploysim.monte_carlo(scenario, replications=2, workers=2, start_method="teleport", months=0.01)


# ------------------------------------------------------------------ asking again


def touched_window(sim: Simulation) -> tuple[int, int]:
    """Periods around the first bad change in production, so the touched-window path answers."""
    firsts = [r.first_bad_s for r in sim.records.changes.values() if r.change.bad and np.isfinite(r.first_bad_s)]
    assert firsts, "the scenario must put a bad change into production"
    k = int(min(firsts) // sim.period_s)
    return max(k - 5, 0), k + 40


def test_asking_again_or_in_another_order_gives_the_same_datapoints_and_states():
    sim = run_sim(noisy_scenario_dict())
    k0, k1 = touched_window(sim)
    scopes = [np.arange(10), np.arange(5), np.array([0])]
    alarms = ["fault_rate", "p99", "cpu", "health"]
    queries = [(a, i) for a in alarms for i in range(len(scopes))]

    def ask(order):
        states = {(a, i): sim.alarm_states(a, scopes[i], k0, k1) for a, i in order}
        points = {(a, i): sim.datapoints(a, scopes[i], k0, k1) for a, i in order if a != "health"}
        return states, points

    first_states, first_points = ask(queries)
    again_states, again_points = ask(queries)
    reverse_states, reverse_points = ask(queries[::-1])
    assert any(s.any() for s in first_states.values()), "the window must have alarms in it to compare"
    for key in first_states:
        np.testing.assert_array_equal(first_states[key], again_states[key])
        np.testing.assert_array_equal(first_states[key], reverse_states[key])
    for key in first_points:
        np.testing.assert_array_equal(first_points[key], again_points[key])
        np.testing.assert_array_equal(first_points[key], reverse_points[key])


def test_a_datapoint_is_the_same_in_any_window_that_contains_it():
    sim = run_sim(noisy_scenario_dict())
    k0, k1 = touched_window(sim)
    whole = sim.datapoints("fault_rate", np.arange(10), k0, k1)
    mid = (k0 + k1) // 2
    parts = np.concatenate([sim.datapoints("fault_rate", np.arange(10), k0, mid),
                            sim.datapoints("fault_rate", np.arange(10), mid, k1)])
    np.testing.assert_array_equal(whole, parts)


def test_policies_that_agree_until_a_wave_starts_see_identical_datapoints_until_then():
    """Two scenarios that differ only in wave 2's bake see the same noise wherever their fleets agree."""
    short = noisy_scenario_dict()
    longer = copy.deepcopy(short)
    longer["policy"]["pipelines"]["code"]["stages"][0]["waves"][1]["bake"] = "3h"
    a, b = run_sim(short), run_sim(longer)
    starts = [
        row["time_s"] for row in a.records.timeline if row["event"] == "step_start" and row.get("step") == "wave-2"
    ]
    assert starts, "wave 2 must start in the run"
    k_wave = int(starts[0] // a.period_s)
    assert k_wave > 60
    assert [r["time_s"] for r in b.records.timeline if r["event"] == "step_start" and r.get("step") == "wave-2"][
        0
    ] == starts[0]
    assert a.records.timeline != b.records.timeline, "the runs must differ after wave 2 starts"
    for hosts in (np.arange(10), np.arange(5), np.arange(5, 10), np.array([0])):
        for alarm in ("fault_rate", "p99", "cpu"):
            np.testing.assert_array_equal(a.datapoints(alarm, hosts, 0, k_wave), b.datapoints(alarm, hosts, 0, k_wave))
        np.testing.assert_array_equal(a.alarm_states("health", hosts, 0, k_wave),
                                      b.alarm_states("health", hosts, 0, k_wave))


# ------------------------------------------------------------------ the keyed generator


def test_philox_slicing_is_consistent_advance_then_draw_equals_the_slice_of_a_full_draw():
    key = philox_key(b"root", scope_id(np.array([3, 1, 2])), "errors:All")
    full = np.random.Philox(key=key).random_raw(400)
    for blocks, n in ((0, 10), (1, 7), (13, 40), (50, 150)):
        gen = np.random.Philox(key=key)
        gen.advance(blocks)
        np.testing.assert_array_equal(gen.random_raw(n), full[4 * blocks:4 * blocks + n])
    whole = keyed_uniforms(key, 0, 400)
    for k0, k1 in ((0, 1), (3, 9), (5, 6), (101, 257), (399, 400)):
        np.testing.assert_array_equal(keyed_uniforms(key, k0, k1), whole[k0:k1])
    assert (whole > 0).all() and (whole < 1).all()


def test_scope_identity_is_the_set_of_hosts_and_noise_kinds_are_separate_streams():
    assert scope_id(np.array([3, 1, 2])) == scope_id(np.array([1, 2, 3]))
    assert scope_id(np.array([1, 2])) != scope_id(np.array([1, 2, 3]))
    a = keyed_uniforms(philox_key(b"root", scope_id(np.array([1])), "latency"), 0, 50)
    b = keyed_uniforms(philox_key(b"root", scope_id(np.array([1])), "errors:All"), 0, 50)
    c = keyed_uniforms(philox_key(b"root", scope_id(np.array([2])), "latency"), 0, 50)
    assert not np.array_equal(a, b) and not np.array_equal(a, c)


def test_poisson_inversion_is_exact_on_both_sides_of_every_cdf_step():
    rng = np.random.default_rng(5)
    mean = np.exp(rng.uniform(np.log(0.05), np.log(1e6), 200_000))
    n = np.maximum(np.floor(mean + np.sqrt(mean) * rng.uniform(-4.5, 4.5, mean.size)), 0.0)
    cdf = pdtr(n, mean)
    for eps, expected in ((1e-12, n + 1), (-1e-12, n)):
        u = cdf + eps
        ok = (u > 0) & (u < 1)
        np.testing.assert_array_equal(poisson(u[ok], mean[ok]), expected[ok])
    u = rng.random(200_000)
    np.testing.assert_array_equal(poisson(u, mean), stats.poisson.ppf(u, mean))


def test_poisson_inversion_is_monotone_in_the_mean_for_one_uniform():
    """Common random numbers: a bad change that raises the mean never lowers the count."""
    u = np.random.default_rng(8).random(20_000)
    low = np.exp(np.random.default_rng(9).uniform(np.log(0.1), np.log(5e4), u.size))
    assert (poisson(u, low * 1.3) >= poisson(u, low)).all()
    assert (poisson(u, np.zeros(u.size)) == 0).all()
