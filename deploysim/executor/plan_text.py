"""`deploysim execute --plan`: what a rollout would do and how long it should take, touching nothing.

The expected timeline comes from the shared controller itself, driven by the one rollout loop
(`deploysim.policy.drive`) on a virtual clock that starts now, with the happy path's observations
(no alarm, no incident, every bake gets its minimum data), so time windows, holidays and freezes
are judged exactly as the run will judge them.
"""

from __future__ import annotations

import time

from ..durations import format_duration_s
from ..judge.verdict import Judgement, Verdict
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
    WaitApproval,
    WaitBlocker,
)
from ..policy.drive import drive, run_to_end
from .labels import stage_label, step_label
from .rollout import Rollout, RolloutPlan, new_controller

MAX_DECISIONS = 100_000
"""A plan longer than this is cut short (its expected duration is then unknown)."""


class _TooLong(Exception):
    pass


class PlanningDriver:
    """Carries decisions out on a virtual clock that starts at `start_s`, with the happy path's
    observations: no alarm, no incident, and every bake sees its minimum data as soon as it can."""

    def __init__(self, start_s: float, period_s: float):
        self.t = start_s
        self.period_s = period_s
        self.timeline: list[tuple[float, Decision]] = []

    def now(self) -> float:
        return self.t

    def record(self, now_s: float, decision: Decision) -> None:
        if len(self.timeline) >= MAX_DECISIONS:
            raise _TooLong()
        self.timeline.append((now_s, decision))

    def enter_stage(self, decision: EnterStage) -> Observation:
        return Observation()

    def wait_blocker(self, decision: WaitBlocker) -> Observation:
        self.t = decision.until_s
        return Observation()

    def wait_approval(self, decision: WaitApproval) -> Observation:
        return Observation(approved=True)  # the plan cannot know when a person approves: it counts no wait

    def deploy_batch(self, decision: DeployBatch) -> Observation:
        self.t += decision.duration_s
        return Observation()

    def deploy_baseline(self, decision: DeployBaseline) -> Observation:
        return Observation()

    def remove_baseline(self, decision: RemoveBaseline) -> Observation:
        return Observation()

    def bake(self, decision: BakeWait) -> Observation:
        judgement = None
        if decision.judge_at_s is not None:  # a judged bake waits for each judgement; all pass
            self.t = max(self.t, decision.judge_at_s)
            judgement = Judgement(Verdict.PASS, "the plan assumes every judgement passes")
        else:
            self.t = max(self.t, decision.min_until_s, decision.since_s + decision.min_datapoints * self.period_s)
        return Observation(requests_seen=dict(decision.min_requests), datapoints_seen=decision.min_datapoints,
                           judgement=judgement)

    def roll_back(self, decision: RollBack) -> None:
        return None

    def fail(self, decision: Fail) -> None:
        return None

    def complete(self, decision: Complete) -> None:
        return None


def expected_timeline(rollout: RolloutPlan, start_s: float) -> list[tuple[float, Decision]]:
    """(time, decision) of every decision of the happy path from `start_s` (Unix seconds), as the
    one rollout loop takes them with a `PlanningDriver`."""
    driver = PlanningDriver(start_s, float(rollout.scenario.metric_period))
    try:
        run_to_end(drive(new_controller(rollout), driver))
    except _TooLong:
        pass
    return driver.timeline


def _hosts(rollout: RolloutPlan, hosts, limit: int = 8) -> str:
    names = [rollout.targets[h].name + (f" ({rollout.targets[h].address})" if rollout.targets[h].address else "")
             for h in hosts.tolist()]
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _utc(t_s: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(t_s))


def _inventory_lines(rollout: RolloutPlan) -> list[str]:
    """How the rollout would deploy and observe: the inventory's adapter and metric source."""
    if not isinstance(rollout, Rollout):
        return ["No inventory: hosts are named by the scenario's fleet ({cell}-h{k}), as an inventory names "
                "its targets; give --inventory to see their addresses, adapter and metric source",
                f"Metrics: one datapoint per {format_duration_s(rollout.scenario.metric_period)}"]
    inv = rollout.inventory
    adapter = inv.adapter
    how = (f"local fleet in {adapter.fleet_dir}" if adapter.kind == "local"
           else "command: " + " ".join(adapter.deploy or []))
    source = {"prometheus": f"Prometheus at {inv.metrics.url}", "probe": "HTTP probes of the targets",
              "command": "command: " + " ".join(inv.metrics.command or [])}[inv.metrics.kind]
    return [f"Deploys with {how} (time-out {format_duration_s(adapter.timeout)}, {adapter.retries} retries, "
            f"{adapter.parallel} at a time)",
            f"Metrics from {source}, one datapoint per {format_duration_s(rollout.scenario.metric_period)}"]


