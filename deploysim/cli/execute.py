"""`deploysim execute` and `deploysim status`: parse arguments, call the executor, print what it says.

Exit codes: 0 complete, 1 rolled back / failed / halted, 2 bad input or a locked state directory,
130 interrupted (Ctrl-C or SIGTERM; continue with --resume).
"""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

from . import options
from .common import error_text as _error_text
from .common import fail as _fail  # exit code 2: the executor's EXIT_BAD_INPUT

if TYPE_CHECKING:
    from ..executor.lock import StateDirLock
    from ..executor.rollout import Rollout

DEFAULT_STATE_ROOT = ".deploysim-state"


def _log(line: str) -> None:
    click.echo(f"{time.strftime('%H:%M:%S')} {line}", err=True)


def _parts(rollout: Rollout):
    """The adapter and the metric source the inventory names (bad kinds are reported, not raised)."""
    from ..executor.inventory import make_adapter, make_metric_source

    try:
        adapter = make_adapter(rollout.inventory, rollout.inventory_dir)
        source = make_metric_source(rollout.inventory, rollout.targets, rollout.scenario.traffic.apis)
    except ImportError as error:
        _fail(f"inventory: this installation cannot build the adapter or metric source it names ({error})")
    except (ValueError, OSError) as error:
        _fail(f"inventory: {error}")
    return adapter, source


def _install_stop_handlers(stop: threading.Event) -> dict:
    """SIGINT and SIGTERM set `stop` (the executor stops at its next safe point); returns the old handlers."""
    def handler(signum, _frame):
        if not stop.is_set():
            _log(f"{signal.Signals(signum).name}: stopping after the current action (the journal keeps its place)")
        stop.set()

    return {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}


@click.command()
@click.argument("scenario_path", metavar="SCENARIO", required=False, type=click.Path(path_type=Path))
@click.option("--inventory", "inventory_path", type=click.Path(path_type=Path),
              help="Inventory file: the real target of every host, the adapter and the metric source.")
@click.option("--version", "version", help="The version to roll out, as the adapter names it (e.g. v2).")
@click.option("--pipeline", help="Which pipeline's policy to apply (default: the scenario's first).")
@click.option("--plan", "plan_only", is_flag=True, help="Print the plan and its expected duration; change nothing.")
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path),
              help=f"Where the journal and lock live (default: {DEFAULT_STATE_ROOT}/VERSION).")
@click.option("--resume", "resume_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Continue the rollout journaled in this state directory (after a crash, Ctrl-C or halt).")
@click.option("--rollback", is_flag=True, help="With --resume: roll every moved target back to its previous version.")
def execute(scenario_path: Path | None, inventory_path: Path | None, version: str | None,
            pipeline: str | None, plan_only: bool, state_dir: Path | None, resume_dir: Path | None,
            rollback: bool) -> None:
    """Apply SCENARIO's policy to a real rollout of --version over the --inventory's targets."""
    from ..executor.driver import Executor
    from ..executor.journal import JOURNAL_FILE, Journal
    from ..executor.plan_text import format_plan
    from ..executor.rollout import load_rollout_files, rollout_meta

    if resume_dir is not None:
        if scenario_path or inventory_path or version or pipeline or plan_only or state_dir:
            _fail("--resume takes only the state directory (and --rollback): the rest is in its journal")
        _resume(resume_dir, rollback)
        return
    if rollback:
        _fail("--rollback goes with --resume STATE_DIR")
    missing = [name for name, value in (("SCENARIO", scenario_path), ("--inventory", inventory_path),
                                        ("--version", version)) if value is None]
    if missing:
        _fail(f"missing {', '.join(missing)} (see deploysim execute --help)")
    assert scenario_path is not None and inventory_path is not None and version is not None  # none is missing
    try:
        rollout = load_rollout_files(scenario_path, inventory_path, version, pipeline)
    except ValueError as error:
        _fail(_error_text(error))
    if plan_only:
        click.echo(format_plan(rollout, time.time()))
        return
    state_dir = state_dir or Path(DEFAULT_STATE_ROOT) / version.replace("/", "_")
    state_dir.mkdir(parents=True, exist_ok=True)
    lock = _lock(state_dir)
    if (state_dir / JOURNAL_FILE).exists() and Journal.in_dir(state_dir).meta():
        _fail(f"{state_dir} already holds a rollout; continue it with --resume {state_dir} "
              "or choose another --state-dir")
    adapter, source = _parts(rollout)
    journal = Journal.in_dir(state_dir)
    journal.set_meta(rollout_meta(scenario_path, inventory_path, rollout))
    _log(f"rolling out {version} (pipeline {rollout.pipeline}); journal in {state_dir}; "
         f"resume with: deploysim execute --resume {state_dir}")
    executor = Executor(rollout, adapter, source, journal, stop=_stop_event(), log=_log)
    _finish(lambda: executor.start(), source, lock)


def _lock(state_dir: Path) -> StateDirLock:
    from ..executor.lock import StateDirLock, StateDirLocked

    try:
        return StateDirLock(state_dir).acquire()
    except StateDirLocked as error:
        _fail(str(error))


_previous_handlers: dict = {}


def _stop_event() -> threading.Event:
    stop = threading.Event()
    _previous_handlers.update(_install_stop_handlers(stop))
    return stop


def _resume(state_dir: Path, rollback: bool) -> None:
    from ..executor.driver import Executor
    from ..executor.journal import JOURNAL_FILE, Journal
    from ..executor.rollout import rollout_from_meta

    if not (state_dir / JOURNAL_FILE).exists():
        _fail(f"{state_dir} holds no journal ({JOURNAL_FILE}); start a rollout with deploysim execute first")
    lock = _lock(state_dir)
    journal = Journal.in_dir(state_dir)
    meta = journal.meta()
    try:
        rollout = rollout_from_meta(meta)
    except (KeyError, ValueError) as error:
        _fail(f"{state_dir}: the journal's rollout cannot be rebuilt: {error}")
    adapter, source = _parts(rollout)
    _log(f"resuming {rollout.version} (pipeline {rollout.pipeline}) from {state_dir}")
    executor = Executor(rollout, adapter, source, journal, stop=_stop_event(), log=_log)
    _finish(lambda: executor.resume(force_rollback=rollback), source, lock)


def _finish(run, source, lock: StateDirLock) -> NoReturn:
    """Run the executor, stop the metric source's own threads (probes), report, exit with the outcome's code."""
    try:
        outcome = run()
    finally:
        close = getattr(source, "close", None)
        if close is not None:
            close()
        lock.release()
        for sig, handler in _previous_handlers.items():
            signal.signal(sig, handler)
        _previous_handlers.clear()
    click.echo(f"{outcome.status}: {outcome.message}")
    raise SystemExit(outcome.exit_code)


# ------------------------------------------------------------------ status


@click.command()
@click.argument("state_dir", type=click.Path(file_okay=False, path_type=Path))
@options.as_json(help="Print the status as JSON.")
def status(state_dir: Path, as_json: bool) -> None:
    """Where every target of the rollout journaled in STATE_DIR stands (safe while it runs)."""
    from ..executor.journal import JOURNAL_FILE
    from ..executor.status import format_status, rollout_status

    if not (state_dir / JOURNAL_FILE).exists():
        _fail(f"{state_dir} holds no journal ({JOURNAL_FILE})")
    info = rollout_status(state_dir)
    click.echo(json.dumps(info, indent=2) if as_json else format_status(info))
