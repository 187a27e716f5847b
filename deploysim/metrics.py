"""Metrics of any scope (set of hosts) over a run of metric periods, computed with numpy.

Traffic is exogenous (the world's per-region requests); errors, latency and resource use follow
from the baseline, the exposure intervals of bad changes, host capacity (hosts out of service in
an AZ outage or a deployment batch shift their load to the others), and infrastructure faults.
`expected` gives mean values (used for uptime and blast radius); `observe` adds the sampling noise
an alarm sees (Poisson error counts, latency and resource jitter), keyed by scope, metric and
period (`deploysim.noise`), so a datapoint has one value however often it is asked for.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from scipy.special import betaincinv, ndtr, ndtri

from .exposure import ExposureLog
from .fleet import FleetLayout
from .noise import (
    LATENCY,
    ScopeNoise,
    errors_kind,
    latency_sample_kind,
    lognormal_factor,
    normal,
    poisson,
    resource_kind,
)
from .scenario.schema import Defect, Scenario
from .world import AZ_DOWN_KINDS, Change, Fault, World

Z99 = 2.3263478740408408  # standard normal quantile at 0.99
PERCENTILES = {"p50": 0.5, "p90": 0.9, "p99": 0.99}
# Samples below which a percentile's order statistic is drawn exactly (Beta inverse, slow); above, by
# the normal approximation of the sample quantile. 1,000 is where CloudWatch stops calling a p99 low-sample.
EXACT_ORDER_STATISTIC_BELOW = 1000


def low_sample_count(q: float) -> float:
    """Requests below which CloudWatch treats a percentile as low-sample: 10/(1-q) for q >= 0.5,
    10/q below ("Percentile-based alarms and low data samples", CloudWatch user guide)."""
    return 10.0 / (1.0 - q) if q >= 0.5 else 10.0 / q


@dataclass(frozen=True)
class BatchOut:
    """Hosts of a region out of service while a deployment batch replaces them."""

    region: int
    hosts: np.ndarray
    start_s: float
    end_s: float


@dataclass(frozen=True)
class Overlay:
    """A planned switch of hosts to a version, applied to the exposures before it happens."""

    switch_s: np.ndarray  # per host: when it switches (inf: it does not)
    new_changes: tuple[int, ...]  # bad-change indices the new version contains


# A region's share of `MetricModel._serving` for whole-run healthy windows: its hosts, AZs down,
# load multiplier, periods nobody serves, and per (host weight, AZ key) group the arrays of one host.
_SharedRegion = tuple[np.ndarray, dict[int, np.ndarray], np.ndarray, np.ndarray,
                      dict[tuple[float, float], tuple[np.ndarray, np.ndarray, np.ndarray]]]

# Long windows with many intervals are computed in blocks of periods (MetricModel._blocks).
BLOCK_PERIODS = 60
BLOCK_MIN_INTERVALS = 64


@dataclass
class WindowMetrics:
    """Expected metrics of one scope over periods [k0, k1); arrays have one value per period."""

    k0: int
    n_hosts: int
    requests: np.ndarray
    requests_api: np.ndarray  # apis x periods
    errors: np.ndarray
    errors_api: np.ndarray
    unhealthy_hosts: np.ndarray
    cpu_pct: dict[str, np.ndarray]  # statistic -> values
    memory_pct: dict[str, np.ndarray]
    disk_pct: dict[str, np.ndarray]
    dependency_error_rate: dict[str, np.ndarray]
    noise: dict[str, np.ndarray] = field(default_factory=dict)  # noise already computed for this window, by kind
    slow_share: np.ndarray | None = None  # share of requests served slowed by a defect (None: none)
    slow_factor: np.ndarray | None = None  # their mean latency factor
    slo_breaches: np.ndarray | None = None  # requests served (not failed) slower than the latency SLO, if any
    model: MetricModel | None = field(default=None, repr=False, compare=False)  # for latency_ms, when asked

    def part(self, a: int, b: int) -> WindowMetrics:
        """The same metrics for periods [k0 + a, k0 + b) (no noise drawn yet): every value is per period,
        so a datapoint observed on the part equals the one observed on the whole window."""
        def cut(x: np.ndarray | None) -> np.ndarray | None:
            return None if x is None else x[..., a:b]

        return WindowMetrics(
            k0=self.k0 + a, n_hosts=self.n_hosts, requests=self.requests[a:b], requests_api=self.requests_api[:, a:b],
            errors=self.errors[a:b], errors_api=self.errors_api[:, a:b], unhealthy_hosts=self.unhealthy_hosts[a:b],
            cpu_pct={k: v[a:b] for k, v in self.cpu_pct.items()},
            memory_pct={k: v[a:b] for k, v in self.memory_pct.items()},
            disk_pct={k: v[a:b] for k, v in self.disk_pct.items()},
            dependency_error_rate={k: v[a:b] for k, v in self.dependency_error_rate.items()},
            slow_share=cut(self.slow_share), slow_factor=cut(self.slow_factor), slo_breaches=cut(self.slo_breaches),
            model=self.model,
        )

    @cached_property
    def latency_ms(self) -> dict[str, np.ndarray]:
        """"p50"/"p90"/"p99" -> mean latency per period, computed when first asked: alarms do not need
        it (they sample their percentiles from `slow_share` and `slow_factor`), and it is costly."""
        assert self.model is not None
        return self.model._latency(self.requests, self.slow_share, self.slow_factor)


class DefectTable:
    """Per bad change, the defect's parameters as arrays so intervals can be processed together."""

    def __init__(self, scenario: Scenario, bad_changes: list[Change]):
        apis = list(scenario.traffic.apis)
        deps = [d.name for d in scenario.dependencies]
        defects: list[Defect] = []
        for c in bad_changes:
            assert c.defect is not None, f"change {c.change_id} is not a bad change"
            defects.append(c.defect)
        self.error_rate = np.array([d.error_rate for d in defects])
        self.api = np.array([apis.index(d.api) if d.api in apis else -1 for d in defects], dtype=np.int64)
        self.latency_factor = np.array([d.latency_factor for d in defects])
        self.cpu_growth = np.array([d.cpu_growth_pct_per_h for d in defects])
        self.memory_growth = np.array([d.memory_growth_pct_per_h for d in defects])
        self.disk_growth = np.array([d.disk_growth_pct_per_h for d in defects])
        self.delay_s = np.array([d.start_delay for d in defects])
        self.crash = np.array([d.crash for d in defects], dtype=np.bool_)
        self.min_load = np.array([d.min_load_factor for d in defects])
        self.dependency = np.array(
            [deps.index(d.dependency) if d.dependency in deps else -1 for d in defects], dtype=np.int64
        )
        self.dependency_factor = np.array([d.dependency_load_factor for d in defects])
        # Hosts that crash (at once, or when a leak fills memory) fail their health checks; a defect
        # that shows only under load comes and goes with it, which health checks are not modelled for.
        growth = np.maximum(self.memory_growth, 1e-300)
        headroom_pct = max(100.0 - scenario.baseline.memory_pct, 0.0)
        leak_s = np.where(self.memory_growth > 0, headroom_pct / growth * 3600.0, np.inf)
        self.down_after_s = self.delay_s + np.where(self.crash, 0.0, leak_s)
        self.fails_health = np.isfinite(self.down_after_s) & (self.min_load <= 0)


