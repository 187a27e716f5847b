"""The simulator's body: SimPy drives the shared rollout controller over a simulated fleet.

Each version's rollout is the one loop `deploysim.policy.drive`, carried out by a `VersionDriver`
(deploysim/sim_driver.py) through this module's fleet operations (switch hosts, revert changes,
watch alarms). `Simulation.run()` returns the run's records (deploysim/records.py).

Only decisions are events (a stage starts, a batch lands, a bake ends, an alarm fires, a rollback
finishes). Metrics are never stepped period by period: before each wait (a batch, a bake) the
engine asks `AlarmWatch` when the watched alarms would first fire, with the step's remaining
batches applied in advance, and asks again only if a bad change's exposure in a watched region
changes meanwhile.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import simpy

from .alarm_watch import AlarmWatch
from .exposure import ExposureLog
from .fleet import FleetLayout, build_fleet
from .impact import blast_radius, fault_costs, sla_error_counts
from .metrics import BatchOut, MetricModel, Overlay
from .people import LOOK_AHEAD_PERIODS, People
from .policy.controller import BakeWait, RollBack, new_controller
from .policy.decisions import RollbackCause, WatchScope
from .policy.drive import drive
from .policy.plan import PipelinePlan, Step, WatchedAlarm, build_plan, split_batches
from .records import ChangeRecord, RunRecords, SimulationRecords, VersionRecord
from .replay import scenario_world
from .scenario.schema import Scenario
from .seeds import as_seed_sequence, child_seed
from .sim_driver import VersionDriver
from .sim_judge import SimJudge
from .traffic import scope_requests
from .world import SECONDS_PER_MONTH, World


@dataclass
class Version:
    """One build of a pipeline's artifact: every change that had arrived, minus reverted ones."""

    version_id: int
    pipeline: str
    built_s: float
    # Content: the first `upto` changes that arrived in the pipeline, minus those reverted before the build.
    upto: int
    excluded: frozenset[int]
    position: dict[int, int]  # the pipeline's change id -> arrival position (shared, append-only)
    new_changes: tuple[int, ...]
    bad: tuple[int, ...]  # indices into the engine's bad-change table
    process: simpy.Process | None = None
    stage: int = -1
    blocked_s: float = 0.0
    baking_s: float = 0.0
    finished: bool = False

    def contains(self, change_id: int) -> bool:
        pos = self.position.get(change_id)
        return pos is not None and pos < self.upto and change_id not in self.excluded

    def contains_any(self, change_ids: set[int]) -> bool:
        return any(self.contains(c) for c in change_ids)


@dataclass
class PipelineState:
    plan: PipelinePlan
    host_version: np.ndarray
    history: list[list[int]]
    stage_locks: list[simpy.Resource]
    arrived: list[int] = field(default_factory=list)
    position: dict[int, int] = field(default_factory=dict)
    bad_arrived: list[int] = field(default_factory=list)
    reverted: set[int] = field(default_factory=set)
    open_changes: set[int] = field(default_factory=set)  # arrived, neither deployed everywhere nor reverted
    live: list[Version] = field(default_factory=list)  # versions whose rollout is still running
    waiting: dict[int, Version] = field(default_factory=dict)  # stage -> the version queued to enter it


