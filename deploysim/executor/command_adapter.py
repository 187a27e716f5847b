"""The command adapter: deploys, rolls back and inspects targets by running the user's argument
lists (kubectl, ansible-playbook, aws deploy ...), and a metric source that does the same.

Every value is filled into one argument and the program runs without a shell, so a target or
version name cannot inject a command. Each attempt is bounded by a time-out (the command's whole
process group is killed), failed attempts are retried with doubling back-off (capped, and cut short when the run
stops; see `retry`), and output is
captured for the journal. Success is only ever what was seen: exit status 0.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..scenario.schema import MetricAlarm
from .adapter_spec import AdapterSpec, fill
from .interfaces import ActionResult, Target
from .retry import BackoffWait, plain_wait, retry

OUTPUT_LIMIT_CHARS = 2000
"""Characters of stdout and of stderr kept per attempt (the end, where errors are)."""


@dataclass(frozen=True)
class CommandOutcome:
    """One attempt of one command."""

    argv: tuple[str, ...]
    returncode: int | None  # None: killed on time-out, or it could not start
    stdout: str
    stderr: str
    duration_s: float
    error: str = ""  # why there is no exit status

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def describe(self) -> str:
        status = f"exit {self.returncode}" if self.returncode is not None else self.error
        parts = [f"$ {' '.join(self.argv)}", f"{status} after {self.duration_s:.1f}s"]
        if self.stdout.strip():
            parts.append("stdout: " + _tail(self.stdout))
        if self.stderr.strip():
            parts.append("stderr: " + _tail(self.stderr))
        return "\n".join(parts)


def _tail(text: str) -> str:
    text = text.strip()
    return text if len(text) <= OUTPUT_LIMIT_CHARS else "..." + text[-OUTPUT_LIMIT_CHARS:]


def run_once(argv: Sequence[str], timeout_s: float, on_spawn: Callable[[int], None] | None = None) -> CommandOutcome:
    """Run `argv` (no shell) in its own process group, killing the group when `timeout_s` passes.

    Its own session also keeps Ctrl-C in the terminal away from it: the executor decides whether
    the call finishes, not the terminal's signal.
    """
    start = time.monotonic()
    try:
        proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True, text=True, errors="replace")
    except OSError as error:
        return CommandOutcome(tuple(argv), None, "", "", 0.0, f"cannot start: {error.strerror or error}")
    if on_spawn is not None:
        on_spawn(proc.pid)
    try:
        out, err = proc.communicate(timeout=timeout_s)
        return CommandOutcome(tuple(argv), proc.returncode, out, err, time.monotonic() - start)
    except subprocess.TimeoutExpired:
        kill_group(proc.pid)
        out, err = proc.communicate()
        return CommandOutcome(tuple(argv), None, out or "", err or "", time.monotonic() - start,
                              f"timed out after {timeout_s:g}s (killed)")


def kill_group(pid: int) -> None:
    """SIGKILL a command's whole process group (it leads its own session)."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run_with_retries(argv: Sequence[str], *, timeout_s: float, retries: int, backoff_s: float,
                     on_spawn: Callable[[int], None] | None = None,
                     accept: Callable[[CommandOutcome], bool] = lambda o: o.ok,
                     sleep: BackoffWait = plain_wait) -> tuple[bool, list[CommandOutcome]]:
    """Attempt `argv` until `accept`s an outcome, at most 1 + `retries` times, waiting `backoff_s`,
    then twice that, ... (at most MAX_BACKOFF_S) between attempts; `sleep` returning True (the run
    is stopping) ends the retries at once. Returns (accepted, every attempt)."""
    return retry(lambda: run_once(argv, timeout_s, on_spawn), accept, retries=retries, backoff_s=backoff_s,
                 wait=sleep)


def _detail(attempts: list[CommandOutcome]) -> str:
    if len(attempts) == 1:
        return attempts[0].describe()
    return "\n".join(f"attempt {i + 1}: {a.describe()}" for i, a in enumerate(attempts))


