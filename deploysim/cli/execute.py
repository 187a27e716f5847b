"""`deploysim execute`, `deploysim status` and `deploysim history`: parse arguments, call the executor,
print what it says.

Exit codes (deploysim.executor.outcome): 0 complete (every target asked), 1 rolled back (every target
in scope asked) or failed in pre-production, 2 bad input, an unreadable journal or a locked state
directory or target group, 3 halted (needs people), 4 internal error, 130 interrupted (Ctrl-C or
SIGTERM; continue with --resume).
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

from . import options
from .common import error_text as _error_text
from .common import fail as _fail  # exit code 2: the executor's EXIT_BAD_INPUT
from .common import input_error as _input_error

if TYPE_CHECKING:
    from ..executor.exporter import MetricsEndpoint
    from ..executor.lock import StateDirLock
    from ..executor.rollout import Rollout

DEFAULT_STATE_ROOT = ".deploysim-state"


def _no_traceback(command):
    """A bug outside a run (which `_finish` handles) is one line and exit 4 (EXIT_INTERNAL), never a
    traceback with Python's exit code 1, which would read as `rolled back`."""
    import functools

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from ..executor.outcome import EXIT_INTERNAL

        try:
            return command(*args, **kwargs)
        except (SystemExit, click.exceptions.ClickException, click.exceptions.Abort, KeyboardInterrupt):
            raise
        except Exception as error:
            import tempfile

            where = _save_traceback(Path(tempfile.gettempdir()) / f"deploysim-internal-error-{os.getpid()}.txt")
            _fail(f"internal error {type(error).__name__}: {error} (a bug in deploysim; traceback in {where})",
                  EXIT_INTERNAL)
    return wrapper


def _log(line: str) -> None:
    click.echo(f"{time.strftime('%H:%M:%S')} {line}", err=True)


def _parts(rollout: Rollout, *, metrics: bool = True):
    """The adapter and the metric source the inventory names (bad kinds are reported, not raised);
    without `metrics`, the adapter alone (the source is None)."""
    from ..executor.inventory import make_adapter, make_metric_source

    try:
        adapter = make_adapter(rollout.inventory, rollout.inventory_dir, rollout.inventory_source)
        source = make_metric_source(rollout.inventory, rollout.targets, rollout.scenario.traffic.apis) \
            if metrics else None
    except ImportError as error:
        _fail(f"{rollout.inventory_source}: this installation cannot build the adapter or metric source it names "
              f"({error})")
    except ValueError as error:
        _input_error(error)
    except OSError as error:
        _fail(f"{rollout.inventory_source}: {error.strerror or error}")
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
              help="Inventory file: the real target of every host, the adapter and the metric source "
              "(optional with --plan). With --resume: a corrected inventory of the same targets.")
@click.option("--version", "version", help="The version to roll out, as the adapter names it (e.g. v2).")
@click.option("--pipeline", help="Which pipeline's policy to apply (default: the scenario's first).")
@click.option("--plan", "plan_only", is_flag=True, help="Print the plan and its expected duration; change nothing. "
              "With --inventory, also ask every target its current version (read-only) and show what would change.")
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path),
              help=f"Where the journal and lock live (default: {DEFAULT_STATE_ROOT}/VERSION).")
@click.option("--resume", "resume_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Continue the rollout journaled in this state directory (after a crash, Ctrl-C or halt).")
@click.option("--rollback", is_flag=True, help="With --resume: roll every moved target back to its previous version.")
@click.option("--reason", default="", help="With --rollback: why (journaled with the operator's user@host).")
@click.option("--metrics-port", type=click.IntRange(1, 65535), metavar="PORT",
              help="Serve Prometheus metrics of the run (read from its journal) on http://ADDRESS:PORT/metrics "
              "while it lasts.")
@click.option("--metrics-address", metavar="ADDRESS",
              help="With --metrics-port: the address to listen on (default 127.0.0.1).")
