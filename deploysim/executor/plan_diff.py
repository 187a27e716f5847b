"""`deploysim execute --plan --inventory`: what the rollout would change, target by target.

Every target is asked its version through the inventory's adapter, read-only (`current_version`
only, never a deploy or a rollback), `parallel` at a time as the executor asks them, with the same
check of what it reports (`actions.ask_version`). Each step of the plan then lists its targets with
their current version and `-> V` (would change), `already V` (the run skips it) or `unknown (why)`.
"""

from __future__ import annotations

from collections.abc import Mapping

from .actions import VersionAnswer, ask_each, ask_version
from .interfaces import Adapter, Target
from .labels import step_label
from .rollout import Rollout


def current_versions(rollout: Rollout, adapter: Adapter) -> dict[str, VersionAnswer]:
    """Every target's answer when asked its version, by name, `adapter.parallel` at a time."""
    spec = rollout.inventory.adapter
    return ask_each(rollout.targets, lambda t: ask_version(adapter, spec, t, float(spec.timeout)), int(spec.parallel))


def format_diff(rollout: Rollout, answers: Mapping[str, VersionAnswer]) -> str:
    """Each step of the plan (labelled as `--plan` and `status` label it) with its targets, their
    current version and what the rollout would do to them; ends with a one-line summary."""
    plan, version, spec = rollout.plan, rollout.version, rollout.inventory.adapter
    groups: list[tuple[str, list[Target]]] = [  # every host is in a step: the scenario's validation sees to it
        (step_label(plan, s, k), [rollout.targets[h] for h in step.hosts.tolist()])
        for s, stage in enumerate(plan.stages) for k, step in enumerate(stage.steps)]
    name_width = max((len(t.name) for t in rollout.targets), default=0)
    version_width = max((len(a.version) for a in answers.values() if a.version is not None), default=0)
    out = [f"Current versions and what would change (each target asked through the adapter's current_version, "
           f"{spec.parallel} at a time; nothing was deployed)"]
    for label, targets in groups:
        if not targets:
            out.append(f"  {label}: no targets")
            continue
        out.append(f"  {label}")
        for t in targets:
            answer = answers[t.name]
            if answer.version is None:
                out.append(f"    {t.name.ljust(name_width)}  unknown ({answer.why_unknown(spec)})")
            else:
                change = f"already {version}" if answer.version == version else f"-> {version}"
                out.append(f"    {t.name.ljust(name_width)}  {answer.version.ljust(version_width)}  {change}")
    reported = [answers[t.name].version for t in rollout.targets]
    unknown = reported.count(None)
    already = reported.count(version)
    if unknown:
        out.append(f"{unknown} target(s) cannot tell their version: a real run would halt before changing "
                   "anything until every target can tell it")
    out.append(f"{len(reported) - unknown - already} of {len(reported)} targets would change, "
               f"{already} already run {version}, {unknown} unknown")
    return "\n".join(out)
