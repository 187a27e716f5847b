"""The base a fit starts from: a whole scenario (its fleet, traffic and policy kept), or a file that
describes only the fleet (and perhaps the traffic), which gets `deploysim init`'s starter policy for
each pipeline of the history, said so in the file."""

from __future__ import annotations

import copy
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from ..scenario import Scenario, ScenarioError
from ..scenario.loader import read_yaml_with_positions, scenario_from_dict
from ..scenario.starter import RegionSpec, starter_scenario

WORLD_AND_POLICY = ("changes", "policy")


@dataclass(frozen=True)
class Base:
    """The base scenario's text (comments kept) and its validated objects; `starter` when the file
    described only the fleet and deploysim's starter policy filled in the rest."""

    name: str  # the file's name, as comments cite it
    text: str
    scenario: Scenario
    starter: bool = False


def load_base(path: str | Path, pipelines: list[str]) -> Base:
    """The base of a fit from the file at `path`; raises ScenarioError (with file positions) when
    it does not make a valid scenario."""
    source = str(path)
    data, positions = read_yaml_with_positions(source)
    if not isinstance(data, dict) or all(key in data for key in WORLD_AND_POLICY):
        scenario = scenario_from_dict(data if data is not None else {}, source, positions)
        return Base(Path(path).name, Path(path).read_text(encoding="utf-8"), scenario)
    regions = (data.get("fleet") or {}).get("regions") if isinstance(data.get("fleet"), dict) else None
    if not isinstance(regions, list) or not regions or not all(isinstance(r, dict) and "name" in r for r in regions):
        raise ScenarioError([("fleet.regions", "a fleet file needs fleet.regions, each with a name")], source,
                            positions)
    text = _starter_for(data, [RegionSpec(str(r["name"]), str(r.get("timezone", "UTC"))) for r in regions],
                        pipelines or ["code"], Path(path).name)
    yaml = YAML(typ="safe")
    try:
        scenario = scenario_from_dict(yaml.load(text), source)
    except ScenarioError as error:
        raise ScenarioError(error.problems, source, positions) from None
    return Base(Path(path).name, text, scenario, starter=True)


def _starter_for(fleet_file: dict[str, Any], regions: list[RegionSpec], pipelines: list[str], file_name: str) -> str:
    """deploysim init's starter for the regions, with the fleet file's own sections in place of the
    starter's and one copy of the starter's `code` pipeline for each pipeline of the history."""
    yaml = YAML(typ="rt")
    yaml.width = 120
    yaml.indent(mapping=2, sequence=4, offset=2)
    root = yaml.load(starter_scenario(Path(file_name).stem, regions))
    for key, value in fleet_file.items():
        if isinstance(value, dict) and isinstance(root.get(key), dict) and key != "fleet":
            root[key].update(value)  # e.g. the file's traffic numbers over the starter's, its APIs kept
        else:
            root[key] = value
    apis = set((root["traffic"].get("apis") or {"All": 1.0}).keys())
    template_change = root["changes"]["code"]
    # A starter defect on an API the fleet file's traffic does not have is left out.
    kept = [d for d in template_change["defects"] if d.get("api") in (None, *apis)]
    template_change["defects"] = kept or [{"name": "fault-spike", "error_rate": 0.3}]
    template_policy = root["policy"]["pipelines"]["code"]
    changes, policies = root["changes"], root["policy"]["pipelines"]
    for name in ("code",):
        if name not in pipelines:
            del changes[name], policies[name]
    for p in pipelines:
        if p not in changes:
            changes[p] = copy.deepcopy(template_change)
            policies[p] = copy.deepcopy(template_policy)
        policies.yaml_add_eol_comment(f"deploysim init's starter policy ({file_name} has none): edit it", p)
    root.yaml_set_start_comment(f"Base: {file_name}'s fleet, with `deploysim init`'s starter policy for each "
                                "pipeline of the history.")
    out = io.StringIO()
    yaml.dump(root, out)
    return out.getvalue()
