"""Requests per metric period in each region: daily and weekly shape in local time, plus noise."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from zoneinfo import ZoneInfo

import numpy as np

from .fleet import FleetLayout
from .scenario.schema import Traffic

_OFFSET_HOURS = 1024  # UTC offset tables are made in multiples of this many hours


@lru_cache(maxsize=64)
def _utc_offsets_s(start: dt.datetime, timezone: str, hours_total: int) -> np.ndarray:
    """The time zone's UTC offset (s) in each hour from `start` on. Offsets only change at DST
    transitions: evaluated per hour, and kept, as every replication of a scenario asks the same
    (a read-only array: the cache hands the same one to every caller)."""
    tz = ZoneInfo(timezone)
    offsets = np.empty(hours_total)
    for h in range(hours_total):
        moment = start + dt.timedelta(hours=h)
        offset = moment.astimezone(tz).utcoffset()
        offsets[h] = offset.total_seconds() if offset is not None else 0.0
    offsets.flags.writeable = False
    return offsets


def local_hours_and_weekdays(start: dt.datetime, timezone: str, times_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Local hour of day (float) and weekday (0=Mon) at each time, honouring DST transitions."""
    hours_total = int(np.ceil((times_s[-1] + 1) / 3600.0)) + 1 if times_s.size else 1
    # Rounded up, so that runs of any length (change arrivals end anywhere) share one table.
    offsets = _utc_offsets_s(start, timezone, -(-hours_total // _OFFSET_HOURS) * _OFFSET_HOURS)
    base_epoch = start.timestamp()
    local = base_epoch + times_s + offsets[(times_s // 3600).astype(np.int64)]
    days = np.floor(local / 86400.0)
    hour = (local - days * 86400.0) / 3600.0
    weekday = ((days.astype(np.int64) + 3) % 7)  # 1970-01-01 was a Thursday (3)
    return hour, weekday


def requests_per_period(
    traffic: Traffic, layout: FleetLayout, start: dt.datetime, period_s: float, n_periods: int, rng: np.random.Generator
) -> np.ndarray:
    """Array (regions x periods) of requests each region receives in each metric period."""
    times = np.arange(n_periods) * period_s + period_s / 2.0
    out = np.empty((layout.n_regions, n_periods))
    mean_per_period = traffic.requests_per_min * period_s / 60.0
    for r in range(layout.n_regions):
        hour, weekday = local_hours_and_weekdays(start, layout.region_timezones[r], times)
        daily = 1.0 + traffic.daily_amplitude * np.cos(2.0 * np.pi * (hour - traffic.peak_hour_local) / 24.0)
        weekly = np.where(weekday >= 5, traffic.weekend_factor, 1.0)
        noise = rng.lognormal(-0.5 * traffic.noise_cv**2, traffic.noise_cv, n_periods) if traffic.noise_cv > 0 else 1.0
        out[r] = mean_per_period * layout.region_weight[r] * daily * weekly * noise
    return out


def scope_requests(layout: FleetLayout, requests: np.ndarray, hosts: np.ndarray, k0: int, k1: int) -> np.ndarray:
    """Requests the hosts serve together in each metric period [k0, k1), from the regions' requests
    (regions x periods) and each host's share of its region's traffic."""
    out = np.zeros(max(k1 - k0, 0))
    for r, w in layout.region_shares(hosts):
        out += requests[r, k0:k1] * w
    return out
