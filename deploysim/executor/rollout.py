"""The executor's inputs: one rollout (scenario, plan of one pipeline, inventory, targets, version),
validated in one place before anything is touched, and what the journal keeps to rebuild it."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from ..fleet import FleetLayout, build_fleet
from ..policy.controller import RolloutController
from ..policy.controller import new_controller as policy_controller
from ..policy.plan import PipelinePlan, build_plan
from ..scenario.loader import ScenarioError, scenario_from_dict, yaml_with_positions
from ..scenario.schema import Scenario
from .adapter_spec import DEFAULT_VERSION_PATTERN
from .clock import RealClock
from .interfaces import Clock, Target
from .inventory import (
    Inventory,
    InventoryError,
    build_baseline_targets,
    build_targets,
    fleet_targets,
    inventory_from_dict,
)

UNIX_EPOCH_UTC = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
"""The executor's time is Unix seconds, so blockers' windows are judged on the real clock."""


@dataclass(frozen=True)
class RolloutPlan:
    """What a rollout would do, from the scenario alone: its policy's plan of one pipeline over the
    scenario's fleet. `execute --plan` needs no more; `targets` are the fleet's hosts by name, with
    no address (an inventory's targets carry the same names)."""

    scenario: Scenario
    layout: FleetLayout
    pipeline: str
    plan: PipelinePlan
    targets: tuple[Target, ...]
    version: str


@dataclass(frozen=True)
class Rollout(RolloutPlan):
    """Everything one real rollout needs, validated: the plan and the inventory (the real targets,
    the adapter and the metric source)."""

    inventory: Inventory
    inventory_dir: Path  # where the inventory's relative paths start
    inventory_source: str = "inventory"  # the inventory file's name, for messages
    baseline_targets: tuple[Target, ...] = ()  # spare targets canary judges deploy the old version to

    @property
    def all_targets(self) -> tuple[Target, ...]:
        """The fleet's targets, then the baseline targets: every target the rollout may touch."""
        return self.targets + self.baseline_targets


def check_version(version: str, pattern: str = DEFAULT_VERSION_PATTERN) -> None:
    """A version is a name a deploy tool takes as one argument and a file name can hold: it must
    match the inventory's `adapter.version_pattern` (default: a letter or digit, then up to 63
    letters, digits, '.', '_', '+' or '-'), so no leading '-', no '/', never '.' or '..'."""
    if not re.fullmatch(pattern, version):
        shown = version if len(version) <= 40 else version[:40] + "..."
        raise ScenarioError([("--version", f"{shown!r} is not a version name such as v2 or 1.4.0-rc1 "
                              f"(expected a match of {pattern})")], "command line")


def _load_scenario(scenario_text: str, scenario_source: str) -> tuple[Scenario, FleetLayout]:
    data, positions = yaml_with_positions(scenario_text, scenario_source)
    scenario = scenario_from_dict(data if data is not None else {}, scenario_source, positions)
    return scenario, build_fleet(scenario)


def _plan_of(scenario: Scenario, layout: FleetLayout, version: str, pipeline: str | None) -> tuple[str, PipelinePlan]:
    names = list(scenario.policy.pipelines)
    if pipeline is None:
        pipeline = names[0]
    elif pipeline not in scenario.policy.pipelines:
        raise ScenarioError([("--pipeline", f"unknown pipeline {pipeline!r}; expected one of {names}")], "command line")
    return pipeline, build_plan(pipeline, scenario.policy.pipelines[pipeline], layout)


def load_plan(scenario_text: str, scenario_source: str, version: str, pipeline: str | None) -> RolloutPlan:
    """The plan alone (`execute --plan` without an inventory): hosts named by the scenario's fleet."""
    scenario, layout = _load_scenario(scenario_text, scenario_source)
    pipeline, plan = _plan_of(scenario, layout, version, pipeline)
    check_version(version)
    return RolloutPlan(scenario, layout, pipeline, plan, tuple(fleet_targets(layout)), version)


def load_rollout(scenario_text: str, scenario_source: str, inventory_text: str, inventory_source: str,
                 inventory_dir: Path, version: str, pipeline: str | None) -> Rollout:
    """Validate every input before anything is touched; raises ScenarioError (or InventoryError)."""
    scenario, layout = _load_scenario(scenario_text, scenario_source)
    inv_data, positions = yaml_with_positions(inventory_text, inventory_source, InventoryError)
    inventory = inventory_from_dict(inv_data if inv_data is not None else {}, layout, inventory_source, positions)
    pipeline, plan = _plan_of(scenario, layout, version, pipeline)
    check_version(version, inventory.adapter.version_pattern)
    _enough_baseline_targets(plan, inventory, inventory_source)
    return Rollout(scenario, layout, pipeline, plan, tuple(build_targets(inventory, layout)), version,
                   inventory, inventory_dir, inventory_source, tuple(build_baseline_targets(inventory, layout)))


def _enough_baseline_targets(plan: PipelinePlan, inventory: Inventory, source: str) -> None:
    """Every step whose judge deploys a baseline needs as many baseline targets as it has hosts."""
    for stage in plan.stages:
        for step in stage.steps:
            if step.judge is None or step.judge.baseline_kind != "deploy":
                continue
            if step.hosts.size > len(inventory.baseline_targets):
                raise InventoryError([("baseline_targets", f"stage {stage.name} {step.name}'s canary judge deploys "
                                       f"a baseline of {step.hosts.size} host(s) (judge.baseline: deploy); the "
                                       f"inventory lists {len(inventory.baseline_targets)} baseline target(s)")],
                                     source)


def load_plan_file(scenario_path: Path, version: str, pipeline: str | None) -> RolloutPlan:
    return load_plan(read_text(scenario_path, "scenario"), str(scenario_path), version, pipeline)


def load_rollout_files(scenario_path: Path, inventory_path: Path, version: str, pipeline: str | None) -> Rollout:
    scenario_text = read_text(scenario_path, "scenario")
    inventory_text = read_text(inventory_path, "inventory")
    return load_rollout(scenario_text, str(scenario_path), inventory_text, str(inventory_path),
                        Path(inventory_path).resolve().parent, version, pipeline)


def read_text(path: Path, what: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ScenarioError([("", f"cannot read {what} file: {error.strerror}")], str(path)) from None
    except UnicodeDecodeError as error:
        raise ScenarioError([("", f"not UTF-8 text (byte {error.start})")], str(path)) from None


def rollout_meta(scenario_path: Path, inventory_path: Path, rollout: Rollout, *, clock: Clock | None = None) -> dict:
    """What the journal keeps so `--resume` rebuilds exactly this rollout, even if the files change."""
    scenario_text = Path(scenario_path).read_text(encoding="utf-8")
    inventory_text = Path(inventory_path).read_text(encoding="utf-8")
    return {
        "scenario_path": str(scenario_path), "scenario_text": scenario_text,
        "scenario_sha256": hashlib.sha256(scenario_text.encode()).hexdigest(),
        "inventory_path": str(inventory_path), "inventory_text": inventory_text,
        "inventory_dir": str(rollout.inventory_dir),
        "version": rollout.version, "pipeline": rollout.pipeline, "started_s": (clock or RealClock()).now(),
    }


def rollout_from_meta(meta: dict) -> Rollout:
    return load_rollout(meta["scenario_text"], meta["scenario_path"], meta["inventory_text"], meta["inventory_path"],
                        Path(meta["inventory_dir"]), meta["version"], meta["pipeline"])


def new_controller(rollout: RolloutPlan) -> RolloutController:
    """The shared brain, on Unix seconds: time windows are judged on the real clock in each region's zone."""
    return policy_controller(rollout.plan, rollout.scenario, UNIX_EPOCH_UTC)
