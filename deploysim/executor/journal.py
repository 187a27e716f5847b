"""The executor's journal: an SQLite file in the state directory that records every intended action
before it is taken and its outcome after, every decision of the controller with the controller's
state, and the run's events. It is what `--resume` and `status` read.

Written with WAL and synchronous=FULL and committed row by row, so a `kill -9` at any instant
loses nothing that was written. Tables are append-only, except `meta` and `targets`, which are
written once when the run starts (`meta`'s inventory is replaced by `--resume --inventory`, the
earlier one kept in `replaced_inventories` and the change journaled as an event).

Operators' controls (`deploysim abort`, `pause`, `resume`, `promote`, `approve`) are rows other
processes append to `controls`; the executor journals what it did with each in `controls_taken`,
with an event, in one transaction.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .clock import RealClock
from .interfaces import Clock

JOURNAL_FILE = "journal.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS targets (
    name TEXT PRIMARY KEY, host INTEGER NOT NULL, previous_version TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS actions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    time_s REAL NOT NULL,
    kind TEXT NOT NULL,          -- deploy | rollback | preprod
    target TEXT NOT NULL,        -- host name (the stage's name for preprod)
    version TEXT NOT NULL,       -- the version the action puts the target on
    phase TEXT NOT NULL,         -- intent | done | failed
    intent INTEGER,              -- outcome rows: seq of their intent
    current TEXT,                -- outcome rows: the version the target runs afterwards, NULL if unknown
    attempts INTEGER,
    detail TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS spawned (
    intent INTEGER NOT NULL, pid INTEGER NOT NULL, time_s REAL NOT NULL,
    create_time REAL,            -- the process's start time as the OS tells it: with the pid, its identity
    cmdline TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS decisions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    time_s REAL NOT NULL,
    kind TEXT NOT NULL,
    stage INTEGER, step INTEGER, batch INTEGER,
    detail TEXT NOT NULL,        -- the decision's fields as JSON
    controller TEXT NOT NULL);   -- RolloutController.snapshot() after deciding, as JSON
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, time_s REAL NOT NULL, kind TEXT NOT NULL, detail TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS controls (  -- an operator's request, written by `deploysim abort` and the like
    seq INTEGER PRIMARY KEY AUTOINCREMENT, time_s REAL NOT NULL,
    kind TEXT NOT NULL,          -- abort | pause | resume | promote | approve
    operator TEXT NOT NULL,      -- who asked: user@host
    reason TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS controls_taken (  -- what the executor did with each request, once
    control INTEGER PRIMARY KEY, time_s REAL NOT NULL,
    effect TEXT NOT NULL,        -- aborted | paused | unpaused | promoted | approved | ignored
    stage INTEGER, step INTEGER, -- where the rollout stood (the step promoted, the stage approved)
    detail TEXT NOT NULL DEFAULT '');
"""

RUN_META = ("scenario_path", "scenario_text", "inventory_path", "inventory_text", "inventory_dir", "version",
            "pipeline")
"""What `meta` must hold for a run to be resumed: written at once, before any target is touched."""

TERMINAL_EVENTS = ("complete", "rolled_back", "failed", "halted", "stopped", "rollback_incomplete", "internal_error")


def who_and_why(operator: str, reason: str = "") -> str:
    """An operator and their reason as the journal keeps them with the decision they lead to."""
    return f"{operator}: {reason}" if reason else operator


class JournalError(RuntimeError):
    """A state directory without a usable journal (missing, not SQLite, cut short): one line for people."""


class JournalWriteError(JournalError):
    """The journal cannot be written (disk full, read-only, I/O error): nothing after the last row
    written is lost, but nothing more can be done safely; one line for people."""


def _write_error(path: Path, error: BaseException) -> JournalWriteError:
    reason = (error.strerror or str(error)) if isinstance(error, OSError) else str(error)
    return JournalWriteError(f"cannot write the journal {path}: {reason}; the journal keeps every row written "
                             "before; fix the cause (free space, permissions), then --resume")


