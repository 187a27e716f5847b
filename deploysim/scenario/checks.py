"""Warnings about a valid scenario that probably does not do what its author meant: traffic over the
fleet's capacity, alarms that can never fire at the traffic they watch, batches larger than the headroom.

Plain arithmetic on the scenario at its busiest (weekday peak of the daily cycle), so `deploysim
validate` stays fast; the simulation is the judge of what actually happens.
"""

from __future__ import annotations

import math

from .schema import MetricAlarm, PipelinePolicy, Scenario, Stage

DEFAULT_BAKE_LIMIT_S = 7 * 86400.0  # as deploysim.policy.controller: a bake waits for data this long at most
ERROR_METRICS = ("errors", "error_rate", "log_errors")


def _region_peak_rpm(scenario: Scenario) -> dict[str, float]:
    """Each region's requests per minute at the weekday peak of the daily cycle."""
    total = sum(r.traffic_weight for r in scenario.fleet.regions)
    peak = scenario.traffic.requests_per_min * (1.0 + scenario.traffic.daily_amplitude)
    return {r.name: peak * r.traffic_weight / total for r in scenario.fleet.regions}


def _region_mean_rpm(scenario: Scenario) -> dict[str, float]:
    total = sum(r.traffic_weight for r in scenario.fleet.regions)
    return {r.name: scenario.traffic.requests_per_min * r.traffic_weight / total for r in scenario.fleet.regions}


def _hosts(scenario: Scenario) -> dict[str, int]:
    return {r.name: r.azs * r.cells_per_az * r.hosts_per_cell for r in scenario.fleet.regions}


def _metric_alarms(scenario: Scenario, names: tuple[str, ...]) -> list[MetricAlarm]:
    """The metric alarms behind alarm names, composites expanded (without parsing their rules:
    every metric alarm whose name appears in a composite's rule counts)."""
    metric = {a.name: a for a in scenario.alarms.metric}
    composite = {a.name: a.rule for a in scenario.alarms.composite}
    out: dict[str, MetricAlarm] = {}
    todo, seen = list(names), set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in metric:
            out[name] = metric[name]
        elif name in composite:
            todo += [m for m in (*metric, *composite) if f'"{m}"' in composite[name] or f"({m})" in composite[name]]
    return [out[n] for n in sorted(out)]


