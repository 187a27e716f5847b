"""The experiment commands: `run --replications`, `compare`, `sweep` and `tune`.

Each parses its arguments, calls `deploysim.experiments`, and prints the text or JSON that
`deploysim.experiments.text` makes of the result. Unusable input (an unknown path, an empty grid, a
value that does not fit, an impossible bound) is one line on stderr and exit code 2. The experiments
(scipy, pandas) load inside each command, never when the command tree is built.
"""

from __future__ import annotations

from typing import Any

import click

import deploysim

from ..process_tuning import tune_process
from .common import FILE_FORMATS, dask_client, error_text, fail, guarded, load, load_to_simulate, write_csvs
from .options import apply
from .options import experiment_options as _shared_options

experiment_options = apply(_shared_options, click.option(
    "--format", "file_format", type=click.Choice(FILE_FORMATS), default="csv", show_default=True,
    help="File format of the frames --out-dir writes (parquet needs pyarrow: pip install 'deploysim[parquet]')."))


def _run_kwargs(kw: dict[str, Any], client: Any) -> dict[str, Any]:
    return {"replications": kw["replications"], "seed": kw["seed"], "months": kw["months"],
                "sla_target_pct": kw["sla_target_pct"], "credit_table": kw["credit_table"], "workers": kw["workers"],
                "client": client, "progress": False if kw["quiet"] else None}


def _print_experiment(exp: Any, kw: dict[str, Any], text: str, tables: dict[str, Any]) -> None:
    from ..experiments.text import tables_json

    write_csvs(kw["out_dir"], {"replications": exp.replications, **tables,
                               **({"changes": exp.changes} if len(exp.changes) else {})}, kw.get("file_format", "csv"))
    click.echo(tables_json(tables) if kw["as_json"] else text)


def run_monte_carlo(scenario_path: str, kw: dict[str, Any]) -> None:
    """`deploysim run SCENARIO --replications N`: the Monte Carlo summary of one scenario."""
    from ..experiments.text import format_monte_carlo

    scenario = load_to_simulate(scenario_path)
    uncertain = bool(kw.get("parameter_uncertainty"))
    with dask_client(kw["dask_scheduler"]) as client:
        exp = guarded(deploysim.monte_carlo)(scenario, **_run_kwargs(kw, client),
                                             **({"parameter_uncertainty": True} if uncertain else {}))
    tables = {"summary": exp.summary()}
    text = format_monte_carlo(exp)
    if uncertain:
        from ..experiments.uncertainty import format_influence, parameter_influence

        tables["influence"] = parameter_influence(exp.replications)
        text += "\n" + format_influence(tables["influence"])
    _print_experiment(exp, kw, text, tables)


@click.command()
@click.argument("paths", metavar="SCENARIO...", nargs=-1, required=True)
@click.option(
    "--baseline", default=None, help="Policy (scenario name) the others are compared to (default: the first)."
)
@experiment_options
def compare(paths: tuple[str, ...], baseline: str | None, **kw: Any) -> None:
    """Compare scenarios' policies on the same random worlds (common random numbers)."""
    from ..experiments import same_world
    from ..experiments.text import format_comparison

    scenarios = [load(p) for p in paths]
    tune_process()  # once, after every scenario is loaded
    names = [s.name for s in scenarios]
    if len(set(names)) != len(names):
        fail(f"two scenarios share the name {next(n for n in names if names.count(n) > 1)!r}; names label the policies")
    with dask_client(kw["dask_scheduler"]) as client:
        exp = guarded(deploysim.compare)(scenarios, baseline=baseline, **_run_kwargs(kw, client))
    common = all(same_world(scenarios[0], s) for s in scenarios[1:])
    tables = {"summary": exp.summary(), "paired": exp.paired(), "tradeoff": exp.tradeoff()}
    _print_experiment(exp, kw, format_comparison(exp, same_world=common), tables)


@click.command()
@click.argument("scenario_path", metavar="SCENARIO")
@click.option(
    "--param",
    "params",
    multiple=True,
    required=True,
    metavar="PATH=V1,V2,...",
    help="A scenario field and its values, e.g. policy.pipelines.code.stages[2].waves[0].bake.duration=1h,2h. "
    "Repeat for a grid of every combination.",
)
@click.option(
    "--pipeline",
    default=None,
    help="Pipeline whose lead time the trade-off shows (default: the one the swept paths name, else all changes).",
)
@click.option("--write-scenario", "write_to", type=click.Path(dir_okay=False), default=None,
              help="With --pick: write the scenario with that setting to this YAML file: the input file as written "
              "(comments, order, shorthands), with only the swept fields changed.")
@click.option("--pick", default=None, metavar="SETTING",
              help="The setting --write-scenario writes (a sweep has no single best one): its number, from 1 in "
              "the order sweep prints the settings (the first --param's values vary slowest), or its label as "
              "printed, e.g. 'code.stages[0].one_box.bake.duration=5m'.")
