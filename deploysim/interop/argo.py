"""Argo Rollouts (argoproj.io/v1alpha1): a `Rollout`'s canary strategy and its `AnalysisTemplate`s
as a deploysim production stage, and back.

Import: each `setWeight` starts a traffic wave; `pause` durations add up to its bake; an `analysis`
step becomes the wave's Argo-style judge; background analysis (`spec.strategy.canary.analysis`)
becomes metric alarms watched over the wave. A Prometheus query is read as the deploysim metric it
measures: the query `deploysim export` writes for that metric, a metric named after one (`error_rate`),
or what `--metric NAME=METRIC` says (`1-error_rate` for a success rate). Export writes the reverse,
plus the exact deploysim stage in the annotation `deploysim.io/policy`, which import uses only
while the steps still say what it says. See docs/import-export.md.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..alarms.composite import Or, StateIs, parse_rule
from ..executor.prometheus_source import DEFAULT_QUERIES
from ..fleet import build_fleet
from ..judge.condition import parse_condition
from ..policy.plan import build_stage
from ..scenario.edit import duration_text
from ..scenario.schema import Judge, MetricAlarm, Scenario, Stage, Watch
from .common import Commented, Document, ImportedPipeline, as_list, as_mapping, child, flow, number, seconds

API_VERSION = "argoproj.io/v1alpha1"
ANNOTATION = "deploysim.io/policy"
METRICS = tuple(MetricAlarm.model_fields["metric"].annotation.__args__)  # type: ignore[union-attr]

_CANARY_NOTED = {  # Kubernetes detail of a canary that does not change when or how far it goes
    "canaryService", "stableService", "canaryMetadata", "stableMetadata", "scaleDownDelaySeconds",
    "scaleDownDelayRevisionLimit", "abortScaleDownDelaySeconds", "dynamicStableScale", "antiAffinity",
    "minPodsPerReplicaSet", "maxSurge", "maxUnavailable", "trafficRouting", "replicaProgressThreshold",
    "trafficManagement",  # the older name of trafficRouting
}
_STEP_WHY = {
    "experiment": "experiments run extra ReplicaSets beside the rollout",
    "setCanaryScale": "a canary scaled apart from its weight",
    "setHeaderRoute": "header-based routing sends chosen requests, not a weight",
    "setMirrorRoute": "mirroring sends copies of requests, which deploysim does not model",
    "plugin": "step plugins run code deploysim cannot simulate",
}


def is_rollout(data: Any) -> bool:
    return isinstance(data, Mapping) and data.get("kind") == "Rollout" and str(
        data.get("apiVersion", "")).startswith("argoproj.io/")


def is_template(data: Any) -> bool:
    return isinstance(data, Mapping) and data.get("kind") in ("AnalysisTemplate", "ClusterAnalysisTemplate") and str(
        data.get("apiVersion", "")).startswith("argoproj.io/")


# ----------------------------------------------------------------------------- the metric a query measures


@dataclass(frozen=True)
class MetricMapping:
    """Which deploysim metric an Argo metric reads; `complement`: it reads 1 - that (a success rate)."""

    metric: str
    api: str | None = None
    statistic: str = "average"
    dependency: str | None = None
    complement: bool = False


def parse_metric_option(text: str) -> tuple[str, MetricMapping]:
    """`NAME=METRIC` or `NAME=1-METRIC` (--metric): the Argo metric NAME reads METRIC (or 1 - METRIC)."""
    name, sep, value = text.partition("=")
    complement = value.replace(" ", "").startswith("1-")
    metric = value.replace(" ", "")[2:] if complement else value.strip()
    if not sep or not name or metric not in METRICS:
        raise ValueError(f"--metric {text!r}: expected NAME=METRIC or NAME=1-METRIC with METRIC one of "
                         + ", ".join(METRICS))
    return name.strip(), MetricMapping(metric, complement=complement)


def export_query(metric: str, *, api: str | None, statistic: str, dependency: str | None, period_s: float) -> str:
    """The PromQL `deploysim export` writes for an alarm or judge metric (the Prometheus source's
    template for it, over the Argo args `instances`)."""
    template = DEFAULT_QUERIES.get(metric)
    if template is None:
        of = f" of {dependency}" if dependency else ""
        on_api = f", api {api}" if api else ""
        return f"vector(0) # deploysim has no default query for {metric}{of} ({statistic}{on_api}): write one"
    values = {"instances": "{{args.instances}}", "api": api if api not in (None, "All") else ".*",
              "period": f"{int(period_s)}s", "agg": "max" if statistic == "maximum" else "avg",
              "dependency": dependency or ""}
    return re.sub(r"\{(instances|api|period|agg|dependency)\}", lambda m: values[m.group(1)], template)


_PLACEHOLDER = re.compile(r"vector\(0\) # deploysim has no default query for (\w+)(?: of (\S+))? "
                          r"\((\w+)(?:, api (\S+))?\)")


def _recognise(query: str, period_s: float, apis: Sequence[str]) -> MetricMapping | None:
    placeholder = _PLACEHOLDER.match(query)
    if placeholder is not None and placeholder.group(1) in METRICS:
        return MetricMapping(placeholder.group(1), placeholder.group(4), placeholder.group(3), placeholder.group(2))
    named = [a for a in re.findall(r'api=~"([^"]*)"', query) if a != ".*"]
    for metric in METRICS:
        for api in (None, *apis, *named):
            for statistic in ("average", "maximum"):
                if export_query(metric, api=api, statistic=statistic, dependency=None, period_s=period_s) == query:
                    return MetricMapping(metric, api, statistic)
    return None


# ----------------------------------------------------------------------------- conditions


_RESULT0 = re.compile(r"\bresult\s*\[\s*0\s*\]")
_COMPARE = re.compile(r"\bresult\s*(<=|>=|==|!=|<|>)\s*(-?\d+(?:\.\d*)?(?:[eE][+-]?\d+)?)"
                      r"|(-?\d+(?:\.\d*)?(?:[eE][+-]?\d+)?)\s*(<=|>=|==|!=|<|>)\s*result\b")
_FLIP = {"<": ">", ">": "<", "<=": ">=", ">=": "<=", "==": "==", "!=": "!="}


def _num(value: float) -> str:
    return f"{round(value, 12):g}"


def import_condition(doc: Document, path: str, text: Any, complement: bool) -> str:
    """An Argo condition as deploysim's judge reads it: `result` is the canary's value (a number, not
    a vector); with `complement`, Argo's result is 1 - deploysim's metric."""
    if not isinstance(text, str):
        raise doc.fail(path, "expected a condition such as result[0] < 0.01")
    out = _RESULT0.sub("result", text)
    if complement:
        def flip(m: re.Match) -> str:
            if m.group(1):
                op, value = m.group(1), float(m.group(2))
            else:
                op, value = _FLIP[m.group(4)], float(m.group(3))
            return f"result {_FLIP[op]} {_num(1 - value)}"
        out = _COMPARE.sub(flip, out)
    try:
        parse_condition(out)
    except ValueError as error:
        raise doc.unsupported(path, f"condition {text!r}: {error}") from None
    return out


def _one_comparison(condition: str) -> tuple[str, float] | None:
    m = _COMPARE.fullmatch(condition.strip())
    if m is None:
        return None
    return (m.group(1), float(m.group(2))) if m.group(1) else (_FLIP[m.group(4)], float(m.group(3)))


_ALARM_WHEN = {">": "GreaterThanThreshold", ">=": "GreaterThanOrEqualToThreshold", "<": "LessThanThreshold",
               "<=": "LessThanOrEqualToThreshold"}
_NOT = {">": "<=", ">=": "<", "<": ">=", "<=": ">"}
_COMPARISON_OP = {v: k for k, v in _ALARM_WHEN.items()}


# ----------------------------------------------------------------------------- import


@dataclass
class _Measured:
    """One AnalysisTemplate metric read for deploysim."""

    mapping: MetricMapping
    name: str
    success: str | None
    failure: str | None
    interval_s: float | None
    count: int | None
    failure_limit: int
    inconclusive_limit: int
    consecutive_error_limit: int
    where: str  # 'AnalysisTemplate "x" spec.metrics[0]'


class ArgoImport:
    """Reads Rollouts with the AnalysisTemplates they name."""

    def __init__(self, documents: Sequence[Document], metric_map: Mapping[str, MetricMapping], apis: Sequence[str],
                 period_s: float, indefinite_pause_s: float):
        self.templates: dict[tuple[str, bool], Document] = {}
        for doc in documents:
            if is_template(doc.data):
                name = str(as_mapping(doc, "metadata", doc.data.get("metadata")).get("name"))
                self.templates[(name, doc.data["kind"] == "ClusterAnalysisTemplate")] = doc
        self.metric_map, self.apis, self.period_s = metric_map, apis, period_s
        self.used: set[tuple[str, bool]] = set()  # templates a Rollout named
        self.indefinite_pause_s = indefinite_pause_s

    def rollout(self, doc: Document) -> ImportedPipeline:
        data = doc.data
        metadata = as_mapping(doc, "metadata", data.get("metadata"))
        name = str(metadata.get("name") or "rollout")
        pipeline = ImportedPipeline(name, f'Argo Rollouts Rollout "{name}" ({doc.source})')
        spec = as_mapping(doc, "spec", data.get("spec"))
        strategy = as_mapping(doc, "spec.strategy", spec.get("strategy"))
        for key in strategy:
            if key != "canary":
                raise doc.unsupported(child("spec.strategy", key), "deploysim imports canary strategies")
        canary = strategy.get("canary")
        if not isinstance(canary, Mapping):
            raise doc.fail("spec.strategy", "a Rollout needs spec.strategy.canary")
        base = "spec.strategy.canary"
        for key in canary:
            if key in _CANARY_NOTED:
                pipeline.notes.append(f"{base}.{key}: Kubernetes detail, not imported"
                                      + (": deploysim serves each weight on whole hosts; a traffic router gives "
                                         "the exact weight (adapter set_weight)"
                                         if key in ("trafficRouting", "trafficManagement") else ""))
            elif key not in ("steps", "analysis"):
                raise doc.unsupported(child(base, key))
        pipeline.batching = Commented({"max_share": 1.0, "duration": "0s", "hosts_keep_serving": True},
                                      "Argo starts the canary pods for each weight beside the stable ones: both serve")
        if canary.get("steps"):
            self._steps(doc, as_list(doc, child(base, "steps"), canary["steps"]), child(base, "steps"), pipeline)
        else:
            self._rolling_update(doc, canary, base, pipeline)
        if canary.get("analysis"):
            self._background(doc, as_mapping(doc, child(base, "analysis"), canary["analysis"]), child(base, "analysis"),
                             pipeline)
        exact = as_mapping(doc, "metadata.annotations", metadata.get("annotations")).get(ANNOTATION)
        if exact:
            pipeline.exact = self._exact(doc, exact, canary, pipeline)
        return pipeline

    def _rolling_update(self, doc: Document, canary: Mapping, base: str, pipeline: ImportedPipeline) -> None:
        """A canary without steps is a rolling update: maxSurge (default 25%) new pods at a time."""
        surge = canary.get("maxSurge", "25%")
        replicas = as_mapping(doc, "spec", doc.data.get("spec")).get("replicas")
        if isinstance(surge, str) and surge.endswith("%"):
            share = number(doc, child(base, "maxSurge"), surge[:-1]) / 100
        elif replicas:
            share = number(doc, child(base, "maxSurge"), surge) / number(doc, "spec.replicas", replicas)
        else:
            raise doc.fail(child(base, "maxSurge"), "a pod count needs spec.replicas to become a share")
        share = min(1.0, max(share, 1e-6))
        pipeline.batching = Commented({"max_share": round(share, 6), "hosts_keep_serving": True},
                                      f"{base}.maxSurge {surge}: a rolling update starts that many new pods at a "
                                      "time, beside the old ones")
        pipeline.waves = [Commented({"unit": "region", "count": "rest", "bake": "0s"},
                                    f"{base} without steps: a rolling update of every pod")]
        pipeline.notes = [n for n in pipeline.notes if ".maxSurge:" not in n]

    def _exact(self, doc: Document, text: str, canary: Mapping, pipeline: ImportedPipeline) -> dict | None:
        """The annotation, when the steps still say what it says (else a note, and the steps win)."""
        try:
            exact = json.loads(text)
            stage, alarms = Stage.model_validate(exact["stage"]), exact.get("alarms", {})
            metric_alarms = [MetricAlarm.model_validate(a) for a in alarms.get("metric", [])]
        except (ValueError, KeyError, TypeError) as error:
            pipeline.notes.append(f"metadata.annotations.{ANNOTATION} is not deploysim's (ignored): {error}")
            return None
        del metric_alarms  # validated above: an annotation whose alarms do not load is not used
        steps = canary_steps(stage, exact.get("shares", []), pipeline.name, exact.get("period_s", self.period_s))[0]
        if steps != list(canary.get("steps") or []):
            pipeline.notes.append(f"metadata.annotations.{ANNOTATION} ignored: the steps were changed after "
                                  "deploysim exported them, so they are imported as they are now")
            return None
        return exact

    def _steps(self, doc: Document, steps: Sequence, base: str, pipeline: ImportedPipeline) -> None:
        bakes: list[float] = []
        for i, step in enumerate(steps):
            path = child(base, i)
            if not isinstance(step, Mapping) or len(step) != 1:
                raise doc.fail(path, "a canary step has exactly one field (setWeight, pause, analysis, ...)")
            (key, value), = step.items()
            where = f"{path} {key}: {flow(value)}"
            if key == "setWeight":
                weight = number(doc, child(path, key), value)
                previous = pipeline.waves[-1].value["weight"] if pipeline.waves else 0
                if weight <= previous:
                    raise doc.unsupported(child(path, key), f"weight {weight:g} after {previous:g}: deploysim's "
                                                            "traffic weights only grow")
                pipeline.waves.append(Commented({"unit": "traffic", "weight": weight, "bake": "0s"}, where))
                bakes.append(0.0)
            elif key == "pause":
                duration = as_mapping(doc, child(path, key), value).get("duration")
                if not pipeline.waves:
                    if duration is not None:
                        raise doc.unsupported(child(path, "pause.duration"),
                                              "a timed pause before the first setWeight (no canary to bake)")
                    pipeline.approval = Commented(True, f"{where}: a person resumes the rollout")
                    continue
                if duration is None:
                    bakes[-1] += self.indefinite_pause_s
                    pipeline.waves[-1].comment += (f"; {where} (until a person promotes it: baked "
                                                   f"{duration_text(self.indefinite_pause_s)}, see --indefinite-pause)")
                    pipeline.notes.append(f"{path}: pause {{}} waits for a person; deploysim bakes "
                                          f"{duration_text(self.indefinite_pause_s)} instead (`deploysim promote` "
                                          "ends a bake early in the executor)")
                else:
                    bakes[-1] += seconds(doc, child(path, "pause.duration"), duration)
                    pipeline.waves[-1].comment += f"; {where}"
            elif key == "analysis":
                if not pipeline.waves:
                    raise doc.unsupported(path, "an analysis before the first setWeight (no canary to judge)")
                wave = pipeline.waves[-1]
                if "judge" in wave.value:
                    raise doc.unsupported(path, "a second analysis at the same weight")
                wave.value["judge"] = self._judge(doc, as_mapping(doc, child(path, key), value),
                                                  child(path, "analysis"))
                wave.comment += f"; {path} analysis (judged during the bake)"
            else:
                raise doc.unsupported(child(path, key), _STEP_WHY.get(key, "not a canary step deploysim knows"))
        for wave, bake in zip(pipeline.waves, bakes, strict=True):
            wave.value["bake"] = duration_text(bake)
        if not pipeline.waves or pipeline.waves[-1].value["weight"] < 100:
            pipeline.waves.append(Commented({"unit": "traffic", "weight": 100, "bake": "0s"},
                                            "end of the steps: Argo promotes the canary to all the traffic"))

    def _template_metrics(self, doc: Document, analysis: Mapping, path: str) -> list[_Measured]:
        for key in analysis:
            if key in ("dryRun", "measurementRetention", "analysisRunMetadata", "startingStep"):
                if analysis[key]:
                    raise doc.unsupported(child(path, key))
            elif key not in ("templates", "args", "templateName", "name", "clusterScope"):
                raise doc.unsupported(child(path, key))
        refs = list(as_list(doc, child(path, "templates"), analysis.get("templates")))
        if analysis.get("templateName"):  # the older form: one template named in place
            refs.append({"templateName": analysis["templateName"], "clusterScope": analysis.get("clusterScope")})
        if not refs:
            raise doc.fail(path, "an analysis needs templates")
        out: list[_Measured] = []
        for i, ref in enumerate(refs):
            ref = as_mapping(doc, child(child(path, "templates"), i), ref)
            name = ref.get("templateName") or ref.get("clusterTemplateName")
            cluster = bool(ref.get("clusterScope")) or "clusterTemplateName" in ref
            template = self.templates.get((str(name), cluster))
            self.used.add((str(name), cluster))
            if template is None:
                kind = "ClusterAnalysisTemplate" if cluster else "AnalysisTemplate"
                raise doc.fail(child(child(path, "templates"), i), f"{kind} {name!r} is not among the files "
                                                                     "given: add the file that defines it")
            out += self._metrics(template)
        return out

    def _metrics(self, doc: Document) -> list[_Measured]:
        name = as_mapping(doc, "metadata", doc.data.get("metadata")).get("name")
        spec = as_mapping(doc, "spec", doc.data.get("spec"))
        for key in spec:
            if key in ("dryRun", "measurementRetention") and spec[key]:
                raise doc.unsupported(child("spec", key))
            if key not in ("metrics", "args", "dryRun", "measurementRetention"):
                raise doc.unsupported(child("spec", key))
        out = []
        for i, metric in enumerate(as_list(doc, "spec.metrics", spec.get("metrics"))):
            out.append(self._metric(doc, as_mapping(doc, child("spec.metrics", i), metric), child("spec.metrics", i),
                                    f'{doc.data["kind"]} "{name}"'))
        if not out:
            raise doc.fail("spec.metrics", "an AnalysisTemplate needs metrics")
        return out

    def _metric(self, doc: Document, metric: Mapping, path: str, owner: str) -> _Measured:
        allowed = {"name", "interval", "count", "successCondition", "failureCondition", "failureLimit", "maxFailures",
                   "inconclusiveLimit", "maxInconclusive", "consecutiveErrorLimit", "provider", "initialDelay"}
        for key in metric:
            if key not in allowed:
                raise doc.unsupported(child(path, key))
        if metric.get("initialDelay") not in (None, 0, "0", "0s"):
            raise doc.unsupported(child(path, "initialDelay"), "deploysim judges from the bake's start")
        provider = as_mapping(doc, child(path, "provider"), metric.get("provider"))
        for key in provider:
            if key != "prometheus":
                raise doc.unsupported(child(child(path, "provider"), key),
                                      "only the prometheus provider maps onto deploysim's metrics")
        prometheus = provider.get("prometheus")
        if not isinstance(prometheus, Mapping) or "query" not in prometheus:
            raise doc.fail(child(path, "provider"), "expected provider.prometheus.query")
        name = str(metric.get("name"))
        interval_s = (seconds(doc, child(path, "interval"), metric["interval"])
                      if metric.get("interval") is not None else None)
        mapping = self.metric_map.get(name) or _recognise(str(prometheus["query"]), interval_s or self.period_s,
                                                          self.apis)
        if mapping is None and name in METRICS:
            mapping = MetricMapping(name)
        if mapping is None:
            raise doc.unsupported(child(path, "provider.prometheus.query"),
                                  f"cannot tell which deploysim metric the query of {name!r} measures: name the "
                                  f"metric after one ({', '.join(METRICS[:4])}, ...) or give --metric "
                                  f"{name}=METRIC (--metric {name}=1-error_rate for a success rate)")

        def limit(*keys: str, default: int = 0) -> int:
            for key in keys:
                if metric.get(key) is not None:
                    return int(number(doc, child(path, key), metric[key], integer=True))
            return default

        success = (import_condition(doc, child(path, "successCondition"), metric["successCondition"],
                                    mapping.complement) if metric.get("successCondition") else None)
        failure = (import_condition(doc, child(path, "failureCondition"), metric["failureCondition"],
                                    mapping.complement) if metric.get("failureCondition") else None)
        if success is None and failure is None:
            raise doc.fail(path, "a metric needs successCondition or failureCondition")
        count = limit("count", default=0) or None
        return _Measured(mapping, name, success, failure, interval_s, count, limit("failureLimit", "maxFailures"),
                         limit("inconclusiveLimit", "maxInconclusive"), limit("consecutiveErrorLimit", default=4),
                         f"{owner} {path}")

    def _judge(self, doc: Document, analysis: Mapping, path: str) -> dict:
        measured = self._template_metrics(doc, analysis, path)
        first = measured[0]
        for m in measured[1:]:
            if (m.interval_s, m.count, m.failure_limit, m.inconclusive_limit, m.consecutive_error_limit) != (
                    first.interval_s, first.count, first.failure_limit, first.inconclusive_limit,
                    first.consecutive_error_limit):
                raise doc.unsupported(path, f"metrics {first.name!r} and {m.name!r} measure on different intervals, "
                                            "counts or limits; deploysim's judge takes one of each")
        if first.count is None and first.interval_s is not None:
            raise doc.unsupported(path, f"metric {first.name!r} has an interval and no count: an analysis step "
                                        "measuring until it is stopped never succeeds")
        judge: dict[str, Any] = {"kind": "argo", "interval": duration_text(first.interval_s or self.period_s),
                                 "count": first.count or 1}
        for key, value, default in (("failure_limit", first.failure_limit, 0),
                                    ("inconclusive_limit", first.inconclusive_limit, 0),
                                    ("consecutive_error_limit", first.consecutive_error_limit, 4)):
            if value != default:
                judge[key] = value
        judge["metrics"] = [_judge_metric(m) for m in measured]
        return judge

    def _background(self, doc: Document, analysis: Mapping, path: str, pipeline: ImportedPipeline) -> None:
        for m in self._template_metrics(doc, analysis, path):
            condition = m.failure
            when: str
            if condition is not None:
                parsed = _one_comparison(condition)
                if parsed is None or parsed[0] not in _ALARM_WHEN:
                    raise doc.unsupported(path, f"{m.where}: failureCondition {condition!r}: an alarm needs one "
                                                "comparison of result with a number")
                when, threshold = _ALARM_WHEN[parsed[0]], parsed[1]
            else:
                parsed = _one_comparison(m.success or "")
                if parsed is None or parsed[0] not in _NOT:
                    raise doc.unsupported(path, f"{m.where}: successCondition {m.success!r}: an alarm needs one "
                                                "comparison of result with a number")
                when, threshold = _ALARM_WHEN[_NOT[parsed[0]]], parsed[1]
            if m.count is not None:
                pipeline.notes.append(f"{m.where}: count {m.count}: Argo stops this background metric after "
                                      f"{m.count} measurements; the alarm watches every step")
            if m.inconclusive_limit or m.consecutive_error_limit != 4:
                pipeline.notes.append(f"{m.where}: inconclusiveLimit / consecutiveErrorLimit: an alarm has no "
                                      "inconclusive state; a missing datapoint follows treat_missing_data (missing)")
            datapoints = m.failure_limit + 1
            if datapoints > 12:
                raise doc.unsupported(path, f"{m.where}: failureLimit {m.failure_limit}: a deploysim alarm "
                                            "evaluates at most 12 datapoints")
            alarm: dict[str, Any] = {"name": m.name, "metric": m.mapping.metric}
            if m.mapping.api:
                alarm["api"] = m.mapping.api
            if m.mapping.statistic != "average":
                alarm["statistic"] = m.mapping.statistic
            if m.mapping.dependency:
                alarm["dependency"] = m.mapping.dependency
            alarm.update({"threshold": threshold, "comparison": when, "evaluation_periods": datapoints,
                          "datapoints_to_alarm": datapoints})
            pipeline.alarms.append(Commented(alarm, f"{m.where} (background analysis): fails on "
                                             f"{m.failure or 'not (' + str(m.success) + ')'}"))
            pipeline.watch.setdefault("wave", []).append(m.name)
            pipeline.notes.append(f"{m.where}: Argo fails the background analysis after failureLimit "
                                  f"{m.failure_limit} failed measurements over the whole rollout, every "
                                  f"{duration_text(m.interval_s or self.period_s)}; the alarm fires on "
                                  f"{datapoints} in a row, one per metric_period")


def unused_templates(argo: ArgoImport) -> list[str]:
    """AnalysisTemplates given that no Rollout names (noted: they are not imported)."""
    return [f"{'ClusterAnalysisTemplate' if cluster else 'AnalysisTemplate'} {name} ({doc.source}): no Rollout "
            "uses it, not imported"
            for (name, cluster), doc in argo.templates.items() if (name, cluster) not in argo.used]


def _judge_metric(m: _Measured) -> dict:
    out: dict[str, Any] = {"metric": m.mapping.metric}
    if m.mapping.api:
        out["api"] = m.mapping.api
    if m.mapping.statistic != "average":
        out["statistic"] = m.mapping.statistic
    if m.success is not None:
        out["success_condition"] = m.success
    if m.failure is not None:
        out["failure_condition"] = m.failure
    return out


# ----------------------------------------------------------------------------- export


def _argo_duration(s: float) -> str:
    if s % 3600 == 0:
        return f"{int(s // 3600)}h"
    if s % 60 == 0:
        return f"{int(s // 60)}m"
    return f"{s:g}s"


def _export_condition(condition: str) -> str:
    return re.sub(r"\bresult\b(?!\s*\[)", "result[0]", condition)


def watched_metric_alarms(scenario: Scenario, names: Sequence[str]) -> tuple[list[MetricAlarm], list[str]]:
    """The metric alarms behind watched names (composites of ORs expanded), and what cannot be
    expressed as metrics that each fail the analysis on their own."""
    metric = {a.name: a for a in scenario.alarms.metric}
    composite = {c.name: c for c in scenario.alarms.composite}
    out: list[MetricAlarm] = []
    problems: list[str] = []

    def add(name: str) -> None:
        if name in metric:
            if metric[name] not in out:
                out.append(metric[name])
            return
        expression = parse_rule(composite[name].rule).expression
        operands = expression.operands if isinstance(expression, Or) else (expression,)
        for op in operands:
            if isinstance(op, StateIs) and op.state == "ALARM":
                add(op.alarm)
            else:
                problems.append(f"composite alarm {name}: its rule {composite[name].rule!r} is not an OR of "
                                "ALARM(...): each Argo metric fails the analysis on its own")
                return

    for name in names:
        add(name)
    return out, problems


def canary_steps(stage: Stage, shares: Sequence[float], name: str,
                 period_s: float) -> tuple[list[dict], list[tuple[str, dict]], list[str]]:
    """The Argo canary steps of a production stage, given each step's cumulative share of the
    region's requests: (steps, analysis templates as (name, spec), what Argo cannot express)."""
    steps: list[dict] = []
    templates: list[tuple[str, dict]] = []
    lost: list[str] = []
    if stage.approval is not None:
        steps.append({"pause": {}})
        lost.append(f"approval timeout ({duration_text(stage.approval.timeout)}: not approved by then rolls back): "
                    "Argo's pause {} waits for a person indefinitely")
    parts = ([("one-box", stage.one_box.bake, stage.one_box.judge, None)] if stage.one_box is not None else []) + [
        (f"wave-{i + 1}", w.bake, w.judge, w.weight) for i, w in enumerate(stage.waves)]
    for (label, bake, judge, weight_pct), hosts_share in zip(parts, shares, strict=False):
        # A traffic wave's weight is the policy (a traffic router serves it exactly); a wave of hosts
        # serves its hosts' share of the region's requests.
        share = hosts_share if weight_pct is None else weight_pct / 100
        weight = int(round(share * 100))
        if steps and any("setWeight" in s for s in steps) and weight <= max(
                s["setWeight"] for s in steps if "setWeight" in s):
            lost.append(f"{label}: its hosts take {share:.1%} of the region's requests in all, no more than the "
                        "step before once rounded to a whole percent: merged into it")
        else:
            steps.append({"setWeight": max(1, weight)})
            if abs(weight - share * 100) > 1e-6:
                lost.append(f"{label}: {'its hosts take ' if weight_pct is None else 'weight '}{share:.2%} of the "
                            f"region's requests; setWeight is a whole percent ({max(1, weight)})")
        if bake.duration > 0:
            steps.append({"pause": {"duration": _argo_duration(bake.duration)}})
        if bake.min_requests or bake.min_datapoints or bake.max_duration is not None:
            lost.append(f"{label}: the bake's minimum data (min_requests, min_datapoints, max_duration): Argo "
                        "pauses for a time only")
        if judge is not None:
            if judge.kind == "argo":
                template = f"{name}-{label}"
                templates.append((template, _judge_template(judge, period_s)))
                steps.append({"analysis": {"templates": [{"templateName": template}]}})
                lost.append(f"{label}: its judge's min_period_requests and inconclusive policy (limit "
                            f"{judge.inconclusive.limit}, then {judge.inconclusive.then}): an Inconclusive Argo "
                            "analysis pauses the rollout for a person")
            else:
                lost.append(f"{label}: its {judge.kind} judge (Argo runs its own analysis only)")
    return steps, templates, lost


