"""Parameter uncertainty: each replication's world parameters drawn from the posteriors a fitted
scenario carries (`Scenario.uncertainty`, written by `deploysim fit`), so that a breach probability
includes not knowing the true failure rate; and which of those parameters the outcome depends on.

Each draw is keyed by the replication's seed and the parameter's path (`deploysim.seeds.keyed_child`),
never by order: the same seed gives the same worlds in any process, and a parameter's draws do not
move when another posterior is added. The simulation's own streams are untouched.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from ..scenario import Scenario
from ..scenario.schema import ParameterPosterior
from ..seeds import as_seed_sequence, keyed_child
from .params import ParameterError, with_values

PURPOSE = "parameter_uncertainty"
PREFIX = "param:"  # the replications frame's columns of drawn parameters


def draw_value(posterior: ParameterPosterior, rng: np.random.Generator) -> tuple[Any, float]:
    """One draw: (the value as the scenario holds it, the number recorded for it: the value, or a
    distribution's median in seconds)."""
    if posterior.beta is not None:
        value = float(rng.beta(*posterior.beta))
        return value, value
    if posterior.gamma is not None:
        shape, exposure = posterior.gamma
        value = max(float(rng.gamma(shape, 1.0 / exposure)), 1e-9)  # a rate of exactly 0 is not a rate
        return value, value
    if posterior.lognormal is not None:
        p = posterior.lognormal
        sigma2 = (p.n - 1) * p.sd_log ** 2 / float(rng.chisquare(p.n - 1))
        mu = float(rng.normal(p.mean_log, math.sqrt(sigma2 / p.n)))
        median = math.exp(mu)
        return {"dist": "lognormal", "median": median, "sigma": math.sqrt(sigma2)}, median
    assert posterior.exponential is not None
    e = posterior.exponential
    mean = 1.0 / float(rng.gamma(e.n, 1.0 / e.total_s))
    return {"dist": "exponential", "mean": mean}, mean * math.log(2)


def column(posterior: ParameterPosterior) -> str:
    distribution = posterior.lognormal is not None or posterior.exponential is not None
    return f"{PREFIX}{posterior.parameter}" + (":median_s" if distribution else "")


def draw_parameters(scenario: Scenario, seed: int | np.random.SeedSequence) -> tuple[Scenario, dict[str, float]]:
    """The scenario with every posterior's parameter drawn for the replication of `seed`, and the
    values drawn (by column name)."""
    if not scenario.uncertainty:
        raise ParameterError(f"scenario {scenario.name!r} has no `uncertainty` section: parameter uncertainty "
                             "needs a scenario fitted by `deploysim fit`")
    root = keyed_child(as_seed_sequence(seed), PURPOSE)
    values: dict[str, Any] = {}
    drawn: dict[str, float] = {}
    for posterior in scenario.uncertainty:
        rng = np.random.default_rng(keyed_child(root, posterior.parameter))
        values[posterior.parameter], drawn[column(posterior)] = draw_value(posterior, rng)
    return with_values(scenario, values), drawn


def parameter_influence(replications: pd.DataFrame, outcome: str = "downtime_s") -> pd.DataFrame:
    """Which drawn parameters the month's outcome depends on: each one's rank (Spearman) correlation
    with `outcome` and with the SLA breach, and its share of the squared correlations with `outcome`
    (largest first). Needs a frame from monte_carlo(..., parameter_uncertainty=True)."""
    columns = [c for c in replications.columns if c.startswith(PREFIX)]
    rows = []
    for c in columns:
        rows.append({"parameter": c[len(PREFIX):], "rho_downtime": _spearman(replications[c], replications[outcome]),
                     "rho_breach": _spearman(replications[c], replications["sla_breach"].astype(float))})
    frame = pd.DataFrame(rows, columns=["parameter", "rho_downtime", "rho_breach"])
    squared = frame["rho_downtime"].fillna(0.0) ** 2
    frame["share"] = squared / squared.sum() if squared.sum() > 0 else 0.0
    return frame.sort_values("share", ascending=False, kind="stable").reset_index(drop=True)


def _spearman(x: pd.Series, y: pd.Series) -> float:
    if x.nunique() < 2 or y.nunique() < 2:
        return math.nan
    return float(x.rank().corr(y.rank()))


def format_influence(influence: pd.DataFrame) -> str:
    """The influence table as text: which fitted parameters the downtime depends on."""
    if influence.empty:
        return "No drawn parameters.\n"
    lines = ["Which fitted parameters dominate (each replication's world drawn from the fit):",
             f"  {'parameter':<48} {'rank corr. downtime':>20} {'rank corr. breach':>18} {'share':>6}"]
    for row in influence.itertuples():
        breach = "n/a" if math.isnan(row.rho_breach) else f"{row.rho_breach:+.2f}"
        downtime = "n/a" if math.isnan(row.rho_downtime) else f"{row.rho_downtime:+.2f}"
        lines.append(f"  {row.parameter:<48} {downtime:>20} {breach:>18} {row.share:>6.0%}")
    lines.append("  (share: squared rank correlation with the month's downtime, normalised over the parameters)")
    return "\n".join(lines) + "\n"
