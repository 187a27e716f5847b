"""Shared helpers of the plot functions: figures without pyplot, policy colours, units."""

from __future__ import annotations

import textwrap
from collections.abc import Iterable

import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.ticker import ScalarFormatter

# Colours of rollout activities, shared by the functions that draw them.
DEPLOY_COLOR = "#1f5fa8"
BAKE_COLOR = "#f0a830"
BLOCKED_COLOR = "#7f7f7f"
WAIT_COLOR = "#d9d9d9"
ALARM_COLOR = "#d62728"
SLA_COLOR = "#000000"


def new_figure(width: float, height: float) -> Figure:
    """A figure that needs no pyplot state (works headless and in notebooks)."""
    return Figure(figsize=(width, height), layout="constrained")


def policy_colors(policies: Iterable[str]) -> dict[str, tuple]:
    """One stable colour per policy, in order of appearance."""
    cmap = colormaps["tab10"]
    return {p: cmap(i % 10) for i, p in enumerate(policies)}


def policies_of(frame: pd.DataFrame) -> list[str]:
    """The frame's policies in order of appearance ([""] when it has no `policy` column)."""
    if "policy" not in frame.columns:
        return [""]
    return list(dict.fromkeys(frame["policy"].astype(str)))


def rows_of(frame: pd.DataFrame, policy: str) -> pd.DataFrame:
    if "policy" not in frame.columns:
        return frame
    return frame[frame["policy"].astype(str) == policy]


def plain_numbers(axis) -> None:
    """Tick labels as plain numbers (99.95, not an offset like +9.99e1)."""
    formatter = ScalarFormatter(useOffset=False)
    formatter.set_scientific(False)
    axis.set_major_formatter(formatter)


def require_columns(frame: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} needs the column(s) {missing}; it has {list(frame.columns)}")


def duration_label(seconds: float) -> str:
    """A short human duration: 45 s, 12.5 min, 3.2 h, 4.1 d."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.1f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def wrap_label(text: str, width: int) -> str:
    """`text` broken into lines of at most `width` characters, so a long policy name cannot run into
    the next panel's legend; continuation lines are indented to read as one entry."""
    return textwrap.fill(text, width=width, subsequent_indent="  ", break_on_hyphens=False)
