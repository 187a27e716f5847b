"""State of one metric alarm from its evaluation range, as CloudWatch decides it.

Implements "M out of N" evaluation including the documented treatment of missing data.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt

AlarmState = Literal["OK", "ALARM", "INSUFFICIENT_DATA"]

COMPARISONS: tuple[str, ...] = (
    "GreaterThanThreshold",
    "GreaterThanOrEqualToThreshold",
    "LessThanThreshold",
    "LessThanOrEqualToThreshold",
)
MISSING_DATA_TREATMENTS: tuple[str, ...] = ("missing", "ignore", "breaching", "notBreaching")
ALARM_STATES: tuple[str, ...] = ("OK", "ALARM", "INSUFFICIENT_DATA")

_COMPARE_UFUNCS = {
    "GreaterThanThreshold": np.greater,
    "GreaterThanOrEqualToThreshold": np.greater_equal,
    "LessThanThreshold": np.less,
    "LessThanOrEqualToThreshold": np.less_equal,
}


def _check_choice(name: str, value: object, allowed: tuple[str, ...]) -> None:
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")


def _check_int(name: str, value: object) -> int:
    # bool is an int subclass; True as a period count is almost certainly a bug.
    if isinstance(value, bool):
        raise ValueError(f"{name} must be an integer; got {value!r}")
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise ValueError(f"{name} must be an integer; got {value!r}") from None


def _check_m_of_n(evaluation_periods: object, datapoints_to_alarm: object) -> tuple[int, int]:
    """Validate N and M (1 <= M <= N); shared with the window helpers."""
    n = _check_int("evaluation_periods", evaluation_periods)
    m = _check_int("datapoints_to_alarm", datapoints_to_alarm)
    if n < 1:
        raise ValueError(f"evaluation_periods must be >= 1; got {n}")
    if not 1 <= m <= n:
        raise ValueError(
            f"datapoints_to_alarm must satisfy 1 <= datapoints_to_alarm <= evaluation_periods ({n}); got {m}"
        )
    return n, m


def _check_threshold(threshold: object) -> float:
    if isinstance(threshold, bool):
        raise ValueError(f"threshold must be a real number; got {threshold!r}")
    try:
        value = float(threshold)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"threshold must be a real number; got {threshold!r}") from None
    if math.isnan(value):
        raise ValueError("threshold must be a real number, not NaN")
    return value


def breaches(
    values: npt.ArrayLike, threshold: float, comparison: str
) -> npt.NDArray[np.bool_]:
    """Element-wise: does each datapoint breach the threshold?

    Works on arrays of any shape; NaN (or None) is a missing point and never breaches.
    """
    _check_choice("comparison", comparison, COMPARISONS)
    limit = _check_threshold(threshold)
    arr = np.asarray(values, dtype=float)
    # Comparisons with NaN are already False, which is exactly "missing never breaches".
    return np.asarray(_COMPARE_UFUNCS[comparison](arr, limit), dtype=bool)


def evaluate(
    datapoints: Sequence[float | None] | npt.ArrayLike,
    *,
    threshold: float,
    comparison: str,
    evaluation_periods: int,
    datapoints_to_alarm: int,
    treat_missing_data: str = "missing",
    current_state: str = "OK",
) -> AlarmState:
    """State of an M-out-of-N alarm given its evaluation range.

    ``datapoints`` is the evaluation range, oldest first; ``None`` or NaN marks a
    missing period. The range is normally at least ``evaluation_periods`` long
    (CloudWatch looks back further than N when data is missing); a shorter range is
    accepted and handled by the same rules.

    Rules (CloudWatch user guide, "How alarm state is evaluated when data is missing"):

    * at least N real points: the most recent N real points decide, treatment ignored;
    * no real point: missing -> INSUFFICIENT_DATA, ignore -> ``current_state``,
      breaching -> ALARM, notBreaching -> OK;
    * some but fewer than N real points: every real point is used and the gaps are
      filled as few times as possible (to reach N) using the treatment.
    """
    _check_choice("comparison", comparison, COMPARISONS)
    _check_choice("treat_missing_data", treat_missing_data, MISSING_DATA_TREATMENTS)
    _check_choice("current_state", current_state, ALARM_STATES)
    n, m = _check_m_of_n(evaluation_periods, datapoints_to_alarm)
    limit = _check_threshold(threshold)

    try:
        raw = np.asarray(datapoints, dtype=object)
        values = np.array([np.nan if v is None else v for v in raw.ravel().tolist()],
                          dtype=np.float64).reshape(raw.shape)
    except (TypeError, ValueError):
        raise ValueError(
            "datapoints must be a 1-D sequence of numbers, None or NaN"
        ) from None
    if values.ndim != 1:
        raise ValueError(f"datapoints must be 1-D; got shape {values.shape}")

    present = ~np.isnan(values)
    breaching = breaches(values, limit, comparison)
    n_present = int(present.sum())

    if n_present >= n:
        recent = breaching[present][-n:]
        return "ALARM" if int(recent.sum()) >= m else "OK"

    if n_present == 0:
        return {
            "missing": "INSUFFICIENT_DATA",
            "ignore": current_state,
            "breaching": "ALARM",
            "notBreaching": "OK",
        }[treat_missing_data]  # type: ignore[return-value]

    n_breaching = int(breaching.sum())
    if treat_missing_data == "breaching":
        # The N - n_present filled points all breach.
        return "ALARM" if n_breaching + (n - n_present) >= m else "OK"
    if treat_missing_data == "notBreaching":
        return "ALARM" if n_breaching >= m else "OK"

    # missing / ignore: only the real points are evaluated.
    if n_breaching >= m:
        return "ALARM"
    if n_breaching < n_present:
        # A real non-breaching point is enough evidence that all is well.
        return "OK"
    # Every real point breaches, but there are fewer than M of them.
    if treat_missing_data == "ignore":
        return current_state  # type: ignore[return-value]
    # Documented row "X - - - -" (missing): when the oldest point of the range is a
    # real breaching point and no non-breaching point exists, the alarm goes to ALARM;
    # otherwise there is not enough data to decide.
    if present[0] and breaching[0]:
        return "ALARM"
    return "INSUFFICIENT_DATA"
