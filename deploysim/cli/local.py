"""`deploysim local`: start, inspect and stop a real local fleet with its Prometheus and load.

    deploysim local up SCENARIO --dir DIR      one process per host of SCENARIO + Prometheus + load,
                                               all detached; writes DIR/inventory.yaml
    deploysim local status --dir DIR
    deploysim local down --dir DIR
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

from .common import fail, input_error

if TYPE_CHECKING:
    from ..localfleet.fleet import LocalFleet


def _fail(message: str, code: int = 1) -> NoReturn:
    """`deploysim local` fails with exit code 1 (2 for unusable input, given explicitly)."""
    fail(message, code)


# ---------------------------------------------------------------- commands


@click.group("local")
def local() -> None:
    """A real fleet on this machine: one demo-service process per host, Prometheus, load."""


@local.command("up")
@click.argument("scenario_path", metavar="SCENARIO", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dir", "directory", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Fleet directory: state, logs, Prometheus data and inventory.yaml go here.")
@click.option("--version", default=None,
              help="Version every host starts on (default: the first of the versions file). "
                   "Hosts already running keep theirs.")
@click.option("--versions", "versions_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Versions file (default: SCENARIO with .versions.yaml).")
@click.option("--metrics", type=click.Choice(["prometheus", "probe"]), default="prometheus", show_default=True,
              help="Metric source written to the inventory; `probe` starts no Prometheus.")
@click.option("--prometheus-port", type=click.IntRange(1, 65535), default=9090, show_default=True)
@click.option("--base-port", type=click.IntRange(1, 65535), default=None,
              help="First host port (hosts get consecutive ports); default: free ports picked by the system.")
@click.option("--rate", type=click.FloatRange(min=0, min_open=True), default=20.0, show_default=True,
              help="Load: requests per second to each host, in the scenario's API mix.")
@click.option("--scrape-interval", type=click.FloatRange(min=0.1), default=1.0, show_default=True,
              help="Seconds between Prometheus scrapes; keep it at most half the scenario's metric_period.")
def up(scenario_path: Path, directory: Path, version: str | None, versions_path: Path | None, metrics: str,
       prometheus_port: int, base_port: int | None, rate: float, scrape_interval: float) -> None:
    """Start the fleet of SCENARIO (one process per host), Prometheus and the load, detached."""
    from ..fleet import build_fleet, host_names
    from ..localfleet.control import choose_ports, default_versions_file, start_hosts, start_loadgen, write_inventory
    from ..localfleet.fleet import FleetError, LocalFleet
    from ..localfleet.prometheus import PrometheusError, PrometheusServer, find_prometheus
    from ..localfleet.service import VersionsFileError, load_versions
    from ..scenario import load_scenario

    try:
        scenario = load_scenario(scenario_path)
    except ValueError as error:
        input_error(error)
    versions_path = versions_path or default_versions_file(scenario_path)
    try:
        versions = load_versions(versions_path)
    except VersionsFileError as error:
        _fail(f"{error} (give one with --versions)", 2)
    if version is not None and version not in versions:
        _fail(f"unknown version {version!r}; {versions_path} defines {', '.join(versions)}", 2)
    if metrics == "prometheus":
        try:
            find_prometheus()  # before anything starts
        except PrometheusError as error:
            _fail(str(error))
    names = host_names(build_fleet(scenario))
    directory = directory.resolve()
    directory.mkdir(parents=True, exist_ok=True)

    ports = choose_ports(directory, names, base_port, avoid=prometheus_port)
    try:
        fleet = LocalFleet.create(directory, ports, versions_path, scenario.traffic.apis)
        outcomes = start_hosts(fleet, names, version, first_version=next(iter(versions)), timeout_s=30.0)
    except (FleetError, VersionsFileError) as error:
        _fail(str(error))
    failed = [o for o in outcomes if not o.ok]
    click.echo(f"Local fleet of scenario {scenario.name} in {directory}: {len(names)} host(s)")
    for status in fleet.status():
        click.echo(f"  {status.name:<24} {fleet.address(status.name):<16} "
                   f"{status.live_version or 'DOWN':<14} {'healthy' if status.healthy else 'NOT healthy'}")
    if failed:
        for outcome in failed:
            click.echo(f"error: {outcome.host}: {outcome.detail}", err=True)
        _fail(f"{len(failed)} host(s) did not start; logs in {directory / 'logs'}; "
              f"stop everything with `deploysim local down --dir {directory}`")

    if metrics == "prometheus":
        if scrape_interval > scenario.metric_period / 2:
            click.echo(f"warning: a scrape every {scrape_interval:g}s gives fewer than 2 samples per "
                       f"{scenario.metric_period:g}s metric period; rates will be missing", err=True)
        server = PrometheusServer(directory / "prometheus")
        try:
            url = server.start({n: fleet.address(n) for n in names}, port=prometheus_port,
                               scrape_interval_s=scrape_interval)
            server.wait_scraping([fleet.address(n) for n in names], timeout_s=30.0)
        except PrometheusError as error:
            _fail(str(error))
        metrics_spec = {"kind": "prometheus", "url": url, "queries": {}}
        click.echo(f"Prometheus: {url} (scrapes every host every {scrape_interval:g}s; "
                   f"data in {directory / 'prometheus'})")
    else:
        metrics_spec = {"kind": "probe"}
        click.echo("Metrics: HTTP probes by the executor (no Prometheus)")
    pid = start_loadgen(directory, rate)
    mix = ", ".join(f"{api} {share:.0%}" for api, share in scenario.traffic.apis.items())
    click.echo(f"Load: {rate:g} req/s to each host ({mix}), pid {pid}")
    inventory = write_inventory(directory, fleet, metrics_spec)
    click.echo(f"Inventory: {inventory}")
    click.echo(f"Next: deploysim execute {scenario_path} --inventory {inventory} --version VERSION")
    click.echo(f"Stop: deploysim local down --dir {directory}")


def _open_fleet(directory: Path) -> LocalFleet:
    """The fleet kept in `directory`, or a one-line error and exit 1."""
    from ..localfleet.fleet import FleetError, LocalFleet

    try:
        return LocalFleet(directory)
    except FleetError as error:
        _fail(str(error))


@local.command("status")
@click.option("--dir", "directory", required=True, type=click.Path(file_okay=False, path_type=Path))
def status(directory: Path) -> None:
    """What runs in the fleet directory: hosts (as they answer now), Prometheus, load."""
    from ..localfleet import procs
    from ..localfleet.control import loadgen_running, loadgen_state
    from ..localfleet.prometheus import PrometheusServer

    directory = directory.resolve()
    fleet = _open_fleet(directory)
    click.echo(f"Local fleet in {directory}")
    click.echo(f"  {'host':<24} {'address':<16} {'version':<14} {'health':<8} {'pid':>7}  recorded")
    for s in fleet.status():
        recorded = f"{s.recorded_version or '-'} ({s.phase})"
        click.echo(f"  {s.name:<24} {fleet.address(s.name):<16} {s.live_version or 'DOWN':<14} "
                   f"{'ok' if s.healthy else 'FAILING':<8} {s.pid or '-':>7}  {recorded}")
    server = PrometheusServer(directory / "prometheus")
    if server.state:
        state = "ready" if server.running() and server.ready() else "not running"
        click.echo(f"Prometheus: {server.url} {state}")
    load = loadgen_state(directory)
    if load:
        running = loadgen_running(directory)
        last = procs.tail(directory / "logs" / "loadgen.log", 1)
        click.echo(f"Load: {load.get('rate', 0):g} req/s per host, " + ("running" if running else "not running")
                   + (f"; last: {last}" if running and last else ""))


@local.command("down")
@click.option("--dir", "directory", required=True, type=click.Path(file_okay=False, path_type=Path))
def down(directory: Path) -> None:
    """Stop the load, Prometheus and every host of the fleet directory (files are kept)."""
    from ..localfleet.control import stop_loadgen
    from ..localfleet.prometheus import PrometheusServer

    directory = directory.resolve()
    fleet = _open_fleet(directory)
    if stop_loadgen(directory):
        click.echo("load generator stopped")
    server = PrometheusServer(directory / "prometheus")
    if server.running():
        server.stop()
        click.echo("Prometheus stopped")
    outcomes = fleet.stop()
    stopped = [o for o in outcomes if o.ok]
    click.echo(f"{len(stopped)} of {len(outcomes)} host(s) stopped")
    for outcome in outcomes:
        if not outcome.ok:
            click.echo(f"error: {outcome.host}: {outcome.detail}", err=True)
    if len(stopped) < len(outcomes):
        sys.exit(1)
