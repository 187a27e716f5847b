"""A small sensitivity sweep: which settings would change the picture most.

Each *setting* is moved one rung down and one rung up from where the scenario has it, alone, and
every variant runs with the scenario itself under the same seeds (common random numbers, so the
differences are paired replication by replication):

- per pipeline, the bake-time dimensions of ``deploysim.experiments.tune.dimensions`` (one-box
  bakes, first-wave bakes, later-wave bakes; every field of a dimension moves one rung of its own
  ladder) and the batch size (largest share of a wave replaced at once);
- the alarms' datapoints to alarm, M of "M out of N", one fewer (alarm sooner, more false alarms)
  and one more (where M = N, N grows with it: 3 of 3 becomes 4 of 4).

A variant whose values equal the scenario's (a ladder's end) is not run. The effect of a variant is
its paired mean difference from the scenario in three figures: downtime per month, SLA breach
probability, and the median lead time of the pipeline it changes (of all changes for the alarms).

Ranking: an effect counts only when its paired 95% interval excludes zero; each counted effect is
divided by the largest counted effect on the same figure over all variants, so the setting that
moves lead time most and the one that moves downtime most both score 1; a setting's score is its
largest over figures and directions (ties: the larger change relative to the scenario's value).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..durations import parse_duration_s
from ..experiments import ParameterError, compare, stats, with_values
from ..experiments.experiment import Experiment
from ..experiments.params import get_value
from ..experiments.tune import Dimension, dimensions
from ..scenario import Scenario
from .policy_text import duration_words

BASE = "scenario as is"
FIGURES = ("downtime_s", "breach", "lead_time_h")
FIGURE_LABELS = {"downtime_s": "downtime per month", "breach": "SLA breach probability",
                 "lead_time_h": "median lead time"}
ALARM_SETTING = "alarm datapoints to alarm (M of N)"


@dataclass(frozen=True)
class Setting:
    """One thing the sweep moves: its name, the pipeline whose lead time it affects (None: all), and
    the scenario values at offsets -1, 0, +1 (path -> value)."""

    name: str
    pipeline: str | None
    values: dict[int, dict[str, Any]]
    described: dict[int, str]

    def label(self, offset: int) -> str:
        return f"{self.name} {self.described[offset]}"


@dataclass
class Sensitivity:
    """The sweep's experiment and, per variant, its figures and paired differences from the scenario."""

    experiment: Experiment
    settings: list[Setting]
    variants: pd.DataFrame  # one row per variant run: setting, direction, from, to, figures, differences, CIs
    ranking: pd.DataFrame  # one row per setting, most influential first: setting, score, clear effects
    replications: int
    notes: list[str] = field(default_factory=list)

    def top(self, k: int = 3) -> pd.DataFrame:
        """The k most influential settings (those with a clear effect, or fewer)."""
        return self.ranking[self.ranking["score"] > 0].head(k)


# ------------------------------------------------------------------ what is varied

def _show(path: str, value: Any) -> str:
    if path.endswith("max_share"):
        return f"{float(value):.0%}"
    if path.endswith("duration"):
        return duration_words(_number(value))
    return str(value)


def _number(value: Any) -> float:
    return parse_duration_s(value) if isinstance(value, str) else float(value)


def _describe(fields: dict[str, Any]) -> str:
    """The distinct values of a dimension's fields, smallest to largest: '1 h', '2 h – 12 h', '33%'."""
    values = sorted({(_number(v), _show(p, v)) for p, v in fields.items()})
    return values[0][1] if len(values) == 1 else f"{values[0][1]} – {values[-1][1]}"


def _dimension_setting(pipeline: str, dim: Dimension) -> Setting:
    values = {k: {f.path: f.at(k) for f in dim.fields} for k in (-1, 0, 1)}
    described = {k: _describe(values[k]) for k in (-1, 0, 1)}
    name = f"{pipeline} {dim.name}" if dim.name != "batch sizes" else f"{pipeline} batch size (largest share)"
    return Setting(name, pipeline, values, described)