@dataclass(frozen=True)
class Action:
    seq: int
    time_s: float
    kind: str
    target: str
    version: str
    phase: str
    intent: int | None
    current: str | None
    attempts: int | None
    detail: str


@dataclass(frozen=True)
class Control:
    """An operator's request and, once the executor took it, what it did (`effect` None: pending)."""

    seq: int
    time_s: float
    kind: str
    operator: str
    reason: str
    effect: str | None = None
    taken_s: float | None = None
    stage: int | None = None
    step: int | None = None
    detail: str = ""

    @property
    def who(self) -> str:
        """Who asked and why, as journaled with the decision it leads to."""
        return who_and_why(self.operator, self.reason)


@dataclass(frozen=True)
class DecisionRow:
    seq: int
    time_s: float
    kind: str
    stage: int | None
    step: int | None
    batch: int | None
    detail: dict
    controller: dict


class Journal:
    """One run's journal. Safe to share between the executor's threads (writes are serialised)."""

    def __init__(self, path: Path, *, readonly: bool = False, clock: Clock | None = None):
        self.path = Path(path)
        self._now = (clock or RealClock()).now  # the time every row is stamped with
        self._lock = threading.Lock()
        self._listeners: list[Callable[[str, str], None]] = []
        if readonly:
            self._db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False)
        else:
            try:
                self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
                self._db.execute("PRAGMA busy_timeout=5000")  # operators' commands write to the same file
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=FULL")
                self._db.executescript(_SCHEMA)
                columns = {row[1] for row in self._db.execute("PRAGMA table_info(spawned)")}
                if "create_time" not in columns:  # a journal written before processes were identified
                    self._db.execute("ALTER TABLE spawned ADD COLUMN create_time REAL")
                    self._db.execute("ALTER TABLE spawned ADD COLUMN cmdline TEXT NOT NULL DEFAULT ''")
            except (sqlite3.Error, OSError) as error:
                raise _write_error(self.path, error) from None
        self._db.execute("PRAGMA busy_timeout=5000")

    @classmethod
    def in_dir(cls, state_dir: Path, *, readonly: bool = False, clock: Clock | None = None) -> Journal:
        return cls(Path(state_dir) / JOURNAL_FILE, readonly=readonly, clock=clock)

    @classmethod
    def open_existing(cls, state_dir: Path, *, readonly: bool = False) -> Journal:
        """The journal of a run started earlier, checked to hold the run; JournalError otherwise."""
        path = Path(state_dir) / JOURNAL_FILE
        if not path.is_file():
            raise JournalError(f"{state_dir} holds no journal ({JOURNAL_FILE}); start a rollout with "
                               "deploysim execute first")
        try:
            journal = cls(path, readonly=readonly)
            meta = journal.meta()
            journal.events()
            journal.last_decision()
        except (sqlite3.DatabaseError, ValueError) as error:
            raise JournalError(f"{path}: not a readable deploysim journal ({error})") from None
        missing = [key for key in RUN_META if key not in meta]
        if missing:
            journal.close()
            raise JournalError(f"{path}: the journal lacks the run's {', '.join(missing)} (cut short before the run "
                               "began, or not a deploysim journal); start the rollout again in a new state directory")
        return journal

    def close(self) -> None:
        self._db.close()

    def _write(self, sql: str, args: Iterable[Any] = ()) -> int:
        with self._lock:
            try:
                return int(self._db.execute(sql, tuple(args)).lastrowid or 0)
            except (sqlite3.Error, OSError) as error:
                raise _write_error(self.path, error) from None

    def _transaction(self, statements: list[tuple[str, list[tuple]]]) -> None:
        """Several writes that land together or not at all (`executemany` of each)."""
        with self._lock:
            try:
                self._db.execute("BEGIN")
                for sql, rows in statements:
                    self._db.executemany(sql, rows)
                self._db.execute("COMMIT")
            except (sqlite3.Error, OSError) as error:
                try:
                    self._db.execute("ROLLBACK")
                except (sqlite3.Error, OSError):
                    pass
                raise _write_error(self.path, error) from None

    def _rows(self, sql: str, args: Iterable[Any] = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, tuple(args)).fetchall()

    # ------------------------------------------------------------ run metadata and targets

    def set_meta(self, values: dict[str, Any]) -> None:
        self._transaction([("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                            [(k, json.dumps(v)) for k, v in values.items()])])

    def replace_meta(self, values: dict[str, Any], event: str, detail: str) -> None:
        """Change the run's metadata (a corrected inventory) and journal that it changed, together."""
        self._transaction([
            ("INSERT OR REPLACE INTO meta VALUES (?, ?)", [(k, json.dumps(v)) for k, v in values.items()]),
            ("INSERT INTO events (time_s, kind, detail) VALUES (?,?,?)", [(self._now(), event, detail)])])

    def meta(self) -> dict[str, Any]:
        return {k: json.loads(v) for k, v in self._rows("SELECT key, value FROM meta")}

    def set_targets(self, rows: list[tuple[str, int, str]]) -> None:
        """(name, host index, version it ran before the rollout), all at once."""
        self._transaction([("INSERT OR REPLACE INTO targets VALUES (?, ?, ?)", rows)])

    def previous_versions(self) -> dict[str, str]:
        return dict(self._rows("SELECT name, previous_version FROM targets ORDER BY host"))

    # ------------------------------------------------------------ actions

    def intend(self, kind: str, target: str, version: str, detail: str = "") -> int:
        """Record an action about to be taken; returns its seq."""
        return self._write("INSERT INTO actions (time_s, kind, target, version, phase, detail) VALUES (?,?,?,?,?,?)",
                           (self._now(), kind, target, version, "intent", detail))

    def outcome(self, intent: int, ok: bool, current: str | None, detail: str, attempts: int | None = None) -> int:
        """Record what an intended action did: `done` only when its success was seen."""
        kind, target, version = self._rows("SELECT kind, target, version FROM actions WHERE seq = ?", (intent,))[0]
        return self._write(
            "INSERT INTO actions (time_s, kind, target, version, phase, intent, current, attempts, detail) "
            "VALUES (?,?,?,?,?,?,?,?,?)",
            (self._now(), kind, target, version, "done" if ok else "failed", intent, current, attempts, detail))

    def spawned(self, intent: int, pid: int, create_time: float | None = None, cmdline: str = "") -> None:
        """A command started for `intent`: its pid, and its create time and command line (its identity)."""
        self._write("INSERT INTO spawned (intent, pid, time_s, create_time, cmdline) VALUES (?, ?, ?, ?, ?)",
                    (intent, pid, self._now(), create_time, cmdline))

    def spawned_pids(self, intent: int) -> list[tuple[int, float, float | None]]:
        """(pid, when it was journaled, its create time or None) of every command started for `intent`."""
        return self._rows("SELECT pid, time_s, create_time FROM spawned WHERE intent = ?", (intent,))

    def actions(self, limit: int | None = None) -> list[Action]:
        sql = "SELECT * FROM actions ORDER BY seq"
        if limit is not None:
            sql = f"SELECT * FROM (SELECT * FROM actions ORDER BY seq DESC LIMIT {int(limit)}) ORDER BY seq"
        return [Action(*row) for row in self._rows(sql)]

    def pending_intents(self) -> list[Action]:
        """Intents with no outcome: actions a crash interrupted."""
        return [Action(*row) for row in self._rows(
            "SELECT * FROM actions a WHERE phase = 'intent' AND NOT EXISTS "
            "(SELECT 1 FROM actions o WHERE o.intent = a.seq) ORDER BY seq")]

    def current_versions(self) -> dict[str, str | None]:
        """Each target's version as the journal knows it: from its last outcome, else its version before."""
        known: dict[str, str | None] = dict(self.previous_versions())
        for target, current in self._rows(
                "SELECT target, current FROM actions WHERE phase != 'intent' AND kind NOT IN ('preprod', 'set_weight') "
                "ORDER BY seq"):
            known[target] = current
        return known

    def deployed_targets(self) -> list[str]:
        """Targets a deploy was intended for (whatever its outcome): those a rollback must consider."""
        return [r[0] for r in self._rows(
            "SELECT target FROM actions WHERE kind = 'deploy' AND phase = 'intent' GROUP BY target ORDER BY MIN(seq)")]

    # ------------------------------------------------------------ decisions and events

    def decision(self, time_s: float, kind: str, stage, step, batch, detail: dict, controller: dict) -> int:
        return self._write(
            "INSERT INTO decisions (time_s, kind, stage, step, batch, detail, controller) VALUES (?,?,?,?,?,?,?)",
            (time_s, kind, stage, step, batch, json.dumps(detail), json.dumps(controller)))

    def decisions(self) -> list[DecisionRow]:
        return [DecisionRow(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]), json.loads(r[7]))
                for r in self._rows("SELECT * FROM decisions ORDER BY seq")]

    def last_decision(self) -> DecisionRow | None:
        rows = self._rows("SELECT * FROM decisions ORDER BY seq DESC LIMIT 1")
        if not rows:
            return None
        r = rows[0]
        return DecisionRow(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]), json.loads(r[7]))

    def event(self, kind: str, detail: str = "") -> int:
        """Journal an event, then tell every listener (the notifier) of it."""
        seq = self._write("INSERT INTO events (time_s, kind, detail) VALUES (?,?,?)", (self._now(), kind, detail))
        for listener in list(self._listeners):
            listener(kind, detail)
        return seq

    def add_listener(self, listener: Callable[[str, str], None]) -> None:
        """Call `listener(kind, detail)` after each event is journaled (it must not raise nor block)."""
        self._listeners.append(listener)

    def events(self) -> list[tuple[int, float, str, str]]:
        return self._rows("SELECT seq, time_s, kind, detail FROM events ORDER BY seq")

    def last_terminal_event(self) -> tuple[str, str] | None:
        """The latest event that ended a process's work (complete, rolled back, halted ...), if any."""
        placeholders = ",".join("?" * len(TERMINAL_EVENTS))
        rows = self._rows(f"SELECT kind, detail FROM events WHERE kind IN ({placeholders}) ORDER BY seq DESC LIMIT 1",
                          TERMINAL_EVENTS)
        return rows[0] if rows else None

    # ------------------------------------------------------------ operators' controls

    def request_control(self, kind: str, operator: str, reason: str = "") -> int:
        """An operator's request (from another process than the executor's); returns its seq."""
        return self._write("INSERT INTO controls (time_s, kind, operator, reason) VALUES (?,?,?,?)",
                           (self._now(), kind, operator, reason))

    def controls(self, *, pending_only: bool = False) -> list[Control]:
        """Every request in order, with what the executor did with it (pending ones have no effect)."""
        has_taken = bool(self._rows("SELECT 1 FROM sqlite_master WHERE name = 'controls_taken'"))
        if not has_taken:  # a journal written before controls existed (read-only: no schema added)
            return []
        rows = self._rows(
            "SELECT c.seq, c.time_s, c.kind, c.operator, c.reason, t.effect, t.time_s, t.stage, t.step, "
            "COALESCE(t.detail, '') FROM controls c LEFT JOIN controls_taken t ON t.control = c.seq "
            + ("WHERE t.control IS NULL " if pending_only else "") + "ORDER BY c.seq")
        return [Control(*row) for row in rows]

    def take_control(self, control: Control, effect: str, stage: int | None, step: int | None, detail: str,
                     event: str) -> None:
        """Journal what the executor did with a request and the event that says so, together."""
        now = self._now()
        self._transaction([
            ("INSERT INTO controls_taken (control, time_s, effect, stage, step, detail) VALUES (?,?,?,?,?,?)",
             [(control.seq, now, effect, stage, step, detail)]),
            ("INSERT INTO events (time_s, kind, detail) VALUES (?,?,?)", [(now, event, detail)])])
        for listener in list(self._listeners):
            listener(event, detail)

    def has(self, kind: str) -> bool:
        return bool(self._rows("SELECT 1 FROM events WHERE kind = ? LIMIT 1", (kind,)))
