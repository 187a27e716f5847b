"""CloudWatch alarm semantics for deploysim: metric alarm state (M of N, missing data),
composite alarm rules, and vectorised first-firing helpers for the simulator.
"""

from deploysim.alarms.composite import CompositeRule, RuleSyntaxError, parse_rule
from deploysim.alarms.metric_alarm import (
    ALARM_STATES,
    COMPARISONS,
    MISSING_DATA_TREATMENTS,
    breaches,
    evaluate,
)
from deploysim.alarms.window import detection_probability, first_alarm_index

__all__ = [
    "ALARM_STATES",
    "COMPARISONS",
    "MISSING_DATA_TREATMENTS",
    "CompositeRule",
    "RuleSyntaxError",
    "breaches",
    "detection_probability",
    "evaluate",
    "first_alarm_index",
    "parse_rule",
]
