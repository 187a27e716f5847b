"""`deploysim init`: write a commented starter scenario for a described fleet."""

from __future__ import annotations

from pathlib import Path

import click

from .common import fail


@click.command()
@click.argument("path", metavar="FILE", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--name", default=None, help="Scenario name (default: FILE's name without .yaml).")
@click.option("--region", "regions", multiple=True, metavar="REGION[=TIME/ZONE]",
              help="A region and its IANA time zone, e.g. us-east-1=America/New_York; repeat in deployment "
              "order (default: us-east-1=America/New_York).")
@click.option("--azs", type=click.IntRange(min=1), default=3, show_default=True, help="Availability zones per region.")
@click.option("--hosts-per-az", type=click.IntRange(min=1), default=4, show_default=True, help="Hosts per AZ.")
@click.option("--requests-per-min", type=click.FloatRange(min=0, min_open=True), default=100_000, show_default=True,
              help="Requests per minute over the whole fleet at the daily mean.")
@click.option("--changes-per-week", type=click.FloatRange(min=0), default=10, show_default=True,
              help="Code changes per week.")
@click.option("--force", is_flag=True, help="Overwrite FILE if it exists.")
def init(path: Path, name: str | None, regions: tuple[str, ...], azs: int, hosts_per_az: int,
         requests_per_min: float, changes_per_week: float, force: bool) -> None:
    """Write a commented starter scenario to FILE, valid as written, for the fleet described."""
    import yaml

    import deploysim

    from ..scenario.starter import parse_region, starter_scenario

    if path.exists() and not force:
        fail(f"{path} exists; pass --force to overwrite it")
    try:
        specs = [parse_region(r) for r in regions or ("us-east-1=America/New_York",)]
    except ValueError as error:
        fail(f"--region: {error}")
    if len({s.name for s in specs}) != len(specs):
        fail("--region: each region once")
    text = starter_scenario(name or path.name.removesuffix(".yaml"), specs, azs=azs, hosts_per_az=hosts_per_az,
                            requests_per_min=requests_per_min, changes_per_week=changes_per_week)
    try:
        deploysim.scenario_from_dict(yaml.safe_load(text), source=str(path))
    except deploysim.ScenarioError as error:  # e.g. an unknown time zone: say so before writing anything
        fail(str(error).replace("\n", ";"))
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as error:
        fail(f"cannot write {path}: {error.strerror or error}")
    click.echo(f"wrote {path}: check it with `deploysim validate {path}`, run it with `deploysim run {path}`",
               err=True)
