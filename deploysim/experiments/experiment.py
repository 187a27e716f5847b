"""The result of a Monte Carlo experiment: tidy frames, estimates with intervals, paired differences.

`replications` has one row per policy × replication (columns: `policy`, `replication`, then
`METRIC_COLUMNS`); `changes` has one row per change of every replication. Everything else is
computed from these two frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from . import stats
from .replication import Settings

SUMMARY_METRICS: dict[str, str] = {
    "uptime_pct": "monthly uptime, request-weighted over regions (averaged error rate), %",
    "worst_region_uptime_pct": "monthly uptime of the worst region, %",
    "downtime_s": "downtime per month (averaged error rate read as time), s",
    "sla_breach": "probability that the worst region's monthly uptime is below the SLA target",
    "service_credit_pct": "service credit owed, request-weighted over regions, % of the bill",
    "failed_requests": "blast radius: requests failed by bad changes in production",
    "impact_minutes": "blast radius: customer-impact minutes of bad changes",
    "ttd_p50_s": "time to detect (median within a replication), s",
    "ttr_p50_s": "time to roll back (median within a replication), s",
    "lead_time_p50_h": "lead time (median within a replication), h",
    "change_failure_rate": "change failure rate (DORA)",
    "false_rollbacks": "rollbacks of versions without a bad change, per month",
    "deployments_per_week": "deployment frequency (DORA), per week",
}
"""The figures the summary reports, with what each is and its unit."""

BINARY_METRICS = frozenset({"sla_breach"})
"""Yes/no figures: their means are probabilities, with exact intervals (single and paired)."""


@dataclass
class Experiment:
    """Replications of one or more policies under common random numbers."""

    replications: pd.DataFrame
    changes: pd.DataFrame
    settings: Settings
    seed: Any
    baseline: str | None = None  # the policy others are compared against (first by default)
    parameters: dict[str, dict[str, Any]] = field(default_factory=dict)  # policy -> swept values

    @property
    def policies(self) -> list[str]:
        return list(dict.fromkeys(self.replications["policy"]))

    @property
    def n_replications(self) -> int:
        return int(self.replications["replication"].nunique())

    def summary(self, metrics: list[str] | None = None, confidence: float = stats.CONFIDENCE) -> pd.DataFrame:
        """One row per policy × metric: n, mean with its interval, median, p90, p99 with intervals.

        For `sla_breach` the mean is the breach probability and its interval is exact (Clopper-Pearson).
        Replications where a figure is undefined (e.g. TTD with no bad change) are left out of it; `n` says how many
        remain.
        """
        rows = []
        for policy in self.policies:
            frame = self.replications[self.replications["policy"] == policy]
            for metric in metrics or list(SUMMARY_METRICS):
                x = frame[metric].to_numpy(dtype=float)
                x = x[np.isfinite(x)]
                row: dict[str, Any] = {"policy": policy, "metric": metric, "n": int(x.size)}
                if metric in BINARY_METRICS:
                    low, high = stats.proportion_ci(int(x.sum()), int(x.size), confidence)
                else:
                    low, high = stats.mean_ci(x, confidence)
                row.update(mean=float(x.mean()) if x.size else math.nan, mean_ci_low=low, mean_ci_high=high)
                for name, q in (("median", 0.5), ("p90", 0.9), ("p99", 0.99)):
                    row[name] = float(np.quantile(x, q)) if x.size else math.nan
                    row[f"{name}_ci_low"], row[f"{name}_ci_high"] = stats.quantile_ci(x, q, confidence)
                rows.append(row)
        return pd.DataFrame(rows)

    def tradeoff(self, pipeline: str | None = None, confidence: float = stats.CONFIDENCE) -> pd.DataFrame:
        """Per policy: median lead time and SLA breach probability with intervals, and whether the
        policy is on the Pareto frontier (no other policy is at least as fast and as safe, and better in one).

        Lead time is the median over replications of each replication's median lead time: of every
        change, or with `pipeline` of that pipeline's changes only (a code bake moves code's lead time,
        which the many config changes would hide).
        """
        rows = []
        for policy in self.policies:
            frame = self.replications[self.replications["policy"] == policy]
            lead = self._lead_times_h(policy, pipeline)
            breaches, n = int(frame["sla_breach"].sum()), int(len(frame))
            lo, hi = stats.quantile_ci(lead, 0.5, confidence)
            b_lo, b_hi = stats.proportion_ci(breaches, n, confidence)
            rows.append({
                "policy": policy,
                **self.parameters.get(policy, {}),
                "lead_time_p50_h": float(np.median(lead)) if lead.size else math.nan,
                "lead_time_ci_low_h": lo, "lead_time_ci_high_h": hi,
                "breach_probability": breaches / n if n else math.nan,
                "breach_ci_low": b_lo, "breach_ci_high": b_hi,
                "downtime_mean_s": float(frame["downtime_s"].mean()),
            })
        out = pd.DataFrame(rows)
        out["on_frontier"] = pareto_front(out["lead_time_p50_h"].to_numpy(), out["breach_probability"].to_numpy())
        return out

    def _lead_times_h(self, policy: str, pipeline: str | None) -> np.ndarray:
        """Each replication's median lead time (hours) of deployed changes, of one pipeline or all."""
        if pipeline is None:
            lead = self.replications.loc[self.replications["policy"] == policy, "lead_time_p50_h"].to_numpy(dtype=float)
            return lead[np.isfinite(lead)]
        ch = self.changes
        if not len(ch):
            raise ValueError("per-pipeline lead time needs the changes frame (run with keep_changes=True)")
        mine = ch[(ch["policy"] == policy) & (ch["pipeline"] == pipeline) & (ch["outcome"] == "deployed")]
        return mine.groupby("replication")["lead_time_s"].median().to_numpy(dtype=float) / 3600.0

    def paired(self, metrics: list[str] | None = None, baseline: str | None = None,
               confidence: float = stats.CONFIDENCE) -> pd.DataFrame:
        """Each policy minus the baseline, replication by replication (common random numbers), with
        the paired interval and, for comparison, the interval that ignores the pairing. A yes/no figure
        (SLA breach) gets the exact paired-proportion interval; a figure whose differences have no
        spread gets no interval (NaN), as resampling cannot bound it."""
        base = baseline or self.baseline or self.policies[0]
        if base not in self.policies:
            raise ValueError(f"unknown baseline policy {base!r}; policies: {', '.join(self.policies)}")
        wide = {p: f.set_index("replication") for p, f in self.replications.groupby("policy", sort=False)}
        rows = []
        for policy in self.policies:
            if policy == base:
                continue
            a, b = wide[base].align(wide[policy], join="inner", axis=0)
            for metric in metrics or list(SUMMARY_METRICS):
                binary = metric in BINARY_METRICS
                diff, low, high = stats.paired_difference_ci(b[metric], a[metric], confidence, binary=binary)
                _, u_low, u_high = stats.unpaired_difference_ci(b[metric], a[metric], confidence, binary=binary)
                rows.append({"policy": policy, "baseline": base, "metric": metric, "mean_difference": diff,
                             "ci_low": low, "ci_high": high, "unpaired_ci_low": u_low, "unpaired_ci_high": u_high})
        return pd.DataFrame(rows)


def pareto_front(lead_time, breach) -> np.ndarray:
    """True where no other point is at least as good in both (smaller is better) and better in one."""
    x, y = np.asarray(lead_time, dtype=float), np.asarray(breach, dtype=float)
    out = np.zeros(x.size, dtype=bool)
    for i in range(x.size):
        if not (np.isfinite(x[i]) and np.isfinite(y[i])):
            continue
        dominated = (x <= x[i]) & (y <= y[i]) & ((x < x[i]) | (y < y[i])) & np.isfinite(x) & np.isfinite(y)
        out[i] = not dominated.any()
    return out