@_no_traceback
def execute(scenario_path: Path | None, inventory_path: Path | None, version: str | None,
            pipeline: str | None, plan_only: bool, state_dir: Path | None, resume_dir: Path | None,
            rollback: bool, reason: str, metrics_port: int | None, metrics_address: str | None) -> None:
    """Apply SCENARIO's policy to a real rollout of --version over the --inventory's targets.

    With --plan, print what the rollout would do instead, and with --inventory each target's current
    version and whether it would change; without --inventory the plan names hosts by the scenario's
    fleet."""
    from ..executor.driver import Executor
    from ..executor.journal import JOURNAL_FILE, Journal, JournalError
    from ..executor.plan_text import format_plan
    from ..executor.rollout import load_plan_file, load_rollout_files, rollout_meta

    if metrics_address is not None and metrics_port is None:
        _fail("--metrics-address goes with --metrics-port")
    if plan_only and metrics_port is not None:
        _fail("--metrics-port goes with a run, not with --plan")
    metrics = (metrics_port, metrics_address or "127.0.0.1")
    if resume_dir is not None:
        if scenario_path or version or pipeline or plan_only or state_dir:
            _fail("--resume takes only the state directory (and --rollback, --inventory, --metrics-port): "
                  "the rest is in its journal")
        _resume(resume_dir, rollback, reason, inventory_path, metrics)
        return
    if rollback or reason:
        _fail("--rollback and --reason go with --resume STATE_DIR")
    # --plan needs only the scenario: its policy's plan over the scenario's fleet. A real rollout
    # also needs the inventory (the real targets, the adapter, the metric source).
    needed = (("SCENARIO", scenario_path), ("--version", version)) + (
        () if plan_only else (("--inventory", inventory_path),))
    missing = [name for name, value in needed if value is None]
    if missing:
        hint = "; only --plan runs without --inventory" if missing == ["--inventory"] else ""
        _fail(f"missing {', '.join(missing)} (see deploysim execute --help){hint}")
    assert scenario_path is not None and version is not None  # neither is missing
    if plan_only and inventory_path is None:
        try:
            planned = load_plan_file(scenario_path, version, pipeline)
        except ValueError as error:
            _input_error(error)
        click.echo(format_plan(planned, time.time()))
        return
    assert inventory_path is not None  # required without --plan
    try:
        rollout = load_rollout_files(scenario_path, inventory_path, version, pipeline)
    except ValueError as error:
        _input_error(error)
    if plan_only:  # and each target's current version, asked read-only: what would change
        from ..executor.plan_diff import current_versions, format_diff

        adapter, _ = _parts(rollout, metrics=False)
        answers = current_versions(rollout, adapter)
        click.echo(format_plan(rollout, time.time()) + "\n\n" + format_diff(rollout, answers))
        return
    if state_dir is None:
        if version in (".", "..") or "/" in version or "\0" in version or len(version.encode()) > 200:
            _fail(f"--version {version[:40]!r} cannot name a state directory; give one with --state-dir")
        state_dir = Path(DEFAULT_STATE_ROOT) / version
    endpoint = _metrics_endpoint(*metrics)  # a port in use stops here, before anything is touched
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        _fail(f"cannot make the state directory {state_dir}: {error.strerror or error}")
    lock = _lock(state_dir)
    try:
        if (state_dir / JOURNAL_FILE).exists() and Journal.in_dir(state_dir).meta():
            lock.release()
            _fail(f"{state_dir} already holds a rollout; continue it with --resume {state_dir} "
                  "or choose another --state-dir")
    except JournalError as error:
        lock.release()
        _fail(str(error))
    group = _group_lock(rollout, state_dir, lock)
    adapter, source = _parts(rollout)
    try:
        journal = Journal.in_dir(state_dir)
        journal.set_meta(rollout_meta(scenario_path, inventory_path, rollout))
    except JournalError as error:  # nothing was touched: the state directory is unusable (read-only, full)
        group.release()
        lock.release()
        _fail(str(error))
    _log(f"rolling out {version} (pipeline {rollout.pipeline}); journal in {state_dir}; "
         f"resume with: deploysim execute --resume {state_dir}")
    executor = Executor(rollout, adapter, source, journal, stop=_stop_event(), log=_log)
    _finish(lambda: executor.start(), source, lock, journal, group, endpoint)


