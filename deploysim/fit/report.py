"""The report directory of `deploysim fit --report DIR`: the summary table (CSV and Markdown, with
what was fitted, what was kept as a prior and why) and one picture per fit (PNG)."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from .fitting import Estimate, Fit, window_text
from .writer import duration_text


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _show(value: float, unit: str) -> str:
    if not math.isfinite(value):
        return "-"
    if unit == "s":
        return duration_text(value)
    if unit == "probability":
        return f"{value:.1%}"
    return f"{value:.3g}"


def summary_markdown(fit: Fit, figures: dict[str, str] | None = None, influence: Any = None, breach: Any = None,
                     sla_target_pct: float = 99.9) -> str:
    """The summary as Markdown: one row per parameter, then notes."""
    lines = [f"# What the history says\n\nHistory: {', '.join(fit.history.sources)}, over {window_text(fit.history)}; "
             f"{len(fit.history.deployments)} deployments, {len(fit.history.incidents)} incidents.\n",
             "| parameter | value | 95% interval | n | status | note |", "|---|---|---|---|---|---|"]
    for e in fit.estimates:
        interval = (f"{_show(e.low, e.unit)} to {_show(e.high, e.unit)}"
                    if math.isfinite(e.low) and e.unit != "" else "-")
        value = _show(e.value, e.unit) if e.unit else e.note.split(" (")[0]
        lines.append(f"| {e.label} | {value} | {interval} | {e.n} | {e.status} | {_note(e)} |")
    thin = [e for e in fit.estimates if e.status == "prior"]
    lines.append("")
    if thin:
        lines.append(f"**Too little data for {len(thin)} parameter(s)**: the scenario keeps the base scenario's "
                     f"value for each (marked `prior` in the table and in the file).\n")
    lines += [f"- {n}" for n in fit.notes]
    if breach is not None and len(breach):
        lines += ["", f"## Breach probability at {sla_target_pct:g}%, knowing and not knowing the world", "",
                  "The same seeds, once with the fitted values and once with each month's parameters drawn "
                  "from their posteriors (the `uncertainty` section of the scenario).", "",
                  "| world | months | breach probability | 95% interval | mean downtime | p90 downtime |",
                  "|---|---|---|---|---|---|"]
        for b in breach.itertuples():
            lines.append(f"| {b.world} | {b.replications} | {b.breach_probability:.1%} | {b.breach_ci_low:.1%} to "
                         f"{b.breach_ci_high:.1%} | {duration_text(b.downtime_s_mean)} | "
                         f"{duration_text(b.downtime_s_p90)} |")
    if influence is not None and len(influence):
        lines += ["", "## Which fitted parameters dominate", "",
                  "Monte Carlo with each replication's world drawn from the fit "
                  "(`parameter_uncertainty=True`); share: squared rank correlation with the month's downtime, "
                  "normalised over the parameters.", "",
                  "| parameter | rank corr. with downtime | rank corr. with breach | share |", "|---|---|---|---|"]
        for row in influence.itertuples():
            lines.append(f"| {row.parameter} | {row.rho_downtime:+.2f} | {row.rho_breach:+.2f} | {row.share:.0%} |")
    if figures:
        lines += ["", "## Pictures", ""] + [f"- [{label}]({name})" for label, name in figures.items()]
    return "\n".join(lines) + "\n"


def _note(e: Estimate) -> str:
    return e.note.replace("|", "/")


def write_report(fit: Fit, out_dir: str | Path, influence: Any = None, breach: Any = None,
                 sla_target_pct: float = 99.9) -> list[Path]:
    """summary.csv, summary.md and the figures, in `out_dir` (created if needed)."""
    from .figures import arrivals_figure, duration_figure, faults_figure, probabilities_figure

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    figures: dict[str, str] = {}
    for pipeline, profile in fit.arrivals.items():
        if profile.offsets_s.size:
            name = f"arrivals-{_slug(pipeline)}.png"
            arrivals_figure(profile, fit.history.window_s).savefig(out / name, dpi=110)
            figures[f"{pipeline}: arrivals"] = name
    for label, d in fit.durations.items():
        name = f"duration-{_slug(label)}.png"
        duration_figure(label, d).savefig(out / name, dpi=110)
        figures[label] = name
    faults = faults_figure(fit)
    if faults is not None:
        faults.savefig(out / "faults.png", dpi=110)
        figures["faults over time"] = "faults.png"
    prob = probabilities_figure(fit)
    if prob is not None:
        prob.savefig(out / "probabilities.png", dpi=110)
        figures["probabilities"] = "probabilities.png"
    written += [out / n for n in figures.values()]
    fit.table().to_csv(out / "summary.csv", index=False)
    (out / "summary.md").write_text(summary_markdown(fit, figures, influence, breach, sla_target_pct),
                                    encoding="utf-8")
    if breach is not None and len(breach):
        breach.to_csv(out / "breach.csv", index=False)
        written.append(out / "breach.csv")
    if influence is not None and len(influence):
        influence.to_csv(out / "influence.csv", index=False)
        written.append(out / "influence.csv")
    return [*written, out / "summary.csv", out / "summary.md"]
