"""The executor's body: a `Driver` of the one rollout loop (`deploysim.policy.drive`) that carries
the shared controller's decisions out on real targets, and `Executor`, which starts or resumes a
journaled rollout with it.

The controller decides; this driver only carries out: a batch calls the adapter for each of its
hosts (`actions`), a bake waits on the clock and counts requests and datapoints, alarms are judged
from the metric source by the simulator's own evaluation (`alarm_reader`), and every decision is
journaled with the controller's state so a crash can be resumed (`recovery`).
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections.abc import Callable

from ..policy.controller import RolloutController
from ..policy.decisions import (
    BakeWait,
    Complete,
    Decision,
    DeployBatch,
    EnterStage,
    Fail,
    Observation,
    RollBack,
    StepKind,
    WaitBlocker,
    decision_row,
)
from ..policy.drive import drive, run_to_end
from ..policy.plan import Step
from .actions import Actions
from .alarm_reader import AlarmReader
from .clock import RealClock, wait_until
from .interfaces import Adapter, Clock, MetricSource
from .journal import Journal
from .outcome import EXIT_COMPLETE, EXIT_FAILED, EXIT_INTERRUPTED, FINAL_STATUSES, Halt, RunOutcome, Stopped
from .recovery import decision_detail, decision_from_row, resolve_interrupted
from .rollout import Rollout, new_controller


class ExecutorDriver:
    """Carries the controller's decisions out on real targets; returns observations, and at the end
    the run's `RunOutcome`."""

    def __init__(self, rollout: Rollout, ctrl: RolloutController, actions: Actions, alarms: AlarmReader,
                 journal: Journal, clock: Clock, stop: threading.Event, log: Callable[[str], None]):
        self.r = rollout
        self.ctrl = ctrl  # read only for the state journaled with each decision
        self.actions = actions
        self.alarms = alarms
        self.journal = journal
        self.clock = clock
        self.stop = stop
        self.log = log
        self.decision_log: list[tuple] = []  # decision_row(...) per decision, as the simulator records them
        self._bake_looked: tuple | None = None  # the bake whose data was last looked at

    # ------------------------------------------------------------ the Driver protocol

    def now(self) -> float:
        self.actions.check_stop()  # no new decision after Ctrl-C
        return self.clock.now()

    def record(self, now_s: float, decision: Decision) -> None:
        """Journal the decision with the controller's state after it, before it is carried out."""
        row = decision_row(self.r.pipeline, self.r.version, decision)
        self.decision_log.append(row)
        self.journal.decision(now_s, row[2], row[3], row[4], row[5], decision_detail(decision, self.r),
                              self.ctrl.snapshot())

    def enter_stage(self, decision: EnterStage) -> Observation:
        self.actions.check_stop()
        stage = self.r.plan.stages[decision.stage]
        self.log(f"stage {stage.name} ({stage.kind})")
        return Observation(incident=self.alarms.incident(decision.stage, self.clock.now()))

    def wait_blocker(self, decision: WaitBlocker) -> Observation:
        """Wait for the blocker to lift; the stage's deployed step (if any) stays watched meanwhile."""
        self.actions.check_stop()
        self.log(f"blocked ({decision.reason}) until {_utc(decision.until_s)}")
        if decision.watch_step is None:
            wait_until(self.clock, self.stop, decision.until_s)
        else:
            step = self.r.plan.stages[decision.stage].steps[decision.watch_step]
            alarm = self._wait_watching(step, decision.until_s, self.clock.now())
            if alarm is not None:
                return Observation(alarm=alarm)
        return Observation(incident=self.alarms.incident(decision.stage, self.clock.now()))

    def deploy_batch(self, decision: DeployBatch) -> Observation:
        self.actions.check_stop()
        started_s = self.clock.now()
        stage = self.r.plan.stages[decision.stage]
        step = stage.steps[decision.step]
        if step.kind == StepKind.PREPROD:
            self.log(f"pre-production {stage.name}: {decision.duration_s:g}s")
            self.actions.preprod(stage.name)
            wait_until(self.clock, self.stop, started_s + decision.duration_s)
            return Observation()
        self.actions.keeps_serving = step.hosts_keep_serving
        known = self.journal.current_versions()
        todo = [self.r.targets[h] for h in decision.hosts if known.get(self.r.targets[h].name) != self.r.version]
        self.log(f"{stage.name} {step.name} batch {decision.batch + 1}/{len(step.batches)}: "
                 f"{', '.join(t.name for t in todo) or 'already deployed'}")
        alarm, failures = self.actions.run("deploy", todo, lambda t: self.r.version,
                                           watch=self.alarms.watch(step, started_s))
        if failures:
            raise Halt("; ".join(failures))
        if alarm is None:
            alarm = self._wait_watching(step, started_s + decision.duration_s, started_s)
        return Observation(alarm=alarm)

    def bake(self, decision: BakeWait) -> Observation:
        self.actions.check_stop()
        stage = self.r.plan.stages[decision.stage]
        step = stage.steps[decision.step]
        now = self.clock.now()
        if now < decision.min_until_s:
            self.log(f"{stage.name} {step.name}: bake until {_utc(decision.min_until_s)}")
            until = decision.min_until_s
        elif self._bake_looked != (decision.stage, decision.step, decision.since_s):
            until = now  # the duration is over (or zero): look at the data now
        else:  # the duration is over but data is short: look again after a period
            until = min(now + self.alarms.period_s, max(decision.deadline_s, now))
        self._bake_looked = (decision.stage, decision.step, decision.since_s)
        alarm = self._wait_watching(step, until, now)
        if alarm is not None:
            return Observation(alarm=alarm)
        seen = self.alarms.bake_observation(step, decision.since_s, self.clock.now())
        if step.kind == StepKind.PREPROD:
            seen = dataclasses.replace(seen, preprod_failed=self.actions.preprod_failed())
        elif decision.step + 1 < len(stage.steps):  # the next step checks its blockers when the bake ends
            seen = dataclasses.replace(seen, incident=self.alarms.incident(decision.stage, self.clock.now()))
        return seen

    def roll_back(self, decision: RollBack) -> RunOutcome:
        """Carry out the rollback the controller decided: its hosts (None: every one the run moved),
        automatically or, when it is not automatic, by halting for people."""
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
        todo = [by_name[name] for name in candidates if self.actions.current_version(by_name[name]) != previous[name]]
        # One batch after another, each at most `batch_share` of the targets to revert, as decided.
        size = max(1, int(math.floor(decision.batch_share * len(todo) + 1e-9)))
        failures: list[str] = []
        for i in range(0, len(todo), size):
            _, failed = self.actions.run("rollback", todo[i:i + size], lambda t: previous[t.name])
            failures += failed
            if failed:
                break
        if failures:
            message = "rollback incomplete: " + "; ".join(failures) + "; retry with --resume"
            self.journal.event("rollback_incomplete", message)
            return RunOutcome("rollback_incomplete", EXIT_FAILED, message)
        message = f"rolled back ({decision.reason}): {len(todo)} target(s) returned to their previous version"
        self.journal.event("rolled_back", message)
        return RunOutcome("rolled_back", EXIT_FAILED, message)

    def fail(self, decision: Fail) -> RunOutcome:
        message = f"stage {self.r.plan.stages[decision.stage].name}: {decision.reason}; nothing reached production"
        self.journal.event("failed", message)
        return RunOutcome("failed", EXIT_FAILED, message)

    def complete(self, decision: Complete) -> RunOutcome:
        message = f"{self.r.version} runs on all {len(self.r.targets)} targets"
        self.journal.event("complete", message)
        return RunOutcome("complete", EXIT_COMPLETE, message)

    # ------------------------------------------------------------ waiting

    def _wait_watching(self, step: Step, until_s: float, watch_from_s: float) -> str | None:
        """Wait until `until_s` unless a watched alarm fires first; returns the alarm (name@scope) or None.
        Datapoints are judged as each metric period ends (plus the source's delay), as the simulator does."""
        watch = self.alarms.watch(step, watch_from_s)
        while True:
            self.actions.check_stop()
            now = self.clock.now()
            alarm = watch(now, False)
            if alarm is not None:
                return alarm
            if now >= until_s:
                return None
            wake = min(until_s, self.alarms.next_period_end_s(now))
            self.clock.sleep(max(0.0, wake - now), self.stop)


