"""Fast M-of-N alarm helpers for the simulator: when an alarm first fires over a
stream of complete per-period datapoints, and the exact chance that it fires at all.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from deploysim.alarms.metric_alarm import _check_int, _check_m_of_n

__all__ = ["MAX_DP_EVALUATION_PERIODS", "detection_probability", "first_alarm_index"]

# The exact DP tracks the last N-1 flags, i.e. 2**(N-1) states; 12 keeps that at 2048.
MAX_DP_EVALUATION_PERIODS = 12


def _as_flags(name: str, values: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    arr = np.asarray(values)
    if arr.dtype == np.bool_:
        return arr
    # Accept 0/1 numbers too (e.g. flags built with integer arithmetic); anything
    # else is almost certainly raw metric values passed by mistake.
    if arr.size == 0 or (arr.dtype.kind in "iuf" and bool(np.all((arr == 0) | (arr == 1)))):
        return arr.astype(bool)
    raise ValueError(f"{name} must be a boolean array (or 0/1 values); got dtype {arr.dtype}")


def first_alarm_index(
    breaching: npt.ArrayLike,
    *,
    evaluation_periods: int,
    datapoints_to_alarm: int,
    history: npt.ArrayLike | None = None,
) -> int | None | npt.NDArray[np.int64]:
    """Index of the first new period at whose end >= M of the last N datapoints breach.

    ``breaching``: bool flags of the new periods, oldest first; 1-D for one alarm or
    2-D (alarms x periods) for many. ``history``: flags of the periods just before
    (oldest first), 1-D resp. 2-D with one row per alarm; only its last N-1 columns
    can matter, so a longer history is accepted and trimmed. Before N datapoints
    exist, the window holds only the points seen so far.

    Returns an ``int`` or ``None`` for 1-D input; for 2-D input an int64 array with
    -1 where the alarm never fires.
    """
    n, m = _check_m_of_n(evaluation_periods, datapoints_to_alarm)
    new = _as_flags("breaching", breaching)
    if new.ndim not in (1, 2):
        raise ValueError(f"breaching must be 1-D or 2-D; got shape {new.shape}")
    two_d = new.ndim == 2
    rows = new if two_d else new[np.newaxis, :]
    n_alarms, n_new = rows.shape

    if history is None:
        past = np.zeros((n_alarms, 0), dtype=bool)
    else:
        past = _as_flags("history", history)
        if two_d:
            if past.ndim != 2 or past.shape[0] != n_alarms:
                raise ValueError(
                    f"history must be 2-D with {n_alarms} rows to match breaching; "
                    f"got shape {past.shape}"
                )
        else:
            if past.ndim != 1:
                raise ValueError(f"history must be 1-D to match breaching; got shape {past.shape}")
            past = past[np.newaxis, :]
        past = past[:, max(0, past.shape[1] - (n - 1)) :]

    if n_new == 0:
        return np.full(n_alarms, -1, dtype=np.int64) if two_d else None

    n_past = past.shape[1]
    flags = np.concatenate([past, rows], axis=1)
    # csum[:, j] = number of breaching points among the first j; a window sum is then
    # one subtraction, so all windows are counted at once.
    csum = np.zeros((n_alarms, n_past + n_new + 1), dtype=np.int64)
    np.cumsum(flags, axis=1, out=csum[:, 1:])
    ends = np.arange(n_past + 1, n_past + n_new + 1)
    starts = np.maximum(ends - n, 0)
    fired = (csum[:, ends] - csum[:, starts]) >= m

    first = np.where(fired.any(axis=1), fired.argmax(axis=1), -1).astype(np.int64)
    if two_d:
        return first
    return int(first[0]) if first[0] >= 0 else None


def detection_probability(
    p_breach: float,
    periods: int,
    *,
    evaluation_periods: int,
    datapoints_to_alarm: int,
) -> float:
    """Exact probability that an M-of-N alarm fires within ``periods`` datapoints.

    Datapoints breach independently with probability ``p_breach``; history starts
    empty (early windows count only the points seen, as :func:`first_alarm_index`
    does with no history). Dynamic programming over the last N-1 flags; costs
    O(periods * 2**(N-1)), so N is limited to ``MAX_DP_EVALUATION_PERIODS``.
    """
    n, m = _check_m_of_n(evaluation_periods, datapoints_to_alarm)
    if n > MAX_DP_EVALUATION_PERIODS:
        raise ValueError(
            f"evaluation_periods must be <= {MAX_DP_EVALUATION_PERIODS} for the exact "
            f"computation; got {n}"
        )
    if isinstance(p_breach, (bool, str)):
        raise ValueError(f"p_breach must be a probability in [0, 1]; got {p_breach!r}")
    try:
        p = float(p_breach)
    except (TypeError, ValueError):
        raise ValueError(f"p_breach must be a probability in [0, 1]; got {p_breach!r}") from None
    if not 0.0 <= p <= 1.0:  # also rejects NaN
        raise ValueError(f"p_breach must be a probability in [0, 1]; got {p_breach!r}")
    steps = _check_int("periods", periods)
    if steps < 0:
        raise ValueError(f"periods must be >= 0; got {steps}")

    if steps == 0 or p == 0.0:
        return 0.0
    q = 1.0 - p
    if n == 1:
        # M = N = 1: fires at the first breach; expm1/log1p keep tiny p accurate.
        return 1.0 if p == 1.0 else -math.expm1(steps * math.log1p(-p))

    size = 1 << (n - 1)  # states: last N-1 flags, newest in bit 0
    half = size >> 1
    ones = np.array([bin(s).count("1") for s in range(size)])
    # Appending a flag f to state s gives a window of popcount(s) + f breaching points
    # (the oldest of the last N-1 stays in the window; the one before it left).
    fires_on_0 = ones >= m
    fires_on_1 = ones + 1 >= m

    alive = np.zeros(size)
    alive[0] = 1.0  # empty history behaves as all non-breaching
    fired = 0.0  # accumulated directly, so small probabilities keep their precision
    next_alive = np.empty(size)
    for _ in range(steps):
        after_0 = alive * q
        after_1 = alive * p
        fired += float(after_0[fires_on_0].sum() + after_1[fires_on_1].sum())
        after_0[fires_on_0] = 0.0
        after_1[fires_on_1] = 0.0
        # Shifting in a new flag drops the oldest bit: states s and s + half merge.
        next_alive[0::2] = after_0[:half] + after_0[half:]
        next_alive[1::2] = after_1[:half] + after_1[half:]
        alive, next_alive = next_alive, alive
        if not alive.any():
            break
    return min(fired, 1.0)
