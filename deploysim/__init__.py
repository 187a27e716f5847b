"""deploysim: simulate safe, hands-off deployment policies (waves, bakes, alarms, blockers,
automatic rollback) and measure the blast radius, detection and uptime they buy."""

from .durations import format_duration_s, parse_duration_s

__version__ = "0.1.0"

# The simulator (SimPy, pandas), experiments (scipy) and plots (matplotlib) load on first use, so
# `import deploysim` and every command that needs none of them (execute, status, local, validate)
# start fast, and the real executor never loads the simulator. Scenarios (pydantic) and alarms
# (numpy) load on first use too, so `deploysim --help` needs neither.
_LAZY = {
    "Scenario": "scenario", "ScenarioError": "scenario", "load_scenario": "scenario", "scenario_from_dict": "scenario",
    "SimulationResult": "results", "simulate": "run",
    "Change": "world", "Fault": "world", "World": "world", "replay_world": "replay", "with_replay": "replay",
    "Experiment": "experiments", "ParameterError": "experiments", "TuneResult": "experiments",
    "compare": "experiments", "monte_carlo": "experiments", "sweep": "experiments", "tune": "experiments",
}
_LAZY_MODULES = ("alarms", "scenario", "sla", "experiments", "plot", "report", "executor", "uptime")


def __getattr__(name: str):
    import importlib

    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    if name in _LAZY_MODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "Change",
    "Experiment",
    "Fault",
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
    "plot",
    "parse_duration_s",
    "replay_world",
    "scenario_from_dict",
    "simulate",
    "sla",
    "sweep",
    "tune",
    "uptime",
    "with_replay",
    "World",
]