def _metrics_endpoint(port: int | None, address: str) -> MetricsEndpoint | None:
    """`--metrics-port`: listen at once (a port in use is one line, exit 2); closed when the command
    ends, whichever way (`_finish` closes it as soon as the run ends)."""
    if port is None:
        return None
    from ..executor.exporter import MetricsEndpoint

    try:
        endpoint = MetricsEndpoint(port, address)
    except OSError as error:  # in use, an address not of this machine, a name that does not resolve
        _fail(f"--metrics-port {port}: cannot listen on {address}:{port}: {error.strerror or error}")
    click.get_current_context().call_on_close(endpoint.close)
    return endpoint


def _lock(state_dir: Path) -> StateDirLock:
    from ..executor.lock import StateDirLock, StateDirLocked

    try:
        return StateDirLock(state_dir).acquire()
    except StateDirLocked as error:
        _fail(str(error))
    except OSError as error:  # a read-only or vanished state directory
        _fail(f"cannot use the state directory {state_dir}: {error.strerror or error}")


_previous_handlers: dict = {}


def _stop_event() -> threading.Event:
    stop = threading.Event()
    _previous_handlers.update(_install_stop_handlers(stop))
    return stop


def _journal(state_dir: Path, *, readonly: bool = False):
    """The state directory's journal, checked; a clear one-line error (exit 2) when it is unusable."""
    from ..executor.journal import Journal, JournalError

    try:
        return Journal.open_existing(state_dir, readonly=readonly)
    except JournalError as error:
        _fail(str(error))


def _rebuild(state_dir: Path, journal) -> Rollout:
    from ..executor.rollout import rollout_from_meta

    try:
        return rollout_from_meta(journal.meta())
    except ValueError as error:
        _fail(f"{state_dir}: the journal's rollout cannot be rebuilt: {_error_text(error)}".replace("\n", ";"))


def _corrected(state_dir: Path, journal, journaled: Rollout, inventory_path: Path) -> tuple[Rollout, dict]:
    """The journaled rollout with a corrected inventory (`--resume --inventory FILE`): the same scenario,
    version and pipeline, over the same targets (by name); addresses, commands and metrics may change.
    Returns it and the journal's new metadata (the inventory replaced, the earlier one kept)."""
    import hashlib

    from ..executor.inventory import InventoryError
    from ..executor.rollout import load_rollout, read_text
    from ..scenario.loader import yaml_with_positions

    meta = journal.meta()
    before = set(journal.previous_versions()) or {t.name for t in journaled.targets}
    try:
        text = read_text(inventory_path, "inventory")
        data, _ = yaml_with_positions(text, str(inventory_path), InventoryError)
        given = data.get("targets") if isinstance(data, dict) else None
        now = set(given) if isinstance(given, dict) else before  # no targets mapping: the checks below say so
        if now == before:
            rollout = load_rollout(meta["scenario_text"], meta["scenario_path"], text, str(inventory_path),
                                   inventory_path.resolve().parent, meta["version"], meta["pipeline"])
    except ValueError as error:
        _input_error(error)
    if now != before:
        gone, new = sorted(before - now), sorted(now - before)
        _fail(f"{inventory_path}: describes other targets than the rollout journaled in {state_dir} "
              f"(missing {', '.join(gone[:5]) or 'none'}; new {', '.join(new[:5]) or 'none'}); "
              "--resume --inventory takes the same targets with corrected addresses, commands or metrics")
    replaced = list(meta.get("replaced_inventories", [])) + [{
        "inventory_path": meta["inventory_path"], "inventory_text": meta["inventory_text"],
        "inventory_dir": meta["inventory_dir"], "replaced_s": time.time()}]
    values = {"inventory_path": str(inventory_path), "inventory_text": text,
              "inventory_dir": str(rollout.inventory_dir), "replaced_inventories": replaced}
    old_sha = hashlib.sha256(meta["inventory_text"].encode()).hexdigest()[:12]
    new_sha = hashlib.sha256(text.encode()).hexdigest()[:12]
    detail = (f"inventory replaced by {inventory_path} (sha256 {new_sha}), was {meta['inventory_path']} "
              f"(sha256 {old_sha}, kept in the journal's meta replaced_inventories)")
    return rollout, {"values": values, "detail": detail}


