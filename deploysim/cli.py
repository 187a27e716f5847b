"""The `deploysim` command: parse arguments, call the library, print what it returns.

Nothing here computes a figure; every number comes from `SimulationResult.summary()`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Callable, NoReturn

import click

import deploysim

FRAMES = ("changes", "timeline", "uptime", "monthly")
"""Result frames written as `<name>.csv` by `run --out-dir`."""


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="deploysim", prog_name="deploysim")
def main() -> None:
    """Simulate safe, hands-off deployment policies and the uptime they buy."""


@main.command()
@click.argument("scenario_path", metavar="SCENARIO")
@click.option("--seed", type=int, default=1, show_default=True,
              help="Random seed; the same seed gives the same result.")
@click.option("--months", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True,
              help="Length of the run in 30-day months.")
@click.option("--sla", "sla_target_pct", type=click.FloatRange(0, 100, min_open=True), default=99.9,
              show_default=True, help="Monthly uptime target, in percent.")
@click.option("--credit-table", type=click.Choice(deploysim.sla.CREDIT_TIER_TABLES), default="s3-standard",
              show_default=True, help="Service-credit tiers to apply.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON (NaN as null) instead of text.")
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Also write changes.csv, timeline.csv, uptime.csv and monthly.csv to this directory "
                   "(with --replications: replications.csv, summary.csv, changes.csv).")
@click.option("--replications", "-n", type=click.IntRange(min=1), default=None,
              help="Run a Monte Carlo experiment of this many replications and print estimates with intervals.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="With --replications: local worker processes (default: one per CPU).")
@click.option("--dask-scheduler", metavar="ADDRESS", default=None,
              help="With --replications: run on this Dask scheduler (needs `pip install deploysim[dask]`).")
@click.option("--quiet", "-q", is_flag=True, help="With --replications: no progress bar.")
def run(scenario_path: str, seed: int, months: float, sla_target_pct: float, credit_table: str,
        as_json: bool, out_dir: Path | None, replications: int | None, workers: int | None,
        dask_scheduler: str | None, quiet: bool) -> None:
    """Simulate SCENARIO and print its summary figures (or, with --replications, their distributions)."""
    if replications is not None:
        from .cli_experiments import run_monte_carlo

        run_monte_carlo(scenario_path, dict(seed=seed, months=months, sla_target_pct=sla_target_pct,
                                            credit_table=credit_table, as_json=as_json, out_dir=out_dir,
                                            replications=replications, workers=workers,
                                            dask_scheduler=dask_scheduler, quiet=quiet))
        return
    if workers is not None or dask_scheduler is not None:
        _fail("--workers and --dask-scheduler need --replications")
    try:
        scenario = deploysim.load_scenario(scenario_path)
    except ValueError as error:
        _fail(_error_text(error, scenario_path))
    try:
        result = deploysim.simulate(scenario, seed=seed, months=months, sla_target_pct=sla_target_pct,
                                    credit_table=credit_table)
        summary = result.summary()
        if out_dir is not None:
            _write_frames(result, out_dir)
    except ValueError as error:  # the library's word that an input cannot be used, not a bug
        _fail(_error_text(error))
    if as_json:
        click.echo(json.dumps(_nan_to_none(summary), indent=2, allow_nan=False))
    else:
        click.echo(format_summary(summary))


@main.command()
@click.argument("paths", metavar="SCENARIO...", nargs=-1, required=True)
def validate(paths: tuple[str, ...]) -> None:
    """Check scenario files; print `ok: PATH (name)` for each valid one, exit 2 if any is not."""
    failed = False
    for path in paths:
        try:
            scenario = deploysim.load_scenario(path)
        except ValueError as error:  # a ScenarioError, or a file that is not UTF-8 text
            click.echo(f"error: {_error_text(error, path)}", err=True)
            failed = True
        else:
            click.echo(f"ok: {path} ({scenario.name})")
    if failed:
        raise SystemExit(2)


@main.command()
def schema() -> None:
    """Print the JSON Schema of scenario files."""
    click.echo(json.dumps(deploysim.Scenario.model_json_schema(), indent=2))


def _fail(message: str) -> NoReturn:
    """Report unusable input on stderr and exit 2, as click does for usage errors."""
    click.echo(f"error: {message}", err=True)
    raise SystemExit(2)


def _error_text(error: ValueError, path: str | None = None) -> str:
    """The error's message, led by the file it is about; one line when the whole file is unusable."""
    if not isinstance(error, deploysim.ScenarioError):
        return f"{path}: {error}" if path else str(error)
    # An unreadable file or broken YAML is one problem at the top: say it on one line.
    if len(error.problems) == 1 and not error.problems[0][0]:
        return f"{error.source}: {error.problems[0][1]}"
    return str(error)


def _write_frames(result: deploysim.SimulationResult, out_dir: Path) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for name in FRAMES:
            getattr(result, name).to_csv(out_dir / f"{name}.csv", index=False)
    except OSError as error:
        raise click.ClickException(f"cannot write to {out_dir}: {error.strerror or error}") from None
    click.echo(f"wrote {', '.join(f'{name}.csv' for name in FRAMES)} to {out_dir}", err=True)


def _nan_to_none(value: Any) -> Any:
    """`value` with every NaN or infinite float replaced by None, so it is valid JSON."""
    if isinstance(value, dict):
        return {key: _nan_to_none(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_nan_to_none(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# ------------------------------------------------------------------ text summary

def _fmt(value: Any, render: Callable[[Any], str]) -> str:
    """`render(value)`, or "n/a" for a missing figure (NaN, or null read back from JSON)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return render(value)


def _pct(digits: int) -> Callable[[float], str]:
    return lambda value: f"{value:.{digits}f}%"


def _duration(seconds: float) -> str:
    return deploysim.format_duration_s(seconds)


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
        cells = [row[0].ljust(widths[0])] + [cell.rjust(width) for cell, width in zip(row[1:], widths[1:])]
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
         + f" ({_fmt(blast['failed_request_share_total'], lambda s: f'{s * 100:.4g}%')} of all requests)"),
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
    return "\n".join(out)



# Commands that live beside their own code: experiments, the real executor, the local demo fleet.
from .cli_experiments import compare, sweep, tune  # noqa: E402
from .executor.cli import execute, status  # noqa: E402
from .localfleet.cli import local  # noqa: E402

for _command in (compare, sweep, tune, execute, status, local):
    main.add_command(_command)
from .report.cli import report  # noqa: E402  (the SLA budget report)

main.add_command(report)
