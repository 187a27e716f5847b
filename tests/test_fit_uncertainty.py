"""Parameter uncertainty: monte_carlo(..., parameter_uncertainty=True) draws each replication's world
parameters from a fitted scenario's posteriors, reproducibly (keyed by seed and parameter), and says
which parameters the outcome depends on."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from conftest import SCENARIOS

import deploysim
from deploysim.cli import main
from deploysim.experiments import ParameterError
from deploysim.experiments.uncertainty import draw_parameters, parameter_influence

POSTERIORS = [
    {"parameter": "changes.code.bad_probability", "beta": [6.5, 40.5]},
    {"parameter": "changes.code.arrivals.changes_per_week", "gamma": [40.5, 4.0]},
    {"parameter": "humans.mitigation", "lognormal": {"n": 12, "mean_log": 7.5, "sd_log": 0.5}},
    {"parameter": "faults.az_outage.duration", "exponential": {"n": 8, "total_s": 19200.0}},
]


def fitted(posteriors=POSTERIORS) -> deploysim.Scenario:
    data = yaml.safe_load((SCENARIOS / "startup-fast.yaml").read_text())
    return deploysim.scenario_from_dict({**data, "uncertainty": posteriors})


def test_each_replication_draws_its_own_world_and_the_same_seed_draws_the_same():
    scenario = fitted()
    def run() -> pd.DataFrame:
        return deploysim.monte_carlo(scenario, replications=3, seed=5, months=0.05, workers=1, progress=False,
                                     keep_changes=False, parameter_uncertainty=True).replications

    a, b = run(), run()
    pd.testing.assert_frame_equal(a, b)
    drawn = a["param:changes.code.bad_probability"]
    assert drawn.nunique() == 3 and drawn.between(0, 1).all()
    assert {"param:humans.mitigation:median_s", "param:faults.az_outage.duration:median_s"} <= set(a.columns)


def test_without_parameter_uncertainty_nothing_is_drawn():
    reps = deploysim.monte_carlo(fitted(), replications=1, seed=5, months=0.05, workers=1, progress=False,
                                 keep_changes=False).replications
    assert not [c for c in reps.columns if c.startswith("param:")]


def test_parameter_uncertainty_needs_a_fitted_scenario():
    plain = deploysim.load_scenario(SCENARIOS / "startup-fast.yaml")
    with pytest.raises(ParameterError, match="no `uncertainty` section"):
        deploysim.monte_carlo(plain, replications=1, months=0.05, workers=1, parameter_uncertainty=True)


def test_draws_follow_the_posteriors():
    scenario = fitted()
    seeds = np.random.SeedSequence(11).spawn(300)
    draws = pd.DataFrame([draw_parameters(scenario, s)[1] for s in seeds])
    assert draws["param:changes.code.bad_probability"].mean() == pytest.approx(6.5 / 47, rel=0.05)
    assert draws["param:changes.code.arrivals.changes_per_week"].mean() == pytest.approx(40.5 / 4.0, rel=0.05)
    assert np.log(draws["param:humans.mitigation:median_s"]).mean() == pytest.approx(7.5, abs=0.05)


def test_a_parameters_draws_do_not_move_when_another_posterior_is_added():
    seed = np.random.SeedSequence(3)
    _, alone = draw_parameters(fitted(POSTERIORS[:1]), seed)
    _, with_others = draw_parameters(fitted(list(reversed(POSTERIORS))), seed)
    assert alone["param:changes.code.bad_probability"] == with_others["param:changes.code.bad_probability"]


def test_influence_ranks_the_parameter_the_outcome_depends_on_first():
    rng = np.random.default_rng(0)
    x, y = rng.random(200), rng.random(200)
    downtime = 100 * x + rng.normal(0, 5, 200)
    frame = pd.DataFrame({"param:a": y, "param:b": x, "downtime_s": downtime, "sla_breach": downtime > 60})
    influence = parameter_influence(frame)
    assert influence["parameter"].tolist() == ["b", "a"]
    assert influence["share"].iloc[0] > 0.95 and influence["share"].sum() == pytest.approx(1.0)


def test_run_with_parameter_uncertainty_prints_which_parameters_dominate(tmp_path):
    path = tmp_path / "fitted.yaml"
    path.write_text(yaml.safe_dump(fitted().model_dump(mode="json")))
    result = CliRunner().invoke(main, ["run", str(path), "-n", "2", "--months", "0.05", "--workers", "1", "-q",
                                       "--parameter-uncertainty"])
    assert result.exit_code == 0, result.output
    assert "Which fitted parameters dominate" in result.output and "changes.code.bad_probability" in result.output
    alone = CliRunner().invoke(main, ["run", str(path), "--months", "0.05", "--parameter-uncertainty"])
    assert alone.exit_code == 2 and "give --replications too" in alone.output
