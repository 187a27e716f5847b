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
from pathlib import Path

from ..judge.verdict import Verdict
from ..policy.controller import RolloutController
from ..policy.decisions import (
    BakeWait,
    Complete,
    Decision,
    DeployBaseline,
    DeployBatch,
    EnterStage,
    Fail,
    Observation,
    RemoveBaseline,
    RollBack,
    RollbackCause,
    StepKind,
    WaitApproval,
    WaitBlocker,
    decision_row,
)
from ..policy.drive import drive, run_to_end
from ..policy.plan import Step
from .actions import Actions
from .alarm_reader import NO_DATA_PAUSE_PERIODS, AlarmReader
from .clock import RealClock, control_poll_s
from .controls import ENDED, OperatorControls, Where
from .interfaces import Adapter, Clock, MetricSource
from .journal import DecisionRow, Journal
from .judge_reader import JudgeReader
from .labels import stage_label, step_label
from .notify import Notifier
from .outcome import (
    EXIT_COMPLETE,
    EXIT_HALTED,
    EXIT_INTERRUPTED,
    EXIT_ROLLED_BACK,
    FINAL_STATUSES,
    Halt,
    RunOutcome,
    Stopped,
)
from .recovery import decision_detail, decision_from_row, resolve_interrupted
from .rollout import Rollout, new_controller


