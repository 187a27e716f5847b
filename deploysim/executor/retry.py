"""Retries with capped, doubling back-off that a stopping run can cut short.

Both shipped adapters retry through `retry`: the command adapter (each attempt a command) and the
local fleet's adapter (each attempt a deploy of one host). The back-off is waited through a `wait`
callable, which the executor gives the adapter (`Adapter.set_backoff_wait`): while the run is being
stopped (Ctrl-C, SIGTERM) it returns at once saying so, and no further attempt is made; during a
rollback it never does, since a rollback goes on to its end.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from .interfaces import BackoffWait

__all__ = ["MAX_BACKOFF_S", "BackoffWait", "backoff_waits", "plain_wait", "retry"]

T = TypeVar("T")

MAX_BACKOFF_S = 60.0
"""The longest wait between two attempts: the back-off doubles after each retry up to this."""


def plain_wait(seconds: float) -> bool:
    time.sleep(max(0.0, seconds))
    return False


def backoff_waits(backoff_s: float, retries: int) -> list[float]:
    """The waits before each retry: `backoff_s`, twice that, ..., each at most MAX_BACKOFF_S."""
    return [min(MAX_BACKOFF_S, backoff_s * 2 ** k) for k in range(retries)]


def retry(attempt: Callable[[], T], accept: Callable[[T], bool], *, retries: int, backoff_s: float,
          wait: BackoffWait = plain_wait) -> tuple[bool, list[T]]:
    """Call `attempt` until `accept`s its result, at most 1 + `retries` times, waiting the capped,
    doubling back-off between calls. Returns (accepted, every result). A `wait` that returns True
    ends the retries at once (not accepted)."""
    results: list[T] = []
    waits = backoff_waits(backoff_s, retries)
    for k in range(retries + 1):
        if k and wait(waits[k - 1]):
            break
        result = attempt()
        results.append(result)
        if accept(result):
            return True, results
    return False, results
