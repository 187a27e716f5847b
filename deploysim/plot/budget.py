"""Error-budget burn-down over a month, per region."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .. import sla
from ..world import SECONDS_PER_MONTH
from ._common import new_figure, policy_colors, wrap_label

DAY_S = 86400.0
INTERVAL_S = 300.0
# The legend's two columns under the 10-inch figure hold about this many characters each at font size 8.
LEGEND_CHARS_PER_COLUMN = 70


def budget_curves(result, sla_target_pct: float | None = None, month: int = 0,
                  regions: Sequence[str] | None = None) -> tuple[float, dict[str, pd.DataFrame]]:
    """Remaining error budget per region at every 5-minute boundary of one month.

    The averaged-error-rate definition read as time: each 5-minute interval uses error_rate × 300 s
    of the budget (1 − target) × the month's length. A month cut short by the end of the run counts
    only the simulated part, as `result.monthly` does, so the curve ends at the budget minus that
    month's `downtime_s`. Returns (budget_s, {region: frame with `time_s` (since the month's start)
    and `remaining_s`}).
    """
    target = result.sla_target_pct if sla_target_pct is None else float(sla_target_pct)
    up = result.uptime
    m0, m1 = month * SECONDS_PER_MONTH, (month + 1) * SECONDS_PER_MONTH
    rows = up[(up["interval_start_s"] >= m0) & (up["interval_start_s"] < m1)]
    if rows.empty:
        raise ValueError(f"the run has no month {month}")
    names = list(result.records.layout.region_names) if regions is None else list(regions)
    period_s = min(m1, result.records.horizon_s) - m0
    budget_s = sla.allowed_downtime(target, period_s)
    curves = {}
    for region in names:
        r = rows[rows["region"] == region]
        if r.empty:
            raise ValueError(f"unknown region {region!r}")
        starts = r["interval_start_s"].to_numpy(float) - m0
        # Uptime is 100% minus the mean interval error rate, read as time over the month (as
        # `result.monthly` does): each interval uses its rate times its share of the month, 300 s
        # in a whole month (a last, shorter interval of a cut-short run counts as one interval).
        used = np.cumsum(r["error_rate"].to_numpy(float)) * period_s / len(r)
        curves[region] = pd.DataFrame({
            "time_s": np.concatenate([[0.0], np.minimum(starts + INTERVAL_S, period_s)]),
            "remaining_s": budget_s - np.concatenate([[0.0], used]),
        })
    return budget_s, curves


def exhausted_at(curve: pd.DataFrame) -> float | None:
    """When the remaining budget first reaches zero (linear within an interval), or None."""
    t, rem = curve["time_s"].to_numpy(float), curve["remaining_s"].to_numpy(float)
    hit = np.flatnonzero(rem <= 0.0)
    if hit.size == 0:
        return None
    k = int(hit[0])
    if k == 0:
        return float(t[0])
    # Errors are spread evenly over an interval, so the budget falls linearly within it.
    return float(t[k - 1] + (t[k] - t[k - 1]) * rem[k - 1] / (rem[k - 1] - rem[k]))


def budget_burndown(result, sla_target_pct: float | None = None, month: int = 0,
                    regions: Sequence[str] | None = None) -> Figure:
    """Remaining error budget of each region over one month, with the zero line.

    A region whose budget runs out gets an × where it does, and the legend says on which day. The
    unit is minutes, or seconds for budgets under five minutes (e.g. 99.999 %).
    """
    target = result.sla_target_pct if sla_target_pct is None else float(sla_target_pct)
    budget_s, curves = budget_curves(result, target, month, regions)
    div, unit = (60.0, "min") if budget_s >= 300.0 else (1.0, "s")
    colours = policy_colors(curves)
    fig = new_figure(10.0, 5.5)
    ax = fig.subplots()
    for region, curve in curves.items():
        t_d = curve["time_s"].to_numpy(float) / DAY_S
        out = exhausted_at(curve)
        left = curve["remaining_s"].iloc[-1]
        label = f"{region}: " + (
            f"runs out on day {out / DAY_S:.2f}"
            if out is not None
            else f"{left / div:.3g} {unit} left ({100 * left / budget_s:.0f}%)"
            if budget_s
            else ""
        )
        ax.plot(t_d, curve["remaining_s"].to_numpy(float) / div, color=colours[region], linewidth=1.5,
                label=wrap_label(label, LEGEND_CHARS_PER_COLUMN))
        if out is not None:
            ax.plot([out / DAY_S], [0.0], marker="X", markersize=11, color=colours[region], linestyle="none",
                    markeredgecolor="black", zorder=4)
    ax.axhline(0.0, color="black", linewidth=1.2)
    end_d = max(c["time_s"].iloc[-1] for c in curves.values()) / DAY_S
    ax.plot([0.0, end_d], [budget_s / div, 0.0], color="#7f7f7f", linewidth=1.0, linestyle="--",
            label="budget spent evenly over the month")
    ax.axhline(budget_s / div, color="#7f7f7f", linewidth=0.8, linestyle=":")
    ax.annotate(f"budget {budget_s / div:.3g} {unit}", (0, budget_s / div), xytext=(4, 3), textcoords="offset points",
                fontsize=8, color="#7f7f7f")
    ax.set_xlabel(f"time since the start of month {month + 1} (days)")
    ax.set_ylabel(f"remaining error budget ({unit})")
    ax.set_xlim(0, end_d)
    ax.grid(color="#e5e5e5", linewidth=0.8)
    ax.set_title(f"Error-budget burn-down, month {month + 1}: SLA {target:g}% allows "
                 f"{budget_s / div:.3g} {unit} (averaged error rate × 5-min intervals)", fontsize=11)
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncol=2 if len(curves) > 2 else 1,
               fontsize=8, frameon=False)
    return fig


__all__ = ["budget_burndown", "budget_curves", "exhausted_at"]
