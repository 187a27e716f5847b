"""Replay one incident: a world scripted as "this change, with this defect, enters this pipeline at
this time" (plus optional faults), to run under any policy.

The scripted changes and faults replace the random ones; traffic is still drawn from the seed, as
in `world_for_seed`, so a replay and a random run on one seed see the same traffic. A scripted
change's people times (revert speed, and the fixed detection delay of `humans.detection:
fixed_delay`) are drawn from the scenario's `humans` on a stream keyed by the change's position
in the script, unless it gives `mitigation`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from .fleet import build_fleet
from .scenario.loader import _seconds_since, scenario_from_dict
from .scenario.schema import Defect, ReplayChange, ReplayFault, Scenario
from .seeds import as_seed_sequence, child_seed
from .world import Change, Fault, World, sample_duration_s, world_for_seed

REPLAY_STREAM = 4  # child of the run's seed: people times of scripted changes, keyed by position


def with_replay(scenario: Scenario, changes: Iterable[ReplayChange | Mapping[str, Any]] = (),
                faults: Iterable[ReplayFault | Mapping[str, Any]] = ()) -> Scenario:
    """The scenario with a `replay:` section of these changes and faults (as in YAML); raises
    ScenarioError naming the field of a bad entry."""
    def plain(item):
        return item.model_dump(mode="json", exclude_none=True) if hasattr(item, "model_dump") else dict(item)

    data = scenario.model_dump(mode="json", exclude_none=True)
    data["replay"] = {"changes": [plain(c) for c in changes], "faults": [plain(f) for f in faults]}
    return scenario_from_dict(data, source=f"replay of {scenario.name}")


def replay_world(scenario: Scenario, *, changes: Iterable[ReplayChange | Mapping[str, Any]] | None = None,
                 faults: Iterable[ReplayFault | Mapping[str, Any]] | None = None,
                 seed: int | np.random.SeedSequence = 0, months: float = 1.0) -> World:
    """The world of a replay: the given changes and faults (default: the scenario's `replay:`
    section), traffic drawn from `seed`. Pass it to `deploysim.simulate(..., world=...)`."""
    if changes is not None or faults is not None:
        scenario = with_replay(scenario, changes or (), faults or ())
    script = scenario.replay
    if script is None:
        raise ValueError(f"scenario {scenario.name!r} has no replay section and no changes were given")
    drawn = world_for_seed(scenario, seed=seed, months=months)
    layout = build_fleet(scenario)
    replay_seq = child_seed(as_seed_sequence(seed), REPLAY_STREAM)
    scripted = []
    for i, c in enumerate(script.changes):
        rng = np.random.default_rng(child_seed(replay_seq, i))
        delay = sample_duration_s(scenario.humans.detection_delay, rng)
        mitigation = sample_duration_s(scenario.humans.mitigation, rng)
        defect = c.defect
        if isinstance(defect, str):
            defect = next(d for d in scenario.changes[c.pipeline].defects if d.name == defect)
        assert defect is None or isinstance(defect, Defect)
        scripted.append((_seconds_since(scenario, c.at), i, Change(
            -1, c.pipeline, _seconds_since(scenario, c.at), defect, bool(c.caught_in_preprod and defect is not None),
            delay, mitigation if c.mitigation is None else float(c.mitigation))))
    scripted.sort(key=lambda item: (item[0], item[1]))
    world_changes = tuple(dataclasses.replace(c, change_id=k) for k, (_, _, c) in enumerate(scripted))
    world_faults = []
    for f in script.faults:
        region = layout.region_index(f.region)
        start = _seconds_since(scenario, f.start)
        if f.kind == "az_outage":
            kind = "az_outage" if f.second_az is None else "correlated_az_outage"
            for number in (f.az,) if f.second_az is None else (f.az, f.second_az):
                az = layout.az_names.index(f"{f.region}-az{number}")
                world_faults.append(Fault(kind, region, start, start + f.duration, az=az,
                                          failover_s=min(f.failover, f.duration)))
        elif f.kind == "region_event":
            world_faults.append(Fault("region_event", region, start, start + f.duration, error_rate=f.error_rate))
        else:
            world_faults.append(Fault("dependency_degradation", region, start, start + f.duration,
                                      dependency=f.dependency or "", error_rate=f.error_rate))
    world_faults.sort(key=lambda f: f.start_s)
    return World(changes=world_changes, faults=tuple(world_faults), requests=drawn.requests)


def scenario_world(scenario: Scenario, *, seed: int | np.random.SeedSequence = 0, months: float = 1.0) -> World:
    """The world a run of the scenario faces: its replay if it has one, else the random one."""
    if scenario.replay is not None:
        return replay_world(scenario, seed=seed, months=months)
    return world_for_seed(scenario, seed=seed, months=months)