def _judge_template(judge: Judge, period_s: float) -> dict:
    metrics = []
    for m in judge.metrics:
        metric: dict[str, Any] = {"name": m.label.replace(":", "-"), "interval": _argo_duration(judge.interval),
                                  "count": judge.count}
        if m.success_condition:
            metric["successCondition"] = _export_condition(m.success_condition)
        if m.failure_condition:
            metric["failureCondition"] = _export_condition(m.failure_condition)
        metric["failureLimit"] = judge.failure_limit
        metric["inconclusiveLimit"] = judge.inconclusive_limit
        metric["consecutiveErrorLimit"] = judge.consecutive_error_limit
        metric["provider"] = {"prometheus": {"address": "{{args.prometheus-address}}", "query": export_query(
            m.metric, api=m.api, statistic=m.statistic, dependency=None, period_s=period_s)}}
        metrics.append(metric)
    return {"args": [{"name": "instances"}, {"name": "prometheus-address"}], "metrics": metrics}


def _alarm_template(alarms: Sequence[MetricAlarm], period_s: float) -> tuple[dict, list[str]]:
    metrics, lost = [], []
    for a in alarms:
        op = _COMPARISON_OP[a.comparison]
        metrics.append({
            "name": a.name, "interval": _argo_duration(period_s), "failureCondition": f"result[0] {op} {a.threshold:g}",
            "failureLimit": a.datapoints_to_alarm - 1,
            "provider": {"prometheus": {"address": "{{args.prometheus-address}}", "query": export_query(
                a.metric, api=a.api, statistic=a.statistic, dependency=a.dependency, period_s=period_s)}}})
        if a.evaluation_periods != a.datapoints_to_alarm:
            lost.append(f"alarm {a.name}: {a.datapoints_to_alarm} of {a.evaluation_periods} datapoints; Argo counts "
                        f"failed measurements over the whole rollout (failureLimit {a.datapoints_to_alarm - 1})")
        if a.treat_missing_data != "missing":
            lost.append(f"alarm {a.name}: treat_missing_data {a.treat_missing_data} (Argo counts a failed query as "
                        "an error, up to consecutiveErrorLimit)")
        if a.evaluate_low_sample_count_percentile == "ignore":
            lost.append(f"alarm {a.name}: evaluate_low_sample_count_percentile ignore")
        if a.metric not in DEFAULT_QUERIES:
            lost.append(f"alarm {a.name}: deploysim has no default query for {a.metric}: write one")
    return {"args": [{"name": "instances"}, {"name": "prometheus-address"}], "metrics": metrics}, lost