def _judge_line(rollout: RolloutPlan, step) -> str:
    """What a step's canary judge does, in one line."""
    judge = step.judge
    metrics = ", ".join(m.label for m in judge.metrics)
    against = {"deploy": f"against {step.hosts.size} baseline target(s) of the old version deployed beside it "
                         + (f"({', '.join(t.name for t in rollout.baseline_targets[:step.hosts.size])})"
                            if isinstance(rollout, Rollout) else "(the inventory's baseline_targets)"),
               "rest-of-scope": "against the stage's targets not yet deployed",
               "none": "on the canary's values alone"}[judge.baseline_kind]
    then = "roll back" if judge.inconclusive.then == "rollback" else "page people (halt)"
    return (f"judged ({judge.kind}) every {format_duration_s(judge.interval)} on {metrics} {against}; the bake "
            f"ends on a pass; inconclusive pauses it, after {judge.inconclusive.limit} pause(s) it would {then}")


def format_plan(rollout: RolloutPlan, now_s: float) -> str:
    """The plan as text: stages, steps, batches with their hosts, bakes, watched alarms, blockers,
    and the expected duration from `now_s`. A `Rollout` (with its inventory) also says how hosts are
    deployed and observed and shows their addresses. Stages, steps and batches are labelled as
    `deploysim status` labels them (`labels.step_label`)."""
    plan = rollout.plan
    timeline = expected_timeline(rollout, now_s)
    preprod_command = isinstance(rollout, Rollout) and bool(rollout.inventory.adapter.preprod)
    what = f"{len(rollout.targets)} targets" if isinstance(rollout, Rollout) else f"{len(rollout.targets)} hosts"
    out = [
        f"Plan: {rollout.version} through pipeline {rollout.pipeline} of scenario {rollout.scenario.name} ({what})",
        *_inventory_lines(rollout),
    ]
    waits: dict[tuple[int, int], tuple[float, WaitBlocker]] = {}  # (stage, step) -> the step's first blocker wait
    for t, d in timeline:
        if isinstance(d, WaitBlocker):
            blocked = 0 if d.watch_step is None else d.watch_step + 1
            waits.setdefault((d.stage, blocked), (t, d))
    for s, stage in enumerate(plan.stages):
        where = f", regions {', '.join(rollout.layout.region_names[r] for r in stage.regions)}" if stage.regions else ""
        out += ["", f"{stage_label(plan, s)} ({stage.kind}{where})"]
        if stage.approval is not None:
            out.append(f"  waits for a person's approval first (deploysim approve); none within "
                       f"{format_duration_s(stage.approval.timeout)} rolls the version back "
                       "(the expected duration counts no wait)")
        for k, step in enumerate(stage.steps):
            if (s, k) in waits:
                t, d = waits[(s, k)]
                where_blocked = stage_label(plan, s) if k == 0 else step_label(plan, s, k)
                out.append(f"  {where_blocked} blocked by its {d.reason.replace('_', ' ')} until {_utc(d.until_s)} "
                           f"(waits {format_duration_s(d.until_s - t)})")
            bake = step.bake
            extra = "".join([f", min requests {', '.join(f'{api} {n:g}' for api, n in bake.min_requests.items())}"
                             if bake.min_requests else "",
                             f", min datapoints {bake.min_datapoints}" if bake.min_datapoints else ""])
            if step.kind == "preprod":
                run = "runs the preprod command" if preprod_command else "nothing real to deploy: waits"
                out.append(f"  {step_label(plan, s, k)}: pre-production, {run} {format_duration_s(step.batch_s)}, "
                           f"then bakes {format_duration_s(bake.duration)}{extra}")
                continue
            out.append(f"  {step_label(plan, s, k)}: {step.hosts.size} host(s) in {len(step.batches)} batch(es) "
                       f"of at least {format_duration_s(step.batch_s)}, "
                       f"then bake {format_duration_s(bake.duration)}{extra}")
            for b, batch in enumerate(step.batches):
                out.append(f"    batch {b + 1}/{len(step.batches)}: {_hosts(rollout, batch)}")
            watched = ", ".join(f"{w.alarm}@{w.label} ({w.hosts.size} hosts)" for w in step.watched) or "nothing"
            out.append(f"    watches: {watched}")
            if step.judge is not None:
                out.append(f"    {_judge_line(rollout, step)}")
    end_s = timeline[-1][0] if isinstance(timeline[-1][1], Complete) else float("nan")
    out += ["", f"Expected duration: {format_duration_s(end_s - now_s)} from {_utc(now_s)}, finishing "
                f"{_utc(end_s)}",
            "  (if no alarm fires, no incident blocks, and every bake sees its minimum requests in time)",
            "Nothing was changed (--plan)."]
    if not isinstance(rollout, Rollout):
        out.append("Current versions need --inventory: with it, every target is asked its version (read-only) "
                   "and the plan shows which would change")
    return "\n".join(out)