class Simulation:
    """One simulated run of a scenario for a number of 30-day months from one seed; `run()` returns
    its `SimulationRecords`."""

    def __init__(self, scenario: Scenario, *, seed: int | np.random.SeedSequence = 0, months: float = 1.0,
                 world: World | None = None):
        if months <= 0:
            raise ValueError("months must be > 0")
        self.sc = scenario
        self.seed = seed
        self.seed_seq = as_seed_sequence(seed)
        noise_seq = child_seed(self.seed_seq, 1)  # child 0 draws the world, child 2 the SLA's error counts
        self.horizon_s = months * SECONDS_PER_MONTH
        self.months = months
        self.layout: FleetLayout = build_fleet(scenario)
        self.world = world or scenario_world(scenario, seed=self.seed_seq, months=months)
        self.bad_changes = [c for c in self.world.changes if c.bad]
        self.bad_index = {c.change_id: i for i, c in enumerate(self.bad_changes)}
        self.metrics = MetricModel(scenario, self.layout, self.world, self.bad_changes)
        self.exposures = ExposureLog()
        self.period_s = scenario.metric_period
        self.alarms = AlarmWatch(scenario, self.metrics, self.exposures, noise_seq)
        self.judge = SimJudge(self.alarms, noise_seq)  # draws nothing unless a step has a judge
        self.people = (People(scenario, self.layout, self.metrics, self.alarms, self.exposures,
                              child_seed(self.seed_seq, 3))
                       if scenario.humans.detection == "symptoms" else None)
        self.env = simpy.Environment()
        self.records = RunRecords()
        self.region_events = [self.env.event() for _ in range(self.layout.n_regions)]
        self.pipelines: dict[str, PipelineState] = {}
        for name, policy in scenario.policy.pipelines.items():
            plan = build_plan(name, policy, self.layout)
            self.pipelines[name] = PipelineState(
                plan=plan,
                host_version=np.zeros(self.layout.n_hosts, dtype=np.int64),
                history=[[0] for _ in range(self.layout.n_hosts)],
                stage_locks=[simpy.Resource(self.env, capacity=1) for _ in plan.stages],
            )
        for state in self.pipelines.values():
            blockers = state.plan.policy.blockers
            if blockers.incident_alarm:
                self.alarms.watched_names.add(blockers.incident_alarm)
            for stage in state.plan.stages:
                for step in stage.steps:
                    self.alarms.watched_names.update(w.alarm for w in step.watched)
        # Version 0 of every pipeline: what the fleet runs at the start (contains no tracked change).
        self.versions: dict[int, Version] = {0: Version(0, "", 0.0, 0, frozenset(), {}, (), ())}
        self._next_version_id = 1
        self._people_watching: set[int] = set()  # bad changes with a pending human detection
        self._exposure_events: dict[int, simpy.Event] = {}  # bad change -> succeeds when its exposure changes
        # Set to a list to record every decision of the shared controller (see `decision_row`).
        self.decision_log: list[tuple] | None = None

    # ------------------------------------------------------------ running

    def run(self) -> SimulationRecords:
        """Simulate the whole horizon; returns the run's records (what results are built from)."""
        for change in self.world.changes:
            if change.pipeline in self.pipelines:
                self.records.changes[change.change_id] = ChangeRecord(change)
        self.env.process(self._arrivals())
        self.env.run(until=self.horizon_s)
        return self._final_records()

    def _final_records(self) -> SimulationRecords:
        """The run's rows, plus what only the metric model can say once the run is over: each bad
        change's blast radius and the SLA's failed requests per region and period."""
        blast = {c.change_id: blast_radius(self.metrics, self.layout, self.exposures, i, self.horizon_s)
                 for i, c in enumerate(self.bad_changes)}
        rng = np.random.default_rng(child_seed(self.seed_seq, 2))  # sampling of the SLA error counts
        sla_errors = sla_error_counts(self.metrics, self.layout, self.exposures, self.world.requests, rng)
        return SimulationRecords(
            scenario=self.sc, seed=self.seed, months=self.months, horizon_s=self.horizon_s, period_s=self.period_s,
            layout=self.layout, plans={name: state.plan for name, state in self.pipelines.items()},
            timeline=self.records.timeline, changes=self.records.changes, versions=self.records.versions,
            switches=self.records.switches,
            arrivals={name: tuple(state.arrived) for name, state in self.pipelines.items()},
            faults=self.world.faults, bad_change_ids=tuple(c.change_id for c in self.bad_changes),
            exposures=self.exposures.intervals(), blast_radius=blast,
            requests_per_period=self.world.requests, sla_errors_per_period=sla_errors,
            fault_failed_requests=fault_costs(self.metrics),
        )

    def _log(self, pipeline: str, version: int, event: str, **detail) -> None:
        row = {"time_s": float(self.env.now), "pipeline": pipeline, "version": version, "event": event}
        row.update(detail)
        self.records.timeline.append(row)

    def _arrivals(self):
        for change in self.world.changes:
            if change.pipeline not in self.pipelines:
                continue
            if change.arrival_s > self.env.now:
                yield self.env.timeout(change.arrival_s - self.env.now)
            state = self.pipelines[change.pipeline]
            state.position[change.change_id] = len(state.arrived)
            state.arrived.append(change.change_id)
            state.open_changes.add(change.change_id)
            if change.bad:
                state.bad_arrived.append(change.change_id)
            self._build_version(change.pipeline, (change.change_id,))

    def _build_version(self, pipeline: str, new_changes: tuple[int, ...]) -> Version:
        state = self.pipelines[pipeline]
        bad = tuple(sorted(self.bad_index[c] for c in state.bad_arrived if c not in state.reverted))
        version = Version(self._next_version_id, pipeline, float(self.env.now), len(state.arrived),
                          frozenset(state.reverted), state.position, tuple(new_changes), bad)
        state.live.append(version)
        self._next_version_id += 1
        self.versions[version.version_id] = version
        self.records.versions.append(VersionRecord(version.version_id, pipeline, version.built_s, version.upto,
                                                   version.excluded, version.new_changes))
        self._log(pipeline, version.version_id, "version_built", changes=list(new_changes))
        version.process = self.env.process(self._rollout(version))
        return version

    # ------------------------------------------------------------ fleet state

    def _switch(self, state: PipelineState, hosts: np.ndarray, new_id: int) -> None:
        """Hosts start running version `new_id`; exposures of bad changes follow."""
        if hosts.size == 0:
            return
        now = float(self.env.now)
        new = self.versions[new_id]
        old_ids = state.host_version[hosts]
        touched = False
        for old_id in np.unique(old_ids).tolist():
            group = hosts[old_ids == old_id]
            old = self.versions[old_id]
            for c in set(old.bad) - set(new.bad):
                self.exposures.close(c, group, now)
                touched = True
                self._exposure_changed(c)
            for c in new.bad:
                self.exposures.open(c, group, now)
                touched = True
                self._exposure_changed(c)
                record = self.records.changes[self.bad_changes[c].change_id]
                if math.isnan(record.first_bad_s):
                    record.first_bad_s = now
                if c not in self._people_watching:
                    self._people_watching.add(c)
                    self.env.process(self._human_detection(c) if self.people is None else self._people_find(c))
        state.host_version[hosts] = new_id
        self.records.switches.append({"time_s": now, "pipeline": state.plan.name, "version": new_id,
                                      "hosts": np.array(hosts, dtype=np.int64)})
        for h in hosts.tolist():
            state.history[h].append(new_id)
        if touched:
            for r in np.unique(self.layout.host_region[hosts]).tolist():
                event, self.region_events[r] = self.region_events[r], self.env.event()
                event.succeed()

    def _revert(self, pipeline: str, culprits: set[int], hosts_scope: np.ndarray | None, duration_s: float,
                reason: str, stopping: Version | None, batch_share: float = 1.0):
        """Revert changes: hosts that run them return to their last version without them, in batches
        of at most `batch_share` of those hosts (spread over AZs, as a deployment's), each taking
        `duration_s`; hosts that took a reverted change meanwhile are reverted with the last batch."""
        state = self.pipelines[pipeline]
        state.reverted |= culprits
        state.open_changes -= culprits
        # Versions in flight that contain a reverted change are cancelled and rebuilt without it.
        requeue: list[int] = []
        for version in list(state.live):
            if version.finished or version is stopping:
                continue
            if version.contains_any(culprits) and version.process is not None and version.process.is_alive:
                version.finished = True
                version.process.interrupt("cancelled")
                requeue += [c for c in version.new_changes if c not in culprits]
        candidates = np.arange(self.layout.n_hosts) if hosts_scope is None else hosts_scope
        running = np.array([h for h in candidates.tolist()
                            if self.versions[int(state.host_version[h])].contains_any(culprits)], dtype=np.int64)
        batches = split_batches(running, batch_share, self.layout) or (running,)
        reverted = 0
        for b, batch in enumerate(batches):
            yield self.env.timeout(duration_s)
            reverted += self._revert_hosts(state, candidates if b == len(batches) - 1 else batch, culprits)
        self._log(pipeline, stopping.version_id if stopping else -1, "rollback_end", reason=reason,
                  hosts=reverted)
        now = float(self.env.now)
        for c in culprits:
            record = self.records.changes.get(c)
            if record is not None and math.isnan(record.mitigated_s):
                record.mitigated_s = now
        if requeue:
            self._build_version(pipeline, tuple(requeue))

    def _revert_hosts(self, state: PipelineState, hosts: np.ndarray, culprits: set[int]) -> int:
        """Hosts among `hosts` running a culprit return to their last version without any; returns how many."""
        targets: dict[int, list[int]] = {}
        for h in hosts.tolist():
            current = self.versions[int(state.host_version[h])]
            if not current.contains_any(culprits):
                continue
            target = 0
            for vid in reversed(state.history[h]):
                if not self.versions[vid].contains_any(culprits):
                    target = vid
                    break
            targets.setdefault(target, []).append(h)
        for target, group in targets.items():
            self._switch(state, np.array(group, dtype=np.int64), target)
        return sum(len(v) for v in targets.values())

    def _exposure_changed(self, bad_idx: int) -> None:
        event = self._exposure_events.pop(bad_idx, None)
        if event is not None and not event.triggered:
            event.succeed()

    def _exposure_change(self, bad_idx: int) -> simpy.Event:
        """An event that succeeds the next time the bad change starts or stops running on a host."""
        event = self._exposure_events.get(bad_idx)
        if event is None:
            event = self._exposure_events[bad_idx] = self.env.event()
        return event

    def _people_find(self, bad_idx: int):
        """People find a bad change from its symptoms (deploysim/people.py), then revert it.

        Looks ahead a day at a time with the exposures known so far, and looks again whenever the
        change starts or stops running somewhere. A change that shows nothing is never found.
        """
        people = self.people
        assert people is not None
        change = self.bad_changes[bad_idx]
        defect = change.defect
        assert defect is not None
        state = self.pipelines[change.pipeline]
        look_ahead_s = LOOK_AHEAD_PERIODS * self.period_s
        attempt = 0
        while change.change_id not in state.reverted:
            reports_left = people.report_threshold(change.change_id, attempt)
            symptom = None
            while symptom is None and change.change_id not in state.reverted:
                now = float(self.env.now)
                if not self.exposures.running(bad_idx):
                    yield self._exposure_change(bad_idx)
                    continue
                until = min(now + look_ahead_s, self.horizon_s)
                if until <= now:
                    return
                found = people.next_symptom(bad_idx, defect, now, until, reports_left)
                wake = min(found.time_s, until) if found is not None else until
                timeout = self.env.timeout(max(wake - now, 0.0))
                yield simpy.AnyOf(self.env, [timeout, self._exposure_change(bad_idx)])
                later = float(self.env.now)
                if found is not None and later >= found.time_s:
                    symptom = found
                else:
                    reports_left -= people.reports_between(bad_idx, defect, now, later)
            if symptom is None:
                return
            self._log(change.pipeline, -1, "symptom", change=change.change_id, kind=symptom.kind,
                      region=self.layout.region_names[symptom.region], alarm=symptom.alarm)
            yield self.env.timeout(people.response_s(change.change_id, attempt, symptom))
            attempt += 1
            # Nothing to revert if it was reverted meanwhile; if it runs nowhere now, people look
            # again when it comes back.
            if change.change_id in state.reverted or not self.exposures.running(bad_idx):
                continue
            record = self.records.changes[change.change_id]
            record.detected_s = float(self.env.now)
            record.detected_by = "people"
            record.outcome = "reverted_by_people"
            self._log(change.pipeline, -1, "human_detection", change=change.change_id, symptom=symptom.kind)
            yield from self._revert(change.pipeline, {change.change_id}, None, change.human_mitigation_s,
                                    "people", None)
            return

    def _human_detection(self, bad_idx: int):
        change = self.bad_changes[bad_idx]
        yield self.env.timeout(change.human_detection_delay_s)
        record = self.records.changes[change.change_id]
        self._people_watching.discard(bad_idx)
        # Nothing to notice if it was reverted meanwhile, or runs nowhere now (people look again
        # after the same delay if it comes back).
        if change.change_id in self.pipelines[change.pipeline].reverted or not self.exposures.running(bad_idx):
            return
        self._people_watching.add(bad_idx)
        record.detected_s = float(self.env.now)
        record.detected_by = "people"
        record.outcome = "reverted_by_people"
        self._log(change.pipeline, -1, "human_detection", change=change.change_id)
        yield from self._revert(change.pipeline, {change.change_id}, None, change.human_mitigation_s,
                                "people", None)

    # ------------------------------------------------------------ observations

    def _incident(self, plan: PipelinePlan, stage: int) -> bool:
        """An infrastructure fault or the incident alarm is active in the stage's regions."""
        now = float(self.env.now)
        regions = plan.stages[stage].regions
        for f in self.world.faults:
            if f.region in regions and f.start_s <= now < f.end_s:
                return True
        name = plan.policy.blockers.incident_alarm
        if name is None:
            return False
        watched = tuple(
            WatchedAlarm(name, WatchScope.REGION, self.layout.region_names[r], self.layout.hosts_in_region(r))
            for r in regions
        )
        return self.alarms.in_alarm(watched, now)

    def _requests_seen(self, hosts: np.ndarray, since_s: float, now_s: float) -> dict[str, float]:
        """Requests served by the scope in whole periods since the bake began, per API and in all."""
        k0 = int(math.ceil(since_s / self.period_s - 1e-9))
        k1 = int(math.floor(now_s / self.period_s + 1e-9))
        total = float(scope_requests(self.layout, self.world.requests, hosts, k0, k1).sum()) if k1 > k0 else 0.0
        seen = {api: total * share for api, share in self.sc.traffic.apis.items()}
        seen["All"] = total
        return seen

    def _bake_ready_s(self, step: Step, wait: BakeWait) -> float:
        """When the bake's duration, request and datapoint minimums are all met (or its deadline)."""
        ready = wait.min_until_s
        p = self.period_s
        k_since = int(math.ceil(wait.since_s / p - 1e-9))
        ready = max(ready, (k_since + wait.min_datapoints) * p)
        if wait.min_requests and step.hosts.size:
            k_end = min(int(math.ceil(wait.deadline_s / p)), self.world.requests.shape[1])
            cum = np.cumsum(scope_requests(self.layout, self.world.requests, step.hosts, k_since, k_end))
            for api, needed in wait.min_requests:
                share = 1.0 if api == "All" else self.sc.traffic.apis[api]
                idx = int(np.searchsorted(cum * share, needed - 1e-9))
                ready = max(ready, (k_since + idx + 1) * p if idx < cum.size else wait.deadline_s)
        return min(max(ready, wait.min_until_s), max(wait.deadline_s, wait.min_until_s))

    # ------------------------------------------------------------ one version's rollout

    def _rollout(self, version: Version):
        """One version's rollout: the shared controller decides, a `VersionDriver` carries it out."""
        state = self.pipelines[version.pipeline]
        driver = VersionDriver(self, version)
        try:
            yield from drive(new_controller(state.plan, self.sc, self.sc.start), driver)
        except simpy.Interrupt as interrupt:
            self._log(version.pipeline, version.version_id, str(interrupt.cause))
            driver.end_baseline()  # a cancelled or superseded version's baseline hosts go too
            if interrupt.cause != "superseded":
                self._accumulate_waits(version)
            else:
                version.new_changes = ()
        finally:
            state.live.remove(version)
            driver.release_locks()

    def _take_out_of_service(self, hosts: np.ndarray, duration_s: float) -> None:
        """A batch's hosts stop serving while they are replaced; only a batch that leaves the rest
        of its region over capacity changes the metrics, so only those are recorded."""
        now = float(self.env.now)
        for r in np.unique(self.layout.host_region[hosts]).tolist():
            in_region = hosts[self.layout.host_region[hosts] == r]
            if self.metrics.batch_sheds(r, in_region, now, now + duration_s):
                self.metrics.batches_out.append(BatchOut(r, in_region, now, now + duration_s))
                event, self.region_events[r] = self.region_events[r], self.env.event()
                event.succeed()

    def _accumulate_waits(self, version: Version) -> None:
        for c in version.new_changes:
            record = self.records.changes.get(c)
            if record is not None:
                record.blocked_s += version.blocked_s
                record.baking_s += version.baking_s

    def _wait_watching(self, version: Version, step: Step, until_s: float, planned: dict[int, float]):
        """Wait until `until_s` unless a watched alarm fires first; returns the alarm's name or None."""
        watched = step.watched
        regions = np.unique(self.layout.host_region[step.hosts]).tolist() if step.hosts.size else []
        while self.env.now < until_s:
            now = float(self.env.now)
            overlay = None
            if planned:
                switch = np.full(self.layout.n_hosts, np.inf)
                hosts = np.fromiter(planned.keys(), dtype=np.int64)
                switch[hosts] = np.fromiter(planned.values(), dtype=float)
                overlay = Overlay(switch, self.versions[version.version_id].bad)
            fire_s, name = self.alarms.first_alarm(watched, now, until_s, overlay)
            wake = min(fire_s, until_s)
            changed = [self.region_events[r] for r in regions]
            timeout = self.env.timeout(max(0.0, wake - now))
            if changed:
                yield simpy.AnyOf(self.env, [timeout, *changed])
            else:
                yield timeout
            if timeout.processed or self.env.now >= wake:
                if fire_s <= until_s and self.env.now >= fire_s:
                    return name
                return None
        return None

    def _roll_back(self, version: Version, decision: RollBack):
        """Carry out a rollback as the controller decided it (hosts, automatic or not, duration);
        only a manual rollback's speed comes from the world: people revert when they act."""
        state = self.pipelines[version.pipeline]
        now = float(self.env.now)
        alarm = decision.alarm or decision.reason
        if decision.cause in (RollbackCause.JUDGE_FAILED, RollbackCause.JUDGE_INCONCLUSIVE):
            # Detected by the step's canary judge: named as alarms are, "judge@<step>".
            alarm = f"judge@{state.plan.stages[decision.stage].steps[decision.step].name}"
        self._log(version.pipeline, version.version_id, "alarm", stage=state.plan.stages[decision.stage].name,
                  alarm=alarm)
        version.finished = True
        culprits = set(version.new_changes)
        # Noise (or an older change, or a fault) fired the alarm if the version brought no bad change.
        false_alarm = not any(self.records.changes[c].change.bad for c in culprits)
        for c in culprits:
            record = self.records.changes[c]
            record.false_rollback = false_alarm
            record.outcome = "rolled_back"
            if record.change.bad and math.isnan(record.detected_s):
                record.detected_s = now
                record.detected_by = alarm
        scope = None if decision.hosts is None else np.array(decision.hosts, dtype=np.int64)
        self._log(version.pipeline, version.version_id, "rollback_start", stage=state.plan.stages[decision.stage].name,
                  automatic=decision.automatic)
        if decision.automatic:
            duration = decision.duration_s
        else:
            # The alarm pages people, who halt the rollout and revert at manual speed.
            duration = max(self.records.changes[c].change.human_mitigation_s for c in culprits) if culprits else 0.0
        yield from self._revert(version.pipeline, culprits, scope, duration, "alarm", version,
                                decision.batch_share if decision.automatic else 1.0)

    # ---- public queries (keyed noise)
    # What the simulated alarms see, for any scope and window, given the exposures recorded so far.
    # Noise is keyed by (scope, metric, period), so asking again, or in another order, gives the same.

    def datapoints(self, alarm: str, hosts, k0: int, k1: int) -> np.ndarray:
        """Metric alarm `alarm`'s noisy datapoints over `hosts` for periods [k0, k1); NaN where missing."""
        return self.alarms.datapoints(alarm, np.asarray(hosts, dtype=np.int64), k0, k1)

    def alarm_states(self, alarm: str, hosts, k0: int, k1: int) -> np.ndarray:
        """ALARM flags (True = ALARM) of alarm `alarm` (metric or composite) over `hosts` for periods [k0, k1)."""
        return self.alarms.states(alarm, np.asarray(hosts, dtype=np.int64), k0, k1)

    # ---- end of public queries
