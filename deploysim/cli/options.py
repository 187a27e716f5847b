"""The options several commands share, each declared once: name, type, range and default live here;
a command may only say in its own words what the option means to it (`help=`).

Each function returns a click decorator. Nothing here imports more than click and deploysim.sla, so
building the command tree (`deploysim --help`) stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from ..sla import CREDIT_TIER_TABLES

Decorator = Callable[[Callable], Callable]


def seed(help: str = "Root seed; replication i of every policy uses its i-th child stream.") -> Decorator:
    return click.option("--seed", type=int, default=1, show_default=True, help=help)


def months(help: str = "Length of each replication in 30-day months.") -> Decorator:
    return click.option("--months", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True,
                        help=help)


def sla(allow_100: bool = False) -> Decorator:
    """--sla in percent. An experiment's breach probability needs a target below 100%; a single run's
    summary takes 100% as "no downtime allowed" (`allow_100`)."""
    return click.option("--sla", "sla_target_pct", type=click.FloatRange(0, 100, min_open=True, max_open=not allow_100),
                        default=99.9, show_default=True, help="Monthly uptime target, in percent.")


def credit_table() -> Decorator:
    return click.option("--credit-table", type=click.Choice(CREDIT_TIER_TABLES), default="s3-standard",
                        show_default=True, help="Service-credit tiers to apply.")


def replications(default: int | None = 100,
                 help: str = "Simulated replications (each of --months months) per policy.") -> Decorator:
    return click.option("--replications", "-n", type=click.IntRange(min=1), default=default,
                        show_default=default is not None, help=help)


def workers(help: str = "Local worker processes (default: one per CPU).") -> Decorator:
    return click.option("--workers", type=click.IntRange(min=1), default=None, help=help)


def dask_scheduler(help: str = "Run on this Dask distributed scheduler (e.g. tcp://host:8786) instead; "
                               "needs `pip install deploysim[dask]`.") -> Decorator:
    return click.option("--dask-scheduler", metavar="ADDRESS", default=None, help=help)


def quiet(help: str = "No progress bar (it is also off when stderr is not a terminal).") -> Decorator:
    return click.option("--quiet", "-q", is_flag=True, help=help)


def out_dir(help: str = "Also write the tidy frames as CSV files to this directory.", required: bool = False,
            short: bool = False) -> Decorator:
    names = ("--out-dir", "-o") if short else ("--out-dir",)
    return click.option(*names, "out_dir", required=required, type=click.Path(file_okay=False, path_type=Path),
                        help=help)


def as_json(help: str = "Print the tables as JSON instead of text.") -> Decorator:
    return click.option("--json", "as_json", is_flag=True, help=help)


def apply(*options: Decorator) -> Decorator:
    """Apply `options` so that --help lists them in the order given."""
    def decorate(func: Callable) -> Callable:
        for option in reversed(options):
            func = option(func)
        return func
    return decorate


experiment_options = apply(replications(), seed(), months(), sla(), credit_table(), workers(), dask_scheduler(),
                           quiet(), out_dir(), as_json())
"""The options every experiment command (compare, sweep, tune) shares, in their --help order."""
