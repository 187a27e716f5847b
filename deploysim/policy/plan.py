"""A pipeline policy made concrete for one fleet: which hosts each step deploys, in which batches.

The plan is data. The controller walks it; the simulator and the real executor carry it out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..fleet import FleetLayout, one_box_hosts
from ..scenario.schema import Approval, Bake, Judge, PipelinePolicy, Stage, Watch
from .decisions import StageKind, StepKind, WatchScope


@dataclass(frozen=True)
class WatchedAlarm:
    """One alarm (metric or composite, by name) evaluated over one set of hosts."""

    alarm: str
    scope: WatchScope
    label: str  # e.g. "us-east-1" or "wave-2"
    hosts: np.ndarray


@dataclass(frozen=True)
class Step:
    """One-box, a wave, or a pre-production run: deploy in batches, then bake."""

    name: str
    kind: StepKind
    hosts: np.ndarray
    batches: tuple[np.ndarray, ...]
    batch_s: float
    bake: Bake
    watched: tuple[WatchedAlarm, ...]
    hosts_keep_serving: bool = False
    judge: Judge | None = None  # a canary judge watching the bake
    rest_of_scope: np.ndarray | None = None  # the stage's hosts not yet deployed after this step
    weight: float | None = None  # a traffic step: percent of each region's requests on the new version after it


@dataclass(frozen=True)
class StagePlan:
    name: str
    kind: StageKind
    regions: tuple[int, ...]
    hosts: np.ndarray
    steps: tuple[Step, ...]
    approval: Approval | None = None  # a person approves before the stage's first step


@dataclass(frozen=True)
class PipelinePlan:
    name: str
    stages: tuple[StagePlan, ...]
    policy: PipelinePolicy

    @property
    def last_preprod_stage(self) -> int:
        """Index of the last pre-production stage (-1 if none): where pre-production catches bad changes."""
        idx = [i for i, s in enumerate(self.stages) if s.kind is StageKind.PREPRODUCTION]
        return idx[-1] if idx else -1


def split_batches(hosts: np.ndarray, max_share: float, layout: FleetLayout) -> tuple[np.ndarray, ...]:
    """Split a step's hosts into batches of at most `max_share` of them, each taking an even share
    of every AZ (round-robin), so no AZ or region loses more than its share of capacity at once."""
    if hosts.size == 0:
        return ()
    size = max(1, int(math.floor(max_share * hosts.size + 1e-9)))
    order = _one_per_az_in_turn(hosts, layout)
    return tuple(np.sort(order[i : i + size]) for i in range(0, order.size, size))


def _one_per_az_in_turn(hosts: np.ndarray, layout: FleetLayout) -> np.ndarray:
    """`hosts` ordered one per AZ in turn: each AZ's first host, then each AZ's second, ..."""
    az = layout.host_az[hosts]
    rank = np.empty(hosts.size, dtype=np.int64)
    for a in np.unique(az):
        members = np.flatnonzero(az == a)
        rank[members] = np.arange(members.size)
    return hosts[np.lexsort((az, rank))]


def _units(layout: FleetLayout, regions: tuple[int, ...], unit: str) -> list[np.ndarray]:
    """The stage's deployment units in order, each as its host indices."""
    out = []
    for r in regions:
        hosts = layout.hosts_in_region(r)
        if unit == "region":
            out.append(hosts)
        elif unit == "az":
            out += [hosts[layout.host_az[hosts] == az] for az in np.unique(layout.host_az[hosts])]
        else:
            out += [hosts[layout.host_cell[hosts] == c] for c in np.unique(layout.host_cell[hosts])]
    return out


def _watched(watch: Watch, scope: WatchScope, label: str, hosts: np.ndarray) -> list[WatchedAlarm]:
    return [WatchedAlarm(name, scope, label, hosts) for name in getattr(watch, scope.value)]


