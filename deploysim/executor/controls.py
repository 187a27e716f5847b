"""Operators' controls of a running rollout: abort, pause, resume, promote and approve.

A control is a row another process (`deploysim abort STATE_DIR` and the like) appends to the
run's journal with who asked and why. The executor looks for new ones while it waits (about once a
second, see `clock.control_poll_s`) and takes each exactly once, journaling what it did with it
together with an event (`Journal.take_control`):

- **abort**: roll back now, at automatic speed, whatever the policy says; the rollback is the
  controller's decision (`RollBack`, cause `operator`), journaled, so a later plain `--resume`
  continues it and never reverses it.
- **pause**: start no new deploy (no batch, no stage) until **resume**; bakes and their alarms go on,
  and an alarm still rolls back.
- **promote**: end the current step's bake now (the rest of its duration and its minimum data are
  skipped); given while the step deploys, its bake ends as soon as it starts.
- **approve**: give the approval the current stage waits for (a stage with `approval:`).

A control that does not apply where the rollout stands (approve when nothing awaits approval,
resume when not paused, anything after the rollout ended) is journaled as `ignored`, with why.
What was taken is read back from the journal when a run is resumed: a paused run stays paused, an
approval or a promote given before a crash still counts, and an abort taken before the rollback
was decided still rolls back.
"""

from __future__ import annotations

import getpass
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass

from .journal import Control, Journal, who_and_why

CONTROL_KINDS = ("abort", "pause", "resume", "promote", "approve")


def operator_name() -> str:
    """Who is asking: user@host (a container without a user name for its uid gives `uid N@host`)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid {os.getuid()}"
    return f"{user}@{socket.gethostname()}"


def operator_identity(reason: str = "") -> str:
    """Who asked (user@host) and why, as the journal keeps it with an operator's decision."""
    return who_and_why(operator_name(), reason)


@dataclass(frozen=True)
class Where:
    """Where the rollout stands when a control is taken."""

    stage: int | None = None
    step: int | None = None  # the step deploying or baking (None: none is)
    awaiting_approval: bool = False
    ended: bool = False  # the rollout reached its end (complete, rolled back, failed)
    label: str = ""  # the stage or step for people, e.g. "stage 2/2 prod, step 1/3 one-box"


ENDED = Where(ended=True)


class OperatorControls:
    """The controls of one run as the executor sees them: what is in force, and taking new ones."""

    def __init__(self, journal: Journal, log: Callable[[str], None] = lambda line: None):
        self.journal = journal
        self.log = log
        self.paused_by: str | None = None  # who paused the run (None: not paused)
        self.promoted: set[tuple[int, int]] = set()  # (stage, step) whose bake an operator ended
        self.approved: set[int] = set()  # stages an operator approved
        self.abort: str | None = None  # an abort taken, not yet carried out: who asked and why
        for control in journal.controls():
            if control.effect is not None:
                self._remember(control, control.effect)
        last = journal.last_decision()
        if last is not None and last.kind in ("RollBack", "Fail", "Complete"):
            self.abort = None  # the abort (if any) was carried out, or the run ended before it

    @property
    def paused(self) -> bool:
        return self.paused_by is not None

    def _remember(self, control: Control, effect: str) -> None:
        if effect == "paused":
            self.paused_by = control.who
        elif effect == "unpaused":
            self.paused_by = None
        elif effect == "promoted" and control.stage is not None and control.step is not None:
            self.promoted.add((control.stage, control.step))
        elif effect == "approved" and control.stage is not None:
            self.approved.add(control.stage)
        elif effect == "aborted":
            self.abort = control.who

    def poll(self, where: Where) -> None:
        """Take every control not taken yet, in the order they were asked for."""
        for control in self.journal.controls(pending_only=True):
            self._take(control, where)

    def _take(self, control: Control, where: Where) -> None:
        effect, why = self._effect(control, where)
        by = f"control #{control.seq} {control.kind} by {control.who}"
        detail = f"{by}: {why}"
        stage = where.stage
        step = where.step if control.kind == "promote" else None
        self.journal.take_control(control, effect, stage, step, detail,
                                  "control_ignored" if effect == "ignored" else effect)
        self._remember(Control(control.seq, control.time_s, control.kind, control.operator, control.reason,
                               effect, None, stage, step), effect)
        self.log(detail)

    def _effect(self, control: Control, where: Where) -> tuple[str, str]:
        """What `control` does where the rollout stands: (effect, why, for people)."""
        if where.ended:
            return "ignored", ("the rollout had already ended; undo a finished rollout with "
                               "deploysim execute --resume STATE_DIR --rollback")
        kind = control.kind
        if kind == "abort":
            if self.abort is not None:
                return "ignored", "already aborting"
            return "aborted", "rolling back every target moved to their previous version"
        if kind == "pause":
            if self.paused:
                return "ignored", f"already paused by {self.paused_by}"
            return "paused", "no new deploy starts until deploysim resume; bakes and alarms go on"
        if kind == "resume":
            if not self.paused:
                return "ignored", "the rollout was not paused"
            return "unpaused", "deploys start again"
        if kind == "promote":
            if where.step is None or where.stage is None:
                return "ignored", "no step is deploying or baking: nothing to promote"
            return "promoted", f"the bake of {where.label or f'stage {where.stage + 1} step {where.step + 1}'} ends now"
        if kind == "approve":
            if not where.awaiting_approval or where.stage is None:
                return "ignored", "no stage awaits approval"
            return "approved", f"{where.label or f'stage {where.stage + 1}'} may start"
        return "ignored", f"unknown control {kind!r}"
