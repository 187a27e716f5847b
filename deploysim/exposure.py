"""Which hosts ran which bad change, and when: the intervals every error figure is computed from.

An interval is (bad change, host, on_s, off_s); off_s is +inf while the host still runs it.
Redeploying a version that still contains the change restarts the process, so it opens a new
interval (growth defects such as memory leaks start again from zero).

Besides the columns, the log keeps each bad change's rows (in row order) and its open intervals,
so that questions about one change touch only that change's rows, and a counter of edits, so
that whoever caches an answer computed from the log can tell when it went stale.
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
        self.edits = 0  # how many times intervals were opened or closed: a cache of answers keys on it
        self._open: dict[int, dict[int, int]] = {}  # change -> host -> row of its open interval
        self._rows: dict[int, np.ndarray] = {}  # change -> its rows, ascending (first _n_rows[change] used)
        self._n_rows: dict[int, int] = {}

    def _index(self, change: int, rows: np.ndarray) -> None:
        """Append rows (ascending, after every row already indexed) to the change's row index."""
        n = self._n_rows.get(change, 0)
        buf = self._rows.get(change)
        need = n + rows.size
        if buf is None or need > buf.size:
            new = np.empty(max(need, 2 * (0 if buf is None else buf.size), 16), dtype=np.int64)
            if buf is not None:
                new[:n] = buf[:n]
            buf = self._rows[change] = new
        buf[n:need] = rows
        self._n_rows[change] = need

    def rows_of(self, change: int) -> np.ndarray:
        """The rows of the bad change's intervals, in row order (a view: read it before the log grows)."""
        buf = self._rows.get(change)
        if buf is None:
            return np.empty(0, dtype=np.int64)
        return buf[: self._n_rows[change]]

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
        opened = self._open.setdefault(change, {})
        for row, host in zip(rows.tolist(), np.asarray(hosts).tolist(), strict=True):
            opened[host] = row
        self._index(change, rows)
        self.size += n
        self.edits += 1

    def close(self, change: int, hosts: np.ndarray, t_s: float) -> None:
        opened = self._open.get(change)
        if not opened:
            return
        for host in np.asarray(hosts).tolist():
            row = opened.pop(host, None)
            if row is not None:
                self.off_s[row] = t_s
                self.edits += 1

    @classmethod
    def from_intervals(cls, intervals: ExposureIntervals) -> ExposureLog:
        """A log holding a run's recorded intervals (e.g. to ask the metric model about that run again)."""
        log = cls(max(intervals.size, 1))
        n = intervals.size
        log.change[:n], log.host[:n] = intervals.change, intervals.host
        log.on_s[:n], log.off_s[:n] = intervals.on_s, intervals.off_s
        log.size = n
        for row, (c, h, off) in enumerate(
                zip(intervals.change.tolist(), intervals.host.tolist(), intervals.off_s.tolist(), strict=True)):
            if off == np.inf:
                log._open.setdefault(c, {})[h] = row
        for c in np.unique(log.change[:n]).tolist():
            log._index(c, np.flatnonzero(log.change[:n] == c))
        return log

    def intervals(self) -> ExposureIntervals:
        """A copy of every interval so far, as a record (open ones end at +inf)."""
        n = self.size
        return ExposureIntervals(self.change[:n].copy(), self.host[:n].copy(), self.on_s[:n].copy(),
                                 self.off_s[:n].copy())

    def running(self, change: int) -> list[int]:
        """Hosts that run the bad change now."""
        return sorted(self._open.get(change, ()))
