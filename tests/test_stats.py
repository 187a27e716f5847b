"""Interval estimates checked against closed forms and by coverage on samples with a known answer."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from deploysim.experiments import stats


def test_clopper_pearson_matches_the_closed_form():
    # 0 of n: the upper bound solves (1 - p)^n = alpha / 2.
    low, high = stats.proportion_ci(0, 10)
    assert low == 0.0
    assert high == pytest.approx(1 - 0.025 ** (1 / 10), rel=1e-9)
    # n of n: the mirror image.
    low, high = stats.proportion_ci(10, 10)
    assert low == pytest.approx(0.025 ** (1 / 10), rel=1e-9) and high == 1.0
    # In general the bounds are beta quantiles.
    low, high = stats.proportion_ci(7, 40)
    assert low == pytest.approx(sps.beta.ppf(0.025, 7, 34)) and high == pytest.approx(sps.beta.ppf(0.975, 8, 33))
    assert all(math.isnan(v) for v in stats.proportion_ci(0, 0))


def test_quantile_interval_covers_the_true_median_about_95_percent_of_the_time():
    rng = np.random.default_rng(7)
    hits = 0
    trials = 400
    for _ in range(trials):
        x = rng.exponential(1.0, size=60)
        low, high = stats.quantile_ci(x, 0.5)
        hits += low <= math.log(2) <= high
    # Order-statistic intervals are conservative: coverage at least 95%, a binomial margin below.
    assert hits / trials >= 0.93


def test_quantile_interval_is_unbounded_where_the_sample_cannot_bound_it():
    x = np.arange(100.0)
    low, high = stats.quantile_ci(x, 0.99)
    assert math.isfinite(low) and math.isnan(high)  # 100 values cannot bound a p99 from above
    low, high = stats.quantile_ci(np.arange(5.0), 0.5)
    assert math.isnan(low) and math.isnan(high)  # 0.5**5 > 0.025


def test_mean_interval_agrees_with_the_normal_theory_interval_on_normal_data():
    x = np.random.default_rng(3).normal(10.0, 2.0, size=400)
    low, high = stats.mean_ci(x)
    half = sps.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size)
    assert low == pytest.approx(x.mean() - half, abs=0.1 * half)
    assert high == pytest.approx(x.mean() + half, abs=0.1 * half)
    assert stats.mean_ci(x) == (low, high)  # seeded: same data, same interval


def test_constant_samples_give_no_interval_rather_than_a_point():
    # Resampling identical values cannot tell how far the mean could be: no interval, never a zero-width one.
    assert all(math.isnan(v) for v in stats.mean_ci([3.0, 3.0, 3.0]))
    assert all(math.isnan(v) for v in stats.mean_ci([1.0]))
    diff, low, high = stats.paired_difference_ci([2.0] * 20, [1.0] * 20)
    assert diff == 1.0 and math.isnan(low) and math.isnan(high)


def test_paired_breach_difference_with_every_month_agreeing_is_as_wide_as_the_single_interval():
    # 20 months, the same single breaching month under both policies: the difference is 0, but 20
    # months cannot rule out a discordance rate up to the Clopper-Pearson bound of 0 in 20 (0.168).
    a = np.zeros(20)
    a[3] = 1.0
    diff, low, high = stats.paired_difference_ci(a, a, binary=True)
    single_high = 1 - 0.025 ** (1 / 20)
    assert diff == 0.0
    assert low == pytest.approx(-single_high) and high == pytest.approx(single_high)
    assert single_high == pytest.approx(0.1684, abs=1e-4)
    _, u_low, u_high = stats.unpaired_difference_ci(a, a, binary=True)
    assert u_low < 0 < u_high


def test_paired_breach_difference_interval_by_hand_and_coverage():
    # 3 of 30 months breach only under b, none only under a: psi = 3/30, pi = 3/3.
    b, a = np.zeros(30), np.zeros(30)
    b[:3] = 1.0
    diff, low, high = stats.paired_difference_ci(b, a, binary=True)
    psi_low, psi_high = sps.beta.ppf(0.0125, 3, 28), sps.beta.ppf(0.9875, 4, 27)
    pi_low = 0.0125 ** (1 / 3)  # Clopper-Pearson lower bound of 3 of 3 at 97.5%
    assert diff == pytest.approx(0.1)
    assert low == pytest.approx(min(psi_low * (2 * pi_low - 1), psi_high * (2 * pi_low - 1)))
    assert high == pytest.approx(psi_high)
    # Coverage: at least 95% on paired yes/no data with a known difference (0.10 − 0.05).
    rng = np.random.default_rng(5)
    hits, trials = 0, 400
    for _ in range(trials):
        u = rng.random(40)
        a = (u < 0.05).astype(float)
        b = ((u < 0.03) | (u > 0.92)).astype(float)  # P(b) = 0.11, P(a) = 0.05
        _, low, high = stats.paired_difference_ci(b, a, binary=True)
        hits += low <= 0.06 <= high
    assert hits / trials >= 0.94


def test_replications_needed_to_show_a_breach_probability_below_a_bound():
    # No breach in n months: the upper bound is 1 - 0.025**(1/n), at most 0.05 from n = 72.
    assert stats.replications_to_show_below(0.0, 0.05) == 72
    assert stats.proportion_ci(0, 72)[1] <= 0.05 < stats.proportion_ci(0, 71)[1]
    assert stats.replications_to_show_below(0.05, 0.05) is None  # at the bound: no number of months will do
    n = stats.replications_to_show_below(0.01, 0.05)
    assert n is not None and stats.proportion_ci(round(0.01 * n), n)[1] <= 0.0505


def test_pairing_removes_the_shared_variation():
    rng = np.random.default_rng(1)
    world = rng.normal(0, 10, size=200)  # what both policies see (common random numbers)
    a = world + rng.normal(0, 1, size=200)
    b = world + 2.0 + rng.normal(0, 1, size=200)
    diff, low, high = stats.paired_difference_ci(b, a)
    _, u_low, u_high = stats.unpaired_difference_ci(b, a)
    assert low < 2.0 < high
    assert (high - low) < 0.25 * (u_high - u_low)
    assert diff == pytest.approx(np.mean(b - a))
