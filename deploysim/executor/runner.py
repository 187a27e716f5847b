"""The executor's body: drives the shared `RolloutController` with a real clock, a real adapter and
real metrics, journaling every step so it can be resumed after a crash.

The loop mirrors the simulator's (`deploysim.engine.Simulation._rollout`): ask the controller
for a decision, carry it out, report what was seen in an `Observation`, ask again. Only the body
differs: a batch calls the adapter for each of its hosts, a bake waits on the clock and counts
requests and datapoints from the metric source, and alarms are judged from real datapoints by the
simulator's own evaluation (`alarm_watch.metric_alarm_states`, `combine_alarm_states`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import hashlib
import math
import os
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Protocol, Sequence

import numpy as np
import yaml

from ..alarms.series import EXTRA_EVALUATION_RANGE, combine_alarm_states, metric_alarm_states
from ..alarms import parse_rule
from ..fleet import FleetLayout, build_fleet
from ..policy.blockers import region_calendars
from ..policy.controller import (
    BakeWait, Complete, Decision, DeployBatch, EnterStage, Fail, Observation, RollBack, RolloutController,
    WaitBlocker, new_controller as policy_controller,
)
from ..policy.decisions import BlockReason, FailReason, RollbackCause, RollbackScope, decision_row
from ..policy.plan import PipelinePlan, Step, build_plan
from ..scenario.loader import ScenarioError, scenario_from_dict
from ..scenario.schema import MetricAlarm, Scenario
from .command_adapter import kill_group
from .interfaces import Adapter, MetricSource, Target
from .inventory import Inventory, build_targets, inventory_from_dict
from .journal import Journal

UNIX_EPOCH_UTC = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
"""The executor's time is Unix seconds, so blockers' windows are judged on the real clock."""

EXIT_COMPLETE, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130
FINAL_STATUSES = {"complete": EXIT_COMPLETE, "rolled_back": EXIT_FAILED, "failed": EXIT_FAILED}
"""Run statuses nothing follows (unless an operator asks for a rollback); the others can be resumed."""

_BAKE_REQUESTS = MetricAlarm(name="bake-datapoints", metric="requests", threshold=0.0)
"""The metric whose datapoints a bake counts for `min_datapoints`: the step's request count."""


class Clock(Protocol):
    """Where the executor's time comes from; the real clock by default, a scripted one in tests."""

    def now(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class RealClock:
    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds))


@dataclass(frozen=True)
class RunOutcome:
    """How a run of the executor ended: a status word, the process exit code, and what to tell people."""

    status: str  # complete | rolled_back | failed | halted | stopped | rollback_incomplete
    exit_code: int
    message: str


class Stopped(Exception):
    """Ctrl-C or SIGTERM: stop at the next safe point."""


class Halt(Exception):
    """An adapter call failed after its retries: stop the rollout and say why."""


# ------------------------------------------------------------------ the rollout's inputs


@dataclass(frozen=True)
class Rollout:
    """Everything one rollout needs, validated: scenario, plan of one pipeline, inventory, targets."""

    scenario: Scenario
    layout: FleetLayout
    pipeline: str
    plan: PipelinePlan
    inventory: Inventory
    targets: tuple[Target, ...]
    version: str
    inventory_dir: Path  # where the inventory's relative paths start


def check_version(version: str) -> None:
    """A version is a name a deploy tool takes as one argument: no leading dash, no control characters."""
    if not version or version.startswith("-") or any(ord(c) < 32 for c in version) or len(version) > 200:
        raise ScenarioError([("--version", "expected a version name such as v2 or 1.4.0-rc1 "
                              "(not empty, no leading '-', no control characters)")], "command line")


