"""The inventory: which real target each host of the policy is, which adapter deploys it and where
its metrics come from. Validated in one place, before anything is touched; every problem names
its field path, as scenario errors do.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from ..fleet import FleetLayout, host_names
from ..scenario.loader import Position, ScenarioError, _locate, _pydantic_problems, read_yaml_file
from ..scenario.schema import Frozen

# The adapter block and argv templates live in adapter_spec (the command adapter needs them too);
# they stay importable from here.
from .adapter_spec import (  # noqa: F401
    METRIC_PLACEHOLDERS,
    PLACEHOLDERS,
    AdapterSpec,
    Argv,
    Timeout,
    fill,
    placeholders,
)
from .interfaces import Adapter, MetricSource, Target
from .notify import NotifySpec, check_http_url


class InventoryError(ScenarioError):
    """An inventory that cannot be used; ``problems`` lists (field path, what was expected)."""

    def __init__(self, problems, source: str = "inventory", positions: Mapping[str, Position] | None = None):
        super().__init__(problems, source, positions)


class MetricsSpec(Frozen):
    """Where metrics come from: a Prometheus server, HTTP probes of the targets, or a command."""

    kind: Literal["prometheus", "probe", "command"]
    url: str | None = Field(None, description="prometheus: the server's base URL")
    queries: dict[str, str] = Field(default_factory=dict, description="metric name -> PromQL template")
    command: Argv | None = Field(None, description="command: prints a JSON list, one value (or null) per "
                                    "period; placeholders " + ", ".join("{" + p + "}" for p in METRIC_PLACEHOLDERS))
    timeout: Timeout = Field(30.0, description="command: seconds per call")

    @field_validator("url")
    @classmethod
    def _a_url(cls, value: str | None) -> str | None:
        return value if value is None else check_http_url(value, "http://127.0.0.1:9090")

    @model_validator(mode="after")
    def _needs_kind_fields(self):
        if self.kind == "prometheus" and not self.url:
            raise ValueError("kind 'prometheus' needs url")
        if self.kind == "command" and not self.command:
            raise ValueError("kind 'command' needs command")
        return self


class TargetSpec(Frozen):
    address: str = ""
    labels: dict[str, str] = Field(default_factory=dict)


class Inventory(Frozen):
    """The whole inventory file."""

    adapter: AdapterSpec
    metrics: MetricsSpec
    targets: dict[str, TargetSpec]
    baseline_targets: dict[str, TargetSpec] = Field(
        default_factory=dict, description="spare targets a canary judge deploys the old version to, beside "
        "the canary, for as long as it bakes (judge.baseline: deploy); reverted when the bake is over")
    notify: list[NotifySpec] = Field(default_factory=list, description="notifications (webhooks, commands) "
                                     "of the run's events")


def inventory_from_dict(data: Any, layout: FleetLayout, source: str = "inventory",
                        positions: Mapping[str, Position] | None = None) -> Inventory:
    """Validate plain data against the scenario's fleet, or raise InventoryError naming each field
    (with its line and column when `positions` are given)."""
    if not isinstance(data, Mapping):
        raise InventoryError([("", f"expected a mapping at the top level, got {type(data).__name__}")], source)
    try:
        inv = Inventory.model_validate(dict(data))
    except ValidationError as error:
        problems = _pydantic_problems(error)
        raise InventoryError(problems, source, _locate(problems, positions)) from None
    problems = list(_cross_checks(inv, layout)) + list(_check_metric_command(inv)) + list(_shared_addresses(inv))
    if problems:
        raise InventoryError(problems, source, _locate(problems, positions))
    return inv


def _shared_addresses(inv: Inventory):
    """Two targets at one address are one machine deployed twice: a copy-paste slip, never a fleet."""
    by_address: dict[str, list[str]] = {}
    for name, spec in [*inv.targets.items(), *inv.baseline_targets.items()]:
        if spec.address:
            by_address.setdefault(spec.address, []).append(name)
    for address, names in by_address.items():
        if len(names) > 1:
            shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
            yield (f"targets.{names[1]}.address", f"address {address!r} is also the address of {len(names) - 1} "
                   f"other target(s) ({shown}); each target needs its own address")


def load_inventory(path: str | os.PathLike[str], layout: FleetLayout) -> Inventory:
    """Read and validate an inventory file (YAML)."""
    source = os.fspath(path)
    data = read_yaml_file(source, InventoryError)
    return inventory_from_dict(data if data is not None else {}, layout, source)


def _cross_checks(inv: Inventory, layout: FleetLayout):
    names = host_names(layout)
    known = set(names)
    missing = [n for n in names if n not in inv.targets]
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        yield ("targets", f"missing {len(missing)} host(s) of the scenario's fleet: {shown}")
    for name in inv.baseline_targets:
        if name in known:
            yield (f"baseline_targets.{name}", "a host of the scenario's fleet cannot also be a baseline target")
    for name in inv.targets:
        if name not in known:
            yield (f"targets.{name}", "not a host of the scenario's fleet (names are {cell}-h{k}, "
                   f"e.g. {names[0]})")
    for field in ("deploy", "rollback", "current_version", "health", "preprod", "set_weight"):
        argv = getattr(inv.adapter, field)
        if argv is None:
            continue
        for i, arg in enumerate(argv):
            for name in placeholders([arg]):
                if name.startswith("label_"):
                    label = name[len("label_"):]
                    lacking = [t for t, spec in inv.targets.items() if label not in spec.labels]
                    if lacking:
                        yield (f"adapter.{field}[{i}]", f"uses label {label!r}, which target(s) "
                               f"{', '.join(lacking[:3])} do not have")
                elif name not in PLACEHOLDERS and not (field == "set_weight" and name == "weight"):
                    yield (f"adapter.{field}[{i}]", f"unknown placeholder {{{name}}}; expected one of "
                           + ", ".join("{" + p + "}" for p in PLACEHOLDERS) + " or {label_NAME}")
        if field == "preprod" and placeholders(argv) & {"target", "address", "region", "az", "cell"}:
            yield ("adapter.preprod", "runs once per stage: it takes {version} and {stage}, not a target")
        if field == "set_weight" and placeholders(argv) - {"stage", "region", "weight", "version"}:
            yield ("adapter.set_weight", "runs once per region of a stage: it takes {stage}, {region}, {weight} "
                   "and {version}, not a target")


def _check_metric_command(inv: Inventory):
    if inv.metrics.command is None:
        return
    for i, arg in enumerate(inv.metrics.command):
        for name in sorted(placeholders([arg]) - set(METRIC_PLACEHOLDERS)):
            yield (f"metrics.command[{i}]", f"unknown placeholder {{{name}}}; expected one of "
                   + ", ".join("{" + p + "}" for p in METRIC_PLACEHOLDERS))


def build_targets(inv: Inventory, layout: FleetLayout) -> list[Target]:
    """One Target per host of the layout, in host order, with the inventory's address and labels."""
    return [dataclasses.replace(t, address=inv.targets[t.name].address, labels=dict(inv.targets[t.name].labels))
            for t in fleet_targets(layout)]


