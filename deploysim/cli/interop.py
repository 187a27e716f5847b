"""`deploysim import` and `deploysim export`: other tools' rollout policies in and out (deploysim.interop)."""

from __future__ import annotations

from pathlib import Path

import click

from .common import fail, input_error, load


@click.command("import")
@click.argument("sources", nargs=-1, required=True, metavar="FILE_OR_NAME...")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the YAML here (default: print it).")
@click.option("--into", "into", type=click.Path(dir_okay=False), default=None,
              help="A base scenario: write it whole with the imported pipeline in place (validated).")
@click.option("--pipeline", default=None, help="With --into: the base scenario's pipeline to replace.")
@click.option("--region", "regions", multiple=True,
              help="The region(s) of the imported stage (default: the base pipeline's production regions).")
@click.option("--metric", "metrics", multiple=True, metavar="NAME=METRIC",
              help="Argo: the analysis metric NAME reads deploysim's METRIC (1-METRIC for a success rate); repeatable.")
@click.option("--indefinite-pause", default="1h", show_default=True,
              help="Argo: what a `pause: {}` (until a person promotes) bakes in deploysim.")
def import_(sources: tuple[str, ...], output: Path | None, into: str | None, pipeline: str | None,
            regions: tuple[str, ...], metrics: tuple[str, ...], indefinite_pause: str) -> None:
    """Import Argo Rollouts, Flagger, AWS CodeDeploy or AWS AppConfig policies as a scenario's `policy:`.

    FILE_OR_NAME: YAML or JSON files (a Rollout with its AnalysisTemplates, a Flagger Canary, a
    CodeDeploy deployment configuration, an AppConfig deployment strategy, or their CloudFormation
    resources), or a predefined name such as CodeDeployDefault.HalfAtATime or AppConfig.AllAtOnce.
    """
    from ..durations import parse_duration_s
    from ..interop import import_policy, parse_metric_option

    try:
        pause_s = parse_duration_s(indefinite_pause)
    except ValueError as error:
        fail(f"--indefinite-pause: {error}")
    try:
        metric_map = dict(parse_metric_option(m) for m in metrics)
        text = import_policy(sources, into=into, pipeline=pipeline, regions=regions, metric_map=metric_map,
                             indefinite_pause_s=pause_s)
    except ValueError as error:
        input_error(error)
    if output is None:
        click.echo(text, nl=False)
        return
    output.write_text(text, encoding="utf-8")
    click.echo(f"wrote {output}")


@click.command("export")
@click.argument("scenario_path", metavar="SCENARIO")
@click.option("--format", "fmt", type=click.Choice(["argo"]), default="argo", show_default=True,
              help="What to write.")
@click.option("--pipeline", default=None, help="The pipeline to export (default: every pipeline).")
@click.option("--region", default=None, help="The cluster's region (default: the production stage's first).")
@click.option("-o", "--output-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write <pipeline>.yaml files here (default: print them).")
def export(scenario_path: str, fmt: str, pipeline: str | None, region: str | None, output_dir: Path | None) -> None:
    """Export SCENARIO's pipelines as Argo Rollouts `Rollout`s with their `AnalysisTemplate`s; what
    Argo cannot express is listed in a comment at the top of each."""
    from ..interop import export_argo

    scenario = load(scenario_path)
    names = [pipeline] if pipeline is not None else list(scenario.policy.pipelines)
    for name in names:
        if name not in scenario.policy.pipelines:
            fail(f"{scenario_path}: no pipeline {name!r}; its pipelines are {', '.join(scenario.policy.pipelines)}")
        try:
            text, _ = export_argo(scenario, name, region)
        except ValueError as error:
            fail(f"{scenario_path}: {error}")
        if output_dir is None:
            click.echo(text if len(names) == 1 else f"---\n{text}", nl=False)
            continue
        output_dir.mkdir(parents=True, exist_ok=True)
        path = output_dir / f"{name}.yaml"
        path.write_text(text, encoding="utf-8")
        click.echo(f"wrote {path}")
