"""The deployment policy in words: sentences generated from a scenario's policy section."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..scenario import Scenario
from ..scenario.schema import Bake, Blockers, Judge, PipelinePolicy, Stage, Wave

_UNIT = {"region": ("region", "regions"), "az": ("AZ", "AZs"), "cell": ("cell", "cells")}


def duration_words(seconds: float) -> str:
    """90 -> '1.5 min', 3600 -> '1 h', 5400 -> '1 h 30 min', 0 -> 'no time'."""
    if seconds <= 0:
        return "0 s"
    if seconds < 60:
        return f"{seconds:g} s"
    minutes = seconds / 60
    if minutes < 60:
        return f"{minutes:g} min"
    hours, rest = int(minutes // 60), minutes - int(minutes // 60) * 60
    if hours >= 48 and rest == 0 and hours % 24 == 0:
        return f"{hours // 24} days"
    return f"{hours} h" + (f" {rest:g} min" if rest else "")


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def bake_words(bake: Bake) -> str:
    """'baking 1 h and until it has served 100 Create requests' / 'with no bake'."""
    conditions = []
    if bake.min_requests:
        served = " and ".join(f"{n:,.0f} {'' if api == 'All' else api + ' '}requests".replace("  ", " ")
                              for api, n in bake.min_requests.items())
        conditions.append(f"it has served {served}")
    if bake.min_datapoints:
        conditions.append(f"it has {_plural(bake.min_datapoints, 'datapoint', 'datapoints')} of metrics")
    if bake.duration <= 0 and not conditions:
        return "with no bake"
    if not conditions:
        return f"baking {duration_words(bake.duration)}"
    if bake.duration <= 0:
        return "baking until " + " and ".join(conditions)
    return f"baking {duration_words(bake.duration)} and until " + " and ".join(conditions)


def _wave_words(wave: Wave, first: bool, whole: bool) -> str:
    if wave.weight is not None:
        return f"{wave.weight:g}% of the traffic, {bake_words(wave.bake)}"
    one, many = _UNIT[wave.unit]
    if wave.count == "rest":
        if wave.unit == "region":
            what = "the whole stage" if whole else "the rest of the stage"
        else:
            what = f"all {many}" if whole else f"the remaining {many}"
    else:
        what = _plural(int(wave.count), one, many)
    return f"{what}, {bake_words(wave.bake)}{judge_words(wave.judge)}"


def judge_words(judge: Judge | None) -> str:
    """How a step's canary judge watches its bake, as a clause ("" without one)."""
    if judge is None:
        return ""
    against = {"deploy": " against a baseline of the old version deployed beside it",
               "rest-of-scope": " against the stage's hosts not yet deployed", "none": ""}[judge.baseline_kind]
    metrics = ", ".join(m.label for m in judge.metrics)
    return f", judged {judge.kind}-style on {metrics}{against} every {duration_words(judge.interval)}"


def _regions(stage: Stage) -> str:
    r = list(stage.regions)
    return r[0] if len(r) == 1 else ", ".join(r[:-1]) + " and " + r[-1]


def stage_words(stage: Stage) -> str:
    """One sentence for one stage."""
    if stage.kind == "preproduction":
        return (f"**{stage.name}** (pre-production): {duration_words(stage.duration)} to deploy and test, "
                f"then {bake_words(stage.bake)}.")
    parts = []
    if stage.one_box is not None:
        box = stage.one_box
        share = f" taking {box.traffic_share:.0%} of the region's traffic" if box.traffic_share else ""
        parts.append(f"a one-box of {_plural(box.hosts, 'host', 'hosts')}{share}, {bake_words(box.bake)}"
                     f"{judge_words(box.judge)}")
    for j, wave in enumerate(stage.waves):
        parts.append(_wave_words(wave, j == 0, j == 0 and stage.one_box is None))
    steps = "; then ".join(parts)
    b = stage.batching
    batch = (f"Hosts are replaced in batches of at most {b.max_share:.0%} of a step's hosts, "
             f"{duration_words(b.duration)} each")
    batch += (" (they keep serving while they switch)." if b.hosts_keep_serving
              else ", out of service while they switch.")
    return f"**{stage.name}** ({_regions(stage)}): {steps}. {batch}"


