"""One judge, two bodies: the real executor, fed the simulator's own datapoints of the canary and its
baseline (noise included), reaches the simulator's verdicts at the same moments and makes the same
decisions; its baseline targets really get the old version and are reverted when the bake is over.

What is faked, and why: only the metric source and the clock. `SimulationSource` answers the
executor's queries from the finished simulated run (its keyed noise, its recorded exposures), mapping
the inventory's baseline target to the simulator's deployed baseline; `StepClock` lets bakes of
minutes pass in no real time. The adapter is real: the command adapter deploys a fleet of version files.
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
import yaml
from conftest import bad_change, good_change, tiny_scenario_dict
from executor_support import command_inventory, file_fleet, versions
from test_judge_simulation import BOX, KAYENTA, judged_scenario

import deploysim
from deploysim.engine import Simulation
from deploysim.executor import Executor, StepClock, load_rollout
from deploysim.executor.command_adapter import CommandAdapter
from deploysim.executor.journal import Journal
from deploysim.fleet import host_names
from deploysim.scenario.loader import ScenarioError
from deploysim.traffic import scope_requests
from deploysim.world import world_for_seed

ARRIVAL_S = 3600.0
SPARE = "spare-1"


class SimulationSource:
    """Metric source answering from a finished simulated run: fleet targets read the simulator's
    datapoints of their hosts (keyed noise, recorded exposures); the baseline target reads the
    simulator's deployed baseline of `canary` (its own keyed noise, no bad change)."""

    def __init__(self, sim: Simulation, canary: np.ndarray, start_unix_s: float):
        self.sim, self.canary, self.start, self.p = sim, canary, start_unix_s, float(sim.period_s)
        self.n_hosts = sim.layout.n_hosts

    def _k(self, t_s: float) -> int:
        return int(round((t_s - self.start) / self.p))

    def datapoints(self, alarm, targets, start_s, end_s, period_s):
        assert period_s == self.p
        k0, k1 = self._k(start_s), self._k(end_s)
        hosts = np.array([t.host for t in targets], dtype=np.int64)
        if (hosts >= self.n_hosts).all():
            noise = self.sim.judge.baseline_noise.scope(self.canary)
            return self.sim.alarms.observed(alarm, self.canary, k0, k1, noise=noise, healthy=True)
        return self.sim.alarms.observed(alarm, hosts, k0, k1)

    def requests(self, targets, start_s, end_s, api=None):
        hosts = np.array([t.host for t in targets if t.host < self.n_hosts], dtype=np.int64)
        total = float(scope_requests(self.sim.layout, self.sim.world.requests, hosts,
                                     self._k(start_s), self._k(end_s)).sum())
        return total * (1.0 if api in (None, "All") else self.sim.sc.traffic.apis[api])


def _collapse(rows):
    return [key for key, _ in itertools.groupby(row[2:] for row in rows)]


def both_bodies(tmp_path, scenario, change_kind: str, seed: int = 1):
    data = scenario.model_dump(mode="json", exclude_none=True)
    change = bad_change(scenario, 0, ARRIVAL_S) if change_kind == "bad" else good_change(0, ARRIVAL_S)
    world = dataclasses.replace(world_for_seed(scenario, seed=seed, months=0.02), changes=(change,), faults=())
    sim = Simulation(scenario, seed=seed, months=0.02, world=world)
    sim.decision_log = []
    sim.run()
    simulated = [row for row in sim.decision_log if row[1] == 1]
    tl = sim.records.timeline
    sim_verdicts = [(row["time_s"], row["verdict"]) for row in tl if row["event"] == "judgement"]

    names = list(host_names(sim.layout))
    fleet = file_fleet(tmp_path / "fleet", names)
    file_fleet(fleet, [SPARE], version="spare-os")
    inventory = command_inventory(fleet, names)
    inventory["baseline_targets"] = {SPARE: {"address": f"file:{SPARE}"}}
    rollout = load_rollout(yaml.safe_dump(data), "scenario", yaml.safe_dump(inventory), "inventory",
                           tmp_path, "v2", None)
    start = scenario.start.timestamp()
    clock = StepClock(start + ARRIVAL_S)
    journal = Journal.in_dir(tmp_path, clock=clock)
    canary = rollout.plan.stages[0].steps[0].hosts
    executor = Executor(rollout, CommandAdapter(rollout.inventory.adapter), SimulationSource(sim, canary, start),
                        journal, clock=clock)
    outcome = executor.start()
    judged_at = [row for row in journal.events() if row[2] == "judgement"]
    exec_verdicts = [(t - start, detail.split(": ", 2)[1]) for _, t, _, detail in judged_at]
    return simulated, sim_verdicts, executor, exec_verdicts, outcome, versions(fleet, [*names, SPARE]), journal


@pytest.mark.parametrize(("change", "defect", "expected"), [
    ("bad", 0.2, "fail"),  # a large defect: caught at the first judgement
    ("bad", 0.012, None),  # a small one: whatever the verdicts, both bodies reach the same ones
    ("good", 0.2, "pass"),
])
def test_the_executor_fed_the_simulators_datapoints_reaches_the_same_verdicts(tmp_path, change, defect, expected):
    scenario = judged_scenario(defect_error_rate=defect)
    simulated, sim_verdicts, executor, exec_verdicts, outcome, final, journal = both_bodies(tmp_path, scenario, change)
    assert sim_verdicts and exec_verdicts == sim_verdicts
    assert _collapse(executor.decision_log) == _collapse(simulated)
    if expected is not None:
        assert sim_verdicts[-1][1] == expected
    if expected == "fail":
        assert len(sim_verdicts) == 1 and outcome.status == "rolled_back"
        assert {v for n, v in final.items() if n != SPARE} == {"v1"}
    if expected == "pass":
        assert outcome.status == "complete" and {v for n, v in final.items() if n != SPARE} == {"v2"}
    # The baseline target ran the old version beside the canary, and is back on its own afterwards.
    deployed = [a for a in journal.actions() if a.target == SPARE and a.kind == "deploy" and a.phase == "done"]
    assert deployed and deployed[0].version == "v1"
    assert final[SPARE] == "spare-os"


