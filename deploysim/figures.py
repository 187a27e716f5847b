"""The figures of DESIGN.md from one run's frames, computed in one place.

`SimulationResult.summary()` is `summary_figures`; a Monte Carlo replication's row is
`replication_row`, which takes every figure the summary has from it and adds the few a flat row
needs besides (fleet-wide downtime and credit, downtime by cause).
"""

from __future__ import annotations

import math
from collections import Counter
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from . import sla
from .world import FAULT_KINDS, SECONDS_PER_MONTH

if TYPE_CHECKING:
    from .results import SimulationResult


def bad_in_production(changes: pd.DataFrame) -> pd.DataFrame:
    """The bad changes that reached production (served a request), from a `changes` frame."""
    return changes[changes["bad"] & changes["first_bad_s"].notna()]


def caught_by_alarm(bad_prod: pd.DataFrame) -> pd.DataFrame:
    """Those of `bad_in_production` that an alarm caught (not people, and not nobody)."""
    return bad_prod[(bad_prod["detected_by"] != "") & (bad_prod["detected_by"] != "people")]


def rolled_back_with_bad_change(changes: pd.DataFrame) -> pd.DataFrame:
    """Changes an alarm rolled back that are neither a false rollback nor a caught bad change in
    production: good changes that shared a version with a bad one (and a bad one reverted before
    it served a request). With them, the `changes` figures add up to the total."""
    rolled = changes[(changes["outcome"] == "rolled_back") & ~changes["false_rollback"]]
    return rolled[~rolled.index.isin(caught_by_alarm(bad_in_production(changes)).index)]


def fleet_uptime_pct(monthly: pd.DataFrame) -> float:
    """Uptime of the whole fleet: region-months' averaged-error-rate uptime weighted by their requests."""
    weights = monthly["requests"].to_numpy()
    return float(np.average(monthly["uptime_avg_error_rate_pct"], weights=weights)) if weights.sum() > 0 else 100.0


def summary_figures(result: SimulationResult) -> dict[str, Any]:
    """The figures of DESIGN.md for one run: per region and overall, units in the names."""
    ch = result.changes
    monthly = result.monthly
    # Counted from the run's timeline rows: the timeline frame is built only for whoever reads it.
    events = result.records.timeline
    bad_prod = bad_in_production(ch)
    deployed = ch[ch["outcome"] == "deployed"]
    by_alarm = caught_by_alarm(bad_prod)
    by_people = bad_prod[bad_prod["detected_by"] == "people"]
    # DORA counts deployments to production: versions that started a production step.
    prod_versions = _versions_with(events, "step_start")
    failed_versions = _versions_with(events, "alarm")
    completed = sum(1 for row in events if row["event"] == "complete")
    weeks = result.months * 30 / 7

    regions = {}
    for name, group in monthly.groupby("region", sort=False):
        regions[name] = {
            "uptime_avg_error_rate_pct": float(group["uptime_avg_error_rate_pct"].mean()),
            "uptime_unavailable_minutes_pct": float(group["uptime_unavailable_minutes_pct"].mean()),
            "worst_month_uptime_pct": float(group["uptime_avg_error_rate_pct"].min()),
            "downtime_s_per_month": float((group["downtime_s"] * SECONDS_PER_MONTH / group["period_s"]).mean()),
            "sla_budget_used_pct": float(group["sla_budget_used_pct"].mean()),
            "service_credit_pct": float(group["service_credit_pct"].mean()),
        }
    lead_by_pipeline = {
        name: {
            "p50_h": _pct(group["lead_time_s"], 50) / 3600.0,
            "p90_h": _pct(group["lead_time_s"], 90) / 3600.0,
            "p50_business_days": _pct(group["lead_time_business_days"], 50),
            "blocked_p50_h": _pct(group["blocked_s"], 50) / 3600.0,
            "baking_p50_h": _pct(group["baking_s"], 50) / 3600.0,
            "deployed": int(len(group)),
        }
        for name, group in deployed.groupby("pipeline")
    }
    seed = result.seed
    judged = _canary_judge_figures(result.scenario, events)
    return {
        "scenario": result.scenario.name,
        "seed": seed if isinstance(seed, int) else str(seed),
        "months": result.months,
        "sla_target_pct": result.sla_target_pct,
        "allowed_downtime_s_per_month": sla.allowed_downtime(result.sla_target_pct),
        "regions": regions,
        "overall": {
            "uptime_avg_error_rate_pct": fleet_uptime_pct(monthly),
            "worst_region_month_uptime_pct": float(monthly["uptime_avg_error_rate_pct"].min()),
            "region_months_breaching_sla": int((monthly["uptime_avg_error_rate_pct"] < result.sla_target_pct).sum()),
        },
        "changes": {
            "total": int(len(ch)),
            "bad": int(ch["bad"].sum()),
            "caught_in_preprod": int((ch["outcome"] == "caught_preprod").sum()),
            "bad_reaching_production": int(len(bad_prod)),
            "caught_by_alarm": int(len(by_alarm)),
            "found_by_people": int(len(by_people)),
            "false_rollbacks": int(ch["false_rollback"].sum()),
            "rolled_back_with_bad_change": int(len(rolled_back_with_bad_change(ch))),
            "deployed": int(len(deployed)),
            "in_flight_at_end": int((ch["outcome"] == "in_flight").sum()),
            # Bad changes in production that nobody found and that failed no request: no symptom yet.
            "latent_in_production": int(((bad_prod["detected_by"] == "") & (bad_prod["failed_requests"] <= 0)).sum()),
        },
        "blast_radius": {
            "failed_requests_total": float(bad_prod["failed_requests"].sum()),
            "failed_requests_p50": _pct(bad_prod["failed_requests"], 50),
            "failed_requests_max": _pct(bad_prod["failed_requests"], 100),
            "failed_request_share_total": float(bad_prod["failed_request_share"].sum()),
            "peak_capacity_share_max": _pct(bad_prod["peak_capacity_share"], 100),
            "hosts_reached_max": int(bad_prod["hosts_reached"].max()) if len(bad_prod) else 0,
            "regions_reached_max": int(bad_prod["regions_reached"].max()) if len(bad_prod) else 0,
            "impact_minutes_total": float(bad_prod["impact_minutes"].sum()),
        },
        "ttd_s": _p50_p90_max(bad_prod["ttd_s"]),
        "ttr_s": _p50_p90_max(bad_prod["ttr_s"]),
        "lead_time": {
            "p50_h": _pct(deployed["lead_time_s"], 50) / 3600.0,
            "p90_h": _pct(deployed["lead_time_s"], 90) / 3600.0,
            "p50_business_days": _pct(deployed["lead_time_business_days"], 50),
            "blocked_p50_h": _pct(deployed["blocked_s"], 50) / 3600.0,
            "baking_p50_h": _pct(deployed["baking_s"], 50) / 3600.0,
            "by_pipeline": lead_by_pipeline,
        },
        "dora": {
            "deployments_per_week": completed / weeks,
            "lead_time_for_changes_p50_h": _pct(deployed["lead_time_s"], 50) / 3600.0,
            "change_failure_rate": (len(failed_versions) + len(by_people)) / len(prod_versions)
            if prod_versions else math.nan,
            "time_to_restore_p50_h": _pct(bad_prod["ttr_s"], 50) / 3600.0,
        },
        **({"canary_judge": judged} if judged is not None else {}),
    }