def _watch_words(pipeline: PipelinePolicy) -> str:
    watch = pipeline.watch
    parts = []
    if watch.one_box:
        parts.append(f"{', '.join(watch.one_box)} on the one-box")
    if watch.wave:
        parts.append(f"{', '.join(watch.wave)} on the wave being deployed")
    if watch.region:
        parts.append(f"{', '.join(watch.region)} over each region of the stage")
    overridden = [s.name for s in pipeline.stages if s.watch is not None]
    text = ("Alarms watched during every deploy and bake: " + "; ".join(parts) + "."
            if parts else "No alarm is watched: a bad change is found only by people.")
    if overridden:
        text += f" Stage(s) {', '.join(overridden)} watch their own alarms."
    return text


def _rollback_words(pipeline: PipelinePolicy) -> str:
    rb = pipeline.rollback
    where = "everywhere the change went" if rb.scope == "everywhere" else "in the alarming stage only"
    if rb.automatic and rb.max_share < 1.0:
        return (f"An alarm in ALARM rolls the version back automatically, {where}, in batches of at most "
                f"{rb.max_share * 100:.0f}% of the hosts to revert, {duration_words(rb.duration)} each.")
    if rb.automatic:
        return (f"An alarm in ALARM rolls the version back automatically, {where}; the last host is "
                f"reverted {duration_words(rb.duration)} after the decision.")
    return f"An alarm pages people, who roll back {where} at manual speed (no automatic rollback)."


def _blocker_words(blockers: Blockers) -> str:
    parts = []
    for w in blockers.time_windows:
        days = list(w.days)
        span = f"{days[0]}–{days[-1]}" if days == list(_consecutive(days)) and len(days) > 2 else ", ".join(days)
        parts.append(f"only {span} {w.start_hour:02.0f}:00–{w.end_hour:02.0f}:00 in each of its regions' local time")
    if blockers.holidays:
        parts.append("not on a region's holidays")
    if blockers.freezes:
        parts.append(f"not during {_plural(len(blockers.freezes), 'change freeze', 'change freezes')}")
    if blockers.incidents:
        alarm = f" ({blockers.incident_alarm} in ALARM, or an infrastructure fault)" if blockers.incident_alarm \
            else " (an infrastructure fault in its regions)"
        parts.append(f"not during an incident{alarm}")
    if not parts:
        return "Nothing blocks a production stage from starting: any hour, any day."
    what = "A production stage" if blockers.check == "stage_start" else "A production stage (and each of its steps)"
    if not blockers.time_windows:
        return f"{what} starts at any hour, but " + ", ".join(parts) + "."
    return f"{what} starts " + ", ".join(parts) + "."


def _consecutive(days: Sequence[str]):
    order = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
    i = order.index(days[0])
    return order[i:i + len(days)]


def pipeline_words(name: str, pipeline: PipelinePolicy, scenario: Scenario | None = None) -> dict[str, Any]:
    """One pipeline in words: `intro` (arrivals, stage count), `stages` (a sentence per stage, in order),
    `watch` (alarms and rollback) and `blockers`."""
    intro = []
    source = scenario.changes.get(name) if scenario is not None else None
    if source is not None:
        intro.append(f"About {source.arrivals.changes_per_week:g} changes a week enter the **{name}** pipeline; "
                     f"{source.bad_probability:.0%} are bad, and pre-production catches "
                     f"{source.preprod_catch_probability:.0%} of those.")
    pre = [s for s in pipeline.stages if s.kind == "preproduction"]
    prod = [s for s in pipeline.stages if s.kind == "production"]
    counts = [_plural(len(pre), "pre-production stage", "pre-production stages")] if pre else []
    counts.append(_plural(len(prod), "production stage", "production stages"))
    many = len(pipeline.stages) > 1
    intro.append(f"It has {' and '.join(counts)}{', one after the other' if many else ''}:")
    watched = bool(pipeline.watch.one_box or pipeline.watch.wave or pipeline.watch.region) or \
        any(s.watch is not None for s in pipeline.stages)
    return {
        "intro": " ".join(intro),
        "stages": [stage_words(s) for s in pipeline.stages],
        "watch": _watch_words(pipeline) + (" " + _rollback_words(pipeline) if watched else ""),
        "blockers": _blocker_words(pipeline.blockers),
    }


