"""Experiments over many simulated months: Monte Carlo replications, policy comparison with common
random numbers, parameter sweeps and bake-time tuning, on a process pool or a Dask cluster."""

from .api import compare, monte_carlo, same_world, sweep
from .experiment import SUMMARY_METRICS, Experiment, pareto_front
from .params import ParameterError, get_value, parse_param, with_values
from .replication import METRIC_COLUMNS
from .tune import TuneResult, tune

__all__ = [
    "Experiment", "METRIC_COLUMNS", "ParameterError", "SUMMARY_METRICS", "TuneResult", "compare", "get_value",
    "monte_carlo", "pareto_front", "parse_param", "same_world", "sweep", "tune", "with_values",
]
