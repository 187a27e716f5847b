"""`deploysim abort`, `pause`, `resume`, `promote` and `approve`: an operator's controls of a rollout.

Each appends a request with who asked (user@host) and why to the rollout's journal, then waits (up to
`--wait`) for the executor running the rollout to take it, and prints what it did. With no executor
running, the request stays in the journal and the next `deploysim execute --resume` takes it.

Exit codes: 0 done (or recorded for the next run), 1 the executor ignored it (it did not apply where
the rollout stood; the reason is printed), 2 refused before it was recorded (no journal, the
rollout already ended, nothing awaits approval, ...).
"""

from __future__ import annotations

import time
from pathlib import Path

import click

from .common import fail
from .execute import _journal, _no_traceback

POLL_S = 0.2
"""How often a control command looks whether the executor took its request."""

_DOES = {
    "abort": "roll the rollout back now, at automatic speed, whatever the policy says",
    "pause": "start no new deploy until `deploysim resume`; bakes and alarms go on",
    "resume": "lift a pause (`deploysim pause`); to continue a stopped or crashed run, use "
              "`deploysim execute --resume`",
    "promote": "end the current step's bake now (the rest of its duration and minimum data are skipped)",
    "approve": "give the approval the current stage waits for (a stage with `approval:` in the policy)",
}


def _refusal(kind: str, journal, running: bool) -> str | None:
    """Why the request cannot apply, judged from the journal before it is recorded (None: it may)."""
    ended = journal.last_terminal_event()
    last = journal.last_decision()
    if ended is not None and ended[0] in ("complete", "rolled_back", "failed") and not running:
        hint = (" (undo a finished rollout with deploysim execute --resume STATE_DIR --rollback)"
                if ended[0] == "complete" and kind == "abort" else "")
        return f"the rollout already ended: {ended[0]}{hint}"
    if last is not None and last.kind in ("RollBack", "Fail"):
        return f"the rollout is being stopped already ({last.kind}): nothing to {kind}"
    if kind == "approve" and (last is None or last.kind != "WaitApproval"):
        return "no stage awaits approval" + (f" (the last decision is {last.kind})" if last else "")
    if kind == "promote" and (last is None or last.kind not in ("DeployBatch", "BakeWait")):
        return "no step is deploying or baking: nothing to promote"
    return None


def _control(kind: str, state_dir: Path, reason: str, wait_s: float) -> None:
    from ..executor.controls import operator_name
    from ..executor.lock import holder_pid

    journal = _journal(state_dir)
    try:
        running = holder_pid(state_dir) is not None
        refused = _refusal(kind, journal, running)
        if refused is not None:
            fail(f"{kind} refused: {refused}")
        seq = journal.request_control(kind, operator_name(), reason)
        if not running:
            click.echo(f"{kind} recorded as control #{seq}; no executor runs this rollout now: "
                       f"deploysim execute --resume {state_dir} carries it out")
            return
        deadline = time.monotonic() + wait_s
        while True:
            taken = next(c for c in journal.controls() if c.seq == seq)
            if taken.effect is not None:
                click.echo(f"{taken.effect}: {taken.detail}")
                raise SystemExit(1 if taken.effect == "ignored" else 0)
            if time.monotonic() >= deadline:
                click.echo(f"{kind} recorded as control #{seq}; the executor has not taken it within "
                           f"{wait_s:g} s (it looks about once a second while it waits; an action under way "
                           f"finishes first): see deploysim status {state_dir}")
                return
            time.sleep(POLL_S)
    finally:
        journal.close()


def _command(kind: str) -> click.Command:
    @click.command(name=kind, help=f"Ask the executor running the rollout in STATE_DIR to {_DOES[kind]}. "
                   "Journaled with your user@host and --reason.")
    @click.argument("state_dir", type=click.Path(file_okay=False, path_type=Path))
    @click.option("--reason", default="", help="Why (journaled with who asked).")
    @click.option("--wait", "wait_s", type=click.FloatRange(min=0), default=30.0, show_default=True,
                  help="Seconds to wait for the running executor to take the request.")
    @_no_traceback
    def command(state_dir: Path, reason: str, wait_s: float) -> None:
        _control(kind, state_dir, reason, wait_s)

    return command


abort, pause, resume, promote, approve = (_command(kind) for kind in ("abort", "pause", "resume", "promote", "approve"))