def policy_words(scenario: Scenario) -> dict[str, dict[str, Any]]:
    """Pipeline name -> its words (see `pipeline_words`)."""
    return {name: pipeline_words(name, p, scenario) for name, p in scenario.policy.pipelines.items()}


def policy_text(scenario: Scenario) -> str:
    """The whole policy as plain text: a paragraph per pipeline, then the alarms and the people."""
    out = []
    for words in policy_words(scenario).values():
        out.append("\n".join([words["intro"], *[f"- {s}" for s in words["stages"]], words["watch"], words["blockers"]]))
    alarms = alarm_words(scenario)
    if alarms:
        out.append("Alarms:\n" + "\n".join(f"- {a}" for a in alarms))
    out.append(human_words(scenario))
    return "\n\n".join(out).replace("**", "")


_METRICS = {  # metric -> (what, unit after the threshold)
    "requests": ("requests", " per datapoint"), "errors": ("errors", " per datapoint"),
    "error_rate": ("error rate", ""), "latency_p50_ms": ("P50 latency", " ms"),
    "latency_p90_ms": ("P90 latency", " ms"), "latency_p99_ms": ("P99 latency", " ms"),
    "cpu_pct": ("CPU", "%"), "memory_pct": ("memory", "%"), "disk_pct": ("disk", "%"),
    "log_errors": ("errors in logs", " per datapoint"), "unhealthy_hosts": ("hosts failing health checks", ""),
    "dependency_error_rate": ("error rate", ""),
}
_CMP = {"GreaterThanThreshold": ">", "GreaterThanOrEqualToThreshold": "≥", "LessThanThreshold": "<",
        "LessThanOrEqualToThreshold": "≤"}


def alarm_words(scenario: Scenario) -> list[str]:
    """One line per alarm: what it measures and when it fires, CloudWatch style ("M of N datapoints")."""
    out = []
    for a in scenario.alarms.metric:
        what, unit = _METRICS.get(a.metric, (a.metric.replace("_", " "), ""))
        if a.statistic == "maximum":
            what = f"highest host's {what}"
        if a.api:
            what += f" of the {a.api} API"
        if a.dependency:
            what += f" of calls to {a.dependency}"
        threshold = f"{a.threshold:.2%}" if a.metric.endswith("error_rate") else f"{a.threshold:g}{unit}"
        out.append(f"**{a.name}**: {what} {_CMP[a.comparison]} {threshold} in {a.datapoints_to_alarm} of "
                   f"{a.evaluation_periods} datapoints of {duration_words(scenario.metric_period)} "
                   f"(missing data treated as {a.treat_missing_data})")
    for c in scenario.alarms.composite:
        out.append(f"**{c.name}** (composite): {' '.join(c.rule.split())}")
    return out


def human_words(scenario: Scenario) -> str:
    def dist(d) -> str:
        if d.dist == "fixed":
            return duration_words(d.value)
        if d.dist == "lognormal":
            return f"a median of {duration_words(d.median)}"
        if d.dist == "exponential":
            return f"a mean of {duration_words(d.mean)}"
        return f"{duration_words(d.low)} to {duration_words(d.high)}"

    h = scenario.humans
    if h.detection == "fixed_delay":
        return (f"A bad change no alarm catches is found by people after {dist(h.detection_delay)} and reverted "
                f"after {dist(h.mitigation)} more.")
    from ..people import default_pages

    pages = default_pages(scenario) if h.pages is None else h.pages
    paged = f"a page from {', '.join(pages)}" if pages else "no page (no alarm pages)"
    hours = h.business_hours
    return (f"A bad change no alarm rolls back is found by people from its symptoms: {paged}, or a customer "
            f"report ({h.reports_per_failed_request:g} per failed request, reaching on-call after "
            f"{dist(h.support_triage)}). On-call takes {dist(h.response_business_hours)} in business hours "
            f"({', '.join(hours.days)} {hours.start_hour:g}:00-{hours.end_hour:g}:00 local) and "
            f"{dist(h.response_off_hours)} otherwise, then reverts after {dist(h.mitigation)} more. "
            f"A defect that fails no request and pages nobody stays latent.")


__all__ = ["alarm_words", "bake_words", "duration_words", "human_words", "pipeline_words", "policy_text",
           "policy_words", "stage_words"]
