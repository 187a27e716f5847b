"""deploysim: simulate safe, hands-off deployment policies (waves, bakes, alarms, blockers,
automatic rollback) and measure the blast radius, detection and uptime they buy."""

from . import alarms, sla, uptime
from .durations import format_duration_s, parse_duration_s
from .experiments import Experiment, ParameterError, TuneResult, compare, monte_carlo, sweep, tune
from .results import SimulationResult
from .run import simulate
from .scenario import Scenario, ScenarioError, load_scenario, scenario_from_dict

__version__ = "0.1.0"

__all__ = [
    "Experiment",
    "ParameterError",
    "Scenario",
    "ScenarioError",
    "SimulationResult",
    "TuneResult",
    "alarms",
    "compare",
    "format_duration_s",
    "load_scenario",
    "monte_carlo",
    "parse_duration_s",
    "scenario_from_dict",
    "simulate",
    "sla",
    "sweep",
    "tune",
    "uptime",
]
