"""Experiment results as text for people - tables, trade-offs, tuning advice - and as JSON (every figure
from the Experiment's frames). What `deploysim run -n`, `compare`, `sweep` and `tune` print."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from ..durations import format_duration_s
from .experiment import Experiment
from .tune import TuneResult

# metric -> (label, formatter of one value)
_UNITS = {
    "uptime_pct": ("monthly uptime", lambda v: f"{v:.4f}%"),
    "worst_region_uptime_pct": ("worst region's uptime", lambda v: f"{v:.4f}%"),
    "downtime_s": ("downtime per month", lambda v: format_duration_s(v)),
    "sla_breach": ("SLA breach probability", lambda v: f"{v:.3f}"),
    "service_credit_pct": ("service credit", lambda v: f"{v:.2f}%"),
    "failed_requests": ("failed requests (bad changes)", lambda v: f"{v:,.0f}"),
    "impact_minutes": ("customer-impact minutes", lambda v: f"{v:.1f}"),
    "ttd_p50_s": ("time to detect (p50)", lambda v: format_duration_s(v)),
    "ttr_p50_s": ("time to roll back (p50)", lambda v: format_duration_s(v)),
    "lead_time_p50_h": ("lead time, all changes (p50)", lambda v: f"{v:.1f} h"),
    "change_failure_rate": ("change failure rate", lambda v: f"{v * 100:.1f}%"),
    "false_rollbacks": ("false rollbacks per month", lambda v: f"{v:.2f}"),
    "deployments_per_week": ("deployments per week", lambda v: f"{v:.1f}"),
}


def _fmt(metric: str, value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return _UNITS[metric][1](value)


def _ci(metric: str, low: float, high: float, signed: bool = False) -> str:
    """An interval, or 'no interval' when neither end is known (too few values, or no spread to resample)."""
    if not (math.isfinite(low) or math.isfinite(high)):
        return "no interval"
    show = _signed if signed else _fmt
    return f"[{show(metric, low)}, {show(metric, high)}]"


def _signed(metric: str, value: float) -> str:
    if not math.isfinite(value):
        return "n/a"
    text = _fmt(metric, abs(value))
    return ("+" if value >= 0 else "-") + text


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    out = []
    for row in [header, *rows]:
        cells = [str(row[0]).ljust(widths[0])] + [str(c).rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
        out.append("  " + "  ".join(cells).rstrip())
    return out


def _head(exp: Experiment) -> str:
    s = exp.settings
    head = (f"{exp.n_replications} replication(s) of {s.months:g} 30-day month(s) each, seed {exp.seed}, "
            f"SLA target {s.sla_target_pct:g}%, credit table {s.credit_table}; intervals are 95%")
    return head + "\n" + run_length_note(s.months) if s.months != 1 else head


def run_length_note(months: float) -> str:
    """What a run that is not one 30-day month does to the monthly figures, said plainly."""
    return (f"run length: each run lasts {months * 30:g} days, and the SLA breach probability is the chance that a "
            f"{months * 30:g}-day run falls below the target, not a 30-day month; use --months 1 to plan "
            "against a monthly SLA")


def format_monte_carlo(exp: Experiment) -> str:
    """One block per policy: each figure's mean with its interval, median, p90 and p99."""
    summary = exp.summary()
    out = [_head(exp)]
    for policy, frame in summary.groupby("policy", sort=False):
        out += ["", f"Policy {policy}"]
        rows = []
        for r in frame.itertuples():
            rows.append((_UNITS[r.metric][0], _fmt(r.metric, r.mean),
                         _ci(r.metric, r.mean_ci_low, r.mean_ci_high),
                         _fmt(r.metric, r.median), _fmt(r.metric, r.p90), _fmt(r.metric, r.p99), str(r.n)))
        out += _table(("figure", "mean", "95% CI of mean", "median", "p90", "p99", "n"), rows)
    return "\n".join(out)


