"""The SLA budget report's content, as data: sections of headings, paragraphs, tables and figures.

`build_report` reads every number from a Monte Carlo `Experiment` (estimates with 95% intervals),
one seeded `SimulationResult` (replication 1 of the experiment, for the month-in-detail figures) and
optionally a `Sensitivity` sweep; `render` turns the blocks into Markdown and HTML. Nothing here runs
a simulation except `make_report`, which runs all three.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import sla
from ..experiments import monte_carlo, stats
from ..experiments.experiment import Experiment
from ..experiments.runner import child_seeds
from ..figures import bad_in_production
from ..readable import percent_text, seconds_text, signed_text, significant
from ..results import SimulationResult
from ..run import simulate
from ..scenario import Scenario
from . import policy_text
from .sensitivity import Sensitivity, sensitivity, settings_of

SLA_TARGETS = (99.9, 99.95, 99.99, 99.999)
"""The targets of the allowed-downtime table (the chosen target is added when it is not one of them)."""

BUDGET_CAUSES = (
    ("downtime_alarm_caught_s", "bad changes caught by alarms"),
    ("downtime_no_alarm_s", "bad changes no alarm caught (found by people, or not yet)"),
    ("downtime_az_outage_s", "AZ outages (one AZ)"),
    ("downtime_correlated_az_outage_s", "correlated AZ outages (two AZs of a region)"),
    ("downtime_region_event_s", "region-wide events (a share of every AZ)"),
    ("downtime_dependency_degradation_s", "dependency degradation"),
    ("downtime_other_s", "other: capacity lost while deploying, latency SLO, sampling"),
    ("downtime_baseline_s", "baseline error rate (healthy hosts)"),
)

# ------------------------------------------------------------------ formatting (shared with the tests)


def _finite(v: Any) -> bool:
    return v is not None and isinstance(v, (int, float, np.floating, np.integer)) and math.isfinite(float(v))


def fmt_seconds(v: Any) -> str:
    """A duration in seconds for people (the rule of `deploysim.readable`): < 1 ms, 74.9 ms, 4.32 min, 2.1 days."""
    return seconds_text(float(v)) if _finite(v) else "n/a"


def fmt_hours(v: Any) -> str:
    return f"{float(v):.1f} h" if _finite(v) else "n/a"


def fmt_pct(v: Any, digits: int = 4) -> str:
    return f"{float(v):.{digits}f}%" if _finite(v) else "n/a"


def fmt_prob(v: Any) -> str:
    """A probability as a percentage with one decimal: 0.0333 -> 3.3%."""
    return f"{100 * float(v):.1f}%" if _finite(v) else "n/a"


def fmt_credit(v: Any) -> str:
    """A percentage for people (the rule of `deploysim.readable`): 0%, < 0.001%, 0.0123%, 10%."""
    return percent_text(float(v)) if _finite(v) else "n/a"


def fmt_count(v: Any) -> str:
    return f"{float(v):.2f}" if _finite(v) else "n/a"


def fmt_rate(v: Any) -> str:
    return f"{100 * float(v):.1f}%" if _finite(v) else "n/a"


def fmt_requests(v: Any) -> str:
    return f"{float(v):,.0f}" if _finite(v) else "n/a"


def fmt_ci(low: Any, high: Any, fmt: Callable[[Any], str]) -> str:
    if not (_finite(low) or _finite(high)):  # too few values, or no spread for resampling to work on
        return "no interval"
    return f"[{fmt(low)}, {fmt(high)}]"


def fmt_signed(v: Any, fmt: Callable[[Any], str]) -> str:
    """A difference with its sign always shown: +548 ms, −< 1 ms."""
    return signed_text(float(v), fmt) if _finite(v) else "n/a"


def _fmt_pct(v: Any) -> str:
    return f"{v:.1f}%"


def budget_text(seconds: float) -> str:
    """Allowed downtime as the SLA pages quote it: 43.2 min, 4.32 min, 25.9 s."""
    return f"{significant(seconds / 60)} min" if seconds >= 60 else f"{significant(seconds)} s"


# metric -> (label, formatter): every figure of the summary tables
METRIC_FORMATS: dict[str, tuple[str, Callable[[Any], str]]] = {
    "downtime_s": ("downtime per month (request-weighted over regions)", fmt_seconds),
    "worst_region_downtime_s": ("downtime per month of the worst region", fmt_seconds),
    "uptime_pct": ("monthly uptime (request-weighted over regions)", fmt_pct),
    "worst_region_uptime_pct": ("monthly uptime of the worst region", fmt_pct),
    "sla_breach": ("SLA breach probability", fmt_prob),
    "service_credit_pct": ("service credit, % of the bill", fmt_credit),
    "false_rollbacks": ("false rollbacks per month", fmt_count),
    "deployments_per_week": ("deployment frequency, per week", lambda v: f"{float(v):.1f}" if _finite(v) else "n/a"),
    "lead_time_p50_h": ("lead time for changes (median of a month)", fmt_hours),
    "change_failure_rate": ("change failure rate", fmt_rate),
    "ttr_p50_s": ("time to restore (median of a month)", fmt_seconds),
    "ttd_p50_s": ("time to detect (median of a month)", fmt_seconds),
    "failed_requests": ("failed requests from bad changes per month", fmt_requests),
    "bad_in_production": ("bad changes reaching production per month", fmt_count),
    "caught_by_alarm": ("bad changes caught by alarms per month", fmt_count),
    "found_by_people": ("bad changes found by people per month", fmt_count),
    **{k: (label, fmt_seconds) for k, label in BUDGET_CAUSES},
}

DOWNTIME_METRICS = ["downtime_s", "worst_region_downtime_s", "uptime_pct", "worst_region_uptime_pct"]
DORA_METRICS = [("deployments_per_week", "deployment frequency (per week)"),
                ("lead_time_p50_h", "lead time for changes (median of a month)"),
                ("change_failure_rate", "change failure rate"), ("ttr_p50_s", "time to restore (median of a month)")]
COUNT_METRICS = ["bad_in_production", "caught_by_alarm", "found_by_people", "false_rollbacks"]


# ------------------------------------------------------------------ the blocks


@dataclass
class Heading:
    text: str
    level: int = 2


@dataclass
class Paragraph:
    text: str  # may hold **bold**


@dataclass
class Bullets:
    items: list[str]


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]
    align: str = ""  # one letter per column: l or r (default: first left, the rest right)

    def alignment(self) -> str:
        return self.align or ("l" + "r" * (len(self.header) - 1))


@dataclass
class ReportFigure:
    name: str  # file stem: figure-<name>.png
    title: str
    caption: str
    png: bytes


Block = Heading | Paragraph | Bullets | Table | ReportFigure


@dataclass
class Report:
    """Everything the report shows: blocks in order, and the numbers behind them."""

    title: str
    blocks: list[Block]
    data: dict[str, Any]
    notes: list[str] = field(default_factory=list)  # figures that could not be drawn, and why

    @property
    def figures(self) -> list[ReportFigure]:
        return [b for b in self.blocks if isinstance(b, ReportFigure)]


# ------------------------------------------------------------------ figures


def figure_png(fig: Any, dpi: int = 100) -> bytes:
    """A matplotlib Figure as PNG bytes (no pyplot, works headless)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def _figure(notes: list[str], name: str, title: str, caption: str, draw: Callable[[], Any]) -> ReportFigure | None:
    try:
        return ReportFigure(name, title, caption, figure_png(draw()))
    except Exception as error:  # a figure that cannot be drawn must not lose the report's numbers
        notes.append(f"figure {name!r} could not be drawn: {type(error).__name__}: {error}")
        return None


