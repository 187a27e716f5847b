"""Alarm datapoints from a real Prometheus server, over its HTTP API.

Each scenario metric has a PromQL template (override any of them with `queries`). Placeholders:

    {instances}      regex matching the targets' addresses (the `instance` label), escaped for use
                     inside a double-quoted PromQL string: instance=~"{instances}"
    {api}            the alarm's API, or .* when it has none ("All")
    {period}         the alarm period as a PromQL duration, e.g. 5s
    {agg}            avg or max, from the alarm's `statistic` (average | maximum)
    {dependency}     the alarm's dependency name (dependency_error_rate)
    {labels.NAME}    regex of the targets' values of label NAME (from the inventory's `labels`)

A template is evaluated with /api/v1/query_range, step = period, at the end of each period, so
datapoint k covers [start + k*period, start + (k+1)*period). No value (no series, or NaN, e.g.
an error rate with no requests) is a missing datapoint (NaN), judged by the alarm's
treat_missing_data. The default templates read what the local demo service exports
(deploysim.localfleet.service); disk_pct and dependency_error_rate have no default and are
always missing unless `queries` gives one.
"""

from __future__ import annotations

import json
import logging
import math
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence

import numpy as np

from ..scenario.schema import MetricAlarm
from .interfaces import Target

log = logging.getLogger(__name__)

_REQ = 'deploysim_requests_total{instance=~"{instances}",api=~"{api}"}'
_ERR = 'deploysim_requests_total{instance=~"{instances}",api=~"{api}",code=~"5.."}'
_BUCKETS = 'deploysim_request_duration_seconds_bucket{instance=~"{instances}",api=~"{api}"}'


def _quantile(q: float) -> str:
    return f"1000 * histogram_quantile({q}, sum by (le) (rate({_BUCKETS}[{{period}}])))"


DEFAULT_QUERIES: dict[str, str] = {
    "requests": f"sum(increase({_REQ}[{{period}}]))",
    "errors": f"sum(increase({_ERR}[{{period}}]))",
    # Errors `or vector(0)`: a scope with requests but no error series has a 0 error rate; with no
    # requests the ratio is NaN, a missing datapoint (as in the simulator).
    "error_rate": f"(sum(increase({_ERR}[{{period}}])) or vector(0)) / sum(increase({_REQ}[{{period}}]))",
    "latency_p50_ms": _quantile(0.5),
    "latency_p90_ms": _quantile(0.9),
    "latency_p99_ms": _quantile(0.99),
    "cpu_pct": '{agg}(100 * rate(process_cpu_seconds_total{instance=~"{instances}"}[{period}]))',
    "memory_pct": (
        '{agg}(100 * avg_over_time(process_resident_memory_bytes{instance=~"{instances}"}[{period}])'
        ' / on(instance) avg_over_time(deploysim_machine_memory_bytes{instance=~"{instances}"}[{period}]))'
    ),
    "log_errors": 'sum(increase(deploysim_log_errors_total{instance=~"{instances}"}[{period}]))',
    # A host is unhealthy for the share of the period its scrape failed (process down) or it said
    # it was unhealthy (/healthz 503); rounded to whole hosts.
    "unhealthy_hosts": (
        'round(sum(1 - avg_over_time(up{instance=~"{instances}"}[{period}]))'
        ' + (sum(1 - avg_over_time(deploysim_healthy{instance=~"{instances}"}[{period}])) or vector(0)))'
    ),
}
UNSUPPORTED = ("disk_pct", "dependency_error_rate")
"""Metrics the local demo service does not produce: always missing unless `queries` sets them."""


class PrometheusQueryError(RuntimeError):
    """Prometheus is unreachable or rejected a query; the message is one line."""


def promql_regex(values: Sequence[str]) -> str:
    """A regex matching exactly `values`, escaped to sit inside a double-quoted PromQL string."""
    if not values:
        return "$^"  # matches nothing
    pattern = "|".join(re.escape(v) for v in sorted(set(values)))
    return pattern.replace("\\", "\\\\").replace('"', '\\"')


def _address(target: Target) -> str:
    return target.address.split("://", 1)[-1].rstrip("/")


def _duration(seconds: float) -> str:
    ms = int(round(seconds * 1000))
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


