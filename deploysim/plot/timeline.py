"""Rollout timeline of one change: a Gantt chart of its stages and steps."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
from matplotlib.artist import Artist
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from ..figures import bad_in_production
from ._common import (
    ALARM_COLOR,
    BAKE_COLOR,
    BLOCKED_COLOR,
    DEPLOY_COLOR,
    WAIT_COLOR,
    duration_label,
    new_figure,
)

# Segment kinds, in legend order: (label, face colour, hatch).
SEGMENT_STYLES = {
    "deploy": ("deploying", DEPLOY_COLOR, None),
    "bake": ("baking", BAKE_COLOR, None),
    "blocked": ("blocked (time window, incident, freeze)", "white", "////"),
    "wait": ("queued behind another version", WAIT_COLOR, None),
}
# Height (inches) of a timeline with a zoom inset, whatever its number of rows.
MIN_HEIGHT_WITH_INSET_IN = 4.8


@dataclass
class Segment:
    kind: str  # one of SEGMENT_STYLES
    row: int
    start_s: float
    end_s: float


@dataclass
class ChangeJourney:
    """What happened to one change, in simulated seconds, read from the run's timeline."""

    change_id: int
    pipeline: str
    row_labels: list[str]
    segments: list[Segment]
    alarms: list[tuple[float, int, str]]  # (time_s, row, alarm name)
    rollbacks: list[tuple[float, float, str]]  # (start_s, end_s, reason)
    people_s: list[float]  # found by people
    complete_s: float | None


def default_change(result) -> int:
    """The first bad change that reached production, else the first change."""
    ch = result.changes
    if ch.empty:
        raise ValueError("the run has no changes to draw")
    bad_prod = bad_in_production(ch)
    pick = bad_prod if len(bad_prod) else ch
    return int(pick["change_id"].min())


def _rows(plan) -> tuple[list[str], dict[tuple[str, str], int], dict[str, int]]:
    """One row per step of every stage: labels, (stage, step) -> row, stage -> its first row."""
    labels: list[str] = []
    index: dict[tuple[str, str], int] = {}
    first: dict[str, int] = {}
    for stage in plan.stages:
        first[stage.name] = len(labels)
        for step in stage.steps:
            index[(stage.name, step.name)] = len(labels)
            if step.kind == "preprod":
                labels.append(f"{stage.name} (pre-production)")
            else:
                n = int(step.hosts.size)
                labels.append(f"{stage.name} · {step.name} ({n} host{'s' if n != 1 else ''})")
    return labels, index, first


