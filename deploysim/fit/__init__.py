"""Fit the world from history: read a service's deployments and incidents (deploysim's generic
CSV/JSON, AWS CodePipeline, GitHub deployments, a PagerDuty-style incident CSV), fit change arrivals,
failure and catch rates, people's delays, rollback durations and infrastructure faults with 95%
intervals, and write a scenario (with the posteriors `monte_carlo(..., parameter_uncertainty=True)`
draws from) and a report (docs/fit.md)."""

from __future__ import annotations

import datetime as dt

from ..scenario import Scenario
from .fitting import Estimate, Fit, fit_history
from .formats import read_history, write_history
from .from_run import history_from_run
from .history import Deployment, History, HistoryError, Incident
from .report import write_report
from .writer import fitted_yaml


def fit_files(deployments: list[str], incidents: list[str], base: Scenario, *, since: dt.datetime | None = None,
              until: dt.datetime | None = None) -> Fit:
    """Read the history files and fit `base`'s world from them (the window: `since`/`until`, else the records')."""
    history = read_history(*deployments, *incidents).with_window(since, until)
    unknown = sorted(set(history.pipelines) - set(base.policy.pipelines))
    if unknown:
        raise ValueError(f"the history has pipeline(s) {', '.join(unknown)} that the base scenario has no policy for "
                         f"(known: {', '.join(base.policy.pipelines)}); add them to it, or name a one-pipeline file "
                         "NAME=FILE")
    return fit_history(history, base)


__all__ = ["Deployment", "Estimate", "Fit", "History", "HistoryError", "Incident", "fit_files",
           "fit_history", "fitted_yaml", "history_from_run", "read_history", "write_history", "write_report"]
