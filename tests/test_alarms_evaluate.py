"""Tests for deploysim.alarms.evaluate: CloudWatch metric alarm state (M of N, missing data)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deploysim.alarms import (
    ALARM_STATES,
    COMPARISONS,
    MISSING_DATA_TREATMENTS,
    breaches,
    evaluate,
)

THRESHOLD = 10.0
# Row notation of the CloudWatch user guide: 0 = non-breaching, X = breaching, - = missing.
_SYMBOL = {"0": 5.0, "X": 15.0, "-": None}
TREATMENTS = ("missing", "ignore", "breaching", "notBreaching")
RETAIN = "retain"  # the documented "Retain current state"


def _points(row: str) -> list[float | None]:
    return [_SYMBOL[s] for s in row.split()]


def _run(row: str, m: int, n: int, treatment: str, current_state: str = "OK") -> str:
    return evaluate(
        _points(row),
        threshold=THRESHOLD,
        comparison="GreaterThanThreshold",
        evaluation_periods=n,
        datapoints_to_alarm=m,
        treat_missing_data=treatment,
        current_state=current_state,
    )


# (row, MISSING, IGNORE, BREACHING, NOT BREACHING), copied from the user guide's tables.
TABLE_1_M3_N3 = [
    ("0 - X - X", "OK", "OK", "OK", "OK"),
    ("0 - - - -", "OK", "OK", "OK", "OK"),
    ("- - - - -", "INSUFFICIENT_DATA", RETAIN, "ALARM", "OK"),
    ("0 X X - X", "ALARM", "ALARM", "ALARM", "ALARM"),
    ("- - - - X", "INSUFFICIENT_DATA", RETAIN, "ALARM", "OK"),
    ("X - - - -", "ALARM", RETAIN, "ALARM", "OK"),
]
TABLE_2_M2_N3 = [
    ("0 - X - X", "ALARM", "ALARM", "ALARM", "ALARM"),
    ("0 0 X 0 X", "ALARM", "ALARM", "ALARM", "ALARM"),
    ("0 - X - -", "OK", "OK", "ALARM", "OK"),
    ("- - - - 0", "OK", "OK", "ALARM", "OK"),
    ("- - - - X", "INSUFFICIENT_DATA", RETAIN, "ALARM", "OK"),
]


def _table_cases(table: list[tuple[str, ...]], m: int, n: int) -> list[object]:
    return [
        pytest.param(row[0], m, n, treatment, expected, id=f"M{m}N{n}[{row[0]}]-{treatment}")
        for row in table
        for treatment, expected in zip(TREATMENTS, row[1:], strict=True)
    ]


@pytest.mark.parametrize(
    "row, m, n, treatment, expected",
    _table_cases(TABLE_1_M3_N3, 3, 3) + _table_cases(TABLE_2_M2_N3, 2, 3),
)
def test_documented_missing_data_tables(row: str, m: int, n: int, treatment: str, expected: str) -> None:
    """Every row of the user guide's two missing-data tables (M=3/N=3 and M=2/N=3)."""
    if expected == RETAIN:
        # "Retain current state" must hold whatever that state is.
        for state in ALARM_STATES:
            assert _run(row, m, n, treatment, current_state=state) == state
    else:
        for state in ALARM_STATES:
            assert _run(row, m, n, treatment, current_state=state) == expected


@pytest.mark.parametrize(
    "comparison, below, at, above",
    [
        ("GreaterThanThreshold", False, False, True),
        ("GreaterThanOrEqualToThreshold", False, True, True),
        ("LessThanThreshold", True, False, False),
        ("LessThanOrEqualToThreshold", True, True, False),
    ],
)
def test_comparison_at_threshold_boundary(comparison: str, below: bool, at: bool, above: bool) -> None:
    """Strict comparisons exclude the threshold itself; *OrEqualTo* comparisons include it."""
    for value, expected in ((9.999, below), (10.0, at), (10.001, above)):
        state = evaluate(
            [value],
            threshold=10.0,
            comparison=comparison,
            evaluation_periods=1,
            datapoints_to_alarm=1,
        )
        assert state == ("ALARM" if expected else "OK"), (comparison, value)
        assert breaches(np.array([value]), 10.0, comparison).tolist() == [expected]


def test_breaches_is_vectorised_and_missing_never_breaches() -> None:
    """breaches() keeps the input shape and maps NaN/None to False for every comparison."""
    values = np.array([[1.0, np.nan], [20.0, -np.inf]])
    assert breaches(values, 10.0, "GreaterThanThreshold").tolist() == [[False, False], [True, False]]
    assert breaches(values, 10.0, "LessThanThreshold").tolist() == [[True, False], [False, True]]
    for comparison in COMPARISONS:
        assert not breaches([None, np.nan], 0.0, comparison).any()
    assert breaches([], 0.0, "LessThanThreshold").shape == (0,)


def test_long_range_uses_most_recent_n_existing_points() -> None:
    """With >= N real points in a longer range, only the most recent N real points count."""
    # Old breaches at the start are outside the last 3 real points (0, 0, X).
    row = "X X X - 0 - 0 - X -"
    for treatment in TREATMENTS:
        assert _run(row, 2, 3, treatment) == "OK"
    # Gaps are skipped, not counted: the last three real points are X, 0, X.
    row = "0 0 0 X - - 0 - - X - -"
    for treatment in TREATMENTS:
        assert _run(row, 2, 3, treatment) == "ALARM"


