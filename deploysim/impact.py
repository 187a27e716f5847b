"""What a finished run cost, asked of the metric model once at the end of the run: each bad
change's blast radius, and the failed requests per region and period that the SLA counts.

The engine calls these when its run ends and puts the answers in its records, so results never
need the metric model, the exposure log or a random generator.
"""

from __future__ import annotations

import math

import numpy as np

from .exposure import ExposureLog
from .fleet import FleetLayout
from .metrics import MetricModel
from .records import BlastRadius
from .world import FAULT_KINDS

DAY_OF_PERIODS = 1440  # periods asked of the metric model at once (a day of 1-minute periods): bounds memory


def blast_radius(metrics: MetricModel, layout: FleetLayout, exposures: ExposureLog, bad_idx: int,
                 horizon_s: float) -> BlastRadius:
    """Failed requests a bad change caused, its peak share of fleet capacity, and how far it reached."""
    ex, lay = exposures, layout
    rows = ex.rows_of(bad_idx)
    if rows.size == 0:
        return BlastRadius()
    hosts = np.unique(ex.host[rows])
    on, off = ex.on_s[rows], np.minimum(ex.off_s[rows], horizon_s)
    times = np.concatenate([on, off])
    # Weighted by each host's share of the fleet's requests (a one-box may take less than its host
    # count says, a big region more), so the peak is the share of traffic the change served at once.
    share = lay.region_weight[lay.host_region[ex.host[rows]]] * lay.host_weight[ex.host[rows]]
    deltas = np.concatenate([share, -share])
    order = np.lexsort((np.sign(deltas), times))  # closes before opens at the same instant
    peak_capacity_share = float(max(np.cumsum(deltas[order]).max(), 0.0))
    p = metrics.period_s
    k_lo = int(on.min() // p)
    k_hi = min(int(math.ceil(off.max() / p)), metrics.n_periods)
    failed = 0.0
    impacted = np.zeros(max(k_hi - k_lo, 0), dtype=bool)  # periods in which it failed requests anywhere
    for r in np.unique(lay.host_region[hosts]).tolist():
        region_hosts = lay.hosts_in_region(r)
        for k0 in range(k_lo, k_hi, DAY_OF_PERIODS):
            k1 = min(k0 + DAY_OF_PERIODS, k_hi)
            m = metrics.expected(region_hosts, k0, k1, ex, only_change=bad_idx, baseline=False)
            failed += float(m.errors.sum())
            impacted[k0 - k_lo:k1 - k_lo] |= m.errors > 1e-9
    return BlastRadius(
        failed_requests=failed,
        impact_minutes=float(impacted.sum()) * p / 60.0,
        peak_capacity_share=peak_capacity_share,
        hosts_reached=int(hosts.size),
        cells_reached=int(np.unique(lay.host_cell[hosts]).size),
        azs_reached=int(np.unique(lay.host_az[hosts]).size),
        regions_reached=int(np.unique(lay.host_region[hosts]).size),
    )


def fault_costs(metrics: MetricModel) -> dict[str, float]:
    """Expected failed requests each kind of infrastructure fault caused by itself (`FAULT_KINDS`)."""
    return {kind: metrics.fault_cost(kind, DAY_OF_PERIODS) for kind in FAULT_KINDS}


def sla_error_counts(metrics: MetricModel, layout: FleetLayout, exposures: ExposureLog, requests: np.ndarray,
                     rng: np.random.Generator) -> np.ndarray:
    """Failed requests per region per period (regions x periods): Poisson draws around the metric
    model's expected errors, capped at the (rounded) requests. `rng` is used for nothing else.
    With a latency SLO, requests slower than it count as failed here (and only here)."""
    n_periods = requests.shape[1]
    errors = np.zeros((layout.n_regions, n_periods))
    for r in range(layout.n_regions):
        hosts = layout.hosts_in_region(r)
        for k0, k1 in _sla_windows(metrics, layout, exposures, r, n_periods):
            m = metrics.expected(hosts, k0, k1, exposures)
            errors[r, k0:k1] = m.errors if m.slo_breaches is None else m.errors + m.slo_breaches
    return np.minimum(rng.poisson(errors).astype(float), np.round(requests))


def _sla_windows(metrics: MetricModel, layout: FleetLayout, exposures: ExposureLog, r: int,
                 n_periods: int) -> list[tuple[int, int]]:
    """Region r's periods cut into the windows its errors are asked for: a day each, but runs of
    consecutive quiet days (no bad change, deployment batch or AZ outage near them) as one window.

    Exact: on a quiet day every term of `MetricModel.expected`'s errors is computed period by period
    from the same inputs whatever the window (no exposure interval, batch or host out of rotation;
    the same grouping of hosts, as no AZ is down), so one window over many quiet days gives each
    period the value the day's own window gives, for far fewer calls. Busy days stay one day long,
    which bounds the (intervals x periods) arrays their computation makes.
    """
    p = metrics.period_s
    rows = np.flatnonzero(layout.host_region[exposures.host[:exposures.size]] == r)
    on, off = exposures.on_s[rows], exposures.off_s[rows]
    # An interval matters from its start until the load balancer's delay after its end (hosts out of rotation).
    busy_spans = [(float(a), float(b) + metrics.lb_back_s) for a, b in zip(on.tolist(), off.tolist(), strict=True)]
    busy_spans += [(b.start_s, b.end_s) for b in metrics.batches_out if b.region == r]
    busy_spans += [(f.start_s + f.failover_s, f.end_s) for f in metrics.az_outages if f.region == r]
    windows: list[tuple[int, int, bool]] = []
    for k0 in range(0, n_periods, DAY_OF_PERIODS):
        k1 = min(k0 + DAY_OF_PERIODS, n_periods)
        # Overlap as each part of `expected` tests it.
        quiet = not any(a < k1 * p and b > k0 * p for a, b in busy_spans)
        if quiet and windows and windows[-1][2] and windows[-1][1] == k0:
            windows[-1] = (windows[-1][0], k1, True)
        else:
            windows.append((k0, k1, quiet))
    return [(a, b) for a, b, _ in windows]
