"""Alarm states over a series of datapoints, as CloudWatch evaluates them period after period.

Pure numpy over datapoints: the simulator feeds it computed metrics, the real executor real ones.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from ..scenario.schema import MetricAlarm
from .composite import STATE_CODES, CompositeRule
from .metric_alarm import breaches, evaluate

EXTRA_EVALUATION_RANGE = 2  # CloudWatch retrieves more datapoints than N when some are missing


OK, ALARM, INSUFFICIENT_DATA = (STATE_CODES[s] for s in ("OK", "ALARM", "INSUFFICIENT_DATA"))
_NAMES = {code: name for name, code in STATE_CODES.items()}


def metric_alarm_codes(values: np.ndarray, alarm: MetricAlarm, start: int,
                       hold: np.ndarray | None = None) -> np.ndarray:
    """State code per period (0 OK, 1 ALARM, 2 INSUFFICIENT_DATA) from index `start` of `values`
    on; values before `start` are history (N + 2 of them give every period its full evaluation range).

    Without missing datapoints, M of the last N breaching is a cumulative-sum test. Periods
    whose evaluation range holds a missing datapoint are judged one by one by the CloudWatch
    rules of `deploysim.alarms.evaluate` (treat_missing_data, evaluation range of N + 2).
    `hold` marks periods in which the alarm is not evaluated and keeps its state (a percentile
    alarm with `evaluate_low_sample_count_percentile: ignore` and too few samples).
    """
    flags = breaches(values, alarm.threshold, alarm.comparison)
    n = alarm.evaluation_periods
    csum = np.concatenate([[0], np.cumsum(flags, dtype=np.int64)])
    # Every period is evaluated, history included, so a state carried into `start` is known.
    ends = np.arange(flags.size) + 1
    codes = ((csum[ends] - csum[np.maximum(ends - n, 0)]) >= alarm.datapoints_to_alarm).astype(np.int8)
    missing = np.isnan(values)
    if missing.any():
        _judge_missing(values, alarm, missing, ends, codes)
    if hold is not None and np.asarray(hold).any():
        hold = np.asarray(hold, dtype=bool)
        # A held period keeps the state of the last evaluated one (OK before any).
        last = np.maximum.accumulate(np.where(hold, -1, np.arange(codes.size)))
        codes = np.where(last >= 0, codes[np.maximum(last, 0)], OK).astype(np.int8)
    return codes[start:]


def _judge_missing(values: np.ndarray, alarm: MetricAlarm, missing: np.ndarray, ends: np.ndarray,
                   codes: np.ndarray) -> None:
    """Re-judge, in place, the periods whose evaluation range holds a missing datapoint."""
    n = alarm.evaluation_periods
    span = n + EXTRA_EVALUATION_RANGE
    msum = np.concatenate([[0], np.cumsum(missing, dtype=np.int64)])
    missing_in_range = msum[ends] - msum[np.maximum(ends - span, 0)]
    # A range with no datapoint at all is decided by the treatment alone (ignore keeps the state,
    # which the loop below carries; the others are fixed), so only ranges with some are looped over.
    empty = missing_in_range == np.minimum(ends, span)
    if alarm.treat_missing_data != "ignore":
        codes[empty] = {"breaching": ALARM, "notBreaching": OK, "missing": INSUFFICIENT_DATA}[
            alarm.treat_missing_data]
        missing_in_range = np.where(empty, 0, missing_in_range)
    touched = np.flatnonzero(missing_in_range > 0)
    state = "OK"
    previous = -2
    for k in touched.tolist():
        if k > 0 and previous != k - 1:
            state = _NAMES[int(codes[k - 1])]
        previous = k
        window = values[max(0, k - span + 1): k + 1]
        state = evaluate([None if np.isnan(v) else float(v) for v in window], threshold=alarm.threshold,
                         comparison=alarm.comparison, evaluation_periods=n,
                         datapoints_to_alarm=alarm.datapoints_to_alarm,
                         treat_missing_data=alarm.treat_missing_data, current_state=state)
        codes[k] = STATE_CODES[state]


def metric_alarm_states(values: np.ndarray, alarm: MetricAlarm, start: int,
                        hold: np.ndarray | None = None) -> np.ndarray:
    """ALARM flags per period from index `start` of `values` on (see `metric_alarm_codes`).

    A deployment gate acts on ALARM only; INSUFFICIENT_DATA does not roll back.
    """
    return metric_alarm_codes(values, alarm, start, hold) == ALARM


def combine_alarm_codes(name: str, metric_alarms: Mapping[str, MetricAlarm], composites: Mapping[str, CompositeRule],
                        codes_of: Callable[[MetricAlarm], np.ndarray]) -> np.ndarray:
    """State codes of alarm `name` (metric or composite, nested composites included) from
    `codes_of`, which gives a metric alarm's state codes per period. A composite is ALARM or OK."""
    if name in metric_alarms:
        return codes_of(metric_alarms[name])
    rule = composites[name]
    # Members in sorted order, never the frozenset's (string hashes, hence set order, differ per process).
    members = {member: combine_alarm_codes(member, metric_alarms, composites, codes_of)
               for member in sorted(rule.alarm_names)}
    return rule.evaluate_series(members).astype(np.int8)


def combine_alarm_states(name: str, metric_alarms: Mapping[str, MetricAlarm], composites: Mapping[str, CompositeRule],
                         codes_of: Callable[[MetricAlarm], np.ndarray]) -> np.ndarray:
    """ALARM flags of alarm `name` (metric or composite) from `codes_of` (a metric alarm's state
    codes, or its ALARM flags). The simulator and the executor both use it."""
    return combine_alarm_codes(name, metric_alarms, composites, codes_of) == ALARM
