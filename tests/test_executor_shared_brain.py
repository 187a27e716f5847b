"""One brain, two bodies: the same policy driven by the simulator and by the real executor, on the
same timeline of alarm states, makes the same sequence of decisions.

What is faked, and why: only the executor's metric source and clock. `ReplaySource` answers the
executor's metric queries with the datapoints the simulator's metric model gives for the same hosts
and periods of the simulated run (from the run's recorded exposure intervals), so both bodies see
one timeline of alarm states; `StepClock` lets the executor's bakes of minutes pass in no real time.
The adapter is real: the command adapter deploys a fleet of version files through separate processes.
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import yaml
from conftest import bad_change, good_change, patched, tiny_scenario_dict
from executor_support import command_inventory, file_fleet, versions

import deploysim
from deploysim.engine import Simulation
from deploysim.executor import Executor, StepClock, load_rollout
from deploysim.executor.command_adapter import CommandAdapter
from deploysim.executor.journal import Journal
from deploysim.exposure import ExposureLog
from deploysim.fleet import host_names
from deploysim.metrics import MetricModel
from deploysim.noise import NoiseStreams
from deploysim.traffic import scope_requests
from deploysim.world import world_for_seed

CHANGE_ARRIVAL_S = 3600.0  # an hour in, so every alarm has history before the rollout begins


class ReplaySource:
    """Metric source replaying the simulated run (noise-free scenarios, so exact): datapoints come
    from the metric model asked about the run's recorded exposure intervals, requests from the run's
    recorded traffic."""

    def __init__(self, scenario, world, records, start_unix_s: float):
        self.records = records
        self.apis = scenario.traffic.apis
        self.model = MetricModel(scenario, records.layout, world, [c for c in world.changes if c.bad])
        self.exposures = ExposureLog.from_intervals(records.exposures)
        self.noise = NoiseStreams(np.random.SeedSequence(0))
        self.start = start_unix_s
        self.p = records.period_s

    def _k(self, t_s: float) -> int:
        return int(round((t_s - self.start) / self.p))

    def datapoints(self, alarm, targets, start_s, end_s, period_s):
        assert period_s == self.p
        k0, k1 = self._k(start_s), self._k(end_s)
        hosts = np.array([t.host for t in targets], dtype=np.int64)
        m = self.model.expected(hosts, k0, k1, self.exposures)
        # The executor also asks for alarms of its own (e.g. a bake's datapoint count), so observe the
        # alarm's metric directly; the scenario is noise-free, so which keyed stream is used does not matter.
        return self.model.observe(m, alarm.metric, self.noise.scope(hosts), api=alarm.api,
                                  statistic=alarm.statistic, dependency=alarm.dependency)

    def requests(self, targets, start_s, end_s, api=None):
        hosts = np.array([t.host for t in targets], dtype=np.int64)
        total = float(scope_requests(self.records.layout, self.records.requests_per_period, hosts,
                                     self._k(start_s), self._k(end_s)).sum())
        return total * (1.0 if api in (None, "All") else self.apis[api])


def _collapse(rows):
    """(kind, stage, step, batch) per decision; repeated BakeWaits (polling for data) count once."""
    out = [row[2:] for row in rows]
    return [key for key, _ in itertools.groupby(out)]


def both_bodies(tmp_path, data: dict, change_kind: str, months: float = 0.02):
    scenario = deploysim.scenario_from_dict(data)
    change = (bad_change(scenario, 0, CHANGE_ARRIVAL_S) if change_kind == "bad"
              else good_change(0, CHANGE_ARRIVAL_S))
    world = dataclasses.replace(world_for_seed(scenario, seed=0, months=months), changes=(change,), faults=())
    sim = Simulation(scenario, seed=0, months=months, world=world)
    sim.decision_log = []
    records = sim.run()
    simulated = [row for row in sim.decision_log if row[1] == 1]

    names = list(host_names(records.layout))
    fleet = file_fleet(tmp_path / "fleet", names)
    inventory = command_inventory(fleet, names)
    rollout = load_rollout(yaml.safe_dump(data), "scenario", yaml.safe_dump(inventory), "inventory",
                           tmp_path, "v2", None)
    start_unix = scenario.start.timestamp()
    journal = Journal.in_dir(tmp_path)
    executor = Executor(
        rollout,
        CommandAdapter(rollout.inventory.adapter),
        ReplaySource(scenario, world, records, start_unix),
        journal,
        clock=StepClock(start_unix + CHANGE_ARRIVAL_S),
    )
    outcome = executor.start()
    return simulated, executor, outcome, versions(fleet, names)


def test_a_bad_change_caught_at_one_box_rolls_back_in_both_bodies(tmp_path):
    simulated, executor, outcome, final = both_bodies(tmp_path, tiny_scenario_dict(), "bad")
    assert _collapse(simulated)[-1] == ("RollBack", 0, 0, None)
    assert _collapse(executor.decision_log) == _collapse(simulated)
    assert outcome.status == "rolled_back" and outcome.exit_code == 1
    assert set(final.values()) == {"v1"}


def test_a_good_change_behind_a_time_window_and_a_bake_minimum_completes_in_both_bodies(tmp_path):
    data = patched(tiny_scenario_dict(), "policy.pipelines.code.blockers.time_windows",
                   [{"days": ["Mon", "Tue", "Wed", "Thu", "Fri"], "start_hour": 9, "end_hour": 17}])
    data = patched(data, "policy.pipelines.code.stages.0.one_box.bake",
                   {"duration": "10m", "min_requests": {"All": 20000}, "min_datapoints": 12})
    simulated, executor, outcome, final = both_bodies(tmp_path, data, "good")
    kinds = [row[0] for row in _collapse(simulated)]
    assert kinds[:2] == ["EnterStage", "WaitBlocker"] and kinds[-1] == "Complete"
    assert _collapse(executor.decision_log) == _collapse(simulated)
    assert outcome.status == "complete" and set(final.values()) == {"v2"}


def test_a_composite_alarm_on_a_batched_wave_rolls_back_mid_wave_in_both_bodies(tmp_path):
    data = tiny_scenario_dict()
    data["alarms"]["metric"].append({"name": "p99", "metric": "latency_p99_ms", "threshold": 10000})
    data["alarms"]["composite"] = [{"name": "health", "rule": 'ALARM("fault_rate") OR ALARM("p99")'}]
    data = patched(data, "policy.pipelines.code.watch", {"wave": ["health"]})
    data = patched(data, "policy.pipelines.code.stages.0.batching", {"max_share": 0.34, "duration": "5m"})
    simulated, executor, outcome, final = both_bodies(tmp_path, data, "bad")
    assert _collapse(simulated)[-1] == ("RollBack", 0, 1, None)
    assert _collapse(simulated)[-2] == ("DeployBatch", 0, 1, 2)  # the alarm came while the wave was deploying
    assert _collapse(executor.decision_log) == _collapse(simulated)
    assert outcome.status == "rolled_back" and set(final.values()) == {"v1"}


def test_the_incident_blocker_reads_the_same_alarm_in_both_bodies(tmp_path):
    """Traffic peaks at 14:00; an aggregate alarm on high request counts plays the incident. The
    change arrives at 13:00, so the stage waits on the incident until the peak has passed."""
    data = patched(tiny_scenario_dict(), "traffic", {"requests_per_min": 6000, "daily_amplitude": 0.5,
                                                     "peak_hour_local": 14, "weekend_factor": 1.0, "noise_cv": 0.0})
    data["alarms"]["metric"].append({"name": "busy", "metric": "requests", "threshold": 8800,
                                     "evaluation_periods": 1, "datapoints_to_alarm": 1})
    data = patched(data, "policy.pipelines.code.blockers", {"incidents": True, "incident_alarm": "busy",
                                                             "recheck": "15m"})
    global CHANGE_ARRIVAL_S
    arrival, CHANGE_ARRIVAL_S = CHANGE_ARRIVAL_S, 13 * 3600.0
    try:
        simulated, executor, outcome, _ = both_bodies(tmp_path, data, "good", months=0.05)
    finally:
        CHANGE_ARRIVAL_S = arrival
    kinds = [row[0] for row in _collapse(simulated)]
    assert kinds[:2] == ["EnterStage", "WaitBlocker"] and kinds[-1] == "Complete"
    assert sum(1 for row in simulated if row[2] == "WaitBlocker") > 1  # re-checked while the alarm held
    assert [row[2:] for row in executor.decision_log] == [row[2:] for row in simulated]