def export_argo(scenario: Scenario, pipeline: str, region: str | None = None) -> tuple[str, list[str]]:
    """A pipeline's production stage in one region as an Argo Rollout and its AnalysisTemplates:
    (the YAML text, with what Argo cannot express listed at the top; that list)."""
    policy = scenario.policy.pipelines[pipeline]
    production = [s for s in policy.stages if s.kind == "production"]
    if not production:
        raise ValueError(f"pipeline {pipeline} has no production stage to export")
    stage = next((s for s in production if region in s.regions), production[0]) if region else production[0]
    region = region or stage.regions[0]
    if region not in stage.regions:
        raise ValueError(f"pipeline {pipeline}: no production stage deploys to region {region}")
    lost: list[str] = []
    for s in policy.stages:
        if s.kind == "preproduction":
            lost.append(f"pre-production stage {s.name} ({duration_text(s.duration)} then a "
                        f"{duration_text(s.bake.duration)} bake): a Rollout runs in one cluster")
        elif s is not stage:
            lost.append(f"production stage {s.name} ({', '.join(s.regions)}): one Rollout per cluster")
    if len(stage.regions) > 1:
        lost.append(f"stage {stage.name} deploys to {', '.join(stage.regions)} at once (multi-region waves); this "
                    f"Rollout is {region} only")
    for w, wave in enumerate(stage.waves):
        if wave.per_region and len(stage.regions) > 1:
            lost.append(f"waves[{w}]: per_region (one unit in each region at once)")
    blockers = policy.blockers
    if blockers.time_windows:
        windows = "; ".join(f"{'/'.join(t.days)} {t.start_hour:g}-{t.end_hour:g}h" for t in blockers.time_windows)
        lost.append(f"blockers.time_windows ({windows}, local time): Argo starts whenever the Rollout changes")
    if blockers.freezes:
        lost.append("blockers.freezes")
    if blockers.incidents and blockers.incident_alarm:
        lost.append(f"blockers.incidents (no step starts while {blockers.incident_alarm} is in ALARM)")
    rollback = policy.rollback
    lost.append(f"rollback: {'automatic' if rollback.automatic else 'manual'}, scope {rollback.scope}, "
                f"{duration_text(rollback.duration)} per batch of {rollback.max_share:g}: an Argo abort sends "
                "all traffic back to the stable pods at once")
    lost.append(f"batching: at most {stage.batching.max_share:g} of a step's hosts at once, "
                f"{duration_text(stage.batching.duration)} each: Argo scales the canary to each weight")
    # Each step's cumulative share of the region's requests, from the plan over the scenario's fleet.
    layout = build_fleet(scenario)
    plan = build_stage(stage, policy.watch, layout)
    r = layout.region_index(region)
    in_region = layout.host_region == r
    done = np.zeros(layout.n_hosts, dtype=bool)
    by_step: dict[str, float] = {}
    for step in plan.steps:
        done[step.hosts] = True
        by_step[step.name] = float(layout.host_weight[done & in_region].sum())
    shares, share = [], 0.0
    for label in (["one-box"] if stage.one_box else []) + [f"wave-{i + 1}" for i in range(len(stage.waves))]:
        share = by_step.get(label, share)  # a wave with no host left to deploy adds none
        shares.append(share)
    watch = stage.watch or policy.watch
    watched = list(dict.fromkeys((*watch.one_box, *watch.wave, *watch.region)))
    alarms, problems = watched_metric_alarms(scenario, watched)
    lost += problems
    scopes = [f"{scope} ({', '.join(names)})" for scope, names in (("one_box", watch.one_box),
                                                                     ("wave", watch.wave), ("region", watch.region))
              if names]
    if scopes:
        lost.append(f"watch scopes {'; '.join(scopes)}: one background analysis over the whole rollout reads what "
                    "its queries say (set the instances arg)")
    alarms_cfg = scenario.alarms
    if alarms_cfg.ingestion_delay or alarms_cfg.evaluation_delay:
        lost.append(f"alarms.ingestion_delay {duration_text(alarms_cfg.ingestion_delay)} and evaluation_delay "
                    f"{duration_text(alarms_cfg.evaluation_delay)}")
    steps, templates, step_lost = canary_steps(stage, shares, pipeline, scenario.metric_period)
    lost += step_lost
    canary: dict[str, Any] = {}
    docs: list[dict] = []
    if alarms:
        template, alarm_lost = _alarm_template(alarms, scenario.metric_period)
        lost += alarm_lost
        canary["analysis"] = {"templates": [{"templateName": f"{pipeline}-alarms"}]}
        docs.append(_template_doc(f"{pipeline}-alarms", template))
    canary["steps"] = steps
    used = {c.name: c for c in scenario.alarms.composite}
    exact = {"stage": stage.model_dump(mode="json", exclude_defaults=True), "shares": shares,
             "period_s": scenario.metric_period, "watch": watch.model_dump(mode="json"),
             "alarms": {"metric": [a.model_dump(mode="json", exclude_defaults=True) for a in scenario.alarms.metric
                                   if a.name in _referenced(scenario, watched)],
                        "composite": [c.model_dump(mode="json") for n, c in used.items()
                                      if n in _referenced(scenario, watched)]}}
    rollout = {"apiVersion": API_VERSION, "kind": "Rollout",
               "metadata": {"name": pipeline, "annotations": {ANNOTATION: json.dumps(exact, sort_keys=True)}},
               "spec": {"strategy": {"canary": canary}}}
    docs = [rollout, *docs, *(_template_doc(n, t) for n, t in templates)]
    header = [f"Exported by `deploysim export` from scenario {scenario.name}, pipeline {pipeline}, region {region}.",
              "Prometheus queries read the `instances` arg (a regex of the canary pods' instance label) at the "
              "`prometheus-address` arg: set both in the Rollout's analysis args.",
              "Only spec.strategy is written: add the Rollout's selector and template (or workloadRef).",
              "Not expressed in Argo Rollouts (kept exactly in the annotation " + ANNOTATION + " for "
              "`deploysim import`):"] + [f"  - {item}" for item in lost]
    import yaml

    body = "---\n".join(yaml.safe_dump(d, sort_keys=False, width=120) for d in docs)
    return "".join(f"# {line}\n" for line in header) + body, lost


def _template_doc(name: str, spec: dict) -> dict:
    return {"apiVersion": API_VERSION, "kind": "AnalysisTemplate", "metadata": {"name": name}, "spec": spec}


def _referenced(scenario: Scenario, names: Sequence[str]) -> set[str]:
    """The watched alarms and every alarm their composites name, recursively."""
    composite = {c.name: c for c in scenario.alarms.composite}
    out: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in out:
            continue
        out.add(name)
        if name in composite:
            todo += list(parse_rule(composite[name].rule).alarm_names)
    return out


def exact_parts(exact: Mapping) -> tuple[dict, Watch, list[dict], list[dict]]:
    """The stage, watch and alarms an export's annotation holds."""
    alarms = exact.get("alarms") or {}
    return dict(exact["stage"]), Watch.model_validate(exact.get("watch") or {}), list(alarms.get("metric", [])), list(
        alarms.get("composite", []))

