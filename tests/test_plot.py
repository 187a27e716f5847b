"""The plot functions draw what they claim: axes, series, labels with units, marks at the right places."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg", force=True)

import numpy as np
import pandas as pd
import pytest
from conftest import bad_change, good_change, patched, tiny_scenario_dict, with_changes
from matplotlib.collections import PathCollection, PolyCollection, QuadMesh
from matplotlib.container import BarContainer, ErrorbarContainer
from matplotlib.figure import Figure

import deploysim
from deploysim import plot
from deploysim.plot.budget import budget_curves, exhausted_at
from deploysim.plot.versions import host_versions
from deploysim.results import CHANGE_COLUMNS

H = 3600.0
DAY = 86400.0


# ---------------------------------------------------------------- helpers


def _render(fig: Figure) -> None:
    """Draw the figure (layout included) as a PNG, headless."""
    assert isinstance(fig, Figure)
    fig.savefig(io.BytesIO(), format="png", dpi=40)


def _bars(ax, label: str) -> list:
    """Rectangles of the bar series called `label`."""
    found = [c for c in ax.containers if isinstance(c, BarContainer) and c.get_label() == label]
    return [p for c in found for p in c.patches]


def _vlines(ax, color=None) -> list[float]:
    """x of every vertical line of the axes (optionally of one colour)."""
    out = []
    for line in ax.get_lines():
        x = np.asarray(line.get_xdata(), dtype=float)
        if x.size == 2 and x[0] == x[1] and (color is None or matplotlib.colors.same_color(line.get_color(), color)):
            out.append(float(x[0]))
    return out


def _hlines(ax) -> dict[str, float]:
    """label -> y of every horizontal line of the axes."""
    out = {}
    for line in ax.get_lines():
        y = np.asarray(line.get_ydata(), dtype=float)
        x = line.get_xdata()
        if y.size == 2 and y[0] == y[1] and list(x) == [0, 1]:
            out[line.get_label()] = float(y[0])
    return out


def _legend_texts(fig: Figure) -> list[str]:
    legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    return [t.get_text() for legend in legends for t in legend.get_texts()]


# ---------------------------------------------------------------- hand-made worlds


@pytest.fixture(scope="module")
def tiny_scenario():
    return deploysim.scenario_from_dict(tiny_scenario_dict())


@pytest.fixture(scope="module")
def bad_run(tiny_scenario):
    """One bad change at t=0: one-box 0-300 s, bake until the alarm at 480 s, rollback until 1080 s."""
    return with_changes(tiny_scenario, [bad_change(tiny_scenario)], months=0.01)


@pytest.fixture(scope="module")
def queued_run(tiny_scenario):
    """Three good changes: 0 takes the stage; 1 queues, and 2 supersedes it and carries it."""
    return with_changes(tiny_scenario, [good_change(0, 0.0), good_change(1, 60.0), good_change(2, 120.0)],
                        months=0.01)


# ---------------------------------------------------------------- rollout timeline


def test_rollout_timeline_of_a_rolled_back_change_marks_deploy_bake_alarm_and_rollback(bad_run):
    fig = plot.rollout_timeline(bad_run)  # default: the first bad change that reached production
    _render(fig)
    assert len(fig.axes) == 1
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["prod · one-box (1 host)", "prod · wave-1 (9 hosts)"]
    assert ax.get_xlabel().endswith("(h)")
    assert "change 0" in ax.get_title() and "rolled back" in ax.get_title()
    (deploy,) = _bars(ax, "deploying")
    assert deploy.get_x() == pytest.approx(0.0) and deploy.get_width() == pytest.approx(300 / H)
    (bake,) = _bars(ax, "baking")
    assert bake.get_x() == pytest.approx(300 / H) and bake.get_width() == pytest.approx(180 / H)
    assert _bars(ax, "blocked (time window, incident, freeze)") == []
    # Both bars sit on the one-box row; the wave never started.
    assert deploy.get_y() + deploy.get_height() / 2 == pytest.approx(0.0)
    # The first bad request (one-box deployed) and the alarm three 1-minute datapoints later.
    red = _vlines(ax, "#d62728")
    assert red == pytest.approx([300 / H, 480 / H])
    # The rollback band spans the 10-minute rollback.
    bands = [p for p in ax.patches if not any(p in c.patches for c in ax.containers)]
    assert len(bands) == 1
    box = bands[0].get_bbox()  # x in data units (a Rectangle or a Polygon, by matplotlib version)
    assert box.x0 == pytest.approx(480 / H) and box.x1 == pytest.approx(1080 / H)
    texts = _legend_texts(fig)
    for expected in ("deploying", "baking", "first bad request", "alarm (rollback starts)", "rolling back"):
        assert expected in texts


def test_rollout_timeline_follows_a_change_into_the_version_that_superseded_its_own(queued_run):
    """Change 1 queues in version 2 (60-120 s), which version 3 supersedes and carries it from the queue."""
    fig = plot.rollout_timeline(queued_run, change_id=1)
    _render(fig)
    ax = fig.axes[0]
    waits = _bars(ax, "queued behind another version")
    spans = [v for p in waits for v in (p.get_x() * H, (p.get_x() + p.get_width()) * H)]
    assert spans == pytest.approx([0.0, 60.0, 60.0, 1740.0])  # seconds since change 1 arrived (at 60 s)
    assert len(_bars(ax, "deploying")) == 2 and len(_bars(ax, "baking")) == 2
    # Version 3 deployed from 1800 s: the one-box bar starts 1740 s after change 1 arrived.
    assert min(p.get_x() for p in _bars(ax, "deploying")) == pytest.approx(1740 / H)
    assert _vlines(ax, "#2ca02c") == pytest.approx([(3600 - 60) / H])  # on every host
    assert "lead time 1.0 h" in ax.get_title() and "good" in ax.get_title()
    assert "alarm (rollback starts)" not in _legend_texts(fig)


def test_rollout_timeline_shows_blocker_waits_hatched(tiny_scenario):
    data = patched(tiny_scenario_dict(), "policy.pipelines.code.blockers.time_windows",
                   [{"days": ["Mon", "Tue", "Wed", "Thu", "Fri"], "start_hour": 9, "end_hour": 17}])
    scenario = deploysim.scenario_from_dict(data)
    result = with_changes(scenario, [good_change(arrival_s=6 * H)], months=0.05)
    ax = plot.rollout_timeline(result).axes[0]
    (blocked,) = _bars(ax, "blocked (time window, incident, freeze)")
    assert blocked.get_hatch() == "////"
    assert blocked.get_x() == pytest.approx(0.0) and blocked.get_width() == pytest.approx(3.0)  # 06:00 -> 09:00


def test_rollout_timeline_zooms_on_a_rollback_too_short_to_see(tiny_scenario):
    """Blocked from midnight to 09:00, then the one-box: the 13 minutes from the first bad request to
    the end of the rollback get an inset, in minutes since the first bad request."""
    data = patched(tiny_scenario_dict(), "policy.pipelines.code.blockers.time_windows",
                   [{"days": ["Mon", "Tue", "Wed", "Thu", "Fri"], "start_hour": 9, "end_hour": 17}])
    scenario = deploysim.scenario_from_dict(data)
    result = with_changes(scenario, [bad_change(scenario, arrival_s=0.0)], months=0.05)
    fig = plot.rollout_timeline(result)
    _render(fig)
    (ax,) = fig.axes
    (inset,) = ax.child_axes
    assert [t.get_text() for t in inset.get_yticklabels()] == ["one-box (1 host)"]
    # Low in the chart, the inset's axis is on top, clear of the chart's own tick labels.
    assert inset.get_xlabel() == "zoom on detection and rollback: time since the first bad request (min)"
    assert inset.xaxis.get_label_position() == "top"
    assert _overlapping_texts(fig) == []
    # Two rows of chart still leave the inset room for a readable bar (about an inch at the figure's dpi).
    assert inset.get_window_extent().height >= 0.9 * fig.dpi
    assert _vlines(inset, "#d62728") == pytest.approx([0.0, 3.0])  # first bad request, alarm
    (band,) = inset.patches[-1:]
    assert band.get_bbox().x0 == pytest.approx(3.0) and band.get_bbox().x1 == pytest.approx(13.0)
    # Without a rollback too short to see, there is no inset.
    assert not plot.rollout_timeline(with_changes(scenario, [good_change()], months=0.05)).axes[0].child_axes


def test_rollout_timeline_rejects_an_unknown_change(bad_run):
    with pytest.raises(ValueError, match="no change 99"):
        plot.rollout_timeline(bad_run, change_id=99)


# ---------------------------------------------------------------- version map


def test_host_versions_replays_every_switch(bad_run):
    times, states = host_versions(bad_run, "code")
    assert times.tolist() == [0.0, 300.0, 1080.0]
    assert states.sum(axis=1).tolist() == [0, 1, 0]  # the one-box runs version 1 from 300 s to 1080 s
    assert states[1, 0] == 1


def test_version_map_by_region_stacks_one_band_per_version(bad_run):
    fig = plot.version_map(bad_run)
    _render(fig)
    ax, colorbar = fig.axes
    bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(bands) == 2  # version 0 and the bad version 1
    # The band of version 1 (stacked on version 0) reaches 100% while only the one-box runs it:
    # it is 10% thick between 300 s and 1080 s.
    top = bands[1].get_paths()[0].vertices
    inside = top[(top[:, 0] > 300 / DAY) & (top[:, 0] < 1080 / DAY)]
    assert set(np.round(inside[:, 1], 6)) <= {90.0, 100.0}
    assert ax.get_ylabel() == "hosts (%)" and ax.get_ylim() == (0, 100)
    assert ax.get_xlabel().endswith("(days)")
    assert ax.get_title(loc="left").startswith("r1 (10 hosts, 2 versions)")
    assert "day" in colorbar.get_ylabel()
    zoomed = plot.version_map(bad_run, days=(0.0, 0.02)).axes[0]
    assert zoomed.get_xlim() == pytest.approx((0.0, 0.02))


def test_version_map_by_cell_is_a_heat_map_with_a_row_per_cell(bad_run):
    fig = plot.version_map(bad_run, by="cell")
    _render(fig)
    ax = fig.axes[0]
    assert sum(isinstance(c, QuadMesh) for c in ax.collections) == 1
    assert [t.get_text() for t in ax.get_yticklabels()] == ["r1-az1-c1"]
    with pytest.raises(ValueError, match="by must be"):
        plot.version_map(bad_run, by="host")
    with pytest.raises(ValueError, match="unknown pipeline"):
        plot.version_map(bad_run, pipeline="nope")


# ---------------------------------------------------------------- error rate


def test_error_rate_draws_thresholds_the_sla_line_and_the_alarm(bad_run):
    fig = plot.error_rate(bad_run)
    _render(fig)
    assert len(fig.axes) == 1  # one region
    ax = fig.axes[0]
    assert ax.get_ylabel() == "error rate (%)" and ax.get_xlabel().endswith("(days)")
    assert ax.get_title(loc="left").startswith("r1: 1 alarm(s)")
    lines = _hlines(ax)
    assert lines["alarm fault_rate threshold (50%)"] == pytest.approx(50.0)
    sla_label = next(k for k in lines if k.startswith("SLA 99.9%"))
    assert lines[sla_label] == pytest.approx(0.1)  # 100% - 99.9%
    assert _vlines(ax, "#d62728") == pytest.approx([480 / DAY])
    # The data: one step series of the 5-minute intervals, 10% while the one-box fails everything.
    (series,) = [ln for ln in ax.get_lines() if ln.get_label() == "error rate per 5-min interval"]
    y = np.asarray(series.get_ydata())
    assert y.size == len(bad_run.uptime)
    assert y[1] == pytest.approx(10.0, rel=0.05)  # interval 300-600 s
    assert len(_legend_texts(fig)) == 4  # series, one threshold, SLA, alarm
    other = plot.error_rate(bad_run, sla_target_pct=99.0)
    assert _hlines(other.axes[0])["SLA 99%: error rate 1% uses the whole budget"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="unknown region"):
        plot.error_rate(bad_run, regions=["mars-1"])


# ---------------------------------------------------------------- budget burn-down


def test_budget_burndown_runs_out_where_the_hand_computed_budget_does(bad_run):
    """99.9% of 0.01 month (25 920 s) allows 25.92 s; the one-box's 10% region error rate from 300 s
    uses 30 s per 5-minute interval (29.8 s: the run's 86.4 intervals count as 87, as in
    results.monthly), so the budget is gone about 260 s into the interval at 300 s."""
    budget_s, curves = budget_curves(bad_run, 99.9)
    assert budget_s == pytest.approx(25.92)
    out = exhausted_at(curves["r1"])
    assert out == pytest.approx(
        300.0 + 25.92 / (0.1 * 25920 / 87) * 300.0, abs=8.0
    )  # Poisson-sampled errors: about 2% noise on the rate
    fig = plot.budget_burndown(bad_run, 99.9)
    _render(fig)
    (ax,) = fig.axes
    assert ax.get_ylabel() == "remaining error budget (s)"  # under 5 minutes: seconds
    assert ax.get_xlabel().endswith("(days)")
    (marker,) = [ln for ln in ax.get_lines() if ln.get_marker() == "X"]
    assert marker.get_xdata()[0] == pytest.approx(out / DAY)
    assert marker.get_ydata()[0] == 0.0
    assert 0.0 in _hlines(ax).values()  # the zero line
    (curve,) = [ln for ln in ax.get_lines() if ln.get_label().startswith("r1:")]
    assert curve.get_label() == f"r1: runs out on day {out / DAY:.2f}"
    # The burn-down ends where results.monthly puts the month's downtime.
    assert curve.get_ydata()[-1] == pytest.approx(budget_s - bad_run.monthly["downtime_s"].iloc[0], abs=0.05)


def test_budget_burndown_in_minutes_for_a_loose_target(bad_run):
    ax = plot.budget_burndown(bad_run, 95.0).axes[0]  # 5% of 25 920 s = 21.6 min
    assert ax.get_ylabel() == "remaining error budget (min)"
    assert not [ln for ln in ax.get_lines() if ln.get_marker() == "X"]
    (curve,) = [ln for ln in ax.get_lines() if ln.get_label().startswith("r1:")]
    assert curve.get_ydata()[0] == pytest.approx(21.6)
    assert "min left" in curve.get_label()


# ---------------------------------------------------------------- Monte Carlo frames (hand-made)


def _changes_frame() -> pd.DataFrame:
    rows = []
    for policy, ttd in (("safe", [60.0, 120.0, 180.0]), ("fast", [600.0, 1200.0, np.nan])):
        for i, t in enumerate(ttd):
            row = dict.fromkeys(CHANGE_COLUMNS, np.nan)
            row.update(change_id=i, pipeline="code", bad=True, ttd_s=t, ttr_s=t + 600.0,
                       lead_time_s=(i + 1) * 3600.0, policy=policy, replication=i % 2)
            rows.append(row)
    return pd.DataFrame(rows)


def test_cdf_draws_one_step_line_per_policy_per_figure(bad_run):
    frame = _changes_frame()
    fig = plot.cdf(frame)
    _render(fig)
    assert len(fig.axes) == 3
    assert [ax.get_xlabel() for ax in fig.axes] == ["time to detect (min)", "time to roll back (min)", "lead time (h)"]
    for ax in fig.axes:
        assert ax.get_ylabel() == "share of changes at or below (%)"
        assert len(ax.get_lines()) == 2
        assert len(ax.get_legend().get_texts()) == 2
    safe, fast = fig.axes[0].get_lines()
    assert list(safe.get_xdata()) == [1.0, 1.0, 2.0, 3.0] and list(safe.get_ydata()) == pytest.approx(
        [0, 100 / 3, 200 / 3, 100]
    )
    assert list(fast.get_xdata()) == [10.0, 10.0, 20.0]  # the missing TTD is left out
    assert fig.axes[0].get_legend().get_texts()[1].get_text().startswith("fast: n=2")
    assert "CDF of time to detect" in fig.axes[0].get_title()
    assert all(ax.get_xscale() == "linear" for ax in fig.axes)  # 1-20 min: one decade and a bit
    single = plot.cdf(frame.drop(columns=["policy"]), columns=["ttd_s"])
    assert len(single.axes) == 1 and len(single.axes[0].get_lines()) == 1
    # Alarms in minutes and people in hours: more than two decades, so a log time axis.
    wide = frame.assign(ttd_s=[60.0, 120.0, 180.0, 7200.0, 36000.0, np.nan])
    ax = plot.cdf(wide, columns=["ttd_s"]).axes[0]
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "time to detect (min, log scale)"
    with pytest.raises(ValueError, match="needs the column"):
        plot.cdf(frame, columns=["nope_s"])


def _replications_frame() -> pd.DataFrame:
    return pd.DataFrame({
        "policy": ["safe"] * 4 + ["fast"] * 4,
        "replication": list(range(4)) * 2,
        "uptime_pct": [99.98, 99.97, 99.99, 99.96, 99.5, 99.95, 98.7, 99.92],
        "sla_breach": [False] * 4 + [True, False, True, False],
    })


def test_uptime_histogram_marks_the_sla_target_and_credit_tiers():
    fig = plot.uptime_histogram(_replications_frame(), sla_target_pct=99.9, credit_table="s3-standard")
    _render(fig)
    (ax,) = fig.axes
    assert ax.get_xlabel() == "monthly uptime (%)" and ax.get_ylabel() == "replications (count)"
    # One bar series per policy, side by side in each of the 30 bins.
    series = [c for c in ax.containers if isinstance(c, BarContainer)]
    assert [c.patches[0].get_facecolor() for c in series] == [
        matplotlib.colors.to_rgba(c) for c in matplotlib.colormaps["tab10"].colors[:2]]
    assert [len(c.patches) for c in series] == [30, 30]
    assert [sum(b.get_height() for b in c.patches) for c in series] == [4, 4]
    # SLA target, then the credit tiers on the axis (99.9% and 99.0%; 95.0% is off it).
    assert _vlines(ax, "black") == [99.9]
    assert sorted(_vlines(ax, "#8c564b")) == [99.0, 99.9]
    notes = [t.get_text() for t in ax.texts]
    assert sorted(notes) == ["below 99%: 25% credit", "below 99.9%: 10% credit"]
    texts = _legend_texts(fig)
    assert texts == ["safe: 4 replications, 0% below target", "fast: 4 replications, 50% below target",
                     "SLA target 99.9%", "service-credit tier (s3-standard)",
                     "credit tiers off the axis: below 95%: 100%"]
    assert "43.2 min" in ax.get_title()


def _tradeoff_frame() -> pd.DataFrame:
    # (lead time h, breach probability): C is beaten by B on both, E has B's breach rate but is slower.
    points = {"A": (10.0, 0.30), "B": (20.0, 0.10), "C": (30.0, 0.20), "D": (5.0, 0.50), "E": (40.0, 0.10)}
    return pd.DataFrame([
        {"policy": p, "lead_time_p50_h": x, "lead_time_ci_low_h": x - 1, "lead_time_ci_high_h": x + 2,
         "breach_probability": y, "breach_ci_low": max(y - 0.05, 0), "breach_ci_high": y + 0.05}
        for p, (x, y) in points.items()
    ])


def test_policy_comparison_draws_exactly_the_non_dominated_policies_on_the_frontier():
    fig = plot.policy_comparison(_tradeoff_frame())
    _render(fig)
    (ax,) = fig.axes
    assert ax.get_xlabel().endswith("(h)") and ax.get_ylabel() == "SLA breach probability (%)"
    assert sum(isinstance(c, ErrorbarContainer) for c in ax.containers) == 5
    (frontier,) = [ln for ln in ax.get_lines() if ln.get_label().startswith("Pareto frontier")]
    assert list(frontier.get_xdata()) == [5.0, 10.0, 20.0]
    assert list(frontier.get_ydata()) == pytest.approx([50.0, 30.0, 10.0])
    assert frontier.get_drawstyle() == "steps-post"
    (rings,) = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert sorted(map(tuple, rings.get_offsets().tolist())) == [(5.0, 50.0), (10.0, 30.0), (20.0, 10.0)]
    assert _legend_texts(fig) == ["policy: median and confidence interval",
                                  "Pareto frontier (nothing is faster and safer)", "on the frontier"]
    labels = {t.get_text(): t for t in ax.texts}
    assert set(labels) == {"A", "B", "C", "D", "E"}
    assert labels["B"].get_fontweight() == "bold" and labels["C"].get_fontweight() == "normal"
    # Error bars: lead time from low to high CI, breach in percent.
    bars = next(c for c in ax.containers if isinstance(c, ErrorbarContainer) and c.get_label() == "A")
    segments = [seg for coll in bars.lines[2] for seg in coll.get_segments()]
    assert any(np.allclose(seg, [[9.0, 30.0], [12.0, 30.0]]) for seg in segments)
    assert any(np.allclose(seg, [[10.0, 25.0], [10.0, 35.0]]) for seg in segments)


# ---------------------------------------------------------------- the real Monte Carlo frames


def test_plots_accept_the_frames_of_a_real_comparison(tiny_scenario):
    busy = patched(tiny_scenario_dict(), "changes.code.arrivals.changes_per_week", 40)
    busy = patched(busy, "changes.code.bad_probability", 0.3)
    fast = deploysim.scenario_from_dict(busy)
    slow = deploysim.scenario_from_dict(patched(busy, "policy.pipelines.code.stages.0.one_box.bake", "1h"))
    experiment = deploysim.compare({"10m bake": fast, "1h bake": slow}, replications=2, seed=3,
                                   months=0.05, workers=1, progress=False)
    changes = experiment.changes
    assert set(CHANGE_COLUMNS) <= set(changes.columns)
    fig = plot.cdf(changes)
    assert all(len(ax.get_lines()) == 2 for ax in fig.axes)
    hist = plot.uptime_histogram(experiment.replications, sla_target_pct=99.0)
    assert sum(isinstance(c, BarContainer) for c in hist.axes[0].containers) == 2
    comparison = plot.policy_comparison(experiment.tradeoff())
    assert sum(isinstance(c, ErrorbarContainer) for c in comparison.axes[0].containers) == 2
    for f in (fig, hist, comparison):
        _render(f)


def test_the_plot_package_exports_only_figure_functions():
    assert sorted(plot.__all__) == ["budget_burndown", "cdf", "error_rate", "policy_comparison",
                                    "rollout_timeline", "sensitivity_tornado", "uptime_histogram", "version_map"]


# ---------------------------------------------------------------- no label overlaps another


def _overlapping_texts(fig: Figure) -> list[tuple[str, str]]:
    """Pairs of drawn, non-empty texts whose boxes, as the renderer lays them out, overlap by more than a pixel.

    Only texts the renderer draws count: an axis keeps tick labels just outside its limits
    (visible, but never drawn), and those overlap nothing a reader sees.
    """
    from unittest import mock

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text

    drawn: dict[int, Text] = {}
    draw = Text.draw

    def recording_draw(text, renderer):
        drawn[id(text)] = text
        return draw(text, renderer)

    canvas = FigureCanvasAgg(fig)
    with mock.patch.object(Text, "draw", recording_draw):
        canvas.draw()
    renderer = canvas.get_renderer()
    boxes = []
    for text in drawn.values():
        if text.get_visible() and text.get_text().strip() and text.get_alpha() != 0:
            boxes.append((text.get_text(), text.get_window_extent(renderer).padded(-1.0)))
    return [(a, b) for i, (a, box_a) in enumerate(boxes) for b, box_b in boxes[i + 1:] if box_a.overlaps(box_b)]


def _sensitivity_frame(rows: int = 21) -> pd.DataFrame:
    """As many variants as aws-typical's sensitivity sweep has, with long setting names."""
    rng = np.random.default_rng(3)
    out = []
    for i in range(rows):
        d, lead = rng.normal(0, 30), rng.normal(0, 2)
        out.append({"setting": f"code later-wave bakes of every production stage {i}", "to": "4 h – 8 h",
                    "d_downtime_s": d, "d_downtime_s_low": d - 20, "d_downtime_s_high": d + 20,
                    "d_lead_time_h": lead, "d_lead_time_h_low": lead - 0.5, "d_lead_time_h_high": lead + 0.5})
    out[0].update(d_downtime_s_low=np.nan, d_downtime_s_high=np.nan)  # no interval: no bar, an open dot
    return pd.DataFrame(out)


