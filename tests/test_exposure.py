"""The exposure log's per-change index answers as a scan of the whole table would."""

from __future__ import annotations

import numpy as np

from deploysim.exposure import ExposureLog


def scan_rows(log: ExposureLog, change: int) -> np.ndarray:
    return np.flatnonzero(log.change[: log.size] == change)


def scan_running(log: ExposureLog, change: int) -> list[int]:
    n = log.size
    rows = (log.change[:n] == change) & (log.off_s[:n] == np.inf)
    return sorted(set(log.host[:n][rows].tolist()))


def check_index(log: ExposureLog, changes: range) -> None:
    for c in changes:
        assert log.rows_of(c).tolist() == scan_rows(log, c).tolist()
        assert log.running(c) == scan_running(log, c)


def test_index_matches_a_scan_through_random_opens_and_closes() -> None:
    rng = np.random.default_rng(7)
    log = ExposureLog(capacity=4)  # small, so the columns and the per-change index grow many times
    t = 0.0
    edits = 0
    for _ in range(300):
        t += float(rng.exponential(60.0))
        change = int(rng.integers(0, 5))
        hosts = rng.choice(12, size=int(rng.integers(1, 6)), replace=False).astype(np.int64)
        before = log.edits
        if rng.random() < 0.6:
            log.open(change, hosts, t)
            assert log.edits > before
        else:
            was_open = set(log.running(change)) & set(hosts.tolist())
            log.close(change, hosts, t)
            assert (log.edits > before) == bool(was_open)
        assert log.edits >= edits
        edits = log.edits
        check_index(log, range(6))
    copy = ExposureLog.from_intervals(log.intervals())
    check_index(copy, range(6))
    for c in range(6):
        assert copy.rows_of(c).tolist() == log.rows_of(c).tolist()


def test_unknown_change_has_no_rows() -> None:
    log = ExposureLog()
    assert log.rows_of(3).size == 0 and log.running(3) == []
    log.close(3, np.array([1, 2]), 10.0)
    assert log.edits == 0 and log.size == 0
