"""Notifications: the inventory's optional `notify:` section, and the `Notifier` that sends them.

Each notification is a JSON POST to an http(s) URL or a command run without a shell (its
arguments filled in as the command adapter fills its own, `{event}`, `{version}` ...). They follow
the run's journaled events: the journal's event writer tells the notifier of every event it writes
(`Journal.add_listener`), so the one place the executor reports what happened is also the one place
notifications come from.

A notification never blocks or fails a rollout: it is queued and sent by one background thread,
in order, each bounded by its time-out; a failure is logged and journaled as a `notify_failed`
event and the run goes on; a sent one is journaled as `notified`. At the end of a run the executor
waits (bounded) for what is still queued, so the last word (`complete`, `rollback`) is sent.
"""

from __future__ import annotations

import datetime as dt
import json
import queue
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from ..scenario.schema import Frozen
from .adapter_spec import Timeout, placeholders

NOTIFY_EVENTS = ("start", "resume", "alarm", "rollback", "halt", "complete", "fail", "stop", "approval", "control")
"""Names a notification may be sent `on`."""

JOURNAL_TO_NOTIFY = {
    "started": "start",
    "resumed": "resume",
    "rolled_back": "rollback",
    "halted": "halt",
    "rollback_incomplete": "halt",
    "complete": "complete",
    "failed": "fail",
    "stopped": "stop",
    "awaiting_approval": "approval",  # a stage waits for `deploysim approve`
    "aborted": "control",  # an operator's control taken (deploysim abort, pause, resume, promote, approve)
    "paused": "control",
    "unpaused": "control",
    "promoted": "control",
    "approved": "control",
}
"""Journaled event -> the notification it sends. `alarm` is sent on `rollback_started` when the
rollback decision's cause is an alarm."""

NOTIFY_PLACEHOLDERS = ("event", "version", "pipeline", "state_dir", "time", "summary", "detail")
"""Placeholders of a notification command: the same fields as the JSON a POST carries."""

SUMMARY_LIMIT_CHARS = 300
DETAIL_LIMIT_CHARS = 4000
DRAIN_EXTRA_S = 1.0
"""At the end of a run, wait for the queued notifications at most their time-outs plus this."""


