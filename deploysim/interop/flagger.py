"""A Flagger `Canary` (flagger.app) as a deploysim production stage: one traffic wave per canary
weight, each baking one `interval` under a Flagger-style judge of the analysis' metrics, then the
promotion to 100%. See docs/import-export.md for the mapping."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..scenario.edit import duration_text
from .common import Commented, Document, ImportedPipeline, as_list, as_mapping, child, number, seconds

# Flagger's builtin checks: request-success-rate is the percentage (0-100) of non-5xx responses,
# request-duration the P99 latency in milliseconds (Flagger docs, "Metrics Analysis").
_ANALYSIS_FIELDS = {"interval", "threshold", "maxWeight", "stepWeight", "stepWeights", "metrics", "webhooks",
                    "alerts"}
_IGNORED_SPEC = {"targetRef", "service", "autoscalerRef", "ingressRef", "upstreamRef", "provider",
                 "progressDeadlineSeconds", "skipAnalysis", "revertOnDeletion", "suspend"}


def is_flagger(data: Any) -> bool:
    return isinstance(data, Mapping) and data.get("kind") == "Canary" and str(
        data.get("apiVersion", "")).startswith("flagger.app/")


def import_flagger(doc: Document) -> ImportedPipeline:
    data = doc.data
    name = str(as_mapping(doc, "metadata", data.get("metadata")).get("name") or "flagger")
    pipeline = ImportedPipeline(name, f'Flagger Canary "{name}" ({doc.source})')
    spec = as_mapping(doc, "spec", data.get("spec"))
    for key in spec:
        if key not in _IGNORED_SPEC and key != "analysis":
            raise doc.unsupported(child("spec", key), "not a field deploysim knows in a Flagger Canary")
    if spec.get("skipAnalysis"):
        raise doc.unsupported("spec.skipAnalysis", "a canary that skips its analysis is promoted at once")
    analysis = spec.get("analysis")
    if not isinstance(analysis, Mapping):
        raise doc.fail("spec", "a Flagger Canary needs spec.analysis")
    base = "spec.analysis"
    for key in analysis:
        if key not in _ANALYSIS_FIELDS:
            raise doc.unsupported(child(base, key), _WHY.get(key, "not a field deploysim can simulate"))
    for key in ("webhooks", "alerts"):
        if analysis.get(key):
            pipeline.notes.append(f"{base}.{key}: Flagger calls them during the analysis; deploysim does not "
                                  "(not imported)")
    missing = [key for key in ("interval", "threshold") if analysis.get(key) is None]
    if missing:
        raise doc.fail(base, f"an analysis needs {' and '.join(missing)} (deploysim does not guess them)")
    interval_s = seconds(doc, child(base, "interval"), analysis["interval"])
    threshold = int(number(doc, child(base, "threshold"), analysis["threshold"], integer=True))
    weights = _weights(doc, analysis, base)
    metrics = [_metric(doc, m, child(child(base, "metrics"), i))
               for i, m in enumerate(as_list(doc, child(base, "metrics"), analysis.get("metrics")))]
    pipeline.batching = Commented({"max_share": 1.0, "duration": "0s", "hosts_keep_serving": True},
                                  "Flagger shifts traffic between the primary and canary deployments, both serving")
    judge = None
    if metrics:
        judge = {"kind": "flagger", "interval": duration_text(interval_s), "threshold": threshold,
                 "iterations": 1, "metrics": metrics}
        pipeline.notes.append(f"{base}.threshold {threshold}: Flagger counts failed checks over the whole analysis; "
                              "deploysim's judge counts them per weight step")
    for i, weight in enumerate(weights):
        wave: dict[str, Any] = {"unit": "traffic", "weight": weight, "bake": duration_text(interval_s)}
        if judge is not None:
            wave["judge"] = judge
        pipeline.waves.append(Commented(wave, f"{base}: weight step {i + 1} of {len(weights)}, {weight:g}%, "
                                              f"checked every interval ({interval_s:g} s)"))
    pipeline.waves.append(Commented({"unit": "traffic", "weight": 100, "bake": "0s"},
                                    "promotion: the canary's spec goes to the primary, which takes all the traffic"))
    return pipeline


_WHY = {
    "iterations": "A/B testing (iterations with match) sends chosen users, not a weight",
    "match": "A/B testing routes by headers or cookies, not by weight",
    "mirror": "traffic mirroring sends copies of requests, which deploysim does not model",
    "mirrorWeight": "traffic mirroring sends copies of requests, which deploysim does not model",
    "stepWeightPromotion": "promotion in steps: deploysim promotes at once",
    "sessionAffinity": "session affinity pins users to a version",
    "primaryReadyThreshold": "readiness percentages of the deployments",
    "canaryReadyThreshold": "readiness percentages of the deployments",
}


def _weights(doc: Document, analysis: Mapping, base: str) -> list[float]:
    if analysis.get("stepWeights") is None and (analysis.get("stepWeight") is None or
                                                analysis.get("maxWeight") is None):
        raise doc.fail(base, "a weighted analysis needs stepWeight and maxWeight (or stepWeights)")
    max_weight = number(doc, child(base, "maxWeight"), analysis.get("maxWeight", 100))
    if analysis.get("stepWeights") is not None:
        weights = [number(doc, child(child(base, "stepWeights"), i), w)
                   for i, w in enumerate(as_list(doc, child(base, "stepWeights"), analysis["stepWeights"]))]
        if any(b <= a for a, b in zip(weights, weights[1:], strict=False)) or not weights:
            raise doc.fail(child(base, "stepWeights"), "stepWeights must grow")
        return [w for w in weights if w < 100]
    step = number(doc, child(base, "stepWeight"), analysis["stepWeight"])
    if not 0 < step <= 100 or not 0 < max_weight <= 100:
        raise doc.fail(child(base, "stepWeight"), "stepWeight and maxWeight must be in (0, 100]")
    out: list[float] = []
    weight = step
    while weight <= max_weight + 1e-9:
        out.append(round(weight, 9))
        weight += step
    return [w for w in out if w < 100]


def _metric(doc: Document, metric: Any, path: str) -> dict:
    if not isinstance(metric, Mapping):
        raise doc.fail(path, "expected a metric (name, thresholdRange, interval)")
    for key in metric:
        if key not in ("name", "thresholdRange", "interval"):
            raise doc.unsupported(child(path, key), "only Flagger's builtin request-success-rate and "
                                  "request-duration checks map onto deploysim's metrics"
                                  if key in ("templateRef", "query", "templateVariables") else "")
    name = metric.get("name")
    bounds = as_mapping(doc, child(path, "thresholdRange"), metric.get("thresholdRange"))
    low = None if bounds.get("min") is None else number(doc, child(path, "thresholdRange.min"), bounds["min"])
    high = None if bounds.get("max") is None else number(doc, child(path, "thresholdRange.max"), bounds["max"])
    if low is None and high is None:
        raise doc.fail(child(path, "thresholdRange"), "a check needs thresholdRange min or max")
    if name == "request-success-rate":
        # success rate (percent) >= min  <=>  error rate (fraction) <= (100 - min) / 100
        out: dict[str, Any] = {"metric": "error_rate"}
        if low is not None:
            out["max"] = round((100 - low) / 100, 12)
        if high is not None:
            out["min"] = round((100 - high) / 100, 12)
        return out
    if name == "request-duration":
        out = {"metric": "latency_p99_ms"}
        if low is not None:
            out["min"] = low
        if high is not None:
            out["max"] = high
        return out
    raise doc.unsupported(child(path, "name"), f"metric {name!r}: only Flagger's builtin request-success-rate and "
                                               "request-duration map onto deploysim's metrics")
