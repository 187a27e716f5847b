"""Tests for deploysim.sla: allowed downtime, budget used, service credits (DESIGN.md, "Figures")."""

from __future__ import annotations

import math

import pytest

from deploysim.sla import (
    CREDIT_TIER_TABLES,
    CreditTier,
    allowed_downtime,
    budget_used_pct,
    credit_tiers,
    service_credit,
)

MONTH_S = 30 * 86400


# --- allowed downtime -------------------------------------------------------------


@pytest.mark.parametrize(
    ("target_pct", "expected_s"),
    [(99.9, 2592.0), (99.95, 1296.0), (99.99, 259.2), (99.999, 25.92)],
)
def test_allowed_downtime_matches_design_table_on_30_day_month(target_pct, expected_s):
    """Allowed downtime = (1 - target) x 30 days, exactly DESIGN.md's SLA budget table."""
    assert allowed_downtime(target_pct) == pytest.approx(expected_s, rel=1e-9)


@pytest.mark.parametrize(
    ("target_pct", "expected_min"), [(99.9, 43.2), (99.95, 21.6), (99.99, 4.32)]
)
def test_allowed_downtime_in_minutes_matches_design_table(target_pct, expected_min):
    """The table's minute figures: 43.2, 21.6 and 4.32 min."""
    assert allowed_downtime(target_pct) / 60 == pytest.approx(expected_min, rel=1e-9)


def test_four_min_twenty_s_is_the_99_99_budget_not_99_9():
    """4 min 20 s (260 s) is 99.99% within rounding; 99.9% allows ten times as much."""
    assert allowed_downtime(99.99) == pytest.approx(260.0, abs=1.0)
    assert allowed_downtime(99.9) == pytest.approx(2592.0)
    assert allowed_downtime(99.9) > 9 * 260.0


def test_five_nines_allow_about_26_s_not_under_5_s():
    """99.999% allows 25.9 s a month (rounded), not "under 5 s"."""
    assert round(allowed_downtime(99.999), 1) == 25.9
    assert allowed_downtime(99.999) > 5.0


def test_allowed_downtime_scales_with_period_and_is_zero_at_100_pct():
    """Downtime is proportional to the period; a 100% target allows none."""
    assert allowed_downtime(99.9, period_s=86400) == pytest.approx(86.4)
    assert allowed_downtime(100.0) == 0.0


@pytest.mark.parametrize("target_pct", [0.0, -1.0, 100.0001, 150.0, math.nan, math.inf])
def test_allowed_downtime_rejects_target_outside_0_100(target_pct):
    """A target outside (0, 100] raises ValueError naming target_pct."""
    with pytest.raises(ValueError, match="target_pct"):
        allowed_downtime(target_pct)


@pytest.mark.parametrize("period_s", [0.0, -60.0, math.nan])
def test_allowed_downtime_rejects_non_positive_period(period_s):
    """A period <= 0 (or not finite) raises ValueError naming period_s."""
    with pytest.raises(ValueError, match="period_s"):
        allowed_downtime(99.9, period_s)


# --- budget used ------------------------------------------------------------------


def test_budget_used_is_downtime_over_allowed_downtime():
    """Budget used = 100 x downtime / allowed downtime; it may exceed 100."""
    assert budget_used_pct(1296.0, 99.9) == pytest.approx(50.0)
    assert budget_used_pct(0.0, 99.9) == 0.0
    assert budget_used_pct(2592.0, 99.9) == pytest.approx(100.0)
    assert budget_used_pct(518.4, 99.99) == pytest.approx(200.0)
    assert budget_used_pct(8.64, 99.9, period_s=86400) == pytest.approx(10.0)


def test_budget_used_at_100_pct_target_is_zero_or_infinite():
    """With no allowed downtime, no downtime uses 0% and any downtime uses infinitely much."""
    assert budget_used_pct(0.0, 100.0) == 0.0
    assert budget_used_pct(1.0, 100.0) == math.inf


def test_budget_used_rejects_negative_downtime_and_bad_target():
    """Negative downtime or an invalid target raise ValueError naming the argument."""
    with pytest.raises(ValueError, match="downtime_s"):
        budget_used_pct(-1.0, 99.9)
    with pytest.raises(ValueError, match="target_pct"):
        budget_used_pct(10.0, 0.0)