@experiment_options
def sweep(scenario_path: str, params: tuple[str, ...], pipeline: str | None, write_to: str | None,
          pick: str | None, **kw: Any) -> None:
    """Run every value (or combination) of scenario fields, under common random numbers."""
    from ..experiments.api import sweep_settings
    from ..experiments.params import check_grid, parse_param, pick_setting, swept_pipeline
    from ..experiments.text import format_sweep

    if (write_to is None) != (pick is None):
        fail("--write-scenario FILE needs --pick SETTING (a sweep has no single best setting: say which to write)"
             if pick is None else "--pick goes with --write-scenario FILE")
    scenario = load_to_simulate(scenario_path)
    grid = {}
    for spec in params:
        path, values = guarded(parse_param)(spec)
        if path in grid:
            fail(f"--param {path!r} is given twice")
        grid[path] = values
    pipeline = pipeline or swept_pipeline(grid)
    if pipeline is not None and pipeline not in scenario.policy.pipelines:
        fail(f"unknown pipeline {pipeline!r}; the scenario has {', '.join(scenario.policy.pipelines)}")
    picked = None
    if pick is not None:  # checked before anything is simulated
        settings = sweep_settings(guarded(check_grid)(scenario, grid))
        number, label = guarded(pick_setting)(settings, pick)
        picked = (number, label, settings[label], len(settings))
    with dask_client(kw["dask_scheduler"]) as client:
        exp = guarded(deploysim.sweep)(scenario, grid, **_run_kwargs(kw, client))
    tradeoff = exp.tradeoff(pipeline=pipeline)
    _print_experiment(exp, kw, format_sweep(exp, tradeoff, pipeline),
                      {"summary": exp.summary(), "paired": exp.paired(), "tradeoff": tradeoff})
    if write_to is not None and picked is not None:
        number, label, values, total = picked
        changed = _write_scenario(scenario_path, scenario, values, write_to)
        click.echo(f"wrote setting {number}/{total} ({label}) to {write_to} ({changed} field(s) changed)", err=True)


def _write_scenario(scenario_path: str, scenario: Any, values: dict[str, Any], write_to: str) -> int:
    """The input file with only `values` (path → value) changed, written to `write_to`; how many fields."""
    from ..experiments.params import file_values
    from ..scenario.edit import write_scenario

    positional = guarded(file_values)(scenario, values)
    try:
        write_scenario(scenario_path, positional, write_to)
    except OSError as error:
        fail(f"cannot write {write_to}: {error.strerror or error}")
    except ValueError as error:
        fail(error_text(error, write_to).replace("\n", ";"))
    return len(positional)


@click.command()
@click.argument("scenario_path", metavar="SCENARIO")
@click.option("--max-breach-probability", type=float, required=True,
              help="Largest acceptable P(worst region's monthly uptime < --sla), in [0, 1).")
@click.option("--vary", "vary", multiple=True, default=("bake durations",), show_default=True,
              help="What to search: 'bake durations', 'batch sizes', or PATH=V1,V2,... (repeatable).")
@click.option("--pipeline", default="code", show_default=True, help="Pipeline whose settings and lead time are tuned.")
@click.option("--max-evaluations", type=click.IntRange(min=1), default=16, show_default=True,
              help="Most settings to simulate (each costs --replications runs).")
@click.option("--judge", type=click.Choice(["upper", "estimate"]), default="upper", show_default=True,
              help="Judge the bound by the upper end of the breach probability's 95% interval (a setting must be "
              "shown safe enough) or by the estimate alone (optimistic with few replications).")
@click.option("--cautious", is_flag=True, hidden=True, help="Same as --judge upper (the default).")
@click.option("--write-scenario", "write_to", type=click.Path(dir_okay=False), default=None,
              help="Write the scenario with the best setting to this YAML file: the input file as written "
              "(comments, order, shorthands), with only the tuned fields changed.")
@experiment_options
def tune(scenario_path: str, max_breach_probability: float, vary: tuple[str, ...], pipeline: str,
         max_evaluations: int, judge: str, cautious: bool, write_to: str | None, **kw: Any) -> None:
    """Find the shortest median lead time whose SLA breach probability stays within a bound."""
    from ..experiments.params import parse_param
    from ..experiments.text import format_tune, tables_json

    scenario = load_to_simulate(scenario_path)
    if not 0.0 <= max_breach_probability < 1.0:
        fail(f"--max-breach-probability must be in [0, 1), got {max_breach_probability:g}")
    if all("=" in v for v in vary):
        space: Any = {}
        for spec in vary:
            path, values = guarded(parse_param)(spec)
            space[path] = values
    elif len(vary) == 1:
        space = vary[0]
    else:
        fail("--vary takes either one group name or one or more PATH=V1,V2,... specs")
    with dask_client(kw["dask_scheduler"]) as client:
        result = guarded(deploysim.tune)(
            scenario, vary=space, pipeline=pipeline, max_breach_probability=max_breach_probability,
            max_evaluations=max_evaluations, criterion="upper" if cautious else judge, **_run_kwargs(kw, client))
    write_csvs(kw["out_dir"], {"candidates": result.candidates, "replications": result.experiment.replications},
               kw.get("file_format", "csv"))
    if kw["as_json"]:
        click.echo(tables_json({"candidates": result.candidates}))
    else:
        click.echo(format_tune(result, scenario.name, seed=kw["seed"]))
    if result.best is None:
        if write_to is not None:
            click.echo(f"no setting met the bound: {write_to} not written", err=True)
        raise SystemExit(1)
    if write_to is not None and result.best_values is not None:
        changed = _write_scenario(scenario_path, scenario, result.best_values, write_to)
        click.echo(f"wrote the tuned scenario to {write_to} ({changed} field(s) changed)", err=True)
