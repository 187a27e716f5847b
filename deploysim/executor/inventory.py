"""The inventory: which real target each host of the policy is, which adapter deploys it and where
its metrics come from. Validated in one place, before anything is touched; every problem names
its field path, as scenario errors do.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Mapping, Optional, Sequence

from pydantic import Field, ValidationError, model_validator

from ..fleet import FleetLayout, host_names
from ..scenario.loader import ScenarioError, _pydantic_problems, read_yaml_file
from ..scenario.schema import Duration, Frozen
from .interfaces import Adapter, MetricSource, Target

PLACEHOLDERS = ("target", "address", "version", "region", "az", "cell", "stage")
"""Names that may appear in braces in a command's arguments; `{label_NAME}` reads a target's label."""

METRIC_PLACEHOLDERS = ("metric", "statistic", "api", "dependency", "start", "end", "period", "targets")
"""Placeholders of a metrics command: what to read, the window in Unix seconds, target names (comma-joined)."""

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")

Argv = Annotated[list[str], Field(min_length=1)]


class InventoryError(ScenarioError):
    """An inventory that cannot be used; ``problems`` lists (field path, what was expected)."""

    def __init__(self, problems, source: str = "inventory"):
        super().__init__(problems, source)


class AdapterSpec(Frozen):
    """How targets are deployed: `local` (processes of `deploysim local up`) or `command` (argv lists)."""

    kind: Literal["local", "command"]
    fleet_dir: Optional[str] = Field(None, description="local: the directory `deploysim local up` manages, "
                                     "relative to the inventory file")
    deploy: Optional[Argv] = Field(None, description="command: puts {target} on {version}")
    rollback: Optional[Argv] = Field(None, description="command: puts {target} back on {version}; "
                                     "default: the deploy command with the previous version")
    current_version: Optional[Argv] = Field(None, description="command: prints the version {target} runs")
    health: Optional[Argv] = Field(None, description="command: exits 0 when {target} is healthy")
    preprod: Optional[Argv] = Field(None, description="command: runs pre-production tests of {version} "
                                    "for {stage}; exit 0 = passed")
    timeout: Duration = Field(60.0, description="seconds per attempt of an adapter call")
    retries: Annotated[int, Field(ge=0, le=20)] = Field(2, description="extra attempts after the first")
    backoff: Duration = Field(2.0, description="wait before the first retry; doubles each retry")
    parallel: Annotated[int, Field(ge=1)] = Field(1, description="hosts of a batch deployed at the same time")

    @model_validator(mode="after")
    def _needs_kind_fields(self):
        if self.kind == "local" and not self.fleet_dir:
            raise ValueError("kind 'local' needs fleet_dir")
        if self.kind == "command":
            missing = [name for name in ("deploy", "current_version") if getattr(self, name) is None]
            if missing:
                raise ValueError(f"kind 'command' needs {' and '.join(missing)}")
        if self.timeout <= 0:
            raise ValueError("timeout must be > 0")
        return self


class MetricsSpec(Frozen):
    """Where metrics come from: a Prometheus server, HTTP probes of the targets, or a command."""

    kind: Literal["prometheus", "probe", "command"]
    url: Optional[str] = Field(None, description="prometheus: the server's base URL")
    queries: dict[str, str] = Field(default_factory=dict, description="metric name -> PromQL template")
    command: Optional[Argv] = Field(None, description="command: prints a JSON list, one value (or null) per "
                                    "period; placeholders " + ", ".join("{" + p + "}" for p in METRIC_PLACEHOLDERS))
    timeout: Duration = Field(30.0, description="command: seconds per call")

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


def placeholders(argv: Sequence[str]) -> set[str]:
    return {m.group(1) for arg in argv for m in _PLACEHOLDER.finditer(arg)}


def fill(argv: Sequence[str], values: Mapping[str, str]) -> list[str]:
    """`argv` with each `{name}` replaced by its value. Each value lands inside one argument and is
    never parsed again (no shell), so a target or version name cannot inject a command. Braces that
    are not a known placeholder (JSON in a kubectl patch) are left as they are."""
    return [_PLACEHOLDER.sub(lambda m: str(values[m.group(1)]) if m.group(1) in values else m.group(0), arg)
            for arg in argv]


def inventory_from_dict(data: Any, layout: FleetLayout, source: str = "inventory") -> Inventory:
    """Validate plain data against the scenario's fleet, or raise InventoryError naming each field."""
    if not isinstance(data, Mapping):
        raise InventoryError([("", f"expected a mapping at the top level, got {type(data).__name__}")], source)
    try:
        inv = Inventory.model_validate(dict(data))
    except ValidationError as error:
        raise InventoryError(_pydantic_problems(error), source) from None
    problems = list(_cross_checks(inv, layout)) + list(_check_metric_command(inv))
    if problems:
        raise InventoryError(problems, source)
    return inv


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
    for name in inv.targets:
        if name not in known:
            yield (f"targets.{name}", "not a host of the scenario's fleet (names are {cell}-h{k}, "
                   f"e.g. {names[0]})")
    for field in ("deploy", "rollback", "current_version", "health", "preprod"):
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
                elif name not in PLACEHOLDERS:
                    yield (f"adapter.{field}[{i}]", f"unknown placeholder {{{name}}}; expected one of "
                           + ", ".join("{" + p + "}" for p in PLACEHOLDERS) + " or {label_NAME}")
        if field == "preprod" and placeholders(argv) & {"target", "address", "region", "az", "cell"}:
            yield ("adapter.preprod", "runs once per stage: it takes {version} and {stage}, not a target")


def _check_metric_command(inv: Inventory):
    if inv.metrics.command is None:
        return
    for i, arg in enumerate(inv.metrics.command):
        for name in sorted(placeholders([arg]) - set(METRIC_PLACEHOLDERS)):
            yield (f"metrics.command[{i}]", f"unknown placeholder {{{name}}}; expected one of "
                   + ", ".join("{" + p + "}" for p in METRIC_PLACEHOLDERS))


def build_targets(inv: Inventory, layout: FleetLayout) -> list[Target]:
    """One Target per host of the layout, in host order."""
    names = host_names(layout)
    out = []
    for h, name in enumerate(names):
        spec = inv.targets[name]
        out.append(Target(host=h, name=name, region=layout.region_names[int(layout.host_region[h])],
                          az=layout.az_names[int(layout.host_az[h])], cell=layout.cell_names[int(layout.host_cell[h])],
                          address=spec.address, labels=dict(spec.labels)))
    return out


def make_adapter(inv: Inventory, base_dir: Path) -> Adapter:
    """The adapter the inventory names; paths are relative to the inventory file's directory."""
    if inv.adapter.kind == "command":
        from .command_adapter import CommandAdapter

        return CommandAdapter(inv.adapter)
    from .local_adapter import LocalAdapter  # the local fleet's adapter (deploysim local up)

    return LocalAdapter((base_dir / inv.adapter.fleet_dir).resolve())


def make_metric_source(inv: Inventory, targets: Sequence[Target],
                       apis: Optional[Mapping[str, float]] = None) -> MetricSource:
    """The metric source the inventory names; `apis` (the scenario's API mix) shapes the probe's requests."""
    if inv.metrics.kind == "command":
        from .command_adapter import CommandMetricSource

        return CommandMetricSource(inv.metrics.command, timeout_s=inv.metrics.timeout)
    if inv.metrics.kind == "prometheus":
        from .prometheus_source import PrometheusSource

        return PrometheusSource(inv.metrics.url, dict(inv.metrics.queries))
    from .probe_source import ProbeSource

    return ProbeSource(list(targets), apis=dict(apis) if apis else None)