# --- service credits --------------------------------------------------------------

SHIPPED = {
    "s3-standard": 99.9,
    "dynamodb-standard": 99.99,
    "dynamodb-global-tables": 99.999,
    "kms": 99.999,
}


def test_shipped_table_names():
    """The four shipped tables are listed in CREDIT_TIER_TABLES."""
    assert set(CREDIT_TIER_TABLES) == set(SHIPPED)


@pytest.mark.parametrize(("name", "first_pct"), sorted(SHIPPED.items()))
def test_shipped_table_tiers(name, first_pct):
    """Each table is: own target -> 10%, 99.0 -> 25%, 95.0 -> 100%, highest threshold first."""
    assert credit_tiers(name) == (
        CreditTier(first_pct, 10),
        CreditTier(99.0, 25),
        CreditTier(95.0, 100),
    )


@pytest.mark.parametrize(("name", "first_pct"), sorted(SHIPPED.items()))
def test_shipped_table_credit_at_boundaries(name, first_pct):
    """Credit applies strictly below a threshold: at the threshold it is the next tier up."""
    assert service_credit(100.0, name) == 0.0
    assert service_credit(first_pct, name) == 0.0
    assert service_credit(first_pct - 1e-6, name) == 10.0
    assert service_credit(99.0, name) == 10.0
    assert service_credit(98.999, name) == 25.0
    assert service_credit(95.0, name) == 25.0
    assert service_credit(94.999, name) == 100.0
    assert service_credit(0.0, name) == 100.0


def test_s3_standard_example_from_design():
    """S3 Standard: < 99.9 -> 10%, < 99.0 -> 25%, < 95.0 -> 100%."""
    assert service_credit(99.5, "s3-standard") == 10.0
    assert service_credit(97.0, "s3-standard") == 25.0
    assert service_credit(90.0, "s3-standard") == 100.0


def test_service_credit_accepts_pairs_in_any_order():
    """Tiers given as (below_pct, credit_pct) pairs, unsorted, give the lowest matching tier."""
    tiers = [(95.0, 50), (99.5, 10), (99.0, 25)]
    assert service_credit(99.7, tiers) == 0.0
    assert service_credit(99.2, tiers) == 10.0
    assert service_credit(96.0, tiers) == 25.0
    assert service_credit(94.0, tiers) == 50.0
    assert service_credit(94.0, [CreditTier(99.0, 25), CreditTier(95.0, 50)]) == 50.0


def test_service_credit_is_zero_when_above_every_threshold_or_no_tiers():
    """No matching tier (or an empty table) means no credit."""
    assert service_credit(99.95, "s3-standard") == 0.0
    assert service_credit(50.0, []) == 0.0


def test_unknown_table_lists_known_ones():
    """An unknown table name raises ValueError listing the known names."""
    with pytest.raises(ValueError, match="s3-standard") as info:
        service_credit(99.0, "s3-express")
    for name in SHIPPED:
        assert name in str(info.value)
    with pytest.raises(ValueError, match="kms"):
        credit_tiers("nope")


@pytest.mark.parametrize(
    ("tiers", "match"),
    [
        ([(99.9, 10), (99.9, 25)], "distinct"),
        ([(99.9,)], "pair"),
        ([(101.0, 10)], "below_pct"),
        ([(99.0, 120)], "credit_pct"),
        (42, "sequence"),
    ],
)
def test_service_credit_rejects_bad_tiers(tiers, match):
    """Duplicate thresholds, malformed pairs and out-of-range values raise ValueError."""
    with pytest.raises(ValueError, match=match):
        service_credit(99.0, tiers)


@pytest.mark.parametrize("uptime_pct", [-0.1, 100.1, math.nan])
def test_service_credit_rejects_uptime_outside_0_100(uptime_pct):
    """An uptime outside [0, 100] raises ValueError naming uptime_pct."""
    with pytest.raises(ValueError, match="uptime_pct"):
        service_credit(uptime_pct, "s3-standard")


def test_credit_tier_is_frozen():
    """CreditTier is immutable."""
    tier = CreditTier(99.9, 10)
    with pytest.raises(AttributeError):
        tier.credit_pct = 25  # type: ignore[misc]
