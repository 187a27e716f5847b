"""Results of one simulated run: tidy pandas frames and the summary figures of DESIGN.md.

The engine only appends plain records; this module is where they become frames and figures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from . import sla, uptime
from .engine import Simulation
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
    """Everything one run produced; frames are built on first access."""

    sim: Simulation
    seed: Any
    months: float
    sla_target_pct: float = 99.9
    credit_table: str = "s3-standard"
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def scenario(self):
        return self.sim.sc

    # ------------------------------------------------------------ frames

    @cached_property
    def timeline(self) -> pd.DataFrame:
        """One row per deployment event (stage/step start, bake start/end, blocker waits, alarm, rollback)."""
        frame = pd.DataFrame(self.sim.records.timeline)
        if frame.empty:
            frame = pd.DataFrame(columns=["time_s", "pipeline", "version", "event"])
        frame.insert(1, "time", self.scenario.start + pd.to_timedelta(frame["time_s"], unit="s"))
        return frame

    @cached_property
    def _blast(self) -> dict[int, dict[str, float]]:
        return {c: self._blast_radius(i) for c, i in self.sim.bad_index.items()}

    def _blast_radius(self, bad_idx: int) -> dict[str, float]:
        """Failed requests a bad change caused, its peak share of fleet capacity, and how far it reached."""
        ex, lay, sim = self.sim.exposures, self.sim.layout, self.sim
        n = ex.size
        rows = np.flatnonzero(ex.change[:n] == bad_idx)
        out = {"failed_requests": 0.0, "impact_minutes": 0.0, "peak_capacity_share": 0.0,
               "hosts_reached": 0, "cells_reached": 0, "azs_reached": 0, "regions_reached": 0}
        if rows.size == 0:
            return out
        hosts = np.unique(ex.host[rows])
        out["hosts_reached"] = int(hosts.size)
        out["cells_reached"] = int(np.unique(lay.host_cell[hosts]).size)
        out["azs_reached"] = int(np.unique(lay.host_az[hosts]).size)
        out["regions_reached"] = int(np.unique(lay.host_region[hosts]).size)
        on, off = ex.on_s[rows], np.minimum(ex.off_s[rows], sim.horizon_s)
        times = np.concatenate([on, off])
        deltas = np.concatenate([np.ones(rows.size), -np.ones(rows.size)])
        order = np.lexsort((deltas, times))  # closes before opens at the same instant
        out["peak_capacity_share"] = float(np.cumsum(deltas[order]).max() / lay.n_hosts)
        p = sim.period_s
        k_lo = int(on.min() // p)
        k_hi = min(int(math.ceil(off.max() / p)), sim.world.requests.shape[1])
        failed, minutes = 0.0, 0.0
        for r in np.unique(lay.host_region[hosts]).tolist():
            region_hosts = lay.hosts_in_region(r)
            for k0 in range(k_lo, k_hi, 1440):
                k1 = min(k0 + 1440, k_hi)
                m = sim.metrics.expected(region_hosts, k0, k1, ex, only_change=bad_idx, baseline=False)
                failed += float(m.errors.sum())
                minutes += float((m.errors > 1e-9).sum()) * p / 60.0
        out["failed_requests"] = failed
        out["impact_minutes"] = minutes
        return out

    @cached_property
    def changes(self) -> pd.DataFrame:
        """One row per change: pipeline, good/bad, outcome, lead time, TTD, TTR and blast radius."""
        rows = []
        start = pd.Timestamp(self.scenario.start)
        total_requests = float(self.sim.world.requests.sum())
        for cid, rec in sorted(self.sim.records.changes.items()):
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
                "false_rollback": (not c.bad) and rec.rolled_back_by_alarm,
            }
            blast = self._blast.get(cid, None) if c.bad else None
            blast = blast or {"failed_requests": 0.0, "impact_minutes": 0.0, "peak_capacity_share": 0.0,
                              "hosts_reached": 0, "cells_reached": 0, "azs_reached": 0, "regions_reached": 0}
            row.update(blast)
            row["failed_request_share"] = blast["failed_requests"] / total_requests if total_requests else 0.0
            rows.append(row)
        frame = pd.DataFrame(rows, columns=CHANGE_COLUMNS)
        return frame.astype({"bad": bool, "false_rollback": bool}) if len(frame) else frame

    @cached_property
    def _region_counts(self) -> tuple[np.ndarray, np.ndarray]:
        """Requests and (sampled) errors per region per metric period over the whole run."""
        sim = self.sim
        lay = sim.layout
        n_periods = sim.world.requests.shape[1]
        errors = np.zeros((lay.n_regions, n_periods))
        for r in range(lay.n_regions):
            hosts = lay.hosts_in_region(r)
            for k0 in range(0, n_periods, 1440):
                k1 = min(k0 + 1440, n_periods)
                errors[r, k0:k1] = sim.metrics.expected(hosts, k0, k1, sim.exposures).errors
        rng = np.random.default_rng(sim.seed_seq.spawn(3)[2])
        requests = np.round(sim.world.requests)
        sampled = np.minimum(rng.poisson(errors).astype(float), requests)
        return requests, sampled

    @cached_property
    def uptime(self) -> pd.DataFrame:
        """Per region, per 5-minute interval: requests, errors and error rate."""
        requests, errors = self._region_counts
        per = int(INTERVAL_S // self.sim.period_s)
        frames = []
        n_int = int(math.ceil(requests.shape[1] / per))
        for r, name in enumerate(self.sim.layout.region_names):
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
        p = self.sim.period_s
        per_month = int(SECONDS_PER_MONTH // p)
        rows = []
        n_months = int(math.ceil(requests.shape[1] / per_month))
        for m in range(n_months):
            sl = slice(m * per_month, (m + 1) * per_month)
            for r, name in enumerate(self.sim.layout.region_names):
                req, err = requests[r, sl], errors[r, sl]
                up_avg = float(uptime.averaged_error_rate_uptime_pct(req, err, period_s=p, interval_s=INTERVAL_S))
                up_min = float(uptime.unavailable_minutes_uptime_pct(req, err, period_s=p))
                period_len_s = req.size * p
                downtime_s = (100.0 - up_avg) / 100.0 * period_len_s
                rows.append({
                    "month": m,
                    "region": name,
                    "requests": float(req.sum()),
                    "errors": float(err.sum()),
                    "uptime_avg_error_rate_pct": up_avg,
                    "uptime_unavailable_minutes_pct": up_min,
                    "downtime_equivalent_s": downtime_s,
                    "sla_budget_used_pct": sla.budget_used_pct(downtime_s, self.sla_target_pct, period_len_s),
                    "service_credit_pct": sla.service_credit(up_avg, self.credit_table),
                })
        return pd.DataFrame(rows)

    # ------------------------------------------------------------ figures

    def summary(self) -> dict[str, Any]:
        """The figures of DESIGN.md for this run: per region and overall, units in the names."""
        ch = self.changes
        monthly = self.monthly
        bad_prod = ch[ch["bad"] & ch["first_bad_s"].notna()]
        deployed = ch[ch["outcome"] == "deployed"]
        versions = [v for v in self.sim.records.versions]
        completed_versions = self.timeline[self.timeline["event"] == "complete"] if not self.timeline.empty else self.timeline
        prod_versions = {
            (row.pipeline, row.version) for row in self.timeline.itertuples()
            if row.event == "step_start"
        } if not self.timeline.empty else set()
        failed_versions = {
            (row.pipeline, row.version) for row in self.timeline.itertuples()
            if row.event == "alarm"
        } if not self.timeline.empty else set()
        people = ch[ch["outcome"] == "reverted_by_people"]
        weeks = self.months * 30 / 7

        def pct(series, q):
            s = series.dropna()
            return float(np.percentile(s, q)) if len(s) else math.nan

        regions = {}
        for name, group in monthly.groupby("region", sort=False):
            regions[name] = {
                "uptime_avg_error_rate_pct": float(group["uptime_avg_error_rate_pct"].mean()),
                "uptime_unavailable_minutes_pct": float(group["uptime_unavailable_minutes_pct"].mean()),
                "worst_month_uptime_pct": float(group["uptime_avg_error_rate_pct"].min()),
                "downtime_equivalent_s_per_month": float(group["downtime_equivalent_s"].mean()),
                "sla_budget_used_pct": float(group["sla_budget_used_pct"].mean()),
                "service_credit_pct": float(group["service_credit_pct"].mean()),
            }
        overall_req = monthly["requests"].sum()
        return {
            "scenario": self.scenario.name,
            "seed": self.seed if isinstance(self.seed, int) else str(self.seed),
            "months": self.months,
            "sla_target_pct": self.sla_target_pct,
            "allowed_downtime_s_per_month": sla.allowed_downtime(self.sla_target_pct),
            "regions": regions,
            "overall": {
                "uptime_avg_error_rate_pct": float(
                    np.average(monthly["uptime_avg_error_rate_pct"], weights=monthly["requests"])) if overall_req else 100.0,
                "worst_region_month_uptime_pct": float(monthly["uptime_avg_error_rate_pct"].min()),
                "months_breaching_sla": int((monthly.groupby("month")["uptime_avg_error_rate_pct"].min() < self.sla_target_pct).sum()),
            },
            "changes": {
                "total": int(len(ch)),
                "bad": int(ch["bad"].sum()) if len(ch) else 0,
                "caught_in_preprod": int((ch["outcome"] == "caught_preprod").sum()) if len(ch) else 0,
                "bad_reaching_production": int(len(bad_prod)),
                "caught_by_alarm": int((bad_prod["detected_by"].str.len() > 0).sum() - (bad_prod["detected_by"] == "people").sum()) if len(bad_prod) else 0,
                "found_by_people": int(len(people)),
                "false_rollbacks": int(ch["false_rollback"].sum()) if len(ch) else 0,
                "deployed": int(len(deployed)),
                "in_flight_at_end": int((ch["outcome"] == "in_flight").sum()) if len(ch) else 0,
            },
            "blast_radius": {
                "failed_requests_total": float(bad_prod["failed_requests"].sum()) if len(bad_prod) else 0.0,
                "failed_requests_p50": pct(bad_prod["failed_requests"], 50) if len(bad_prod) else math.nan,
                "failed_requests_max": float(bad_prod["failed_requests"].max()) if len(bad_prod) else math.nan,
                "peak_capacity_share_max": float(bad_prod["peak_capacity_share"].max()) if len(bad_prod) else math.nan,
                "regions_reached_max": int(bad_prod["regions_reached"].max()) if len(bad_prod) else 0,
                "impact_minutes_total": float(bad_prod["impact_minutes"].sum()) if len(bad_prod) else 0.0,
            },
            "ttd_s": {"p50": pct(bad_prod["ttd_s"], 50), "p90": pct(bad_prod["ttd_s"], 90), "max": pct(bad_prod["ttd_s"], 100)},
            "ttr_s": {"p50": pct(bad_prod["ttr_s"], 50), "p90": pct(bad_prod["ttr_s"], 90), "max": pct(bad_prod["ttr_s"], 100)},
            "lead_time": {
                "p50_h": pct(deployed["lead_time_s"], 50) / 3600.0 if len(deployed) else math.nan,
                "p90_h": pct(deployed["lead_time_s"], 90) / 3600.0 if len(deployed) else math.nan,
                "p50_business_days": pct(deployed["lead_time_business_days"], 50) if len(deployed) else math.nan,
                "blocked_p50_h": pct(deployed["blocked_s"], 50) / 3600.0 if len(deployed) else math.nan,
                "baking_p50_h": pct(deployed["baking_s"], 50) / 3600.0 if len(deployed) else math.nan,
            },
            "dora": {
                "deployments_per_week": len(completed_versions) / weeks if weeks else math.nan,
                "lead_time_for_changes_p50_h": pct(deployed["lead_time_s"], 50) / 3600.0 if len(deployed) else math.nan,
                "change_failure_rate": (len(failed_versions) + len(people)) / len(prod_versions) if prod_versions else math.nan,
                "time_to_restore_p50_h": pct(bad_prod["ttr_s"], 50) / 3600.0 if len(bad_prod) else math.nan,
            },
            "versions_built": len(versions),
        }