def change_journey(result, change_id: int) -> ChangeJourney:
    """The segments of the Gantt chart of `change_id`.

    A change rides a version as one of its new changes; a newer version that supersedes it while
    queued for a stage takes it over, and a version cancelled by another change's rollback is rebuilt
    without the culprit. The `changes` field of `stage_start` events says which changes a version
    carries into each stage, so every version that carried the change contributes its events from
    then on (a version built with it, from its build).
    """
    ch = result.changes
    match = ch[ch["change_id"] == change_id]
    if match.empty:
        raise ValueError(f"no change {change_id} in this run")
    pipeline = str(match["pipeline"].iloc[0])
    plan = result.records.plans[pipeline]
    labels, row_of, first_row = _rows(plan)
    stage_names = [s.name for s in plan.stages]
    tl = result.timeline
    tl = tl[tl["pipeline"] == pipeline]

    def carries(value) -> bool:
        return isinstance(value, (list, tuple)) and change_id in value

    if "changes" in tl:
        carried = tl[tl["event"].isin(["version_built", "stage_start"]) & tl["changes"].map(carries)]
    else:
        carried = tl.iloc[:0]
    segments: list[Segment] = []
    alarms: list[tuple[float, int, str]] = []
    rollbacks: list[tuple[float, float, str]] = []
    complete_s: float | None = None
    for version, takeover in carried.groupby("version", sort=False):
        first_idx = takeover.index.min()
        own = tl[tl["version"] == version]
        before = own[own.index < first_idx]
        events = own[own.index >= first_idx]
        times = events["time_s"].to_numpy(dtype=float)
        last_t = float(before["time_s"].iloc[-1]) if len(before) else float(times[0])
        stage, step_row = None, None
        k_stage = -1  # index of the version's current stage
        rollback_start = None
        for i, (_, ev) in enumerate(events.iterrows()):
            t = float(ev["time_s"])
            # A version's activity lasts until its next event (or the end of the run, still in flight).
            nxt = float(times[i + 1]) if i + 1 < len(times) else max(t, result.records.horizon_s)
            kind = ev["event"]
            if kind == "stage_start":
                stage = ev["stage"]
                k_stage = stage_names.index(stage)
                step_row = first_row[stage]
                if t > last_t:
                    segments.append(Segment("wait", step_row, last_t, t))
            elif kind == "blocked":
                assert stage is not None  # every version's stage events follow its stage_start
                until = float(ev["until_s"]) if pd.notna(ev.get("until_s")) else nxt
                # A step after the stage's first is blocked on its own row (see `Blockers.check`).
                step = ev.get("step")
                row = row_of.get((stage, step), first_row[stage]) if isinstance(step, str) else first_row[stage]
                segments.append(Segment("blocked", row, t, min(until, nxt)))
            elif kind == "preprod_start":
                assert stage is not None
                step_row = row_of[(stage, "preprod")]
                segments.append(Segment("deploy", step_row, t, nxt))
            elif kind == "step_start":
                assert stage is not None
                step_row = row_of[(stage, ev["step"])]
                segments.append(Segment("deploy", step_row, t, nxt))
            elif kind == "bake_start":
                assert stage is not None
                step_row = row_of[(stage, ev["step"])]
                segments.append(Segment("bake", step_row, t, nxt))
            elif kind == "alarm":
                alarms.append((t, step_row if step_row is not None else 0, str(ev.get("alarm", ""))))
            elif kind == "rollback_start":
                rollback_start = t
            elif kind == "rollback_end" and rollback_start is not None:
                rollbacks.append((rollback_start, t, "alarm"))
                rollback_start = None
            elif kind == "superseded":
                # Queued for the next stage when a newer version took over its changes.
                k = k_stage + 1
                if k < len(stage_names) and t > last_t:
                    segments.append(Segment("wait", first_row[stage_names[k]], last_t, t))
            elif kind == "complete":
                complete_s = t
            last_t = t
        if rollback_start is not None:  # still rolling back when the run ended
            rollbacks.append((rollback_start, result.records.horizon_s, "alarm"))
    # Found by people: their detection event names the change; the revert ends with a rollback_end.
    people_s: list[float] = []
    if "change" in tl:
        found = tl[(tl["event"] == "human_detection") & (tl["change"] == change_id)]
        for idx, ev in found.iterrows():
            people_s.append(float(ev["time_s"]))
            ends = tl[(tl.index > idx) & (tl["event"] == "rollback_end") & (tl["reason"] == "people")]
            end = float(ends["time_s"].iloc[0]) if len(ends) else result.records.horizon_s
            rollbacks.append((float(ev["time_s"]), end, "people"))
    segments = [s for s in segments if s.end_s > s.start_s or s.kind in ("deploy", "bake")]
    return ChangeJourney(change_id, pipeline, labels, segments, alarms, rollbacks, people_s, complete_s)


