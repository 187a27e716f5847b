"""Alarm states over a series of datapoints, as CloudWatch evaluates them period after period.

Pure numpy over datapoints: the simulator feeds it computed metrics, the real executor real ones.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from ..scenario.schema import MetricAlarm
from .composite import CompositeRule
from .metric_alarm import breaches, evaluate

EXTRA_EVALUATION_RANGE = 2  # CloudWatch retrieves more datapoints than N when some are missing


def metric_alarm_states(values: np.ndarray, alarm: MetricAlarm, start: int) -> np.ndarray:
    """ALARM per period from index `start` of `values` on (values before `start` are history).

    Without missing datapoints, M of the last N breaching is a cumulative-sum test. Periods
    whose evaluation range holds a missing datapoint are judged one by one by the CloudWatch
    rules of `deploysim.alarms.evaluate` (treat_missing_data, evaluation range of N + 2).
    """
    flags = breaches(values, alarm.threshold, alarm.comparison)
    n = alarm.evaluation_periods
    csum = np.concatenate([[0], np.cumsum(flags, dtype=np.int64)])
    ends = np.arange(start, flags.size) + 1
    states = (csum[ends] - csum[np.maximum(ends - n, 0)]) >= alarm.datapoints_to_alarm
    missing = np.isnan(values)
    if not missing.any():
        return states
    span = n + EXTRA_EVALUATION_RANGE
    msum = np.concatenate([[0], np.cumsum(missing, dtype=np.int64)])
    missing_in_range = msum[ends] - msum[np.maximum(ends - span, 0)]
    # A range with no datapoint at all is decided by the treatment alone (ignore keeps the state,
    # which the loop below carries; the others are fixed), so only ranges with some are looped over.
    empty = missing_in_range == np.minimum(ends, span)
    if alarm.treat_missing_data != "ignore":
        states[empty] = alarm.treat_missing_data == "breaching"
        missing_in_range = np.where(empty, 0, missing_in_range)
    touched = np.flatnonzero(missing_in_range > 0)
    state = "OK"
    previous = -2
    for i in touched.tolist():
        k = start + i
        if i > 0 and previous != i - 1:
            state = "ALARM" if states[i - 1] else "OK"
        previous = i
        window = values[max(0, k - span + 1): k + 1]
        state = evaluate([None if np.isnan(v) else float(v) for v in window], threshold=alarm.threshold,
                         comparison=alarm.comparison, evaluation_periods=n,
                         datapoints_to_alarm=alarm.datapoints_to_alarm,
                         treat_missing_data=alarm.treat_missing_data, current_state=state)
        # A deployment gate acts on ALARM only; INSUFFICIENT_DATA does not roll back.
        states[i] = state == "ALARM"
    return states


def combine_alarm_states(name: str, metric_alarms: Mapping[str, MetricAlarm], composites: Mapping[str, CompositeRule],
                         states_of: Callable[[MetricAlarm], np.ndarray]) -> np.ndarray:
    """States of alarm `name` (metric or composite, nested composites included) from `states_of`,
    which gives a metric alarm's ALARM flags per period. The simulator and the executor both use it."""
    if name in metric_alarms:
        return states_of(metric_alarms[name])
    rule = composites[name]
    # Members in sorted order, never the frozenset's (string hashes, hence set order, differ per process).
    return rule.evaluate_series({member: combine_alarm_states(member, metric_alarms, composites, states_of)
                                 for member in sorted(rule.alarm_names)})
