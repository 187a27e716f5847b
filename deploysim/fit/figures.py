"""Pictures of each fit against its data: arrivals by local hour and over time, every duration's CDF
and Q-Q plot against the fitted family, and the posteriors of the probabilities."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter
from scipy import stats

from ..plot._common import ALARM_COLOR, DEPLOY_COLOR, new_figure
from ..world import SECONDS_PER_MONTH
from .families import DurationFit
from .fitting import ArrivalProfile, Fit

FIT_COLOR = ALARM_COLOR
DATA_COLOR = DEPLOY_COLOR
WEEK_S = 7 * 86400.0


def arrivals_figure(profile: ArrivalProfile, window_s: float) -> Figure:
    """Left: share of changes by local hour (weekdays, weekends) against the fitted model, which spreads
    them evenly over the open hours. Right: changes so far against the fitted rate, with its 95% band."""
    fig = new_figure(10, 3.6)
    left, right = fig.subplots(1, 2)
    bins = np.arange(25)
    weekday = profile.hour[profile.weekday < 5]
    weekend = profile.hour[profile.weekday >= 5]
    n = max(profile.hour.size, 1)
    left.bar(bins[:-1] + 0.5, np.histogram(weekday, bins)[0] / n, width=0.9, color=DATA_COLOR, alpha=0.8,
             label="history, Mon-Fri")
    if weekend.size:
        left.bar(bins[:-1] + 0.5, np.histogram(weekend, bins)[0] / n, width=0.5, color="#7f7f7f",
                 label="history, Sat-Sun")
    if profile.working_hours_only:
        start, end = profile.working_hours
        expected = np.where((bins[:-1] >= start) & (bins[:-1] < end), 1.0 / (end - start), 0.0)
    else:
        expected = np.full(24, 1 / 24)
    left.step(bins, np.append(expected, expected[-1]), where="post", color=FIT_COLOR, lw=2, label="fitted")
    left.set_xlim(0, 24)
    left.set_xticks(range(0, 25, 3))
    left.set_xlabel(f"hour of day ({profile.timezone})")
    left.set_ylabel("share of changes")
    left.set_title(f"{profile.pipeline}: when changes arrive")
    left.legend(fontsize=8)
    weeks = np.sort(profile.offsets_s) / WEEK_S
    right.step(np.concatenate([[0], weeks]), np.arange(weeks.size + 1), where="post", color=DATA_COLOR,
               label="history")
    grid = np.linspace(0, window_s / WEEK_S, 100)
    rate = profile.rate_per_week
    right.plot(grid, rate * grid, color=FIT_COLOR, lw=2, label=f"fitted: {rate:.3g} per week")
    lo, hi = stats.poisson.ppf(0.025, rate * grid), stats.poisson.ppf(0.975, rate * grid)
    right.fill_between(grid, lo, hi, color=FIT_COLOR, alpha=0.15, label="95% of counts at that rate")
    right.set_xlabel("weeks since the history's start")
    right.set_ylabel("changes so far")
    right.set_title(f"{profile.pipeline}: changes over time")
    right.legend(fontsize=8, loc="upper left")
    return fig


def _log_minutes(axis) -> None:
    """Log-scale ticks as plain minutes (1, 10, 100), no crowded minor labels."""
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def duration_figure(label: str, d: DurationFit) -> Figure:
    """Left: the data's CDF against the fitted family's (and the best family by AIC when that differs).
    Right: Q-Q plot, the data's quantiles against the fitted family's (on the diagonal when it fits)."""
    fig = new_figure(10, 3.6)
    left, right = fig.subplots(1, 2)
    x = np.sort(d.values_s) / 60.0
    ecdf = _kaplan_meier(d.values_s, d.censored_s) if d.censored_s.size else np.arange(1, x.size + 1) / x.size
    what = f"history (n={x.size})" if not d.censored_s.size else \
        f"history, Kaplan-Meier (n={x.size}, +{d.censored_s.size} censored)"
    left.step(x, ecdf, where="post", color=DATA_COLOR, label=what)
    grid = np.geomspace(max(x.min() / 2, 1e-3), x.max() * 2, 200)
    left.plot(grid, d.cdf(grid * 60.0), color=FIT_COLOR, lw=2, label=f"fitted {d.chosen}")
    best = d.best if d.families else None
    if best is not None and best.family != d.chosen:
        left.plot(grid, best.dist.cdf(grid * 60.0), color="#555555", ls="--", label=f"{best.family} (best AIC)")
    left.set_xscale("log")
    _log_minutes(left.xaxis)
    left.set_xlabel("minutes (log scale)")
    left.set_ylabel("share at or below")
    left.set_title(f"{label}: CDF")
    left.legend(fontsize=8, loc="lower right")
    q = (np.arange(1, x.size + 1) - 0.5) / x.size
    if d.censored_s.size:  # plotting positions from the Kaplan-Meier estimate, half a step down
        q = np.clip(ecdf - np.diff(np.concatenate([[0.0], ecdf])) / 2, 1e-6, 1 - 1e-6)
    theory = d.ppf(q) / 60.0
    right.scatter(theory, x, s=12, color=DATA_COLOR, label="history")
    low, high = min(theory.min(), x.min()), max(theory.max(), x.max())
    right.plot([low, high], [low, high], color=FIT_COLOR, lw=1.5, label="perfect fit")
    if d.chosen != "fixed":
        right.set_xscale("log")
        right.set_yscale("log")
        _log_minutes(right.xaxis)
        _log_minutes(right.yaxis)
    else:
        right.text(0.5, 0.3, f"every value is {x[0]:g} min: fitted as fixed", transform=right.transAxes,
                   ha="center", fontsize=9)
    right.set_xlabel(f"fitted {d.chosen} quantile (minutes)")
    right.set_ylabel("history quantile (minutes)")
    right.set_title(f"{label}: Q-Q")
    right.legend(fontsize=8, loc="upper left")
    return fig


def _kaplan_meier(observed_s: np.ndarray, censored_s: np.ndarray) -> np.ndarray:
    """The Kaplan-Meier estimate of the CDF at each observed duration (sorted), given durations
    known only to be longer than `censored_s`."""
    observed = np.sort(observed_s)
    survival, out = 1.0, []
    for t in observed:
        at_risk = np.sum(observed >= t) + np.sum(censored_s >= t)
        survival *= 1 - 1 / at_risk
        out.append(1 - survival)
    return np.array(out)


def probabilities_figure(fit: Fit) -> Figure | None:
    """Each fitted probability's posterior, its 95% interval shaded, the observed share marked."""
    rows = [e for e in fit.estimates if e.unit == "probability" and e.posterior is not None]
    if not rows:
        return None
    fig = new_figure(10, 1.6 + 1.1 * len(rows))
    axes = fig.subplots(len(rows), 1, squeeze=False)[:, 0]
    for ax, e in zip(axes, rows, strict=True):
        a, b = e.posterior["beta"] if e.posterior else (1, 1)
        hi_x = min(1.0, stats.beta.ppf(0.9995, a, b) * 1.1)
        grid = np.linspace(0, hi_x, 400)
        dens = stats.beta.pdf(grid, a, b)
        ax.plot(grid * 100, dens, color=FIT_COLOR)
        inside = (grid >= e.low) & (grid <= e.high)
        ax.fill_between(grid[inside] * 100, dens[inside], color=FIT_COLOR, alpha=0.2)
        k, n = a - 0.5, a + b - 1
        ax.axvline(k / n * 100 if n else 0, color=DATA_COLOR, ls="--")
        ax.set_yticks([])
        ax.set_ylabel(e.label, rotation=0, ha="right", va="center", fontsize=8)
        ax.text(0.99, 0.8, f"{k:.0f}/{n:.0f} = {k / n:.1%}; 95% [{e.low:.1%}, {e.high:.1%}]" if n else "",
                transform=ax.transAxes, ha="right", fontsize=8)
    axes[-1].set_xlabel("percent (curve: posterior; shaded: 95% interval; dashed: observed share)")
    return fig