def uses_a_judge(scenario) -> bool:
    """Does any step of the scenario's policy have a canary judge?"""
    return any(step is not None and step.judge is not None
               for pipeline in scenario.policy.pipelines.values() for stage in pipeline.stages
               for step in (stage.one_box, *stage.waves))


def _canary_judge_figures(scenario, events: list[dict[str, Any]]) -> dict[str, Any] | None:
    """What the canary judges did and cost, from the timeline's rows; None when no step has a judge
    (the summary then has no such key)."""
    if not uses_a_judge(scenario):
        return None
    verdicts = Counter(str(row.get("verdict")) for row in events if row["event"] == "judgement")
    by_judge = sum(1 for row in events if row["event"] == "alarm" and str(row.get("alarm")).startswith("judge@"))
    # Fresh hosts of the old version deployed beside canaries (`baseline: deploy`): their cost.
    host_h = [row.get("host_h") for row in events if row["event"] == "baseline_removed"]
    return {
        "judgements": int(sum(verdicts.values())),
        **{f"{v}_verdicts": int(verdicts.get(v, 0)) for v in ("pass", "fail", "inconclusive", "running")},
        "rollbacks_by_judge": int(by_judge),
        "baseline_host_hours": float(sum(h for h in host_h if h is not None and not pd.isna(h))),
    }


def _versions_with(events: list[dict[str, Any]], event: str) -> set[tuple[str, int]]:
    """(pipeline, version) of every version with the event in the timeline's rows."""
    return {(row["pipeline"], row["version"]) for row in events if row["event"] == event}