def _resume(state_dir: Path, rollback: bool, reason: str, inventory_path: Path | None = None,
            metrics: tuple[int | None, str] = (None, "127.0.0.1")) -> None:
    from ..executor.controls import operator_identity
    from ..executor.driver import Executor
    from ..executor.journal import JournalError

    if reason and not rollback:
        _fail("--reason goes with --rollback")
    _journal(state_dir, readonly=True).close()  # a clear error before the lock file is made
    endpoint = _metrics_endpoint(*metrics)
    lock = _lock(state_dir)
    group = None
    try:  # a refusal below releases the locks (callers in this process may go on)
        journal = _journal(state_dir)
        if inventory_path is None:
            rollout = _rebuild(state_dir, journal)
            replacement = None
        else:  # the journaled inventory may be what is broken: it need not rebuild
            try:
                journaled = _rebuild_quiet(journal)
            except ValueError:
                journaled = None
            rollout, replacement = _corrected(state_dir, journal, journaled or _plan_only(journal), inventory_path)
        group = _group_lock(rollout, state_dir, lock)
        adapter, source = _parts(rollout)
        if replacement is not None:
            try:
                journal.replace_meta(replacement["values"], "inventory_replaced", replacement["detail"])
            except JournalError as error:
                _fail(str(error))
            _log(replacement["detail"])
    except SystemExit:
        if group is not None:
            group.release()
        lock.release()
        raise
    _log(f"resuming {rollout.version} (pipeline {rollout.pipeline}) from {state_dir}")
    executor = Executor(rollout, adapter, source, journal, stop=_stop_event(), log=_log)
    _finish(lambda: executor.resume(force_rollback=rollback, operator=operator_identity(reason)), source, lock,
            journal, group, endpoint)


def _rebuild_quiet(journal) -> Rollout:
    from ..executor.rollout import rollout_from_meta

    return rollout_from_meta(journal.meta())


def _plan_only(journal):
    """The journaled plan alone (its targets by name), when the journaled inventory no longer loads."""
    from ..executor.rollout import load_plan

    meta = journal.meta()
    try:
        return load_plan(meta["scenario_text"], meta["scenario_path"], meta["version"], meta["pipeline"])
    except ValueError as error:
        _fail(f"the journal's scenario no longer loads: {_error_text(error)}".replace("\n", ";"))


def _group_lock(rollout: Rollout, state_dir: Path, lock: StateDirLock):
    """One rollout at a time over the same targets, whatever its version or state directory."""
    from ..executor.lock import StateDirLocked, TargetGroupLock

    try:
        return TargetGroupLock(rollout, state_dir).acquire()
    except StateDirLocked as error:
        lock.release()
        _fail(str(error))
    except OSError as error:
        lock.release()
        _fail(f"cannot take the target group's lock: {error}")