def load_rollout(scenario_text: str, scenario_source: str, inventory_text: str, inventory_source: str,
                 inventory_dir: Path, version: str, pipeline: Optional[str]) -> Rollout:
    """Validate every input before anything is touched; raises ScenarioError (or InventoryError)."""
    try:
        data = yaml.safe_load(scenario_text)
    except yaml.YAMLError as error:
        raise ScenarioError([("", f"not valid YAML: {error}")], scenario_source) from None
    scenario = scenario_from_dict(data if data is not None else {}, scenario_source)
    layout = build_fleet(scenario)
    try:
        inv_data = yaml.safe_load(inventory_text)
    except yaml.YAMLError as error:
        raise ScenarioError([("", f"not valid YAML: {error}")], inventory_source) from None
    inventory = inventory_from_dict(inv_data if inv_data is not None else {}, layout, inventory_source)
    names = list(scenario.policy.pipelines)
    if pipeline is None:
        pipeline = names[0]
    elif pipeline not in scenario.policy.pipelines:
        raise ScenarioError([("--pipeline", f"unknown pipeline {pipeline!r}; expected one of {names}")], "command line")
    check_version(version)
    plan = build_plan(pipeline, scenario.policy.pipelines[pipeline], layout)
    return Rollout(scenario, layout, pipeline, plan, inventory, tuple(build_targets(inventory, layout)), version,
                   inventory_dir)


def load_rollout_files(scenario_path: Path, inventory_path: Path, version: str, pipeline: Optional[str]) -> Rollout:
    scenario_text = _read_text(scenario_path, "scenario")
    inventory_text = _read_text(inventory_path, "inventory")
    return load_rollout(scenario_text, str(scenario_path), inventory_text, str(inventory_path),
                        Path(inventory_path).resolve().parent, version, pipeline)