def replication_row(result: SimulationResult) -> dict[str, Any]:
    """One run's figures as one flat row (the replications frame's `METRIC_COLUMNS`; monthly
    figures are per 30-day month)."""
    summary = summary_figures(result)
    monthly = result.monthly
    overall, blast = summary["overall"], summary["blast_radius"]
    uptime = overall["uptime_avg_error_rate_pct"]
    downtime_s = float(((100.0 - uptime) / 100.0) * SECONDS_PER_MONTH)
    worst = overall["worst_region_month_uptime_pct"]
    per_month = SECONDS_PER_MONTH / monthly["period_s"]
    region_downtime = (monthly["downtime_s"] * per_month).groupby(monthly["region"]).mean()
    weights = monthly["requests"].to_numpy()
    credit = float(np.average(monthly["service_credit_pct"], weights=weights)) if weights.sum() > 0 else 0.0

    bad_prod = bad_in_production(result.changes)
    by_alarm = caught_by_alarm(bad_prod)
    # Bad changes no alarm caught: found by people, or still undetected when the run ended.
    unalarmed = bad_prod[~bad_prod.index.isin(by_alarm.index)]
    split = _downtime_by_cause(result, downtime_s, float(by_alarm["failed_requests"].sum()),
                               float(unalarmed["failed_requests"].sum()))
    c, lead, dora = summary["changes"], summary["lead_time"], summary["dora"]
    return {
        "uptime_pct": uptime,
        "worst_region_uptime_pct": worst,
        "downtime_s": downtime_s,
        "worst_region_downtime_s": float(region_downtime.max()),
        "sla_breach": bool(worst < result.sla_target_pct),
        "service_credit_pct": credit,
        "failed_requests": blast["failed_requests_total"],
        "failed_request_share": blast["failed_request_share_total"],
        "impact_minutes": blast["impact_minutes_total"],
        **split,
        "changes": c["total"],
        "bad_changes": c["bad"],
        "caught_in_preprod": c["caught_in_preprod"],
        "bad_in_production": c["bad_reaching_production"],
        "caught_by_alarm": c["caught_by_alarm"],
        "found_by_people": c["found_by_people"],
        "false_rollbacks": c["false_rollbacks"],
        "rolled_back_with_bad_change": c["rolled_back_with_bad_change"],
        "in_flight_at_end": c["in_flight_at_end"],
        "latent_in_production": c["latent_in_production"],
        "deployed": c["deployed"],
        "ttd_p50_s": summary["ttd_s"]["p50"],
        "ttr_p50_s": summary["ttr_s"]["p50"],
        "lead_time_p50_h": lead["p50_h"],
        "lead_time_p90_h": lead["p90_h"],
        "lead_time_p50_business_days": lead["p50_business_days"],
        "change_failure_rate": dora["change_failure_rate"],
        "deployments_per_week": dora["deployments_per_week"],
    }


def _downtime_by_cause(result: SimulationResult, downtime_s: float, alarm_failed: float,
                       no_alarm_failed: float) -> dict[str, float]:
    """Apportion the month's downtime to its causes in proportion to the failed requests of each.

    Bad changes' failed requests come from their blast radius (split into those an alarm caught
    and the rest: found by people, or not found before the run ended); the baseline is the scenario's
    baseline error rate times the requests; infrastructure faults (AZ outages, dependency
    degradation, and anything else) are the rest of the failed requests, split by fault kind
    (`downtime_<kind>_s`, what each kind failed by itself) and `downtime_other_s`.
    """
    requests = float(result.monthly["requests"].sum())
    errors = float(result.monthly["errors"].sum())
    baseline = result.scenario.baseline.error_rate * requests
    faults = max(errors - baseline - alarm_failed - no_alarm_failed, 0.0)
    parts = {"downtime_alarm_caught_s": alarm_failed, "downtime_no_alarm_s": no_alarm_failed,
             "downtime_faults_s": faults, "downtime_baseline_s": baseline}
    # The faults' share, by kind: what each kind failed by itself (scaled down if, with the
    # sampling of the SLA's counts, they add up to more than the rest); "other" is what is left:
    # capacity lost while deploying, requests over the latency SLO, sampling.
    by_kind = {kind: float(result.records.fault_failed_requests.get(kind, 0.0)) for kind in FAULT_KINDS}
    scale = min(1.0, faults / sum(by_kind.values())) if sum(by_kind.values()) > 0 else 0.0
    fault_parts = {f"downtime_{kind}_s": value * scale for kind, value in by_kind.items()}
    fault_parts["downtime_other_s"] = max(faults - sum(fault_parts.values()), 0.0)
    total = sum(parts.values())
    if total <= 0 or not math.isfinite(total):
        return dict.fromkeys([*parts, *fault_parts], 0.0)
    return {key: downtime_s * value / total for key, value in {**parts, **fault_parts}.items()}


def _p50_p90_max(series: pd.Series) -> dict[str, float]:
    return {"p50": _pct(series, 50), "p90": _pct(series, 90), "max": _pct(series, 100)}


def _pct(series: pd.Series, q: float) -> float:
    """Percentile of the non-missing values, NaN when there are none."""
    values = series.dropna().to_numpy(dtype=float)
    return float(np.percentile(values, q)) if values.size else math.nan