class CommandAdapter:
    """Adapter that runs the inventory's argument lists (see `AdapterSpec`)."""

    def __init__(self, spec: AdapterSpec, *, sleep: BackoffWait = plain_wait):
        if spec.deploy is None or spec.current_version is None:  # AdapterSpec's validator requires both
            raise ValueError("a command adapter needs the deploy and current_version commands")
        self.spec = spec
        self.deploy_argv: Sequence[str] = spec.deploy
        self.current_version_argv: Sequence[str] = spec.current_version
        self.sleep = sleep
        # Called with the pid of every command started, so the journal can find orphans after a crash.
        self.on_spawn: Callable[[int], None] | None = None

    def set_backoff_wait(self, wait: BackoffWait | None) -> None:
        """Wait the back-off between attempts with `wait` (True: give up at once); None: plain sleeps."""
        self.sleep = wait or plain_wait

    def set_spawn_listener(self, listener: Callable[[int], None] | None) -> None:
        """Tell `listener` the pid (= process group id: each command leads its own) of every command started."""
        self.on_spawn = listener

    @staticmethod
    def values(target: Target, version: str) -> dict[str, str]:
        values = {"target": target.name, "address": target.address, "version": version, "region": target.region,
                  "az": target.az, "cell": target.cell}
        values.update({f"label_{k}": v for k, v in target.labels.items()})
        return values

    def _run(self, template: Sequence[str], values: dict[str, str], timeout_s: float,
             accept: Callable[[CommandOutcome], bool] = lambda o: o.ok) -> tuple[bool, list[CommandOutcome]]:
        return run_with_retries(fill(template, values), timeout_s=timeout_s, retries=self.spec.retries,
                                backoff_s=self.spec.backoff, on_spawn=self.on_spawn, accept=accept, sleep=self.sleep)

    def deploy(self, target: Target, version: str, *, timeout_s: float) -> ActionResult:
        ok, attempts = self._run(self.deploy_argv, self.values(target, version), timeout_s)
        return ActionResult(ok, _detail(attempts), len(attempts))

    def rollback(self, target: Target, version: str, *, timeout_s: float) -> ActionResult:
        template = self.spec.rollback or self.deploy_argv
        ok, attempts = self._run(template, self.values(target, version), timeout_s)
        return ActionResult(ok, _detail(attempts), len(attempts))

    def current_version(self, target: Target, *, timeout_s: float) -> str | None:
        ok, attempts = self._run(self.current_version_argv, self.values(target, ""), timeout_s,
                                 accept=lambda o: o.ok and bool(o.stdout.strip()))
        return attempts[-1].stdout.strip().splitlines()[-1].strip() if ok else None

    def healthy(self, target: Target, *, timeout_s: float) -> bool:
        if self.spec.health is None:
            return self.current_version(target, timeout_s=timeout_s) is not None
        ok, _ = self._run(self.spec.health, self.values(target, ""), timeout_s)
        return ok

    def preprod(self, stage: str, version: str, *, timeout_s: float) -> ActionResult | None:
        """Run the pre-production tests of `version` for `stage`; None when none are configured."""
        if self.spec.preprod is None:
            return None
        argv = fill(self.spec.preprod, {"version": version, "stage": stage})
        outcome = run_once(argv, timeout_s, self.on_spawn)
        return ActionResult(outcome.ok, outcome.describe(), 1)

    def set_weight(self, stage: str, region: str, weight_pct: float, version: str, *,
                   timeout_s: float) -> ActionResult | None:
        """Run the `set_weight` command (with retries); None when none is configured."""
        if self.spec.set_weight is None:
            return None
        values = {"stage": stage, "region": region, "weight": f"{weight_pct:g}", "version": version}
        ok, attempts = self._run(self.spec.set_weight, values, timeout_s)
        return ActionResult(ok, _detail(attempts), len(attempts))


class CommandMetricSource:
    """Metric source that runs a command printing a JSON list of datapoints (null = missing).

    For any monitoring system with a command-line client. The command gets the metric, statistic,
    API, dependency, window (Unix seconds), period and the target names (comma-joined); requests are
    the same command asked for metric `requests`, summed.
    """

    def __init__(self, argv: Sequence[str], *, timeout_s: float = 30.0):
        self.argv = list(argv)
        self.timeout_s = timeout_s

    def _query(self, metric: str, targets: Sequence[Target], start_s: float, end_s: float, period_s: float,
               statistic: str = "average", api: str | None = None, dependency: str | None = None) -> np.ndarray:
        n = max(0, int(math.floor((end_s - start_s) / period_s + 1e-9)))
        values = {"metric": metric, "statistic": statistic, "api": api or "", "dependency": dependency or "",
                  "start": f"{start_s:.3f}", "end": f"{end_s:.3f}", "period": f"{period_s:g}",
                  "targets": ",".join(t.name for t in targets)}
        outcome = run_once(fill(self.argv, values), self.timeout_s)
        if not outcome.ok:
            raise RuntimeError(f"metrics command failed: {outcome.describe()}")
        try:
            data = json.loads(outcome.stdout)
            arr = np.array([np.nan if v is None else float(v) for v in data], dtype=float)
        except (ValueError, TypeError) as error:
            raise RuntimeError(
                f"metrics command printed no JSON list of numbers ({error}): {_tail(outcome.stdout)}"
            ) from error
        if arr.size != n:
            raise RuntimeError(f"metrics command printed {arr.size} value(s) for {n} period(s)")
        return arr

    def datapoints(self, alarm: MetricAlarm, targets: Sequence[Target], start_s: float, end_s: float,
                   period_s: float) -> np.ndarray:
        return self._query(alarm.metric, targets, start_s, end_s, period_s, alarm.statistic, alarm.api,
                           alarm.dependency)

    def requests(self, targets: Sequence[Target], start_s: float, end_s: float, api: str | None = None) -> float:
        if end_s <= start_s:
            return 0.0
        values = self._query("requests", targets, start_s, end_s, end_s - start_s, api=api)
        return float(np.nansum(values))
