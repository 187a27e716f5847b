"""Fleet version map: which share of each region (or AZ, or cell) runs which version over time."""

from __future__ import annotations

import numpy as np
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from ._common import new_figure

DAY_S = 86400.0


def host_versions(result, pipeline: str) -> tuple[np.ndarray, np.ndarray]:
    """Every switch of the pipeline's artifact as (times_s, host-version matrix).

    Row i of the matrix is the version every host runs from times_s[i] until times_s[i + 1];
    row 0 is the start of the run (every host on version 0, the one it started with).
    """
    records = result.records
    if pipeline not in records.plans:
        raise ValueError(f"unknown pipeline {pipeline!r}; the scenario has {sorted(records.plans)}")
    switches = [s for s in records.switches if s["pipeline"] == pipeline]
    times = [0.0]
    current = np.zeros(records.layout.n_hosts, dtype=np.int64)
    states = [current.copy()]
    for s in switches:
        current[s["hosts"]] = s["version"]
        if s["time_s"] == times[-1]:
            states[-1] = current.copy()
        else:
            times.append(float(s["time_s"]))
            states.append(current.copy())
    return np.array(times), np.array(states)


def _build_days(result, pipeline: str) -> dict[int, float]:
    """Build time of each of the pipeline's versions, in days since the start (version 0: 0)."""
    out = {0: 0.0}
    for v in result.records.versions:
        if v.pipeline == pipeline:
            out[v.version_id] = v.built_s / DAY_S
    return out


def version_map(result, pipeline: str = "code", by: str = "region", days: tuple[float, float] | None = None,
                cmap: str = "viridis") -> Figure:
    """Share of hosts per version over time.

    `by="region"`: one stacked-area panel per region, each version a band coloured by when it was
    built (a colour bar gives the day), so a wave shows as a band growing across the region and a
    rollback as a band shrinking back. `by="az"` or `by="cell"`: a heat map with one row per AZ or
    cell, coloured by the build day of the version most of its hosts run. `days=(start, end)` zooms in.
    """
    if by not in ("region", "az", "cell"):
        raise ValueError(f"by must be 'region', 'az' or 'cell', got {by!r}")
    times, states = host_versions(result, pipeline)
    horizon = result.records.horizon_s
    edges_d = np.append(times, horizon) / DAY_S
    built = _build_days(result, pipeline)
    norm = Normalize(0.0, horizon / DAY_S)
    colours = colormaps[cmap]
    lay = result.records.layout
    start = f"{result.scenario.start:%Y-%m-%d}"
    if by == "region":
        n = lay.n_regions
        fig = new_figure(11.0, 1.0 + 1.35 * n)
        axes = np.atleast_1d(fig.subplots(n, 1, sharex=True, squeeze=False)[:, 0])
        for r, ax in enumerate(axes):
            hosts = lay.hosts_in_region(r)
            region_states = states[:, hosts]
            present = np.unique(region_states)
            x = np.repeat(edges_d, 2)[1:-1]  # step shape: each state holds until the next switch
            lower = np.zeros(times.size)
            for v in present.tolist():
                share = 100.0 * (region_states == v).sum(axis=1) / hosts.size
                upper = lower + share
                ax.fill_between(x, np.repeat(lower, 2), np.repeat(upper, 2), color=colours(norm(built.get(v, 0.0))),
                                linewidth=0.3, edgecolor="white")
                lower = upper
            ax.set_ylim(0, 100)
            ax.set_yticks([0, 50, 100])
            ax.set_ylabel("hosts (%)")
            ax.set_title(
                f"{lay.region_names[r]} ({hosts.size} hosts, {present.size} versions)", fontsize=10, loc="left"
            )
        axes[-1].set_xlabel(f"time since the start of the run, {start} (days)")
        axes[-1].set_xlim(*(days or (0, horizon / DAY_S)))
        fig.suptitle(f"Fleet version map, {pipeline} pipeline: share of each region's hosts per version")
        fig.colorbar(ScalarMappable(norm, colours), ax=list(axes), label="version built (day)", aspect=40)
        return fig

    groups = lay.host_az if by == "az" else lay.host_cell
    names = lay.az_names if by == "az" else lay.cell_names
    n = len(names)
    # The version most of a group's hosts run, then the day it was built.
    grid = np.zeros((n, times.size))
    for g in range(n):
        sub = states[:, groups == g]
        for i in range(times.size):
            values, counts = np.unique(sub[i], return_counts=True)
            grid[g, i] = built.get(int(values[np.argmax(counts)]), 0.0)
    fig = new_figure(11.0, 1.5 + 0.18 * n)
    ax = fig.subplots()
    mesh = ax.pcolormesh(edges_d, np.arange(n + 1), grid, cmap=colours, norm=norm, shading="flat")
    ax.set_yticks(np.arange(n) + 0.5, names, fontsize=7 if n > 30 else 9)
    ax.set_ylim(n, 0)
    ax.set_xlim(*(days or (0, horizon / DAY_S)))
    ax.set_ylabel(by.upper() if by == "az" else "cell")
    ax.set_xlabel(f"time since the start of the run, {start} (days)")
    ax.set_title(
        f"Fleet version map, {pipeline} pipeline: the version most hosts of each {by.upper() if by == 'az' else by} run"
    )
    fig.colorbar(mesh, ax=ax, label="version built (day)", aspect=40)
    return fig


__all__ = ["version_map", "host_versions"]
