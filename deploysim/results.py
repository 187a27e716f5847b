"""Results of one simulated run: tidy pandas frames and the summary figures of DESIGN.md.

The engine only appends plain records; this module is where they become frames and figures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from . import sla, uptime
from .engine import Simulation
from .seeds import child_seed
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
        failed = 0.0
        impacted = np.zeros(max(k_hi - k_lo, 0), dtype=bool)  # periods in which it failed requests anywhere
        for r in np.unique(lay.host_region[hosts]).tolist():
            region_hosts = lay.hosts_in_region(r)
            for k0 in range(k_lo, k_hi, 1440):
                k1 = min(k0 + 1440, k_hi)
                m = sim.metrics.expected(region_hosts, k0, k1, ex, only_change=bad_idx, baseline=False)
                failed += float(m.errors.sum())
                impacted[k0 - k_lo:k1 - k_lo] |= m.errors > 1e-9
        out["failed_requests"] = failed
        out["impact_minutes"] = float(impacted.sum()) * p / 60.0
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
                "false_rollback": rec.false_rollback,
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
        rng = np.random.default_rng(child_seed(sim.seed_seq, 2))  # sampling of the SLA error counts
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
        ch = self.changes
        monthly = self.monthly
        events = self.timeline
        bad_prod = ch[ch["bad"] & ch["first_bad_s"].notna()]
        deployed = ch[ch["outcome"] == "deployed"]
        by_alarm = bad_prod[(bad_prod["detected_by"] != "") & (bad_prod["detected_by"] != "people")]
        by_people = bad_prod[bad_prod["detected_by"] == "people"]
        # DORA counts deployments to production: versions that started a production step.
        prod_versions = set(zip(events.loc[events["event"] == "step_start", "pipeline"],
                                events.loc[events["event"] == "step_start", "version"]))
        failed_versions = set(zip(events.loc[events["event"] == "alarm", "pipeline"],
                                  events.loc[events["event"] == "alarm", "version"]))
        completed = int((events["event"] == "complete").sum())
        weeks = self.months * 30 / 7

        regions = {}
        for name, group in monthly.groupby("region", sort=False):
            regions[name] = {
                "uptime_avg_error_rate_pct": float(group["uptime_avg_error_rate_pct"].mean()),
                "uptime_unavailable_minutes_pct": float(group["uptime_unavailable_minutes_pct"].mean()),
                "worst_month_uptime_pct": float(group["uptime_avg_error_rate_pct"].min()),
                "downtime_s_per_month": float((group["downtime_s"] * SECONDS_PER_MONTH / group["period_s"]).mean()),
                "sla_budget_used_pct": float(group["sla_budget_used_pct"].mean()),
                "service_credit_pct": float(group["service_credit_pct"].mean()),
            }
        weights = monthly["requests"].to_numpy()
        lead_by_pipeline = {
            name: {
                "p50_h": _pct(group["lead_time_s"], 50) / 3600.0,
                "p90_h": _pct(group["lead_time_s"], 90) / 3600.0,
                "p50_business_days": _pct(group["lead_time_business_days"], 50),
                "blocked_p50_h": _pct(group["blocked_s"], 50) / 3600.0,
                "baking_p50_h": _pct(group["baking_s"], 50) / 3600.0,
                "deployed": int(len(group)),
            }
            for name, group in deployed.groupby("pipeline")
        }
        return {
            "scenario": self.scenario.name,
            "seed": self.seed if isinstance(self.seed, int) else str(self.seed),
            "months": self.months,
            "sla_target_pct": self.sla_target_pct,
            "allowed_downtime_s_per_month": sla.allowed_downtime(self.sla_target_pct),
            "regions": regions,
            "overall": {
                "uptime_avg_error_rate_pct": float(np.average(monthly["uptime_avg_error_rate_pct"], weights=weights))
                if weights.sum() > 0 else 100.0,
                "worst_region_month_uptime_pct": float(monthly["uptime_avg_error_rate_pct"].min()),
                "region_months_breaching_sla": int((monthly["uptime_avg_error_rate_pct"] < self.sla_target_pct).sum()),
            },
            "changes": {
                "total": int(len(ch)),
                "bad": int(ch["bad"].sum()),
                "caught_in_preprod": int((ch["outcome"] == "caught_preprod").sum()),
                "bad_reaching_production": int(len(bad_prod)),
                "caught_by_alarm": int(len(by_alarm)),
                "found_by_people": int(len(by_people)),
                "false_rollbacks": int(ch["false_rollback"].sum()),
                "deployed": int(len(deployed)),
                "in_flight_at_end": int((ch["outcome"] == "in_flight").sum()),
            },
            "blast_radius": {
                "failed_requests_total": float(bad_prod["failed_requests"].sum()),
                "failed_requests_p50": _pct(bad_prod["failed_requests"], 50),
                "failed_requests_max": _pct(bad_prod["failed_requests"], 100),
                "failed_request_share_total": float(bad_prod["failed_request_share"].sum()),
                "peak_capacity_share_max": _pct(bad_prod["peak_capacity_share"], 100),
                "hosts_reached_max": int(bad_prod["hosts_reached"].max()) if len(bad_prod) else 0,
                "regions_reached_max": int(bad_prod["regions_reached"].max()) if len(bad_prod) else 0,
                "impact_minutes_total": float(bad_prod["impact_minutes"].sum()),
            },
            "ttd_s": {"p50": _pct(bad_prod["ttd_s"], 50), "p90": _pct(bad_prod["ttd_s"], 90), "max": _pct(bad_prod["ttd_s"], 100)},
            "ttr_s": {"p50": _pct(bad_prod["ttr_s"], 50), "p90": _pct(bad_prod["ttr_s"], 90), "max": _pct(bad_prod["ttr_s"], 100)},
            "lead_time": {
                "p50_h": _pct(deployed["lead_time_s"], 50) / 3600.0,
                "p90_h": _pct(deployed["lead_time_s"], 90) / 3600.0,
                "p50_business_days": _pct(deployed["lead_time_business_days"], 50),
                "blocked_p50_h": _pct(deployed["blocked_s"], 50) / 3600.0,
                "baking_p50_h": _pct(deployed["baking_s"], 50) / 3600.0,
                "by_pipeline": lead_by_pipeline,
            },
            "dora": {
                "deployments_per_week": completed / weeks,
                "lead_time_for_changes_p50_h": _pct(deployed["lead_time_s"], 50) / 3600.0,
                "change_failure_rate": (len(failed_versions) + len(by_people)) / len(prod_versions)
                if prod_versions else math.nan,
                "time_to_restore_p50_h": _pct(bad_prod["ttr_s"], 50) / 3600.0,
            },
        }


def _pct(series: pd.Series, q: float) -> float:
    """Percentile of the non-missing values, NaN when there are none."""
    values = series.dropna().to_numpy(dtype=float)
    return float(np.percentile(values, q)) if values.size else math.nan