def check_http_url(value: str, example: str) -> str:
    """`value` if it is an http(s) URL with a host (and a valid port); ValueError otherwise."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  (raises ValueError on a bad port)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected an http(s) URL such as {example}, got {value!r}")
    return value


class NotifySpec(Frozen):
    """One notification: on which events, and where (an http(s) URL to POST to, or a command)."""

    on: list[str] = Field(min_length=1, description="events: " + ", ".join(NOTIFY_EVENTS))
    http: str | None = Field(None, description="an http(s) URL that receives a JSON POST")
    command: list[str] | None = Field(None, min_length=1, description="a command, run without a shell; "
                                      "placeholders " + ", ".join("{" + p + "}" for p in NOTIFY_PLACEHOLDERS))
    timeout: Timeout = Field(5.0, description="seconds a POST or a command may take")

    @model_validator(mode="before")
    @classmethod
    def _on_key(cls, data: Any) -> Any:
        # YAML 1.1 reads a bare `on:` key as the boolean true.
        if isinstance(data, dict) and True in data and "on" not in data:
            data = {("on" if key is True else key): value for key, value in data.items()}
        return data

    @field_validator("on")
    @classmethod
    def _known_events(cls, value: list[str]) -> list[str]:
        for name in value:
            if name not in NOTIFY_EVENTS:
                raise ValueError(f"unknown event {name!r}; expected some of " + ", ".join(NOTIFY_EVENTS))
        return value

    @field_validator("http")
    @classmethod
    def _a_url(cls, value: str | None) -> str | None:
        return value if value is None else check_http_url(value, "http://127.0.0.1:8080/hook")

    @field_validator("command")
    @classmethod
    def _known_placeholders(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            unknown = sorted(placeholders(value) - set(NOTIFY_PLACEHOLDERS))
            if unknown:
                raise ValueError(f"unknown placeholder {{{unknown[0]}}}; expected one of "
                                 + ", ".join("{" + p + "}" for p in NOTIFY_PLACEHOLDERS))
        return value

    @model_validator(mode="after")
    def _one_way(self):
        if (self.http is None) == (self.command is None):
            raise ValueError("expected exactly one of http and command")
        return self

    def where(self) -> str:
        return self.http if self.http is not None else " ".join(self.command or [])


class Notifier:
    """Sends the notifications of `specs` for a run's journaled events, in a background thread.

    `journal` is told of every event (`Journal.add_listener(notifier.on_event)`) and is where
    `notified` and `notify_failed` are journaled; `context` holds version, pipeline and state_dir."""

    def __init__(self, specs: Sequence[NotifySpec], journal, context: dict[str, str], *,
                 now: Callable[[], float] = time.time, log: Callable[[str], None] = lambda line: None):
        self.specs = list(specs)
        self.journal = journal
        self.context = dict(context)
        self.now = now
        self.log = log
        self._queue: queue.Queue = queue.Queue()
        self._pending = 0
        self._pending_timeouts = 0.0
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ the journal's listener

    def on_event(self, kind: str, detail: str) -> None:
        """Called with each journaled event: queue the notifications it sends (never raises)."""
        try:
            event = JOURNAL_TO_NOTIFY.get(kind)
            if kind == "rollback_started" and self._rollback_cause() == "alarm":
                event = "alarm"
            if event is None:
                return
            for spec in self.specs:
                if event in spec.on:
                    self._enqueue(spec, self.payload(event, kind, detail))
        except Exception as error:  # a notification must never fail a rollout
            self.log(f"notification not sent: {type(error).__name__}: {error}")

    def _rollback_cause(self) -> str | None:
        last = self.journal.last_decision()
        return last.detail.get("cause") if last is not None and last.kind == "RollBack" else None

    def payload(self, event: str, kind: str, detail: str) -> dict[str, str]:
        lines = detail.strip().splitlines()
        summary = lines[0] if lines else kind
        when = dt.datetime.fromtimestamp(self.now(), dt.timezone.utc).isoformat(timespec="seconds")
        return {"event": event, **self.context, "time": when.replace("+00:00", "Z"),
                "summary": summary[:SUMMARY_LIMIT_CHARS], "detail": detail[:DETAIL_LIMIT_CHARS],
                "journal_event": kind}

    # ------------------------------------------------------------ sending

    def _enqueue(self, spec: NotifySpec, payload: dict[str, str]) -> None:
        with self._cond:
            self._pending += 1
            self._pending_timeouts += spec.timeout
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="deploysim-notify", daemon=True)
                self._thread.start()
        self._queue.put((spec, payload))

    def _work(self) -> None:
        while True:
            spec, payload = self._queue.get()
            try:
                error = send(spec, payload)
                what = f"{payload['event']} -> {spec.where()}"
                if error is None:
                    self.journal.event("notified", what)
                else:
                    self.log(f"notification failed: {what}: {error}")
                    self.journal.event("notify_failed", f"{what}: {error}")
            except Exception as error:  # the journal may be closed or full: the run goes on regardless
                self.log(f"notification not journaled: {type(error).__name__}: {error}")
            finally:
                with self._cond:
                    self._pending -= 1
                    self._pending_timeouts -= spec.timeout
                    self._cond.notify_all()

    def drain(self) -> bool:
        """Wait for the queued notifications, at most their time-outs (plus a second); True if all were sent
        or given up on."""
        with self._cond:
            deadline = time.monotonic() + self._pending_timeouts + DRAIN_EXTRA_S
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True


def send(spec: NotifySpec, payload: dict[str, str]) -> str | None:
    """Send one notification; None when it was delivered, else why not (one line)."""
    if spec.http is not None:
        return _post(spec.http, payload, spec.timeout)
    from .adapter_spec import fill
    from .command_adapter import run_once

    outcome = run_once(fill(spec.command or [], payload), spec.timeout)
    return None if outcome.ok else outcome.describe().replace("\n", "; ")


def _post(url: str, payload: dict[str, str], timeout_s: float) -> str | None:
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                     headers={"Content-Type": "application/json",
                                              "User-Agent": "deploysim-executor"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            response.read(65536)
            return None if 200 <= response.status < 300 else f"HTTP {response.status}"
    except urllib.error.HTTPError as error:
        return f"HTTP {error.code} {error.reason}"
    except urllib.error.URLError as error:
        return f"cannot reach {url}: {error.reason}"
    except (OSError, ValueError) as error:  # a time-out, a reset connection
        return f"cannot reach {url}: {error}"
