"""Tuning: the fastest policy settings that still meet the SLA often enough.

Objective: minimise the median lead time of one pipeline's changes, subject to
P(worst region's monthly uptime < SLA target) ≤ `max_breach_probability`.

The search (documented, deterministic, every evaluation under the same common random numbers):
1. Each varied setting has a ladder of candidate values (for bake durations: 0, 15 min, 30 min,
   1 h, 2 h, 4 h, 8 h, 12 h, 24 h plus its current value; for batch sizes: 10%–100%).
2. Uniform phase: every setting moves together by the same number of rungs from its current value
   (−3 … +2), which traces the trade-off curve of "everything shorter" vs "everything longer".
3. Refinement: from the fastest feasible point, try one rung shorter on each setting alone; take
   the feasible move with the shortest lead time; repeat until no move helps or the evaluation
   budget is spent. If nothing is feasible, the safest point found is reported as infeasible.
Greedy descent on a ladder finds the optimum when lead time grows and breach probability falls
with each setting (the usual case); it is not guaranteed to find it otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np
import pandas as pd

from ..durations import format_duration_s, parse_duration_s
from ..scenario import Scenario
from .experiment import Experiment, pareto_front
from .params import ParameterError, check_grid, get_value, with_values
from .api import compare, _settings, _check_replications
from . import stats

BAKE_LADDER_S = (0.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 43200.0, 86400.0)
SHARE_LADDER = (0.1, 0.2, 0.25, 0.33, 0.5, 1.0)
UNIFORM_SHIFTS = (-3, -2, -1, 0, 1, 2)
GROUPS = ("bake durations", "batch sizes")


@dataclass
class TuneResult:
    """Every evaluated setting with its figures, and the best feasible one."""

    candidates: pd.DataFrame  # one row per evaluated setting: values, lead time, breach probability, feasible, on_frontier
    best: Optional[dict[str, Any]]  # the chosen setting's row, None when nothing met the bound
    experiment: Experiment  # all replications of all evaluated settings (same seeds)
    scenario: Optional[Scenario]  # the scenario with the best setting applied
    parameters: list[str]  # the varied paths
    pipeline: str
    sla_target_pct: float
    max_breach_probability: float


def dimensions(scenario: Scenario, vary: Union[str, Mapping[str, Sequence[Any]]], pipeline: str) -> dict[str, list[Any]]:
    """The varied paths and their ladders, from a group name or an explicit path → values mapping."""
    if not isinstance(vary, str):
        return {path: sorted(values, key=_order_key) for path, values in check_grid(scenario, vary).items()}
    group = vary.strip().lower()
    if group not in GROUPS:
        raise ParameterError(f"unknown --vary {vary!r}: expected one of {', '.join(repr(g) for g in GROUPS)} "
                             "or PATH=VALUE1,VALUE2,...")
    if pipeline not in scenario.policy.pipelines:
        raise ParameterError(f"unknown pipeline {pipeline!r}; the scenario has {', '.join(scenario.policy.pipelines)}")
    out: dict[str, list[Any]] = {}
    for i, stage in enumerate(scenario.policy.pipelines[pipeline].stages):
        if stage.kind != "production":
            continue
        base = f"policy.pipelines.{pipeline}.stages[{i}]"
        if group == "bake durations":
            if stage.one_box is not None:
                out[f"{base}.one_box.bake.duration"] = _ladder(stage.one_box.bake.duration, BAKE_LADDER_S)
            for j, wave in enumerate(stage.waves):
                out[f"{base}.waves[{j}].bake.duration"] = _ladder(wave.bake.duration, BAKE_LADDER_S)
        else:
            out[f"{base}.batching.max_share"] = _ladder(stage.batching.max_share, SHARE_LADDER)
    if not out:
        raise ParameterError(f"pipeline {pipeline!r} has no production {group} to vary")
    return out


def _order_key(value: Any) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return parse_duration_s(value)
    except (ValueError, TypeError):
        raise ParameterError(f"cannot order value {value!r}: tuning needs numbers or durations") from None


def _ladder(current: float, ladder: Sequence[float]) -> list[float]:
    return sorted(set(ladder) | {float(current)})


def _label(values: Mapping[str, Any], ladders: Mapping[str, list[Any]]) -> str:
    parts = []
    for path, value in values.items():
        short = path.split(".stages")[-1] if ".stages" in path else path
        shown = format_duration_s(value) if path.endswith("duration") and isinstance(value, (int, float)) else value
        parts.append(f"stages{short}={shown}")
    return "; ".join(parts)


def tune(scenario: Scenario, *, sla_target_pct: float, max_breach_probability: float,
         vary: Union[str, Mapping[str, Sequence[Any]]] = "bake durations", pipeline: str = "code",
         replications: int = 100, seed: int = 1, months: float = 1.0, credit_table: str = "s3-standard",
         max_evaluations: int = 24, criterion: str = "estimate", workers: Optional[int] = None,
         client: Any = None, progress: Optional[bool] = None) -> TuneResult:
    """Search `vary` for the settings with the shortest median lead time of `pipeline` whose SLA
    breach probability is at most `max_breach_probability` (`criterion="estimate"`: the estimate;
    `"upper"`: the upper end of its 95% interval, the cautious reading). See the module docstring."""
    if not 0.0 <= max_breach_probability < 1.0:
        raise ParameterError(f"max breach probability must be in [0, 1), got {max_breach_probability}")
    _settings(months, sla_target_pct, credit_table)
    _check_replications(replications)
    if criterion not in ("estimate", "upper"):
        raise ParameterError(f"criterion must be 'estimate' or 'upper', got {criterion!r}")
    if max_evaluations < 1:
        raise ParameterError(f"max evaluations must be at least 1, got {max_evaluations}")
    if pipeline not in scenario.policy.pipelines:
        raise ParameterError(f"unknown pipeline {pipeline!r}; the scenario has {', '.join(scenario.policy.pipelines)}")
    ladders = dimensions(scenario, vary, pipeline)
    start = {p: _index_of(ladders[p], get_value(scenario, p)) for p in ladders}
    run = dict(replications=replications, seed=seed, months=months, sla_target_pct=sla_target_pct,
               credit_table=credit_table, workers=workers, client=client, progress=progress)

    evaluated: dict[tuple[int, ...], dict[str, Any]] = {}
    experiments: list[Experiment] = []

    def evaluate(points: list[tuple[int, ...]]) -> None:
        new = [pt for pt in dict.fromkeys(points) if pt not in evaluated][: max(0, max_evaluations - len(evaluated))]
        if not new:
            return
        variants = {}
        for pt in new:
            values = {p: ladders[p][i] for p, i in zip(ladders, pt)}
            variants[_label(values, ladders)] = with_values(scenario, values)
        exp = compare(variants, **run)
        experiments.append(exp)
        for pt, label in zip(new, variants):
            evaluated[pt] = _figures(exp, label, pipeline, max_breach_probability, criterion)
            evaluated[pt]["values"] = {p: ladders[p][i] for p, i in zip(ladders, pt)}

    paths = list(ladders)
    origin = tuple(start[p] for p in paths)

    def shifted(k: int) -> tuple[int, ...]:
        return tuple(min(max(i + k, 0), len(ladders[p]) - 1) for p, i in zip(paths, origin))

    evaluate([shifted(k) for k in UNIFORM_SHIFTS])
    feasible = [pt for pt, f in evaluated.items() if f["feasible"]]
    if feasible:
        current = min(feasible, key=lambda pt: (evaluated[pt]["lead_time_p50_h"], pt))
        while len(evaluated) < max_evaluations:
            moves = [current[:d] + (current[d] - 1,) + current[d + 1:] for d in range(len(paths)) if current[d] > 0]
            evaluate(moves)
            better = [pt for pt in moves if pt in evaluated and evaluated[pt]["feasible"]
                      and evaluated[pt]["lead_time_p50_h"] < evaluated[current]["lead_time_p50_h"]]
            if not better:
                break
            current = min(better, key=lambda pt: (evaluated[pt]["lead_time_p50_h"], pt))
        best_pt: Optional[tuple[int, ...]] = min(
            (pt for pt, f in evaluated.items() if f["feasible"]), key=lambda pt: (evaluated[pt]["lead_time_p50_h"], pt))
    else:
        best_pt = None

    rows = []
    for pt, f in evaluated.items():
        row = {"setting": f["label"], **{p: v for p, v in f["values"].items()},
               **{k: v for k, v in f.items() if k not in ("values", "label")}}
        row["chosen"] = pt == best_pt
        rows.append(row)
    candidates = pd.DataFrame(rows).sort_values("lead_time_p50_h", kind="stable").reset_index(drop=True)
    candidates["on_frontier"] = pareto_front(candidates["lead_time_p50_h"], candidates["breach_probability"])
    experiment = Experiment(pd.concat([e.replications for e in experiments], ignore_index=True),
                            pd.concat([e.changes for e in experiments], ignore_index=True),
                            experiments[0].settings, seed)
    best = None if best_pt is None else candidates[candidates["chosen"]].iloc[0].to_dict()
    best_scenario = None if best_pt is None else with_values(scenario, evaluated[best_pt]["values"])
    return TuneResult(candidates, best, experiment, best_scenario, paths, pipeline, sla_target_pct,
                      max_breach_probability)


def _index_of(ladder: list[Any], value: Any) -> int:
    key = _order_key(value)
    keys = [_order_key(v) for v in ladder]
    return int(np.argmin([abs(k - key) for k in keys]))


def _figures(exp: Experiment, label: str, pipeline: str, bound: float, criterion: str) -> dict[str, Any]:
    reps = exp.replications[exp.replications["policy"] == label]
    ch = exp.changes
    lead = math.nan
    lead_lo = lead_hi = math.nan
    if len(ch):
        mine = ch[(ch["policy"] == label) & (ch["pipeline"] == pipeline) & (ch["outcome"] == "deployed")]
        per_rep = mine.groupby("replication")["lead_time_s"].median().to_numpy() / 3600.0
        if per_rep.size:
            lead = float(np.median(per_rep))
            lead_lo, lead_hi = stats.quantile_ci(per_rep, 0.5)
    n, k = len(reps), int(reps["sla_breach"].sum())
    b_lo, b_hi = stats.proportion_ci(k, n)
    p = k / n if n else math.nan
    judged = p if criterion == "estimate" else b_hi
    return {"label": label, "lead_time_p50_h": lead, "lead_time_ci_low_h": lead_lo, "lead_time_ci_high_h": lead_hi,
            "breach_probability": p, "breach_ci_low": b_lo, "breach_ci_high": b_hi,
            "downtime_mean_s": float(reps["downtime_s"].mean()), "feasible": bool(judged <= bound)}
