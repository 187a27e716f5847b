"""Fit the world from history: read a service's deployments and incidents (deploysim's generic
CSV/JSON, AWS CodePipeline, GitHub deployments, a PagerDuty-style incident CSV), fit change arrivals,
failure and catch rates, people's delays, rollback durations and infrastructure faults with 95%
intervals, and write a scenario (with the posteriors `monte_carlo(..., parameter_uncertainty=True)`
draws from) and a report (docs/fit.md)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from .base import Base, load_base
from .fitting import Estimate, Fit, fit_history
from .formats import read_history, write_history
from .from_run import history_from_run
from .history import Deployment, History, HistoryError, Incident
from .report import write_report
from .writer import fitted_yaml


def fit_files(deployments: list[str], incidents: list[str], fleet: str | Path, *, since: dt.datetime | None = None,
              until: dt.datetime | None = None) -> tuple[Fit, Base]:
    """Read the history files and fit the world of the base at `fleet` (a scenario, or a file that
    describes only the fleet: see `load_base`) from them; the window is `since`/`until`, else the records'."""
    history = read_history(*deployments, *incidents).with_window(since, until)
    base = load_base(fleet, history.pipelines)
    unknown = sorted(set(history.pipelines) - set(base.scenario.policy.pipelines))
    if unknown:
        known = ", ".join(base.scenario.policy.pipelines)
        raise ValueError(f"the history has pipeline(s) {', '.join(unknown)} that the base scenario has no policy for "
                         f"(known: {known}); add them to it, or name a one-pipeline file NAME=FILE")
    return fit_history(history, base.scenario), base


__all__ = ["Base", "load_base", "Deployment", "Estimate", "Fit", "History", "HistoryError", "Incident", "fit_files",
           "fit_history", "fitted_yaml", "history_from_run", "read_history", "write_history", "write_report"]