def test_low_traffic_pages_people_in_both_bodies_after_the_inconclusive_limit(tmp_path):
    scenario = judged_scenario({**KAYENTA, "inconclusive": {"limit": 1, "then": "page"}}, rpm=60)
    simulated, sim_verdicts, executor, exec_verdicts, outcome, final, _ = both_bodies(tmp_path, scenario, "bad")
    assert {v for _, v in sim_verdicts} == {"inconclusive"} and exec_verdicts == sim_verdicts
    assert _collapse(executor.decision_log) == _collapse(simulated)
    assert outcome.status == "halted" and "canary judge pages people" in outcome.message
    assert final[SPARE] == "v1"  # a page leaves every target as it is, the baseline too, for people to look at


def test_an_inventory_without_enough_baseline_targets_is_refused_before_anything_is_touched(tmp_path):
    data = judged_scenario().model_dump(mode="json", exclude_none=True)
    names = list(host_names(deploysim.fleet.build_fleet(deploysim.scenario_from_dict(tiny_scenario_dict()))))
    inventory = command_inventory(file_fleet(tmp_path / "fleet", names), names)
    with pytest.raises(ScenarioError, match=r"baseline_targets.*deploys a baseline of 1 host"):
        load_rollout(yaml.safe_dump(data), "scenario", yaml.safe_dump(inventory), "inventory", tmp_path, "v2", None)
    assert BOX  # the judged step is the one-box of test_judge_simulation's scenario


def test_the_plan_says_how_a_step_is_judged_and_when_its_bake_ends():
    from deploysim.executor.plan_text import expected_timeline, format_plan
    from deploysim.executor.rollout import load_plan
    from deploysim.policy import BakeWait, DeployBaseline, RemoveBaseline

    data = judged_scenario().model_dump(mode="json", exclude_none=True)
    plan = load_plan(yaml.safe_dump(data), "scenario", "v2", None)
    text = format_plan(plan, 0.0)
    assert "judged (kayenta) every 5.0m on error_rate against 1 baseline target(s)" in text
    timeline = expected_timeline(plan, 0.0)
    kinds = [type(d).__name__ for _, d in timeline]
    assert kinds[:3] == ["EnterStage", "DeployBaseline", "DeployBatch"]
    removed = next(t for t, d in timeline if isinstance(d, RemoveBaseline))
    bake_start = next(t for t, d in timeline if isinstance(d, BakeWait))
    assert removed - bake_start == 1800.0  # six passing judgements, the bake's 30 min
    assert any(isinstance(d, DeployBaseline) for _, d in timeline)


@pytest.mark.parametrize("change", ["bad", "good"])
def test_a_flagger_judge_reaches_the_same_verdicts_in_both_bodies_and_deploys_no_baseline(tmp_path, change):
    judge = {"kind": "flagger", "interval": "5m", "threshold": 1, "iterations": 3,
             "metrics": [{"metric": "error_rate", "max": 0.05}]}
    simulated, sim_verdicts, executor, exec_verdicts, outcome, final, journal = both_bodies(
        tmp_path, judged_scenario(judge), change)
    assert sim_verdicts and exec_verdicts == sim_verdicts
    assert _collapse(executor.decision_log) == _collapse(simulated)
    assert outcome.status == ("rolled_back" if change == "bad" else "complete")
    assert not [a for a in journal.actions() if a.target == SPARE] and final[SPARE] == "spare-os"


@pytest.mark.parametrize(("answer", "status", "fleet_on"), [("promote", "complete", "v2"),
                                                             ("abort", "rolled_back", "v1")])
def test_people_paged_by_the_judge_answer_with_promote_or_abort_and_resume(tmp_path, answer, status, fleet_on):
    scenario = judged_scenario({**KAYENTA, "inconclusive": {"limit": 1, "then": "page"}}, rpm=60)
    _, _, executor, _, paged, _, journal = both_bodies(tmp_path, scenario, "bad")
    assert paged.status == "halted" and f"deploysim promote {tmp_path}" in paged.message
    # A plain --resume without an answer pages again: the rollout stays as it is.
    again = Executor(executor.r, executor.adapter, executor.source, journal, clock=executor.clock).resume()
    assert again.status == "halted" and "canary judge pages people" in again.message
    journal.request_control(answer, "ann@ops", "looked at the dashboards")
    answered = Executor(executor.r, executor.adapter, executor.source, journal, clock=executor.clock).resume()
    assert answered.status == status, answered.message
    final = versions(tmp_path / "fleet", [*(t.name for t in executor.r.targets), SPARE])
    assert {v for n, v in final.items() if n != SPARE} == {fleet_on}
    assert final[SPARE] == "spare-os"  # the baseline went, whichever way the rollout ended
    taken = [c for c in journal.controls() if c.kind == answer]
    assert [c.effect for c in taken] == ["promoted" if answer == "promote" else "aborted"]