def _read_text(path: Path, what: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ScenarioError([("", f"cannot read {what} file: {error.strerror}")], str(path)) from None
    except UnicodeDecodeError as error:
        raise ScenarioError([("", f"not UTF-8 text (byte {error.start})")], str(path)) from None


def rollout_meta(scenario_path: Path, inventory_path: Path, rollout: Rollout) -> dict:
    """What the journal keeps so `--resume` rebuilds exactly this rollout, even if the files change."""
    scenario_text = Path(scenario_path).read_text(encoding="utf-8")
    inventory_text = Path(inventory_path).read_text(encoding="utf-8")
    return {
        "scenario_path": str(scenario_path), "scenario_text": scenario_text,
        "scenario_sha256": hashlib.sha256(scenario_text.encode()).hexdigest(),
        "inventory_path": str(inventory_path), "inventory_text": inventory_text,
        "inventory_dir": str(rollout.inventory_dir),
        "version": rollout.version, "pipeline": rollout.pipeline, "started_s": time.time(),
    }


def rollout_from_meta(meta: dict) -> Rollout:
    return load_rollout(meta["scenario_text"], meta["scenario_path"], meta["inventory_text"], meta["inventory_path"],
                        Path(meta["inventory_dir"]), meta["version"], meta["pipeline"])


def new_controller(rollout: Rollout) -> RolloutController:
    """The shared brain, on Unix seconds: time windows are judged on the real clock in each region's zone."""
    return policy_controller(rollout.plan, rollout.scenario, UNIX_EPOCH_UTC)


# ------------------------------------------------------------------ the executor


class Executor:
    """Carries out one rollout's decisions on real targets; one instance per process and state dir."""

    def __init__(self, rollout: Rollout, adapter: Adapter, source: MetricSource, journal: Journal, *,
                 clock: Optional[Clock] = None, stop: Optional[threading.Event] = None,
                 datapoint_delay_s: float = 0.0, log: Callable[[str], None] = lambda line: None):
        self.r = rollout
        self.adapter = adapter
        self.source = source
        self.journal = journal
        self.clock = clock or RealClock()
        self.stop = stop or threading.Event()
        self.log = log
        self.timeout_s = float(rollout.inventory.adapter.timeout)
        self.parallel = int(rollout.inventory.adapter.parallel)
        self.period_s = float(rollout.scenario.metric_period)
        self.delay_s = datapoint_delay_s
        self.metric_alarms = {a.name: a for a in rollout.scenario.alarms.metric}
        self.composites = {a.name: parse_rule(a.rule) for a in rollout.scenario.alarms.composite}
        self.history_periods = max((a.evaluation_periods for a in rollout.scenario.alarms.metric), default=1) \
            + EXTRA_EVALUATION_RANGE - 1
        self.ctrl = new_controller(rollout)
        self.decision_log: list[tuple] = []  # decision_row(...) per decision, as the simulator records them
        self._local = threading.local()
        self._bake_looked: Optional[tuple] = None  # the bake whose data was last looked at
        self._busy: list[tuple[int, float, float, bool]] = []  # (host, start, end, keeps serving) of each action
        self._keeps_serving = False  # the current step's hosts serve while they take the change
        if hasattr(adapter, "on_spawn"):
            adapter.on_spawn = self._spawned  # type: ignore[attr-defined]

    # ------------------------------------------------------------ entry points

    def start(self) -> RunOutcome:
        """A fresh rollout: record every target's version, then run the plan."""
        self.journal.event("started", f"{self.r.pipeline} -> {self.r.version}")
        return self._guarded(self._start)

    def resume(self, *, force_rollback: bool = False) -> RunOutcome:
        """Continue a journaled rollout: settle interrupted actions, then pick up the last decision."""
        self.journal.event("resumed", "rollback requested" if force_rollback else "")
        return self._guarded(lambda: self._resume(force_rollback))

    def _guarded(self, body: Callable[[], RunOutcome]) -> RunOutcome:
        try:
            return body()
        except Stopped:
            where = self.journal.last_decision()
            at = f"{where.kind} stage {where.stage} step {where.step} batch {where.batch}" if where else "before the plan"
            message = f"stopped at {at}; every finished action is journaled; continue with --resume"
            self.journal.event("stopped", message)
            return RunOutcome("stopped", EXIT_INTERRUPTED, message)
        except Halt as halt:
            message = f"halted: {halt}; fix the cause, then --resume (or --resume --rollback to undo)"
            self.journal.event("halted", message)
            return RunOutcome("halted", EXIT_FAILED, message)

    def _start(self) -> RunOutcome:
        if not self.journal.previous_versions():
            self._record_previous_versions()
        return self._loop(None)

    def _resume(self, force_rollback: bool) -> RunOutcome:
        finished = self.journal.last_terminal_event()
        if finished is not None and finished[0] in FINAL_STATUSES and not force_rollback:
            return RunOutcome(finished[0], FINAL_STATUSES[finished[0]], f"already finished: {finished[1]}")
        self._resolve_interrupted()
        if not self.journal.previous_versions():
            # The run ended before it asked the targets their versions: nothing was touched.
            if force_rollback:
                message = "nothing to roll back: the rollout had not touched any target"
                self.journal.event("rolled_back", message)
                return RunOutcome("rolled_back", EXIT_FAILED, message)
            return self._start()
        last = self.journal.last_decision()
        if force_rollback:
            if last is not None:
                self.ctrl.restore(last.controller)
            return self._roll_back(self.ctrl.operator_rollback("--rollback"))
        if last is None:
            return self._loop(None)
        self.ctrl.restore(last.controller)
        if last.kind == "BakeWait":
            # A bake the executor did not watch throughout is restarted: an alarm that fired and
            # cleared while nobody looked must not let the rollout go on.
            self.ctrl.restore({**last.controller, "bake_since_s": self.clock.now()})
            return self._loop(None)
        return self._loop(self._rebuild(last))

    # ------------------------------------------------------------ the loop

    def _loop(self, decision: Optional[Decision]) -> RunOutcome:
        obs = Observation()
        while True:
            self._check_stop()
            if decision is None:
                now = self.clock.now()
                decision = self.ctrl.decide(now, obs)
                self._journal_decision(now, decision)
            obs = Observation()
            if isinstance(decision, EnterStage):
                stage = self.r.plan.stages[decision.stage]
                self.log(f"stage {stage.name} ({stage.kind})")
                obs = Observation(incident=self._incident(decision.stage))
            elif isinstance(decision, WaitBlocker):
                self.log(f"blocked ({decision.reason}) until {_utc(decision.until_s)}")
                self._sleep_until(decision.until_s)
                obs = Observation(incident=self._incident(self.ctrl.stage))
            elif isinstance(decision, DeployBatch):
                obs = self._deploy_batch(decision)
            elif isinstance(decision, BakeWait):
                obs = self._bake(decision)
            elif isinstance(decision, RollBack):
                return self._roll_back(decision)
            elif isinstance(decision, Fail):
                message = f"stage {self.r.plan.stages[decision.stage].name}: {decision.reason}; nothing reached production"
                self.journal.event("failed", message)
                return RunOutcome("failed", EXIT_FAILED, message)
            elif isinstance(decision, Complete):
                message = f"{self.r.version} runs on all {len(self.r.targets)} targets"
                self.journal.event("complete", message)
                return RunOutcome("complete", EXIT_COMPLETE, message)
            decision = None

    def _journal_decision(self, now_s: float, decision: Decision) -> None:
        row = decision_row(self.r.pipeline, self.r.version, decision)
        self.decision_log.append(row)
        detail = {}
        for f in dataclasses.fields(decision):
            value = getattr(decision, f.name)
            if f.name == "hosts" and value is not None:
                value = [self.r.targets[h].name for h in value]
            elif f.name == "min_requests":
                value = dict(value)
            elif isinstance(value, enum.Enum):
                value = value.value
            detail[f.name] = value
        self.journal.decision(now_s, row[2], row[3], row[4], row[5], detail, self.ctrl.snapshot())

    def _rebuild(self, row) -> Decision:
        """The decision a journal row records, to carry it out again after a crash."""
        d = row.detail
        if row.kind == "EnterStage":
            return EnterStage(row.stage)
        if row.kind == "WaitBlocker":
            return WaitBlocker(row.stage, d["until_s"], BlockReason(d["reason"]))
        if row.kind == "DeployBatch":
            step = self.r.plan.stages[row.stage].steps[row.step]
            hosts = () if step.kind == "preprod" else tuple(step.batches[row.batch].tolist())
            return DeployBatch(row.stage, row.step, row.batch, hosts, d["duration_s"])
        if row.kind == "RollBack":
            by_name = {t.name: t.host for t in self.r.targets}
            hosts = None if d.get("hosts") is None else tuple(by_name[n] for n in d["hosts"])
            return RollBack(row.stage, row.step, RollbackCause(d["cause"]), RollbackScope(d["scope"]), hosts,
                            bool(d["automatic"]), float(d["duration_s"]), d.get("alarm"), d.get("detail", ""))
        if row.kind == "Fail":
            return Fail(row.stage, FailReason(d["reason"]))
        return Complete()

    # ------------------------------------------------------------ time

    def _check_stop(self) -> None:
        if self.stop.is_set():
            raise Stopped()

    def _sleep_until(self, until_s: float) -> None:
        """Wait on the clock, waking at least every quarter second to notice Ctrl-C."""
        while True:
            self._check_stop()
            left = until_s - self.clock.now()
            if left <= 0:
                return
            self.clock.sleep(min(left, 0.25) if isinstance(self.clock, RealClock) else left)

    def _wait_watching(self, step: Step, until_s: float, watch_from_s: float) -> Optional[str]:
        """Wait until `until_s` unless a watched alarm fires first; returns the alarm (name@scope) or None.
        Datapoints are judged as each metric period ends (plus the source's delay), as the simulator does."""
        judged_k = None
        while True:
            self._check_stop()
            now = self.clock.now()
            k_end = int(math.floor((now - self.delay_s) / self.period_s + 1e-9))
            if k_end != judged_k:  # a period has ended: judge its datapoints
                judged_k = k_end
                alarm = self._check_alarms(step, watch_from_s, now)
                if alarm is not None:
                    return alarm
            if now >= until_s:
                return None
            next_period_s = (math.floor((now - self.delay_s) / self.period_s) + 1) * self.period_s + self.delay_s
            wake = min(until_s, next_period_s)
            if isinstance(self.clock, RealClock):
                wake = min(wake, now + 0.25)
            self.clock.sleep(max(0.0, wake - now))

    # ------------------------------------------------------------ alarms

    def _read_metrics(self, read: Callable[[], object], what: str):
        """A metric read, retried with back-off like adapter calls; the rollout halts if it keeps
        failing, since alarms that cannot be read cannot be trusted to be quiet."""
        spec = self.r.inventory.adapter
        wait_s = spec.backoff
        for attempt in range(spec.retries + 1):
            try:
                return read()
            except Exception as error:  # any failure of the source: network, query, parsing
                if attempt == spec.retries:
                    raise Halt(f"cannot read {what} from the metric source after {attempt + 1} attempt(s): "
                               f"{error}") from None
            self._sleep_until(self.clock.now() + wait_s)
            wait_s *= 2

    def _datapoints(self, alarm: MetricAlarm, hosts: np.ndarray, k0: int, k1: int) -> np.ndarray:
        targets = [self.r.targets[h] for h in hosts.tolist()]
        values = np.asarray(self._read_metrics(
            lambda: self.source.datapoints(alarm, targets, k0 * self.period_s, k1 * self.period_s, self.period_s),
            f"{alarm.metric} datapoints"), dtype=float)
        if values.shape != (k1 - k0,):
            raise Halt(f"metric source gave {values.shape} datapoints of {alarm.metric} for {k1 - k0} periods")
        return values

    def _alarm_states(self, name: str, hosts: np.ndarray, k_first: int, k_end: int) -> np.ndarray:
        """ALARM flags of alarm `name` over `hosts` for periods [k_first, k_end), with history before."""
        k0 = k_first - self.history_periods
        seen: dict[tuple, np.ndarray] = {}

        def states_of(alarm: MetricAlarm) -> np.ndarray:
            # Alarms on the same metric see the same datapoints, as in the simulator.
            key = (alarm.metric, alarm.api, alarm.statistic, alarm.dependency)
            if key not in seen:
                values = self._datapoints(alarm, hosts, k0, k_end)
                seen[key] = np.where(self._out_of_service(hosts, k0, k_end), np.nan, values)
            return metric_alarm_states(seen[key], alarm, k_first - k0)

        return combine_alarm_states(name, self.metric_alarms, self.composites, states_of)

    def _out_of_service(self, hosts: np.ndarray, k0: int, k1: int) -> np.ndarray:
        """Periods [k0, k1) in which one of `hosts` was being deployed or rolled back by this process.

        Their datapoints count as missing: the host was out of service (as the simulator models a
        batch), and the failed requests a restart causes are the deployment's, not the version's.
        Not so for steps whose hosts keep serving while they take a change (`hosts_keep_serving`).
        """
        mask = np.zeros(k1 - k0, dtype=bool)
        scope = set(hosts.tolist())
        p = self.period_s
        for host, start_s, end_s, keeps_serving in list(self._busy):
            if host in scope and end_s > start_s and not keeps_serving:
                first, last = int(start_s // p), int(math.ceil(end_s / p))  # periods overlapping (start, end)
                mask[max(first, k0) - k0: max(min(last, k1), k0) - k0] = True
        return mask

    def _check_alarms(self, step: Step, watch_from_s: float, now_s: float) -> Optional[str]:
        """The first watched alarm in ALARM in a period that ended since `watch_from_s`."""
        if not step.watched:
            return None
        k_first = int(watch_from_s // self.period_s)
        k_end = int(math.floor((now_s - self.delay_s) / self.period_s + 1e-9))
        if k_end <= k_first:
            return None
        first: Optional[tuple[int, str]] = None
        for w in step.watched:
            hits = np.flatnonzero(self._alarm_states(w.alarm, w.hosts, k_first, k_end))
            if hits.size and (first is None or hits[0] < first[0]):
                first = (int(hits[0]), f"{w.alarm}@{w.label}")
        return None if first is None else first[1]

    def _incident(self, stage_index: int) -> bool:
        """Is the incident alarm in ALARM in any region of the stage, on the last completed period?"""
        blockers = self.r.plan.policy.blockers
        stage = self.r.plan.stages[stage_index]
        if not blockers.incidents or blockers.incident_alarm is None or stage.kind != "production":
            return False
        k = int(math.floor((self.clock.now() - self.delay_s) / self.period_s)) - 1
        return any(bool(self._alarm_states(blockers.incident_alarm, self.r.layout.hosts_in_region(r), k, k + 1).any())
                   for r in stage.regions)

    # ------------------------------------------------------------ deploy and bake

    def _deploy_batch(self, decision: DeployBatch) -> Observation:
        started_s = self.clock.now()
        stage = self.r.plan.stages[decision.stage]
        step = stage.steps[decision.step]
        if step.kind == "preprod":
            self.log(f"pre-production {stage.name}: {decision.duration_s:g}s")
            self._preprod(stage.name)
            self._sleep_until(started_s + decision.duration_s)
            return Observation()
        self._keeps_serving = step.hosts_keep_serving
        known = self.journal.current_versions()
        todo = [self.r.targets[h] for h in decision.hosts if known.get(self.r.targets[h].name) != self.r.version]
        self.log(f"{stage.name} {step.name} batch {decision.batch + 1}/{len(step.batches)}: "
                 f"{', '.join(t.name for t in todo) or 'already deployed'}")
        alarm, failures = self._run_actions("deploy", todo, lambda t: self.r.version,
                                            watch=(step, started_s))
        if failures:
            raise Halt("; ".join(failures))
        if alarm is None:
            alarm = self._wait_watching(step, started_s + decision.duration_s, started_s)
        return Observation(alarm=alarm)

    def _bake(self, decision: BakeWait) -> Observation:
        stage = self.r.plan.stages[decision.stage]
        step = stage.steps[decision.step]
        now = self.clock.now()
        if now < decision.min_until_s:
            self.log(f"{stage.name} {step.name}: bake until {_utc(decision.min_until_s)}")
            until = decision.min_until_s
        elif self._bake_looked != (decision.stage, decision.step, decision.since_s):
            until = now  # the duration is over (or zero): look at the data now
        else:  # the duration is over but data is short: look again after a period
            until = min(now + self.period_s, max(decision.deadline_s, now))
        self._bake_looked = (decision.stage, decision.step, decision.since_s)
        alarm = self._wait_watching(step, until, now)
        if alarm is not None:
            return Observation(alarm=alarm)
        return self._bake_observation(step, decision.since_s, self.clock.now())

    def _bake_observation(self, step: Step, since_s: float, now_s: float) -> Observation:
        """Requests per API and datapoints the step's hosts produced in whole periods since the bake began."""
        p = self.period_s
        k0 = int(math.ceil(since_s / p - 1e-9))
        k1 = int(math.floor((now_s - self.delay_s) / p + 1e-9))
        if k1 <= k0:
            return Observation(requests_seen={}, datapoints_seen=0, preprod_failed=self._preprod_failed())
        if step.hosts.size == 0:  # pre-production: nothing real to count, periods pass
            return Observation(datapoints_seen=k1 - k0, preprod_failed=self._preprod_failed())
        targets = [self.r.targets[h] for h in step.hosts.tolist()]
        apis = dict.fromkeys([*step.bake.min_requests, "All"])  # read in declared order, never set order
        requests = {api: float(self._read_metrics(
            lambda api=api: self.source.requests(targets, k0 * p, k1 * p, None if api == "All" else api),
            f"requests ({api})")) for api in apis}
        points = self._datapoints(_BAKE_REQUESTS, step.hosts, k0, k1)
        return Observation(requests_seen=requests, datapoints_seen=int(np.count_nonzero(~np.isnan(points))))

    def _preprod(self, stage_name: str) -> None:
        run = getattr(self.adapter, "preprod", None)
        if run is None or getattr(getattr(self.adapter, "spec", None), "preprod", None) is None:
            return
        seq = self.journal.intend("preprod", stage_name, self.r.version)
        self._local.intent = seq
        try:
            result = run(stage_name, self.r.version, timeout_s=self.timeout_s)
        except Exception as error:  # an adapter bug must not pass as a passed test
            self.journal.outcome(seq, False, "failed", f"error: {error!r}")
            return
        self.journal.outcome(seq, result.ok, "passed" if result.ok else "failed", result.detail, result.attempts)

    def _preprod_failed(self) -> bool:
        last: dict[str, Optional[str]] = {}
        for a in self.journal.actions():
            if a.kind == "preprod" and a.phase != "intent" and a.current is not None:
                last[a.target] = a.current
        return any(v == "failed" for v in last.values())

    # ------------------------------------------------------------ adapter calls, journaled

    def _spawned(self, pid: int) -> None:
        intent = getattr(self._local, "intent", None)
        if intent is not None:
            self.journal.spawned(intent, pid)

    def _act(self, kind: str, target: Target, version: str) -> tuple[bool, str]:
        """One journaled action: intent, the adapter call, the version the target then reports, outcome."""
        seq = self.journal.intend(kind, target.name, version)
        self._local.intent = seq
        started_s = self.clock.now()
        try:
            call = self.adapter.deploy if kind == "deploy" else self.adapter.rollback
            result = call(target, version, timeout_s=self.timeout_s)
            ok, detail, attempts = result.ok, result.detail, result.attempts
        except Exception as error:  # an adapter bug is a failed action, never a success
            ok, detail, attempts = False, f"adapter error: {error!r}", None
        current = self._current_version(target)
        self._busy.append((target.host, started_s, self.clock.now(), self._keeps_serving))
        if ok and current != version:
            ok = False
            detail = f"{detail}\nthe adapter reported success but the target reports version {current!r}"
        self.journal.outcome(seq, ok, current, detail, attempts)
        self._local.intent = None
        message = "" if ok else f"{kind} of {target.name} to {version} failed " \
            f"after {attempts or 1} attempt(s) (target reports {current!r}): {_last_line(detail)}"
        return ok, message

    def _current_version(self, target: Target) -> Optional[str]:
        try:
            return self.adapter.current_version(target, timeout_s=self.timeout_s)
        except Exception:
            return None

    def _run_actions(self, kind: str, targets: Sequence[Target], version_of: Callable[[Target], str], *,
                     watch: Optional[tuple[Step, float]] = None) -> tuple[Optional[str], list[str]]:
        """Run actions on up to `parallel` targets at a time. New ones stop starting on Ctrl-C, on a
        failure, or when a watched alarm fires; the ones running finish and are journaled."""
        failures: list[str] = []
        alarm: Optional[str] = None
        todo = list(targets)
        running: dict[Future, Target] = {}
        judged_k = None
        with ThreadPoolExecutor(max_workers=self.parallel) as pool:
            while todo or running:
                while todo and len(running) < self.parallel and not (failures or alarm or self.stop.is_set()):
                    target = todo.pop(0)
                    running[pool.submit(self._act, kind, target, version_of(target))] = target
                if not running:
                    break
                done, _ = wait(list(running), timeout=0.25, return_when=FIRST_COMPLETED)
                for future in done:
                    running.pop(future)
                    ok, message = future.result()
                    if not ok:
                        failures.append(message)
                now = self.clock.now()
                k_end = int(math.floor((now - self.delay_s) / self.period_s + 1e-9))
                if watch is not None and alarm is None and (done or k_end != judged_k):
                    judged_k = k_end
                    alarm = self._check_alarms(watch[0], watch[1], now)
        if not failures and todo and self.stop.is_set() and alarm is None:
            raise Stopped()
        return alarm, failures

    # ------------------------------------------------------------ rollback

    def _roll_back(self, decision: RollBack) -> RunOutcome:
        previous = self.journal.previous_versions()
        self.journal.event("rollback_started", decision.reason)
        self.log(f"rolling back: {decision.reason}")
        if not decision.automatic:
            message = (f"{decision.reason}: automatic rollback is off, so the rollout stopped with every "
                       "target as it is; roll back with --resume --rollback")
            self.journal.event("halted", message)
            return RunOutcome("halted", EXIT_FAILED, message)
        candidates = self.journal.deployed_targets()
        if decision.hosts is not None:
            in_scope = {self.r.targets[h].name for h in decision.hosts}
            candidates = [name for name in candidates if name in in_scope]
        by_name = {t.name: t for t in self.r.targets}
        todo = []
        for name in candidates:
            target = by_name[name]
            if self._current_version(target) != previous[name]:
                todo.append(target)
        _, failures = self._run_actions("rollback", todo, lambda t: previous[t.name])
        if failures:
            message = "rollback incomplete: " + "; ".join(failures) + "; retry with --resume"
            self.journal.event("rollback_incomplete", message)
            return RunOutcome("rollback_incomplete", EXIT_FAILED, message)
        message = f"rolled back ({decision.reason}): {len(todo)} target(s) returned to their previous version"
        self.journal.event("rolled_back", message)
        return RunOutcome("rolled_back", EXIT_FAILED, message)

    # ------------------------------------------------------------ start and recovery

    def _record_previous_versions(self) -> None:
        """Ask every target its version before touching any: the version a rollback returns it to."""
        rows, unknown = [], []
        for t in self.r.targets:
            self._check_stop()
            version = self._current_version(t)
            if version is None:
                unknown.append(t.name)
            rows.append((t.name, t.host, version))
        if unknown:
            raise Halt(f"cannot tell the version of {', '.join(unknown[:5])}"
                       f"{' and more' if len(unknown) > 5 else ''}; nothing was changed")
        self.journal.set_targets(rows)

    def _resolve_interrupted(self) -> None:
        """Give every intent a crash left without an outcome one: wait for (or end) the command it
        started, then ask the target which version it runs."""
        for action in self.journal.pending_intents():
            self._reap(action.seq)
            if action.kind == "preprod":
                self.journal.outcome(action.seq, False, None, "interrupted by a crash; it runs again")
                continue
            target = next(t for t in self.r.targets if t.name == action.target)
            current = self._current_version(target)
            self.journal.outcome(action.seq, current == action.version, current,
                                 f"interrupted by a crash; on resume the target reports {current!r}")

    def _reap(self, intent: int) -> None:
        """A command started before a crash may still run: let it finish within its time-out, then kill it."""
        for pid, started_s in self.journal.spawned_pids(intent):
            deadline = started_s + self.timeout_s * (1 + self.r.inventory.adapter.retries)
            while _group_alive(pid) and time.time() < deadline:
                time.sleep(0.05)
            if _group_alive(pid):
                kill_group(pid)


def _group_alive(pgid: int) -> bool:
    """Does process group `pgid` still have a running member? Zombies do not count: in a container
    whose init does not reap orphans, a finished command stays a zombie forever."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
            return True
        except (ProcessLookupError, PermissionError):
            return False
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) ": state ppid pgrp ...
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            return True
    return False


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def _utc(t_s: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t_s))