class MetricModel:
    """Computes scope metrics; holds the exogenous inputs (traffic, faults) of one run."""

    def __init__(self, scenario: Scenario, layout: FleetLayout, world: World, bad_changes: list[Change]):
        self.sc = scenario
        self.layout = layout
        self.period_s = scenario.metric_period
        self.requests = world.requests
        self.n_periods = world.requests.shape[1]
        self.load = world.requests / world.requests.mean(axis=1, keepdims=True)
        self.api_share = np.array(list(scenario.traffic.apis.values()))
        self.defects = DefectTable(scenario, bad_changes) if bad_changes else None
        self.deps = scenario.dependencies
        # Client timeout per API (ms); "All" covers APIs without their own.
        timeouts = scenario.traffic.client_timeout_ms
        self.timeout_ms = np.array([timeouts.get(api, timeouts.get("All", np.inf)) for api in scenario.traffic.apis])
        self.faults = world.faults
        self._use_faults(world.faults)
        # Deployment batches that took so many hosts out of service that the rest shed load.
        self.batches_out: list[BatchOut] = []
        self._shares_left: dict[tuple[int, bytes], tuple[float, float] | None] = {}  # see `_share_left`
        lb = scenario.load_balancer
        # A failing host is out of rotation this long after it fails, and back this long after it is healthy.
        self.lb_out_s = lb.out_after_s if lb.health_checks else np.inf
        self.lb_back_s = lb.back_after_s
        base = scenario.baseline
        self._lat_mu = np.log(base.latency_p50_ms)
        self._lat_sigma = max((np.log(base.latency_p99_ms) - np.log(base.latency_p50_ms)) / Z99, 1e-6)

    def _use_faults(self, faults: tuple[Fault, ...]) -> None:
        self.az_outages = [f for f in faults if f.kind in AZ_DOWN_KINDS]
        self.dep_faults = [f for f in faults if f.kind == "dependency_degradation"]
        self.region_events = [f for f in faults if f.kind == "region_event"]
        # Parts of `expected` that depend on the faults and the window but not on the scope's hosts,
        # kept for the whole-run windows of healthy scopes (see `expected`, `_serving`). New with the
        # faults, so a copy with other faults (`fault_cost`) never sees them.
        self._shared_serving: dict[tuple[int, int, int], _SharedRegion] = {}
        self._shared_deps: dict[tuple[int, int, int, int, bool], tuple[np.ndarray, np.ndarray]] = {}

    def fault_cost(self, kind: str, chunk_periods: int = 1440) -> float:
        """Expected failed requests the world's faults of one kind cause by themselves: the fleet's
        errors with only them, less its errors with no fault, over the periods they span (no bad change)."""
        faults = tuple(f for f in self.faults if f.kind == kind)
        if not faults:
            return 0.0
        alone, none = copy.copy(self), copy.copy(self)
        alone._use_faults(faults)
        none._use_faults(())
        p = self.period_s
        total = 0.0
        for r in sorted({f.region for f in faults}):
            hosts = self.layout.hosts_in_region(r)
            covered = np.zeros(self.n_periods, dtype=bool)
            for f in faults:
                if f.region == r:
                    covered[int(f.start_s // p):min(int(np.ceil(f.end_s / p)), self.n_periods)] = True
            for k0 in range(0, self.n_periods, chunk_periods):
                k1 = min(k0 + chunk_periods, self.n_periods)
                if covered[k0:k1].any():
                    with_f = alone.expected(hosts, k0, k1, with_batches=False).errors
                    without = none.expected(hosts, k0, k1, with_batches=False).errors
                    total += float(((with_f - without) * covered[k0:k1]).sum())
        return total

    # ------------------------------------------------------------ helpers

    def _frac(self, on: np.ndarray, off: np.ndarray, t0: np.ndarray) -> np.ndarray:
        """Share of each period [t0, t0+P) covered by each interval [on, off): intervals x periods."""
        p = self.period_s
        cover = np.minimum(off[:, None], t0[None, :] + p) - np.maximum(on[:, None], t0[None, :])
        return np.clip(cover / p, 0.0, 1.0)

    def _select(self, exposures: ExposureLog | None, in_scope: np.ndarray, t0: float, t1: float,
                overlay: Overlay | None, only_change: int | None):
        """Exposure intervals of in-scope hosts overlapping [t0, t1), with a planned switch applied."""
        if exposures is None or self.defects is None:
            empty = np.empty(0)
            return empty.astype(np.int64), empty.astype(np.int64), empty, empty
        if only_change is None:
            n = exposures.size
            change, host = exposures.change[:n], exposures.host[:n]
            on, off = exposures.on_s[:n], exposures.off_s[:n]
        else:  # that change's rows only, in the same (row) order
            rows = exposures.rows_of(only_change)
            change, host = exposures.change[rows], exposures.host[rows]
            on, off = exposures.on_s[rows], exposures.off_s[rows]
        if overlay is not None:
            off = np.minimum(off, overlay.switch_s[host])
        keep = in_scope[host] & (off > t0) & (on < t1) & (off > on)
        change, host, on, off = change[keep], host[keep], on[keep], off[keep]
        if overlay is not None and overlay.new_changes:
            planned = np.flatnonzero(in_scope & (overlay.switch_s < t1))
            for c in overlay.new_changes:
                if only_change is not None and c != only_change:
                    continue
                change = np.concatenate([change, np.full(planned.size, c)])
                host = np.concatenate([host, planned])
                on = np.concatenate([on, overlay.switch_s[planned]])
                off = np.concatenate([off, np.full(planned.size, np.inf)])
        return change, host, on, off

    # ------------------------------------------------------------ capacity

    def _cpu_pct(self, requests_per_period: np.ndarray) -> np.ndarray:
        """CPU of a host serving this many requests per period: idle use plus load over capacity."""
        idle = self.sc.baseline.cpu_idle_pct
        rpm = requests_per_period * (60.0 / self.period_s)
        return idle + (100.0 - idle) * rpm / self.sc.fleet.host_capacity_rpm

    def _serving(self, r: int, in_scope: np.ndarray, k0: int, k1: int, t0: np.ndarray, with_batches: bool = True,
                 out_of_rotation: dict[int, np.ndarray] | None = None, shared: bool = False):
        """What the scope's hosts in region r serve, per period, with hosts out of service taken into account.

        Hosts are out of service in an AZ outage (after its failover), while the load balancer keeps
        them out of rotation (`out_of_rotation`: host -> share of each period) and, with `with_batches`,
        while a deployment batch that left too little capacity replaces them. The region's other
        hosts then take their share; a host asked for more than its capacity sheds the excess as
        errors (static stability: a region must survive the loss of an AZ, or of a batch, at peak).
        Returns the requests the scope serves, the sum and the maximum of its hosts' CPU, and the
        requests it sheds.

        With `shared` (no batches, nobody out of rotation: the exogenous world only), what a host of
        each group serves is the same for every scope of the region and window, so it is computed
        once and kept: each scope then sums the very same arrays.
        """
        if shared and not with_batches and not out_of_rotation:
            return self._serving_shared(r, in_scope, k0, k1, t0)
        lay = self.layout
        L = k1 - k0
        t1 = k1 * self.period_s
        region_hosts = lay.hosts_in_region(r)
        # Share of each period out of service: per AZ (outages) and per host (batches).
        az_down = self._az_down(r, t0, t1)
        host_down: dict[int, np.ndarray] = {}
        if with_batches:
            for b in self.batches_out:
                if b.region == r and b.start_s < t1 and b.end_s > t0[0]:
                    frac = self._frac(np.array([b.start_s]), np.array([b.end_s]), t0)[0]
                    for h in b.hosts.tolist():
                        host_down[h] = np.maximum(host_down.get(h, 0.0), frac)
        for h, frac in (out_of_rotation or {}).items():
            if lay.host_region[h] == r:
                host_down[h] = np.maximum(host_down.get(h, 0.0), frac)
        down_share = np.zeros(L)
        for az, frac in az_down.items():
            down_share += lay.host_weight[region_hosts[lay.host_az[region_hosts] == az]].sum() * frac
        for h, frac in host_down.items():
            # A host both in a failed AZ and in a batch counts once.
            down_share += lay.host_weight[h] * np.maximum(frac - az_down.get(int(lay.host_az[h]), 0.0), 0.0)
        multiplier = 1.0 / np.maximum(1.0 - down_share, 1e-9)
        region_requests = self.requests[r, k0:k1]
        capacity = self.sc.fleet.host_capacity_rpm * self.period_s / 60.0
        served, cpu_sum, cpu_max, shed = np.zeros(L), np.zeros(L), np.zeros(L), np.zeros(L)
        scope = region_hosts[in_scope[region_hosts]]
        # Hosts with the same weight and the same service history behave alike: compute each group once.
        az_key = np.where(np.isin(lay.host_az[scope], list(az_down)), lay.host_az[scope], -1)
        host_key = np.where(np.isin(scope, list(host_down)), scope, -1)
        keys, first, counts = np.unique(np.stack([lay.host_weight[scope], az_key, host_key]), axis=1,
                                        return_index=True, return_counts=True)
        # With every host of the region out of service the requests still arrive, and all fail.
        nobody = down_share >= 1.0 - 1e-9
        for weight, az, host, count in zip(
            keys[0].tolist(), keys[1].tolist(), keys[2].tolist(), counts.tolist(), strict=True
        ):
            out = np.zeros(L)
            if az >= 0:
                out = np.maximum(out, az_down[int(az)])
            if host >= 0:
                out = np.maximum(out, host_down[int(host)])
            per_host = np.where(nobody, region_requests * weight, region_requests * weight * multiplier * (1.0 - out))
            served += per_host * count
            shed += np.where(nobody, per_host, np.maximum(per_host - capacity, 0.0)) * count
            cpu = np.minimum(self._cpu_pct(per_host), 100.0)
            cpu_sum += cpu * count
            cpu_max = np.maximum(cpu_max, cpu)
        return served, cpu_sum, cpu_max, shed

    def _az_down(self, r: int, t0: np.ndarray, t1: float) -> dict[int, np.ndarray]:
        """AZ of region `r` -> the share of each period (starting at `t0`, ending by `t1`) it is out
        of service in an AZ outage, after the outage's failover."""
        az_down: dict[int, np.ndarray] = {}
        for f in self.az_outages:
            if f.region == r and f.start_s + f.failover_s < t1 and f.end_s > t0[0]:
                frac = self._frac(np.array([f.start_s + f.failover_s]), np.array([f.end_s]), t0)[0]
                az_down[f.az] = np.maximum(az_down.get(f.az, 0.0), frac)
        return az_down

    def _serving_shared(self, r: int, in_scope: np.ndarray, k0: int, k1: int, t0: np.ndarray):
        """`_serving` without batches or hosts out of rotation, with each group's per-host arrays kept:
        the same operations on the same inputs as `_serving`, done once per region and window."""
        lay = self.layout
        L = k1 - k0
        key = (r, k0, k1)
        region = self._shared_serving.get(key)
        if region is None:
            t1 = k1 * self.period_s
            region_hosts = lay.hosts_in_region(r)
            az_down = self._az_down(r, t0, t1)
            down_share = np.zeros(L)
            for az, frac in az_down.items():
                down_share += lay.host_weight[region_hosts[lay.host_az[region_hosts] == az]].sum() * frac
            multiplier = 1.0 / np.maximum(1.0 - down_share, 1e-9)
            nobody = down_share >= 1.0 - 1e-9
            region = self._shared_serving[key] = (region_hosts, az_down, multiplier, nobody, {})
        region_hosts, az_down, multiplier, nobody, groups = region
        region_requests = self.requests[r, k0:k1]
        capacity = self.sc.fleet.host_capacity_rpm * self.period_s / 60.0
        served, cpu_sum, cpu_max, shed = np.zeros(L), np.zeros(L), np.zeros(L), np.zeros(L)
        scope = region_hosts[in_scope[region_hosts]]
        az_key = np.where(np.isin(lay.host_az[scope], list(az_down)), lay.host_az[scope], -1)
        host_key = np.full(scope.shape, -1, dtype=scope.dtype)
        keys, first, counts = np.unique(np.stack([lay.host_weight[scope], az_key, host_key]), axis=1,
                                        return_index=True, return_counts=True)
        for weight, az, count in zip(keys[0].tolist(), keys[1].tolist(), counts.tolist(), strict=True):
            group = groups.get((weight, az))
            if group is None:
                out = np.zeros(L)
                if az >= 0:
                    out = np.maximum(out, az_down[int(az)])
                per_host = np.where(nobody, region_requests * weight,
                                    region_requests * weight * multiplier * (1.0 - out))
                group = groups[(weight, az)] = (
                    per_host, np.where(nobody, per_host, np.maximum(per_host - capacity, 0.0)),
                    np.minimum(self._cpu_pct(per_host), 100.0))
            per_host, shed_host, cpu = group
            served += per_host * count
            shed += shed_host * count
            cpu_sum += cpu * count
            cpu_max = np.maximum(cpu_max, cpu)
        return served, cpu_sum, cpu_max, shed

    def _out_of_rotation(self, regions: np.ndarray, exposures: ExposureLog | None, t0: np.ndarray, t1_s: float,
                         overlay: Overlay | None, only_change: int | None) -> dict[int, np.ndarray]:
        """Hosts of the regions the load balancer keeps out of rotation, with the share of each period
        [t0, t0 + P) they are out: from `lb_out_s` after a bad change makes them fail their health
        checks until `lb_back_s` after the change leaves them."""
        d = self.defects
        if d is None or exposures is None or not np.isfinite(self.lb_out_s) or not d.fails_health.any() or not t0.size:
            return {}
        mask = np.isin(self.layout.host_region, regions)
        change, host, on, off = self._select(exposures, mask, float(t0[0]) - self.lb_back_s, t1_s, overlay, only_change)
        out_from = on + d.down_after_s[change] + self.lb_out_s
        keep = d.fails_health[change] & (out_from < off)
        if not keep.any():
            return {}
        fracs = self._frac(out_from[keep], off[keep] + self.lb_back_s, t0)
        out: dict[int, np.ndarray] = {}
        for h, frac in zip(host[keep].tolist(), fracs, strict=True):
            out[h] = np.maximum(out.get(h, 0.0), frac)
        return out

    def batch_sheds(self, r: int, hosts: np.ndarray, start_s: float, end_s: float) -> bool:
        """Would taking these hosts of region r out of service over [start_s, end_s) overload the others?"""
        k0, k1 = int(start_s // self.period_s), min(int(np.ceil(end_s / self.period_s)), self.n_periods)
        if k1 <= k0:
            return False
        # Quick bound first: with no outage or other batch overlapping, the busiest remaining host
        # at the busiest period decides.
        overlapping: list[Fault | BatchOut] = [
            f for f in self.az_outages if f.region == r and f.start_s < end_s and f.end_s > start_s]
        overlapping += [b for b in self.batches_out if b.region == r and b.start_s < end_s and b.end_s > start_s]
        if not overlapping:
            left = self._share_left(r, hosts)
            if left is not None:
                heaviest, share_left = left
                busiest = self.requests[r, k0:k1].max() * heaviest
                if busiest / share_left <= self.sc.fleet.host_capacity_rpm * self.period_s / 60.0:
                    return False
        self.batches_out.append(BatchOut(r, hosts, start_s, end_s))
        in_scope = np.zeros(self.layout.n_hosts, dtype=bool)
        in_scope[self.layout.hosts_in_region(r)] = True
        _, _, _, shed = self._serving(r, in_scope, k0, k1, np.arange(k0, k1) * self.period_s)
        self.batches_out.pop()
        return bool((shed > 1e-9).any())

    def _share_left(self, r: int, hosts: np.ndarray) -> tuple[float, float] | None:
        """The largest weight and the total weight of region r's hosts outside `hosts` (None: none
        left). Kept per batch: every version deploys the same batches of a step."""
        key = (r, hosts.tobytes())
        if key not in self._shares_left:
            lay = self.layout
            region_hosts = lay.hosts_in_region(r)
            out = np.zeros(lay.n_hosts, dtype=bool)
            out[hosts] = True
            remaining = region_hosts[~out[region_hosts]]
            self._shares_left[key] = ((lay.host_weight[remaining].max(), lay.host_weight[remaining].sum())
                                      if remaining.size else None)
        return self._shares_left[key]

    # ------------------------------------------------------------ expected values

    def _blocks(self, on: np.ndarray, off: np.ndarray, k0: int, k1: int) -> list[tuple[slice, np.ndarray]]:
        """Periods [k0, k1) cut into blocks (slices from k0), each with the intervals that overlap it,
        in their order; blocks no interval overlaps are left out.

        An interval adds exact zeros to every period it does not overlap, and numpy sums a
        (intervals x periods) array over its first axis one interval after another when there are
        two periods or more: leaving those zeros out of a block gives every period the same sum, to
        the last bit, for much less work when many short intervals cross a long window. A window
        of one period (summed pairwise) or with few intervals is one block, as it always was.
        """
        L = k1 - k0
        if not on.size:
            return []
        every = np.arange(on.size)
        if L < 2 * BLOCK_PERIODS or on.size < BLOCK_MIN_INTERVALS:
            return [(slice(0, L), every)]
        p = self.period_s
        out = []
        for a in range(0, L, BLOCK_PERIODS):
            b = L if L - a < 2 * BLOCK_PERIODS else a + BLOCK_PERIODS  # no block of fewer than two periods
            rows = every[(on < (k0 + b) * p) & (off > (k0 + a) * p)]
            if rows.size:
                out.append((slice(a, b), rows))
            if b == L:
                break
        return out

    def expected(self, hosts: np.ndarray, k0: int, k1: int, exposures: ExposureLog | None = None,
                 overlay: Overlay | None = None, only_change: int | None = None,
                 baseline: bool = True, with_batches: bool = True) -> WindowMetrics:
        """Mean metrics of the hosts over periods [k0, k1).

        `only_change` keeps a single bad change's effect (with `baseline=False`, its own errors:
        the blast radius). `with_batches=False` leaves out capacity lost to deployment batches
        (the exogenous world only).
        """
        L = k1 - k0
        lay, base, p = self.layout, self.sc.baseline, self.period_s
        # The exogenous world over the whole run (a healthy scope's alarms): parts that do not depend
        # on the scope's hosts are computed once and kept (bit for bit what each scope would compute).
        whole_run = exposures is None and not with_batches and k0 == 0 and k1 == self.n_periods
        t0 = np.arange(k0, k1) * p
        t_mid = t0 + p / 2
        in_scope = np.zeros(lay.n_hosts, dtype=bool)
        in_scope[hosts] = True
        n_scope = max(int(in_scope.sum()), 1)
        regions = np.unique(lay.host_region[hosts])
        n_api = self.api_share.size

        requests = np.zeros(L)
        overloaded = np.zeros(L)  # requests shed because the hosts serving them are over capacity
        cpu_sum, cpu_base_max = np.zeros(L), np.zeros(L)
        region_req_in_scope = {}
        out_of_rotation = self._out_of_rotation(regions, exposures, t0, k1 * p, overlay, only_change)
        for r in regions.tolist():
            served, cpu_r, cpu_r_max, shed = self._serving(r, in_scope, k0, k1, t0, with_batches, out_of_rotation,
                                                           shared=whole_run)
            region_req_in_scope[r] = served
            requests += served
            cpu_sum += cpu_r
            cpu_base_max = np.maximum(cpu_base_max, cpu_r_max)
            overloaded += shed
        requests_api = requests[None, :] * self.api_share[:, None]
        b = 1.0 if baseline else 0.0
        errors_api = (requests_api * base.error_rate + overloaded[None, :] * self.api_share[:, None]) * b
        unhealthy = np.zeros(L)
        cpu_base = cpu_sum / n_scope
        cpu_add, mem_add, disk_add = np.zeros(L), np.zeros(L), np.zeros(L)
        cpu_max, mem_max, disk_max = np.zeros(L), np.zeros(L), np.zeros(L)
        slow_req, slow_weighted = np.zeros(L), np.zeros(L)
        # Extra load bad changes put on dependencies (none without exposures: not even allocated).
        dep_extra_load = None if exposures is None else np.zeros((len(self.deps), lay.n_regions, L))

        change_all, host_all, on_all, off_all = self._select(exposures, in_scope, t0[0] if L else 0, (k1) * p, overlay,
                                                             only_change)
        # Period blocks, each with only the intervals that overlap it (see _blocks): the same sums.
        for s, rows in self._blocks(on_all, off_all, k0, k1):
            d = self.defects
            assert d is not None  # _select returns intervals only when there are bad changes
            change, host, on, off = change_all[rows], host_all[rows], on_all[rows], off_all[rows]
            ka, kb = k0 + s.start, k0 + s.stop
            tb0, tb_mid = t0[s], t_mid[s]
            frac = self._frac(on, off, tb0)
            # A host that fails its health checks serves (and fails) requests until the load balancer
            # takes it out of rotation; it stays unhealthy and keeps its resource use meanwhile.
            serving_off = np.where(d.fails_health[change], np.minimum(off, on + d.down_after_s[change] + self.lb_out_s),
                                   off)
            frac_serving = self._frac(on, serving_off, tb0)
            r_i = lay.host_region[host]
            load = self.load[r_i, ka:kb]
            since = tb_mid[None, :] - on[:, None]
            active = (since >= d.delay_s[change][:, None]) & (load >= d.min_load[change][:, None])
            age_h = np.where(active, (since - d.delay_s[change][:, None]) / 3600.0, 0.0)
            host_req = self.requests[r_i, ka:kb] * lay.host_weight[host][:, None] * frac_serving
            cpu_delta = d.cpu_growth[change][:, None] * age_h
            mem_delta = d.memory_growth[change][:, None] * age_h
            disk_delta = d.disk_growth[change][:, None] * age_h
            cpu = self._cpu_pct(self.requests[r_i, ka:kb] * lay.host_weight[host][:, None]) + cpu_delta
            down = active & (d.crash[change][:, None] | (base.memory_pct + mem_delta >= 100.0))
            overload = np.where(cpu > 100.0, 1.0 - 100.0 / np.maximum(cpu, 1e-9), 0.0)
            general = np.where(d.api[change] < 0, d.error_rate[change], 0.0)[:, None] * active
            err_all = np.where(down, 1.0, np.minimum(1.0, general + overload))
            api_specific = np.where(down, 0.0, (d.api[change] >= 0)[:, None] * d.error_rate[change][:, None] * active)
            errors_api[:, s] += (host_req * err_all).sum(axis=0)[None, :] * self.api_share[:, None]
            for a in range(n_api):
                api_rows = d.api[change] == a
                if api_rows.any():
                    errors_api[a, s] += (host_req[api_rows] * api_specific[api_rows]).sum(axis=0) * self.api_share[a]
            unhealthy[s] += (frac * down).sum(axis=0)
            cpu_add[s] += (frac * cpu_delta).sum(axis=0) / n_scope
            mem_add[s] += (frac * mem_delta).sum(axis=0) / n_scope
            disk_add[s] += (frac * disk_delta).sum(axis=0) / n_scope
            cpu_max[s] = (frac * cpu_delta).max(axis=0)
            mem_max[s] = (frac * mem_delta).max(axis=0)
            disk_max[s] = (frac * disk_delta).max(axis=0)
            is_slow = (d.latency_factor[change] > 1.0)[:, None] & active & ~down
            slow_req[s] += (host_req * is_slow).sum(axis=0)
            slow_weighted[s] += (host_req * is_slow * d.latency_factor[change][:, None]).sum(axis=0)
            # Clients give up on requests slower than their timeout: those a defect slows past it fail
            # (the baseline's own timeouts are part of the baseline error rate).
            for a in np.flatnonzero(np.isfinite(self.timeout_ms)).tolist():
                extra = self._slower_than(self.timeout_ms[a], d.latency_factor[change]) - self._slower_than(
                    self.timeout_ms[a], 1.0)
                errors_api[a, s] += (host_req * is_slow * extra[:, None]).sum(axis=0) * self.api_share[a]

        # Dependencies see load from every host of the region, not only the scope's.
        if self.deps and self.defects is not None and dep_extra_load is not None:
            region_mask = np.isin(lay.host_region, regions)
            dc, dh, don, doff = self._select(exposures, region_mask, t0[0] if L else 0, k1 * p, overlay, only_change)
            rows = self.defects.dependency[dc] >= 0
            dc, dh, don, doff = dc[rows], dh[rows], don[rows], doff[rows]
            for s, block in self._blocks(don, doff, k0, k1):
                bc, bh, bon = dc[block], dh[block], don[block]
                frac = self._frac(bon, doff[block], t0[s])
                since = t_mid[s][None, :] - bon[:, None]
                r_i = lay.host_region[bh]
                active = (since >= self.defects.delay_s[bc][:, None]) & (
                    self.load[r_i, k0 + s.start:k0 + s.stop] >= self.defects.min_load[bc][:, None])
                extra = (
                    lay.host_weight[bh][:, None] * frac * active * (self.defects.dependency_factor[bc][:, None] - 1.0)
                )
                np.add.at(dep_extra_load[:, :, s], (self.defects.dependency[bc], r_i), extra)

        dep_rate: dict[str, np.ndarray] = {}
        # Per region, its requests in scope per API: the first product of every dependency's errors.
        req_api_of = {r: region_req_in_scope[r][None, :] * self.api_share[:, None] for r in regions.tolist()
                      } if self.deps else {}
        for j, dep in enumerate(self.deps):
            rate_sum = np.zeros(L)
            weight_sum = 0.0
            for r in regions.tolist():
                # Without exposures no change adds load: the same for every scope of the region.
                dep_key = (j, r, k0, k1, baseline)
                cached = self._shared_deps.get(dep_key) if whole_run else None
                if cached is None:
                    fault = np.zeros(L)
                    for f in self.dep_faults:
                        if f.dependency == dep.name and f.region == r:
                            fault += self._frac(np.array([f.start_s]), np.array([f.end_s]), t0)[0] * f.error_rate
                    load = 1.0 + (np.zeros(L) if dep_extra_load is None else dep_extra_load[j, r])
                    shed = np.maximum(0.0, 1.0 - dep.capacity_factor / load)
                    # A change's own blast radius (baseline=False) counts the load it adds, not faults.
                    extra = np.minimum(1.0, fault + shed) if baseline else shed
                    cached = (dep.calls_share * extra, np.minimum(1.0, dep.baseline_error_rate * b + extra))
                    if whole_run:
                        self._shared_deps[dep_key] = cached
                share, rate = cached
                errors_api += req_api_of[r] * share[None, :]
                req_sum = region_req_in_scope[r].sum()
                rate_sum += rate * req_sum
                weight_sum += req_sum
            dep_rate[dep.name] = rate_sum / weight_sum if weight_sum > 0 else rate_sum

        if baseline:
            for f in self.az_outages:
                in_az = in_scope & (lay.host_az == f.az)
                if not in_az.any() or f.end_s <= t0[0] or f.start_s >= k1 * p:
                    continue
                w = lay.host_weight[in_az].sum()
                failing = self._frac(np.array([f.start_s]), np.array([f.start_s + f.failover_s]), t0)[0]
                errors_api += (self.requests[f.region, k0:k1] * w * failing)[None, :] * self.api_share[:, None]
                unhealthy += self._frac(np.array([f.start_s]), np.array([f.end_s]), t0)[0] * np.count_nonzero(in_az)
            for f in self.region_events:
                if f.region not in region_req_in_scope or f.end_s <= t0[0] or f.start_s >= k1 * p:
                    continue
                # Every AZ at once: no AZ to shift to, a share of whatever the scope serves fails.
                during = self._frac(np.array([f.start_s]), np.array([f.end_s]), t0)[0] * f.error_rate
                errors_api += (region_req_in_scope[f.region] * during)[None, :] * self.api_share[:, None]

        errors_api = np.minimum(errors_api, requests_api)
        errors = errors_api.sum(axis=0)
        if on_all.size:
            slow_share = np.divide(slow_req, requests, out=np.zeros_like(requests), where=requests > 0)
            slow_factor = np.divide(slow_weighted, slow_req, out=np.ones_like(slow_req), where=slow_req > 0)
        else:  # no interval: nothing slowed, the divisions above would give exactly these
            slow_share, slow_factor = np.zeros_like(requests), np.ones_like(slow_req)
        slo_breaches = None
        if self.sc.latency_slo_ms is not None and baseline:
            slo = self.sc.latency_slo_ms
            slow = (1.0 - slow_share) * self._slower_than(slo, 1.0) + slow_share * self._slower_than(slo, slow_factor)
            slo_breaches = np.maximum(requests - errors, 0.0) * slow
        return WindowMetrics(
            k0=k0,
            n_hosts=n_scope,
            requests=requests,
            requests_api=requests_api,
            errors=errors,
            errors_api=errors_api,
            unhealthy_hosts=unhealthy,
            cpu_pct={"average": cpu_base + cpu_add, "maximum": cpu_base_max + cpu_max},
            memory_pct={"average": base.memory_pct + mem_add, "maximum": base.memory_pct + mem_max},
            disk_pct={"average": base.disk_pct + disk_add, "maximum": base.disk_pct + disk_max},
            dependency_error_rate=dep_rate,
            slow_share=slow_share if slow_share.any() else None,
            slow_factor=slow_factor,
            slo_breaches=slo_breaches,
            model=self,
        )

    def _slower_than(self, limit_ms: float, factor: np.ndarray | float) -> np.ndarray:
        """Share of requests slower than `limit_ms` on a host whose latency is the baseline's x `factor`
        (the baseline lognormal fitted to p50 and p99)."""
        return ndtr((self._lat_mu + np.log(factor) - np.log(limit_ms)) / self._lat_sigma)

    def _latency(self, requests: np.ndarray, share: np.ndarray | None,
                 factor: np.ndarray | None) -> dict[str, np.ndarray]:
        """Latency percentiles of a mixture: a share of requests on slowed hosts (slowed `factor`
        times on average), the rest at baseline.

        The baseline is lognormal fitted to p50 and p99; each configured percentile is scaled by
        how far the mixture's quantile moved from the baseline's.
        """
        if share is None or factor is None or not share.any():
            base = self.sc.baseline
            return {"p50": np.full(requests.shape, base.latency_p50_ms), "p90": np.full(requests.shape,
                    base.latency_p90_ms), "p99": np.full(requests.shape, base.latency_p99_ms)}
        return {name: self._latency_at(name, np.full(requests.shape, q), share, factor)
                for name, q in PERCENTILES.items()}

    def _latency_at(self, name: str, u: np.ndarray, share: np.ndarray | None, factor: np.ndarray | None) -> np.ndarray:
        """Latency (ms) at quantile(s) `u` of the mixture, on the scale of configured percentile `name`."""
        base = self.sc.baseline
        value = {"p50": base.latency_p50_ms, "p90": base.latency_p90_ms, "p99": base.latency_p99_ms}[name]
        mu, sigma = self._lat_mu, self._lat_sigma
        z_q = float(ndtri(PERCENTILES[name]))
        if share is None or factor is None or not share.any():
            return value * np.exp(sigma * (ndtri(u) - z_q))
        base_q = np.exp(mu + sigma * z_q)
        lo = mu + sigma * ndtri(u)
        hi = lo + np.log(np.maximum(factor, 1.0)) + 1e-9
        for _ in range(40):  # bisection on log-latency: the mixture CDF is monotone
            mid = (lo + hi) / 2
            cdf = (1 - share) * ndtr((mid - mu) / sigma) + share * ndtr((mid - mu - np.log(factor)) / sigma)
            below = cdf < u
            lo = np.where(below, mid, lo)
            hi = np.where(below, hi, mid)
        return value * np.exp((lo + hi) / 2) / base_q

    def sampled_quantile(self, name: str, requests: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
        """The quantile a percentile of `requests` samples lands on, per period: the nearest-rank
        order statistic ceil(q n) of n uniforms is Beta(j, n - j + 1) distributed, so a p99 of 5
        requests is the largest of 5 (its spread is huge) and a p99 of a million is almost exactly q."""
        q = PERCENTILES[name]
        n = np.maximum(np.round(requests), 1.0)
        j = np.maximum(np.ceil(q * n - 1e-9), 1.0)
        out = np.clip(q + np.sqrt(q * (1 - q) / n) * ndtri(uniforms), 1e-12, 1 - 1e-12)
        small = n < EXACT_ORDER_STATISTIC_BELOW
        if small.any():
            out[small] = betaincinv(j[small], n[small] - j[small] + 1.0, uniforms[small])
        return out

    def low_sample(self, m: WindowMetrics, metric: str) -> np.ndarray:
        """Periods in which a latency percentile has too few samples for CloudWatch to trust it."""
        if not metric.startswith("latency_"):
            return np.zeros(m.requests.shape, dtype=bool)
        return m.requests < low_sample_count(PERCENTILES[metric.split("_")[1]])

    # ------------------------------------------------------------ what an alarm sees

    def observe(self, m: WindowMetrics, metric: str, noise: ScopeNoise, *, api: str | None = None,
                statistic: str = "average", dependency: str | None = None) -> np.ndarray:
        """One noisy datapoint per period, as a metric alarm would see it; NaN where there is none.

        `noise` is the scope's keyed noise: period k's datapoint depends only on its mean and on
        the uniform of (scope, noise kind, k), so every window over k gives it the same value.

        Request counts come from the load balancer and always exist; a rate or latency needs
        requests; host metrics (CPU, memory, disk, latency) need at least one host that is up:
        a crashed host publishes nothing, which is where treat_missing_data matters.
        """
        values = self._observe(m, metric, noise, api=api, statistic=statistic, dependency=dependency)
        if metric in ("error_rate", "latency_p50_ms", "latency_p90_ms", "latency_p99_ms"):
            values = np.where(m.requests > 0, values, np.nan)
        if metric.startswith("latency_") or metric in ("cpu_pct", "memory_pct", "disk_pct"):
            values = np.where(m.unhealthy_hosts >= m.n_hosts - 1e-9, np.nan, values)
        return values

    def _observe(self, m: WindowMetrics, metric: str, noise: ScopeNoise, *, api: str | None,
                 statistic: str, dependency: str | None) -> np.ndarray:
        base = self.sc.baseline
        k0, k1 = m.k0, m.k0 + m.requests.size
        apis = list(self.sc.traffic.apis)
        if metric in ("requests", "errors", "error_rate", "log_errors"):
            if api is not None and api != "All":
                req, err = m.requests_api[apis.index(api)], m.errors_api[apis.index(api)]
            else:
                req, err = m.requests, m.errors
            if metric == "requests":
                return req
            # Errors, error rate and errors in logs of one API are the same failed requests: one draw.
            key = errors_kind(api)
            if key not in m.noise:
                counts = poisson(noise.uniforms(key, k0, k1), err)
                m.noise[key] = np.minimum(counts, np.round(req))
            counts = m.noise[key]
            if metric == "errors":
                return counts
            if metric == "log_errors":
                return counts * base.log_errors_per_error
            return np.divide(counts, req, out=np.zeros_like(req), where=req > 0)
        if metric.startswith("latency_"):
            key = metric.split("_")[1]
            kind = latency_sample_kind(key)
            if kind not in m.noise:
                # The percentile of the period's requests: a sample of them, not the distribution's.
                u = self.sampled_quantile(key, m.requests, noise.uniforms(kind, k0, k1))
                m.noise[kind] = self._latency_at(key, u, m.slow_share, m.slow_factor)
            values = m.noise[kind]
            if base.latency_noise_cv > 0:
                # One draw per period for all percentiles: a slow minute is slow across the distribution.
                if LATENCY not in m.noise:
                    m.noise[LATENCY] = lognormal_factor(noise.uniforms(LATENCY, k0, k1), base.latency_noise_cv)
                values = values * m.noise[LATENCY]
            return values
        if metric in ("cpu_pct", "memory_pct", "disk_pct"):
            values = getattr(m, metric)[statistic]
            if base.resource_noise_pct > 0:
                key = resource_kind(metric, statistic)
                if key not in m.noise:
                    m.noise[key] = normal(noise.uniforms(key, k0, k1), base.resource_noise_pct)
                values = values + m.noise[key]
            return np.clip(values, 0.0, 100.0 if metric != "cpu_pct" else np.inf)
        if metric == "unhealthy_hosts":
            return np.round(m.unhealthy_hosts)
        if metric == "dependency_error_rate":
            assert dependency is not None  # the scenario schema requires it for this metric
            return m.dependency_error_rate[dependency]
        raise ValueError(f"unknown metric {metric!r}")
