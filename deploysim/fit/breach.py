"""What not knowing the world costs: the breach probability of a fitted scenario with its point
estimates and with each replication's parameters drawn from the fit (same seeds), and which drawn
parameters the month's downtime depends on."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..experiments import monte_carlo
from ..experiments.stats import proportion_ci
from ..experiments.uncertainty import parameter_influence
from ..scenario import Scenario


def breach_with_uncertainty(scenario: Scenario, *, replications: int, seed: int = 1, sla_target_pct: float = 99.9,
                            **kwargs: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(breach table, influence table): one row each for the point estimates and for parameter
    uncertainty (breach probability with its exact 95% interval, mean downtime), and
    `parameter_influence` of the uncertain run."""
    rows = []
    influence = pd.DataFrame()
    for label, uncertain in (("point estimates", False), ("parameters drawn from the fit", True)):
        exp = monte_carlo(scenario, replications=replications, seed=seed, sla_target_pct=sla_target_pct,
                          parameter_uncertainty=uncertain, keep_changes=False, **kwargs)
        reps = exp.replications
        breaches, n = int(reps["sla_breach"].sum()), len(reps)
        low, high = proportion_ci(breaches, n)
        rows.append({"world": label, "replications": n, "breach_probability": breaches / n,
                     "breach_ci_low": low, "breach_ci_high": high, "downtime_s_mean": float(reps["downtime_s"].mean()),
                     "downtime_s_p90": float(reps["downtime_s"].quantile(0.9))})
        if uncertain:
            influence = parameter_influence(reps)
    return pd.DataFrame(rows), influence
