"""The experiment commands: `run --replications`, `compare`, `sweep` and `tune`.

Each parses its arguments, calls `deploysim.experiments`, and prints what comes back. Unusable
input (an unknown path, an empty grid, a value that does not fit, an impossible bound) is one line
on stderr and exit code 2.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
from pathlib import Path
from typing import Any, Callable, Iterator, NoReturn, Optional

import click

import deploysim
from .experiments import Experiment, ParameterError, parse_param, same_world
from .experiments import text as exp_text


def experiment_options(func: Callable) -> Callable:
    """Options every experiment command shares."""
    options = [
        click.option("--replications", "-n", type=click.IntRange(min=1), default=100, show_default=True,
                     help="Simulated replications (each of --months months) per policy."),
        click.option("--seed", type=int, default=1, show_default=True,
                     help="Root seed; replication i of every policy uses its i-th child stream."),
        click.option("--months", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True,
                     help="Length of each replication in 30-day months."),
        click.option("--sla", "sla_target_pct", type=click.FloatRange(0, 100, min_open=True, max_open=True),
                     default=99.9, show_default=True, help="Monthly uptime target, in percent."),
        click.option("--credit-table", type=click.Choice(deploysim.sla.CREDIT_TIER_TABLES), default="s3-standard",
                     show_default=True, help="Service-credit tiers to apply."),
        click.option("--workers", type=click.IntRange(min=1), default=None,
                     help="Local worker processes (default: one per CPU)."),
        click.option("--dask-scheduler", metavar="ADDRESS", default=None,
                     help="Run on this Dask distributed scheduler (e.g. tcp://host:8786) instead; "
                          "needs `pip install deploysim[dask]`."),
        click.option("--quiet", "-q", is_flag=True, help="No progress bar (it is also off when stderr is not a terminal)."),
        click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path),
                     help="Also write the tidy frames as CSV files to this directory."),
        click.option("--json", "as_json", is_flag=True, help="Print the tables as JSON instead of text."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    raise SystemExit(2)


def load(path: str) -> deploysim.Scenario:
    from .cli import _error_text

    try:
        return deploysim.load_scenario(path)
    except ValueError as error:
        fail(_error_text(error, path))


@contextlib.contextmanager
def dask_client(address: Optional[str]) -> Iterator[Any]:
    """A Dask client for `address`, or None; a clear error if Dask is missing or the scheduler is unreachable."""
    if address is None:
        yield None
        return
    try:
        from distributed import Client
    except ImportError:
        fail("--dask-scheduler needs Dask: pip install 'deploysim[dask]'")
    try:
        client = Client(address, timeout="10s")
    except (OSError, TimeoutError, ValueError) as error:
        fail(f"cannot reach the Dask scheduler at {address}: {error}")
    try:
        yield client
    finally:
        client.close()


def run_kwargs(kw: dict[str, Any], client: Any) -> dict[str, Any]:
    return dict(replications=kw["replications"], seed=kw["seed"], months=kw["months"],
                sla_target_pct=kw["sla_target_pct"], credit_table=kw["credit_table"], workers=kw["workers"],
                client=client, progress=False if kw["quiet"] else None)


def guarded(func: Callable) -> Callable:
    """Turn the library's input errors into one line and exit code 2."""
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ParameterError as error:
            fail(str(error))
        except deploysim.ScenarioError as error:
            fail(str(error).replace("\n", ";"))
    return wrapper


def _shown(path: str, value: Any) -> str:
    if path.endswith("duration") and isinstance(value, (int, float)):
        return deploysim.format_duration_s(float(value))
    return str(value)


def write_frames(out_dir: Optional[Path], frames: dict[str, Any]) -> None:
    if out_dir is None:
        return
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for name, frame in frames.items():
            frame.to_csv(out_dir / f"{name}.csv", index=False)
    except OSError as error:
        raise click.ClickException(f"cannot write to {out_dir}: {error.strerror or error}") from None
    click.echo(f"wrote {', '.join(f'{n}.csv' for n in frames)} to {out_dir}", err=True)