# ------------------------------------------------------------------ estimates


def estimates(exp: Experiment, metrics: list[str], policy: str | None = None) -> dict[str, dict[str, float]]:
    """metric -> mean, mean_ci_low, mean_ci_high, median, p90, p99, n (from `Experiment.summary`)."""
    summary = exp.summary(metrics)
    policy = policy or exp.policies[0]
    out = {}
    for r in summary[summary["policy"] == policy].to_dict("records"):
        out[r["metric"]] = {k: r[k] for k in ("n", "mean", "mean_ci_low", "mean_ci_high", "median", "p90", "p99")}
    return out


def _estimate_row(metric: str, e: dict[str, float], label: str | None = None) -> list[str]:
    name, fmt = METRIC_FORMATS[metric]
    return [label or name, fmt(e["mean"]), fmt_ci(e["mean_ci_low"], e["mean_ci_high"], fmt), fmt(e["median"]),
            fmt(e["p90"]), fmt(e["p99"])]


ESTIMATE_HEADER = ["figure", "mean", "95% CI of the mean", "median", "p90", "p99"]


def sla_table(target_pct: float) -> list[dict[str, Any]]:
    """Allowed downtime per 30-day month for 99.9 / 99.95 / 99.99 / 99.999 (and the chosen target)."""
    targets = sorted(set(SLA_TARGETS) | {float(target_pct)})
    return [{"target_pct": t, "allowed_s": sla.allowed_downtime(t), "chosen": t == float(target_pct)} for t in targets]


