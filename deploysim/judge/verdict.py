"""The small interface every judge shares: a verdict and a one-line reason for people."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Verdict(str, Enum):
    """What a judge concludes about a canary at one moment."""

    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"
    RUNNING = "running"


@dataclass(frozen=True)
class Judgement:
    """A verdict with a one-line reason; each judge's result extends it with its own details."""

    verdict: Verdict
    reason: str
