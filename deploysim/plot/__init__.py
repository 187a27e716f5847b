"""Plots of simulation results.

Each function takes results (a `SimulationResult`, or the Monte Carlo frames) and options and
returns a `matplotlib.figure.Figure`, built without pyplot so it works headless and in notebooks:
`fig.savefig("out.png")`, or leave it as a notebook cell's value.
"""

from .budget import budget_burndown
from .comparison import policy_comparison
from .distributions import cdf, uptime_histogram
from .error_rate import error_rate
from .timeline import rollout_timeline
from .tornado import sensitivity_tornado
from .versions import version_map

__all__ = [
    "budget_burndown",
    "cdf",
    "error_rate",
    "policy_comparison",
    "rollout_timeline",
    "sensitivity_tornado",
    "uptime_histogram",
    "version_map",
]
