"""Monthly uptime by the two definitions real SLAs use, from per-period request counts.

Inputs are ``requests`` and ``errors`` (failed requests) counted per metric period
(``period_s``, one minute by default), either 1-D (one series) or 2-D
(rows x periods, e.g. one row per region). 1-D input gives a float; 2-D input gives
a float array with one value per row.

- *Averaged error rate* (Amazon S3, Lambda): error rate of each 5-minute interval =
  failed / total requests, an interval with no requests counting as 0%; uptime =
  100% - the mean of those rates.
- *Unavailable minutes* (EC2 region level, Google Cloud style): an interval of
  ``run_s`` seconds (a minute by default) is down when its error rate is above a
  threshold; uptime = 100% - the share of time that is down.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = [
    "DEFAULT_DOWN_THRESHOLD",
    "averaged_error_rate_uptime_pct",
    "interval_error_rates",
    "unavailable_minutes",
    "unavailable_minutes_uptime_pct",
]

DEFAULT_DOWN_THRESHOLD: float = 0.05
"""Error rate (fraction) an interval must exceed to count as down.

Google Cloud SLAs define "Downtime" as "more than an X% Error Rate", with X = 5 for
some services and 10 for others, and a "Downtime Period" as one or more consecutive
minutes of it; deploysim uses the stricter 5%, compared with ``>``.
"""


def _check_counts(requests: Any, errors: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate per-period counts; return them as 2-D float arrays (rows x periods)."""
    req = np.asarray(requests, dtype=float)
    err = np.asarray(errors, dtype=float)
    for name, arr in (("requests", req), ("errors", err)):
        if arr.ndim not in (1, 2):
            raise ValueError(
                f"{name} must be 1-D (periods) or 2-D (rows x periods), got {arr.ndim}-D"
            )
    if req.shape != err.shape:
        raise ValueError(
            f"requests and errors must have the same shape, got {req.shape} and {err.shape}"
        )
    if req.shape[-1] == 0:
        raise ValueError("requests and errors must hold at least one period")
    for name, arr in (("requests", req), ("errors", err)):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} must be finite")
        if np.any(arr < 0):
            raise ValueError(f"{name} must be non-negative")
    if np.any(err > req):
        where = tuple(int(i) for i in np.argwhere(err > req)[0])
        raise ValueError(f"errors must not exceed requests (first at index {where})")
    return np.atleast_2d(req), np.atleast_2d(err)


def _periods_per(span_s: Any, period_s: Any, span_name: str) -> int:
    """Number of periods in ``span_s``; ValueError unless it is a whole multiple of ``period_s``."""
    for name, value in (("period_s", period_s), (span_name, span_s)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
            raise ValueError(f"{name} must be a number, got {value!r}")
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"{name} must be finite and > 0, got {value!r}")
    ratio = float(span_s) / float(period_s)
    count = round(ratio)
    if count < 1 or abs(ratio - count) > 1e-9 * ratio:
        raise ValueError(
            f"{span_name} ({span_s!r}) must be a whole multiple of period_s ({period_s!r})"
        )
    return count


def _check_threshold(threshold: Any) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.number)):
        raise ValueError(f"threshold must be a number, got {threshold!r}")
    if not 0.0 <= float(threshold) <= 1.0:
        raise ValueError(f"threshold must be an error rate in [0, 1], got {threshold!r}")
    return float(threshold)


def _interval_sums(arr2d: np.ndarray, interval_periods: int) -> np.ndarray:
    """Sum consecutive runs of ``interval_periods`` columns; the last run may be shorter."""
    starts = np.arange(0, arr2d.shape[1], interval_periods)
    return np.add.reduceat(arr2d, starts, axis=1)


def _rates(req2d: np.ndarray, err2d: np.ndarray, interval_periods: int) -> np.ndarray:
    req = _interval_sums(req2d, interval_periods)
    err = _interval_sums(err2d, interval_periods)
    return np.divide(err, req, out=np.zeros_like(err), where=req > 0)


