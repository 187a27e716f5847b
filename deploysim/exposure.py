"""Which hosts ran which bad change, and when: the intervals every error figure is computed from.

An interval is (bad change, host, on_s, off_s); off_s is +inf while the host still runs it.
Redeploying a version that still contains the change restarts the process, so it opens a new
interval (growth defects such as memory leaks start again from zero).
"""

from __future__ import annotations

import numpy as np

from .records import ExposureIntervals


class ExposureLog:
    """Append-only table of exposure intervals held in growable numpy columns."""

    def __init__(self, capacity: int = 256):
        self.change = np.empty(capacity, dtype=np.int64)  # index into the engine's bad-change table
        self.host = np.empty(capacity, dtype=np.int64)
        self.on_s = np.empty(capacity)
        self.off_s = np.empty(capacity)
        self.size = 0
        self._open: dict[tuple[int, int], int] = {}  # (change, host) -> row of its open interval

    def _grow(self, extra: int) -> None:
        need = self.size + extra
        if need <= self.change.size:
            return
        cap = max(need, 2 * self.change.size)
        for name in ("change", "host", "on_s", "off_s"):
            old = getattr(self, name)
            new = np.empty(cap, dtype=old.dtype)
            new[: self.size] = old[: self.size]
            setattr(self, name, new)

    def open(self, change: int, hosts: np.ndarray, t_s: float) -> None:
        """Hosts start running the bad change at t_s (closing any interval they had open for it)."""
        self.close(change, hosts, t_s)
        n = len(hosts)
        self._grow(n)
        rows = np.arange(self.size, self.size + n)
        self.change[rows] = change
        self.host[rows] = hosts
        self.on_s[rows] = t_s
        self.off_s[rows] = np.inf
        for row, host in zip(rows.tolist(), np.asarray(hosts).tolist(), strict=True):
            self._open[(change, host)] = row
        self.size += n

    def close(self, change: int, hosts: np.ndarray, t_s: float) -> None:
        for host in np.asarray(hosts).tolist():
            row = self._open.pop((change, host), None)
            if row is not None:
                self.off_s[row] = t_s

    @classmethod
    def from_intervals(cls, intervals: ExposureIntervals) -> ExposureLog:
        """A log holding a run's recorded intervals (e.g. to ask the metric model about that run again)."""
        log = cls(max(intervals.size, 1))
        n = intervals.size
        log.change[:n], log.host[:n] = intervals.change, intervals.host
        log.on_s[:n], log.off_s[:n] = intervals.on_s, intervals.off_s
        log.size = n
        log._open = {
            (int(c), int(h)): row
            for row, (c, h, off) in enumerate(
                zip(intervals.change.tolist(), intervals.host.tolist(), intervals.off_s.tolist(), strict=True)
            )
            if off == np.inf
        }
        return log

    def intervals(self) -> ExposureIntervals:
        """A copy of every interval so far, as a record (open ones end at +inf)."""
        n = self.size
        return ExposureIntervals(self.change[:n].copy(), self.host[:n].copy(), self.on_s[:n].copy(),
                                 self.off_s[:n].copy())

    def running(self, change: int) -> list[int]:
        """Hosts that run the bad change now."""
        return sorted(h for (c, h) in self._open if c == change)
