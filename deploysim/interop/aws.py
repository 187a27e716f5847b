"""AWS CodeDeploy deployment configurations and AWS AppConfig deployment strategies, as deploysim
production stages.

Accepted forms: a predefined name (`CodeDeployDefault.HalfAtATime`, `AppConfig.Canary10Percent20Minutes`,
given on the command line or as a YAML/JSON string), the API's JSON (CodeDeploy's
`CreateDeploymentConfig` input in camelCase, AppConfig's `CreateDeploymentStrategy` input in
PascalCase), or a CloudFormation resource (`Type: AWS::CodeDeploy::DeploymentConfig` or
`AWS::AppConfig::DeploymentStrategy` with `Properties`). See docs/import-export.md for the mapping.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..scenario.edit import duration_text
from .common import Commented, Document, ImportedPipeline, as_mapping, child, number


@dataclass(frozen=True)
class FleetFacts:
    """What a stage's numbers may depend on: hosts and AZs of each region of the cluster (from --into)."""

    hosts: int | None = None  # hosts of the stage's regions
    azs: int | None = None  # AZs of the region with the most
    hosts_per_az: int | None = None  # hosts of its smallest AZ


# ----------------------------------------------------------------------------- CodeDeploy

CODEDEPLOY_SERVER: dict[str, tuple[str, int]] = {
    # EC2/on-premises (AWS CodeDeploy user guide, "Deployment configurations on an EC2/on-premises
    # compute platform"); OneAtATime is reported by GetDeploymentConfig as MOST_CONCURRENCY 1.
    "CodeDeployDefault.AllAtOnce": ("HOST_COUNT", 0),
    "CodeDeployDefault.HalfAtATime": ("FLEET_PERCENT", 50),
    "CodeDeployDefault.OneAtATime": ("MOST_CONCURRENCY", 1),
}
CODEDEPLOY_TRAFFIC: dict[str, tuple[str, int, int]] = {
    # Amazon ECS and AWS Lambda: (traffic routing type, percentage, interval in minutes).
    "CodeDeployDefault.ECSAllAtOnce": ("AllAtOnce", 100, 0),
    "CodeDeployDefault.ECSLinear10PercentEvery1Minutes": ("TimeBasedLinear", 10, 1),
    "CodeDeployDefault.ECSLinear10PercentEvery3Minutes": ("TimeBasedLinear", 10, 3),
    "CodeDeployDefault.ECSCanary10Percent5Minutes": ("TimeBasedCanary", 10, 5),
    "CodeDeployDefault.ECSCanary10Percent15Minutes": ("TimeBasedCanary", 10, 15),
    "CodeDeployDefault.LambdaAllAtOnce": ("AllAtOnce", 100, 0),
    "CodeDeployDefault.LambdaCanary10Percent5Minutes": ("TimeBasedCanary", 10, 5),
    "CodeDeployDefault.LambdaCanary10Percent10Minutes": ("TimeBasedCanary", 10, 10),
    "CodeDeployDefault.LambdaCanary10Percent15Minutes": ("TimeBasedCanary", 10, 15),
    "CodeDeployDefault.LambdaCanary10Percent30Minutes": ("TimeBasedCanary", 10, 30),
    "CodeDeployDefault.LambdaLinear10PercentEvery1Minute": ("TimeBasedLinear", 10, 1),
    "CodeDeployDefault.LambdaLinear10PercentEvery2Minutes": ("TimeBasedLinear", 10, 2),
    "CodeDeployDefault.LambdaLinear10PercentEvery3Minutes": ("TimeBasedLinear", 10, 3),
    "CodeDeployDefault.LambdaLinear10PercentEvery10Minutes": ("TimeBasedLinear", 10, 10),
}

# ----------------------------------------------------------------------------- AppConfig

APPCONFIG: dict[str, tuple[int, str, float, int]] = {
    # AWS AppConfig user guide, "Using predefined deployment strategies":
    # (DeploymentDurationInMinutes, GrowthType, GrowthFactor, FinalBakeTimeInMinutes).
    "AppConfig.Linear20PercentEvery6Minutes": (30, "LINEAR", 20, 30),
    "AppConfig.Canary10Percent20Minutes": (20, "EXPONENTIAL", 10, 10),
    "AppConfig.AllAtOnce": (0, "LINEAR", 100, 10),
    "AppConfig.Linear50PercentEvery30Seconds": (1, "LINEAR", 50, 1),
}