def _shape_out(values: np.ndarray, was_1d: bool) -> float | np.ndarray:
    """A float for 1-D input, one value per row for 2-D input."""
    return float(values[0]) if was_1d else values


def interval_error_rates(
    requests: Any, errors: Any, interval_periods: int
) -> np.ndarray:
    """Error rate (fraction) of each run of ``interval_periods`` consecutive periods.

    Each interval's rate is its failed / total requests; an interval with no
    requests has rate 0.0. A last, shorter interval is kept. 1-D input gives one
    rate per interval; 2-D (rows x periods) gives rows x intervals.
    """
    if (
        isinstance(interval_periods, bool)
        or not isinstance(interval_periods, (int, np.integer))
        or interval_periods < 1
    ):
        raise ValueError(f"interval_periods must be an integer >= 1, got {interval_periods!r}")
    was_1d = np.ndim(requests) == 1
    req, err = _check_counts(requests, errors)
    rates = _rates(req, err, int(interval_periods))
    return rates[0] if was_1d else rates


def averaged_error_rate_uptime_pct(
    requests: Any, errors: Any, *, period_s: float = 60, interval_s: float = 300
) -> float | np.ndarray:
    """Uptime in percent by the averaged-error-rate definition (Amazon S3, Lambda).

    100 - 100 x the mean error rate of the ``interval_s`` intervals (5 minutes by
    default); intervals with no requests count as 0% error, and a last, shorter
    interval counts as one interval.
    """
    was_1d = np.ndim(requests) == 1
    req, err = _check_counts(requests, errors)
    per_interval = _periods_per(interval_s, period_s, "interval_s")
    rates = _rates(req, err, per_interval)
    return _shape_out(100.0 - 100.0 * rates.mean(axis=1), was_1d)


def _down_and_total_s(
    requests: Any, errors: Any, period_s: float, threshold: float, run_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """Down seconds and observed seconds per row, by the unavailable-minutes rule."""
    req, err = _check_counts(requests, errors)
    limit = _check_threshold(threshold)
    per_run = _periods_per(run_s, period_s, "run_s")
    down = _rates(req, err, per_run) > limit
    run_periods = np.diff(np.append(np.arange(0, req.shape[1], per_run), req.shape[1]))
    down_s = (down * run_periods).sum(axis=1) * float(period_s)
    total_s = np.full(req.shape[0], req.shape[1] * float(period_s))
    return down_s, total_s


def unavailable_minutes(
    requests: Any,
    errors: Any,
    *,
    period_s: float = 60,
    threshold: float = DEFAULT_DOWN_THRESHOLD,
    run_s: float = 60,
) -> float | np.ndarray:
    """Minutes counted as down by the unavailable-minutes definition.

    An interval of ``run_s`` seconds is down when its error rate (failed / total
    requests) is strictly above ``threshold``; an interval with no requests is not
    down. A last, shorter interval counts for its own length.
    """
    was_1d = np.ndim(requests) == 1
    down_s, _ = _down_and_total_s(requests, errors, period_s, threshold, run_s)
    return _shape_out(down_s / 60.0, was_1d)


def unavailable_minutes_uptime_pct(
    requests: Any,
    errors: Any,
    *,
    period_s: float = 60,
    threshold: float = DEFAULT_DOWN_THRESHOLD,
    run_s: float = 60,
) -> float | np.ndarray:
    """Uptime in percent by the unavailable-minutes definition (EC2 region level, Google style).

    100 - 100 x down time / observed time, with down intervals as in
    ``unavailable_minutes`` (error rate > ``threshold``, default 5%).
    """
    was_1d = np.ndim(requests) == 1
    down_s, total_s = _down_and_total_s(requests, errors, period_s, threshold, run_s)
    return _shape_out(100.0 - 100.0 * down_s / total_s, was_1d)