COMPARE_METRICS = ["sla_breach", "downtime_s", "worst_region_uptime_pct", "service_credit_pct", "failed_requests",
                   "ttd_p50_s", "ttr_p50_s", "lead_time_p50_h", "change_failure_rate", "false_rollbacks"]


def format_comparison(exp: Experiment, same_world: bool = True) -> str:
    """Policies side by side (mean of each figure), then each policy minus the baseline with paired intervals."""
    summary = exp.summary(COMPARE_METRICS).set_index(["policy", "metric"])
    policies = exp.policies
    out = [_head(exp), "", "Mean per replication"]
    rows = [(_UNITS[m][0], *[_fmt(m, summary.loc[(p, m), "mean"]) for p in policies]) for m in COMPARE_METRICS]
    out += _table(("figure", *policies), rows)
    if len(policies) > 1:
        paired = exp.paired(COMPARE_METRICS)
        base = paired["baseline"].iloc[0]
        out += ["", f"Difference from {base}, replication by replication (common random numbers)"]
        rows = []
        for r in paired.itertuples():
            rows.append((r.policy, _UNITS[r.metric][0], _signed(r.metric, r.mean_difference),
                         _ci(r.metric, r.ci_low, r.ci_high, signed=True),
                         _ci(r.metric, r.unpaired_ci_low, r.unpaired_ci_high, signed=True)))
        out += _table(("policy", "figure", "mean difference", "paired 95% CI", "unpaired 95% CI"), rows)
        if not same_world:
            out += ["", "note: these scenarios differ outside their policies (fleet, traffic, changes or faults),",
                    "      so replications share seeds but not every random draw; pairing helps less."]
    return "\n".join(out)


def format_tradeoff(frame: pd.DataFrame, title: str, pipeline: str | None = None) -> str:
    """Lead time (of `pipeline`'s changes, or of all changes) against breach probability per setting,
    frontier marked with '*'."""
    rows = []
    for r in frame.to_dict("records"):
        rows.append((("* " if r.get("on_frontier") else "  ") + str(r.get("setting", r.get("policy"))),
                     f"{r['lead_time_p50_h']:.1f} h" if math.isfinite(r["lead_time_p50_h"]) else "n/a",
                     f"{r['breach_probability']:.3f}",
                     f"[{r['breach_ci_low']:.3f}, {r['breach_ci_high']:.3f}]",
                     format_duration_s(r["downtime_mean_s"])))
    lead = f"{pipeline} lead time p50" if pipeline else "lead time p50, all changes"
    return "\n".join([title] + _table(("setting (* = Pareto frontier)", lead, "P(breach)",
                                       "95% CI", "mean downtime"), rows))


def format_sweep(exp: Experiment, tradeoff: pd.DataFrame, pipeline: str | None) -> str:
    """A sweep: its settings side by side, then lead time against breach probability (`deploysim sweep`)."""
    whose = f"{pipeline} pipeline's" if pipeline else "all changes'"
    title = f"Trade-off: {whose} median lead time vs SLA breach probability"
    return "\n".join([format_comparison(exp), "", format_tradeoff(tradeoff, title, pipeline)])


def _shown(path: str, value: Any) -> str:
    if path.endswith("duration") and isinstance(value, (int, float)):
        return format_duration_s(float(value))
    return str(value)