def build_stage(stage: Stage, pipeline_watch: Watch, layout: FleetLayout) -> StagePlan:
    """Turn one stage of the policy into steps over concrete hosts."""
    watch = stage.watch or pipeline_watch
    if stage.kind == "preproduction":
        step = Step("preprod", StepKind.PREPROD, np.empty(0, dtype=np.int64), (), stage.duration, stage.bake, ())
        return StagePlan(stage.name, StageKind.PREPRODUCTION, (), np.empty(0, dtype=np.int64), (step,),
                         stage.approval)
    regions = tuple(layout.region_index(r) for r in stage.regions)
    all_hosts = np.concatenate([layout.hosts_in_region(r) for r in regions])
    region_watch: list[WatchedAlarm] = []
    for r in regions:
        region_watch += _watched(watch, WatchScope.REGION, layout.region_names[r], layout.hosts_in_region(r))
    steps: list[Step] = []
    done = np.zeros(layout.n_hosts, dtype=bool)
    if stage.one_box is not None:
        box = np.concatenate([one_box_hosts(layout, r, stage.one_box.hosts) for r in regions])
        done[box] = True
        watched = _watched(watch, WatchScope.ONE_BOX, "one-box", box) + region_watch
        steps.append(
            Step(
                "one-box",
                StepKind.ONE_BOX,
                box,
                (box,),
                stage.batching.duration,
                stage.one_box.bake,
                tuple(watched),
                stage.batching.hosts_keep_serving,
                stage.one_box.judge,
                _not_done(all_hosts, done),
            )
        )
    for w, wave in enumerate(stage.waves):
        chosen = []
        if wave.weight is not None:
            chosen = [_up_to_weight(layout, r, wave.weight, done) for r in regions]
        for group in ([] if wave.weight is not None else [(r,) for r in regions] if wave.per_region else [regions]):
            remaining = [u[~done[u]] for u in _units(layout, group, wave.unit)]
            remaining = [u for u in remaining if u.size]
            chosen += remaining if wave.count == "rest" else remaining[: wave.count]
        hosts = np.sort(np.concatenate(chosen)) if chosen else np.empty(0, dtype=np.int64)
        if hosts.size == 0:
            continue
        done[hosts] = True
        name = f"wave-{w + 1}"
        watched = _watched(watch, WatchScope.WAVE, name, hosts) + region_watch
        steps.append(
            Step(
                name,
                StepKind.WAVE,
                hosts,
                split_batches(hosts, stage.batching.max_share, layout),
                stage.batching.duration,
                wave.bake,
                tuple(watched),
                stage.batching.hosts_keep_serving,
                wave.judge,
                _not_done(all_hosts, done),
                wave.weight,
            )
        )
    return StagePlan(stage.name, StageKind.PRODUCTION, regions, np.sort(all_hosts), tuple(steps), stage.approval)


def _up_to_weight(layout: FleetLayout, region: int, weight_pct: float, done: np.ndarray) -> np.ndarray:
    """The region's hosts to add so that the new version serves at least `weight_pct` percent of its
    requests: the fewest whole hosts, taken one per AZ in turn (as a batch is), counting the hosts
    earlier steps deployed. Like Argo Rollouts without a traffic router, which scales the canary to
    ceil(weight x replicas) pods: with equal hosts, ceil(weight x hosts)."""
    hosts = layout.hosts_in_region(region)
    order = _one_per_az_in_turn(hosts, layout)
    order = order[~done[order]]
    share = float(layout.host_weight[hosts][done[hosts]].sum())
    need = weight_pct / 100.0 - share - 1e-9
    if need <= 0 or order.size == 0:
        return np.empty(0, dtype=np.int64)
    if weight_pct >= 100.0:
        return np.sort(order)
    cumulative = np.cumsum(layout.host_weight[order])
    n = min(int(np.searchsorted(cumulative, need)) + 1, order.size)
    return np.sort(order[:n])


def _not_done(hosts: np.ndarray, done: np.ndarray) -> np.ndarray:
    """The stage's hosts no step has deployed so far: a judge's rest-of-scope baseline."""
    return np.sort(hosts[~done[hosts]])


def build_plan(name: str, policy: PipelinePolicy, layout: FleetLayout) -> PipelinePlan:
    return PipelinePlan(name, tuple(build_stage(s, policy.watch, layout) for s in policy.stages), policy)