# ------------------------------------------------------------------ the report


def worst_bad_change(result: SimulationResult) -> int | None:
    """The bad change of the run that failed the most requests in production, or None."""
    bad = bad_in_production(result.changes)
    if not len(bad):
        return None
    return int(bad.sort_values(["failed_requests", "change_id"], ascending=[False, True])["change_id"].iloc[0])


def example_seed(seed: Any) -> np.random.SeedSequence:
    """The seed of replication 1 of an experiment run with `seed` (its first child stream)."""
    return child_seeds(seed, 1)[0]


def build_report(scenario: Scenario, exp: Experiment, example: SimulationResult | None = None,
                 sens: Sensitivity | None = None, command: str | None = None) -> Report:
    """The report's blocks and data from an experiment (one policy), an example run and a sensitivity sweep."""
    s = exp.settings
    target, table = s.sla_target_pct, s.credit_table
    allowed = sla.allowed_downtime(target)
    notes: list[str] = []
    blocks: list[Block] = []
    data: dict[str, Any] = {"scenario": scenario.name, "replications": exp.n_replications, "seed": exp.seed,
                            "months": s.months, "sla_target_pct": target, "credit_table": table,
                            "allowed_downtime_s": allowed}
    reps = exp.replications[exp.replications["policy"] == exp.policies[0]]
    n = len(reps)

    metrics = (DOWNTIME_METRICS + ["sla_breach", "service_credit_pct"] + [k for k, _ in BUDGET_CAUSES]
               + COUNT_METRICS + [k for k, _ in DORA_METRICS] + ["ttd_p50_s", "failed_requests"])
    est = estimates(exp, list(dict.fromkeys(metrics)))
    data["estimates"] = est
    down = est["downtime_s"]
    breaches = int(reps["sla_breach"].sum())
    breach_low, breach_high = est["sla_breach"]["mean_ci_low"], est["sla_breach"]["mean_ci_high"]
    credited = int((reps["service_credit_pct"] > 0).sum())
    credit_low, credit_high = stats.proportion_ci(credited, n)
    data.update(breaches=breaches, breach_probability=breaches / n if n else math.nan,
                credited_replications=credited, credit_probability=credited / n if n else math.nan,
                credit_probability_ci=(credit_low, credit_high))

    # ---- title and at a glance
    title = f"SLA budget report: {scenario.name}"
    blocks.append(Paragraph(
        f"{exp.n_replications} simulated replications of {s.months:g} month(s) each (seed {exp.seed}), "
        f"SLA target **{target:g}%** (averaged error rate, per region and 30-day month), service-credit table "
        f"**{table}**. Every estimate is a mean over replications with its 95% confidence interval."
        + (f" The sensitivity sweep below runs {sens.replications} replications per variant, not "
           f"{exp.n_replications}, so its intervals are wider." if sens is not None
           and sens.replications != exp.n_replications else "")))
    if command:
        blocks.append(Paragraph(f"Made with `{command}`."))

    credit_ci = fmt_ci(est["service_credit_pct"]["mean_ci_low"], est["service_credit_pct"]["mean_ci_high"],
                       fmt_credit)
    glance = [
        f"Expected downtime: **{fmt_seconds(down['mean'])}** per month "
        f"{fmt_ci(down['mean_ci_low'], down['mean_ci_high'], fmt_seconds)}, "
        f"{100 * down['mean'] / allowed:.0f}% of the {budget_text(allowed)} that {target:g}% allows.",
        f"Breach probability: **{fmt_prob(breaches / n if n else math.nan)}** "
        f"{fmt_ci(breach_low, breach_high, fmt_prob)} "
        f"({breaches} of {n} replications had a region-month below {target:g}%).",
        f"Expected service credit ({table}): **{fmt_credit(est['service_credit_pct']['mean'])}** of the bill "
        f"{credit_ci if credit_ci.startswith('[') else f'({credit_ci}: every replication owed the same)'}.",
    ]
    causes = sorted(((est[k]["mean"], label) for k, label in BUDGET_CAUSES), reverse=True)
    if causes and _finite(causes[0][0]) and down["mean"] > 0:
        glance.append(f"Largest use of the budget: {causes[0][1]}, {fmt_seconds(causes[0][0])} per month "
                      f"({100 * causes[0][0] / down['mean']:.0f}% of the downtime).")
    if sens is not None and len(sens.top()):
        glance.append("Settings that would change the picture most: "
                      + "; ".join(f"**{name}**" for name in sens.top()["setting"]) + ".")
    blocks += [Heading("At a glance"), Bullets(glance)]

    # ---- SLA table
    rows = sla_table(target)
    data["sla_table"] = rows
    blocks += [Heading("SLA target and allowed downtime"),
               Paragraph("Allowed downtime = (1 − target) × period. On a 30-day month (2,592,000 s):"),
               Table(["uptime target", "allowed downtime per 30-day month", "in seconds", ""],
                     [[f"{r['target_pct']:g}%", budget_text(r["allowed_s"]), f"{r['allowed_s']:g} s",
                       "← this report's target" if r["chosen"] else ""] for r in rows], align="lrrl"),
               Paragraph("Downtime here is the averaged-error-rate definition (Amazon S3, Lambda) read as time: "
                         "the error rate of each 5-minute interval, averaged over the month, times the month.")]

    # ---- expected downtime
    blocks += [
        Heading("Expected downtime"),
        Table(ESTIMATE_HEADER, [_estimate_row(m, est[m]) for m in DOWNTIME_METRICS]),
        Paragraph(
            f"The expected downtime uses {100 * down['mean'] / allowed:.1f}% of the budget "
            f"{fmt_ci(100 * down['mean_ci_low'] / allowed, 100 * down['mean_ci_high'] / allowed, _fmt_pct)}; "
            f"the worst region's uses {100 * est['worst_region_downtime_s']['mean'] / allowed:.1f}%. "
            "The SLA is judged per region, so the worst region decides breaches and credits."
        ),
    ]
    fig = _figure(notes, "uptime-histogram", "Monthly uptime of the worst region over replications",
                  f"Each bar counts replications; the black line is the {target:g}% target, dashed lines the "
                  f"{table} credit tiers.",
                  lambda: _plot().uptime_histogram(exp.replications, target, table, column="worst_region_uptime_pct"))
    blocks += [fig] if fig else []

    # ---- breach probability
    blocks += [Heading("Breach probability"),
               Paragraph(f"In **{breaches} of {n}** replications the worst region's monthly uptime fell below "
                         f"{target:g}%: a breach probability of **{fmt_prob(breaches / n if n else math.nan)}**, "
                         f"95% interval {fmt_ci(breach_low, breach_high, fmt_prob)} (exact Clopper-Pearson).")]

    # ---- service credit
    tiers = sla.credit_tiers(table)
    blocks += [
        Heading("Expected service credit"),
        Paragraph(f"Tier table **{table}**: a month's credit is that of the lowest tier its uptime is below."),
        Table(
            ["monthly uptime below", "credit, % of the bill"],
            [[f"{t.below_pct:g}%", f"{t.credit_pct:g}%"] for t in tiers],
        ),
        Table(ESTIMATE_HEADER, [_estimate_row("service_credit_pct", est["service_credit_pct"])]),
        Paragraph(
            f"{credited} of {n} replications owed any credit ({fmt_prob(credited / n if n else math.nan)}, "
            f"95% interval {fmt_ci(credit_low, credit_high, fmt_prob)}); the credit is request-weighted "
            "over regions."
        ),
    ]
    if tiers and tiers[0].below_pct < target:
        own = [name for name in sla.CREDIT_TIER_TABLES if sla.credit_tiers(name)[0].below_pct == target]
        blocks.append(Paragraph(
            f"Note: the first tier of {table} is {tiers[0].below_pct:g}%, below the {target:g}% target, so a month "
            f"can breach the target and owe no credit."
            + (f" Tables whose first tier is {target:g}%: {', '.join(own)} (--credit-table)." if own else "")))

    # ---- where the budget goes
    budget_rows = []
    for key, label in BUDGET_CAUSES:
        e = est[key]
        budget_rows.append([label, fmt_seconds(e["mean"]), fmt_ci(e["mean_ci_low"], e["mean_ci_high"], fmt_seconds),
                            f"{100 * e['mean'] / down['mean']:.1f}%" if down["mean"] > 0 else "n/a",
                            f"{100 * e['mean'] / allowed:.1f}%"])
    budget_rows.append(
        [
            "total",
            fmt_seconds(down["mean"]),
            fmt_ci(down["mean_ci_low"], down["mean_ci_high"], fmt_seconds),
            "100%" if down["mean"] > 0 else "n/a",
            f"{100 * down['mean'] / allowed:.1f}%",
        ]
    )
    fr = est["false_rollbacks"]
    blocks += [
        Heading("Where the budget goes"),
        Paragraph(
            "Each replication's downtime is split among its causes in proportion to the requests each "
            "failed (bad changes' blast radius; the baseline error rate; each kind of infrastructure fault what it "
            "failed by itself; other is the rest)."
        ),
        Table(
            ["cause", "mean per month", "95% CI of the mean", "share of downtime", "share of the budget"], budget_rows
        ),
        Table(ESTIMATE_HEADER, [_estimate_row(m, est[m]) for m in COUNT_METRICS]),
        Paragraph(
            f"**False rollbacks**: {fmt_count(fr['mean'])} per month "
            f"{fmt_ci(fr['mean_ci_low'], fr['mean_ci_high'], fmt_count)}: good versions rolled back by "
            "an alarm (noise, an infrastructure fault, or another pipeline's bad change on shared hosts). "
            "In this model they cost lead time, not downtime: the version's changes are reverted and ship "
            "again later, and no request fails because of the rollback itself."
        ),
    ]

    # ---- one month in detail
    if example is not None:
        blocks += _example_blocks(example, notes, data)

    # ---- policy in words
    blocks += [Heading("The deployment policy in words")]
    for name, words in policy_text.policy_words(scenario).items():
        blocks += [Heading(f"Pipeline {name}", 3), Paragraph(words["intro"]), Bullets(words["stages"]),
                   Paragraph(words["watch"]), Paragraph(words["blockers"])]
    alarm_lines = policy_text.alarm_words(scenario)
    if alarm_lines:
        blocks += [Heading("Alarms", 3), Bullets(alarm_lines)]
    blocks.append(Paragraph(policy_text.human_words(scenario)))

    # ---- DORA
    blocks += [Heading("DORA four keys"),
               Table(["key"] + ESTIMATE_HEADER[1:],
                     [_estimate_row(m, est[m], label) for m, label in DORA_METRICS]),
               Paragraph("Deployment frequency counts versions that finished their rollout; lead time runs from a "
                         "change entering its pipeline to running on every host; change failure rate is the share "
                         "of production versions rolled back or found bad by people; time to restore runs from the "
                         "first bad request to the last host reverted. Each replication gives its month's median.")]
    if len(exp.changes):
        fig = _figure(
            notes,
            "cdf",
            "Time to detect, time to roll back and lead time, every change of every replication",
            "Empirical CDFs over all replications.",
            lambda: _plot().cdf(exp.changes),
        )
        blocks += [fig] if fig else []

    # ---- sensitivity
    blocks += _sensitivity_blocks(sens, notes, data)

    # ---- method
    blocks += [
        Heading("How these figures are made"),
        Bullets(
            [
                f"Each replication simulates {s.months:g} month(s) of the scenario from its own child seed of "
                f"seed {exp.seed}; figures are per 30-day month.",
                "Means: bias-corrected and accelerated bootstrap interval (2,000 resamples); medians and "
                "percentiles: distribution-free order-statistic intervals; probabilities: exact Clopper-Pearson.",
                "The sensitivity sweep reuses the same child seeds for every variant (common random numbers), "
                "so its differences are paired replication by replication.",
            ]
        ),
    ]
    if notes:
        blocks += [Heading("Notes"), Bullets(notes)]
    return Report(title, blocks, data, notes)