class PrometheusSource:
    """MetricSource over a Prometheus HTTP API at `url` (e.g. http://127.0.0.1:9090)."""

    def __init__(self, url: str, queries: Mapping[str, str] | None = None, *, timeout_s: float = 10.0):
        self.url = url.rstrip("/")
        self.queries = dict(DEFAULT_QUERIES)
        self.queries.update(queries or {})
        self.timeout_s = timeout_s
        self._warned: set[str] = set()

    # ------------------------------------------------------------ templates

    def template_for(self, alarm: MetricAlarm) -> str | None:
        """The alarm's own template (by alarm name), else its metric's; None when the metric has none."""
        return self.queries.get(alarm.name) or self.queries.get(alarm.metric)

    def render(self, template: str, targets: Sequence[Target], period_s: float, *, api: str | None = None,
               statistic: str = "average", dependency: str | None = None) -> str:
        """`template` with its placeholders filled for these targets."""
        values = {
            "{instances}": promql_regex([_address(t) for t in targets]),
            "{api}": ".*" if api is None or api == "All" else promql_regex([api]),
            "{period}": _duration(period_s),
            "{agg}": "max" if statistic == "maximum" else "avg",
            "{dependency}": promql_regex([dependency]) if dependency else ".*",
        }
        text = template
        for key, value in values.items():
            text = text.replace(key, value)
        for name in sorted(set(re.findall(r"\{labels\.([A-Za-z_][A-Za-z0-9_]*)\}", text))):  # never set order
            text = text.replace(f"{{labels.{name}}}",
                                promql_regex([str(t.labels[name]) for t in targets if name in t.labels]))
        return text

    # ------------------------------------------------------------ MetricSource

    def datapoints(self, alarm: MetricAlarm, targets: Sequence[Target], start_s: float, end_s: float,
                   period_s: float) -> np.ndarray:
        n = max(0, int(math.floor((end_s - start_s) / period_s + 1e-9)))
        out = np.full(n, np.nan)
        template = self.template_for(alarm)
        if n == 0 or not targets:
            return out
        if template is None:
            if alarm.metric not in self._warned:
                self._warned.add(alarm.metric)
                log.warning("metric %s has no PromQL query (give one in the inventory's metrics.queries); "
                            "alarm %s sees only missing data", alarm.metric, alarm.name)
            return out
        query = self.render(template, targets, period_s, api=alarm.api, statistic=alarm.statistic,
                            dependency=alarm.dependency)
        data = self._api("query_range", {"query": query, "start": f"{start_s + period_s:.3f}",
                                         "end": f"{start_s + n * period_s:.3f}", "step": _duration(period_s)},
                         what=f"alarm {alarm.name} ({alarm.metric})")
        series = data.get("result", [])
        if data.get("resultType") != "matrix":
            raise PrometheusQueryError(f"query for alarm {alarm.name} returned {data.get('resultType')}, not a matrix")
        per_k: dict[int, list[float]] = {}
        for one in series:
            for ts, value in one.get("values", []):
                k = int(round((float(ts) - start_s) / period_s)) - 1
                if 0 <= k < n:
                    v = float(value)
                    if math.isfinite(v):
                        per_k.setdefault(k, []).append(v)
        for k, values in per_k.items():
            # Several series (a user query without an aggregation): combine them as the statistic says.
            out[k] = max(values) if alarm.statistic == "maximum" else float(np.mean(values))
        return out

    def requests(self, targets: Sequence[Target], start_s: float, end_s: float,
                 api: str | None = None) -> float:
        if end_s <= start_s or not targets:
            return 0.0
        template = self.queries.get("requests", DEFAULT_QUERIES["requests"])
        query = self.render(template, targets, end_s - start_s, api=api)
        data = self._api("query", {"query": query, "time": f"{end_s:.3f}"}, what="requests")
        total = 0.0
        for one in data.get("result", []):
            value = float(one.get("value", [0, "0"])[1])
            if math.isfinite(value):
                total += value
        return total

    # ------------------------------------------------------------ HTTP

    def _api(self, endpoint: str, params: Mapping[str, str], *, what: str) -> dict:
        url = f"{self.url}/api/v1/{endpoint}"
        body = urllib.parse.urlencode(params).encode()
        request = urllib.request.Request(url, data=body, method="POST",
                                         headers={"Content-Type": "application/x-www-form-urlencoded"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                raw = response.read()
        except urllib.error.HTTPError as error:
            raw = error.read()
            try:
                message = json.loads(raw).get("error", "")
            except ValueError:
                message = raw[:200].decode(errors="replace")
            raise PrometheusQueryError(f"Prometheus at {self.url} rejected the query for {what}: "
                                       f"HTTP {error.code} {message}".strip()) from None
        except urllib.error.URLError as error:
            reason = getattr(error.reason, "strerror", None) or str(error.reason)
            raise PrometheusQueryError(f"cannot reach Prometheus at {self.url}: {reason}") from None
        except (OSError, ValueError) as error:
            raise PrometheusQueryError(f"cannot reach Prometheus at {self.url}: {error}") from None
        try:
            payload = json.loads(raw)
        except ValueError:
            raise PrometheusQueryError(f"Prometheus at {self.url} answered something that is not JSON") from None
        if payload.get("status") != "success":
            raise PrometheusQueryError(f"Prometheus at {self.url} rejected the query for {what}: "
                                       f"{payload.get('error', 'unknown error')}")
        return payload.get("data", {})
