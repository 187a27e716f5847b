"""One replication: simulate a scenario from one child seed and reduce the run to one row of figures.

This is the unit of work shipped to a process pool or a Dask cluster, so it is a plain top-level
function of picklable arguments and returns plain data (a dict and a frame).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..figures import replication_row
from ..run import simulate
from ..scenario import Scenario


@dataclass(frozen=True)
class Settings:
    """What every replication of one experiment shares."""

    months: float = 1.0
    sla_target_pct: float = 99.9
    credit_table: str = "s3-standard"
    parameter_uncertainty: bool = False  # draw each replication's world parameters from the scenario's posteriors


METRIC_COLUMNS = [
    "uptime_pct", "worst_region_uptime_pct", "downtime_s", "worst_region_downtime_s", "sla_breach",
    "service_credit_pct", "failed_requests", "failed_request_share", "impact_minutes",
    "downtime_alarm_caught_s", "downtime_no_alarm_s", "downtime_faults_s", "downtime_baseline_s",
    "downtime_az_outage_s", "downtime_correlated_az_outage_s", "downtime_region_event_s",
    "downtime_dependency_degradation_s", "downtime_other_s",
    "changes", "bad_changes", "caught_in_preprod", "bad_in_production", "caught_by_alarm", "found_by_people",
    "false_rollbacks", "rolled_back_with_bad_change", "in_flight_at_end", "latent_in_production",
    "deployed", "ttd_p50_s", "ttr_p50_s", "lead_time_p50_h", "lead_time_p90_h",
    "lead_time_p50_business_days", "change_failure_rate", "deployments_per_week",
]
"""Columns of the replications frame after `policy` and `replication` (units in the names); one
run's row is `deploysim.figures.replication_row`."""


def run_replication(scenario: Scenario, seed: np.random.SeedSequence, settings: Settings,
                    keep_changes: bool = True) -> tuple[dict[str, Any], pd.DataFrame | None]:
    """Simulate one replication; returns its row and (optionally) its per-change frame. With parameter
    uncertainty the row also holds the parameters drawn (`param:` columns)."""
    drawn: dict[str, float] = {}
    if settings.parameter_uncertainty:
        from .uncertainty import draw_parameters

        scenario, drawn = draw_parameters(scenario, seed)
    result = simulate(scenario, seed=seed, months=settings.months, sla_target_pct=settings.sla_target_pct,
                      credit_table=settings.credit_table)
    row = replication_row(result)
    row.update(drawn)
    return row, (result.changes if keep_changes else None)
