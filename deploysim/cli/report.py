"""`deploysim report SCENARIO -o DIR`: the SLA budget report as index.html and report.md (built by
deploysim.report, loaded inside the command)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from . import options
from .common import dask_client, fail, guarded, load_to_simulate


@click.command("report")
@click.argument("scenario_path", metavar="SCENARIO")
@options.apply(
    options.out_dir(help="Directory for index.html (self-contained), report.md and figures/*.png.",
                    required=True, short=True),
    options.sla(),
    options.replications(help="Simulated replications (each of --months months) for the estimates."),
    options.seed(help="Root seed; replication i uses its i-th child stream."),
    options.months(),
    options.credit_table(),
)
@click.option("--sensitivity-replications", type=click.IntRange(min=0), default=None,
              help="Replications per variant of the sensitivity sweep (default: the smaller of "
                   "--replications and 20; 0 skips the sweep).")
@click.option("--sensitivity-pipeline", "sensitivity_pipelines", multiple=True, metavar="NAME",
              help="Only vary this pipeline's bakes and batch size in the sweep (repeatable; default: every pipeline).")
@options.apply(
    options.workers(),
    options.dask_scheduler(help="Run on this Dask distributed scheduler (e.g. tcp://host:8786); "
                                "needs `pip install deploysim[dask]`."),
    options.quiet(help="No progress messages or bars."),
)
def report(scenario_path: str, out_dir: Path, sla_target_pct: float, replications: int, seed: int, months: float,
           credit_table: str, sensitivity_replications: int | None, sensitivity_pipelines: tuple[str, ...],
           workers: int | None, dask_scheduler: str | None, quiet: bool) -> None:
    """Write the SLA budget report of SCENARIO: downtime, breach probability, credits, where the budget
    goes, the policy in words, DORA's four keys and the settings that matter most."""
    from ..report.build import make_report
    from ..report.render import write_report
    from ..report.sensitivity import settings_of

    scenario = load_to_simulate(scenario_path)
    guarded(settings_of)(scenario, list(sensitivity_pipelines) or None)
    try:  # an unusable output directory fails before minutes of simulation, not after
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        fail(f"cannot write to {out_dir}: {error.strerror or error}")
    n_sens = min(replications, 20) if sensitivity_replications is None else sensitivity_replications

    def say(message: str) -> None:
        if not quiet:
            click.echo(message, err=True)

    command = (f"deploysim report {scenario_path} --sla {sla_target_pct:g} --replications {replications} "
               f"--seed {seed} --months {months:g} --credit-table {credit_table} --sensitivity-replications {n_sens}"
               + "".join(f" --sensitivity-pipeline {p}" for p in sensitivity_pipelines))
    say(f"simulating {replications} replication(s) of {scenario.name}, then a sensitivity sweep "
        f"of {n_sens} replication(s) per variant" if n_sens else
        f"simulating {replications} replication(s) of {scenario.name} (no sensitivity sweep)")
    kwargs: dict[str, Any] = {
        "replications": replications,
        "seed": seed,
        "months": months,
        "sla_target_pct": sla_target_pct,
        "credit_table": credit_table,
        "workers": workers,
        "progress": False if quiet else None,
        "sensitivity_replications": n_sens,
        "sensitivity_pipelines": list(sensitivity_pipelines) or None,
        "command": command,
        "phase": say,
    }
    with dask_client(dask_scheduler) as client:
        result = guarded(make_report)(scenario, client=client, **kwargs)
    try:
        written = write_report(result, out_dir)
    except OSError as error:
        fail(f"cannot write to {out_dir}: {error.strerror or error}")
    for note in result.notes:
        click.echo(f"warning: {note}", err=True)
    say(f"wrote {written['index.html']} (self-contained), {written['report.md']} and "
        f"{len(result.figures)} figure(s) in {out_dir / 'figures'}")