def _plot():
    from .. import plot

    return plot


def _example_blocks(result: SimulationResult, notes: list[str], data: dict[str, Any]) -> list[Block]:
    out: list[Block] = [Heading("One month in detail"),
                        Paragraph("Replication 1 of the experiment, simulated again with its seed, to show where "
                                  "its budget went and how one bad change rolled out.")]
    target = result.sla_target_pct
    fig = _figure(notes, "budget-burndown", "Error-budget burn-down, month 1 of replication 1",
                  "Remaining budget of each region; a cross marks where one runs out.",
                  lambda: _plot().budget_burndown(result, target))
    out += [fig] if fig else []
    fig = _figure(notes, "error-rate", "Error rate per region, 5-minute intervals",
                  "Alarm thresholds and the SLA line; red lines are alarms that fired.",
                  lambda: _plot().error_rate(result, sla_target_pct=target))
    out += [fig] if fig else []
    change_id = worst_bad_change(result)
    ch = result.changes.set_index("change_id")
    if change_id is None:
        out.append(Paragraph("No bad change reached production in this month."))
        data["example_change"] = None
        return out
    row = ch.loc[change_id]
    found = (
        ("people" if row["detected_by"] == "people" else f"alarm {row['detected_by']}")
        if row["detected_by"]
        else "nobody"
    )
    blast = {
        "change_id": change_id,
        "pipeline": row["pipeline"],
        "defect": row["defect"],
        "failed_requests": float(row["failed_requests"]),
        "failed_request_share": float(row["failed_request_share"]),
        "impact_minutes": float(row["impact_minutes"]),
        "peak_capacity_share": float(row["peak_capacity_share"]),
        "hosts_reached": int(row["hosts_reached"]),
        "cells_reached": int(row["cells_reached"]),
        "azs_reached": int(row["azs_reached"]),
        "regions_reached": int(row["regions_reached"]),
        "ttd_s": float(row["ttd_s"]),
        "ttr_s": float(row["ttr_s"]),
        "detected_by": found,
    }
    data["example_change"] = blast
    out += [Heading(f"The costliest bad change: change {change_id} ({row['pipeline']}, defect {row['defect']})", 3),
            Table(["blast radius", "value"], [
                ["failed requests", f"{fmt_requests(blast['failed_requests'])} "
                                    f"({percent_text(100 * blast['failed_request_share'])} of the month's requests)"],
                ["customer-impact minutes", significant(blast["impact_minutes"])],
                ["peak share of fleet capacity running it", f"{100 * blast['peak_capacity_share']:.2f}%"],
                ["reached", f"{blast['hosts_reached']} host(s), {blast['cells_reached']} cell(s), "
                            f"{blast['azs_reached']} AZ(s), {blast['regions_reached']} region(s)"],
                ["found by", found],
                ["time to detect", fmt_seconds(blast["ttd_s"])],
                ["time to roll back", fmt_seconds(blast["ttr_s"])],
            ], align="lr")]
    fig = _figure(notes, "rollout-timeline", f"Rollout of change {change_id}",
                  "Deploying, baking, blocked and queued time per stage step; the alarm and the rollback in red.",
                  lambda: _plot().rollout_timeline(result, change_id))
    out += [fig] if fig else []
    pipeline = str(row["pipeline"])
    fig = _figure(notes, "version-map", f"Versions of the {pipeline} pipeline on the hosts",
                  "Share of each region's hosts per version; a band that shrinks back is a rollback.",
                  lambda: _plot().version_map(result, pipeline))
    out += [fig] if fig else []
    return out