class ExecutorDriver:
    """Carries the controller's decisions out on real targets; returns observations, and at the end
    the run's `RunOutcome`."""

    def __init__(self, rollout: Rollout, ctrl: RolloutController, actions: Actions, alarms: AlarmReader,
                 journal: Journal, clock: Clock, stop: threading.Event, log: Callable[[str], None],
                 controls: OperatorControls | None = None):
        self.r = rollout
        self.ctrl = ctrl  # read only for the state journaled with each decision
        self.actions = actions
        self.alarms = alarms
        self.judge = JudgeReader(rollout, alarms)
        self.journal = journal
        self.clock = clock
        self.stop = stop
        self.log = log
        self.decision_log: list[tuple] = []  # decision_row(...) per decision, as the simulator records them
        self._bake_looked: tuple | None = None  # the bake whose data was last looked at
        self._step_started: dict[tuple[int, int], float] = {}  # (stage, step) -> its first batch began
        self._must_roll_back = False  # the last observation calls for a rollback: a stop waits for it
        self.controls = controls if controls is not None else OperatorControls(journal, log)
        self._where = Where()  # where the rollout stands, for the operators' controls taken meanwhile
        self._poll_s = control_poll_s(clock)

    # ------------------------------------------------------------ the Driver protocol

    def now(self) -> float:
        # No new decision after Ctrl-C or SIGTERM, except the rollback an alarm or a failed deploy
        # just seen calls for: stopping there would leave targets on the version to roll back.
        if not self._must_roll_back:
            self.actions.check_stop()
        return self.clock.now()

    def _observed(self, observation: Observation) -> Observation:
        failed_judgement = observation.judgement is not None and observation.judgement.verdict is Verdict.FAIL
        self._must_roll_back = observation.alarm is not None or observation.abort is not None or failed_judgement or (
            observation.deploy_failed is not None and self.r.plan.policy.rollback.automatic)
        return observation

    # ------------------------------------------------------------ operators' controls

    def _poll(self) -> Observation | None:
        """Take the operators' new controls; an abort in force is what the rollout observes next."""
        self.controls.poll(self._where)
        if self.controls.abort is not None:
            return self._observed(Observation(abort=self.controls.abort))
        return None

    def _promoted(self) -> bool:
        w = self._where
        return w.stage is not None and w.step is not None and (w.stage, w.step) in self.controls.promoted

    def _hold_while_paused(self, watch_step: Step | None, watch_from_s: float) -> Observation | None:
        """While an operator has the run paused, start nothing: wait for `deploysim resume`, watching
        the step already deployed (if any). Returns what ends the hold early (an alarm, an abort)."""
        aborted = self._poll()
        if aborted is not None or not self.controls.paused:
            return aborted
        self.log(f"paused by {self.controls.paused_by}: no new deploy starts until deploysim resume "
                 f"{Path(self.journal.path).parent}; alarms stay watched")
        watch = self.alarms.watch(watch_step, watch_from_s) if watch_step is not None else None
        while True:
            self.actions.check_stop()
            aborted = self._poll()
            if aborted is not None or not self.controls.paused:
                return aborted
            now = self.clock.now()
            alarm = watch(now, False) if watch is not None else None
            if alarm is not None:
                return self._observed(Observation(alarm=alarm))
            self.clock.sleep(max(0.0, min(self.alarms.next_period_end_s(now), now + self._poll_s) - now), self.stop)

    def _wait(self, until_s: float, done: Callable[[], bool] = lambda: False) -> Observation | None:
        """Wait until `until_s`, or until `done()`, watching nothing but the operators' controls
        (an abort ends it and is returned)."""
        while True:
            self.actions.check_stop()
            aborted = self._poll()
            if aborted is not None:
                return aborted
            now = self.clock.now()
            if done() or now >= until_s:
                return None
            self.clock.sleep(min(until_s - now, self._poll_s), self.stop)

    def record(self, now_s: float, decision: Decision) -> None:
        """Journal the decision with the controller's state after it, before it is carried out."""
        self._must_roll_back = False
        row = decision_row(self.r.pipeline, self.r.version, decision)
        self.decision_log.append(row)
        self.journal.decision(now_s, row[2], row[3], row[4], row[5], decision_detail(decision, self.r),
                              self.ctrl.snapshot())

    def enter_stage(self, decision: EnterStage) -> Observation:
        self.actions.check_stop()
        self._where = Where(decision.stage, label=stage_label(self.r.plan, decision.stage))
        held = self._hold_while_paused(None, self.clock.now())
        if held is not None:
            return held
        stage = self.r.plan.stages[decision.stage]
        self.log(f"{stage_label(self.r.plan, decision.stage)} ({stage.kind})")
        return Observation(incident=self.alarms.incident(decision.stage, self.clock.now()))

    def wait_approval(self, decision: WaitApproval) -> Observation:
        """Wait for an operator's `deploysim approve` of the stage, until the approval times out."""
        self.actions.check_stop()
        self._where = Where(decision.stage, awaiting_approval=True, label=stage_label(self.r.plan, decision.stage))
        aborted = self._poll()
        if aborted is not None:
            return aborted
        if decision.stage not in self.controls.approved:
            label = stage_label(self.r.plan, decision.stage)
            message = (f"{label} awaits approval: deploysim approve {Path(self.journal.path).parent} "
                       f"--reason ...; without it by {_utc(decision.until_s)} the version is rolled back")
            self.log(message)
            self.journal.event("awaiting_approval", message)
        aborted = self._wait(decision.until_s, done=lambda: decision.stage in self.controls.approved)
        if aborted is not None:
            return aborted
        if decision.stage in self.controls.approved:
            return Observation(approved=True)
        self.journal.event("approval_timed_out", f"{stage_label(self.r.plan, decision.stage)} was not "
                           f"approved by {_utc(decision.until_s)}")
        return Observation()

    def wait_blocker(self, decision: WaitBlocker) -> Observation:
        """Wait for the blocker to lift; the stage's deployed step (if any) stays watched meanwhile."""
        self.actions.check_stop()
        self._where = Where(decision.stage, label=stage_label(self.r.plan, decision.stage))
        self.log(f"blocked ({decision.reason}) until {_utc(decision.until_s)}")
        if decision.watch_step is None:
            aborted = self._wait(decision.until_s)
            if aborted is not None:
                return aborted
        else:
            step = self.r.plan.stages[decision.stage].steps[decision.watch_step]
            alarm = self._wait_watching(step, decision.until_s, self.clock.now())
            if alarm is not None:
                return self._observed(Observation(alarm=alarm))
            if self.controls.abort is not None:
                return self._observed(Observation(abort=self.controls.abort))
        return Observation(incident=self.alarms.incident(decision.stage, self.clock.now()))

    def deploy_batch(self, decision: DeployBatch) -> Observation:
        self.actions.check_stop()
        stage = self.r.plan.stages[decision.stage]
        step = stage.steps[decision.step]
        held = self._hold_before(decision)
        if held is not None:
            return held
        self._where = Where(decision.stage, decision.step, label=step_label(self.r.plan, decision.stage, decision.step))
        started_s = self.clock.now()
        if step.kind == StepKind.PREPROD:
            self.log(f"{step_label(self.r.plan, decision.stage, decision.step)}: "
                     f"pre-production {decision.duration_s:g}s")
            self.actions.preprod(stage.name)
            return self._wait(started_s + decision.duration_s) or Observation()
        self._step_started.setdefault((decision.stage, decision.step), started_s)
        self.actions.keeps_serving = step.hosts_keep_serving
        known = self.journal.current_versions()
        todo = [self.r.targets[h] for h in decision.hosts if known.get(self.r.targets[h].name) != self.r.version]
        self.log(f"{step_label(self.r.plan, decision.stage, decision.step, decision.batch)}: "
                 f"{', '.join(t.name for t in todo) or 'already deployed'}")
        step_from = self._step_started[(decision.stage, decision.step)]
        alarm, failures = self.actions.run("deploy", todo, lambda t: self.r.version,
                                           watch=self._watch_and_controls(step, step_from))
        if alarm == _ABORTED:
            return self._observed(Observation(abort=self.controls.abort))
        if failures and alarm is None:
            if not self.r.plan.policy.rollback.automatic:  # people decide: fix and --resume, or roll back
                raise Halt("; ".join(failures))
            return self._observed(Observation(deploy_failed="; ".join(failures)))
        if alarm is None:
            alarm = self._wait_watching(step, started_s + decision.duration_s, step_from)
        if alarm is None and step.weight is not None and decision.batch == len(step.batches) - 1:
            names = [self.r.layout.region_names[r] for r in stage.regions]
            failed = [name for name in names if not self.actions.set_weight(stage.name, name, step.weight)]
            if failed:
                why = f"setting the traffic weight {step.weight:g}% failed in {', '.join(failed)}"
                if not self.r.plan.policy.rollback.automatic:
                    raise Halt(why)
                return self._observed(Observation(deploy_failed=why))
        return self._observed(Observation(alarm=alarm, abort=self.controls.abort))

    def _hold_before(self, decision: DeployBatch) -> Observation | None:
        """Before a batch: hold while paused, watching what the stage has deployed so far."""
        key = (decision.stage, decision.step)
        steps = self.r.plan.stages[decision.stage].steps
        if decision.batch > 0 or key in self._step_started:
            watched: Step | None = steps[decision.step]
            since = self._step_started.get(key, self.clock.now())
        elif decision.step > 0:
            watched = steps[decision.step - 1]
            since = self._step_started.get((decision.stage, decision.step - 1), self.clock.now())
        else:
            watched, since = None, self.clock.now()
        self._where = Where(decision.stage, decision.step, label=step_label(self.r.plan, decision.stage, decision.step))
        return self._hold_while_paused(watched, since)

    def _watch_and_controls(self, step: Step, watch_from_s: float) -> Callable[[float, bool], str | None]:
        """The step's alarm watch during a batch, which also takes operators' controls: an abort stops
        new actions from starting like an alarm does (`_ABORTED` stands for it)."""
        watch = self.alarms.watch(step, watch_from_s)
        looked = [-math.inf]

        def check(now_s: float, changed: bool) -> str | None:
            if now_s - looked[0] >= self._poll_s or changed:
                looked[0] = now_s
                if self._poll() is not None:
                    return _ABORTED
            return watch(now_s, changed)

        return check

    def deploy_baseline(self, decision: DeployBaseline) -> Observation:
        """Deploy the canary's old version (what its first target ran before the rollout) to the
        judge's baseline targets, journaled like any deploy; a failed one is a failed deploy."""
        self.actions.check_stop()
        step = self.r.plan.stages[decision.stage].steps[decision.step]
        old = self.journal.previous_versions()[self.r.targets[int(step.hosts[0])].name]
        targets = list(self.r.baseline_targets[:decision.size])
        known = self.journal.current_versions()
        todo = [t for t in targets if known.get(t.name) != old]
        label = step_label(self.r.plan, decision.stage, decision.step)
        self.log(f"{label}: baseline {old} on {', '.join(t.name for t in todo) or 'already deployed'}")
        _, failures = self.actions.run("deploy", todo, lambda t: old)
        if failures:
            return self._observed(Observation(deploy_failed="baseline: " + "; ".join(failures)))
        self.journal.event("baseline_deployed", f"{label}: {old} on {', '.join(t.name for t in targets)}")
        return Observation()

    def remove_baseline(self, decision: RemoveBaseline) -> Observation:
        """Return the baseline targets to their own previous version; one that fails is journaled and
        left for people (it costs a host, it serves no canary)."""
        self.actions.check_stop()
        failures = self._revert_baseline()
        label = step_label(self.r.plan, decision.stage, decision.step)
        if failures:
            self.journal.event("baseline_not_removed", f"{label}: {'; '.join(failures)}")
            self.log(f"{label}: baseline not removed: {'; '.join(failures)}")
        else:
            self.journal.event("baseline_removed", f"{label}: baseline targets returned to their previous version")
        return Observation()

    def _revert_baseline(self) -> list[str]:
        """Roll every baseline target that does not run its previous version back to it."""
        previous = self.journal.previous_versions()
        scope = [t for t in self.r.baseline_targets if t.name in previous]
        if not scope:
            return []
        reported = self.actions.versions_of(scope)
        todo = [t for t in scope if reported[t.name] != previous[t.name]]
        _, failures = self.actions.run("rollback", todo, lambda t: previous[t.name], finish_on_stop=True)
        return failures

    def bake(self, decision: BakeWait) -> Observation:
        self.actions.check_stop()
        self._where = Where(decision.stage, decision.step, label=step_label(self.r.plan, decision.stage, decision.step))
        aborted = self._poll()
        if aborted is not None:
            return aborted
        stage = self.r.plan.stages[decision.stage]
        step = stage.steps[decision.step]
        if decision.judge_at_s is not None:
            return self._judged_bake(decision, step)
        now = self.clock.now()
        if now < decision.min_until_s:
            self.log(f"{step_label(self.r.plan, decision.stage, decision.step)}: "
                     f"bake until {_utc(decision.min_until_s)}")
            until = decision.min_until_s
        elif self._bake_looked != (decision.stage, decision.step, decision.since_s):
            until = now  # the duration is over (or zero): look at the data now
        else:  # the duration is over but data is short: look again after a period
            until = min(now + self.alarms.period_s, max(decision.deadline_s, now))
        self._bake_looked = (decision.stage, decision.step, decision.since_s)
        ended = self._bake_until(decision, step, until)
        if ended is not None:
            return ended
        seen = self.alarms.bake_observation(step, decision.since_s, self.clock.now())
        if step.kind == StepKind.PREPROD:
            return dataclasses.replace(seen, preprod_failed=self.actions.preprod_failed())
        if decision.step + 1 < len(stage.steps):  # the next step checks its blockers when the bake ends
            seen = dataclasses.replace(seen, incident=self.alarms.incident(decision.stage, self.clock.now()))
        return self._with_evidence(decision, step, seen)

    def _bake_until(self, decision: BakeWait, step: Step, until_s: float) -> Observation | None:
        """Bake until `until_s` watching the step's alarms and the operators' controls; what ended
        the wait early (an alarm, an abort, a promote), or None when the time came."""
        # Alarms are judged on the step's periods (its deploys and bake), none before: a resumed
        # process, which did not see the deploys, judges from the bake's restart.
        watch_from = self._step_started.get((decision.stage, decision.step), decision.since_s)
        alarm = self._wait_watching(step, until_s, watch_from, promotable=True)
        if alarm is not None:
            return self._observed(Observation(alarm=alarm))
        if self.controls.abort is not None:
            return self._observed(Observation(abort=self.controls.abort))
        if self._promoted():
            return self._promoted_observation(decision, step)
        return None

    def _judged_bake(self, decision: BakeWait, step: Step) -> Observation:
        """Wait for the judgement due, watching the step's alarms, then judge the bake's data so far.
        The judge is the bake's evidence: too little data is an inconclusive judgement, which the
        controller pauses on (the plain bake's no-data halt does not apply)."""
        label = step_label(self.r.plan, decision.stage, decision.step)
        judge_at = decision.judge_at_s
        assert judge_at is not None
        if self.clock.now() < judge_at:
            self.log(f"{label}: next judgement at {_utc(judge_at)}")
        ended = self._bake_until(decision, step, judge_at)
        if ended is not None:
            return ended
        now = self.clock.now()
        judgement = self.judge.judge(step, decision.since_s, now)
        self.journal.event("judgement", f"{label}: {judgement.verdict.value}: {judgement.reason}")
        self.log(f"{label}: canary judge: {judgement.verdict.value}: {judgement.reason}")
        seen = self.alarms.bake_observation(step, decision.since_s, now)
        stage = self.r.plan.stages[decision.stage]
        if decision.step + 1 < len(stage.steps):  # the next step checks its blockers when the bake ends
            seen = dataclasses.replace(seen, incident=self.alarms.incident(decision.stage, self.clock.now()))
        return self._observed(dataclasses.replace(seen, judgement=judgement))

    def _promoted_observation(self, decision: BakeWait, step: Step) -> Observation:
        """An operator ended the bake: it passes as it is (pre-production's verdict still counts, and
        the next step still checks its blockers)."""
        self.log(f"{step_label(self.r.plan, decision.stage, decision.step)}: bake ended by an operator (promote)")
        if step.kind == StepKind.PREPROD:
            return Observation(promoted=True, preprod_failed=self.actions.preprod_failed())
        incident = (decision.step + 1 < len(self.r.plan.stages[decision.stage].steps)
                    and self.alarms.incident(decision.stage, self.clock.now()))
        return Observation(promoted=True, incident=incident)

    def _with_evidence(self, decision: BakeWait, step: Step, seen: Observation) -> Observation:
        """No data is never healthy: once the bake's duration is over, it passes only when every
        watched metric has at least `evidence_needed` datapoints (and its requests datapoints too).
        Short of that it pauses, period by period, until its `max_duration` (or
        NO_DATA_PAUSE_PERIODS periods), then halts."""
        needed = self.alarms.evidence_needed(step, decision.min_datapoints)
        limit = (decision.deadline_s if step.bake.max_duration is not None
                 else decision.min_until_s + NO_DATA_PAUSE_PERIODS * self.alarms.period_s)
        paused = False
        while True:
            now = self.clock.now()
            watched, metric = self.alarms.evidence(step, decision.since_s, now)
            evidence = min(seen.datapoints_seen, watched)
            if now < decision.min_until_s or evidence >= needed:
                return dataclasses.replace(seen, datapoints_seen=evidence)
            what = metric if watched < seen.datapoints_seen else "requests"
            if now >= limit:
                raise Halt(f"no data: the bake of {self.r.plan.stages[decision.stage].name} {step.name} saw "
                           f"{evidence} datapoint(s) of {what} where it needs {needed}; no data is never healthy")
            if not paused:
                paused = True
                message = (f"{step.name}: bake paused: {evidence} datapoint(s) of {what}, {needed} needed; "
                           f"halting at {_utc(limit)} unless data comes")
                self.log(message)
                self.journal.event("paused_no_data", message)
            alarm = self._wait_watching(step, min(limit, self.alarms.next_period_end_s(now)),
                                        self._step_started.get((decision.stage, decision.step), decision.since_s),
                                        promotable=True)
            if alarm is not None:
                return self._observed(Observation(alarm=alarm))
            if self.controls.abort is not None:
                return self._observed(Observation(abort=self.controls.abort))
            if self._promoted():
                return self._promoted_observation(decision, step)
            seen = self.alarms.bake_observation(step, decision.since_s, self.clock.now())

    def roll_back(self, decision: RollBack) -> RunOutcome:
        """Carry out the rollback the controller decided: its hosts (None: every target), automatically
        or, when it is not automatic, by halting for people.

        Which targets to roll back is decided from what every target in scope reports now, not from
        the journal (which may have lost its tail); the journal gives only each target's previous
        version. Every target in scope is asked again at the end: `rolled_back` is only said when all
        of them report their previous version."""
        self.controls.poll(ENDED)  # a control asked for now comes too late: journaled as ignored
        previous = self.journal.previous_versions()
        alarm, seen = self.alarms.last_evidence
        evidence = f"\nevidence: {seen}" if decision.alarm and alarm == decision.alarm else ""
        self.journal.event("rollback_started", decision.reason + evidence)
        self.log(f"rolling back: {decision.reason}{evidence}")
        if not decision.automatic:
            why = ("the canary judge pages people (inconclusive: then: page)"
                   if decision.cause is RollbackCause.JUDGE_INCONCLUSIVE else "automatic rollback is off")
            state = Path(self.journal.path).parent
            then = (f"if the canary is fine, deploysim promote {state} then --resume goes on; "
                    if decision.cause is RollbackCause.JUDGE_INCONCLUSIVE else "")
            message = (f"{decision.reason}: {why}, so the rollout stopped with every target as it is; "
                       f"{then}roll back with --resume --rollback")
            self.journal.event("halted", message)
            return RunOutcome("halted", EXIT_HALTED, message)
        with self.actions.to_the_end():  # neither Ctrl-C nor SIGTERM stops it half way
            self._weights_to_zero()
            outcome = self._roll_back_all(decision, previous)
            baseline_failures = self._revert_baseline()  # a judge's baseline goes with the version
        if baseline_failures:
            self.journal.event("baseline_not_removed", "; ".join(baseline_failures))
        return outcome

    def _weights_to_zero(self) -> None:
        """Before reverting hosts: a traffic router sends no request to the new version any more
        (every stage with a traffic step, whether or not it got that far: setting 0 is harmless)."""
        for stage in self.r.plan.stages:
            if any(step.weight is not None for step in stage.steps):
                for r in stage.regions:
                    self.actions.set_weight(stage.name, self.r.layout.region_names[r], 0.0)

    def _roll_back_all(self, decision: RollBack, previous: dict[str, str]) -> RunOutcome:
        scope = list(self.r.targets) if decision.hosts is None else [self.r.targets[h] for h in decision.hosts]
        scope = [t for t in scope if t.name in previous]
        reported = self.actions.versions_of(scope)
        todo = [t for t in scope if reported[t.name] != previous[t.name]]
        # One batch after another, each at most `batch_share` of the targets to revert, as decided;
        # a target whose rollback fails does not stop the others: the rollback goes on to the last one.
        size = max(1, int(math.floor(decision.batch_share * len(todo) + 1e-9)))
        failures: list[str] = []
        for i in range(0, len(todo), size):
            _, failed = self.actions.run("rollback", todo[i:i + size], lambda t: previous[t.name],
                                         finish_on_stop=True)
            failures += failed
        wrong = [t.name for t in scope if self.actions.current_version(t) != previous[t.name]]
        if failures or wrong:
            told = "; ".join(failures) or ", ".join(wrong[:5]) + " do not report their previous version"
            message = f"rollback incomplete: {told}; retry with --resume"
            self.journal.event("rollback_incomplete", message)
            return RunOutcome("rollback_incomplete", EXIT_HALTED, message)
        message = (f"rolled back ({decision.reason}): {len(todo)} target(s) returned to their previous version; "
                   f"all {len(scope)} target(s) in scope verified")
        self.journal.event("rolled_back", message)
        return RunOutcome("rolled_back", EXIT_ROLLED_BACK, message)

    def fail(self, decision: Fail) -> RunOutcome:
        self.controls.poll(ENDED)
        message = f"stage {self.r.plan.stages[decision.stage].name}: {decision.reason}; nothing reached production"
        self.journal.event("failed", message)
        return RunOutcome("failed", EXIT_ROLLED_BACK, message)

    def complete(self, decision: Complete) -> RunOutcome:
        """The controller says the version runs everywhere: say so only once every target reports it."""
        self.controls.poll(ENDED)
        reported = self.actions.versions_of(list(self.r.targets))
        wrong = [f"{name} reports {v!r}" for name, v in reported.items() if v != self.r.version]
        if wrong:
            raise Halt(f"the plan is complete but {len(wrong)} target(s) do not run {self.r.version}: "
                       + ", ".join(wrong[:5]) + (" ..." if len(wrong) > 5 else ""))
        message = f"{self.r.version} runs on all {len(self.r.targets)} targets (each one asked)"
        self.journal.event("complete", message)
        return RunOutcome("complete", EXIT_COMPLETE, message)

    # ------------------------------------------------------------ waiting

    def _wait_watching(self, step: Step, until_s: float, watch_from_s: float, *,
                       promotable: bool = False) -> str | None:
        """Wait until `until_s` unless a watched alarm fires first; returns the alarm (name@scope) or None.
        Datapoints are judged as each metric period ends (plus the source's delay), as the simulator does.
        An operator's abort (and, for a bake, `promotable`, a promote of its step) ends the wait early
        too: the caller looks at `self.controls`."""
        watch = self.alarms.watch(step, watch_from_s)
        while True:
            self.actions.check_stop()
            if self._poll() is not None or (promotable and self._promoted()):
                return None
            now = self.clock.now()
            alarm = watch(now, False)
            if alarm is not None:
                return alarm
            if now >= until_s:
                return None
            wake = min(until_s, self.alarms.next_period_end_s(now), now + self._poll_s)
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
        self.controls = OperatorControls(journal, log)
        self.driver = ExecutorDriver(rollout, self.ctrl, self.actions, self.alarms, journal, self.clock, self.stop,
                                     log, self.controls)
        # Notifications follow the journal's events: the one place the run reports what happened.
        self.notifier = Notifier(rollout.inventory.notify, journal,
                                 {"version": rollout.version, "pipeline": rollout.pipeline,
                                  "state_dir": str(Path(journal.path).parent)}, now=self.clock.now, log=log)
        if self.notifier.specs:
            journal.add_listener(self.notifier.on_event)

    @property
    def decision_log(self) -> list[tuple]:
        """decision_row(...) of every decision this process took, as the simulator records them."""
        return self.driver.decision_log

    # ------------------------------------------------------------ entry points

    def start(self) -> RunOutcome:
        """A fresh rollout: record every target's version, then run the plan."""
        self.journal.event("started", f"{self.r.pipeline} -> {self.r.version}")
        return self._guarded(self._start)

    def resume(self, *, force_rollback: bool = False, operator: str = "--rollback") -> RunOutcome:
        """Continue a journaled rollout: settle interrupted actions, then carry out the last decision
        again (or, with `force_rollback`, an operator's rollback, journaled as a decision first, so a
        later plain resume continues it). `operator` says who asked and why."""
        self.journal.event("resumed", f"rollback requested by {operator}" if force_rollback else "")
        return self._guarded(lambda: self._resume(force_rollback, operator))

    def _guarded(self, body: Callable[[], RunOutcome]) -> RunOutcome:
        try:
            return self._body(body)
        finally:  # the run's last notifications go out before it returns (bounded by their time-outs)
            self.notifier.drain()

    def _body(self, body: Callable[[], RunOutcome]) -> RunOutcome:
        try:
            return body()
        except Stopped:
            where = self.journal.last_decision()
            if where is None:
                at = "before the plan"
            elif where.stage is None:
                at = where.kind
            elif where.step is None:
                at = f"{where.kind} {stage_label(self.r.plan, where.stage)}"
            else:
                at = f"{where.kind} {step_label(self.r.plan, where.stage, where.step, where.batch)}"
            message = f"stopped at {at}; every finished action is journaled; continue with --resume"
            self.journal.event("stopped", message)
            return RunOutcome("stopped", EXIT_INTERRUPTED, message)
        except Halt as halt:
            message = f"{halt}; fix the cause, then --resume (or --resume --rollback to undo)"
            self.journal.event("halted", message)
            return RunOutcome("halted", EXIT_HALTED, message)

    def _drive(self, first: Decision | None = None) -> RunOutcome:
        return run_to_end(drive(self.ctrl, self.driver, first))

    def _start(self) -> RunOutcome:
        if not self.journal.previous_versions():
            self.alarms.preflight()  # every watched metric readable and showing data ...
            self.actions.record_previous_versions()  # ... and every target's version, before any is touched
        return self._drive()

    def _resume(self, force_rollback: bool, operator: str) -> RunOutcome:
        last = self.journal.last_decision()
        if last is not None:
            self.ctrl.restore(last.controller)
        if force_rollback and not (last is not None and last.kind == "RollBack" and last.detail.get("automatic")):
            # The operator's rollback is the controller's decision like any other: journaled before
            # anything else is done (even before a crash's leftovers are settled), then carried out.
            # An automatic rollback already under way is continued as it is.
            self.driver.record(self.clock.now(), self.ctrl.operator_rollback(operator))
            last = self.journal.last_decision()
        already = self.journal.last_terminal_event()
        actions_before = len(self.journal.actions())
        resolve_interrupted(self.journal, self.actions, self.r)
        if not self.journal.previous_versions():
            # The run ended before it asked the targets their versions: nothing was touched.
            if last is not None and last.kind == "RollBack":
                message = "nothing to roll back: the rollout had not touched any target"
                self.journal.event("rolled_back", message)
                return RunOutcome("rolled_back", EXIT_ROLLED_BACK, message)
            return self._start()
        if last is None:
            return self._drive()
        if last.kind == "BakeWait":
            # A bake the executor did not watch throughout is restarted: an alarm that fired and
            # cleared while nobody looked must not let the rollout go on.
            # Its judge starts again too: the data it judges is the restarted bake's.
            self.ctrl.restore({**last.controller, "bake_since_s": self.clock.now(), "judgements": 0})
            return self._drive()
        if last.kind == "RollBack" and not last.detail.get("automatic") \
                and last.detail.get("cause") == RollbackCause.JUDGE_INCONCLUSIVE.value:
            answered = self._go_on_after_page(last)
            if answered is not None:
                return answered
        # A final decision (Complete, RollBack, Fail) is carried out again too: it asks every
        # target, so nothing is reported that the targets do not show now.
        outcome = self._drive(decision_from_row(last, self.r))
        if (already is not None and already[0] == outcome.status and outcome.status in FINAL_STATUSES
                and len(self.journal.actions()) == actions_before):
            return RunOutcome(outcome.status, outcome.exit_code,
                              f"already finished: {already[1]}; every target asked again agrees")
        return outcome

    def _go_on_after_page(self, paged: DecisionRow) -> RunOutcome | None:
        """A canary judge paged people (its inconclusive limit, a halted manual rollback); the
        operators' controls asked since are their answer. `deploysim abort`: roll back (an
        operator's rollback). `deploysim promote` of the step: "the canary is fine", so the step's
        bake ends as a promoted one (as promote does during a bake) and the rollout goes on from
        there. Neither: None, and the page stands."""
        stage, step = paged.stage, paged.step
        if stage is None or step is None:
            return None
        self._where = Where(stage, step, label=step_label(self.r.plan, stage, step))
        self.controls.poll(self._where)
        bake = next((row for row in reversed(self.journal.decisions())
                     if row.kind == "BakeWait" and (row.stage, row.step) == (stage, step)), None)
        now = self.clock.now()
        if self.controls.abort is not None:
            decision: Decision = self.ctrl.operator_rollback(self.controls.abort)
        elif (stage, step) in self.controls.promoted and bake is not None:
            self.ctrl.restore(bake.controller)
            decision = self.ctrl.decide(now, Observation(promoted=True))
        else:
            return None
        self.driver.record(now, decision)
        return self._drive(decision)


_ABORTED = "\0aborted"
"""What `_watch_and_controls` returns when an operator's abort was taken during a batch."""


def _utc(t_s: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t_s))