def test_nan_is_treated_as_missing() -> None:
    """NaN in the range is a missing point, exactly like None."""
    with_nan = [np.nan if v is None else v for v in _points("X - - - -")]
    for treatment in TREATMENTS:
        assert evaluate(
            with_nan,
            threshold=THRESHOLD,
            comparison="GreaterThanThreshold",
            evaluation_periods=3,
            datapoints_to_alarm=3,
            treat_missing_data=treatment,
            current_state="INSUFFICIENT_DATA",
        ) == _run("X - - - -", 3, 3, treatment, current_state="INSUFFICIENT_DATA")


def test_numpy_array_input_is_accepted() -> None:
    """A float numpy array with NaN works as the evaluation range."""
    values = np.array([5.0, np.nan, 15.0, 15.0])
    assert evaluate(
        values,
        threshold=THRESHOLD,
        comparison="GreaterThanThreshold",
        evaluation_periods=3,
        datapoints_to_alarm=2,
    ) == "ALARM"


def test_missing_all_breaching_but_fewer_than_m_depends_on_oldest_point() -> None:
    """treat_missing_data=missing, only breaching real points, fewer than M: ALARM iff the
    oldest point of the evaluation range is one of them, else INSUFFICIENT_DATA."""
    assert _run("X - - X -", 3, 3, "missing") == "ALARM"
    assert _run("- X - X -", 3, 3, "missing") == "INSUFFICIENT_DATA"


def test_fill_with_breaching_uses_as_few_filled_points_as_possible() -> None:
    """breaching fills only up to N: one real 0 plus two filled X is 2 breaches, not 4."""
    assert _run("0 - - - -", 3, 3, "breaching") == "OK"
    assert _run("0 - - - -", 2, 3, "breaching") == "ALARM"


def test_empty_range_is_no_data() -> None:
    """An empty evaluation range behaves like an all-missing one."""
    results = [_run("", 1, 1, t, current_state="ALARM") for t in TREATMENTS]
    assert results == ["INSUFFICIENT_DATA", "ALARM", "ALARM", "OK"]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from(["0", "X", "-"]), min_size=0, max_size=10),
    st.integers(1, 5),
    st.data(),
)
def test_properties_over_random_ranges(symbols: list[str], n: int, data: st.DataObject) -> None:
    """Treatment matters only with fewer than N real points; breaching never gives a
    milder state than notBreaching; result is always a valid state."""
    m = data.draw(st.integers(1, n))
    row = " ".join(symbols)
    results = {t: _run(row, m, n, t, current_state="INSUFFICIENT_DATA") for t in TREATMENTS}
    assert set(results.values()) <= set(ALARM_STATES)
    if sum(s != "-" for s in symbols) >= n:
        assert len(set(results.values())) == 1
    assert results["breaching"] in ("ALARM", "OK")
    assert results["notBreaching"] in ("ALARM", "OK")
    if results["notBreaching"] == "ALARM":
        assert all(r == "ALARM" for r in results.values())


_VALID = {
    "threshold": 1.0,
    "comparison": "GreaterThanThreshold",
    "evaluation_periods": 3,
    "datapoints_to_alarm": 2,
}


@pytest.mark.parametrize(
    "override, names",
    [
        ({"comparison": "GreaterThan"}, ["comparison", "GreaterThanOrEqualToThreshold"]),
        ({"treat_missing_data": "notbreaching"}, ["treat_missing_data", "notBreaching"]),
        ({"current_state": "Alarm"}, ["current_state", "INSUFFICIENT_DATA"]),
        ({"evaluation_periods": 0}, ["evaluation_periods"]),
        ({"datapoints_to_alarm": 0}, ["datapoints_to_alarm"]),
        ({"datapoints_to_alarm": 4}, ["datapoints_to_alarm", "evaluation_periods"]),
        ({"evaluation_periods": 2.5}, ["evaluation_periods"]),
        ({"datapoints_to_alarm": True}, ["datapoints_to_alarm"]),
        ({"threshold": math.nan}, ["threshold"]),
        ({"threshold": "high"}, ["threshold"]),
    ],
)
def test_invalid_arguments_raise_value_error_naming_them(override: dict[str, object], names: list[str]) -> None:
    """Bad arguments raise ValueError naming the argument (and the allowed values)."""
    kwargs = {**_VALID, **override}
    with pytest.raises(ValueError) as info:
        evaluate([1.0, 2.0, 3.0], **kwargs)  # type: ignore[arg-type]
    for name in names:
        assert name in str(info.value)


@pytest.mark.parametrize("datapoints", [[[1.0, 2.0], [3.0, 4.0]], ["a", "b"], 5.0])
def test_invalid_datapoints_raise_value_error(datapoints: object) -> None:
    """datapoints must be a 1-D sequence of numbers / None / NaN."""
    with pytest.raises(ValueError, match="datapoints"):
        evaluate(datapoints, **_VALID)  # type: ignore[arg-type]


def test_breaches_rejects_unknown_comparison() -> None:
    """breaches() validates the comparison like evaluate() does."""
    with pytest.raises(ValueError, match="comparison"):
        breaches([1.0], 0.0, ">")


def test_constants_list_the_allowed_values() -> None:
    """The exported constants are exactly CloudWatch's vocabularies."""
    assert set(COMPARISONS) == {
        "GreaterThanThreshold",
        "GreaterThanOrEqualToThreshold",
        "LessThanThreshold",
        "LessThanOrEqualToThreshold",
    }
    assert set(MISSING_DATA_TREATMENTS) == set(TREATMENTS)
    assert set(ALARM_STATES) == {"OK", "ALARM", "INSUFFICIENT_DATA"}
