"""How people read a place in a rollout: "stage 3/6 prod-1, step 2/3 wave-1, batch 1/2".

One formatter for every printer (`execute --plan`, `deploysim status`, the executor's log), so a
label printed by the plan is found as is in the status of the real run. Numbers count from 1 and
carry their total; the step keeps its name from the plan ("preprod", "one-box", "wave-N", where N is
the policy's wave, which can differ from the step's number).
"""

from __future__ import annotations

from ..policy.plan import PipelinePlan


def stage_label(plan: PipelinePlan | None, stage: int) -> str:
    """'stage 3/6 prod-1' (without a plan, as when a journal's scenario no longer loads: 'stage 3')."""
    if plan is None or not 0 <= stage < len(plan.stages):
        return f"stage {stage + 1}"
    return f"stage {stage + 1}/{len(plan.stages)} {plan.stages[stage].name}"


def step_label(plan: PipelinePlan | None, stage: int, step: int | None = None, batch: int | None = None) -> str:
    """'stage 3/6 prod-1, step 2/3 wave-1, batch 1/2': as much as is given (the stage alone, the step,
    the batch of the step)."""
    out = stage_label(plan, stage)
    if step is None:
        return out
    steps = plan.stages[stage].steps if plan is not None and 0 <= stage < len(plan.stages) else None
    if steps is None or not 0 <= step < len(steps):
        out += f", step {step + 1}"
        return out if batch is None else out + f", batch {batch + 1}"
    out += f", step {step + 1}/{len(steps)} {steps[step].name}"
    if batch is None:
        return out
    n = len(steps[step].batches) or 1  # a pre-production step is one batch (its command, or its wait)
    return out + (f", batch {batch + 1}/{n}" if 0 <= batch < n else f", batch {batch + 1}")
