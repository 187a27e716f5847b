"""The experiment entry points: Monte Carlo months, policy comparison, parameter sweeps.

All of them run every policy on the same child seeds (common random numbers) and return an
`Experiment` whose frames are tidy (one row per policy × replication).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..scenario import Scenario
from ..scenario.schema import Policy
from ..sla import CREDIT_TIER_TABLES
from .experiment import Experiment
from .params import ParameterError, check_grid, with_values
from .replication import Settings
from .runner import run_tasks

Seed = int | np.random.SeedSequence


def _settings(months: float, sla_target_pct: float, credit_table: str, parameter_uncertainty: bool = False) -> Settings:
    if not months > 0:
        raise ParameterError(f"months must be positive, got {months}")
    if not 0 < sla_target_pct < 100:
        raise ParameterError(f"SLA target must be between 0 and 100 percent (exclusive), got {sla_target_pct}")
    if credit_table not in CREDIT_TIER_TABLES:
        raise ParameterError(f"unknown credit table {credit_table!r}; known: {', '.join(CREDIT_TIER_TABLES)}")
    return Settings(months=months, sla_target_pct=sla_target_pct, credit_table=credit_table,
                    parameter_uncertainty=parameter_uncertainty)


def _check_replications(replications: int) -> None:
    if not isinstance(replications, (int, np.integer)) or replications < 1:
        raise ParameterError(f"replications must be a whole number of at least 1, got {replications!r}")


def monte_carlo(scenario: Scenario, *, replications: int = 100, seed: Seed = 1, months: float = 1.0,
                sla_target_pct: float = 99.9, credit_table: str = "s3-standard", workers: int | None = None,
                client: Any = None, progress: bool | None = None, keep_changes: bool = True,
                start_method: str | None = None, parameter_uncertainty: bool = False) -> Experiment:
    """Simulate `replications` independent runs of `months` months each (child seeds of `seed`).

    `parameter_uncertainty=True` draws each replication's world parameters from the posteriors of a
    scenario fitted by `deploysim fit` (its `uncertainty` section; keyed by the replication's seed, so
    reproducible), so the breach probability includes not knowing them; the drawn values are the
    replications frame's `param:` columns (see `experiments.uncertainty.parameter_influence`).

    `workers` processes on this machine (default: one per CPU; 1 runs here), or a Dask `client`.
    `start_method` ("fork", "spawn", "forkserver") starts the local pool's processes (default:
    fork where the platform has it, else spawn). The same seed gives the same frames on any
    number of workers, with any start method, or on Dask.
    """
    if parameter_uncertainty and not scenario.uncertainty:
        raise ParameterError(f"scenario {scenario.name!r} has no `uncertainty` section: parameter uncertainty "
                             "needs a scenario fitted by `deploysim fit`")
    return compare({scenario.name: scenario}, replications=replications, seed=seed, months=months,
                   sla_target_pct=sla_target_pct, credit_table=credit_table, workers=workers, client=client,
                   progress=progress, keep_changes=keep_changes, start_method=start_method,
                   _parameter_uncertainty=parameter_uncertainty)


def compare(scenarios: Sequence[Scenario] | Mapping[str, Scenario | Policy], *,
            base: Scenario | None = None, baseline: str | None = None, replications: int = 100,
            seed: Seed = 1, months: float = 1.0, sla_target_pct: float = 99.9, credit_table: str = "s3-standard",
            workers: int | None = None, client: Any = None, progress: bool | None = None,
            keep_changes: bool = True, parameters: Mapping[str, Mapping[str, Any]] | None = None,
            start_method: str | None = None, _parameter_uncertainty: bool = False) -> Experiment:
    """Run several policies on the same random worlds and compare them.

    `scenarios` is a list of scenarios (named by their `name`), or a mapping from a label to a
    scenario, or to a `Policy` that replaces the policy of `base`. Replication i of every policy
    uses the same child seed; scenarios whose world sections (fleet, traffic, changes, faults,
    humans) are equal therefore see the same changes, defects, traffic and faults. `baseline`
    (default: the first) is what `Experiment.paired()` subtracts. `start_method` is as in `monte_carlo`.
    """
    _check_replications(replications)
    settings = _settings(months, sla_target_pct, credit_table, _parameter_uncertainty)
    named = _named(scenarios, base)
    if baseline is not None and baseline not in named:
        raise ParameterError(f"unknown baseline {baseline!r}; policies: {', '.join(named)}")
    reps, changes = run_tasks(named, int(replications), seed, settings, workers=workers, client=client,
                              progress=progress, keep_changes=keep_changes, start_method=start_method)
    experiment = Experiment(reps, changes, settings, seed, baseline=baseline,
                            parameters={p: dict(v) for p, v in (parameters or {}).items()})
    if experiment.parameters:
        for i, name in enumerate(next(iter(experiment.parameters.values()))):
            values = {p: experiment.parameters[p][name] for p in experiment.parameters}
            experiment.replications.insert(2 + i, name, experiment.replications["policy"].map(values))
    return experiment


def _named(scenarios, base: Scenario | None) -> dict[str, Scenario]:
    if isinstance(scenarios, Mapping):
        items = list(scenarios.items())
    else:
        items = [(s.name, s) for s in scenarios]
    if not items:
        raise ParameterError("nothing to compare: give at least one scenario or policy")
    named: dict[str, Scenario] = {}
    for label, item in items:
        if isinstance(item, Policy):
            if base is None:
                raise ParameterError(f"policy {label!r} needs a base scenario (base=...) to run in")
            item = base.model_copy(update={"policy": item})
        if not isinstance(item, Scenario):
            raise ParameterError(f"{label!r} is a {type(item).__name__}, expected a Scenario or a Policy")
        if label in named:
            raise ParameterError(f"two policies are named {label!r}; give them distinct names")
        named[str(label)] = item
    return named


def same_world(a: Scenario, b: Scenario) -> bool:
    """Whether two scenarios draw the same random world from the same seed (everything but the policy
    and the alarms is equal), so a comparison of them uses fully common random numbers."""
    skip = {"name", "description", "policy", "alarms"}
    return a.model_dump(exclude=skip) == b.model_dump(exclude=skip)


def sweep(scenario: Scenario, grid: Mapping[str, Sequence[Any]], **kwargs: Any) -> Experiment:
    """Every combination of the grid's values (path → values), run as policies under common random numbers.

    Paths are scenario field paths such as ``policy.pipelines.code.stages[2].waves[0].bake.duration``;
    values are what the scenario file would hold there (``"2h"``, ``0.25``). The first combination is the baseline.
    """
    grid = check_grid(scenario, grid)
    variants: dict[str, Scenario] = {}
    parameters: dict[str, dict[str, Any]] = {}
    short = _short_names(list(grid))
    for label, values in sweep_settings(grid).items():
        variants[label] = with_values(scenario, values, name=f"{scenario.name} [{label}]")
        parameters[label] = {short[p]: v for p, v in values.items()}
    return compare(variants, parameters=parameters, **kwargs)


def sweep_settings(grid: Mapping[str, Sequence[Any]]) -> dict[str, dict[str, Any]]:
    """The settings a sweep of `grid` runs, in its order (the first path's values vary slowest; the
    first setting is the baseline): label (as printed, e.g. ``code.stages[0].one_box.bake.duration=5m``)
    → {path: value}."""
    short = _short_names(list(grid))
    out = {}
    for combo in itertools.product(*grid.values()):
        values = dict(zip(grid, combo, strict=True))
        out[", ".join(f"{short[p]}={v}" for p, v in values.items())] = values
    return out


def _short_names(paths: list[str]) -> dict[str, str]:
    """Labels for swept paths: policy paths without the leading ``policy.pipelines.``."""
    prefix = "policy.pipelines."
    return {path: path[len(prefix):] if path.startswith(prefix) else path for path in paths}
