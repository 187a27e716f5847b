"""Distributions over Monte Carlo replications: CDFs of per-change figures, histogram of uptime."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .. import sla
from ._common import (
    SLA_COLOR,
    new_figure,
    plain_numbers,
    policies_of,
    policy_colors,
    require_columns,
    rows_of,
    wrap_label,
)

# Known per-change columns: (what it is, divide by, unit).
COLUMN_UNITS = {
    "ttd_s": ("time to detect", 60.0, "min"),
    "ttr_s": ("time to roll back", 60.0, "min"),
    "lead_time_s": ("lead time", 3600.0, "h"),
    "blocked_s": ("time blocked", 3600.0, "h"),
    "baking_s": ("time baking", 3600.0, "h"),
    "lead_time_business_days": ("lead time", 1.0, "business days"),
    "impact_minutes": ("customer impact", 1.0, "min"),
    "failed_requests": ("failed requests", 1.0, "requests"),
    "peak_capacity_share": ("peak capacity share", 0.01, "%"),
}
# A legend under a 4.6-inch panel holds about this many characters at font size 8 (handle included).
LEGEND_CHARS_PER_PANEL = 52
CDF_NOTES = {
    "ttd_s": "bad changes an alarm or people caught",
    "ttr_s": "bad changes that reached production",
    "lead_time_s": "changes deployed everywhere",
}


def column_unit(column: str) -> tuple[str, float, str]:
    """(description, divisor, unit) of a per-change column; unknown `*_s` columns are in seconds."""
    if column in COLUMN_UNITS:
        return COLUMN_UNITS[column]
    if column.endswith("_s"):
        return column[:-2].replace("_", " "), 1.0, "s"
    return column.replace("_", " "), 1.0, ""


def _ecdf(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.sort(values)
    return x, np.arange(1, x.size + 1) / x.size * 100.0


def cdf(changes_frame: pd.DataFrame, columns: Sequence[str] = ("ttd_s", "ttr_s", "lead_time_s"),
        log_x: bool | str = "auto") -> Figure:
    """Empirical CDF of per-change figures, one panel per column, one step line per policy.

    Rows where a column is missing are left out of that panel (TTD and TTR exist only for bad
    changes that reached production, lead time only for changes deployed everywhere); the legend
    gives each policy's count and median. `log_x="auto"` uses a log time axis for a panel whose
    positive values span more than two decades (minutes for alarms, hours for people).
    """
    require_columns(changes_frame, columns, "cdf")
    policies = policies_of(changes_frame)
    colours = policy_colors(policies)
    panels = []  # (column, what, unit, log, [(policy, values, legend label)])
    for column in columns:
        what, div, unit = column_unit(column)
        values_all = pd.to_numeric(changes_frame[column], errors="coerce").to_numpy(float)
        positive = values_all[np.isfinite(values_all) & (values_all > 0)]
        log = (positive.size > 0 and positive.max() / positive.min() > 100.0) if log_x == "auto" else bool(log_x)
        series = []
        for p in policies:
            values = pd.to_numeric(rows_of(changes_frame, p)[column], errors="coerce").dropna().to_numpy(float) / div
            label = f"{p + ': ' if p else ''}n={values.size}"
            label += f", median {np.median(values):.3g} {unit}" if values.size else " (none)"
            series.append((p, values, wrap_label(label, LEGEND_CHARS_PER_PANEL)))
        panels.append((column, what, unit, log, series))
    n = len(columns)
    # Each panel's legend sits under it: the tallest one (wrapped long policy names) sets the height.
    legend_lines = max(sum(label.count("\n") + 1 for *_, label in panel[-1]) for panel in panels)
    fig = new_figure(4.6 * n + 0.4, 4.0 + 0.17 * legend_lines)
    axes = np.atleast_1d(fig.subplots(1, n, squeeze=False)[0])
    for ax, (column, what, unit, log, series) in zip(axes, panels, strict=True):
        for p, values, label in series:
            if values.size == 0:
                ax.plot([], [], color=colours[p], label=label)
                continue
            x, y = _ecdf(values)
            # Start the step at 0 % just left of the smallest value.
            ax.step(np.concatenate([[x[0]], x]), np.concatenate([[0.0], y]), where="post", color=colours[p],
                    linewidth=1.6, label=label)
        if log:
            ax.set_xscale("log")
        ax.set_xlabel(f"{what} ({unit}{', log scale' if log else ''})" if unit else what)
        ax.set_ylabel("share of changes at or below (%)")
        ax.set_ylim(0, 101)
        ax.set_yticks([0, 25, 50, 75, 100])
        ax.grid(color="#e5e5e5", linewidth=0.8)
        note = CDF_NOTES.get(column)
        ax.set_title(f"CDF of {what}" + (f"\n({note})" if note else ""), fontsize=10)
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), frameon=False)
    reps = changes_frame["replication"].nunique() if "replication" in changes_frame else 1
    fig.suptitle(f"Per-change figures over {reps} replication(s)" if reps > 1 else "Per-change figures")
    return fig


def uptime_histogram(replications_frame: pd.DataFrame, sla_target_pct: float = 99.9,
                     credit_table: str = "s3-standard", column: str = "uptime_pct", bins: int = 30) -> Figure:
    """Histogram of monthly uptime over replications, one series per policy.

    Marks the SLA target (solid black) and the boundaries of the service-credit tiers of
    `credit_table` (dashed, labelled with the credit below them); tiers off the axis are listed
    in a note. The legend gives each policy's share of replications below the target.
    """
    require_columns(replications_frame, [column], "uptime_histogram")
    tiers = sla.credit_tiers(credit_table) if isinstance(credit_table, str) else tuple(credit_table)
    policies = policies_of(replications_frame)
    colours = policy_colors(policies)
    values = pd.to_numeric(replications_frame[column], errors="coerce")
    lo = float(min(values.min(), sla_target_pct))
    hi = float(min(100.0, max(values.max(), sla_target_pct)))
    span = max(hi - lo, 1e-3)
    lo, hi = lo - 0.08 * span, min(100.0 + 1e-9, hi + 0.08 * span)
    edges = np.linspace(lo, hi, bins + 1)
    fig = new_figure(9.0, 4.8)
    ax = fig.subplots()
    series, labels = [], []
    for p in policies:
        v = pd.to_numeric(rows_of(replications_frame, p)[column], errors="coerce").dropna().to_numpy(float)
        below = 100.0 * float((v < sla_target_pct).mean()) if v.size else float("nan")
        series.append(v)
        labels.append(f"{p + ': ' if p else ''}{v.size} replications, {below:.0f}% below target")
    # Side by side within each bin, so policies with the same outcomes do not hide one another.
    ax.hist(series, bins=edges.tolist(), histtype="bar", color=[colours[p] for p in policies], label=labels,
            edgecolor="white", linewidth=0.3)
    ax.axvline(sla_target_pct, color=SLA_COLOR, linewidth=1.8, label=f"SLA target {sla_target_pct:g}%")
    off_axis = []
    for tier in tiers:
        if lo <= tier.below_pct <= hi:
            ax.axvline(tier.below_pct, color="#8c564b", linestyle="--", linewidth=1.2)
            ax.annotate(f"below {tier.below_pct:g}%: {tier.credit_pct:g}% credit", (tier.below_pct, 1.0),
                        xycoords=("data", "axes fraction"), xytext=(-4, -6), textcoords="offset points",
                        rotation=90, ha="right", va="top", fontsize=8, color="#8c564b")
        else:
            off_axis.append(f"below {tier.below_pct:g}%: {tier.credit_pct:g}%")
    table = credit_table if isinstance(credit_table, str) else "custom"
    ax.plot([], [], color="#8c564b", linestyle="--", label=f"service-credit tier ({table})")
    if off_axis:
        ax.plot([], [], linestyle="none", label="credit tiers off the axis: " + ", ".join(off_axis))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlim(lo, hi)
    plain_numbers(ax.xaxis)
    what = "uptime" if column == "uptime_pct" else column.removesuffix("_pct").replace("_", " ")
    ax.set_xlabel(f"monthly {what} (%)")
    ax.set_ylabel("replications (count)")
    ax.set_title(f"Monthly {what} over replications, SLA target {sla_target_pct:g}% "
                 f"(allowed downtime {sla.allowed_downtime(sla_target_pct) / 60:.3g} min / 30 days)", fontsize=11)
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncol=2, fontsize=8, frameon=False)
    return fig


__all__ = ["cdf", "uptime_histogram", "column_unit"]