def format_tune(result: TuneResult, scenario_name: str, seed: int) -> str:
    """A tuning run: the settings evaluated, then the best one, or why none met the bound and what to try."""
    exp = result.experiment
    judged = ("judged on the upper end of its 95% interval" if result.criterion == "upper"
              else "judged on the estimate alone, not its interval")
    lines = [
        f"Tuning {result.pipeline} pipeline of {scenario_name}: minimise the {result.pipeline} pipeline's median "
        f"lead time subject to P(worst region's monthly uptime < {result.sla_target_pct:g}%) <= "
        f"{result.max_breach_probability:g}, {judged}",
        f"{exp.n_replications} replication(s) per setting, seed {seed}, {len(result.candidates)} setting(s) evaluated",
        "",
        format_tradeoff(result.candidates, "Evaluated settings (fastest first)", result.pipeline),
        "",
    ]
    evidence = evidence_lines(result)
    if result.best is None or result.best_values is None:  # both are set together, when a setting met the bound
        lines += evidence or tuning_advice(result)
    else:
        lines.append("Best setting:")
        lines += [f"  {path} = {_shown(path, value)}" for path, value in result.best_values.items()]
        lines.append(f"  {result.pipeline} median lead time {result.best['lead_time_p50_h']:.1f} h, P(breach) "
                     f"{result.best['breach_probability']:.3f} [{result.best['breach_ci_low']:.3f}, "
                     f"{result.best['breach_ci_high']:.3f}]")
        if evidence:
            lines += ["", *evidence]
    return "\n".join(lines)


def evidence_lines(result: TuneResult) -> list[str]:
    """When too few replications held back faster settings: say so, with the replications that would separate them."""
    ev = result.evidence()
    if ev is None:
        return []
    n, bound = ev["replications"], result.max_breach_probability
    lines = [
        f"Too few replications to separate the settings: {ev['held_back']} setting(s) "
        + ("faster than the best " if result.best is not None else "")
        + f"have an estimated breach probability within {bound:g} but, at {n} replications, an upper 95% bound "
        f"above it (the fastest, {ev['setting']}: {ev['breach_probability']:.3f} "
        f"[{ev['breach_ci_low']:.3f}, {ev['breach_ci_high']:.3f}]).",
    ]
    minimum = ev["replications_minimum"]
    if ev["replications_needed"] is not None:
        lines.append(f"If its breach rate held at {ev['breach_probability']:.3f}, about {ev['replications_needed']} "
                     f"replications (-n {ev['replications_needed']}) would show it within the bound.")
    else:
        lines.append(f"Its estimate is not below the bound, so no number of replications would show it within; "
                     f"a setting with no breach at all needs at least {minimum} replications (-n {minimum}) "
                     f"to be shown within {bound:g}.")
    return lines


def tuning_advice(result: TuneResult) -> list[str]:
    """When no setting met the bound: how often the safest one still breaches, what its downtime comes
    from, and whether longer bakes can help at all (not when faults or the baseline dominate)."""
    floor = result.breach_causes()
    causes = sorted(floor["downtime_share_by_cause"].items(), key=lambda kv: -(kv[1] if kv[1] == kv[1] else 0))
    lines = [
        f"No evaluated setting meets the bound. The safest, {floor['setting']}, still breaches in "
        f"{floor['breach_probability']:.1%} of months [{floor['breach_ci_low']:.1%}, {floor['breach_ci_high']:.1%}]."
    ]
    if floor["breaching_months"]:
        lines.append(f"Downtime in its {floor['breaching_months']} breaching month(s): "
                     + ", ".join(f"{name} {share:.0%}" for name, share in causes) + ".")
        shares = floor["downtime_share_by_cause"]
        if shares["infrastructure faults"] + shares["the baseline error rate"] > 0.5:
            lines.append("Most of it is not caused by changes, and no bake can prevent it: look at the faults "
                         "(AZ independence, failover time) or the baseline, or accept a looser target or bound.")
        else:
            lines.append("Most of it comes from bad changes: try longer bakes (--vary PATH=... with longer "
                         "values), alarms that fire sooner, or a looser bound.")
    return lines


def tables_json(tables: dict[str, pd.DataFrame]) -> str:
    """Named frames as one JSON object of record lists; NaN and infinities as null, numpy scalars as numbers."""
    def clean(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value.item() if hasattr(value, "item") else value
    return json.dumps({k: clean(v.to_dict("records")) for k, v in tables.items()}, indent=2, allow_nan=False)
