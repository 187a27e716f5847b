"""The executor's clocks: the real one, and one whose time moves only when it is slept on.

Every wait of the executor goes through a `Clock` (see `interfaces.Clock`), so the same code runs
on the wall clock or, in tests and when trying out an adapter, through days of bakes in no time.
"""

from __future__ import annotations

import threading
import time

from .interfaces import Clock
from .outcome import Stopped


class RealClock:
    """Unix time; a sleep wakes as soon as `stop` is set, so Ctrl-C is noticed at once."""

    control_poll_s = 1.0  # waits look for operators' controls (`deploysim abort` ...) this often

    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> bool:
        if stop is None:
            time.sleep(max(0.0, seconds))
            return False
        return stop.wait(max(0.0, seconds))


class StepClock:
    """Simulated time: `now` stands still until someone sleeps, and a sleep moves it on at once.

    Safe to share between threads (a batch deployed in parallel). A sleep after `stop` is set
    returns at once without moving the clock, as the real clock's would.
    """

    control_poll_s = 60.0  # simulated seconds: days of waits stay a few thousand looks

    def __init__(self, start_s: float = 0.0):
        self._t = float(start_s)
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._t

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> bool:
        if stop is not None and stop.is_set():
            return True
        with self._lock:
            self._t += max(0.0, float(seconds))
        return False


def control_poll_s(clock: Clock) -> float:
    """How often a wait on `clock` looks for operators' controls (a clock may say; else a second)."""
    return float(getattr(clock, "control_poll_s", 1.0))


def wait_until(clock: Clock, stop: threading.Event, until_s: float) -> None:
    """Wait on `clock` until `until_s`; raises `Stopped` as soon as `stop` is set (Ctrl-C, SIGTERM)."""
    while True:
        if stop.is_set():
            raise Stopped()
        left = until_s - clock.now()
        if left <= 0:
            return
        clock.sleep(left, stop)
