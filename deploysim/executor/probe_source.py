"""Alarm datapoints from requests deploysim sends itself: for users without Prometheus.

A ProbeSource starts background threads that send `rate_per_s` requests per second to every
target (spread over the API mix; `GET|POST|DELETE http://ADDRESS/api/<Api>` by default) and check
`/healthz` every `health_interval_s`. It keeps what it saw for `retention_s` and serves, per period
[start + k*period, start + (k+1)*period):

    requests, errors       its own requests sent in the period (errors: HTTP 5xx or no answer)
    error_rate             errors / requests; missing when it sent nothing
    latency_p50/p90/p99_ms percentiles of the answered requests' latency; missing when none answered
    unhealthy_hosts        targets whose health checks in the period mostly failed
    log_errors             same as errors (the probe cannot read logs)

Other metrics (cpu_pct, memory_pct, disk_pct, dependency_error_rate) are always missing. Note that
`requests` counts the probe's requests only, so a bake's `min_requests` waits for probe traffic.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence

import numpy as np

from ..localfleet.loadgen import HostLoad
from ..scenario.schema import MetricAlarm
from .interfaces import Target

SUPPORTED = ("requests", "errors", "error_rate", "latency_p50_ms", "latency_p90_ms", "latency_p99_ms",
             "unhealthy_hosts", "log_errors")


class ProbeSource:
    """MetricSource from the probe's own requests to `targets`; call close() (or use `with`) to stop it."""

    def __init__(self, targets: Sequence[Target], *, rate_per_s: float = 5.0,
                 apis: Mapping[str, float] | None = None, path: str = "/api/{api}",
                 health_path: str = "/healthz", health_interval_s: float = 1.0, timeout_s: float = 2.0,
                 retention_s: float = 3600.0, start: bool = True):
        if rate_per_s <= 0:
            raise ValueError("rate_per_s must be > 0")
        self.targets = list(targets)
        self.rate_per_s = rate_per_s
        self.apis = dict(apis or {"All": 1.0})
        self.path = path
        self.health_path = health_path
        self.health_interval_s = health_interval_s
        self.timeout_s = timeout_s
        self.retention_s = retention_s
        self._lock = threading.Lock()
        # Per target name: (sent at, API, error, latency in s or NaN) and (checked at, healthy).
        self._requests: dict[str, deque] = {t.name: deque() for t in self.targets}
        self._health: dict[str, deque] = {t.name: deque() for t in self.targets}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        if start:
            self.start()

    # ------------------------------------------------------------ probing

    def start(self) -> None:
        if self._threads:
            return
        for target in self.targets:
            load = HostLoad(target.address, self.rate_per_s, self.apis, self._stop, timeout_s=self.timeout_s,
                            on_result=self._recorder(target.name), path=self.path)
            self._threads += load.run()
        health = threading.Thread(target=self._health_loop, daemon=True)
        health.start()
        self._threads.append(health)

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.timeout_s + 1.0)
        self._threads = []

    def __enter__(self) -> ProbeSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _recorder(self, name: str):
        def record(sent_at: float, api: str, code: int | None, seconds: float) -> None:
            error = code is None or code >= 500
            latency = float("nan") if code is None else seconds
            with self._lock:
                rows = self._requests[name]
                rows.append((sent_at, api, error, latency))
                cutoff = sent_at - self.retention_s
                while rows and rows[0][0] < cutoff:
                    rows.popleft()
        return record

    def _health_loop(self) -> None:
        from ..localfleet.procs import http_get_json

        while not self._stop.is_set():
            started = time.monotonic()
            for target in self.targets:
                address = target.address.split("://", 1)[-1].rstrip("/")
                checked_at = time.time()
                try:
                    status, _ = http_get_json(f"http://{address}{self.health_path}",
                                              timeout_s=min(self.timeout_s, self.health_interval_s))
                except Exception:  # whatever a check meets, it is a failed check, never the end of checking
                    status = None
                healthy = status == 200
                with self._lock:
                    rows = self._health[target.name]
                    rows.append((checked_at, healthy))
                    while rows and rows[0][0] < checked_at - self.retention_s:
                        rows.popleft()
            self._stop.wait(max(0.0, self.health_interval_s - (time.monotonic() - started)))

    # ------------------------------------------------------------ MetricSource

    def _rows(self, targets: Sequence[Target], api: str | None):
        with self._lock:
            rows = [row for t in targets for row in self._requests.get(t.name, ())]
        if api not in (None, "All"):
            rows = [row for row in rows if row[1] == api]
        if not rows:
            return np.empty(0), np.empty(0, dtype=bool), np.empty(0)
        sent = np.array([r[0] for r in rows], dtype=float)
        error = np.array([r[2] for r in rows], dtype=bool)
        latency = np.array([r[3] for r in rows], dtype=float)
        return sent, error, latency

    def datapoints(self, alarm: MetricAlarm, targets: Sequence[Target], start_s: float, end_s: float,
                   period_s: float) -> np.ndarray:
        n = max(0, int(np.floor((end_s - start_s) / period_s + 1e-9)))
        out = np.full(n, np.nan)
        metric = alarm.metric
        if n == 0 or metric not in SUPPORTED:
            return out
        if metric == "unhealthy_hosts":
            return self._unhealthy(targets, start_s, period_s, n)
        sent, error, latency = self._rows(targets, alarm.api)
        k = np.floor((sent - start_s) / period_s).astype(np.int64) if sent.size else np.empty(0, dtype=np.int64)
        inside = (k >= 0) & (k < n)
        k, error, latency = k[inside], error[inside], latency[inside]
        counts = np.bincount(k, minlength=n).astype(float)
        errors = np.bincount(k, weights=error.astype(float), minlength=n)
        if metric == "requests":
            return counts
        if metric in ("errors", "log_errors"):
            return errors
        if metric == "error_rate":
            return np.divide(errors, counts, out=np.full(n, np.nan), where=counts > 0)
        q = {"latency_p50_ms": 50, "latency_p90_ms": 90, "latency_p99_ms": 99}[metric]
        answered = ~np.isnan(latency)
        for i in range(n):
            values = latency[(k == i) & answered]
            if values.size:
                out[i] = float(np.percentile(values, q)) * 1000.0
        return out

    def _unhealthy(self, targets: Sequence[Target], start_s: float, period_s: float, n: int) -> np.ndarray:
        checked = np.zeros(n)
        unhealthy = np.zeros(n)
        for target in targets:
            with self._lock:
                rows = list(self._health.get(target.name, ()))
            if not rows:
                continue
            at = np.array([r[0] for r in rows])
            ok = np.array([r[1] for r in rows], dtype=bool)
            k = np.floor((at - start_s) / period_s).astype(np.int64)
            inside = (k >= 0) & (k < n)
            total = np.bincount(k[inside], minlength=n)
            bad = np.bincount(k[inside], weights=(~ok[inside]).astype(float), minlength=n)
            checked += total > 0
            unhealthy += (total > 0) & (bad > total / 2.0)
        return np.where(checked > 0, unhealthy, np.nan)

    def requests(self, targets: Sequence[Target], start_s: float, end_s: float,
                 api: str | None = None) -> float:
        sent, _, _ = self._rows(targets, api)
        return float(np.count_nonzero((sent >= start_s) & (sent < end_s)))