class Executor:
    """Carries out one rollout's decisions on real targets; one instance per process and state dir."""

    def __init__(self, rollout: Rollout, adapter: Adapter, source: MetricSource, journal: Journal, *,
                 clock: Clock | None = None, stop: threading.Event | None = None,
                 datapoint_delay_s: float = 0.0, log: Callable[[str], None] = lambda line: None):
        self.r = rollout
        self.adapter = adapter
        self.source = source
        self.journal = journal
        self.clock = clock or RealClock()
        self.stop = stop or threading.Event()
        self.log = log
        self.ctrl = new_controller(rollout)
        self.actions = Actions(rollout, adapter, journal, self.clock, self.stop)
        self.alarms = AlarmReader(rollout, source, self.clock, self.stop, lambda: self.actions.busy,
                                  datapoint_delay_s=datapoint_delay_s)
        self.driver = ExecutorDriver(rollout, self.ctrl, self.actions, self.alarms, journal, self.clock, self.stop,
                                     log)

    @property
    def decision_log(self) -> list[tuple]:
        """decision_row(...) of every decision this process took, as the simulator records them."""
        return self.driver.decision_log

    # ------------------------------------------------------------ entry points

    def start(self) -> RunOutcome:
        """A fresh rollout: record every target's version, then run the plan."""
        self.journal.event("started", f"{self.r.pipeline} -> {self.r.version}")
        return self._guarded(self._start)

    def resume(self, *, force_rollback: bool = False) -> RunOutcome:
        """Continue a journaled rollout: settle interrupted actions, then pick up the last decision
        (or, with `force_rollback`, carry out an operator's rollback)."""
        self.journal.event("resumed", "rollback requested" if force_rollback else "")
        return self._guarded(lambda: self._resume(force_rollback))

    def _guarded(self, body: Callable[[], RunOutcome]) -> RunOutcome:
        try:
            return body()
        except Stopped:
            where = self.journal.last_decision()
            at = (
                f"{where.kind} stage {where.stage} step {where.step} batch {where.batch}"
                if where
                else "before the plan"
            )
            message = f"stopped at {at}; every finished action is journaled; continue with --resume"
            self.journal.event("stopped", message)
            return RunOutcome("stopped", EXIT_INTERRUPTED, message)
        except Halt as halt:
            message = f"halted: {halt}; fix the cause, then --resume (or --resume --rollback to undo)"
            self.journal.event("halted", message)
            return RunOutcome("halted", EXIT_FAILED, message)

    def _drive(self, first: Decision | None = None) -> RunOutcome:
        return run_to_end(drive(self.ctrl, self.driver, first))

    def _start(self) -> RunOutcome:
        if not self.journal.previous_versions():
            self.actions.record_previous_versions()
        return self._drive()

    def _resume(self, force_rollback: bool) -> RunOutcome:
        finished = self.journal.last_terminal_event()
        if finished is not None and finished[0] in FINAL_STATUSES and not force_rollback:
            return RunOutcome(finished[0], FINAL_STATUSES[finished[0]], f"already finished: {finished[1]}")
        resolve_interrupted(self.journal, self.actions, self.r)
        if not self.journal.previous_versions():
            # The run ended before it asked the targets their versions: nothing was touched.
            if force_rollback:
                message = "nothing to roll back: the rollout had not touched any target"
                self.journal.event("rolled_back", message)
                return RunOutcome("rolled_back", EXIT_FAILED, message)
            return self._start()
        last = self.journal.last_decision()
        if last is not None:
            self.ctrl.restore(last.controller)
        if force_rollback:
            # The operator's rollback is the controller's decision like any other: journaled, then carried out.
            rollback = self.ctrl.operator_rollback("--rollback")
            self.driver.record(self.clock.now(), rollback)
            return self._drive(rollback)
        if last is None:
            return self._drive()
        if last.kind == "BakeWait":
            # A bake the executor did not watch throughout is restarted: an alarm that fired and
            # cleared while nobody looked must not let the rollout go on.
            self.ctrl.restore({**last.controller, "bake_since_s": self.clock.now()})
            return self._drive()
        return self._drive(decision_from_row(last, self.r))


def _utc(t_s: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t_s))