def alarm_setting(scenario: Scenario) -> Setting | None:
    """Every metric alarm's datapoints to alarm one fewer (at least 1) and one more (N too where M = N, at most 12)."""
    alarms = scenario.alarms.metric
    if not alarms:
        return None
    values: dict[int, dict[str, Any]] = {-1: {}, 0: {}, 1: {}}
    shown: dict[int, set[str]] = {-1: set(), 0: set(), 1: set()}
    for i, a in enumerate(alarms):
        m_path, n_path = f"alarms.metric[{i}].datapoints_to_alarm", f"alarms.metric[{i}].evaluation_periods"
        m, n = a.datapoints_to_alarm, a.evaluation_periods
        lower = max(m - 1, 1)
        upper_m, upper_n = (m + 1, n) if m < n else (min(m + 1, 12), min(n + 1, 12))
        values[0].update({m_path: m, n_path: n})
        values[-1].update({m_path: lower, n_path: n})
        values[1].update({m_path: upper_m, n_path: upper_n})
        shown[0].add(f"{m} of {n}")
        shown[-1].add(f"{lower} of {n}")
        shown[1].add(f"{upper_m} of {upper_n}")
    described = {
        k: ", ".join(sorted(v, key=lambda s: tuple(int(x) for x in s.split(" of ")))) for k, v in shown.items()
    }
    return Setting(ALARM_SETTING, None, values, described)


def settings_of(scenario: Scenario, pipelines: Sequence[str] | None = None, alarms: bool = True) -> list[Setting]:
    """The settings the sweep moves: bake and batch dimensions of each pipeline (default: every
    pipeline with a production stage), and the alarms' datapoints to alarm."""
    out: list[Setting] = []
    names = list(scenario.policy.pipelines) if pipelines is None else list(pipelines)
    unknown = [p for p in names if p not in scenario.policy.pipelines]
    if unknown:
        raise ParameterError(f"unknown pipeline(s) {', '.join(map(repr, unknown))}; the scenario has "
                             f"{', '.join(scenario.policy.pipelines)}")
    for pipeline in names:
        for group in ("bake durations", "batch sizes"):
            try:
                dims = dimensions(scenario, group, pipeline)
            except ValueError:  # no production stage with such a setting
                continue
            out += [_dimension_setting(pipeline, d) for d in dims]
    if alarms:
        setting = alarm_setting(scenario)
        if setting is not None:
            out.append(setting)
    return out


def _same(scenario: Scenario, values: dict[str, Any]) -> bool:
    def norm(v: Any) -> Any:
        if isinstance(v, str):
            try:
                return parse_duration_s(v)
            except ValueError:
                return v
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v

    return all(norm(get_value(scenario, p)) == norm(v) for p, v in values.items())


# ------------------------------------------------------------------ the figures of a variant

def _lead_per_replication(exp: Experiment, policy: str, pipeline: str | None) -> pd.Series:
    """Median lead time (h) of each replication: of the pipeline's deployed changes, or the row's all-changes median."""
    if pipeline is None or not len(exp.changes):
        reps = exp.replications[exp.replications["policy"] == policy]
        return pd.Series(reps["lead_time_p50_h"].to_numpy(float), index=reps["replication"].to_numpy())
    ch = exp.changes
    mine = ch[(ch["policy"] == policy) & (ch["pipeline"] == pipeline) & (ch["outcome"] == "deployed")]
    per = mine.groupby("replication")["lead_time_s"].median() / 3600.0
    all_reps = exp.replications.loc[exp.replications["policy"] == policy, "replication"].to_numpy()
    return per.reindex(all_reps)


def _figures(exp: Experiment, policy: str, pipeline: str | None) -> pd.DataFrame:
    reps = exp.replications[exp.replications["policy"] == policy].set_index("replication")
    return pd.DataFrame({
        "downtime_s": reps["downtime_s"].astype(float),
        "breach": reps["sla_breach"].astype(float),
        "lead_time_h": _lead_per_replication(exp, policy, pipeline),
    })


def _median(x: pd.Series) -> float:
    v = x.to_numpy(float)
    v = v[np.isfinite(v)]
    return float(np.median(v)) if v.size else math.nan


# ------------------------------------------------------------------ the sweep

