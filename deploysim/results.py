"""Results of one simulated run: tidy pandas frames and the summary figures of DESIGN.md.

The engine returns plain records (`deploysim.records`); this module is where they become frames,
and `deploysim.figures` where frames become figures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from . import sla, uptime
from .figures import summary_figures
from .records import BlastRadius, SimulationRecords
from .scenario.schema import Scenario
from .world import SECONDS_PER_MONTH

INTERVAL_S = 300.0  # the SLA's 5-minute interval

CHANGE_COLUMNS = [
    "change_id", "pipeline", "bad", "defect", "outcome", "arrival_s", "completed_s", "lead_time_s",
    "lead_time_business_days", "blocked_s", "baking_s", "first_bad_s", "detected_by", "ttd_s", "ttr_s",
    "false_rollback", "failed_requests", "impact_minutes", "peak_capacity_share", "hosts_reached",
    "cells_reached", "azs_reached", "regions_reached", "failed_request_share",
]


def business_days_between(start: pd.Timestamp, end: pd.Timestamp) -> float:
    """Elapsed days counting only Monday to Friday (UTC), as "business days"."""
    if pd.isna(start) or pd.isna(end):
        return math.nan
    total = 0.0
    cursor = start
    while cursor < end:
        next_midnight = (cursor + pd.Timedelta(days=1)).normalize()
        stop = min(next_midnight, end)
        if cursor.weekday() < 5:
            total += (stop - cursor).total_seconds() / 86400.0
        cursor = stop
    return total


@dataclass
class SimulationResult:
    """One run's frames and figures, built from its records alone: it holds no engine and draws no
    random numbers, so building it twice from the same records gives the same frames.

    Frames are built on first access.
    """

    records: SimulationRecords
    sla_target_pct: float = 99.9
    credit_table: str = "s3-standard"

    @property
    def scenario(self) -> Scenario:
        return self.records.scenario

    @property
    def seed(self) -> Any:
        return self.records.seed

    @property
    def months(self) -> float:
        return self.records.months

    # ------------------------------------------------------------ frames

    @cached_property
    def timeline(self) -> pd.DataFrame:
        """One row per deployment event (stage/step start, bake start/end, blocker waits, alarm, rollback)."""
        frame = pd.DataFrame(self.records.timeline)
        if frame.empty:
            frame = pd.DataFrame(columns=["time_s", "pipeline", "version", "event"])
        frame.insert(1, "time", self.scenario.start + pd.to_timedelta(frame["time_s"], unit="s"))
        return frame

    @cached_property
    def changes(self) -> pd.DataFrame:
        """One row per change: pipeline, good/bad, outcome, lead time, TTD, TTR and blast radius."""
        rows = []
        start = pd.Timestamp(self.scenario.start)
        total_requests = float(self.records.requests_per_period.sum())
        for cid, rec in sorted(self.records.changes.items()):
            c = rec.change
            row = {
                "change_id": cid,
                "pipeline": c.pipeline,
                "bad": c.bad,
                "defect": c.defect.name if c.defect else "",
                "outcome": rec.outcome,
                "arrival_s": c.arrival_s,
                "completed_s": rec.completed_s,
                "lead_time_s": rec.completed_s - c.arrival_s,
                "lead_time_business_days": business_days_between(
                    start + pd.Timedelta(seconds=c.arrival_s),
                    start + pd.Timedelta(seconds=rec.completed_s) if not math.isnan(rec.completed_s) else pd.NaT,
                ),
                "blocked_s": rec.blocked_s,
                "baking_s": rec.baking_s,
                "first_bad_s": rec.first_bad_s,
                "detected_by": rec.detected_by,
                "ttd_s": rec.detected_s - rec.first_bad_s,
                "ttr_s": rec.mitigated_s - rec.first_bad_s,
                "false_rollback": rec.false_rollback,
            }
            blast = ((self.records.blast_radius.get(cid) if c.bad else None) or BlastRadius()).as_dict()
            row.update(blast)
            row["failed_request_share"] = blast["failed_requests"] / total_requests if total_requests else 0.0
            rows.append(row)
        frame = pd.DataFrame(rows, columns=CHANGE_COLUMNS)
        return frame.astype({"bad": bool, "false_rollback": bool}) if len(frame) else frame

    @cached_property
    def _region_counts(self) -> tuple[np.ndarray, np.ndarray]:
        """Requests (rounded) and sampled errors per region per metric period over the whole run."""
        return np.round(self.records.requests_per_period), self.records.sla_errors_per_period

    @cached_property
    def uptime(self) -> pd.DataFrame:
        """Per region, per 5-minute interval: requests, errors and error rate."""
        requests, errors = self._region_counts
        per = int(INTERVAL_S // self.records.period_s)
        frames = []
        n_int = int(math.ceil(requests.shape[1] / per))
        for r, name in enumerate(self.records.region_names):
            pad = n_int * per - requests.shape[1]
            req = np.pad(requests[r], (0, pad)).reshape(n_int, per).sum(axis=1)
            err = np.pad(errors[r], (0, pad)).reshape(n_int, per).sum(axis=1)
            start_s = np.arange(n_int) * INTERVAL_S
            frames.append(pd.DataFrame({
                "region": name,
                "interval_start_s": start_s,
                "interval_start": pd.Timestamp(self.scenario.start) + pd.to_timedelta(start_s, unit="s"),
                "requests": req,
                "errors": err,
                "error_rate": np.divide(err, req, out=np.zeros_like(req), where=req > 0),
            }))
        return pd.concat(frames, ignore_index=True)

    @cached_property
    def monthly(self) -> pd.DataFrame:
        """Per region and 30-day month: uptime by both SLA definitions, downtime, budget used, credit."""
        requests, errors = self._region_counts
        p = self.records.period_s
        per_month = int(SECONDS_PER_MONTH // p)
        rows = []
        n_months = int(math.ceil(requests.shape[1] / per_month))
        for m in range(n_months):
            sl = slice(m * per_month, (m + 1) * per_month)
            for r, name in enumerate(self.records.region_names):
                req, err = requests[r, sl], errors[r, sl]
                up_avg = float(uptime.averaged_error_rate_uptime_pct(req, err, period_s=p, interval_s=INTERVAL_S))
                # Judge whole minutes, or whole periods when a period is longer than a minute.
                up_min = float(uptime.unavailable_minutes_uptime_pct(req, err, period_s=p, run_s=max(60.0, p)))
                period_len_s = req.size * p
                # The averaged-error-rate definition read as time: the mean error rate times the period.
                downtime_s = (100.0 - up_avg) / 100.0 * period_len_s
                rows.append({
                    "month": m,
                    "region": name,
                    "requests": float(req.sum()),
                    "errors": float(err.sum()),
                    "uptime_avg_error_rate_pct": up_avg,
                    "uptime_unavailable_minutes_pct": up_min,
                    "period_s": period_len_s,
                    "downtime_s": downtime_s,
                    "sla_budget_used_pct": sla.budget_used_pct(downtime_s, self.sla_target_pct, period_len_s),
                    "service_credit_pct": sla.service_credit(up_avg, self.credit_table),
                })
        return pd.DataFrame(rows)

    # ------------------------------------------------------------ figures

    def summary(self) -> dict[str, Any]:
        """The figures of DESIGN.md for this run: per region and overall, units in the names."""
        return summary_figures(self)
