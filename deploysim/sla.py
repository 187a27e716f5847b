"""SLA arithmetic: allowed downtime for an uptime target, budget used, service credits.

Allowed downtime = (1 - target) x period. On a 30-day month (2 592 000 s):

    =========  ==================  ===================
    target     allowed downtime    same, in minutes
    =========  ==================  ===================
    99.9 %     2592 s              43.2 min
    99.95 %    1296 s              21.6 min
    99.99 %    259.2 s             4.32 min (4 min 19.2 s)
    99.999 %   25.92 s             0.432 min
    =========  ==================  ===================

Two wrong figures are widely repeated: "4 min 20 s a month" for 99.9% (4 min 20 s
is the budget of 99.99%; 99.9% allows 43.2 min) and "under 5 s a month" for
99.999% (it allows 25.9 s).

Service credits follow the providers' tier tables: the credit is that of the
lowest tier whose threshold the monthly uptime is below. Tables shipped with
deploysim live in ``deploysim/data/credit_tiers.yaml``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from numbers import Real
from typing import Any

import yaml

__all__ = [
    "MONTH_30D_S",
    "CREDIT_TIER_TABLES",
    "CreditTier",
    "allowed_downtime",
    "budget_used_pct",
    "credit_tiers",
    "service_credit",
]

MONTH_30D_S: float = 30 * 86400.0
"""Length of the 30-day month that SLA figures are quoted on, in seconds."""

_CREDIT_TIERS_RESOURCE = ("data", "credit_tiers.yaml")


def _real(value: Any, name: str) -> float:
    """Return ``value`` as a finite float or raise ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    out = float(value)
    if not math.isfinite(out):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return out


def _check_target_pct(target_pct: Any) -> float:
    target = _real(target_pct, "target_pct")
    if not 0.0 < target <= 100.0:
        raise ValueError(f"target_pct must be in (0, 100], got {target_pct!r}")
    return target


def _check_period_s(period_s: Any) -> float:
    period = _real(period_s, "period_s")
    if period <= 0.0:
        raise ValueError(f"period_s must be > 0, got {period_s!r}")
    return period


def allowed_downtime(target_pct: float, period_s: float = MONTH_30D_S) -> float:
    """Downtime, in seconds, that an uptime target of ``target_pct`` allows over ``period_s``.

    (1 - target/100) x period; e.g. 99.9 -> 2592 s (43.2 min) and 99.99 -> 259.2 s
    (4.32 min) on the default 30-day month. Raises ValueError for a target outside
    (0, 100] or a period <= 0.
    """
    target = _check_target_pct(target_pct)
    period = _check_period_s(period_s)
    # Decimal arithmetic on the shortest repr: 99.99 -> exactly 259.2 s, not 259.2000000001326.
    allowed = (Decimal(100) - Decimal(repr(target))) / Decimal(100) * Decimal(repr(period))
    return float(allowed)


def budget_used_pct(
    downtime_s: float, target_pct: float, period_s: float = MONTH_30D_S
) -> float:
    """Share of the allowed downtime (the error budget) that ``downtime_s`` uses, in percent.

    Exceeds 100 when the target is missed. For a 100% target (no allowed downtime)
    it is 0 for no downtime and ``math.inf`` otherwise.
    """
    downtime = _real(downtime_s, "downtime_s")
    if downtime < 0.0:
        raise ValueError(f"downtime_s must be >= 0, got {downtime_s!r}")
    allowed_s = allowed_downtime(target_pct, period_s)
    if allowed_s == 0.0:
        return 0.0 if downtime == 0.0 else math.inf
    return 100.0 * downtime / allowed_s


@dataclass(frozen=True)
class CreditTier:
    """One row of a service-credit table: uptime below ``below_pct`` earns ``credit_pct`` of the bill."""

    below_pct: float
    credit_pct: float

    def __post_init__(self) -> None:
        below = _real(self.below_pct, "below_pct")
        credit = _real(self.credit_pct, "credit_pct")
        if not 0.0 < below <= 100.0:
            raise ValueError(f"below_pct must be in (0, 100], got {self.below_pct!r}")
        if not 0.0 <= credit <= 100.0:
            raise ValueError(f"credit_pct must be in [0, 100], got {self.credit_pct!r}")
        object.__setattr__(self, "below_pct", below)
        object.__setattr__(self, "credit_pct", credit)