def sensitivity(scenario: Scenario, *, replications: int = 20, seed: Any = 1, months: float = 1.0,
                sla_target_pct: float = 99.9, credit_table: str = "s3-standard",
                pipelines: Sequence[str] | None = None, alarms: bool = True, workers: int | None = None,
                client: Any = None, progress: bool | None = None) -> Sensitivity:
    """Run the scenario and each setting one rung down and one rung up, on the same seeds; rank the settings.

    See the module docstring for what is varied and how settings are ranked.
    """
    settings = settings_of(scenario, pipelines, alarms)
    variants: dict[str, Scenario] = {BASE: scenario}
    meta: list[dict[str, Any]] = []
    notes: list[str] = []
    for s in settings:
        for k in (-1, 1):
            if _same(scenario, s.values[k]):
                continue
            label = s.label(k)
            if label in variants:
                continue
            variants[label] = with_values(scenario, s.values[k], name=f"{scenario.name} [{label}]")
            meta.append({"setting": s.name, "pipeline": s.pipeline, "direction": k, "label": label,
                         "from": s.described[0], "to": s.described[k]})
    exp = compare(variants, replications=replications, seed=seed, months=months, sla_target_pct=sla_target_pct,
                  credit_table=credit_table, workers=workers, client=client, progress=progress)
    rows = []
    base_cache: dict[str | None, pd.DataFrame] = {}
    for m in meta:
        pipeline = m["pipeline"]
        if pipeline not in base_cache:
            base_cache[pipeline] = _figures(exp, BASE, pipeline)
        base = base_cache[pipeline]
        mine = _figures(exp, m["label"], pipeline)
        row = dict(m)
        for fig in FIGURES:
            a, b = base[fig].align(mine[fig], join="inner")
            if fig == "lead_time_h":
                row[f"base_{fig}"], row[fig] = _median(a), _median(b)
            else:
                row[f"base_{fig}"], row[fig] = float(np.nanmean(a)), float(np.nanmean(b))
            diff, low, high = stats.paired_difference_ci(b.to_numpy(float), a.to_numpy(float), binary=fig == "breach")
            row[f"d_{fig}"], row[f"d_{fig}_low"], row[f"d_{fig}_high"] = diff, low, high
            row[f"clear_{fig}"] = bool(math.isfinite(low) and math.isfinite(high) and (low > 0 or high < 0))
        rows.append(row)
    frame = pd.DataFrame(rows)
    ranking = _rank(frame, settings)
    if not len(frame):
        notes.append("no setting could be moved one rung either way")
    elif not (ranking["score"] > 0).any():
        notes.append(f"no difference is clear at {replications} replication(s) per variant "
                     "(every paired 95% interval includes zero)")
    return Sensitivity(exp, settings, frame, ranking, int(replications), notes)


def _rank(frame: pd.DataFrame, settings: list[Setting]) -> pd.DataFrame:
    if not len(frame):
        return pd.DataFrame(columns=["setting", "pipeline", "score", "relative", "clear"])
    largest = {}
    for fig in FIGURES:
        clear = frame.loc[frame[f"clear_{fig}"], f"d_{fig}"].abs()
        largest[fig] = float(clear.max()) if len(clear) else 0.0
    out = []
    for name, group in frame.groupby("setting", sort=False):
        score, relative, clear_figs = 0.0, 0.0, []
        for r in group.to_dict("records"):
            for fig in FIGURES:
                d = r[f"d_{fig}"]
                if not math.isfinite(d):
                    continue
                base = abs(r[f"base_{fig}"]) if fig != "breach" else 1.0
                rel = abs(d) / base if base > 0 else (math.inf if d else 0.0)
                if r[f"clear_{fig}"] and largest[fig] > 0:
                    score = max(score, abs(d) / largest[fig])
                    clear_figs.append(fig)
                    relative = max(relative, rel)
        out.append({"setting": name, "pipeline": group["pipeline"].iloc[0], "score": score, "relative": relative,
                    "clear": ", ".join(FIGURE_LABELS[f] for f in dict.fromkeys(clear_figs))})
    ranking = pd.DataFrame(out).sort_values(["score", "relative"], ascending=False, kind="stable")
    return ranking.reset_index(drop=True)


__all__ = ["ALARM_SETTING", "BASE", "Sensitivity", "Setting", "alarm_setting", "sensitivity", "settings_of"]
