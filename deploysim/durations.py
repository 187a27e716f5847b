"""Durations as people write them in scenario files ("90s", "5m", "1h30m", "2d") and as seconds in code."""

from __future__ import annotations

import math
import re

_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


def parse_duration_s(value: object) -> float:
    """Return a duration in seconds from a number (seconds) or a string such as "1h30m".

    Raises ValueError with the accepted forms when the value is not a duration.
    """
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 90 (seconds), '5m', '1h30m' or '2d'")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().replace(" ", "")
        pos = 0
        seconds = 0.0
        for match in _PART.finditer(text):
            if match.start() != pos:
                break
            seconds += float(match.group(1)) * _UNIT_S[match.group(2)]
            pos = match.end()
        if pos != len(text) or not text:
            try:
                seconds = float(text)
            except ValueError:
                raise ValueError(
                    f"expected a duration such as 90 (seconds), '5m', '1h30m' or '2d', got {value!r}"
                ) from None
    else:
        raise ValueError(f"expected a duration such as 90 (seconds), '5m', '1h30m' or '2d', got {value!r}")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"expected a non-negative duration, got {value!r}")
    return seconds


def format_duration_s(seconds: float) -> str:
    """Render seconds compactly for people: 4320 -> '1h12m', 25.92 -> '25.9s', 0.0005 -> '<0.1s'.

    A duration above zero that one decimal of a second would show as 0.0 is '<0.1s' (the rule of
    `deploysim.readable`: below the smallest step shown, say so rather than print a false zero).
    """
    if not math.isfinite(seconds):
        return "n/a"
    if 0 < seconds < 0.05:
        return "<0.1s"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes = seconds / 60
    if minutes < 60:
        return f"{minutes:.1f}m"
    hours = int(minutes // 60)
    rest_m = int(round(minutes - hours * 60))
    if hours < 48:
        return f"{hours}h{rest_m:02d}m"
    return f"{seconds / 86400:.2f}d"