def test_sensitivity_tornado_draws_one_row_per_variant_with_its_interval():
    frame = _sensitivity_frame()
    fig = plot.sensitivity_tornado(frame)
    _render(fig)
    left, right = fig.axes
    assert [t.get_text() for t in left.get_yticklabels()][-1].endswith("→ 4 h – 8 h")
    assert len(left.get_yticklabels()) == 21
    assert left.get_title() == "Δ downtime per month (min)" and right.get_title() == "Δ median lead time (h)"
    # Largest effect on top: the top row has the largest normalised effect of the frame.
    size = np.maximum(frame["d_downtime_s"].abs() / frame["d_downtime_s"].abs().max(),
                      frame["d_lead_time_h"].abs() / frame["d_lead_time_h"].abs().max())
    top_label = left.get_yticklabels()[-1].get_text()
    assert size[int(top_label.split(" → ")[0].rsplit(" ", 1)[1])] == size.max()


def test_the_overlap_check_sees_the_texts_a_reader_sees():
    """Two labels at one spot overlap; tick labels an axis keeps just outside its limits are never drawn."""
    fig = Figure(figsize=(4, 3))
    ax = fig.subplots()
    ax.plot([0.05, 20.95], [0, 1])  # the locator keeps ticks at 0 and 22.5, outside the limits
    assert _overlapping_texts(fig) == []
    ax.text(0.5, 0.5, "first label", transform=ax.transAxes)
    ax.text(0.5, 0.5, "second label", transform=ax.transAxes)
    assert _overlapping_texts(fig) == [("first label", "second label")]