def build_baseline_targets(inv: Inventory, layout: FleetLayout) -> list[Target]:
    """The inventory's baseline targets, in its order, numbered after the fleet's hosts."""
    return [Target(host=layout.n_hosts + i, name=name, region="baseline", az="baseline", cell="baseline",
                   address=spec.address, labels=dict(spec.labels))
            for i, (name, spec) in enumerate(inv.baseline_targets.items())]


def fleet_targets(layout: FleetLayout) -> list[Target]:
    """One Target per host of the scenario's fleet, in host order, named as inventories name them
    ({cell}-h{k}), with no address or labels: what a plan without an inventory shows."""
    return [Target(host=h, name=name, region=layout.region_names[int(layout.host_region[h])],
                   az=layout.az_names[int(layout.host_az[h])], cell=layout.cell_names[int(layout.host_cell[h])])
            for h, name in enumerate(host_names(layout))]


def make_adapter(inv: Inventory, base_dir: Path, source: str = "inventory") -> Adapter:
    """The adapter the inventory names; paths are relative to the inventory file's directory."""
    if inv.adapter.kind == "command":
        from .command_adapter import CommandAdapter

        return CommandAdapter(inv.adapter)
    from ..localfleet.fleet import FleetError
    from .local_adapter import LocalAdapter  # the local fleet's adapter (deploysim local up)

    fleet_dir = inv.adapter.fleet_dir
    assert fleet_dir is not None  # AdapterSpec's validator requires it for kind 'local'
    try:
        return LocalAdapter((base_dir / fleet_dir).resolve(), retries=int(inv.adapter.retries),
                            backoff_s=float(inv.adapter.backoff))
    except (FleetError, OSError, ValueError, KeyError, TypeError) as error:
        detail = error.strerror if isinstance(error, OSError) and error.strerror else error
        raise InventoryError([("adapter.fleet_dir", f"{fleet_dir!r} is not a usable local fleet: {detail}")],
                             source) from None


def make_metric_source(inv: Inventory, targets: Sequence[Target],
                       apis: Mapping[str, float] | None = None) -> MetricSource:
    """The metric source the inventory names; `apis` (the scenario's API mix) shapes the probe's requests."""
    if inv.metrics.kind == "command":
        from .command_adapter import CommandMetricSource

        command = inv.metrics.command
        assert command is not None  # MetricsSpec's validator requires it for kind 'command'
        return CommandMetricSource(command, timeout_s=inv.metrics.timeout)
    if inv.metrics.kind == "prometheus":
        from .prometheus_source import PrometheusSource

        url = inv.metrics.url
        assert url is not None  # MetricsSpec's validator requires it for kind 'prometheus'
        return PrometheusSource(url, dict(inv.metrics.queries))
    from .probe_source import ProbeSource

    return ProbeSource(list(targets), apis=dict(apis) if apis else None)
