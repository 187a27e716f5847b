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
from typing import NoReturn, Optional

import click

from ..durations import format_duration_s
from ..scenario.loader import ScenarioError
from .inventory import make_adapter, make_metric_source
from .journal import JOURNAL_FILE, TERMINAL_EVENTS, Journal
from .lock import StateDirLock, StateDirLocked, holder_pid
from .plan_text import format_plan
from .runner import EXIT_BAD_INPUT, Executor, Rollout, load_rollout_files, rollout_from_meta, rollout_meta

DEFAULT_STATE_ROOT = ".deploysim-state"


def _fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    raise SystemExit(code)


def _error_text(error: ValueError) -> str:
    if isinstance(error, ScenarioError) and len(error.problems) == 1 and not error.problems[0][0]:
        return f"{error.source}: {error.problems[0][1]}"
    return str(error)


def _log(line: str) -> None:
    click.echo(f"{time.strftime('%H:%M:%S')} {line}", err=True)


def _parts(rollout: Rollout):
    """The adapter and the metric source the inventory names (bad kinds are reported, not raised)."""
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
def execute(scenario_path: Optional[Path], inventory_path: Optional[Path], version: Optional[str],
            pipeline: Optional[str], plan_only: bool, state_dir: Optional[Path], resume_dir: Optional[Path],
            rollback: bool) -> None:
    """Apply SCENARIO's policy to a real rollout of --version over the --inventory's targets."""
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


def rollout_status(state_dir: Path) -> dict:
    """Where every target stands and what the executor last did, read-only (works while it runs)."""
    journal = Journal.in_dir(state_dir, readonly=True)
    try:
        meta = journal.meta()
        previous = journal.previous_versions()
        current = journal.current_versions()
        intended: dict[str, str] = {}
        for action in journal.actions():
            if action.phase == "intent" and action.kind != "preprod":
                intended[action.target] = action.version
        pending = {a.target for a in journal.pending_intents()}
        last = journal.last_decision()
        terminal = journal.last_terminal_event()
        events = journal.events()
        pid = holder_pid(state_dir)
        if pid is not None:
            state = "running"
        elif not events:
            state = "not started"
        elif events[-1][2] in TERMINAL_EVENTS:
            state = events[-1][2]
        else:  # the last process ended without saying how
            state = "interrupted (crashed or killed); continue with --resume"
        return {
            "state_dir": str(state_dir), "version": meta.get("version"), "pipeline": meta.get("pipeline"),
            "scenario": meta.get("scenario_path"), "scenario_sha256": meta.get("scenario_sha256"),
            "state": state, "executor_pid": pid if pid and pid > 0 else None,
            "last_message": terminal[1] if terminal else "",
            "last_decision": None if last is None else {
                "kind": last.kind, "stage": last.stage, "step": last.step, "batch": last.batch,
                "time_s": last.time_s, "phase": last.controller.get("phase")},
            "targets": [{"name": name, "before": before, "intended": intended.get(name),
                         "current": current.get(name), "in_progress": name in pending}
                        for name, before in previous.items()],
            "last_actions": [{"seq": a.seq, "time_s": a.time_s, "kind": a.kind, "target": a.target,
                              "version": a.version, "phase": a.phase, "current": a.current}
                             for a in journal.actions(limit=10)],
        }
    finally:
        journal.close()


@click.command()
@click.argument("state_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def status(state_dir: Path, as_json: bool) -> None:
    """Where every target of the rollout journaled in STATE_DIR stands (safe while it runs)."""
    if not (state_dir / JOURNAL_FILE).exists():
        _fail(f"{state_dir} holds no journal ({JOURNAL_FILE})")
    info = rollout_status(state_dir)
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    out = [f"Rollout of {info['version']} through pipeline {info['pipeline']} ({info['scenario']})",
           f"State: {info['state']}" + (f" (pid {info['executor_pid']})" if info["executor_pid"] else "")]
    if info["last_message"]:
        out.append(f"  {info['last_message']}")
    last = info["last_decision"]
    if last:
        ago = format_duration_s(max(0.0, time.time() - last["time_s"]))
        where = " ".join(f"{k} {last[k]}" for k in ("stage", "step", "batch") if last[k] is not None)
        out.append(f"Last decision: {last['kind']}{' ' + where if where else ''} ({ago} ago; controller phase {last['phase']})")
    rows = [("target", "before", "intended", "current")] + [
        (t["name"], t["before"], t["intended"] or "-",
         (t["current"] or "unknown") + (" (action in progress)" if t["in_progress"] else ""))
        for t in info["targets"]]
    widths = [max(len(str(r[i])) for r in rows) for i in range(4)]
    out += ["", "Targets"] + ["  " + "  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    out += ["", "Last actions"] + [
        f"  #{a['seq']} {time.strftime('%H:%M:%S', time.localtime(a['time_s']))} {a['kind']} {a['target']} "
        f"-> {a['version']}: {a['phase']}" + (f" (reports {a['current']})" if a["phase"] != "intent" else "")
        for a in info["last_actions"]]
    click.echo("\n".join(out))