def _sensitivity_blocks(sens: Sensitivity | None, notes: list[str], data: dict[str, Any]) -> list[Block]:
    out: list[Block] = [Heading("What would change the picture most")]
    if sens is None:
        out.append(Paragraph("No sensitivity sweep was run (--sensitivity-replications 0)."))
        data["sensitivity"] = None
        return out
    v = sens.variants
    data["sensitivity"] = {"replications": sens.replications, "top": list(sens.top()["setting"]),
                           "variants": v.to_dict("records")}
    out.append(Paragraph(
        f"Each setting moved one rung down and one rung up, alone, with {sens.replications} replications per variant "
        f"on the same seeds as the scenario as it is (paired differences, 95% intervals). A setting ranks by its "
        f"largest clear effect (interval excluding zero) on downtime, breach probability or lead time, each relative "
        f"to the largest clear effect any setting had on that figure. Lead time is the median of the pipeline the "
        f"setting belongs to (of all changes for the alarms)."))
    top = sens.top()
    if len(top):
        items = []
        for r in top.to_dict("records"):
            mine = v[v["setting"] == r["setting"]]
            parts = []
            for m in mine.to_dict("records"):
                parts.append(f"{m['to']} (now {m['from']}): downtime {fmt_signed(m['d_downtime_s'], fmt_seconds)}, "
                             f"P(breach) {fmt_signed(m['d_breach'], fmt_prob)}, lead time "
                             f"{fmt_signed(m['d_lead_time_h'], fmt_hours)}")
            items.append(f"**{r['setting']}** — clear effect on {r['clear']}. " + "; ".join(parts) + ".")
        out.append(Bullets(items))
    out += [Paragraph(n) for n in sens.notes]
    rows = []
    for r in v.to_dict("records"):
        rows.append(
            [
                r["setting"],
                r["from"],
                r["to"],
                f"{fmt_signed(r['d_downtime_s'], fmt_seconds)} "
                f"{fmt_ci(r['d_downtime_s_low'], r['d_downtime_s_high'], lambda x: fmt_signed(x, fmt_seconds))}",
                f"{fmt_signed(r['d_breach'], fmt_prob)} "
                f"{fmt_ci(r['d_breach_low'], r['d_breach_high'], lambda x: fmt_signed(x, fmt_prob))}",
                f"{fmt_hours(r['lead_time_h'])} ({fmt_signed(r['d_lead_time_h'], fmt_hours)})",
            ]
        )
    if rows:
        out.append(Table(["setting", "now", "variant", "Δ downtime per month [95% CI]", "Δ P(breach) [95% CI]",
                          "median lead time (Δ)"], rows, align="lllrrr"))
        fig = _figure(notes, "sensitivity", "Sensitivity: each setting's effect on downtime and lead time",
                      f"Each row moves one setting one rung from the scenario as it is, with {sens.replications} "
                      "replications on the same seeds; the bar is the paired 95% interval, a filled dot an interval "
                      "that excludes zero. Lead time is of the setting's own pipeline (all changes for the alarms).",
                      lambda: _plot().sensitivity_tornado(v))
        out += [fig] if fig else []
    return out


