"""Journaled adapter calls: every change to a target is an intent in the journal before the adapter
is called and an outcome after it, with the version the target then reports and whether it passes
its health check. Batches run up to `parallel` calls at a time; the spans in which hosts were out
of service are kept for the alarms.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TypeVar

from ..durations import format_duration_s
from .adapter_spec import AdapterSpec
from .interfaces import Adapter, Clock, Target
from .journal import Journal
from .outcome import Halt, Stopped
from .rollout import Rollout

POLL_S = 0.25
"""How often a running batch is looked at (for a watched alarm or Ctrl-C) while its calls run."""

T = TypeVar("T")


@dataclass(frozen=True)
class VersionAnswer:
    """What a target said when asked its version: `version` is None when it cannot tell."""

    version: str | None
    reported: str | None = None  # what the adapter returned (when it is not a version: what it said instead)
    error: str = ""  # the adapter raised this

    @property
    def not_a_version(self) -> bool:
        """Did the adapter report something that does not match the inventory's `version_pattern`?"""
        return self.version is None and self.reported is not None

    def why_unknown(self, spec: AdapterSpec) -> str:
        """Why `version` is None, for people ("" when it is known)."""
        if self.version is not None:
            return ""
        if self.error:
            return f"adapter error: {self.error}"
        if self.reported is not None:
            return (f"reported {self.reported[:80]!r}: not a version, expected a match of adapter.version_pattern "
                    f"{spec.version_pattern}")
        return (f"no version reported: the adapter failed, timed out (time-out {format_duration_s(spec.timeout)}) "
                "or the target is unreachable")


def ask_version(adapter: Adapter, spec: AdapterSpec, target: Target, timeout_s: float) -> VersionAnswer:
    """Ask `target` its version through `adapter` (read-only: `current_version` only). It cannot
    tell when the adapter fails, answers nothing (unreachable, timed out), or reports something
    that does not match the inventory's `version_pattern`: an error message is not a version."""
    try:
        reported = adapter.current_version(target, timeout_s=timeout_s)
    except Exception as error:
        return VersionAnswer(None, error=f"{type(error).__name__}: {error}")
    if reported is not None and not spec.is_version(reported):
        return VersionAnswer(None, reported=reported)
    return VersionAnswer(reported, reported)


def ask_each(targets: Sequence[Target], ask: Callable[[Target], T], parallel: int) -> dict[str, T]:
    """`ask(target)` of every target, by name, `parallel` at a time."""
    if not targets:
        return {}
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        return dict(zip([t.name for t in targets], pool.map(ask, targets), strict=True))


@dataclass(frozen=True)
class BusySpan:
    """A host being deployed or rolled back by this process, from `start_s` to `end_s` (infinite
    while the action is still under way)."""

    host: int
    start_s: float
    end_s: float
    keeps_serving: bool  # the step's hosts serve while they take the change (`hosts_keep_serving`)