def rollout_timeline(result, change_id: int | None = None) -> Figure:
    """Gantt chart of one change's rollout: a row per stage step, time in hours since it entered its pipeline.

    Bars show deploying, baking, blocker waits (hatched) and queueing behind another version; a red
    line marks the alarm that fired, a red band the rollback, a dotted line the first request served
    by the bad version, a green line the moment it ran on every host. Default change: the first bad
    change that reached production, else the first change.
    """
    if change_id is None:
        change_id = default_change(result)
    journey = change_journey(result, change_id)
    row = result.changes.set_index("change_id").loc[change_id]
    arrival_s = float(row["arrival_s"])

    def hours(t_s: float) -> float:
        return (t_s - arrival_s) / 3600.0

    n_rows = len(journey.row_labels)
    fig = new_figure(12.0, 2.2 + 0.32 * n_rows)
    ax = fig.subplots()
    for kind, (label, color, hatch) in SEGMENT_STYLES.items():
        segs = [s for s in journey.segments if s.kind == kind]
        if not segs:
            continue
        ax.barh([s.row for s in segs], [max(hours(s.end_s) - hours(s.start_s), 0.0) for s in segs],
                left=[hours(s.start_s) for s in segs], height=0.6, color=color, hatch=hatch,
                edgecolor=BLOCKED_COLOR if hatch else color, linewidth=0.8, label=label)
    handles_extra: list[Artist] = []
    if not math.isnan(row["first_bad_s"]):
        ax.axvline(hours(row["first_bad_s"]), color=ALARM_COLOR, linestyle=":", linewidth=1.2,
                   label="first bad request")
    x_max = _x_max(journey, hours)
    for t, r, name in journey.alarms:
        right = hours(t) > 0.6 * x_max
        ax.axvline(hours(t), color=ALARM_COLOR, linewidth=1.5)
        ax.plot([hours(t)], [r], marker="X", markersize=11, color=ALARM_COLOR, linestyle="none")
        ax.annotate(f"alarm {name}", (hours(t), r), xytext=(-10 if right else 10, 14), textcoords="offset points",
                    color=ALARM_COLOR, fontsize=9, ha="right" if right else "left")
    if journey.alarms:
        handles_extra.append(Line2D([], [], color=ALARM_COLOR, marker="X", markersize=9, linewidth=1.5,
                                    label="alarm (rollback starts)"))
    for start, end, reason in journey.rollbacks:
        ax.axvspan(hours(start), hours(end), color=ALARM_COLOR, alpha=0.18, linewidth=0)
        before = [s.row for s in journey.segments if s.start_s <= start]
        r = max(before) if before else 0
        right = hours(start) > 0.6 * x_max
        ax.annotate(f"rollback {duration_label(end - start)}" + (" (by people)" if reason == "people" else ""),
                    (hours(end) if not right else hours(start), r), xytext=(-10 if right else 10, -16),
                    textcoords="offset points", color=ALARM_COLOR, fontsize=9, ha="right" if right else "left")
    if journey.rollbacks:
        handles_extra.append(Patch(color=ALARM_COLOR, alpha=0.18, label="rolling back"))
    for t in journey.people_s:
        ax.axvline(hours(t), color="purple", linewidth=1.5)
    if journey.people_s:
        handles_extra.append(Line2D([], [], color="purple", linewidth=1.5, label="found by people"))
    if journey.complete_s is not None:
        ax.axvline(hours(journey.complete_s), color="#2ca02c", linewidth=1.5, label="on every host")

    ax.set_yticks(range(n_rows), journey.row_labels, fontsize=9)
    ax.set_ylim(n_rows - 0.4, -0.6)
    if _zoom(ax, journey, float(row["first_bad_s"]), hours, x_max) is not None:
        # The inset takes a third of the chart's height: a chart of a few rows needs room for it and its labels.
        fig.set_size_inches(12.0, max(fig.get_figheight(), MIN_HEIGHT_WITH_INSET_IN))
    ax.set_xlabel("time since the change entered its pipeline (h)")
    ax.set_xlim(0.0, x_max * 1.04 + 0.1)
    ax.xaxis.set_major_locator(_hour_locator(x_max))
    ax.grid(axis="x", color="#e5e5e5", linewidth=0.8)
    ax.set_axisbelow(True)
    start = pd.Timestamp(result.scenario.start) + pd.Timedelta(seconds=arrival_s)
    kind = f"bad: {row['defect']}" if row["bad"] else "good"
    outcome = str(row["outcome"]).replace("_", " ")
    lead = f", lead time {row['lead_time_s'] / 3600:.1f} h" if not math.isnan(row["lead_time_s"]) else ""
    if not math.isnan(row["ttd_s"]):
        lead += f", detected after {duration_label(row['ttd_s'])}"
    if not math.isnan(row["ttr_s"]):
        lead += f", rolled back after {duration_label(row['ttr_s'])}"
    ax.set_title(f"Rollout of change {change_id} ({journey.pipeline}, {kind}): {outcome}{lead}\n"
                 f"entered the pipeline {start:%a %Y-%m-%d %H:%M} UTC", fontsize=11)
    handles, _ = ax.get_legend_handles_labels()
    fig.legend(handles=handles + handles_extra, loc="outside lower center", ncol=4, fontsize=9, frameon=False)
    return fig