def _watched(policy: PipelinePolicy, stage: Stage) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(one-box alarms, all alarms) a production stage watches."""
    watch = stage.watch or policy.watch
    return watch.one_box, (*watch.one_box, *watch.wave, *watch.region)


def scenario_warnings(scenario: Scenario) -> list[str]:
    """One line per likely mistake; empty when none is found."""
    warnings: list[str] = []
    peak, mean = _region_peak_rpm(scenario), _region_mean_rpm(scenario)
    hosts = _hosts(scenario)
    capacity = scenario.fleet.host_capacity_rpm
    for region, rpm in peak.items():
        if rpm > hosts[region] * capacity:
            warnings.append(f"fleet: region {region} gets {rpm:,.0f} requests/min at peak, over its capacity of "
                            f"{hosts[region] * capacity:,.0f} ({hosts[region]} hosts x {capacity:g}): the excess fails")
    period_min = scenario.metric_period / 60.0
    for name, policy in sorted(scenario.policy.pipelines.items()):
        for stage in policy.stages:
            if stage.kind != "production":
                continue
            one_box_names, all_names = _watched(policy, stage)
            watched = _metric_alarms(scenario, all_names)
            source = scenario.changes.get(name)
            for defect in source.defects if source else ():
                if defect.api is None or defect.error_rate <= 0:
                    continue
                seeing = [a for a in watched if a.metric in ERROR_METRICS and a.api in (None, "All", defect.api)]
                if not seeing:
                    warnings.append(f"policy.pipelines.{name}, stage {stage.name}: defect {defect.name} fails "
                                    f"{defect.api} requests, and no alarm the stage watches sees {defect.api}'s errors")
            for region in stage.regions:
                if region not in hosts:
                    continue
                # The largest batch: max_share of the biggest wave (the region less its one-box).
                wave_hosts = hosts[region] - (stage.one_box.hosts if stage.one_box is not None else 0)
                batch = max(1, math.floor(stage.batching.max_share * wave_hosts + 1e-9))
                rest = hosts[region] - (0 if stage.batching.hosts_keep_serving else batch)
                if peak[region] > rest * capacity:
                    warnings.append(
                        f"policy.pipelines.{name}, stage {stage.name}: batches of {batch} hosts leave {region} "
                        f"{rest * capacity:,.0f} requests/min of capacity for {peak[region]:,.0f} at peak: "
                        f"deployments shed load (lower batching.max_share)")
                if stage.one_box is None:
                    continue
                box = stage.one_box
                share = box.traffic_share if box.traffic_share is not None else box.hosts / hosts[region]
                box_peak, box_mean = peak[region] * share, mean[region] * share
                limit_s = box.bake.max_duration if box.bake.max_duration is not None else max(
                    DEFAULT_BAKE_LIMIT_S, box.bake.duration)
                for api, needed in box.bake.min_requests.items():
                    api_share = 1.0 if api == "All" else scenario.traffic.apis.get(api, 0.0)
                    reachable = box_mean * api_share * limit_s / 60.0
                    if needed > reachable:
                        warnings.append(
                            f"policy.pipelines.{name}, stage {stage.name}: the one-box in {region} serves about "
                            f"{reachable:,.0f} {api} requests in its bake's {limit_s / 3600:g} h limit, under "
                            f"min_requests {needed:,.0f}: the bake always runs to its limit")
                for alarm in _metric_alarms(scenario, one_box_names):
                    if alarm.metric not in ("errors", "log_errors") or not alarm.comparison.startswith("Greater"):
                        continue
                    api_share = 1.0 if alarm.api in (None, "All") else scenario.traffic.apis.get(alarm.api, 0.0)
                    most = box_peak * api_share * period_min * (
                        scenario.baseline.log_errors_per_error if alarm.metric == "log_errors" else 1.0)
                    if most < alarm.threshold or math.isclose(most, alarm.threshold):
                        warnings.append(
                            f"alarms.metric {alarm.name}: on the one-box in {region} (stage {stage.name} of "
                            f"{name}) it needs more than {alarm.threshold:g} {alarm.metric} a period, and the "
                            f"one-box serves at most {most:,.0f} requests a period: it can never fire")
    warnings += _weight_warnings(scenario)
    return list(dict.fromkeys(warnings))


def _weight_warnings(scenario: Scenario) -> list[str]:
    """A traffic weight whole hosts cannot serve exactly: the simulator serves more (say so)."""
    if not any(w.weight is not None for p in scenario.policy.pipelines.values() for s in p.stages for w in s.waves):
        return []
    import numpy as np

    from ..fleet import build_fleet
    from ..policy.plan import build_stage

    layout = build_fleet(scenario)
    out: list[str] = []
    for name, policy in sorted(scenario.policy.pipelines.items()):
        for stage in policy.stages:
            if stage.kind != "production" or not any(w.weight is not None for w in stage.waves):
                continue
            plan = build_stage(stage, policy.watch, layout)
            done = np.zeros(layout.n_hosts, dtype=bool)
            by_name = {}
            for step in plan.steps:
                done[step.hosts] = True
                by_name[step.name] = done.copy()
            for w, wave in enumerate(stage.waves):
                deployed = by_name.get(f"wave-{w + 1}")
                if wave.weight is None or deployed is None:
                    continue
                for region in stage.regions:
                    r = layout.region_index(region)
                    served = 100.0 * float(layout.host_weight[deployed & (layout.host_region == r)].sum())
                    if served - wave.weight > 0.5:
                        out.append(f"policy.pipelines.{name}, stage {stage.name}, waves[{w}]: weight {wave.weight:g}% "
                                   f"in {region} is served by whole hosts: {served:.3g}% of its requests in the "
                                   "simulator (a traffic router, adapter set_weight, gives the exact weight)")
    return out
