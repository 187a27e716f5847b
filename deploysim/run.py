"""Run one simulation of a scenario: the library's main entry point."""

from __future__ import annotations

import numpy as np

from .engine import Simulation
from .results import SimulationResult
from .scenario.schema import Scenario
from .world import World


def simulate(scenario: Scenario, *, seed: int | np.random.SeedSequence = 0, months: float = 1.0,
             sla_target_pct: float = 99.9, credit_table: str = "s3-standard",
             world: World | None = None) -> SimulationResult:
    """Simulate `months` 30-day months of the scenario from `seed`; same seed, same result.

    `seed` is an int or a numpy SeedSequence (replications use its children). `world` replaces
    the randomly drawn world (changes, faults, traffic) with a given one, e.g. for hand-made cases.
    """
    records = Simulation(scenario, seed=seed, months=months, world=world).run()
    return SimulationResult(records, sla_target_pct=sla_target_pct, credit_table=credit_table)