class Actions:
    """Carries out adapter calls on targets, each one journaled, one instance per executor."""

    def __init__(self, rollout: Rollout, adapter: Adapter, journal: Journal, clock: Clock, stop: threading.Event):
        self.r = rollout
        self.adapter = adapter
        self.journal = journal
        self.clock = clock
        self.stop = stop
        self.timeout_s = float(rollout.inventory.adapter.timeout)
        self.parallel = int(rollout.inventory.adapter.parallel)
        self._busy: list[BusySpan] = []
        self._busy_lock = threading.Lock()
        self.keeps_serving = False  # the current step's hosts serve while they take the change
        self._local = threading.local()  # the intent the calling thread is carrying out
        self.finishing = False  # a rollback is under way: Ctrl-C and SIGTERM cut no back-off short
        self.not_versions: dict[str, str] = {}  # target -> what it last reported that is not a version
        adapter.set_spawn_listener(self._spawned)
        set_backoff_wait = getattr(adapter, "set_backoff_wait", None)  # adapters written before it lack it
        if set_backoff_wait is not None:
            set_backoff_wait(self._backoff_wait)

    @property
    def busy(self) -> list[BusySpan]:
        """The spans of every action so far, those still under way included (open-ended): a host is
        out of service from the moment its deploy begins, not from the moment it is over."""
        with self._busy_lock:
            return list(self._busy)

    def _open_span(self, host: int, started_s: float) -> BusySpan:
        span = BusySpan(host, started_s, math.inf, self.keeps_serving)
        with self._busy_lock:
            self._busy.append(span)
        return span

    def _close_span(self, span: BusySpan) -> None:
        with self._busy_lock:
            index = next(i for i, s in enumerate(self._busy) if s is span)
            self._busy[index] = BusySpan(span.host, span.start_s, self.clock.now(), span.keeps_serving)

    def check_stop(self) -> None:
        if self.stop.is_set():
            raise Stopped()

    def _interrupted(self) -> bool:
        """Is the run being stopped (Ctrl-C, SIGTERM) outside a rollback?"""
        return self.stop.is_set() and not self.finishing

    @contextlib.contextmanager
    def to_the_end(self) -> Iterator[None]:
        """A rollback: no stop cuts a retry's back-off short meanwhile."""
        self.finishing = True
        try:
            yield
        finally:
            self.finishing = False

    def _backoff_wait(self, seconds: float) -> bool:
        """The adapters' wait between attempts: cut short (True) once the run is being stopped."""
        return self.clock.sleep(seconds, None if self.finishing else self.stop) and self._interrupted()

    def _spawned(self, pid: int) -> None:
        intent = getattr(self._local, "intent", None)
        if intent is not None:
            self.journal.spawned(intent, pid, *process_identity(pid))

    def _ask(self, target: Target) -> str | None:
        """The version the target reports, None if it cannot tell (see `ask_version`)."""
        answer = ask_version(self.adapter, self.r.inventory.adapter, target, self.timeout_s)
        if answer.not_a_version:
            self.not_versions[target.name] = answer.reported or ""
        return answer.version

    def current_version(self, target: Target) -> str | None:
        """The version the target reports, None if it cannot tell (or the adapter fails). Raises
        `Stopped` when it could not tell because the run is being stopped (its retries were cut short)."""
        version = self._ask(target)
        if version is None and self._interrupted():
            raise Stopped()
        return version

    def _healthy(self, target: Target) -> bool:
        try:
            return bool(self.adapter.healthy(target, timeout_s=self.timeout_s))
        except Exception:  # an adapter that fails cannot say the target is healthy
            return False

    def versions_of(self, targets: Sequence[Target]) -> dict[str, str | None]:
        """What each target reports now (None: it cannot tell), asked `parallel` at a time."""
        return ask_each(targets, self.current_version, self.parallel)

    def act(self, kind: str, target: Target, version: str) -> tuple[bool, str, bool]:
        """One journaled action: intent, the adapter call, the version the target then reports and its
        health check, outcome. Returns (ok, what failed, stopped: it failed because the run is being
        stopped, which cut its retries short)."""
        seq = self.journal.intend(kind, target.name, version)
        self._local.intent = seq
        # Out of service from now on: a batch's watch judges periods while its actions still run.
        span = self._open_span(target.host, self.clock.now())
        try:
            try:
                call = self.adapter.deploy if kind == "deploy" else self.adapter.rollback
                result = call(target, version, timeout_s=self.timeout_s)
                ok, detail, attempts = result.ok, result.detail, result.attempts
            except Exception as error:  # an adapter bug is a failed action, never a success
                ok, detail, attempts = False, f"adapter error: {error!r}", None
            stopped = not ok and self._interrupted()
            current = self._ask(target)
            if ok and current != version:
                ok = False
                detail = f"{detail}\nthe adapter reported success but the target reports version {current!r}"
            elif ok and not self._healthy(target):
                ok = False
                detail = f"{detail}\nthe target runs {version} but fails its health check"
        finally:
            self._close_span(span)
        if stopped:
            detail = f"{detail}\nstopped (Ctrl-C or SIGTERM) before another attempt; --resume tries again"
        self.journal.outcome(seq, ok, current, detail, attempts)
        self._local.intent = None
        message = "" if ok else f"{kind} of {target.name} to {version} failed " \
            f"after {attempts or 1} attempt(s) (target reports {current!r}): {last_line(detail)}"
        return ok, message, stopped

    def run(self, kind: str, targets: Sequence[Target], version_of: Callable[[Target], str], *,
            watch: Callable[[float, bool], str | None] | None = None,
            finish_on_stop: bool = False) -> tuple[str | None, list[str]]:
        """Run actions on up to `parallel` targets at a time; returns (the alarm `watch` saw, failures).

        `watch(now_s, an_action_finished)` is asked while the actions run. New actions stop starting
        on Ctrl-C, on a failure, or when it returns an alarm; the ones running finish and are journaled
        (a retry's back-off is cut short by Ctrl-C or SIGTERM, which then raises `Stopped`).
        With `finish_on_stop` (a rollback), neither Ctrl-C, SIGTERM nor a failure stops it: it is the
        way back to safety, and stopping half way would leave targets on the version rolled back.
        """
        failures: list[str] = []
        alarm: str | None = None
        stopped = False
        todo = list(targets)
        running: dict[Future, Target] = {}
        with ThreadPoolExecutor(max_workers=self.parallel) as pool:
            while todo or running:
                while todo and len(running) < self.parallel and not (
                        not finish_on_stop and (failures or alarm or stopped or self.stop.is_set())):
                    target = todo.pop(0)
                    running[pool.submit(self.act, kind, target, version_of(target))] = target
                if not running:
                    break
                done, _ = wait(list(running), timeout=POLL_S, return_when=FIRST_COMPLETED)
                for future in done:
                    running.pop(future)
                    ok, message, cut_short = future.result()
                    if cut_short:
                        stopped = True
                    elif not ok:
                        failures.append(message)
                if watch is not None and alarm is None:
                    alarm = watch(self.clock.now(), bool(done))
        if finish_on_stop or not self.stop.is_set():
            return alarm, failures
        if stopped or (not failures and todo and alarm is None):
            raise Stopped()
        return alarm, failures

    def preprod(self, stage_name: str) -> None:
        """Run the adapter's pre-production tests for a stage, journaled like an action."""
        seq = self.journal.intend("preprod", stage_name, self.r.version)
        self._local.intent = seq
        try:
            result = self.adapter.preprod(stage_name, self.r.version, timeout_s=self.timeout_s)
        except Exception as error:  # an adapter bug must not pass as a passed test
            self.journal.outcome(seq, False, "failed", f"error: {error!r}")
            return
        finally:
            self._local.intent = None
        if result is None:
            self.journal.outcome(seq, True, "none", "the adapter has no pre-production tests to run")
            return
        self.journal.outcome(seq, result.ok, "passed" if result.ok else "failed", result.detail, result.attempts)

    def set_weight(self, stage_name: str, region: str, weight_pct: float) -> bool:
        """Tell the adapter's traffic router the weight of a traffic step, journaled like an action
        (target `stage/region`, detail the weight); True unless the router said it failed. An
        adapter without `set_weight` is not told: its hosts serve the weight."""
        set_weight = getattr(self.adapter, "set_weight", None)
        if set_weight is None:
            return True
        seq = self.journal.intend("set_weight", f"{stage_name}/{region}", self.r.version, f"weight {weight_pct:g}%")
        self._local.intent = seq  # a command it starts is journaled under this intent
        try:
            result = set_weight(stage_name, region, weight_pct, self.r.version, timeout_s=self.timeout_s)
        except Exception as error:  # an adapter bug must not pass as a weight set
            self.journal.outcome(seq, False, None, f"error: {error!r}")
            return False
        finally:
            self._local.intent = None
        if result is None:
            self.journal.outcome(seq, True, None, "the adapter has no traffic router: the hosts serve the weight")
            return True
        self.journal.outcome(seq, result.ok, f"{weight_pct:g}" if result.ok else None, result.detail, result.attempts)
        return bool(result.ok)

    def preprod_failed(self) -> bool:
        """Did the last run of some stage's pre-production tests fail?"""
        last: dict[str, str | None] = {}
        for a in self.journal.actions():
            if a.kind == "preprod" and a.phase != "intent" and a.current is not None:
                last[a.target] = a.current
        return any(v == "failed" for v in last.values())

    def record_previous_versions(self) -> None:
        """Ask every target its version before touching any: the version a rollback returns it to;
        and its health check: a target that fails it before the run halts it with nothing changed
        (its version's health could not be told from the new one's)."""
        rows: list[tuple[str, int, str]] = []
        unknown: list[str] = []
        unhealthy: list[str] = []
        for t in self.r.all_targets:  # baseline targets too: a rollback returns them to their version
            self.check_stop()
            version = self.current_version(t)
            if version is None:
                unknown.append(t.name)
                continue
            rows.append((t.name, t.host, version))
            if not self._healthy(t):
                if self._interrupted():
                    raise Stopped()
                unhealthy.append(t.name)
        if unknown:
            odd = [f"{name} reported {self.not_versions[name][:80]!r}" for name in unknown if name in self.not_versions]
            why = (f" ({'; '.join(odd[:3])}: not a version, expected a match of adapter.version_pattern "
                   f"{self.r.inventory.adapter.version_pattern})" if odd else "")
            raise Halt(f"cannot tell the version of {_some(unknown)}{why}; nothing was changed")
        if unhealthy:
            raise Halt(f"{_some(unhealthy)} fail(s) the health check before the rollout; nothing was changed")
        self.journal.set_targets(rows)


def _some(names: list[str]) -> str:
    return f"{', '.join(names[:5])}{' and more' if len(names) > 5 else ''}"


def process_identity(pid: int) -> tuple[float | None, str]:
    """The create time and command line of process `pid` (None, "" when it is gone): with the pid,
    what tells it from a later process that reuses the pid."""
    import psutil

    try:
        proc = psutil.Process(pid)
        created = proc.create_time()
    except psutil.Error:
        return None, ""
    try:
        cmdline = " ".join(proc.cmdline())
    except psutil.Error:  # a zombie, already done
        cmdline = ""
    return created, cmdline


def last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""