def _tier_from(item: Any, where: str) -> CreditTier:
    """Build a CreditTier from a CreditTier, a (below_pct, credit_pct) pair or a mapping."""
    if isinstance(item, CreditTier):
        return item
    try:
        if isinstance(item, dict):
            unknown = set(item) - {"below_pct", "credit_pct"}
            if unknown:
                raise ValueError(f"unknown keys {sorted(map(str, unknown))}")
            return CreditTier(item["below_pct"], item["credit_pct"])
        if isinstance(item, (str, bytes)) or not isinstance(item, Sequence) or len(item) != 2:
            raise ValueError(
                "expected a CreditTier or a (below_pct, credit_pct) pair, " f"got {item!r}"
            )
        return CreditTier(item[0], item[1])
    except KeyError as exc:
        raise ValueError(f"{where}: missing key {exc.args[0]!r}") from None
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def _normalise_tiers(items: Any, where: str) -> tuple[CreditTier, ...]:
    """Validate a tier sequence; return it sorted from the highest threshold down."""
    if isinstance(items, (str, bytes)) or not isinstance(items, Sequence):
        raise ValueError(f"{where} must be a sequence of tiers, got {items!r}")
    tiers = tuple(_tier_from(item, f"{where}[{i}]") for i, item in enumerate(items))
    thresholds = [t.below_pct for t in tiers]
    if len(set(thresholds)) != len(thresholds):
        raise ValueError(f"{where}: below_pct values must be distinct, got {thresholds}")
    return tuple(sorted(tiers, key=lambda t: t.below_pct, reverse=True))


@functools.lru_cache(maxsize=1)
def _shipped_tables() -> dict[str, tuple[CreditTier, ...]]:
    """Load and validate ``deploysim/data/credit_tiers.yaml`` once."""
    resource = resources.files("deploysim").joinpath("/".join(_CREDIT_TIERS_RESOURCE))
    where = "/".join(_CREDIT_TIERS_RESOURCE)
    doc = yaml.safe_load(resource.read_text(encoding="utf-8"))
    if not isinstance(doc, dict) or not isinstance(doc.get("tables"), dict):
        raise ValueError(f"{where}: expected a mapping with a 'tables' mapping")
    tables: dict[str, tuple[CreditTier, ...]] = {}
    for name, table in doc["tables"].items():
        path = f"{where}: tables.{name}"
        if not isinstance(table, dict) or "tiers" not in table:
            raise ValueError(f"{path}: expected a mapping with 'source' and 'tiers'")
        if not isinstance(table.get("source"), str) or not table["source"].strip():
            raise ValueError(f"{path}.source: expected the title of the public SLA page")
        tables[str(name)] = _normalise_tiers(table["tiers"], f"{path}.tiers")
    return tables


CREDIT_TIER_TABLES: tuple[str, ...] = tuple(sorted(_shipped_tables()))
"""Names of the service-credit tables shipped with deploysim."""


def credit_tiers(name: str) -> tuple[CreditTier, ...]:
    """The shipped service-credit table ``name``, highest threshold first.

    Raises ValueError listing the known names for an unknown one.
    """
    tables = _shipped_tables()
    if name not in tables:
        known = ", ".join(CREDIT_TIER_TABLES)
        raise ValueError(f"unknown credit tier table {name!r}; known tables: {known}")
    return tables[name]


def service_credit(
    uptime_pct: float, tiers: str | Sequence[CreditTier | tuple[float, float]]
) -> float:
    """Service credit, in percent of the bill, earned by a monthly uptime of ``uptime_pct``.

    The credit of the lowest tier whose threshold the uptime is below
    (``uptime_pct < below_pct``), 0 if it is below none. ``tiers`` is a sequence of
    CreditTier or (below_pct, credit_pct) pairs, or the name of a shipped table
    (see CREDIT_TIER_TABLES); e.g. ``service_credit(98.0, "s3-standard") == 25.0``.
    """
    uptime = _real(uptime_pct, "uptime_pct")
    if not 0.0 <= uptime <= 100.0:
        raise ValueError(f"uptime_pct must be in [0, 100], got {uptime_pct!r}")
    table = credit_tiers(tiers) if isinstance(tiers, str) else _normalise_tiers(tiers, "tiers")
    credit = 0.0
    for tier in table:  # highest threshold first, so the last match is the lowest tier
        if uptime < tier.below_pct:
            credit = tier.credit_pct
    return credit