def _long_named_changes_frame() -> pd.DataFrame:
    """Six policies, one with a name longer than a panel is wide, minutes to days apart."""
    rng = np.random.default_rng(1)
    names = ["aws-typical", "any hour", "any hour, short bakes", "any hour, no bakes",
             "code later-wave bakes of every production stage 4 h – 8 h, manual rollback", "no-safety"]
    return pd.DataFrame([
        {"policy": p, "replication": i % 5, "ttd_s": rng.lognormal(6, 2), "ttr_s": rng.lognormal(7, 2),
         "lead_time_s": rng.lognormal(9, 2)}
        for p in names for i in range(40)
    ])


def test_cdf_keeps_its_panels_readable_with_long_policy_names():
    """A long policy name wraps inside its panel's legend instead of pushing the panels apart."""
    fig = plot.cdf(_long_named_changes_frame())
    fig.savefig(io.BytesIO(), format="png")
    for ax in fig.axes:
        box = ax.get_window_extent()
        assert box.width >= 250 and box.height >= 200  # pixels at the figure's dpi
        long_entry = ax.get_legend().get_texts()[4].get_text()
        assert long_entry.startswith("code later-wave") and "\n" in long_entry
    assert _overlapping_texts(fig) == []


def _zoomed_rollback_run():
    """A bad change blocked until 09:00: its rollback is too short to see, so the timeline gets an inset."""
    data = patched(tiny_scenario_dict(), "policy.pipelines.code.blockers.time_windows",
                   [{"days": ["Mon", "Tue", "Wed", "Thu", "Fri"], "start_hour": 9, "end_hour": 17}])
    scenario = deploysim.scenario_from_dict(data)
    return with_changes(scenario, [bad_change(scenario, arrival_s=0.0)], months=0.05)


