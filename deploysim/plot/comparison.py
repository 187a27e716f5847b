"""Policy comparison: lead time against SLA breach probability, with the Pareto frontier."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ..experiments.experiment import pareto_front
from ._common import new_figure, policy_colors, require_columns, wrap_label

TRADEOFF_COLUMNS = ["policy", "lead_time_p50_h", "lead_time_ci_low_h", "lead_time_ci_high_h",
                    "breach_probability", "breach_ci_low", "breach_ci_high"]
# Point labels longer than this become numbers, with the names in a key below the axes.
MAX_POINT_LABEL_CHARS = 24
KEY_CHARS = 110  # a line of the key under the 8.5-inch figure at font size 8


def policy_comparison(tradeoff_frame: pd.DataFrame) -> Figure:
    """One point per policy: median lead time (h) against the probability of breaching the SLA (%).

    Error bars are the confidence intervals of the frame (`*_ci_low*`, `*_ci_high*`). The Pareto
    frontier (policies no other is faster *and* safer than) is drawn as a staircase, its points
    ringed: every policy off it is beaten on both figures by one on it. Points are labelled with the
    policy's name, or, when a name is long (a sweep's), with a number that a key below the axes explains.
    """
    require_columns(tradeoff_frame, TRADEOFF_COLUMNS, "policy_comparison")
    frame = tradeoff_frame.reset_index(drop=True)
    policies = [str(p) for p in frame["policy"]]
    colours = policy_colors(policies)
    x = frame["lead_time_p50_h"].to_numpy(float)
    y = 100.0 * frame["breach_probability"].to_numpy(float)
    xerr = np.vstack(
        [x - frame["lead_time_ci_low_h"].to_numpy(float), frame["lead_time_ci_high_h"].to_numpy(float) - x]
    )
    yerr = np.vstack([y - 100.0 * frame["breach_ci_low"].to_numpy(float),
                      100.0 * frame["breach_ci_high"].to_numpy(float) - y])
    xerr, yerr = np.clip(np.nan_to_num(xerr), 0, None), np.clip(np.nan_to_num(yerr), 0, None)
    fig = new_figure(8.5, 6.0)
    ax = fig.subplots()
    on_front = (frame["on_frontier"].to_numpy(bool) if "on_frontier" in frame
                else pareto_front(frame["lead_time_p50_h"], frame["breach_probability"]))
    idx = sorted(np.flatnonzero(on_front).tolist(), key=lambda i: (x[i], y[i]))
    front = [policies[i] for i in idx]
    if idx:
        fx, fy = x[idx], y[idx]
        ax.step(fx, fy, where="post", color="#2ca02c", linewidth=2.0, alpha=0.8, zorder=1,
                label="Pareto frontier (nothing is faster and safer)")
        ax.scatter(fx, fy, s=260, facecolors="none", edgecolors="#2ca02c", linewidths=2.0, zorder=3,
                   label="on the frontier")
    # Long names (a sweep's "path=value, path=value") beside the points would push the axes into a
    # sliver under constrained layout: the points then carry a number, and a key below gives the names.
    keyed = any(len(p) > MAX_POINT_LABEL_CHARS for p in policies)
    tags = [str(i + 1) if keyed else p for i, p in enumerate(policies)]
    labels: list = []
    points: list[Any] = []  # errorbar containers: legend handles, though not Artists to the stubs
    for i, p in enumerate(policies):
        points.append(ax.errorbar(x[i], y[i], xerr=xerr[:, i:i + 1], yerr=yerr[:, i:i + 1], fmt="o", markersize=7,
                                  color=colours[p], ecolor=colours[p], elinewidth=1.2, capsize=4, zorder=2, label=p))
        labels.append(ax.annotate(tags[i], (x[i], y[i]), xytext=(8, 6), textcoords="offset points", fontsize=9,
                                  color=colours[p], fontweight="bold" if p in front else "normal"))
    ax.set_xlabel("lead time, median over replications (h)")
    ax.set_ylabel("SLA breach probability (%)")
    ax.set_title("Policies: speed against safety, down and left is better", fontsize=11)
    ax.set_xlim(left=0)
    top = float(np.nanmax(y + yerr[1])) if len(y) else 100.0
    ax.set_ylim(min(0.0, float(np.nanmin(y - yerr[0])) if len(y) else 0.0), top * 1.12 + 1.0)
    ax.grid(color="#e5e5e5", linewidth=0.8)
    ax.set_axisbelow(True)
    _declutter(fig, labels)
    handles, names = ax.get_legend_handles_labels()
    keep = [i for i, n in enumerate(names) if n not in policies]
    example = Line2D([], [], color="#555555", marker="o", linestyle="-", label="policy: median and confidence interval")
    ax.legend(handles=[example] + [handles[i] for i in keep], fontsize=8, loc="best")
    if keyed:
        key = [wrap_label(f"{tag}: {p}", KEY_CHARS) for tag, p in zip(tags, policies, strict=True)]
        fig.legend(handles=points, labels=key,
                   loc="outside lower center", ncol=1, fontsize=8, frameon=False, title="policies", title_fontsize=8)
    return fig


def _declutter(fig: Figure, labels: list) -> None:
    """Move point labels that would overlap an earlier one up, a line at a time."""
    fig.draw_without_rendering()
    placed: list = []
    for text in labels:
        for _ in range(len(labels) + 1):
            box = text.get_window_extent()
            if not any(box.overlaps(other) for other in placed):
                break
            dx, dy = text.xyann
            text.xyann = (dx, dy + 12)
        placed.append(text.get_window_extent())


__all__ = ["policy_comparison"]
