"""Experiment results as text tables for the command line (every figure from the Experiment's frames)."""

from __future__ import annotations

import math
from typing import Any, Sequence

import pandas as pd

from ..durations import format_duration_s
from .experiment import Experiment

# metric -> (label, formatter of one value)
_UNITS = {
    "uptime_pct": ("monthly uptime", lambda v: f"{v:.4f}%"),
    "worst_region_uptime_pct": ("worst region's uptime", lambda v: f"{v:.4f}%"),
    "downtime_s": ("downtime per month", lambda v: format_duration_s(v)),
    "sla_breach": ("SLA breach probability", lambda v: f"{v:.3f}"),
    "service_credit_pct": ("service credit", lambda v: f"{v:.2f}%"),
    "failed_requests": ("failed requests (bad changes)", lambda v: f"{v:,.0f}"),
    "impact_minutes": ("customer-impact minutes", lambda v: f"{v:.1f}"),
    "ttd_p50_s": ("time to detect (p50)", lambda v: format_duration_s(v)),
    "ttr_p50_s": ("time to roll back (p50)", lambda v: format_duration_s(v)),
    "lead_time_p50_h": ("lead time (p50)", lambda v: f"{v:.1f} h"),
    "change_failure_rate": ("change failure rate", lambda v: f"{v * 100:.1f}%"),
    "false_rollbacks": ("false rollbacks per month", lambda v: f"{v:.2f}"),
    "deployments_per_week": ("deployments per week", lambda v: f"{v:.1f}"),
}


def _fmt(metric: str, value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return _UNITS[metric][1](value)


def _signed(metric: str, value: float) -> str:
    if not math.isfinite(value):
        return "n/a"
    text = _fmt(metric, abs(value))
    return ("+" if value >= 0 else "-") + text


def _table(header: Sequence[str], rows: list[Sequence[str]]) -> list[str]:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    out = []
    for row in [header, *rows]:
        cells = [str(row[0]).ljust(widths[0])] + [str(c).rjust(w) for c, w in zip(row[1:], widths[1:])]
        out.append("  " + "  ".join(cells).rstrip())
    return out


def _head(exp: Experiment) -> str:
    s = exp.settings
    return (f"{exp.n_replications} replication(s) of {s.months:g} month(s) each, seed {exp.seed}, "
            f"SLA target {s.sla_target_pct:g}%, credit table {s.credit_table}; intervals are 95%")


def format_monte_carlo(exp: Experiment) -> str:
    """One block per policy: each figure's mean with its interval, median, p90 and p99."""
    summary = exp.summary()
    out = [_head(exp)]
    for policy, frame in summary.groupby("policy", sort=False):
        out += ["", f"Policy {policy}"]
        rows = []
        for r in frame.itertuples():
            rows.append((_UNITS[r.metric][0], _fmt(r.metric, r.mean),
                         f"[{_fmt(r.metric, r.mean_ci_low)}, {_fmt(r.metric, r.mean_ci_high)}]",
                         _fmt(r.metric, r.median), _fmt(r.metric, r.p90), _fmt(r.metric, r.p99), str(r.n)))
        out += _table(("figure", "mean", "95% CI of mean", "median", "p90", "p99", "n"), rows)
    return "\n".join(out)


COMPARE_METRICS = ["sla_breach", "downtime_s", "worst_region_uptime_pct", "service_credit_pct", "failed_requests",
                   "ttd_p50_s", "ttr_p50_s", "lead_time_p50_h", "change_failure_rate", "false_rollbacks"]


def format_comparison(exp: Experiment, same_world: bool = True) -> str:
    """Policies side by side (mean of each figure), then each policy minus the baseline with paired intervals."""
    summary = exp.summary(COMPARE_METRICS).set_index(["policy", "metric"])
    policies = exp.policies
    out = [_head(exp), "", "Mean per replication"]
    rows = [(_UNITS[m][0], *[_fmt(m, summary.loc[(p, m), "mean"]) for p in policies]) for m in COMPARE_METRICS]
    out += _table(("figure", *policies), rows)
    if len(policies) > 1:
        paired = exp.paired(COMPARE_METRICS)
        base = paired["baseline"].iloc[0]
        out += ["", f"Difference from {base}, replication by replication (common random numbers)"]
        rows = []
        for r in paired.itertuples():
            rows.append((r.policy, _UNITS[r.metric][0], _signed(r.metric, r.mean_difference),
                         f"[{_signed(r.metric, r.ci_low)}, {_signed(r.metric, r.ci_high)}]",
                         f"[{_signed(r.metric, r.unpaired_ci_low)}, {_signed(r.metric, r.unpaired_ci_high)}]"))
        out += _table(("policy", "figure", "mean difference", "paired 95% CI", "unpaired 95% CI"), rows)
        if not same_world:
            out += ["", "note: these scenarios differ outside their policies (fleet, traffic, changes or faults),",
                    "      so replications share seeds but not every random draw; pairing helps less."]
    return "\n".join(out)


def format_tradeoff(frame: pd.DataFrame, title: str) -> str:
    """Lead time against breach probability per setting, frontier marked with '*'."""
    rows = []
    for r in frame.to_dict("records"):
        rows.append((("* " if r.get("on_frontier") else "  ") + str(r.get("setting", r.get("policy"))),
                     f"{r['lead_time_p50_h']:.1f} h" if math.isfinite(r["lead_time_p50_h"]) else "n/a",
                     f"{r['breach_probability']:.3f}",
                     f"[{r['breach_ci_low']:.3f}, {r['breach_ci_high']:.3f}]",
                     format_duration_s(r["downtime_mean_s"])))
    return "\n".join([title] + _table(("setting (* = Pareto frontier)", "lead time p50", "P(breach)",
                                       "95% CI", "mean downtime"), rows))
