"""Quiet periods of a healthy scope: where an alarm's noisy datapoints need not be drawn.

A healthy scope's alarm states are computed for the whole run (`AlarmWatch.healthy_states`),
and most of its datapoints are so far from their thresholds that no plausible noise makes them
breach. `quiet_periods` finds those periods from the mean metrics alone; the alarm watch then
draws the noise only for the other periods (and a margin around them) and gives the quiet ones a
value that cannot breach. The noise is keyed by (scope, kind, period) (`deploysim.noise`), so no
other datapoint's noise depends on the draws left out.

The bound
---------
Take a metric alarm "M of the last N datapoints > T" (GreaterThan or GreaterThanOrEqualTo) and a
run of P periods. Datapoint k breaches with probability at most p_k, computed per metric:

* error counts (errors, error_rate, log_errors): the count is Poisson(lam_k) by inversion, and it
  breaches only if it reaches c_k = floor(x_k (1 - 1e-9)) + 1, where x_k is the threshold in
  counts (T, T x requests, T / log_errors_per_error). Chernoff: for c > lam,
  P(N >= c) <= exp(c - lam - c ln(c / lam)); for lam = 0 no count is drawn above 0.
* CPU, memory, disk: mean b_k plus normal noise of deviation s: P <= Q((T - b_k) / s)
  (Q the standard normal tail); without noise the mean decides.
* latency percentile q (healthy: no slowed hosts): the value is V_q exp(sigma (z(u) - z_q)) F,
  with u the sampled quantile (normal approximation q + sqrt(q (1 - q) / n) Z1 for n >= 1,000
  requests) and F = exp(cv Z2) the period's latency factor. It breaches only if
  sigma (z(u) - z_q) + cv Z2 > D = ln(T / V_q). Splitting D = D1 + D2 with D2 = cv z_h, where
  Q(z_h) = p / 2: P <= Q(z_h) + Q((Phi(z_q + D1 / sigma) - q) / sqrt(q (1 - q) / n)), which is at
  most p when n >= q (1 - q) (z_h / (Phi(z_q + D1 / sigma) - q))^2.

Every p_k also carries FP_SLACK per uniform it uses, for the floating-point error of the inverse
CDFs near the breaching uniform. A period is quiet when p_k <= p* with

    p* = (BUDGET / (P C(N, M)))^(1 / M),   BUDGET = 1e-30,

and when its datapoint can be neither missing nor held (no low-sample hold): missing datapoints,
held periods, percentiles of fewer than 1,000 requests, comparisons other than "greater" and
metrics without noise are never quiet.

Why a skipped draw cannot change a state: quiet values are replaced only in periods at least
2 (N + 2) periods away from any period that is not quiet. The state of period j depends on the
datapoints of its evaluation range [j - N - 1, j] (and on earlier states only through missing or
held periods). So every state whose range holds a replaced datapoint has a range of quiet,
present datapoints only, is decided by "at least M of the last N breach", and can differ from
the full computation only if some N consecutive quiet datapoints hold M breaches. Datapoints of
different periods use different uniforms (independent), so that has probability at most
sum over windows of C(N, M) p*^M <= P C(N, M) p*^M = BUDGET = 1e-30 per scope, alarm and run;
an alarm with no period that is not quiet is OK throughout with the same probability.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import ndtr, ndtri

from .alarms.series import EXTRA_EVALUATION_RANGE
from .metrics import EXACT_ORDER_STATISTIC_BELOW, PERCENTILES, MetricModel, WindowMetrics
from .scenario.schema import MetricAlarm

BUDGET = 1e-30  # chance, per scope, alarm and run, that leaving out the quiet draws changes a state
FP_SLACK = 1e-13  # floating-point error of an inverse CDF near the breaching uniform, per uniform
_GREATER = ("GreaterThanThreshold", "GreaterThanOrEqualToThreshold")
_MARGIN = 1e-9  # relative: thresholds in counts are taken this much lower (rounding of count / requests)


def quiet_probability(alarm: MetricAlarm, n_periods: int) -> float:
    """p*: the largest breach probability of a quiet datapoint of `alarm` over `n_periods`."""
    n, m = alarm.evaluation_periods, alarm.datapoints_to_alarm
    return (BUDGET / (max(n_periods, 1) * math.comb(n, m))) ** (1.0 / m)


def quiet_periods(model: MetricModel, m: WindowMetrics, alarm: MetricAlarm) -> np.ndarray | None:
    """Per period of `m`, is the alarm's datapoint quiet (breaches with probability <= p*, and is
    present and evaluated)? None when the alarm is not bounded here (every period is computed)."""
    if alarm.comparison not in _GREATER or alarm.api not in (None, "All", *model.sc.traffic.apis):
        return None
    base = model.sc.baseline
    p_star = quiet_probability(alarm, model.n_periods)
    metric, threshold = alarm.metric, float(alarm.threshold)
    up = m.unhealthy_hosts < m.n_hosts - 1e-9  # some host publishes host metrics
    if metric in ("errors", "error_rate", "log_errors"):
        budget = p_star - FP_SLACK
        if budget <= 0.0:
            return None
        apis = list(model.sc.traffic.apis)
        if alarm.api is not None and alarm.api != "All":
            req, lam = m.requests_api[apis.index(alarm.api)], m.errors_api[apis.index(alarm.api)]
        else:
            req, lam = m.requests, m.errors
        if metric == "errors":
            x = np.full(req.shape, threshold)
        elif metric == "error_rate":
            x = threshold * req
        else:
            if base.log_errors_per_error <= 0.0:
                return None
            x = np.full(req.shape, threshold / base.log_errors_per_error)
        c = np.floor(x * (1.0 - _MARGIN)) + 1.0
        quiet = poisson_tail_below(lam, c, budget)
        if metric == "error_rate":
            quiet &= m.requests > 0  # no requests: the datapoint is missing
        return quiet
    if metric in ("cpu_pct", "memory_pct", "disk_pct"):
        mean = getattr(m, metric)[alarm.statistic]
        sd = base.resource_noise_pct
        if sd > 0:
            budget = p_star - FP_SLACK
            if budget <= 0.0:
                return None
            quiet = (threshold - mean) / sd >= -ndtri(budget)
        else:
            quiet = mean < threshold - 1e-9 * max(abs(threshold), 1.0)
        return quiet & up
    if metric.startswith("latency_"):
        if m.slow_share is not None or alarm.evaluate_low_sample_count_percentile == "ignore" or threshold <= 0:
            return None
        name = metric.split("_")[1]
        q = PERCENTILES[name]
        value = {"p50": base.latency_p50_ms, "p90": base.latency_p90_ms, "p99": base.latency_p99_ms}[name]
        cv = base.latency_noise_cv
        half = (p_star - 2 * FP_SLACK) / 2  # each of the two terms (sample quantile, latency factor)
        if half <= 0.0:
            return None
        z_h = float(-ndtri(half))
        d1 = math.log(threshold / value) - (cv * z_h if cv > 0 else 0.0)
        x1 = float(ndtr(float(ndtri(q)) + d1 / model._lat_sigma))
        if d1 <= 0 or x1 <= q:
            return np.zeros(m.requests.shape, dtype=bool)
        n_min = max(q * (1.0 - q) * (z_h / (x1 - q)) ** 2, float(EXACT_ORDER_STATISTIC_BELOW))
        return (np.maximum(np.round(m.requests), 1.0) >= n_min) & (m.requests > 0) & up
    return None  # requests, unhealthy hosts, dependency error rate: no noise, computed as they are


def poisson_tail_below(lam: np.ndarray, c: np.ndarray, p: float) -> np.ndarray:
    """Is P(Poisson(lam) >= c) <= p, by the Chernoff bound exp(c - lam - c ln(c / lam)) (c > lam)?"""
    lam = np.maximum(np.asarray(lam, dtype=np.float64), 0.0)
    c = np.asarray(c, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_bound = c - lam - c * np.log(c / lam)
    above = (c > lam) & (lam > 0) & (log_bound <= math.log(p))
    return np.where(lam <= 0, c >= 1.0, above)


def replaceable(quiet: np.ndarray, alarm: MetricAlarm) -> np.ndarray:
    """Periods whose datapoint may be replaced by one that does not breach: at least 2 (N + 2)
    periods away from every period that is not quiet (see the module's docstring)."""
    radius = 2 * (alarm.evaluation_periods + EXTRA_EVALUATION_RANGE)
    size = quiet.size
    if quiet.all() or not quiet.any() or radius >= size:
        return quiet.copy() if quiet.all() or not quiet.any() else np.zeros(size, dtype=bool)
    # loud[i]: periods before i that are not quiet; period k's neighbourhood is [k - radius, k + radius].
    loud = np.concatenate([[0], np.cumsum(~quiet, dtype=np.int64)])
    hi = np.concatenate([loud[radius + 1:], np.full(radius, loud[-1])])
    lo = np.concatenate([np.zeros(radius, dtype=np.int64), loud[:size - radius]])
    return hi == lo
