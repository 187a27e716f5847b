"""`deploysim run`, `validate` and `schema`: one simulated run, and the scenario files it reads.

Nothing here computes a figure; every number comes from `SimulationResult.summary()`, and its text
from `deploysim.summary_text`.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

import deploysim

from . import options
from .common import error_text, fail, load_to_simulate, write_csvs

FRAMES = ("changes", "timeline", "uptime", "monthly")
"""Result frames written as `<name>.csv` by `run --out-dir`."""


@click.command()
@click.argument("scenario_path", metavar="SCENARIO")
@options.apply(
    options.seed(help="Random seed; the same seed gives the same result."),
    options.months(help="Length of the run in 30-day months."),
    options.sla(allow_100=True),
    options.credit_table(),
    options.as_json(help="Print the summary as JSON (NaN as null) instead of text."),
    options.out_dir(
        help="Also write changes.csv, timeline.csv, uptime.csv and monthly.csv to this directory "
        "(with --replications: replications.csv, summary.csv, changes.csv)."
    ),
    options.replications(
        default=None, help="Run a Monte Carlo experiment of this many replications and print estimates with intervals."
    ),
    options.workers(help="With --replications: local worker processes (default: one per CPU)."),
    options.dask_scheduler(
        help="With --replications: run on this Dask scheduler (needs `pip install deploysim[dask]`)."
    ),
    options.quiet(help="With --replications: no progress bar."),
    click.option("--parameter-uncertainty", is_flag=True,
                 help="With --replications, on a scenario fitted by `deploysim fit`: draw each replication's world "
                 "parameters from the fit's posteriors, and say which of them the downtime depends on."),
    click.option("--history-out", type=click.Path(file_okay=False, path_type=Path), default=None,
                 help="Also write the run's deployments and incidents to this directory in every format "
                 "`deploysim fit` reads (generic CSV/JSON, CodePipeline, GitHub, PagerDuty-style CSV)."),
)
def run(scenario_path: str, seed: int, months: float, sla_target_pct: float, credit_table: str,
        as_json: bool, out_dir: Path | None, replications: int | None, workers: int | None,
        dask_scheduler: str | None, quiet: bool, parameter_uncertainty: bool, history_out: Path | None) -> None:
    """Simulate SCENARIO and print its summary figures (or, with --replications, their distributions)."""
    if replications is not None:
        from .experiments import run_monte_carlo

        if history_out is not None:
            fail("--history-out writes one run's history: leave out --replications")
        run_monte_carlo(scenario_path, {"seed": seed, "months": months, "sla_target_pct": sla_target_pct,
                                            "credit_table": credit_table, "as_json": as_json, "out_dir": out_dir,
                                            "replications": replications, "workers": workers,
                                            "dask_scheduler": dask_scheduler, "quiet": quiet,
                                            "parameter_uncertainty": parameter_uncertainty})
        return
    if parameter_uncertainty:
        fail("--parameter-uncertainty draws a world per replication: give --replications too")
    if workers is not None or dask_scheduler is not None:
        fail("--workers and --dask-scheduler need --replications")
    from ..summary_text import format_summary, summary_json

    scenario = load_to_simulate(scenario_path)
    try:
        result = deploysim.simulate(scenario, seed=seed, months=months, sla_target_pct=sla_target_pct,
                                    credit_table=credit_table)
        summary = result.summary()
        if out_dir is not None:
            write_csvs(out_dir, {name: getattr(result, name) for name in FRAMES})
        if history_out is not None:
            _write_history(result, history_out, scenario_path, seed, months)
    except ValueError as error:  # the library's word that an input cannot be used, not a bug
        fail(error_text(error))
    click.echo(summary_json(summary) if as_json else format_summary(summary))


@click.command()
@click.argument("paths", metavar="SCENARIO...", nargs=-1, required=True)
def validate(paths: tuple[str, ...]) -> None:
    """Check scenario files; print `ok: PATH (name)` for each valid one, exit 2 if any is not.

    Valid files can still get warnings (traffic over capacity, alarms that can never fire, batches
    over the headroom): printed, exit status unchanged. A local fleet's versions file
    (`NAME.versions.yaml`, next to its scenario) is checked as one."""
    from deploysim.scenario.checks import scenario_warnings  # here: --help must not load the schema library

    failed = False
    for path in paths:
        if path.endswith(".versions.yaml"):
            from ..localfleet.service import VersionsFileError, load_versions

            try:
                versions = load_versions(path)
            except VersionsFileError as error:
                click.echo(f"error: {error}", err=True)
                failed = True
            else:
                click.echo(f"ok: {path} (versions file of a local fleet: {len(versions)} version(s))")
            continue
        try:
            scenario = deploysim.load_scenario(path)
        except ValueError as error:  # a ScenarioError, or a file that is not UTF-8 text
            click.echo(f"error: {error_text(error, path)}", err=True)
            failed = True
        else:
            click.echo(f"ok: {path} ({scenario.name})")
            for warning in scenario_warnings(scenario):
                click.echo(f"warning: {path}: {warning}", err=True)
    if failed:
        raise SystemExit(2)


@click.command()
def schema() -> None:
    """Print the JSON Schema of scenario files (with the shorthands `validate` accepts, e.g. `bake: 1h`)."""
    from ..scenario.json_schema import scenario_json_schema

    click.echo(json.dumps(scenario_json_schema(), indent=2))


def _write_history(result, out: Path, scenario_path: str, seed: int, months: float) -> None:
    from ..fit.export import write_run_history

    try:
        written = write_run_history(result, out, command=f"deploysim run {Path(scenario_path).name} --seed {seed} "
                                    f"--months {months:g} --history-out {out.name}")
    except OSError as error:
        raise click.ClickException(f"cannot write to {out}: {error.strerror or error}") from None
    click.echo(f"wrote the run's history ({len(written)} files) to {out}", err=True)
