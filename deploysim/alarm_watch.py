"""How the simulator sees its alarms: ALARM/OK per metric period for any watched scope.

Most of the time a watched scope runs only good versions, so its alarm states depend on the
exogenous world alone (traffic, baseline, faults, noise). Those are computed once per scope for
the whole run and sliced. Only windows in which a bad change touches the scope (or is planned
to) are computed afresh from the exposure intervals.

Both paths draw the same keyed noise (`deploysim.noise`): a datapoint's noise depends on its
scope, metric and period only, so the cache is an optimisation, never a different answer, and
asking again (or in another order) gives the same states.
"""

from __future__ import annotations

import math

import numpy as np

from .alarms import parse_rule
from .alarms.series import EXTRA_EVALUATION_RANGE, combine_alarm_states, metric_alarm_codes
from .exposure import ExposureLog
from .metrics import MetricModel, Overlay, WindowMetrics
from .noise import NoiseStreams, ScopeNoise
from .policy.plan import WatchedAlarm
from .quiet import quiet_periods, replaceable
from .scenario.schema import MetricAlarm, Scenario


class AlarmWatch:
    """Alarm states of watched scopes, computed with numpy per run of periods."""

    def __init__(self, scenario: Scenario, metrics: MetricModel, exposures: ExposureLog,
                 seed_seq: np.random.SeedSequence):
        """`seed_seq` is the run's noise stream (`deploysim.seeds`); every draw is keyed below it."""
        self.metrics = metrics
        self.exposures = exposures
        self.layout = metrics.layout
        self.period_s = scenario.metric_period
        self.n_periods = metrics.n_periods
        self.metric_alarms: dict[str, MetricAlarm] = {a.name: a for a in scenario.alarms.metric}
        self.composites = {a.name: parse_rule(a.rule) for a in scenario.alarms.composite}
        # A period's datapoint is readable after the ingestion delay and judged after the evaluation delay.
        self.delay_s = float(scenario.alarms.ingestion_delay + scenario.alarms.evaluation_delay)
        self.max_n = max((a.evaluation_periods for a in scenario.alarms.metric), default=1)
        self.has_dependencies = bool(scenario.dependencies)
        self.noise = NoiseStreams(seed_seq)
        self._scope_noise: dict[bytes, ScopeNoise] = {}
        self._healthy: dict[tuple[bytes, str], np.ndarray] = {}
        self._masks: dict[bytes, tuple[np.ndarray, frozenset[int]]] = {}
        # Per scope: the log's (edits, size) when its intervals were taken, and the intervals (`_scope_intervals`).
        self._intervals: dict[bytes, tuple[tuple[int, int], np.ndarray, np.ndarray, np.ndarray]] = {}
        self.watched_names: set[str] = set()  # alarm names any step watches; the engine fills it in

    # ------------------------------------------------------------ states from datapoints

    def _states(self, values: np.ndarray, alarm: MetricAlarm, start: int, m: WindowMetrics) -> np.ndarray:
        """State codes (OK, ALARM, INSUFFICIENT_DATA) of a metric alarm from its datapoints."""
        hold = None
        if alarm.evaluate_low_sample_count_percentile == "ignore":
            hold = self.metrics.low_sample(m, alarm.metric)
        return metric_alarm_codes(values, alarm, start, hold)

    def _noise_of(self, hosts: np.ndarray) -> ScopeNoise:
        key = hosts.tobytes()
        noise = self._scope_noise.get(key)
        if noise is None:
            noise = self._scope_noise[key] = self.noise.scope(hosts)
        return noise

    def _flags(self, m: WindowMetrics, alarm: MetricAlarm, noise: ScopeNoise) -> np.ndarray:
        """The alarm's datapoints (NaN where missing) for the window."""
        return self.metrics.observe(m, alarm.metric, noise, api=alarm.api, statistic=alarm.statistic,
                                    dependency=alarm.dependency)

    def _combine(self, name: str, flags_of) -> np.ndarray:
        """States of alarm `name` (metric or composite) from a function giving a metric alarm's states."""
        return combine_alarm_states(name, self.metric_alarms, self.composites, flags_of)

    # ------------------------------------------------------------ healthy scopes, cached

    def healthy_states(self, alarm: str, hosts: np.ndarray) -> np.ndarray:
        """States of `alarm` over the whole run for a scope running only good versions.

        Noise is drawn only where a datapoint could breach (`deploysim.quiet`): elsewhere the
        states are those of the full computation but for a chance below 1e-30 per alarm and run.
        """
        scope = hosts.tobytes()
        key = (scope, alarm)
        if key not in self._healthy:
            m = self.metrics.expected(hosts, 0, self.n_periods, with_batches=False)
            noise = self._noise_of(hosts)
            # Every alarm watched anywhere is computed now, so the scope's metrics are built once.
            names = sorted(self.watched_names | {alarm})
            by_signature: dict[tuple, list[MetricAlarm]] = {}
            for a in self._metric_members(names):
                by_signature.setdefault(self._signature(a), []).append(a)
            parts: dict[tuple[int, int], WindowMetrics] = {}
            observed: dict[tuple, np.ndarray] = {}
            all_quiet: set[str] = set()  # metric alarms none of whose datapoints can breach
            for signature, alarms in by_signature.items():
                observed[signature] = self._healthy_values(m, alarms, noise, parts, all_quiet)

            codes: dict[str, np.ndarray] = {}  # a metric alarm in several composites is evaluated once

            def states_of(alarm: MetricAlarm) -> np.ndarray:
                if alarm.name not in codes:
                    codes[alarm.name] = (np.zeros(self.n_periods, dtype=np.int8) if alarm.name in all_quiet
                                         else self._states(observed[self._signature(alarm)], alarm, 0, m))
                return codes[alarm.name]

            for name in names:
                self._healthy[(scope, name)] = self._combine(name, states_of)
        return self._healthy[key]

    @staticmethod
    def _signature(alarm: MetricAlarm) -> tuple:
        # Alarms on the same metric see the same datapoints (one draw of the noise).
        return (alarm.metric, alarm.api, alarm.statistic, alarm.dependency)

    def _metric_members(self, names: list[str]) -> list[MetricAlarm]:
        """The metric alarms the named alarms are built of (composites followed), in name order."""
        found: dict[str, MetricAlarm] = {}
        stack = list(names)
        while stack:
            name = stack.pop()
            if name in self.metric_alarms:
                found[name] = self.metric_alarms[name]
            elif name in self.composites:
                stack.extend(self.composites[name].alarm_names)
        return [found[n] for n in sorted(found)]

    def _healthy_values(self, m: WindowMetrics, alarms: list[MetricAlarm], noise: ScopeNoise,
                        parts: dict[tuple[int, int], WindowMetrics], all_quiet: set[str]) -> np.ndarray:
        """A healthy scope's datapoints for alarms of one signature over the whole run: drawn where
        any of them needs it, and -inf (breaching no "greater" threshold) where none does."""
        needed = np.zeros(self.n_periods, dtype=bool)
        for a in alarms:
            quiet = quiet_periods(self.metrics, m, a)
            if quiet is None:
                return self._flags(m, a, noise)
            if quiet.all():
                all_quiet.add(a.name)
            needed |= ~replaceable(quiet, a)
        if needed.all():
            return self._flags(m, alarms[0], noise)
        values = np.full(self.n_periods, -np.inf)
        if not needed.any():
            return values
        edges = np.flatnonzero(np.diff(np.concatenate([[0], needed.view(np.int8), [0]])))
        for a, b in zip(edges[0::2].tolist(), edges[1::2].tolist(), strict=True):
            part = parts.get((a, b))
            if part is None:
                part = parts[(a, b)] = m.part(a, b)
            values[a:b] = self._flags(part, alarms[0], noise)
        return values

    def _scope_mask(self, hosts: np.ndarray) -> tuple[np.ndarray, frozenset[int]]:
        """Hosts whose bad changes can affect the scope's metrics (its region's, with dependencies), and its regions."""
        key = hosts.tobytes()
        cached = self._masks.get(key)
        if cached is None:
            lay = self.layout
            regions = np.unique(lay.host_region[hosts])
            if self.has_dependencies:
                mask = np.isin(lay.host_region, regions)
            else:
                mask = np.zeros(lay.n_hosts, dtype=bool)
                mask[hosts] = True
            cached = self._masks[key] = (mask, frozenset(regions.tolist()))
        return cached

    def _scope_intervals(self, hosts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Host, start and end of the exposure intervals that can affect the scope (`_scope_mask`), in
        row order, as the log stands: kept per scope until the log's next edit, so that the many
        `_touched` questions between two edits compare a few intervals, not the whole log."""
        ex = self.exposures
        key = hosts.tobytes()
        cached = self._intervals.get(key)
        if cached is None or cached[0] != (ex.edits, ex.size):
            n = ex.size
            mask, _ = self._scope_mask(hosts)
            rows = np.flatnonzero(mask[ex.host[:n]])
            cached = self._intervals[key] = ((ex.edits, ex.size), ex.host[rows], ex.on_s[rows], ex.off_s[rows])
        return cached[1], cached[2], cached[3]

    def _touched(self, hosts: np.ndarray, t0: float, t1: float, overlay: Overlay | None) -> bool:
        """Does any bad change run (or is planned to run) on the scope, or its region's dependencies, in [t0, t1)?"""
        scope, regions = self._scope_mask(hosts)
        if overlay is not None and overlay.new_changes and (overlay.switch_s[scope] < t1).any():
            return True
        if any(b.region in regions and b.start_s < t1 and b.end_s > t0 for b in self.metrics.batches_out):
            return True
        host, on, off = self._scope_intervals(hosts)
        if host.size == 0:
            return False
        # The same test on the scope's rows only: rows of other hosts never passed the scope mask.
        if overlay is not None:
            off = np.minimum(off, overlay.switch_s[host])
        return bool(((off > t0) & (on < t1)).any())

    # ------------------------------------------------------------ public

    def _row(self, alarm: str, hosts: np.ndarray, k_first: int, k_end: int, overlay: Overlay | None,
             window_cache: dict[bytes, WindowMetrics]) -> np.ndarray:
        """ALARM flags of one alarm over one scope for periods [k_first, k_end)."""
        p = self.period_s
        # N + 2 datapoints before the first: every period gets the evaluation range CloudWatch uses with missing data.
        k0 = max(0, k_first - (self.max_n + EXTRA_EVALUATION_RANGE - 1))
        if not self._touched(hosts, k0 * p, k_end * p, overlay):
            return self.healthy_states(alarm, hosts)[k_first:k_end]
        key = hosts.tobytes()
        if key not in window_cache:
            window_cache[key] = self.metrics.expected(hosts, k0, k_end, self.exposures, overlay)
        m, noise = window_cache[key], self._noise_of(hosts)
        return self._combine(alarm, lambda a: self._states(self._flags(m, a, noise), a, k_first - k0, m))

    def series(self, watched: tuple[WatchedAlarm, ...], k_first: int, k_end: int,
               overlay: Overlay | None = None) -> tuple[np.ndarray, list[str]]:
        """ALARM flags (watched alarms x periods [k_first, k_end)) and the alarms' names."""
        window_cache: dict[bytes, WindowMetrics] = {}
        rows = [self._row(w.alarm, w.hosts, k_first, k_end, overlay, window_cache) for w in watched]
        names = [f"{w.alarm}@{w.label}" for w in watched]
        if not rows:
            return np.zeros((0, max(k_end - k_first, 0)), dtype=bool), names
        return np.array(rows, dtype=bool), names

    def states(self, alarm: str, hosts: np.ndarray, k0: int, k1: int) -> np.ndarray:
        """ALARM flags of an alarm (metric or composite) over a scope for periods [k0, k1),
        given the exposures recorded so far."""
        k0, k1 = max(int(k0), 0), min(int(k1), self.n_periods)
        if k1 <= k0:
            return np.zeros(0, dtype=bool)
        return np.asarray(self._row(alarm, hosts, k0, k1, None, {}), dtype=bool)

    def datapoints(self, alarm: str, hosts: np.ndarray, k0: int, k1: int) -> np.ndarray:
        """A metric alarm's datapoints over a scope for periods [k0, k1) (NaN where missing),
        given the exposures recorded so far: the values its states are computed from."""
        if alarm not in self.metric_alarms:
            raise KeyError(f"{alarm!r} is not a metric alarm")
        return self.observed(self.metric_alarms[alarm], hosts, k0, k1)

    def observed(self, alarm: MetricAlarm, hosts: np.ndarray, k0: int, k1: int, *,
                 noise: ScopeNoise | None = None, healthy: bool = False) -> np.ndarray:
        """The datapoints an alarm like `alarm` (its metric, API and statistic) sees over a scope for
        periods [k0, k1), with the scope's keyed noise (or `noise`), given the exposures recorded so
        far (`healthy`: as if no bad change ran anywhere)."""
        k0, k1 = max(int(k0), 0), min(int(k1), self.n_periods)
        if k1 <= k0:
            return np.zeros(0)
        m = self.metrics.expected(hosts, k0, k1, None if healthy else self.exposures)
        return self._flags(m, alarm, self._noise_of(hosts) if noise is None else noise)

    def first_alarm(self, watched: tuple[WatchedAlarm, ...], t_from: float, t_to: float,
                    overlay: Overlay | None = None) -> tuple[float, str | None]:
        """When the first watched alarm fires in [t_from, t_to] (a datapoint is judged at its period's
        end plus the ingestion and evaluation delays)."""
        if not watched or t_to <= t_from:
            return math.inf, None
        p, d = self.period_s, self.delay_s
        k_first = max(int((t_from - d) // p), 0)
        k_end = min(int(math.ceil((t_to - d) / p)), self.n_periods)
        if k_end <= k_first:
            return math.inf, None
        # As `series`, row by row: the earliest ALARM period, and at it the first watched alarm in order.
        window_cache: dict[bytes, WindowMetrics] = {}
        idx, first = k_end - k_first, -1
        for i, w in enumerate(watched):
            row = self._row(w.alarm, w.hosts, k_first, k_end, overlay, window_cache)
            hit = int(row.argmax())  # the first True, if there is one
            if row[hit] and hit < idx:
                idx, first = hit, i
        if first < 0:
            return math.inf, None
        w = watched[first]
        return max(t_from, (k_first + idx + 1) * p + d), f"{w.alarm}@{w.label}"

    def in_alarm(self, watched: tuple[WatchedAlarm, ...], t_s: float) -> bool:
        """Is any of the alarms in ALARM on the last datapoint judged by t_s?"""
        k = int((t_s - self.delay_s) // self.period_s) - 1
        if k < 0:
            return False
        flags, _ = self.series(watched, k, k + 1)
        return bool(flags.any())
