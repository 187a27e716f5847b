"""Tests for deploysim.alarms.window: vectorised first firing of M-of-N alarms and the
exact detection probability the simulator's statistical tests compare against."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deploysim.alarms import detection_probability, first_alarm_index
from deploysim.alarms.window import MAX_DP_EVALUATION_PERIODS


def _reference_first(new: list[bool], history: list[bool], n: int, m: int) -> int | None:
    """Plain-Python definition: first new period whose last-N window (only points seen
    so far, history included) has >= M breaches."""
    flags = list(history) + list(new)
    for j in range(len(new)):
        end = len(history) + j + 1
        if sum(flags[max(0, end - n) : end]) >= m:
            return j
    return None


@st.composite
def _m_of_n(draw: st.DrawFn) -> tuple[int, int]:
    n = draw(st.integers(1, 8))
    return n, draw(st.integers(1, n))


@settings(max_examples=300, deadline=None)
@given(
    _m_of_n(),
    st.lists(st.booleans(), max_size=40),
    st.one_of(st.none(), st.lists(st.booleans(), max_size=12)),
)
def test_first_alarm_index_matches_reference(
    mn: tuple[int, int], new: list[bool], history: list[bool] | None
) -> None:
    """1-D: same answer as the brute-force window scan, with or without history (a
    history longer than N-1 is trimmed without changing the answer)."""
    n, m = mn
    got = first_alarm_index(
        np.array(new, dtype=bool),
        evaluation_periods=n,
        datapoints_to_alarm=m,
        history=None if history is None else np.array(history, dtype=bool),
    )
    assert got == _reference_first(new, history or [], n, m)
    assert got is None or isinstance(got, int)


@settings(max_examples=60, deadline=None)
@given(
    _m_of_n(),
    st.integers(1, 6),
    st.integers(0, 30),
    st.integers(0, 10),
    st.floats(0.0, 1.0),
    st.integers(0, 2**32 - 1),
)
def test_first_alarm_index_2d_matches_reference_per_row(
    mn: tuple[int, int], rows: int, periods: int, hist_len: int, p: float, seed: int
) -> None:
    """2-D: row i of the result is the 1-D reference for row i, -1 meaning never."""
    n, m = mn
    rng = np.random.default_rng(seed)
    new = rng.random((rows, periods)) < p
    history = rng.random((rows, hist_len)) < p
    got = first_alarm_index(new, evaluation_periods=n, datapoints_to_alarm=m, history=history)
    assert got.shape == (rows,) and got.dtype == np.int64
    for i in range(rows):
        ref = _reference_first(new[i].tolist(), history[i].tolist(), n, m)
        assert got[i] == (-1 if ref is None else ref)


def test_history_completes_the_first_window() -> None:
    """Breaches just before the new periods count toward the first windows."""
    new = np.array([True, False, False])
    assert first_alarm_index(new, evaluation_periods=3, datapoints_to_alarm=2) is None
    assert (
        first_alarm_index(new, evaluation_periods=3, datapoints_to_alarm=2, history=[False, True])
        == 0
    )
    # History older than N-1 periods before the new ones cannot matter.
    assert (
        first_alarm_index(new, evaluation_periods=3, datapoints_to_alarm=2, history=[True, False, False])
        is None
    )


def test_early_windows_count_only_points_seen() -> None:
    """Before N points exist the window is shorter: M breaches among the first M points fire."""
    assert first_alarm_index([True, True], evaluation_periods=5, datapoints_to_alarm=2) == 1


def test_empty_inputs() -> None:
    """No new periods: None (1-D) or all -1 (2-D); zero alarms: empty result."""
    assert first_alarm_index(np.array([], dtype=bool), evaluation_periods=3, datapoints_to_alarm=1) is None
    out = first_alarm_index(np.zeros((3, 0), dtype=bool), evaluation_periods=3, datapoints_to_alarm=1)
    assert out.tolist() == [-1, -1, -1]
    out = first_alarm_index(np.zeros((0, 5), dtype=bool), evaluation_periods=3, datapoints_to_alarm=1)
    assert out.shape == (0,)


def test_large_batch_is_fast_and_consistent() -> None:
    """A 500 x 2000 batch (one numpy pass) agrees with per-row 1-D calls on a sample."""
    rng = np.random.default_rng(7)
    flags = rng.random((500, 2000)) < 0.05
    got = first_alarm_index(flags, evaluation_periods=5, datapoints_to_alarm=3)
    for i in range(0, 500, 50):
        one = first_alarm_index(flags[i], evaluation_periods=5, datapoints_to_alarm=3)
        assert got[i] == (-1 if one is None else one)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"breaching": np.array([1.5, 0.0])}, "breaching"),
        ({"breaching": np.zeros((2, 2, 2), dtype=bool)}, "breaching"),
        ({"breaching": np.zeros(4, dtype=bool), "history": np.zeros((1, 2), dtype=bool)}, "history"),
        ({"breaching": np.zeros((2, 4), dtype=bool), "history": np.zeros(2, dtype=bool)}, "history"),
        ({"breaching": np.zeros((2, 4), dtype=bool), "history": np.zeros((3, 2), dtype=bool)}, "history"),
        ({"breaching": np.zeros(4, dtype=bool), "evaluation_periods": 0}, "evaluation_periods"),
        ({"breaching": np.zeros(4, dtype=bool), "datapoints_to_alarm": 4}, "datapoints_to_alarm"),
    ],
)
def test_first_alarm_index_rejects_bad_arguments(kwargs: dict[str, object], message: str) -> None:
    """Non-flag data, wrong dimensions, mismatched history and bad M/N raise ValueError."""
    call = {"evaluation_periods": 3, "datapoints_to_alarm": 2, **kwargs}
    with pytest.raises(ValueError, match=message):
        first_alarm_index(**call)  # type: ignore[arg-type]


def test_zero_one_integers_are_accepted_as_flags() -> None:
    """0/1 integer arrays are read as bool flags."""
    assert first_alarm_index([0, 1, 1], evaluation_periods=2, datapoints_to_alarm=2) == 2


def _brute_force_probability(p: float, periods: int, n: int, m: int) -> float:
    """Sum over every breach sequence of length `periods` in which the alarm fires."""
    total = 0.0
    for seq in itertools.product((False, True), repeat=periods):
        if _reference_first(list(seq), [], n, m) is not None:
            k = sum(seq)
            total += p**k * (1 - p) ** (periods - k)
    return total


@pytest.mark.parametrize(
    "p, periods, n, m",
    [
        (0.3, 10, 3, 2),
        (0.1, 10, 5, 3),
        (0.5, 9, 4, 4),
        (0.7, 8, 6, 1),
        (0.25, 10, 1, 1),
        (0.4, 3, 8, 2),  # fewer periods than N: windows are never full
        (0.05, 12, 12, 6),
        (0.9, 7, 2, 2),
    ],
)
def test_detection_probability_matches_enumeration(p: float, periods: int, n: int, m: int) -> None:
    """The DP equals exhaustive enumeration of all 2**periods breach sequences."""
    exact = _brute_force_probability(p, periods, n, m)
    got = detection_probability(p, periods, evaluation_periods=n, datapoints_to_alarm=m)
    assert got == pytest.approx(exact, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize(
    "p, periods, n, m",
    [(0.15, 30, 5, 3), (0.05, 60, 3, 2), (0.3, 20, 10, 6)],
)
def test_detection_probability_matches_monte_carlo(p: float, periods: int, n: int, m: int) -> None:
    """The DP agrees with a seeded simulation through first_alarm_index within 5 sigma."""
    trials = 100_000
    rng = np.random.default_rng(20240601)
    flags = rng.random((trials, periods)) < p
    fired = first_alarm_index(flags, evaluation_periods=n, datapoints_to_alarm=m) >= 0
    estimate = fired.mean()
    exact = detection_probability(p, periods, evaluation_periods=n, datapoints_to_alarm=m)
    sigma = math.sqrt(exact * (1 - exact) / trials)
    assert abs(estimate - exact) < 5 * sigma + 1e-12


def test_detection_probability_closed_forms() -> None:
    """Known cases: M=N=1 is 1-(1-p)^T; p=0 never fires; p=1 fires exactly when T >= M;
    zero periods never fire."""
    assert detection_probability(0.2, 7, evaluation_periods=1, datapoints_to_alarm=1) == pytest.approx(
        1 - 0.8**7, rel=1e-14
    )
    # expm1/log1p path keeps a tiny probability accurate.
    assert detection_probability(1e-12, 10, evaluation_periods=1, datapoints_to_alarm=1) == pytest.approx(
        1e-11, rel=1e-9
    )
    assert detection_probability(0.0, 100, evaluation_periods=5, datapoints_to_alarm=2) == 0.0
    assert detection_probability(1.0, 2, evaluation_periods=5, datapoints_to_alarm=3) == 0.0
    assert detection_probability(1.0, 3, evaluation_periods=5, datapoints_to_alarm=3) == 1.0
    assert detection_probability(0.5, 0, evaluation_periods=5, datapoints_to_alarm=3) == 0.0
    # M of M consecutive in N=M is the classic "run of M successes" problem; for M=2,
    # T=3: P(no two consecutive breaches) = q^3 + 3pq^2 + p^2 q.
    p, q = 0.4, 0.6
    assert detection_probability(p, 3, evaluation_periods=2, datapoints_to_alarm=2) == pytest.approx(
        1 - (q**3 + 3 * p * q**2 + p**2 * q), rel=1e-14
    )


def test_detection_probability_grows_with_periods_and_p() -> None:
    """More periods or a higher breach probability never lower the chance of firing."""
    by_periods = [detection_probability(0.1, t, evaluation_periods=5, datapoints_to_alarm=3) for t in range(0, 60, 5)]
    assert all(a <= b for a, b in itertools.pairwise(by_periods))
    by_p = [detection_probability(p, 20, evaluation_periods=5, datapoints_to_alarm=3) for p in np.linspace(0, 1, 11)]
    assert all(a <= b for a, b in itertools.pairwise(by_p))


def test_detection_probability_small_values_keep_precision() -> None:
    """Rare firing (tiny p) is computed directly, not as 1 minus something near 1."""
    got = detection_probability(1e-6, 3, evaluation_periods=3, datapoints_to_alarm=3)
    assert got == pytest.approx(1e-18, rel=1e-9)


@pytest.mark.parametrize(
    "args, kwargs, message",
    [
        (
            (0.1, 10),
            {"evaluation_periods": MAX_DP_EVALUATION_PERIODS + 1, "datapoints_to_alarm": 1},
            "evaluation_periods",
        ),
        ((1.5, 10), {"evaluation_periods": 3, "datapoints_to_alarm": 2}, "p_breach"),
        ((-0.1, 10), {"evaluation_periods": 3, "datapoints_to_alarm": 2}, "p_breach"),
        ((math.nan, 10), {"evaluation_periods": 3, "datapoints_to_alarm": 2}, "p_breach"),
        (("0.5", 10), {"evaluation_periods": 3, "datapoints_to_alarm": 2}, "p_breach"),
        ((0.1, -1), {"evaluation_periods": 3, "datapoints_to_alarm": 2}, "periods"),
        ((0.1, 2.5), {"evaluation_periods": 3, "datapoints_to_alarm": 2}, "periods"),
        ((0.1, 10), {"evaluation_periods": 3, "datapoints_to_alarm": 5}, "datapoints_to_alarm"),
    ],
)
def test_detection_probability_rejects_bad_arguments(
    args: tuple[object, object], kwargs: dict[str, int], message: str
) -> None:
    """N above the DP limit, p outside [0, 1], negative or fractional periods, M > N."""
    with pytest.raises(ValueError, match=message):
        detection_probability(*args, **kwargs)  # type: ignore[arg-type]
