"""Import other tools' rollout policies into a scenario's `policy:`, and export a pipeline to Argo Rollouts.

`import_policy` reads Argo Rollouts `Rollout`s (with their `AnalysisTemplate`s), Flagger `Canary`s,
AWS CodeDeploy deployment configurations and AWS AppConfig deployment strategies, and writes the
YAML a person would write, with a comment per step saying where it came from. `export_argo` writes
a pipeline's production stage as a `Rollout` and `AnalysisTemplate`s. docs/import-export.md has the
mapping of every field and what is not supported.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from ..scenario.loader import ScenarioError, read_yaml_with_positions, scenario_from_dict
from .argo import ArgoImport, MetricMapping, export_argo, is_rollout, is_template, parse_metric_option, unused_templates
from .aws import PREDEFINED, FleetFacts, import_appconfig, import_codedeploy, is_appconfig, is_codedeploy
from .common import Commented, Document, ImportedPipeline, PolicyImportError, _tidy, flow, read_documents
from .flagger import import_flagger, is_flagger

__all__ = ["PolicyImportError", "export_argo", "import_policy", "parse_metric_option"]

INDEFINITE_PAUSE_S = 3600.0
"""What an Argo `pause: {}` (wait for a person) bakes in deploysim unless told otherwise."""


def _documents(sources: Sequence[str]) -> list[Document]:
    docs: list[Document] = []
    for source in sources:
        if source in PREDEFINED and not os.path.exists(source):
            docs.append(Document(source, source, {}))
            continue
        try:
            with open(source, encoding="utf-8") as handle:
                text = handle.read()
        except OSError as error:
            raise PolicyImportError(source, "", f"cannot read file: {error.strerror}; a predefined name is one of "
                                                + ", ".join(PREDEFINED)) from None
        except UnicodeDecodeError:
            raise PolicyImportError(source, "", "not UTF-8 text") from None
        docs += read_documents(source, text)
    return docs


def _fleet_facts(base: Any, regions: Sequence[str]) -> FleetFacts:
    if base is None or not regions:
        return FleetFacts()
    chosen = [r for r in base.fleet.regions if r.name in regions]
    if not chosen:
        return FleetFacts()
    return FleetFacts(hosts=sum(r.azs * r.cells_per_az * r.hosts_per_cell for r in chosen),
                      azs=max(r.azs for r in chosen),
                      hosts_per_az=min(r.cells_per_az * r.hosts_per_cell for r in chosen))


def import_policy(sources: Sequence[str], *, into: str | None = None, pipeline: str | None = None,
                  regions: Sequence[str] = (), metric_map: Mapping[str, MetricMapping] | None = None,
                  indefinite_pause_s: float = INDEFINITE_PAUSE_S) -> str:
    """The YAML text of the imported policy: a `policy:` and `alarms:` fragment, or with `into` the
    whole base scenario with the imported pipeline in place (validated). Raises ScenarioError
    (PolicyImportError for a source) naming the file, line and field."""
    base_data, base = None, None
    if into is not None:
        from ..scenario import load_scenario

        base = load_scenario(into)
        base_data, _ = read_yaml_with_positions(into)
    docs = _documents(sources)
    target = _target_pipeline(base, pipeline, docs)
    regions = list(regions) or _base_regions(base, target)
    facts = _fleet_facts(base, regions)
    period_s = base.metric_period if base is not None else 60.0
    apis = tuple(base.traffic.apis) if base is not None else ()
    argo = ArgoImport(docs, metric_map or {}, apis, period_s, indefinite_pause_s)
    imported: list[ImportedPipeline] = []
    ignored: list[str] = []
    for doc in docs:
        data = doc.data
        if is_rollout(data):
            imported.append(argo.rollout(doc))
        elif is_template(data):
            continue
        elif is_flagger(data):
            imported.append(import_flagger(doc))
        elif is_codedeploy(data):
            imported.append(import_codedeploy(doc, facts))
        elif is_appconfig(data):
            imported.append(import_appconfig(doc))
        elif isinstance(data, Mapping) and "apiVersion" in data and "kind" in data:
            # Other Kubernetes objects of the same file (Services, VirtualServices): not a policy.
            ignored.append(f"{doc.source}: {data['kind']} {(data.get('metadata') or {}).get('name', '')} "
                           "(not a rollout policy): ignored")
        else:
            raise doc.fail("", "not an Argo Rollout or AnalysisTemplate, a Flagger Canary, a CodeDeploy deployment "
                               "configuration or an AppConfig deployment strategy (nor a predefined name: "
                               + ", ".join(PREDEFINED) + ")")
    if not imported:
        raise PolicyImportError(", ".join(sources), "", "nothing to import: no Rollout, Canary or deployment "
                                                         "configuration (AnalysisTemplates come with their Rollout)")
    imported[0].notes += ignored + unused_templates(argo)
    if len(imported) > 1 and (pipeline is not None or into is not None):
        raise PolicyImportError(", ".join(sources), "", f"{len(imported)} policies found; import one at a time with "
                                                         "--pipeline or --into")
    return _render(imported, base_data, into, target, regions)


def _target_pipeline(base: Any, pipeline: str | None, docs: Sequence[Document]) -> str | None:
    if base is None:
        return pipeline
    names = list(base.policy.pipelines)
    if pipeline is not None:
        if pipeline not in names:
            raise ScenarioError([("", f"--pipeline {pipeline}: the base scenario's pipelines are {', '.join(names)}")],
                                "--into")
        return pipeline
    if len(names) == 1:
        return names[0]
    raise ScenarioError([("", f"name the pipeline to replace with --pipeline (one of {', '.join(names)})")], "--into")


def _base_regions(base: Any, pipeline: str | None) -> list[str]:
    if base is None or pipeline is None:
        return []
    for stage in base.policy.pipelines[pipeline].stages:
        if stage.kind == "production":
            return list(stage.regions)
    return []


# ----------------------------------------------------------------------------- rendering


def block(value: Any, indent: int) -> list[str]:
    text = yaml.safe_dump(_tidy(value), default_flow_style=None, sort_keys=False, width=110)
    return [" " * indent + line for line in text.rstrip("\n").splitlines()]


def _commented(item: Commented, indent: int, lead: str = "- ") -> list[str]:
    pad = " " * indent
    lines = [f"{pad}# {item.comment}"] if item.comment else []
    value = item.value
    text = flow(value)
    if len(text) + indent + len(lead) <= 110:
        return [*lines, f"{pad}{lead}{text}"]
    body = block(value, indent + len(lead))
    body[0] = pad + lead + body[0][indent + len(lead):]
    return lines + body


def _stage_lines(p: ImportedPipeline, regions: Sequence[str], indent: int,
                 name: str | None = None) -> tuple[list[str], dict]:
    """The imported production stage as YAML lines (and as data)."""
    pad = " " * indent
    if p.exact is not None:
        exact = dict(p.exact["stage"])
        lines = [f"{pad}# {p.origin}: exactly as deploysim exported it (annotation deploysim.io/policy)"]
        return lines + block([exact], indent), exact
    if not regions:
        raise PolicyImportError(p.origin, "", "name the region(s) of the cluster with --region (or give the base "
                                              "scenario with --into)")
    name = name or p.name
    stage: dict[str, Any] = {"name": name, "kind": "production", "regions": list(regions)}
    lines = [f"{pad}# {p.origin}", f"{pad}- name: {flow(name)}", f"{pad}  kind: production",
             f"{pad}  regions: {flow(list(regions))}"]
    inner = indent + 2
    for key, item in (("approval", p.approval), ("batching", p.batching), ("one_box", p.one_box)):
        if item is not None:
            stage[key] = item.value
            lines += _commented(item, inner, f"{key}: ")
    stage["waves"] = [w.value for w in p.waves]
    lines.append(f"{' ' * inner}waves:")
    for wave in p.waves:
        lines += _commented(wave, inner + 2)
    return lines, stage


def _render(imported: Sequence[ImportedPipeline], base_data: Any, base_source: str | None, target: str | None,
            regions: Sequence[str]) -> str:
    header = [f"Imported by `deploysim import` from {', '.join(p.origin for p in imported)}."]
    if base_source is not None:
        header.append(f"Into {os.path.basename(base_source)}: its other parts as they were (its comments are not "
                      "kept); the pipeline's production stages replaced by the imported one.")
    else:
        header.append("A fragment: add its alarms and pipeline to a scenario (or import with --into).")
    notes = [n for p in imported for n in p.notes]
    if notes:
        header.append("Approximations and what was not imported:")
        header += [f"  - {n}" for n in notes]
    out = [f"# {line}" for line in header]
    base = dict(base_data) if isinstance(base_data, Mapping) else {}
    rest = {k: v for k, v in base.items() if k not in ("alarms", "policy")}
    if rest:
        out += yaml.safe_dump(rest, sort_keys=False, width=110).rstrip("\n").splitlines()
    # Alarms: the base's, then the imported (an alarm already there with the same definition is kept once).
    base_alarms = dict(base.get("alarms") or {})
    metric = list(base_alarms.get("metric") or [])
    composite = list(base_alarms.get("composite") or [])
    new_metric: list[Commented] = []
    new_composite: list[dict] = []
    for p in imported:
        candidates = [Commented(a, f"{p.origin}: as exported") for a in (p.exact or {}).get("alarms", {}).get(
            "metric", [])] if p.exact is not None else p.alarms
        for item in candidates:
            _merge_alarm(metric, new_metric, item, p.origin)
        if p.exact is not None:
            for c in p.exact.get("alarms", {}).get("composite", []):
                if not any(c == old for old in composite + new_composite):
                    if any(c["name"] == old["name"] for old in composite + new_composite):
                        raise PolicyImportError(p.origin, "", f"composite alarm {c['name']} differs from the base "
                                                              "scenario's of that name")
                    new_composite.append(c)
    if metric or new_metric or composite or new_composite or base_alarms:
        out.append("alarms:")
        others = {k: v for k, v in base_alarms.items() if k not in ("metric", "composite")}
        if others:
            out += block(others, 2)
        if metric or new_metric:
            out.append("  metric:")
            out += [f"    - {flow(a)}" for a in metric]
            for item in new_metric:
                out += _commented(item, 4)
        if composite or new_composite:
            out.append("  composite:")
            out += [f"    - {flow(c)}" for c in composite + new_composite]
    out.append("policy:")
    out.append("  pipelines:")
    base_pipes = dict((base.get("policy") or {}).get("pipelines") or {})
    chosen = {(target or p.name): p for p in imported}
    for name in [*base_pipes, *(n for n in chosen if n not in base_pipes)]:
        if name not in chosen:
            out += block({name: base_pipes[name]}, 4)
            continue
        out += _pipeline_lines(chosen[name], name, dict(base_pipes.get(name) or {}), regions)
    text = "\n".join(out) + "\n"
    if base_source is not None:
        data = yaml.safe_load(text)
        scenario_from_dict(data, source=f"the import into {base_source}")
    return text


def _pipeline_lines(p: ImportedPipeline, name: str, kept: dict, regions: Sequence[str]) -> list[str]:
    """The imported pipeline: the base's pipeline (if any) with its production stages replaced."""
    old_stages = [s for s in kept.pop("stages", []) if isinstance(s, Mapping)]
    stages = [s for s in old_stages if s.get("kind") == "preproduction"]
    production = [s for s in old_stages if s.get("kind") == "production"]
    if p.watch or p.exact is not None:
        kept.pop("watch", None)
    out = [f"    {name}:"]
    if p.exact is not None:
        watch = {k: v for k, v in p.exact.get("watch", {}).items() if v}
        if watch:
            out.append(f"      watch: {flow(watch)}")
    elif p.watch:
        out.append(f"      watch: {flow(p.watch)}  # the background analysis' metrics, over each step's hosts")
    if kept:
        out += block(kept, 6)
    out.append("      stages:")
    out += [f"        - {flow(s)}" for s in stages]
    lines, _ = _stage_lines(p, regions, 8, str(production[0]["name"]) if production else None)
    return out + lines


def _merge_alarm(metric: list[dict], new: list[Commented], item: Commented, origin: str) -> None:
    alarm = item.value
    for old in [*metric, *(n.value for n in new)]:
        if old.get("name") == alarm["name"]:
            if _same_alarm(old, alarm):
                return
            raise PolicyImportError(origin, "", f"alarm {alarm['name']} differs from the base scenario's alarm of "
                                                "that name: rename one")
    new.append(item)


def _same_alarm(a: Mapping, b: Mapping) -> bool:
    from ..scenario.schema import MetricAlarm

    try:
        return MetricAlarm.model_validate(a) == MetricAlarm.model_validate(b)
    except ValueError:
        return False