def echo_json(tables: dict[str, Any]) -> None:
    def clean(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value.item() if hasattr(value, "item") else value
    click.echo(json.dumps({k: clean(v.to_dict("records")) for k, v in tables.items()}, indent=2, allow_nan=False))


def run_monte_carlo(scenario_path: str, kw: dict[str, Any]) -> None:
    """`deploysim run SCENARIO --replications N`: the Monte Carlo summary of one scenario."""
    scenario = load(scenario_path)
    with dask_client(kw["dask_scheduler"]) as client:
        exp = guarded(deploysim.monte_carlo)(scenario, **run_kwargs(kw, client))
    _print_experiment(exp, kw, exp_text.format_monte_carlo(exp), {"summary": exp.summary()})


def _print_experiment(exp: Experiment, kw: dict[str, Any], text: str, tables: dict[str, Any]) -> None:
    write_frames(kw["out_dir"], {"replications": exp.replications, **tables,
                                 **({"changes": exp.changes} if len(exp.changes) else {})})
    if kw["as_json"]:
        echo_json(tables)
    else:
        click.echo(text)


@click.command()
@click.argument("paths", metavar="SCENARIO...", nargs=-1, required=True)
@click.option("--baseline", default=None, help="Policy (scenario name) the others are compared to (default: the first).")
@experiment_options
def compare(paths: tuple[str, ...], baseline: Optional[str], **kw: Any) -> None:
    """Compare scenarios' policies on the same random worlds (common random numbers)."""
    scenarios = [load(p) for p in paths]
    names = [s.name for s in scenarios]
    if len(set(names)) != len(names):
        fail(f"two scenarios share the name {next(n for n in names if names.count(n) > 1)!r}; names label the policies")
    with dask_client(kw["dask_scheduler"]) as client:
        exp = guarded(deploysim.compare)(scenarios, baseline=baseline, **run_kwargs(kw, client))
    common = all(same_world(scenarios[0], s) for s in scenarios[1:])
    tables = {"summary": exp.summary(), "paired": exp.paired(), "tradeoff": exp.tradeoff()}
    _print_experiment(exp, kw, exp_text.format_comparison(exp, same_world=common), tables)


@click.command()
@click.argument("scenario_path", metavar="SCENARIO")
@click.option("--param", "params", multiple=True, required=True, metavar="PATH=V1,V2,...",
              help="A scenario field and its values, e.g. policy.pipelines.code.stages[2].waves[0].bake.duration=1h,2h. "
                   "Repeat for a grid of every combination.")
@click.option("--pipeline", default=None,
              help="Pipeline whose lead time the trade-off shows (default: the one the swept paths name, else all changes).")
@experiment_options
def sweep(scenario_path: str, params: tuple[str, ...], pipeline: Optional[str], **kw: Any) -> None:
    """Run every value (or combination) of scenario fields, under common random numbers."""
    scenario = load(scenario_path)
    grid = {}
    for spec in params:
        path, values = guarded(parse_param)(spec)
        if path in grid:
            fail(f"--param {path!r} is given twice")
        grid[path] = values
    named = {p.split(".")[2] for p in grid if p.startswith("policy.pipelines.") and p.count(".") >= 3}
    pipeline = pipeline or (named.pop() if len(named) == 1 else None)
    if pipeline is not None and pipeline not in scenario.policy.pipelines:
        fail(f"unknown pipeline {pipeline!r}; the scenario has {', '.join(scenario.policy.pipelines)}")
    with dask_client(kw["dask_scheduler"]) as client:
        exp = guarded(deploysim.sweep)(scenario, grid, **run_kwargs(kw, client))
    tradeoff = exp.tradeoff(pipeline=pipeline)
    whose = f"{pipeline} pipeline's" if pipeline else "all changes'"
    text = "\n".join([exp_text.format_comparison(exp), "",
                      exp_text.format_tradeoff(tradeoff, f"Trade-off: {whose} median lead time vs SLA breach probability")])
    _print_experiment(exp, kw, text, {"summary": exp.summary(), "paired": exp.paired(), "tradeoff": tradeoff})


@click.command()
@click.argument("scenario_path", metavar="SCENARIO")
@click.option("--max-breach-probability", type=float, required=True,
              help="Largest acceptable P(worst region's monthly uptime < --sla), in [0, 1).")
@click.option("--vary", "vary", multiple=True, default=("bake durations",), show_default=True,
              help="What to search: 'bake durations', 'batch sizes', or PATH=V1,V2,... (repeatable).")
@click.option("--pipeline", default="code", show_default=True, help="Pipeline whose settings and lead time are tuned.")
@click.option("--max-evaluations", type=click.IntRange(min=1), default=16, show_default=True,
              help="Most settings to simulate (each costs --replications runs).")
@click.option("--cautious", is_flag=True,
              help="Judge the bound by the upper end of the breach probability's 95% interval, not the estimate.")
@experiment_options
def tune(scenario_path: str, max_breach_probability: float, vary: tuple[str, ...], pipeline: str,
         max_evaluations: int, cautious: bool, **kw: Any) -> None:
    """Find the shortest median lead time whose SLA breach probability stays within a bound."""
    scenario = load(scenario_path)
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
            max_evaluations=max_evaluations, criterion="upper" if cautious else "estimate", **run_kwargs(kw, client))
    exp = result.experiment
    lines = [f"Tuning {pipeline} pipeline of {scenario.name}: minimise median lead time subject to "
             f"P(uptime < {kw['sla_target_pct']:g}%) <= {max_breach_probability:g}"
             + (" (upper 95% bound)" if cautious else ""),
             f"{exp.n_replications} replication(s) per setting, seed {kw['seed']}, {len(result.candidates)} setting(s) evaluated",
             "", exp_text.format_tradeoff(result.candidates, "Evaluated settings (fastest first)"), ""]
    if result.best is None:
        floor = result.breach_causes()
        causes = sorted(floor["downtime_share_by_cause"].items(), key=lambda kv: -(kv[1] if kv[1] == kv[1] else 0))
        lines.append(f"No evaluated setting meets the bound. The safest, {floor['setting']}, still breaches in "
                     f"{floor['breach_probability']:.1%} of months [{floor['breach_ci_low']:.1%}, {floor['breach_ci_high']:.1%}].")
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
    else:
        lines.append("Best setting:")
        lines += [f"  {path} = {_shown(path, value)}" for path, value in result.best_values.items()]
        lines.append(f"  median lead time {result.best['lead_time_p50_h']:.1f} h, P(breach) "
                     f"{result.best['breach_probability']:.3f} [{result.best['breach_ci_low']:.3f}, "
                     f"{result.best['breach_ci_high']:.3f}]")
    write_frames(kw["out_dir"], {"candidates": result.candidates, "replications": exp.replications})
    if kw["as_json"]:
        echo_json({"candidates": result.candidates})
    else:
        click.echo("\n".join(lines))
    if result.best is None:
        raise SystemExit(1)