@pytest.mark.parametrize("name", ["rollout_timeline", "rollout_timeline_with_inset", "version_map", "error_rate",
                                  "budget_burndown", "cdf", "cdf_long_policy_names", "uptime_histogram",
                                  "policy_comparison", "sensitivity_tornado"])
def test_no_label_of_any_figure_overlaps_another(name, bad_run):
    figures = {
        "rollout_timeline": lambda: plot.rollout_timeline(bad_run),
        "rollout_timeline_with_inset": lambda: plot.rollout_timeline(_zoomed_rollback_run()),
        "version_map": lambda: plot.version_map(bad_run),
        "error_rate": lambda: plot.error_rate(bad_run),
        "budget_burndown": lambda: plot.budget_burndown(bad_run, 99.9),
        "cdf": lambda: plot.cdf(_changes_frame()),
        "cdf_long_policy_names": lambda: plot.cdf(_long_named_changes_frame()),
        "uptime_histogram": lambda: plot.uptime_histogram(_replications_frame(), sla_target_pct=99.9,
                                                          credit_table="s3-standard"),
        "policy_comparison": lambda: plot.policy_comparison(_tradeoff_frame()),
        "sensitivity_tornado": lambda: plot.sensitivity_tornado(_sensitivity_frame()),
    }
    fig = figures[name]()
    if name == "rollout_timeline_with_inset":
        assert fig.axes[0].child_axes  # the inset's labels are among those checked
    assert _overlapping_texts(fig) == []