def _zoom(ax, journey: ChangeJourney, first_bad_s: float, hours, x_max: float):
    """An inset on the alarm and the rollback when they are too short to see at the chart's scale."""
    marks = [t for t, _, _ in journey.alarms] + [s for s, _, _ in journey.rollbacks] + journey.people_s
    if not marks:
        return None
    t0 = min(marks + ([first_bad_s] if not math.isnan(first_bad_s) else []))
    t1 = max(marks + [e for _, e, _ in journey.rollbacks])
    pad = max(120.0, 0.25 * (t1 - t0))
    lo, hi = t0 - pad, t1 + pad
    if hours(hi) - hours(lo) > 0.1 * x_max:
        return None
    rows = sorted({s.row for s in journey.segments if s.end_s >= lo and s.start_s <= hi}
                  | {r for _, r, _ in journey.alarms})
    if not rows:
        return None
    alarm_row = journey.alarms[0][1] if journey.alarms else rows[0]
    # The staircase leaves the lower right empty after an early stop, the upper right after a late one.
    lower = alarm_row < len(journey.row_labels) / 2
    inset = ax.inset_axes([0.28, 0.06, 0.45, 0.34] if lower else [0.45, 0.58, 0.45, 0.34])
    at = {r: i for i, r in enumerate(rows)}
    since = "the first bad request" if not math.isnan(first_bad_s) else "the alarm"

    def minutes(t_s: float) -> float:
        return (t_s - t0) / 60.0

    for kind, (_, color, hatch) in SEGMENT_STYLES.items():
        segs = [s for s in journey.segments if s.kind == kind and s.row in at and s.end_s >= lo and s.start_s <= hi]
        if segs:
            inset.barh([at[s.row] for s in segs], [minutes(s.end_s) - minutes(s.start_s) for s in segs],
                       left=[minutes(s.start_s) for s in segs], height=0.6, color=color, hatch=hatch,
                       edgecolor=BLOCKED_COLOR if hatch else color, linewidth=0.8)
    if not math.isnan(first_bad_s):
        inset.axvline(minutes(first_bad_s), color=ALARM_COLOR, linestyle=":", linewidth=1.2)
    for t, r, _ in journey.alarms:
        inset.axvline(minutes(t), color=ALARM_COLOR, linewidth=1.5)
        inset.plot([minutes(t)], [at.get(r, 0)], marker="X", markersize=9, color=ALARM_COLOR, linestyle="none")
    for start, end, _ in journey.rollbacks:
        inset.axvspan(minutes(start), minutes(end), color=ALARM_COLOR, alpha=0.18, linewidth=0)
    for t in journey.people_s:
        inset.axvline(minutes(t), color="purple", linewidth=1.5)
    inset.set_yticks(range(len(rows)), [journey.row_labels[r].split(" · ")[-1] for r in rows], fontsize=8)
    inset.set_ylim(len(rows) - 0.4, -0.6)
    inset.set_xlim(minutes(lo), minutes(hi))
    inset.tick_params(axis="x", labelsize=8)
    inset.set_xlabel(f"time since {since} (min)", fontsize=8)
    if lower:
        # Low in the chart, the inset's own axis goes on top: below, it would sit on the chart's tick labels.
        inset.xaxis.tick_top()
        inset.xaxis.set_label_position("top")
        inset.set_xlabel(f"zoom on detection and rollback: time since {since} (min)", fontsize=8)
    else:
        inset.set_title("zoom on detection and rollback", fontsize=8)
    ax.indicate_inset([hours(lo), min(rows) - 0.45, hours(hi) - hours(lo), len(rows) - 0.1], inset_ax=inset,
                      edgecolor="#555555")
    return inset


def _x_max(journey: ChangeJourney, hours) -> float:
    ends = [hours(s.end_s) for s in journey.segments] + [hours(e) for _, e, _ in journey.rollbacks]
    if journey.complete_s is not None:
        ends.append(hours(journey.complete_s))
    return max(ends + [0.25])


def _hour_locator(span_h: float):
    from matplotlib.ticker import MultipleLocator

    for step in (0.25, 0.5, 1, 2, 3, 6, 12, 24):
        if span_h / step <= 16:
            return MultipleLocator(step)
    return MultipleLocator(24 * math.ceil(span_h / 24 / 16))


__all__ = ["rollout_timeline", "change_journey", "default_change"]