def _finish(run, source, lock: StateDirLock, journal, group, endpoint: MetricsEndpoint | None = None) -> NoReturn:
    """Run the executor, stop the metric source's own threads (probes) and the metrics endpoint, report,
    exit with the outcome's code. A bug (an unexpected exception) is journaled with its traceback and
    exits 4, never as a success."""
    from ..executor.journal import JournalWriteError
    from ..executor.outcome import EXIT_HALTED, EXIT_INTERNAL, RunOutcome

    journal_error: str | None = None
    if endpoint is not None:
        endpoint.attach(Path(journal.path).parent)
        endpoint.running.set()
        _log(f"metrics on {endpoint.url}")
    try:
        outcome = run()
    except JournalWriteError as error:  # disk full, read-only: not a bug; the journal keeps what it had
        journal_error = str(error)
        outcome = RunOutcome("halted", EXIT_HALTED, journal_error)
    except Exception as error:  # a bug in deploysim: say so, keep the journal's place
        where = _save_traceback(Path(journal.path).parent / "internal-error.txt")
        message = (f"internal error {type(error).__name__}: {error} (traceback in {where}); "
                   "the journal keeps its place: --resume")
        try:
            journal.event("internal_error", message)
        except Exception:  # the journal itself may be what failed (disk full): the message is printed anyway
            pass
        outcome = RunOutcome("internal_error", EXIT_INTERNAL, message)
    finally:
        if endpoint is not None:
            endpoint.close()
        close = getattr(source, "close", None)
        if close is not None:
            close()
        group.release()
        lock.release()
        for sig, handler in _previous_handlers.items():
            signal.signal(sig, handler)
        _previous_handlers.clear()
    if journal_error is not None:
        _fail(journal_error, outcome.exit_code)
    click.echo(f"{outcome.status}: {outcome.message}")
    raise SystemExit(outcome.exit_code)


def _save_traceback(path: Path) -> str:
    """Write the current exception's traceback to `path` (or, if it cannot be written there, a
    temporary file); returns where it went."""
    import tempfile
    import traceback

    text = traceback.format_exc()
    try:
        path.write_text(text)
        return str(path)
    except OSError:
        try:
            fd, name = tempfile.mkstemp(prefix="deploysim-internal-error-", suffix=".txt")
            with os.fdopen(fd, "w") as handle:
                handle.write(text)
            return name
        except OSError:
            return "nowhere: it could not be written"


# ------------------------------------------------------------------ status


@click.command()
@click.argument("state_dir", type=click.Path(file_okay=False, path_type=Path))
@options.as_json(help="Print the status as JSON.")
@click.option("--verify", is_flag=True, help="Also ask every target, through the inventory's adapter, which "
              "version it runs now.")
@_no_traceback
def status(state_dir: Path, as_json: bool, verify: bool) -> None:
    """Where every target of the rollout journaled in STATE_DIR stands (safe while it runs)."""
    from ..executor.status import format_status, rollout_status, verify_status

    journal = _journal(state_dir, readonly=True)
    try:
        info = rollout_status(state_dir, journal)
        if verify:
            rollout = _rebuild(state_dir, journal)
            adapter, source = _parts(rollout)
            close = getattr(source, "close", None)
            if close is not None:
                close()
            verify_status(info, rollout, adapter)
    finally:
        journal.close()
    click.echo(json.dumps(info, indent=2) if as_json else format_status(info))


# ------------------------------------------------------------------ history


@click.command()
@click.argument("state_dir", type=click.Path(file_okay=False, path_type=Path))
@options.as_json(help="Print the history as a JSON list of records.")
@_no_traceback
def history(state_dir: Path, as_json: bool) -> None:
    """Every decision, action and event journaled in STATE_DIR, in time order (safe while it runs)."""
    import sqlite3

    from ..executor.history import format_history, history_records

    journal = _journal(state_dir, readonly=True)
    try:
        records = history_records(journal)
    except (sqlite3.DatabaseError, ValueError) as error:
        _fail(f"{state_dir}: the journal cannot be read: {error}".replace("\n", "; "))
    finally:
        journal.close()
    click.echo(json.dumps(records, indent=2) if as_json else format_history(records))