# ---------------------------------------------------------------- figures of a sweep (long policy names)


@pytest.fixture(scope="module")
def sweep_experiment(tiny_scenario):
    """A 2 × 2 sweep, as notebook 02 runs one: its policies are named "path=value, path=value"."""
    bake = "policy.pipelines.code.stages[0].one_box.bake"
    return deploysim.sweep(tiny_scenario, {f"{bake}.duration": ["0s", "20m"], f"{bake}.min_datapoints": [0, 5]},
                           replications=2, seed=1, months=0.05, workers=1, progress=False)


def test_policy_comparison_of_a_sweep_keeps_a_readable_plot_area(sweep_experiment):
    """Notebook 02's comparison: long policy names beside the points once squashed the axes to a sliver;
    the points now carry numbers and a key below gives the names."""
    tradeoff = sweep_experiment.tradeoff()
    policies = list(tradeoff["policy"])
    assert min(len(p) for p in policies) > 40
    fig = plot.policy_comparison(tradeoff)
    fig.savefig(io.BytesIO(), format="png")  # at the figure's own dpi, as a notebook shows it
    (ax,) = fig.axes
    box = ax.get_window_extent()
    assert box.height >= 250 and box.width >= 400  # pixels at fig.dpi
    assert sorted(t.get_text() for t in ax.texts) == [str(i) for i in range(1, len(policies) + 1)]
    (key,) = fig.legends
    assert [t.get_text() for t in key.get_texts()] == [f"{i}: {p}" for i, p in enumerate(policies, 1)]
    assert _overlapping_texts(fig) == []


def test_uptime_histogram_of_a_sweep_keeps_a_readable_plot_area(sweep_experiment):
    fig = plot.uptime_histogram(sweep_experiment.replications, sla_target_pct=99.9)
    fig.savefig(io.BytesIO(), format="png")
    box = fig.axes[0].get_window_extent()
    assert box.height >= 250 and box.width >= 400
    assert _overlapping_texts(fig) == []
