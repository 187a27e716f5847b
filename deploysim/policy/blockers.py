"""Blockers on the clock: time windows in each region's local time, holidays and change freezes.

Pure functions of time, shared by the simulator and the real executor. (Incidents are the other
blocker; they are observed, not computed, and reach the controller as an observation.)
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo

from ..scenario.schema import WEEKDAYS, Blockers, Scenario

_MAX_STEPS = 1000  # a window schedule that never opens is reported, not looped on forever


@dataclass(frozen=True)
class RegionCalendar:
    """A region's time zone and holidays (local dates)."""

    timezone: str
    holidays: frozenset[dt.date] = frozenset()


def region_calendars(scenario: Scenario) -> list[RegionCalendar]:
    """Every region's calendar, indexed like the fleet's regions."""
    return [RegionCalendar(r.timezone, frozenset(r.holidays)) for r in scenario.fleet.regions]


@lru_cache(maxsize=4096)
def _day_windows(windows: tuple[tuple[frozenset[int], float, float], ...], epoch: dt.datetime, day: dt.date,
                 timezone: str) -> tuple[tuple[float, float], ...]:
    """The windows open on a local day, as (start, end) seconds since `epoch`, by start hour. Kept:
    every version's controller of every run asks about the same few days again and again."""
    tz = ZoneInfo(timezone)
    found = []
    for days, start_h, end_h in sorted(windows, key=lambda w: w[1]):
        if day.weekday() not in days:
            continue
        start = dt.datetime.combine(day, dt.time(0), tz) + dt.timedelta(hours=start_h)
        end = dt.datetime.combine(day, dt.time(0), tz) + dt.timedelta(hours=end_h)
        found.append(((start.astimezone(dt.timezone.utc) - epoch).total_seconds(),
                      (end.astimezone(dt.timezone.utc) - epoch).total_seconds()))
    return tuple(found)


class Calendar:
    """Answers "when may a production stage over these regions start, at or after t?"."""

    def __init__(self, blockers: Blockers, epoch: dt.datetime):
        self.blockers = blockers
        self.epoch = epoch
        self.windows = tuple(
            (frozenset(WEEKDAYS.index(d) for d in w.days), w.start_hour, w.end_hour) for w in blockers.time_windows
        )
        self.freezes = [((f.start - epoch).total_seconds(), (f.end - epoch).total_seconds()) for f in blockers.freezes]

    def _to_dt(self, t_s: float) -> dt.datetime:
        return self.epoch + dt.timedelta(seconds=t_s)

    def _next_open_in_region(self, t_s: float, region: RegionCalendar) -> float:
        """Earliest time >= t_s that is inside a window and not on a holiday in this region."""
        tz = ZoneInfo(region.timezone)
        local = self._to_dt(t_s).astimezone(tz)
        for day_offset in range(400):
            day = (local + dt.timedelta(days=day_offset)).date()
            if self.blockers.holidays and day in region.holidays:
                continue
            if not self.windows:
                if not day_offset:
                    return t_s  # open now (converting t_s to a datetime and back would round it)
                opening = dt.datetime.combine(day, dt.time(0), tz)
                return max(t_s, (opening.astimezone(dt.timezone.utc) - self.epoch).total_seconds())
            for start_s, end_s in _day_windows(self.windows, self.epoch, day, region.timezone):
                if end_s > t_s:
                    return max(t_s, start_s)
        raise ValueError("the blockers' time windows never open within 400 days")

    def next_allowed_s(self, t_s: float, regions: list[RegionCalendar]) -> float:
        """Earliest time >= t_s at which no time window, holiday or freeze blocks any of the regions."""
        for _ in range(_MAX_STEPS):
            candidate = t_s
            for start, end in self.freezes:
                if start <= candidate < end:
                    candidate = end
            for region in regions:
                candidate = self._next_open_in_region(candidate, region)
            if candidate == t_s:
                return t_s
            t_s = candidate
        raise ValueError(
            "no time is open in all of the stage's regions at once (check time_windows, holidays, freezes)"
        )
