"""A tornado chart of a sensitivity sweep: each variant's paired effect, with its interval, on
downtime per month and on median lead time, one row per variant, largest effects on top."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ._common import new_figure, require_columns

PANELS = (("d_downtime_s", "Δ downtime per month (min)", 1 / 60.0),
          ("d_lead_time_h", "Δ median lead time (h)", 1.0))


def sensitivity_tornado(variants: pd.DataFrame, width: float = 10.0) -> Figure:
    """Rows of `variants` (the frame of `deploysim.report.sensitivity`: setting, from, to, d_* with
    _low/_high) as horizontal intervals around each paired mean difference from the scenario as it is.
    Filled dots: the interval excludes zero (a clear effect); open: it does not; no bar: no interval."""
    cols = ["setting", "to"] + [f"{c}{s}" for c, _, _ in PANELS for s in ("", "_low", "_high")]
    require_columns(variants, cols, "sensitivity_tornado")
    frame = variants.copy()
    scale = frame["d_downtime_s"].abs() / max(frame["d_downtime_s"].abs().max(), 1e-12)
    scale = np.maximum(scale.fillna(0), frame["d_lead_time_h"].abs() / max(frame["d_lead_time_h"].abs().max(), 1e-12))
    frame = frame.assign(_size=scale.fillna(0)).sort_values("_size", kind="stable")
    labels = [f"{s} → {t}" for s, t in zip(frame["setting"], frame["to"], strict=True)]
    n = len(frame)
    fig = new_figure(width, max(2.5, 0.34 * n + 1.4))
    axes = fig.subplots(1, 2, sharey=True)
    y = np.arange(n)
    for ax, (col, title, factor) in zip(axes, PANELS, strict=True):
        mid = frame[col].to_numpy(float) * factor
        low = frame[f"{col}_low"].to_numpy(float) * factor
        high = frame[f"{col}_high"].to_numpy(float) * factor
        ax.axvline(0.0, color="#444444", linewidth=0.8)
        for i in range(n):
            if math.isfinite(low[i]) and math.isfinite(high[i]):
                ax.plot([low[i], high[i]], [y[i], y[i]], color="#1f5fa8", linewidth=2.2, solid_capstyle="butt")
                clear = low[i] > 0 or high[i] < 0
            else:
                clear = False
            if math.isfinite(mid[i]):
                ax.plot(mid[i], y[i], "o", markersize=5, color="#1f5fa8",
                        markerfacecolor="#1f5fa8" if clear else "white")
        ax.set_title(title, fontsize=10)
        ax.grid(axis="x", alpha=0.3)
        ax.tick_params(axis="x", labelsize=8)
    axes[0].set_yticks(y, labels, fontsize=8)
    axes[0].set_ylim(-0.6, n - 0.4)
    fig.suptitle("Effect of moving each setting one rung (paired mean difference, 95% interval)", fontsize=10)
    return fig
