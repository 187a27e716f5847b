"""`deploysim detectors SCENARIO`: which detector catches a bad one-box first, the threshold alarm or the judge.

Parses its options, calls `deploysim.experiments.detectors.compare_detectors`, prints the table and,
with -o DIR, writes `detectors.csv` and `detectors.png`. Unusable input is one line on stderr, exit 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from . import options
from .common import fail, guarded, load_to_simulate


def _numbers(option: str, text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        fail(f"{option} takes numbers separated by commas, e.g. 0,0.01,0.02; got {text!r}")


def _duration(option: str, text: str | None) -> float | None:
    from ..durations import parse_duration_s

    if text is None:
        return None
    try:
        return parse_duration_s(text)
    except ValueError as error:
        fail(f"{option}: {error}")


@click.command()
@click.argument("scenario_path", metavar="SCENARIO")
@options.replications(default=200, help="Replications per (defect size, traffic level).")
@options.seed(help="Root seed; every datapoint is keyed by (replication, defect, traffic, canary/baseline, period).")
@click.option("--defects", default="0,0.01,0.02,0.05", show_default=True, metavar="R1,R2,...",
              help="Extra error rates the defect adds to the canary's requests (fractions; 0: false rollbacks).")
@click.option("--traffic", default="100,1000,10000", show_default=True, metavar="RPM1,RPM2,...",
              help="Requests per minute per host (canary and baseline alike).")
@click.option("--bake", default=None, metavar="DURATION",
              help="Bake length, e.g. 30m (default: the first production stage's one-box bake).")
@click.option("--judge-every", default="5m", show_default=True, metavar="DURATION",
              help="The judge judges the data so far this often during the bake (and at its end).")
@click.option("--alpha", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.05, show_default=True,
              help="The judge's false-rollback budget for the whole bake, split over its judgements.")
@click.option("--latency", is_flag=True, help="The judge also compares latency p99 (no defect effect on it).")
@click.option("--pipeline", default=None, help="Pipeline whose first production stage is used (default: the first).")
@options.out_dir(help="Write detectors.csv (the tidy frame) and detectors.png (catch rate vs defect size) here.",
                 short=True)
def detectors(scenario_path: str, replications: int, seed: int, defects: str, traffic: str, bake: str | None,
              judge_every: str, alpha: float, latency: bool, pipeline: str | None, out_dir: Path | None) -> None:
    """Compare the one-box's threshold alarm with a Kayenta-style judge at equal bake time, on the same draws."""
    from ..experiments.detectors import compare_detectors, format_table, plot

    defect_sizes = _numbers("--defects", defects)
    levels = _numbers("--traffic", traffic)
    bake_s = _duration("--bake", bake)
    every_s = _duration("--judge-every", judge_every)
    scenario = load_to_simulate(scenario_path)
    kw: dict[str, Any] = {"replications": replications, "seed": seed, "defects": defect_sizes, "traffic_rpm": levels,
                          "bake_s": bake_s, "judge_every_s": every_s, "latency": latency, "alpha": alpha,
                          "pipeline": pipeline}
    summary = guarded(compare_detectors)(scenario, **kw)
    click.echo(format_table(summary))
    if out_dir is not None:
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
            summary.to_csv(out_dir / "detectors.csv", index=False)
            plot(summary, out_dir / "detectors.png")
        except OSError as error:
            fail(f"cannot write to {out_dir}: {error.strerror or error}")
        click.echo(f"wrote detectors.csv, detectors.png to {out_dir}", err=True)
