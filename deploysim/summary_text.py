"""The run summary as text for people, and as JSON, from `SimulationResult.summary()` (or its JSON form).

Library code, so notebooks and scripts print what `deploysim run` prints without the command line.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

from .durations import format_duration_s
from .readable import percent_text

__all__ = ["format_summary", "summary_json"]


def summary_json(summary: dict) -> str:
    """The summary as indented JSON, every NaN or infinite figure as null (`deploysim run --json`)."""
    return json.dumps(_nan_to_none(summary), indent=2, allow_nan=False)


def _nan_to_none(value: Any) -> Any:
    """`value` with every NaN or infinite float replaced by None, so it is valid JSON."""
    if isinstance(value, dict):
        return {key: _nan_to_none(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_nan_to_none(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _fmt(value: Any, render: Callable[[Any], str]) -> str:
    """`render(value)`, or "n/a" for a missing figure (NaN, or null read back from JSON)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return render(value)


def _pct(digits: int) -> Callable[[float], str]:
    return lambda value: f"{value:.{digits}f}%"


def _duration(seconds: float) -> str:
    return format_duration_s(seconds)


def _hours(hours: float) -> str:
    return f"{hours:.1f} h"


def _lines(title: str, rows: list[tuple[str, str]]) -> list[str]:
    width = max(len(label) for label, _ in rows)
    return ["", title] + [f"  {label:<{width}}  {text}" for label, text in rows]


def format_summary(summary: dict) -> str:
    """Render `SimulationResult.summary()` (or its JSON form) as text for people; NaN shows as "n/a"."""
    out = [
        f"Scenario {summary['scenario']}, seed {summary['seed']}, {summary['months']:g} month(s)",
        f"SLA target {summary['sla_target_pct']:g}%: allowed downtime "
        f"{_fmt(summary['allowed_downtime_s_per_month'], _duration)} per 30-day month",
    ]

    header = ("region", "uptime (avg error rate)", "uptime (unavailable min)", "downtime/month",
              "SLA budget used", "credit")
    table = [header] + [
        (name,
         _fmt(r["uptime_avg_error_rate_pct"], _pct(4)),
         _fmt(r["uptime_unavailable_minutes_pct"], _pct(4)),
         _fmt(r["downtime_s_per_month"], _duration),
         _fmt(r["sla_budget_used_pct"], _pct(1)),
         _fmt(r["service_credit_pct"], _pct(0)))
        for name, r in summary["regions"].items()
    ]
    widths = [max(len(row[col]) for row in table) for col in range(len(header))]
    out += ["", "Uptime per region"]
    for row in table:
        cells = [row[0].ljust(widths[0])] + [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        out.append("  " + "  ".join(cells))
    overall = summary["overall"]
    out.append(f"  overall: {_fmt(overall['uptime_avg_error_rate_pct'], _pct(4))} (avg error rate, "
               f"weighted by requests); worst region-month "
               f"{_fmt(overall['worst_region_month_uptime_pct'], _pct(4))}; "
               f"{overall['region_months_breaching_sla']} region-month(s) below the SLA target")

    changes = summary["changes"]
    out += _lines("Changes", [(key.replace("_", " "), str(count)) for key, count in changes.items()])

    blast = summary["blast_radius"]
    out += _lines("Blast radius of bad changes in production", [
        ("failed requests, total", _fmt(blast["failed_requests_total"], "{:,.0f}".format)
         + f" ({_fmt(blast['failed_request_share_total'], lambda s: percent_text(100 * s, 4))} of all requests)"),
        ("failed requests, p50 / max", _fmt(blast["failed_requests_p50"], "{:,.0f}".format)
         + " / " + _fmt(blast["failed_requests_max"], "{:,.0f}".format)),
        ("peak capacity share, max", _fmt(blast["peak_capacity_share_max"], lambda s: f"{s * 100:.2f}%")),
        ("hosts reached, max", str(blast["hosts_reached_max"])),
        ("regions reached, max", str(blast["regions_reached_max"])),
        ("customer impact, total", _fmt(blast["impact_minutes_total"], lambda m: _duration(m * 60))),
    ])

    out += _lines("Detection and rollback (from the first bad request)", [
        (label, "   ".join(f"{q} {_fmt(summary[key][q], _duration)}" for q in ("p50", "p90", "max")))
        for label, key in (("time to detect", "ttd_s"), ("time to roll back", "ttr_s"))
    ])

    def lead_row(lead: dict) -> str:
        return (f"p50 {_fmt(lead['p50_h'], _hours)} ({_fmt(lead['p50_business_days'], '{:.2f}'.format)} "
                f"business days), p90 {_fmt(lead['p90_h'], _hours)}; p50 blocked "
                f"{_fmt(lead['blocked_p50_h'], _hours)}, baking {_fmt(lead['baking_p50_h'], _hours)}")

    lead = summary["lead_time"]
    out += _lines("Lead time (entering the pipeline to running on every host)",
                  [("all changes", lead_row(lead))]
                  + [(name, lead_row(p) + f"; {p['deployed']} deployed")
                     for name, p in lead.get("by_pipeline", {}).items()])

    dora = summary["dora"]
    out += _lines("DORA four keys", [
        ("deployment frequency", _fmt(dora["deployments_per_week"], "{:.2f} per week".format)),
        ("lead time for changes, p50", _fmt(dora["lead_time_for_changes_p50_h"], _hours)),
        ("change failure rate", _fmt(dora["change_failure_rate"], lambda r: f"{r * 100:.1f}%")),
        ("time to restore, p50", _fmt(dora["time_to_restore_p50_h"], lambda h: _duration(h * 3600))),
    ])
    judge = summary.get("canary_judge")  # only scenarios with a judge have it
    if judge is not None:
        out += _lines("Canary judges", [
            ("judgements", f"{judge['judgements']} (pass {judge['pass_verdicts']}, fail {judge['fail_verdicts']}, "
                           f"inconclusive {judge['inconclusive_verdicts']}, running {judge['running_verdicts']})"),
            ("rollbacks by a judge", str(judge["rollbacks_by_judge"])),
            ("baseline hosts deployed", f"{judge['baseline_host_hours']:.1f} host-hours"),
        ])
    return "\n".join(out)