FAULT_KINDS = {"az outage": ("infrastructure", ("az", "")), "region event": ("infrastructure", ("region",)),
               "dependency degradation": ("dependency", ("",))}


def faults_figure(fit: Fit) -> Figure | None:
    """Each kind of fault seen: how many so far over the window against the fitted rate, with the
    95% range of counts at that rate (a Poisson process stays inside it 95% of the time at each point)."""
    since = fit.history.since
    months = fit.history.window_s / SECONDS_PER_MONTH
    panels = []
    for kind, (cause, scopes) in FAULT_KINDS.items():
        starts = sorted((i.start - since).total_seconds() / SECONDS_PER_MONTH for i in fit.history.incidents
                        if since is not None and i.cause == cause and i.scope in scopes and i.start is not None)
        estimate = fit.estimate(f"faults: {kind} rate")
        if starts and estimate is not None:
            panels.append((kind, np.array(starts), estimate))
    if not panels:
        return None
    fig = new_figure(4.2 * len(panels), 3.4)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (kind, times, e) in zip(axes, panels, strict=True):
        count = len(times)
        ax.step(np.concatenate([[0], times, [months]]), np.concatenate([np.arange(count + 1), [count]]),
                where="post", color=DATA_COLOR, label=f"history ({count})")
        grid = np.linspace(0, months, 100)
        ax.plot(grid, e.value * grid, color=FIT_COLOR, lw=2,
                label=f"{e.status}: {e.value:.3g} per month" + ("" if e.status == "fitted" else " (kept)"))
        lo, hi = stats.poisson.ppf(0.025, e.value * grid), stats.poisson.ppf(0.975, e.value * grid)
        ax.fill_between(grid, lo, hi, color=FIT_COLOR, alpha=0.15, label="95% of counts at that rate")
        ax.set_xlabel("months since the history's start")
        ax.set_ylabel("faults so far")
        ax.set_title(kind)
        ax.legend(fontsize=8, loc="upper left")
    return fig
