"""Tuning: the fastest policy settings that still meet the SLA often enough.

Objective: minimise the median lead time of one pipeline's changes, subject to
P(worst region's monthly uptime < SLA target) ≤ `max_breach_probability`.

What is searched is a few *dimensions*, each a ladder of candidate values for one or more
scenario fields that move together:
- ``"bake durations"``: three dimensions, after Liguori's rule of thumb — the one-box bakes, the
  first wave's bakes, and the later waves' bakes of every production stage. Each field climbs its
  own ladder (0, 15 min, 30 min, 1 h, 2 h, 4 h, 8 h, 12 h, 24 h, plus its current value) by the
  dimension's number of rungs, so a 12 h first-wave bake and a 2 h later-wave bake shorten together.
- ``"batch sizes"``: one dimension, every production stage's largest batch share (10% … 100%).
- explicit ``{path: [values]}``: one dimension per path, over exactly those values.

The search (deterministic; every evaluation runs the same replications, common random numbers):
1. Uniform phase: every dimension moves together by −3 … +2 rungs from the scenario's current
   settings; this traces the trade-off curve of "all shorter" against "all longer".
2. Refinement: from the fastest feasible point, try one rung down on each dimension alone; take
   the feasible move with the shortest lead time; repeat until no move helps or the evaluation
   budget is spent. If nothing is feasible, the result says so (and lists the safest point).
Judging the bound: by default a setting is feasible only when the upper end of the 95% interval of
its breach probability is within the bound (the evidence must say it is safe enough);
``criterion="estimate"`` judges the estimate instead. Among settings with the same lead time the
safer one wins (lower upper bound, then lower estimate, then longer bakes / smaller batches); a move
in the refinement must shorten the lead time. When the replications are too few to show any
setting within the bound, `TuneResult.evidence` says how many would.

Greedy descent on ladders finds the optimum when lead time grows and breach probability falls
with each dimension (the usual case); it is not guaranteed to otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ..durations import format_duration_s, parse_duration_s
from ..scenario import Scenario
from . import stats
from .api import _check_replications, _settings, compare
from .experiment import Experiment, pareto_front
from .params import ParameterError, check_grid, get_value, with_values

BAKE_LADDER_S = (0.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 43200.0, 86400.0)
SHARE_LADDER = (0.1, 0.2, 0.25, 0.33, 0.5, 1.0)
UNIFORM_SHIFTS = (-3, -2, -1, 0, 1, 2)
GROUPS = ("bake durations", "batch sizes")


@dataclass(frozen=True)
class Field:
    """One scenario field on its ladder; `start` is the index of its current value."""

    path: str
    ladder: tuple[Any, ...]
    start: int

    def at(self, offset: int) -> Any:
        return self.ladder[min(max(self.start + offset, 0), len(self.ladder) - 1)]


@dataclass(frozen=True)
class Dimension:
    """Fields that move together, by the same number of rungs on their own ladders."""

    name: str
    fields: tuple[Field, ...]

    @property
    def lowest(self) -> int:
        return -max(f.start for f in self.fields)

    def describe(self, offset: int) -> str:
        shown = sorted({_show(f.path, f.at(offset)) for f in self.fields}, key=lambda s: _sort_key(s))
        return shown[0] if len(shown) == 1 else f"{shown[0]}–{shown[-1]}"


@dataclass
class TuneResult:
    """Every evaluated setting with its figures, and the best feasible one."""

    candidates: (
        pd.DataFrame
    )  # one row per evaluated setting: dimension values, lead time, breach probability, feasible, on_frontier, chosen
    best: dict[str, Any] | None  # the chosen setting's row, None when nothing met the bound
    best_values: dict[str, Any] | None  # path -> value of the chosen setting
    experiment: Experiment  # all replications of all evaluated settings (same seeds)
    scenario: Scenario | None  # the scenario with the best setting applied
    dimensions: list[Dimension]
    pipeline: str
    sla_target_pct: float
    max_breach_probability: float
    criterion: str = "upper"

    CAUSES: ClassVar[dict[str, str]] = {"downtime_alarm_caught_s": "bad changes caught by alarms",
              "downtime_no_alarm_s": "bad changes no alarm caught",
              "downtime_faults_s": "infrastructure faults", "downtime_baseline_s": "the baseline error rate"}

    def breach_causes(self) -> dict[str, Any]:
        """In the safest evaluated setting's breaching months, the share of downtime from each cause:
        when faults or the baseline dominate, no bake can bring the breach probability down."""
        safest = self.candidates.sort_values(["breach_probability", "lead_time_p50_h"]).iloc[0]
        reps = self.experiment.replications
        breached = reps[(reps["policy"] == safest["setting"]) & reps["sla_breach"]]
        totals = breached[list(self.CAUSES)].sum()
        whole = float(totals.sum())
        shares = {self.CAUSES[k]: (float(v) / whole if whole > 0 else math.nan) for k, v in totals.items()}
        return {"setting": safest["setting"], "breach_probability": float(safest["breach_probability"]),
                "breach_ci_low": float(safest["breach_ci_low"]), "breach_ci_high": float(safest["breach_ci_high"]),
                "breaching_months": int(len(breached)), "downtime_share_by_cause": shares}


    def evidence(self) -> dict[str, Any] | None:
        """When the bound is judged on the upper confidence limit and settings faster than the chosen one
        (all, when none was chosen) have an estimate within the bound but an upper limit above it: the
        replications are too few to separate them. Returns the fastest such setting, its estimate, the
        replications that would show it within the bound if its rate held (None when the rate is not
        below the bound), and the fewest replications that could show any setting within the bound
        (with no breach at all). None when the replications were not what held a faster setting back."""
        if self.criterion != "upper":
            return None
        c = self.candidates
        n = self.experiment.n_replications
        held = c[(c["breach_probability"] <= self.max_breach_probability)
                 & (c["breach_ci_high"] > self.max_breach_probability)]
        if self.best is not None:
            held = held[held["lead_time_p50_h"] < self.best["lead_time_p50_h"]]
        if not len(held):
            return None
        fastest = held.sort_values(["lead_time_p50_h", "breach_probability"], kind="stable").iloc[0]
        rate = float(fastest["breach_probability"])
        return {"setting": fastest["setting"], "held_back": int(len(held)), "replications": n,
                "breach_probability": rate,
                "breach_ci_low": float(fastest["breach_ci_low"]), "breach_ci_high": float(fastest["breach_ci_high"]),
                "replications_needed": stats.replications_to_show_below(rate, self.max_breach_probability),
                "replications_minimum": stats.replications_to_show_below(0.0, self.max_breach_probability)}


def _show(path: str, value: Any) -> str:
    if path.endswith("duration") and isinstance(value, (int, float)):
        return format_duration_s(float(value)).replace(".0m", "m").replace("0.0s", "0s")
    return str(value)


def _sort_key(text: str) -> float:
    try:
        return parse_duration_s(text)
    except (ValueError, TypeError):
        try:
            return float(text)
        except ValueError:
            return 0.0


def _number(value: Any) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return parse_duration_s(value)
    except (ValueError, TypeError):
        raise ParameterError(f"cannot order value {value!r}: tuning needs numbers or durations") from None


def _field(scenario: Scenario, path: str, ladder: Sequence[Any]) -> Field:
    current = _number(get_value(scenario, path))
    values = sorted(set(ladder) | {current}) if all(isinstance(v, (int, float)) for v in ladder) else \
        sorted(ladder, key=_number)
    start = int(np.argmin([abs(_number(v) - current) for v in values]))
    return Field(path, tuple(values), start)


def dimensions(scenario: Scenario, vary: str | Mapping[str, Sequence[Any]], pipeline: str) -> list[Dimension]:
    """The searched dimensions, from a group name or an explicit path → values mapping."""
    if not isinstance(vary, str):
        grid = check_grid(scenario, vary)
        return [Dimension(path.removeprefix("policy.pipelines."), (_field(scenario, path, values),))
                for path, values in grid.items()]
    group = vary.strip().lower()
    if group not in GROUPS:
        raise ParameterError(f"unknown --vary {vary!r}: expected one of {', '.join(repr(g) for g in GROUPS)} "
                             "or PATH=VALUE1,VALUE2,...")
    if pipeline not in scenario.policy.pipelines:
        raise ParameterError(f"unknown pipeline {pipeline!r}; the scenario has {', '.join(scenario.policy.pipelines)}")
    one_box: list[Field] = []
    first: list[Field] = []
    later: list[Field] = []
    shares: list[Field] = []
    for i, stage in enumerate(scenario.policy.pipelines[pipeline].stages):
        if stage.kind != "production":
            continue
        base = f"policy.pipelines.{pipeline}.stages[{i}]"
        if stage.one_box is not None:
            one_box.append(_field(scenario, f"{base}.one_box.bake.duration", BAKE_LADDER_S))
        for j in range(len(stage.waves)):
            (first if j == 0 else later).append(_field(scenario, f"{base}.waves[{j}].bake.duration", BAKE_LADDER_S))
        shares.append(_field(scenario, f"{base}.batching.max_share", SHARE_LADDER))
    if group == "bake durations":
        dims = [Dimension(name, tuple(fields)) for name, fields in
                (("one-box bakes", one_box), ("first-wave bakes", first), ("later-wave bakes", later)) if fields]
    else:
        dims = [Dimension("batch sizes", tuple(shares))] if shares else []
    if not dims:
        raise ParameterError(f"pipeline {pipeline!r} has no production {group} to vary")
    return dims


def tune(scenario: Scenario, *, sla_target_pct: float, max_breach_probability: float,
         vary: str | Mapping[str, Sequence[Any]] = "bake durations", pipeline: str = "code",
         replications: int = 100, seed: int = 1, months: float = 1.0, credit_table: str = "s3-standard",
         max_evaluations: int = 16, criterion: str = "upper", workers: int | None = None,
         client: Any = None, progress: bool | None = None) -> TuneResult:
    """Search `vary` for the settings with the shortest median lead time of `pipeline` whose SLA
    breach probability is at most `max_breach_probability` (`criterion="upper"`, the default, judges the
    upper end of its 95% interval; `"estimate"` the estimate alone). See the module docstring."""
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
    dims = dimensions(scenario, vary, pipeline)
    run = {"replications": replications, "seed": seed, "months": months, "sla_target_pct": sla_target_pct,
               "credit_table": credit_table, "workers": workers, "client": client, "progress": progress}

    def values_at(point: tuple[int, ...]) -> dict[str, Any]:
        return {f.path: f.at(k) for d, k in zip(dims, point, strict=True) for f in d.fields}

    def clip(point: tuple[int, ...]) -> tuple[int, ...]:
        # Offsets past every field's ladder end change nothing: pin them so equal settings are one point.
        return tuple(min(max(k, d.lowest), max(len(f.ladder) - 1 - f.start for f in d.fields))
                     for d, k in zip(dims, point, strict=True))

    evaluated: dict[tuple[int, ...], dict[str, Any]] = {}

    def preference(pt: tuple[int, ...]) -> tuple[Any, ...]:
        # Shortest lead time first; equal lead times go to the safer setting (lower upper bound, lower
        # estimate, then the longer bakes / larger offsets).
        f = evaluated[pt]
        return (round(f["lead_time_p50_h"], 9), f["breach_ci_high"], f["breach_probability"], tuple(-k for k in pt))
    experiments: list[Experiment] = []

    def evaluate(points: list[tuple[int, ...]]) -> None:
        budget = max(0, max_evaluations - len(evaluated))
        new = [pt for pt in dict.fromkeys(clip(p) for p in points) if pt not in evaluated][:budget]
        if not new:
            return
        variants = {
            " | ".join(f"{d.name} {d.describe(k)}" for d, k in zip(dims, pt, strict=True)): with_values(
                scenario, values_at(pt)
            )
            for pt in new
        }
        exp = compare(variants, **run)
        experiments.append(exp)
        for pt, label in zip(new, variants, strict=True):
            evaluated[pt] = _figures(exp, label, pipeline, max_breach_probability, criterion)

    evaluate([tuple(k for _ in dims) for k in UNIFORM_SHIFTS])
    feasible = [pt for pt, f in evaluated.items() if f["feasible"]]
    if feasible:
        current = min(feasible, key=preference)
        while len(evaluated) < max_evaluations:
            moves = [clip(current[:d] + (current[d] - 1,) + current[d + 1:]) for d in range(len(dims))]
            moves = [m for m in moves if m != current]
            evaluate(moves)
            better = [pt for pt in moves if pt in evaluated and evaluated[pt]["feasible"]
                      and evaluated[pt]["lead_time_p50_h"] < evaluated[current]["lead_time_p50_h"]]
            if not better:
                break
            current = min(better, key=preference)
    feasible = [pt for pt, f in evaluated.items() if f["feasible"]]
    best_pt = min(feasible, key=preference) if feasible else None

    rows = []
    for pt, f in evaluated.items():
        row = {"setting": f["label"], **{d.name: d.describe(k) for d, k in zip(dims, pt, strict=True)}}
        row.update({k: v for k, v in f.items() if k != "label"})
        row["chosen"] = pt == best_pt
        rows.append(row)
    candidates = pd.DataFrame(rows).sort_values(["lead_time_p50_h", "breach_probability"], kind="stable")
    candidates = candidates.reset_index(drop=True)
    candidates["on_frontier"] = pareto_front(candidates["lead_time_p50_h"], candidates["breach_probability"])
    experiment = Experiment(pd.concat([e.replications for e in experiments], ignore_index=True),
                            pd.concat([e.changes for e in experiments], ignore_index=True),
                            experiments[0].settings, seed)
    if best_pt is None:
        return TuneResult(candidates, None, None, experiment, None, dims, pipeline, sla_target_pct,
                          max_breach_probability, criterion)
    best_values = values_at(best_pt)
    return TuneResult(candidates, candidates[candidates["chosen"]].iloc[0].to_dict(), best_values, experiment,
                      with_values(scenario, best_values), dims, pipeline, sla_target_pct, max_breach_probability,
                      criterion)


def _figures(exp: Experiment, label: str, pipeline: str, bound: float, criterion: str) -> dict[str, Any]:
    """The setting's row of the trade-off (lead time of `pipeline`, breach probability) and whether it is feasible."""
    row = exp.tradeoff(pipeline=pipeline).set_index("policy").loc[label]
    judged = row["breach_probability"] if criterion == "estimate" else row["breach_ci_high"]
    figures = {k: row[k] for k in ("lead_time_p50_h", "lead_time_ci_low_h", "lead_time_ci_high_h", "breach_probability",
                                   "breach_ci_low", "breach_ci_high", "downtime_mean_s")}
    return {"label": label, **{k: float(v) for k, v in figures.items()}, "feasible": bool(judged <= bound)}
