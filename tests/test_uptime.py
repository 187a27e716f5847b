"""Tests for deploysim.uptime: the averaged-error-rate and unavailable-minutes definitions."""

from __future__ import annotations

import numpy as np
import pytest

from deploysim.uptime import (
    DEFAULT_DOWN_THRESHOLD,
    averaged_error_rate_uptime_pct,
    interval_error_rates,
    unavailable_minutes,
    unavailable_minutes_uptime_pct,
)

MONTH_MIN = 30 * 24 * 60  # 43 200 one-minute periods
INTERVALS_5MIN = MONTH_MIN // 5  # 8 640


def month_with_outage(start_min: int, length_min: int, error_share: float = 1.0):
    """A 30-day month at 100 requests/min with ``error_share`` failing during the outage."""
    requests = np.full(MONTH_MIN, 100.0)
    errors = np.zeros(MONTH_MIN)
    errors[start_min : start_min + length_min] = 100.0 * error_share
    return requests, errors


# --- interval_error_rates ---------------------------------------------------------


def test_interval_rates_are_failed_over_total_per_interval():
    """Rate of an interval = summed errors / summed requests, not a mean of per-period rates."""
    rates = interval_error_rates([10, 90, 50, 50], [10, 0, 5, 5], 2)
    np.testing.assert_allclose(rates, [0.1, 0.1])


def test_interval_rates_keep_last_partial_interval():
    """A last, shorter interval is kept as its own interval."""
    rates = interval_error_rates([1, 1, 1, 1, 1, 4, 4], [0, 0, 0, 0, 0, 2, 0], 5)
    np.testing.assert_allclose(rates, [0.0, 0.25])


def test_interval_rates_no_requests_is_zero():
    """An interval with no requests has error rate 0.0."""
    rates = interval_error_rates([0, 0, 10, 10], [0, 0, 10, 0], 2)
    np.testing.assert_allclose(rates, [0.0, 0.5])


def test_interval_rates_2d_gives_rows_by_intervals():
    """2-D input (rows x periods) gives one row of interval rates per input row."""
    rates = interval_error_rates([[1, 1, 2, 2], [0, 0, 4, 4]], [[1, 0, 0, 2], [0, 0, 4, 0]], 2)
    np.testing.assert_allclose(rates, [[0.5, 0.5], [0.0, 0.5]])


@pytest.mark.parametrize("interval_periods", [0, -1, 1.5, True])
def test_interval_rates_reject_bad_interval_length(interval_periods):
    """interval_periods must be an integer >= 1."""
    with pytest.raises(ValueError, match="interval_periods"):
        interval_error_rates([1, 1], [0, 0], interval_periods)


# --- averaged error rate (S3 / Lambda) --------------------------------------------


def test_averaged_one_bad_5min_interval_in_30_day_month():
    """One 5-minute interval at 100% errors in a 30-day month -> 100 - 100/8640."""
    requests, errors = month_with_outage(600, 5)
    assert averaged_error_rate_uptime_pct(requests, errors) == pytest.approx(
        100.0 - 100.0 / INTERVALS_5MIN
    )


def test_averaged_outage_straddling_intervals_counts_by_share():
    """A 5-minute full outage split over two intervals (3 + 2 min) costs the same mean."""
    requests, errors = month_with_outage(602, 5)
    assert averaged_error_rate_uptime_pct(requests, errors) == pytest.approx(
        100.0 - 100.0 * (0.6 + 0.4) / INTERVALS_5MIN
    )


def test_averaged_partial_error_rate():
    """Uptime = 100 - 100 x mean of interval rates: two intervals at 10% and 30% -> 80%."""
    requests = [10] * 10
    errors = [1] * 5 + [3] * 5
    assert averaged_error_rate_uptime_pct(requests, errors) == pytest.approx(80.0)


def test_averaged_no_traffic_intervals_count_as_zero_error():
    """Intervals with no requests count as 0% error and still count in the mean."""
    requests = [0] * 5 + [10] * 5
    errors = [0] * 5 + [10] * 5
    assert averaged_error_rate_uptime_pct(requests, errors) == pytest.approx(50.0)
    assert averaged_error_rate_uptime_pct([0] * 10, [0] * 10) == 100.0


def test_averaged_traffic_weight_does_not_matter_across_intervals():
    """Each interval weighs the same, however many requests it served."""
    requests = [1] * 5 + [1000] * 5
    errors = [1] * 5 + [0] * 5
    assert averaged_error_rate_uptime_pct(requests, errors) == pytest.approx(50.0)


def test_averaged_with_other_period_and_interval():
    """period_s / interval_s choose the grouping: 5-min periods, 10-min intervals."""
    requests = [10, 10, 10, 10]
    errors = [10, 0, 0, 0]
    assert averaged_error_rate_uptime_pct(
        requests, errors, period_s=300, interval_s=600
    ) == pytest.approx(75.0)


def test_averaged_2d_returns_one_value_per_row():
    """2-D input (regions x periods) gives one uptime per region, equal to the 1-D result."""
    r1, e1 = month_with_outage(0, 5)
    r2, e2 = month_with_outage(100, 10, error_share=0.5)
    out = averaged_error_rate_uptime_pct(np.stack([r1, r2]), np.stack([e1, e2]))
    assert isinstance(out, np.ndarray) and out.shape == (2,)
    assert out[0] == pytest.approx(averaged_error_rate_uptime_pct(r1, e1))
    assert out[1] == pytest.approx(averaged_error_rate_uptime_pct(r2, e2))
    assert out[1] == pytest.approx(100.0 - 100.0 * 1.0 / INTERVALS_5MIN)


def test_averaged_1d_returns_float():
    """1-D input gives a plain float."""
    assert isinstance(averaged_error_rate_uptime_pct([1] * 5, [0] * 5), float)


