"""`deploysim fit`: a scenario whose world is fitted from a service's deployment and incident history."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from .common import error_text, fail


def _when(value: str | None, option: str) -> dt.datetime | None:
    if value is None:
        return None
    from ..fit.history import HistoryError, parse_time

    try:
        return parse_time(value, option, None, "")
    except HistoryError as error:
        fail(f"{option}: {error.detail}")


@click.command()
@click.option("--deployments", "deployments", multiple=True, metavar="FILE",
              help="Deployments: deploysim's CSV/JSON, CodePipeline list-pipeline-executions JSON or GitHub "
              "deployments JSON (NAME=FILE names a one-pipeline file's pipeline). Repeatable.")
@click.option("--incidents", "incidents", multiple=True, metavar="FILE",
              help="Incidents: deploysim's CSV/JSON or a PagerDuty-style CSV. Repeatable.")
@click.option("--fleet", "fleet", required=True, metavar="FILE",
              help="The base: a scenario whose fleet, traffic and policy are kept and whose world is fitted (its "
              "values are the priors kept where the history is too thin), or a file with only `fleet:` (and "
              "`traffic:`), which gets `deploysim init`'s starter policy for each pipeline.")
@click.option("-o", "--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Write the fitted scenario here (YAML).")
@click.option("--report", "report", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write the summary table and a picture of each fit against its data to this directory.")
@click.option("--since", default=None, metavar="TIME", help="Start of the history's window (default: the first "
              "record's day).")
@click.option("--until", default=None, metavar="TIME",
              help="End of the window (default: the day after the last record).")
@click.option("--replications", "-n", type=click.IntRange(min=0), default=0, show_default=True,
              help="Also simulate this many months with the fitted values and as many with parameters drawn from "
              "the fit (same seeds): both breach probabilities and which parameters dominate go in the report "
              "(needs --report).")
@click.option("--sla", "sla_target_pct", type=click.FloatRange(0, 100, min_open=True, max_open=True), default=99.9,
              show_default=True, help="With --replications: the monthly uptime target, in percent.")
@click.option("--seed", type=int, default=1, show_default=True, help="With --replications: the root seed.")
def fit(deployments: tuple[str, ...], incidents: tuple[str, ...], fleet: str, out: Path, report: Path | None,
        since: str | None, until: str | None, replications: int, sla_target_pct: float, seed: int) -> None:
    """Fit a scenario's world (change arrivals, failure and catch rates, people's delays, rollback
    durations, infrastructure faults) from deployment and incident history, with 95% intervals."""
    from ..fit import HistoryError, fit_files, fitted_yaml, write_report
    from ..scenario import ScenarioError, load_scenario

    if not deployments and not incidents:
        fail("give at least one --deployments or --incidents file")
    if replications and report is None:
        fail("--replications reports which parameters dominate: give --report DIR too")
    try:
        fitted, base = fit_files(list(deployments), list(incidents), fleet, since=_when(since, "--since"),
                                 until=_when(until, "--until"))
    except HistoryError as error:
        fail(str(error))
    except ScenarioError as error:
        fail(error_text(error, fleet))
    except ValueError as error:
        fail(str(error))
    if base.starter:
        click.echo(f"{fleet} describes no policy: each pipeline gets `deploysim init`'s starter policy (edit it)")
    text = fitted_yaml(fitted, base, name=out.stem)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    except OSError as error:
        raise click.ClickException(f"cannot write {out}: {error.strerror or error}") from None
    try:
        scenario = load_scenario(out)
    except ScenarioError as error:  # a bug of ours, not the user's: say so plainly
        fail(f"the fitted scenario does not validate (please report): {error}")
    counts = {s: sum(1 for e in fitted.estimates if e.status == s) for s in ("fitted", "prior", "reported")}
    click.echo(f"fitted {counts['fitted']} parameter(s), kept {counts['prior']} prior(s) (too little data), "
               f"reported {counts['reported']}; wrote {out}")
    for e in fitted.estimates:
        if e.status == "prior":
            click.echo(f"  prior: {e.label}: {e.note}")
    if report is not None:
        breach = influence = None
        if replications and scenario.uncertainty:
            from ..fit.breach import breach_with_uncertainty

            breach, influence = breach_with_uncertainty(scenario, replications=replications, seed=seed,
                                                        sla_target_pct=sla_target_pct, progress=False)
            for row in breach.itertuples():
                click.echo(f"breach probability at {sla_target_pct:g}%, {row.world}: {row.breach_probability:.1%} "
                           f"[{row.breach_ci_low:.1%}, {row.breach_ci_high:.1%}] ({row.replications} months)")
        elif replications:
            click.echo("nothing was fitted with a posterior: no parameter uncertainty to simulate")
        written = write_report(fitted, report, influence, breach, sla_target_pct)
        click.echo(f"wrote the report ({len(written)} files) to {report}")
