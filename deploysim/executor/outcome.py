"""How a run of the executor ends: its status, its process exit code, and the two ways it stops early."""

from __future__ import annotations

from dataclasses import dataclass

EXIT_COMPLETE, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130
FINAL_STATUSES = {"complete": EXIT_COMPLETE, "rolled_back": EXIT_FAILED, "failed": EXIT_FAILED}
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