# ------------------------------------------------------------------ running everything


def make_report(scenario: Scenario, *, replications: int = 100, seed: int = 1, months: float = 1.0,
                sla_target_pct: float = 99.9, credit_table: str = "s3-standard", workers: int | None = None,
                client: Any = None, progress: bool | None = None, sensitivity_replications: int | None = None,
                sensitivity_pipelines: list[str] | None = None, command: str | None = None,
                phase: Callable[[str], None] | None = None) -> Report:
    """Run the experiment, the example month and the sensitivity sweep, and build the report;
    `phase` is told (one line each) as each phase starts.

    `sensitivity_replications` defaults to min(replications, 20); 0 skips the sweep.
    """
    run = {
        "seed": seed,
        "months": months,
        "sla_target_pct": sla_target_pct,
        "credit_table": credit_table,
        "workers": workers,
        "client": client,
        "progress": progress,
    }
    settings_of(scenario, sensitivity_pipelines)  # unusable sweep input fails before anything runs
    say = phase or (lambda message: None)
    say(f"phase 1 of 3: {replications} replication(s) of {scenario.name}")
    exp = monte_carlo(scenario, replications=replications, **run)
    say("phase 2 of 3: the example month")
    example = simulate(scenario, seed=example_seed(seed), months=months, sla_target_pct=sla_target_pct,
                       credit_table=credit_table)
    n_sens = min(replications, 20) if sensitivity_replications is None else sensitivity_replications
    say(f"phase 3 of 3: sensitivity sweep, {n_sens} replication(s) per variant" if n_sens > 0
        else "phase 3 of 3: no sensitivity sweep")
    sens = sensitivity(scenario, replications=n_sens, pipelines=sensitivity_pipelines, **run) if n_sens > 0 else None
    say("building the report and its figures")
    return build_report(scenario, exp, example, sens, command=command)


__all__ = ["Report", "ReportFigure", "build_report", "make_report", "sla_table", "worst_bad_change"]
