"""One replication: simulate a scenario from one child seed and reduce the run to one row of figures.

This is the unit of work shipped to a process pool or a Dask cluster, so it is a plain top-level
function of picklable arguments and returns plain data (a dict and a frame).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..results import SimulationResult
from ..run import simulate
from ..scenario import Scenario
from ..world import SECONDS_PER_MONTH


@dataclass(frozen=True)
class Settings:
    """What every replication of one experiment shares."""

    months: float = 1.0
    sla_target_pct: float = 99.9
    credit_table: str = "s3-standard"


METRIC_COLUMNS = [
    "uptime_pct", "worst_region_uptime_pct", "downtime_s", "worst_region_downtime_s", "sla_breach",
    "service_credit_pct", "failed_requests", "failed_request_share", "impact_minutes",
    "downtime_alarm_caught_s", "downtime_no_alarm_s", "downtime_faults_s", "downtime_baseline_s",
    "changes", "bad_changes", "caught_in_preprod", "bad_in_production", "caught_by_alarm", "found_by_people",
    "false_rollbacks", "deployed", "ttd_p50_s", "ttr_p50_s", "lead_time_p50_h", "lead_time_p90_h",
    "lead_time_p50_business_days", "change_failure_rate", "deployments_per_week",
]
"""Columns of the replications frame after `policy` and `replication` (units in the names)."""


def replication_row(result: SimulationResult) -> dict[str, Any]:
    """The figures of one run as one flat row (monthly figures are per 30-day month)."""
    summary = result.summary()
    monthly = result.monthly
    ch = result.changes
    per_month = SECONDS_PER_MONTH / monthly["period_s"]
    weights = monthly["requests"].to_numpy()
    uptime = (float(np.average(monthly["uptime_avg_error_rate_pct"], weights=weights))
              if weights.sum() > 0 else 100.0)
    downtime_s = float(((100.0 - uptime) / 100.0) * SECONDS_PER_MONTH)
    worst = float(monthly["uptime_avg_error_rate_pct"].min())
    region_downtime = (monthly["downtime_s"] * per_month).groupby(monthly["region"]).mean()
    credit = (float(np.average(monthly["service_credit_pct"], weights=weights)) if weights.sum() > 0 else 0.0)

    bad_prod = ch[ch["bad"] & ch["first_bad_s"].notna()]
    by_alarm = bad_prod[(bad_prod["detected_by"] != "") & (bad_prod["detected_by"] != "people")]
    by_people = bad_prod[bad_prod["detected_by"] == "people"]
    # Bad changes no alarm caught: found by people, or still undetected when the run ended.
    unalarmed = bad_prod[~bad_prod.index.isin(by_alarm.index)]
    split = _downtime_by_cause(result, downtime_s, float(by_alarm["failed_requests"].sum()),
                               float(unalarmed["failed_requests"].sum()))
    c, lead, dora = summary["changes"], summary["lead_time"], summary["dora"]
    return {
        "uptime_pct": uptime,
        "worst_region_uptime_pct": worst,
        "downtime_s": downtime_s,
        "worst_region_downtime_s": float(region_downtime.max()),
        "sla_breach": bool(worst < result.sla_target_pct),
        "service_credit_pct": credit,
        "failed_requests": float(bad_prod["failed_requests"].sum()),
        "failed_request_share": float(bad_prod["failed_request_share"].sum()),
        "impact_minutes": float(bad_prod["impact_minutes"].sum()),
        **split,
        "changes": c["total"],
        "bad_changes": c["bad"],
        "caught_in_preprod": c["caught_in_preprod"],
        "bad_in_production": c["bad_reaching_production"],
        "caught_by_alarm": c["caught_by_alarm"],
        "found_by_people": c["found_by_people"],
        "false_rollbacks": c["false_rollbacks"],
        "deployed": c["deployed"],
        "ttd_p50_s": summary["ttd_s"]["p50"],
        "ttr_p50_s": summary["ttr_s"]["p50"],
        "lead_time_p50_h": lead["p50_h"],
        "lead_time_p90_h": lead["p90_h"],
        "lead_time_p50_business_days": lead["p50_business_days"],
        "change_failure_rate": dora["change_failure_rate"],
        "deployments_per_week": dora["deployments_per_week"],
    }


def _downtime_by_cause(result: SimulationResult, downtime_s: float, alarm_failed: float,
                       no_alarm_failed: float) -> dict[str, float]:
    """Apportion the month's downtime to its causes in proportion to the failed requests of each.

    Bad changes' failed requests come from their blast radius (split into those an alarm caught
    and the rest: found by people, or not found before the run ended); the baseline is the scenario's
    baseline error rate times the requests; infrastructure faults (AZ outages, dependency
    degradation, and anything else) are the rest of the failed requests.
    """
    requests = float(result.monthly["requests"].sum())
    errors = float(result.monthly["errors"].sum())
    baseline = result.scenario.baseline.error_rate * requests
    faults = max(errors - baseline - alarm_failed - no_alarm_failed, 0.0)
    parts = {"downtime_alarm_caught_s": alarm_failed, "downtime_no_alarm_s": no_alarm_failed,
             "downtime_faults_s": faults, "downtime_baseline_s": baseline}
    total = sum(parts.values())
    if total <= 0 or not math.isfinite(total):
        return {key: 0.0 for key in parts}
    return {key: downtime_s * value / total for key, value in parts.items()}


def run_replication(scenario: Scenario, seed: np.random.SeedSequence, settings: Settings,
                    keep_changes: bool = True) -> tuple[dict[str, Any], pd.DataFrame | None]:
    """Simulate one replication; returns its row and (optionally) its per-change frame."""
    result = simulate(scenario, seed=seed, months=settings.months, sla_target_pct=settings.sla_target_pct,
                      credit_table=settings.credit_table)
    row = replication_row(result)
    return row, (result.changes if keep_changes else None)
