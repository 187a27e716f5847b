"""How a run of the executor ends: its status, its process exit code, and the two ways it stops early."""

from __future__ import annotations

from dataclasses import dataclass

EXIT_COMPLETE = 0
"""The version runs on every target, each one asked at the end."""
EXIT_ROLLED_BACK = 1
"""The version was stopped: rolled back (every target in scope asked at the end) or failed in pre-production."""
EXIT_BAD_INPUT = 2
"""Bad input, an unreadable journal, or a state directory or target group another executor holds."""
EXIT_HALTED = 3
"""The run halted and needs people: a failed action, unreadable metrics, no data, an incomplete rollback."""
EXIT_INTERNAL = 4
"""A bug in deploysim (an unexpected exception): the journal keeps its place; --resume after a fix."""
EXIT_INTERRUPTED = 130
"""Ctrl-C or SIGTERM: the action under way finished; continue with --resume."""
EXIT_FAILED = EXIT_ROLLED_BACK  # the name earlier versions used

FINAL_STATUSES = {"complete": EXIT_COMPLETE, "rolled_back": EXIT_ROLLED_BACK, "failed": EXIT_ROLLED_BACK}
"""Run statuses nothing follows (unless an operator asks for a rollback); the others can be resumed."""


@dataclass(frozen=True)
class RunOutcome:
    """How a run of the executor ended: a status word, the process exit code, and what to tell people."""

    status: str  # complete | rolled_back | failed | halted | stopped | rollback_incomplete
    exit_code: int
    message: str


class Stopped(Exception):
    """Ctrl-C or SIGTERM: stop at the next safe point."""


class Halt(Exception):
    """An adapter call or a metric read failed after its retries: stop the rollout and say why."""