PREDEFINED = (*CODEDEPLOY_SERVER, *CODEDEPLOY_TRAFFIC, *APPCONFIG)


def _lower_first(data: Any) -> Any:
    """CloudFormation's PascalCase keys as the CodeDeploy API's camelCase (the same names otherwise)."""
    if isinstance(data, Mapping):
        return {(k[:1].lower() + k[1:] if isinstance(k, str) else k): _lower_first(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_lower_first(v) for v in data]
    return data


def is_codedeploy(data: Any) -> bool:
    if isinstance(data, str):
        return data in CODEDEPLOY_SERVER or data in CODEDEPLOY_TRAFFIC
    if not isinstance(data, Mapping):
        return False
    if data.get("Type") == "AWS::CodeDeploy::DeploymentConfig":
        return True
    keys = set(_lower_first(dict(data)))
    return bool(keys & {"deploymentConfigName", "minimumHealthyHosts", "trafficRoutingConfig", "zonalConfig"})


def is_appconfig(data: Any) -> bool:
    if isinstance(data, str):
        return data in APPCONFIG
    if not isinstance(data, Mapping):
        return False
    return data.get("Type") == "AWS::AppConfig::DeploymentStrategy" or bool(
        set(data) & {"DeploymentDurationInMinutes", "GrowthFactor", "GrowthType", "FinalBakeTimeInMinutes"})


def _body(doc: Document) -> tuple[Any, str]:
    """The configuration's fields and the path they are under (a CloudFormation resource's Properties)."""
    data = doc.data
    if isinstance(data, Mapping) and "Properties" in data and "Type" in data:
        unknown = sorted(set(data) - {"Type", "Properties", "DeletionPolicy", "UpdateReplacePolicy", "Condition",
                                       "Metadata", "DependsOn"})
        if unknown:
            raise doc.unsupported(unknown[0], "not a field of a CloudFormation resource")
        return as_mapping(doc, "Properties", data["Properties"]), "Properties"
    return data, ""


# ----------------------------------------------------------------------------- CodeDeploy


def import_codedeploy(doc: Document, fleet: FleetFacts) -> ImportedPipeline:
    """A CodeDeploy deployment configuration: a production stage over one region."""
    body, base = _body(doc)
    if isinstance(body, str):
        return _codedeploy_predefined(doc, body, fleet)
    raw = dict(body)
    data = _lower_first(raw)
    known = {"deploymentConfigName", "computePlatform", "minimumHealthyHosts", "trafficRoutingConfig", "zonalConfig"}
    for key in data:
        if key not in known:
            raise doc.unsupported(child(base, _original(raw, key)), "not a field of a CodeDeploy deployment "
                                  "configuration deploysim knows")
    name = str(data.get("deploymentConfigName") or "codedeploy")
    if name in CODEDEPLOY_SERVER or name in CODEDEPLOY_TRAFFIC:
        if len(data) == 1:
            return _codedeploy_predefined(doc, name, fleet)
    origin = f'AWS CodeDeploy deployment configuration "{name}" ({doc.source})'
    pipeline = ImportedPipeline(_pipeline_name(name), origin)
    path = child(base, _original(raw, "trafficRoutingConfig"))
    routing = None if data.get("trafficRoutingConfig") is None else as_mapping(doc, path, data["trafficRoutingConfig"])
    if routing is not None and routing.get("type", "AllAtOnce") != "AllAtOnce" or (
            routing is not None and data.get("computePlatform") in ("Lambda", "ECS")):
        kind = routing.get("type", "AllAtOnce")
        if kind == "TimeBasedCanary":
            canary = as_mapping(doc, child(path, "timeBasedCanary"), routing.get("timeBasedCanary"))
            pct = number(doc, child(path, "timeBasedCanary.canaryPercentage"), canary.get("canaryPercentage"))
            minutes = number(doc, child(path, "timeBasedCanary.canaryInterval"), canary.get("canaryInterval"))
            _traffic_canary(pipeline, pct, minutes,
                            f"trafficRoutingConfig TimeBasedCanary {pct:g}% for {minutes:g} min")
        elif kind == "TimeBasedLinear":
            linear = as_mapping(doc, child(path, "timeBasedLinear"), routing.get("timeBasedLinear"))
            pct = number(doc, child(path, "timeBasedLinear.linearPercentage"), linear.get("linearPercentage"))
            minutes = number(doc, child(path, "timeBasedLinear.linearInterval"), linear.get("linearInterval"))
            _traffic_linear(pipeline, pct, minutes, f"trafficRoutingConfig TimeBasedLinear {pct:g}% every "
                            f"{minutes:g} min")
        elif kind == "AllAtOnce":
            _traffic_linear(pipeline, 100, 0, "trafficRoutingConfig AllAtOnce")
        else:
            raise doc.unsupported(child(path, "type"), f"traffic routing type {kind!r}")
        return pipeline
    healthy = data.get("minimumHealthyHosts")
    zonal = data.get("zonalConfig")
    if healthy is None and zonal is None:
        raise doc.fail(base, "a deployment configuration needs minimumHealthyHosts, trafficRoutingConfig or "
                             "zonalConfig")
    hpath = child(base, _original(raw, "minimumHealthyHosts"))
    healthy = None if healthy is None else as_mapping(doc, hpath, healthy)
    if zonal is not None:
        as_mapping(doc, child(base, _original(raw, "zonalConfig")), zonal)
    kind, value = ("HOST_COUNT", 0.0) if healthy is None else (
        str(healthy.get("type")), number(doc, child(hpath, "value"), healthy.get("value"), integer=True))
    _server(doc, pipeline, kind, value, hpath, fleet, zonal, child(base, _original(raw, "zonalConfig")))
    return pipeline


def _original(raw: Mapping, key: str) -> str:
    """The key as the file spells it (PascalCase in CloudFormation)."""
    for k in raw:
        if isinstance(k, str) and k[:1].lower() + k[1:] == key:
            return k
    return key


def _pipeline_name(name: str) -> str:
    return name.split(".", 1)[-1].replace(" ", "-") or "imported"


def _codedeploy_predefined(doc: Document, name: str, fleet: FleetFacts) -> ImportedPipeline:
    origin = f"AWS CodeDeploy predefined deployment configuration {name}"
    pipeline = ImportedPipeline(_pipeline_name(name), origin)
    if name in CODEDEPLOY_TRAFFIC:
        kind, pct, minutes = CODEDEPLOY_TRAFFIC[name]
        if kind == "TimeBasedCanary":
            _traffic_canary(pipeline, pct, minutes, f"{name}: {pct}% for {minutes} min, then the rest")
        else:
            _traffic_linear(pipeline, pct, minutes, f"{name}: {pct}% every {minutes} min" if minutes else name)
        return pipeline
    if name not in CODEDEPLOY_SERVER:
        raise doc.fail("", f"unknown predefined deployment configuration {name!r}; known: "
                           + ", ".join(sorted((*CODEDEPLOY_SERVER, *CODEDEPLOY_TRAFFIC))))
    kind, value = CODEDEPLOY_SERVER[name]
    _server(doc, pipeline, kind, value, "", fleet, None, "", label=name)
    return pipeline


def _keep_serving() -> dict:
    # Traffic shifting moves requests between two fleets that both serve: no capacity is lost and
    # the shift itself takes no time.
    return {"max_share": 1.0, "duration": "0s", "hosts_keep_serving": True}


def _traffic_canary(pipeline: ImportedPipeline, pct: float, minutes: float, what: str) -> None:
    pipeline.batching = Commented(_keep_serving(), "traffic shifting: both versions serve, the shift is instant")
    pipeline.waves.append(Commented({"unit": "traffic", "weight": pct, "bake": duration_text(minutes * 60)},
                                    f"{what}: {pct:g}% of the traffic, then {minutes:g} min"))
    pipeline.waves.append(Commented({"unit": "traffic", "weight": 100, "bake": "0s"}, f"{what}: the remaining traffic"))


def _traffic_linear(pipeline: ImportedPipeline, pct: float, minutes: float, what: str) -> None:
    if pct <= 0 or pct > 100:
        raise ValueError(f"a traffic percentage must be in (0, 100], got {pct:g}")
    pipeline.batching = Commented(_keep_serving(), "traffic shifting: both versions serve, the shift is instant")
    weights = [min(100.0, pct * k) for k in range(1, math.ceil(100 / pct - 1e-9) + 1)]
    for i, weight in enumerate(weights):
        last = i == len(weights) - 1
        pipeline.waves.append(Commented(
            {"unit": "traffic", "weight": weight, "bake": "0s" if last else duration_text(minutes * 60)},
            f"{what}: shift {i + 1} of {len(weights)}" + ("" if last else f", then {minutes:g} min")))


def _server(doc: Document, pipeline: ImportedPipeline, kind: str, value: float, hpath: str, fleet: FleetFacts,
            zonal: Mapping | None, zpath: str, label: str = "") -> None:
    """EC2/on-premises: the hosts are replaced in batches that keep the minimum healthy."""
    what = label or f"minimumHealthyHosts {kind} {value:g}"
    share = _batch_share(doc, kind, value, hpath, fleet.hosts, "the stage's hosts")
    batching = {"max_share": share}
    comment = f"{what}: at most {share:.4g} of the hosts replaced at once"
    if zonal is None:
        pipeline.batching = Commented(batching, comment)
        pipeline.waves.append(Commented({"unit": "region", "count": "rest", "bake": "0s"},
                                        f"{what}: every host of the region, batch after batch"))
        return
    zonal = dict(zonal)
    for key in zonal:
        if key not in ("firstZoneMonitorDurationInSeconds", "monitorDurationInSeconds", "minimumHealthyHostsPerZone",
                       "FirstZoneMonitorDurationInSeconds", "MonitorDurationInSeconds",
                       "MinimumHealthyHostsPerZone"):
            raise doc.unsupported(child(zpath, key), "not a field of zonalConfig")
    zonal = _lower_first(zonal)
    if fleet.azs is None:
        raise doc.fail(zpath, "zonalConfig deploys one AZ after another: give the scenario whose fleet it runs "
                              "on with --into (its AZ count decides the waves)")
    monitor = number(doc, child(zpath, "monitorDurationInSeconds"), zonal.get("monitorDurationInSeconds", 0))
    first = number(doc, child(zpath, "firstZoneMonitorDurationInSeconds"),
                   zonal.get("firstZoneMonitorDurationInSeconds", monitor))
    per_zone = zonal.get("minimumHealthyHostsPerZone")
    if per_zone is not None:
        ppath = child(zpath, "minimumHealthyHostsPerZone")
        per_zone = as_mapping(doc, ppath, per_zone)
        zone_kind = str(per_zone.get("type"))
        zone_value = number(doc, child(ppath, "value"), per_zone.get("value"), integer=True)
        share = _batch_share(doc, zone_kind, zone_value, ppath, fleet.hosts_per_az, "an AZ's hosts")
        comment = (f"zonalConfig.minimumHealthyHostsPerZone {zone_kind} {zone_value:g}: at most {share:.4g} of an "
                   "AZ's hosts replaced at once")
        batching = {"max_share": share}
    pipeline.batching = Commented(batching, comment)
    for az in range(fleet.azs):
        last = az == fleet.azs - 1
        bake = first if az == 0 else monitor
        pipeline.waves.append(Commented(
            {"unit": "az", "count": "rest" if last else 1, "per_region": True, "bake": duration_text(bake)},
            f"zonalConfig: AZ {az + 1} of {fleet.azs} in each region, then "
            + ("firstZoneMonitorDurationInSeconds" if az == 0 else "monitorDurationInSeconds") + f" {bake:g} s"))


def _batch_share(doc: Document, kind: str, value: float, path: str, hosts: int | None, of: str) -> float:
    if kind == "FLEET_PERCENT":
        if not 0 <= value < 100:
            raise doc.fail(child(path, "value"), "FLEET_PERCENT must be at least 0 and below 100")
        return 1.0 if value == 0 else round((100 - value) / 100, 6)
    if kind in ("HOST_COUNT", "MOST_CONCURRENCY"):
        if kind == "HOST_COUNT" and value == 0:
            return 1.0
        if hosts is None:
            raise doc.fail(path, f"{kind} {value:g} depends on how many hosts there are: give the scenario whose "
                                 "fleet it runs on with --into")
        at_once = value if kind == "MOST_CONCURRENCY" else hosts - value
        if at_once < 1:
            raise doc.fail(child(path, "value"), f"HOST_COUNT {value:g} leaves no host of {of} ({hosts}) to "
                                                 "deploy to")
        # The smallest share that still gives `at_once` whole hosts a batch (deploysim rounds down).
        return min(1.0, math.ceil(at_once / hosts * 1e6) / 1e6)
    raise doc.unsupported(child(path, "type"), f"minimum healthy hosts type {kind!r}")


# ----------------------------------------------------------------------------- AppConfig


def import_appconfig(doc: Document) -> ImportedPipeline:
    """An AppConfig deployment strategy: growing traffic weights, then the final bake."""
    body, base = _body(doc)
    if isinstance(body, str):
        if body not in APPCONFIG:
            raise doc.fail("", f"unknown predefined deployment strategy {body!r}; known: {', '.join(APPCONFIG)}")
        whole_minutes, growth_type, factor, bake_minutes = APPCONFIG[body]
        pipeline = ImportedPipeline(_pipeline_name(body), f"AWS AppConfig predefined deployment strategy {body}")
        _appconfig_waves(pipeline, whole_minutes, growth_type, factor, bake_minutes, body)
        return pipeline
    data = dict(body)
    known = {"Name", "Description", "DeploymentDurationInMinutes", "FinalBakeTimeInMinutes", "GrowthFactor",
             "GrowthType", "ReplicateTo", "Tags", "Id", "DeletionProtectionCheck"}
    for key in data:
        if key not in known:
            raise doc.unsupported(child(base, key), "not a field of an AppConfig deployment strategy")
    name = str(data.get("Name") or "appconfig")
    if name in APPCONFIG and not set(data) - {"Name", "Id", "Description"}:
        return import_appconfig(Document(doc.source, name, doc.positions))
    if "DeploymentDurationInMinutes" not in data or "GrowthFactor" not in data:
        raise doc.fail(base, "a deployment strategy needs DeploymentDurationInMinutes and GrowthFactor")
    minutes = number(doc, child(base, "DeploymentDurationInMinutes"), data["DeploymentDurationInMinutes"])
    factor = number(doc, child(base, "GrowthFactor"), data["GrowthFactor"])
    bake = number(doc, child(base, "FinalBakeTimeInMinutes"), data.get("FinalBakeTimeInMinutes", 0))
    growth_type = str(data.get("GrowthType", "LINEAR"))
    if growth_type not in ("LINEAR", "EXPONENTIAL"):
        raise doc.unsupported(child(base, "GrowthType"), f"growth type {growth_type!r} (LINEAR or EXPONENTIAL)")
    if not 1 <= factor <= 100:
        raise doc.fail(child(base, "GrowthFactor"), "GrowthFactor must be between 1 and 100 (percent)")
    pipeline = ImportedPipeline(_pipeline_name(name), f'AWS AppConfig deployment strategy "{name}" ({doc.source})')
    if data.get("ReplicateTo") not in (None, "NONE"):
        pipeline.notes.append(f"ReplicateTo {data['ReplicateTo']}: where AppConfig stores the strategy, not "
                              "how it deploys: not imported")
    _appconfig_waves(pipeline, minutes, growth_type, factor, bake, f"{growth_type} {factor:g}%")
    return pipeline


def appconfig_weights(growth_type: str, factor: float) -> list[float]:
    """The percentages of targets after each step: LINEAR G, 2G, ...; EXPONENTIAL G*2^N (AppConfig's
    formula), the last step 100."""
    weights: list[float] = []
    k = 0
    while not weights or weights[-1] < 100:
        step = factor * (k + 1) if growth_type == "LINEAR" else factor * 2 ** k
        weights.append(min(100.0, round(step, 9)))
        k += 1
    return weights


def _appconfig_waves(pipeline: ImportedPipeline, minutes: float, growth_type: str, factor: float,
                     final_bake_min: float, what: str) -> None:
    weights = appconfig_weights(growth_type, factor)
    step_s = minutes * 60 / len(weights)
    pipeline.batching = Commented({"max_share": 1.0, "duration": "0s", "hosts_keep_serving": True},
                                  "AppConfig: targets take the configuration while they serve")
    for i, weight in enumerate(weights):
        last = i == len(weights) - 1
        bake = final_bake_min * 60 if last else step_s
        how = (f"FinalBakeTimeInMinutes {final_bake_min:g}" if last
               else f"DeploymentDurationInMinutes {minutes:g} over {len(weights)} steps")
        pipeline.waves.append(Commented({"unit": "traffic", "weight": weight, "bake": duration_text(bake)},
                                        f"{what}: step {i + 1}, {weight:g}% of the targets; {how}"))
    pipeline.notes.append(f"AppConfig reaches each step's share one step interval ({step_s:g} s) after the "
                          "previous; deploysim starts the first step at once, so the stage is one interval shorter")
