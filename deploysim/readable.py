"""Numbers for people, as the report and the text tables print them.

One rule for every figure: three significant digits in positional notation (never ``1.6e-05``), in
the largest unit that keeps the number at or above 1 (ms, s, min, h, days for durations), and a
non-zero value smaller than its unit's floor (1 ms for durations, 0.001% for percentages) shown as
``< 1 ms`` or ``< 0.001%``: below that, the exact value only suggests a precision the simulation
does not have. A signed figure is its sign, then its magnitude by the same rule (``+548 ms``,
``−< 1 ms``); zero is ``0 s`` or ``0%``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

SECONDS_FLOOR = 0.001
PERCENT_FLOOR = 0.001
MINUS = "−"
# (below this many seconds, divide by, unit); from three days on, days.
DURATION_UNITS = ((1.0, 0.001, "ms"), (60.0, 1.0, "s"), (2 * 3600.0, 60.0, "min"), (3 * 86400.0, 3600.0, "h"))


def significant(value: float, digits: int = 3) -> str:
    """`value` to `digits` significant digits, positional and without trailing zeros: 0.0000548, 1230, 25.9."""
    if value == 0:
        return "0"
    return np.format_float_positional(float(value), precision=digits, unique=False, fractional=False, trim="-")


def seconds_text(seconds: float) -> str:
    """A duration for people: 0 s, < 1 ms, 548 ms, 59.7 s, 4.32 min, 3.5 h, 2.1 days."""
    if not math.isfinite(seconds):
        return "n/a"
    size = abs(seconds)
    sign = MINUS if seconds < 0 else ""
    if size == 0:
        return "0 s"
    if size < SECONDS_FLOOR:
        return f"{sign}< 1 ms"
    size = float(significant(size))  # the unit of the rounded value: 0.9996 s reads "1 s", not "1000 ms"
    for limit, div, unit in DURATION_UNITS:
        if size < limit:
            return f"{sign}{significant(size / div)} {unit}"
    return f"{sign}{significant(size / 86400.0)} days"


def percent_text(percent: float, digits: int = 3) -> str:
    """A percentage (already times 100) for people: 0%, < 0.001%, 0.0123%, 4.5%, 99.9%."""
    if not math.isfinite(percent):
        return "n/a"
    size = abs(percent)
    sign = MINUS if percent < 0 else ""
    if size == 0:
        return "0%"
    if size < PERCENT_FLOOR:
        return f"{sign}< {significant(PERCENT_FLOOR)}%"
    return f"{sign}{significant(size, digits)}%"


def signed_text(value: float, fmt: Callable[[float], str]) -> str:
    """`value` with its sign always shown, the magnitude formatted by `fmt`: +548 ms, −< 1 ms, +0 s."""
    if not math.isfinite(value):
        return "n/a"
    return ("+" if value >= 0 else MINUS) + fmt(abs(value))


__all__ = ["percent_text", "seconds_text", "signed_text", "significant"]
