"""Error rate per region over time, with alarm thresholds, alarms that fired and the SLA line."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from ._common import ALARM_COLOR, SLA_COLOR, new_figure

DAY_S = 86400.0
THRESHOLD_STYLES = ("--", "-.", (0, (5, 2, 1, 2)), (0, (1, 1)))


def alarm_events(result) -> list[tuple[float, str, str, tuple[str, ...]]]:
    """Alarms that fired during a rollout: (time_s, pipeline, alarm name, regions of its stage)."""
    tl = result.timeline
    if "event" not in tl or tl.empty:
        return []
    out = []
    lay = result.records.layout
    for _, ev in tl[tl["event"] == "alarm"].iterrows():
        plan = result.records.plans[ev["pipeline"]]
        stage = next((s for s in plan.stages if s.name == ev["stage"]), None)
        regions = tuple(lay.region_names[r] for r in stage.regions) if stage is not None else ()
        out.append((float(ev["time_s"]), str(ev["pipeline"]), str(ev.get("alarm", "")), regions))
    return out


def error_rate(result, regions: Sequence[str] | None = None, sla_target_pct: float | None = None,
               days: tuple[float, float] | None = None, log_scale: bool = True) -> Figure:
    """One panel per region: error rate of each 5-minute interval (the SLA's), in percent.

    Horizontal lines: the thresholds of the scenario's `error_rate` alarms (those watch one-box,
    wave or region scopes, so a one-box's alarm can fire while its region's rate stays low) and the
    SLA line, the constant error rate that would use exactly the budget of `sla_target_pct`
    (100 % − target; default: the run's target). Red vertical lines: alarms that fired during a
    rollout in a stage covering the region. `days=(start, end)` zooms in.
    """
    target = result.sla_target_pct if sla_target_pct is None else float(sla_target_pct)
    up = result.uptime
    names = list(result.records.layout.region_names)
    if regions is not None:
        unknown = [r for r in regions if r not in names]
        if unknown:
            raise ValueError(f"unknown region(s) {unknown}; the fleet has {names}")
        names = list(regions)
    thresholds = [a for a in result.scenario.alarms.metric if a.metric == "error_rate"]
    alarms = alarm_events(result)
    n = len(names)
    fig = new_figure(11.0, 1.2 + 1.6 * n)
    axes = np.atleast_1d(fig.subplots(n, 1, sharex=True, sharey=True, squeeze=False)[:, 0])
    sla_rate_pct = 100.0 - target
    lo, hi = days if days is not None else (0.0, result.records.horizon_s / DAY_S)
    positive = up["error_rate"][up["error_rate"] > 0]
    # Log axes need a floor for intervals without errors: a decade under the smallest positive rate.
    floor = 10.0 ** np.floor(np.log10(100.0 * float(positive.min()))) if len(positive) else 1e-4
    faults = result.records.faults
    fault_seen = False
    for ax, region in zip(axes, names, strict=True):
        rows = up[up["region"] == region]
        x = rows["interval_start_s"].to_numpy(dtype=float) / DAY_S
        y = 100.0 * rows["error_rate"].to_numpy(dtype=float)
        ax.step(x, np.maximum(y, floor) if log_scale else y, where="post", color="#1f5fa8", linewidth=0.8,
                label="error rate per 5-min interval")
        for i, alarm in enumerate(thresholds):
            api = f", {alarm.api} API" if alarm.api else ""
            ax.axhline(100.0 * alarm.threshold, color="#ff7f0e", linestyle=THRESHOLD_STYLES[i % len(THRESHOLD_STYLES)],
                       linewidth=1.0, label=f"alarm {alarm.name} threshold ({100 * alarm.threshold:g}%{api})")
        ax.axhline(sla_rate_pct, color=SLA_COLOR, linewidth=1.3,
                   label=f"SLA {target:g}%: error rate {sla_rate_pct:.4g}% uses the whole budget")
        for t, _pipeline, _name, alarm_regions in alarms:
            if region in alarm_regions:
                ax.axvline(t / DAY_S, color=ALARM_COLOR, linewidth=1.0, alpha=0.8)
        r_index = result.records.layout.region_names.index(region)
        for f in faults:
            if f.region == r_index:
                ax.axvspan(f.start_s / DAY_S, f.end_s / DAY_S, color="#9467bd", alpha=0.25, linewidth=0)
                fault_seen = True
        fired = sum(region in a[3] and lo <= a[0] / DAY_S <= hi for a in alarms)
        ax.set_title(f"{region}: {fired} alarm(s) fired during rollouts", fontsize=10, loc="left")
        ax.set_ylabel("error rate (%)")
        if log_scale:
            ax.set_yscale("log")
    if log_scale:
        top = max(100.0 * float(up["error_rate"].max()) if len(up) else 1.0, sla_rate_pct,
                  *(100.0 * a.threshold for a in thresholds))
        axes[0].set_ylim(floor, min(100.0, top) * 2.0)
    start = f"{result.scenario.start:%Y-%m-%d}"
    axes[-1].set_xlabel(f"time since the start of the run, {start} (days)")
    axes[-1].set_xlim(lo, hi)
    handles, _ = axes[0].get_legend_handles_labels()
    handles.append(Line2D([], [], color=ALARM_COLOR, linewidth=1.0, label="alarm fired (rollout rolled back)"))
    if fault_seen:
        handles.append(Patch(color="#9467bd", alpha=0.25, label="infrastructure fault (AZ outage, dependency)"))
    fig.legend(handles=handles, loc="outside lower center", ncol=2, fontsize=9, frameon=False)
    fig.suptitle("Error rate per region, 5-minute intervals (the averaged-error-rate SLA's)")
    return fig


__all__ = ["error_rate", "alarm_events"]