# --- unavailable minutes (EC2 / Google style) -------------------------------------


def test_unavailable_one_bad_5min_outage_in_30_day_month():
    """Five down minutes in a 30-day month -> 100 - 100 x 5/43200 = 100 - 100/8640."""
    requests, errors = month_with_outage(600, 5)
    assert unavailable_minutes(requests, errors) == 5.0
    assert unavailable_minutes_uptime_pct(requests, errors) == pytest.approx(
        100.0 - 100.0 / INTERVALS_5MIN
    )


def test_unavailable_default_threshold_is_5_pct():
    """The documented default: a minute is down above a 5% error rate."""
    assert DEFAULT_DOWN_THRESHOLD == 0.05


def test_unavailable_threshold_boundary_is_strict():
    """A minute exactly at the threshold is up; just above it is down."""
    requests = [100, 100, 100, 100]
    assert unavailable_minutes(requests, [5, 0, 0, 0]) == 0.0
    assert unavailable_minutes(requests, [6, 0, 0, 0]) == 1.0
    assert unavailable_minutes(requests, [10, 10, 0, 0], threshold=0.1) == 0.0
    assert unavailable_minutes(requests, [11, 10, 0, 0], threshold=0.1) == 1.0


def test_unavailable_no_traffic_minute_is_not_down():
    """A minute with no requests is not down, even with a zero threshold."""
    assert unavailable_minutes([0, 0, 10], [0, 0, 0], threshold=0.0) == 0.0
    assert unavailable_minutes_uptime_pct([0, 0, 10], [0, 0, 1], threshold=0.0) == (
        pytest.approx(100.0 - 100.0 / 3)
    )


def test_unavailable_5min_runs_use_the_run_error_rate():
    """With run_s=300 a run is down when its 5-minute error rate passes the threshold."""
    requests = [100] * 10
    # run 1: 30/500 = 6% -> down (5 min); run 2: 25/500 = 5% -> up.
    errors = [30, 0, 0, 0, 0] + [5, 5, 5, 5, 5]
    assert unavailable_minutes(requests, errors, run_s=300) == 5.0
    assert unavailable_minutes_uptime_pct(requests, errors, run_s=300) == pytest.approx(50.0)
    # per minute, only the first minute (30%) is down
    assert unavailable_minutes(requests, errors) == 1.0


def test_unavailable_partial_last_run_counts_for_its_length():
    """A last, shorter run that is down counts only its own minutes."""
    requests = [10] * 7
    errors = [0] * 5 + [10, 10]
    assert unavailable_minutes(requests, errors, run_s=300) == 2.0
    assert unavailable_minutes_uptime_pct(requests, errors, run_s=300) == pytest.approx(
        100.0 - 100.0 * 2 / 7
    )


def test_unavailable_2d_returns_one_value_per_row():
    """2-D input gives one value per row, equal to the 1-D result of that row."""
    requests = np.array([[100] * 4, [100] * 4])
    errors = np.array([[100, 0, 0, 0], [100, 100, 0, 6]])
    np.testing.assert_allclose(unavailable_minutes(requests, errors), [1.0, 3.0])
    np.testing.assert_allclose(unavailable_minutes_uptime_pct(requests, errors), [75.0, 25.0])


def test_unavailable_with_seconds_periods():
    """period_s=10 with minute runs: down minutes are counted in minutes, not periods."""
    requests = [10] * 12  # two minutes of 10-s periods
    errors = [10] * 6 + [0] * 6
    assert unavailable_minutes(requests, errors, period_s=10) == 1.0
    assert unavailable_minutes_uptime_pct(requests, errors, period_s=10) == pytest.approx(50.0)


# --- input validation --------------------------------------------------------------

ALL = [
    averaged_error_rate_uptime_pct,
    unavailable_minutes_uptime_pct,
    unavailable_minutes,
]


@pytest.mark.parametrize("func", ALL)
@pytest.mark.parametrize(
    ("requests", "errors", "match"),
    [
        ([1, 1, 1], [0, 0], "same shape"),
        ([1, 1], [2, 0], "exceed"),
        ([-1, 1], [0, 0], "requests must be non-negative"),
        ([1, 1], [-1, 0], "errors must be non-negative"),
        ([np.nan, 1], [0, 0], "finite"),
        ([], [], "at least one"),
        (np.ones((2, 2, 2)), np.zeros((2, 2, 2)), "1-D"),
    ],
)
def test_bad_counts_raise(func, requests, errors, match):
    """Mismatched lengths, errors > requests, negative or non-finite counts raise ValueError."""
    with pytest.raises(ValueError, match=match):
        func(requests, errors)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"period_s": 60, "interval_s": 90}, "whole multiple"),
        ({"period_s": 60, "interval_s": 30}, "whole multiple"),
        ({"period_s": 0}, "period_s"),
        ({"interval_s": -300}, "interval_s"),
    ],
)
def test_averaged_rejects_interval_not_multiple_of_period(kwargs, match):
    """interval_s must be a positive whole multiple of period_s."""
    with pytest.raises(ValueError, match=match):
        averaged_error_rate_uptime_pct([1] * 10, [0] * 10, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"run_s": 90}, "whole multiple"),
        ({"period_s": 120}, "whole multiple"),
        ({"threshold": -0.1}, "threshold"),
        ({"threshold": 5.0}, "threshold"),
    ],
)
def test_unavailable_rejects_bad_run_or_threshold(kwargs, match):
    """run_s must be a whole multiple of period_s; threshold is an error rate in [0, 1]."""
    for func in (unavailable_minutes, unavailable_minutes_uptime_pct):
        with pytest.raises(ValueError, match=match):
            func([1] * 10, [0] * 10, **kwargs)
