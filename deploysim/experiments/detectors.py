"""Which detector wins: the one-box's threshold alarm or a Kayenta-style judge, at equal bake time.

For a scenario's one-box (the first production stage's one-box hosts, or one host) and a baseline of
as many hosts running the old version with the same traffic per host, per-period datapoints are
drawn from the simulator's metric model (`deploysim.metrics.MetricModel.observe`: Poisson error
counts, sampled latency percentiles) over a bake of B periods, at several traffic levels (requests
per minute per host), with a defect that adds a given error rate to the canary's requests.
Two detectors see the same datapoints:

- `threshold`: the alarms the scenario watches on the one-box (metric or composite, M of N, via
  `deploysim.alarms`), evaluated on the canary's own datapoints; caught if one is in ALARM in a
  period of the bake;
- `judge`: `deploysim.judge.judge_canary` (Mann-Whitney classification, Kayenta scoring) of the
  canary's datapoints against the baseline's, judged every `judge_every` periods over the data so
  far; caught if any judgement is FAIL. The overall alpha is split over the judgements (Bonferroni),
  so repeated looks do not raise the false-rollback rate above alpha. A last judgement that is
  INCONCLUSIVE (no data) is not a catch, and is counted separately.

Noise is keyed, never drawn in call order: every datapoint's uniform is a function of (seed,
replication, defect size, traffic level, canary/baseline, metric, period), through
`deploysim.seeds.child_seed`/`keyed_child` and the Philox streams of `deploysim.noise`. So both
detectors judge the same draws (their difference is paired), and adding or removing a defect size
or a traffic level changes no other cell's draws.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..alarms.composite import parse_rule
from ..alarms.series import combine_alarm_states, metric_alarm_codes
from ..fleet import build_fleet, one_box_hosts
from ..judge import Direction, MetricConfig, Verdict, judge_canary
from ..metrics import MetricModel, WindowMetrics
from ..noise import NoiseStreams, ScopeNoise
from ..policy.judging import judge_step
from ..scenario.schema import Judge, MetricAlarm, Scenario, Stage
from ..seeds import as_seed_sequence, child_seed, keyed_child
from ..sim_judge import REQUESTS, REQUESTS_ALARM, as_alarm
from ..world import World
from .params import ParameterError
from .stats import paired_proportion_difference_ci, proportion_ci

DEFAULT_DEFECTS = (0.0, 0.01, 0.02, 0.05)
DEFAULT_TRAFFIC = (100.0, 1000.0, 10000.0)
DETECTORS = ("threshold", "judge")
DIFFERENCE = "judge - threshold"

SUMMARY_COLUMNS = {
    "defect_error_rate": "extra error rate the defect adds to the canary's requests (fraction; 0.01 = 1%)",
    "traffic_rpm": "requests per minute per host, canary and baseline alike",
    "detector": f"'threshold', 'judge', or '{DIFFERENCE}' (the paired difference of their catch rates)",
    "measure": "'catch_rate' (defect > 0) or 'false_rollback_rate' (defect 0); 'difference' for the difference row",
    "replications": "replications behind the estimate",
    "caught": "replications in which the detector fired within the bake (NaN for the difference row)",
    "rate": "share of replications caught (the difference row: judge minus threshold)",
    "ci_low": "95% interval, low end (Clopper-Pearson; the difference row: exact paired interval)",
    "ci_high": "95% interval, high end",
    "inconclusive_rate": "judge only: share of replications whose last judgement was inconclusive (no data)",
    "median_minutes_to_catch": "median minutes from the bake's start to the first catch, over caught replications",
    "bake_minutes": "bake length, minutes (the same for both detectors)",
}
"""Columns of `compare_detectors`' frame and their units."""

OUTCOME_COLUMNS = ("replication", "defect_error_rate", "traffic_rpm", "detector", "caught", "minutes_to_catch",
                   "inconclusive")


@dataclasses.dataclass(frozen=True)
class Setup:
    """What is compared: canary and baseline hosts, the watched alarms, the bake and the judge's metrics."""

    scenario: Scenario
    stage: Stage
    canary: np.ndarray
    baseline: np.ndarray
    alarm_names: tuple[str, ...]
    bake_periods: int
    judge_every: int
    judge_metrics: tuple[str, ...]
    alpha: float
    judge: Judge | None = None  # the one-box's own kayenta `judge:`, used as it is when the scenario has one

    @property
    def period_s(self) -> float:
        return float(self.scenario.metric_period)

    @property
    def looks(self) -> tuple[int, ...]:
        """Periods of data at each judgement: every `judge_every` periods, and at the bake's end."""
        marks = list(range(self.judge_every, self.bake_periods + 1, self.judge_every))
        if not marks or marks[-1] != self.bake_periods:
            marks.append(self.bake_periods)
        return tuple(marks)

    @property
    def judge_text(self) -> str:
        """Which judge is measured, in a few words."""
        if self.judge is not None:
            return (f"the scenario's one-box judge (kayenta on {', '.join(self.judge_metrics)}, confidence "
                    f"{self.judge.confidence:g} over the bake)")
        return f"Kayenta-style on {', '.join(self.judge_metrics)}, critical, alpha {self.alpha:g} over the bake"

    def judge_configs(self) -> list[MetricConfig]:
        confidence = 1.0 - self.alpha / len(self.looks)
        return [MetricConfig(name=m, direction=Direction.INCREASE, confidence=confidence, critical=True)
                for m in self.judge_metrics]


def _first_production_stage(scenario: Scenario, pipeline: str | None) -> tuple[str, Stage]:
    names = [pipeline] if pipeline is not None else list(scenario.policy.pipelines)
    for name in names:
        if name not in scenario.policy.pipelines:
            raise ParameterError(f"unknown pipeline {name!r}; the scenario has {', '.join(scenario.policy.pipelines)}")
        for stage in scenario.policy.pipelines[name].stages:
            if stage.kind == "production":
                return name, stage
    raise ParameterError("the scenario has no production stage" + (f" in pipeline {pipeline!r}" if pipeline else ""))


def setup(scenario: Scenario, *, pipeline: str | None = None, bake_s: float | None = None, judge_every_s: float = 300.0,
          latency: bool = False, alpha: float = 0.05) -> Setup:
    """Resolve the one-box, its baseline, its watched alarms and the bake (default: the one-box's bake, else 30 min)."""
    name, stage = _first_production_stage(scenario, pipeline)
    watch = stage.watch or scenario.policy.pipelines[name].watch
    if not watch.one_box:
        raise ParameterError(f"no alarm watches the one-box of stage {stage.name!r}: nothing for the threshold "
                             "detector to evaluate")
    if not 0.0 < alpha < 1.0:
        raise ParameterError(f"alpha must be between 0 and 1, got {alpha:g}")
    period = float(scenario.metric_period)
    if bake_s is None:
        bake_s = stage.one_box.bake.duration if stage.one_box is not None and stage.one_box.bake.duration else 1800.0
    bake_periods = int(bake_s // period)
    if bake_periods < 1:
        raise ParameterError(f"the bake ({bake_s:g} s) is shorter than one metric period ({period:g} s)")
    box_judge = stage.one_box.judge if stage.one_box is not None else None
    judge = box_judge if box_judge is not None and box_judge.kind == "kayenta" else None
    if judge is not None:  # the policy's judge, as the rollout would run it
        judge_every_s = judge.interval
    judge_every = max(int(judge_every_s // period), 1)
    layout = build_fleet(scenario)
    region = layout.region_index(stage.regions[0])
    n_box = stage.one_box.hosts if stage.one_box is not None else 1
    region_hosts = layout.hosts_in_region(region)
    if region_hosts.size < 2 * n_box:
        raise ParameterError(f"region {stage.regions[0]} has {region_hosts.size} hosts: too few for a one-box of "
                             f"{n_box} and a baseline of as many")
    canary = one_box_hosts(layout, region, n_box)
    baseline = region_hosts[n_box:2 * n_box]
    metrics: tuple[str, ...] = ("error_rate", "latency_p99_ms") if latency else ("error_rate",)
    if judge is not None:
        metrics = tuple(m.label for m in judge.metrics)
    return Setup(scenario=scenario, stage=stage, canary=canary, baseline=baseline, alarm_names=tuple(watch.one_box),
                 bake_periods=bake_periods, judge_every=judge_every, judge_metrics=metrics, alpha=alpha, judge=judge)



def _model(s: Setup, rpm: float) -> MetricModel:
    """A metric model whose canary and baseline hosts each serve `rpm` requests per minute, steadily."""
    sc = s.scenario
    layout = build_fleet(sc)
    weight = layout.host_weight.copy()
    weight[s.baseline] = weight[s.canary]  # the baseline takes the one-box's share per host
    layout = dataclasses.replace(layout, host_weight=weight)
    per_host = rpm * float(sc.metric_period) / 60.0
    # Only the stage's region is watched; every region gets the same requests per period.
    requests = np.full((layout.n_regions, s.bake_periods), per_host / weight[s.canary[0]])
    world = World(changes=(), faults=(), requests=requests)
    return MetricModel(sc, layout, world, [])


def _with_defect(m: WindowMetrics, error_rate: float) -> WindowMetrics:
    """The window (fresh, no noise drawn) with `error_rate` more of its requests failing, per API."""
    w = m.part(0, m.requests.size)
    w.errors_api = np.minimum(m.errors_api + m.requests_api * error_rate, m.requests_api)
    w.errors = w.errors_api.sum(axis=0)
    return w


def _noise(seed: np.random.SeedSequence, replication: int, defect: float, rpm: float, role: str,
           hosts: np.ndarray) -> ScopeNoise:
    """Keyed noise of one (replication, defect size, traffic level, canary/baseline); periods are the counter."""
    cell = keyed_child(child_seed(seed, replication), f"detectors/defect={defect!r}/traffic={rpm!r}/{role}")
    return NoiseStreams(cell).scope(hosts)


def _observe(model: MetricModel, m: WindowMetrics, noise: ScopeNoise, alarm: MetricAlarm) -> np.ndarray:
    return model.observe(m, alarm.metric, noise, api=alarm.api, statistic=alarm.statistic,
                         dependency=alarm.dependency)


def _alarm_flags(s: Setup, model: MetricModel, m: WindowMetrics, noise: ScopeNoise) -> np.ndarray:
    """ALARM per period of the bake of any alarm watched on the one-box (its M of N on the canary's datapoints)."""
    sc = s.scenario
    metric_alarms = {a.name: a for a in sc.alarms.metric}
    composites = {c.name: parse_rule(c.rule) for c in sc.alarms.composite}

    def codes_of(alarm: MetricAlarm) -> np.ndarray:
        hold = model.low_sample(m, alarm.metric) if alarm.evaluate_low_sample_count_percentile == "ignore" else None
        return metric_alarm_codes(_observe(model, m, noise, alarm), alarm, 0, hold)

    fired = np.zeros(s.bake_periods, dtype=bool)
    for name in s.alarm_names:
        fired |= combine_alarm_states(name, metric_alarms, composites, codes_of)
    return fired


def _judge(s: Setup, configs: list[MetricConfig], canary: dict[str, np.ndarray],
           baseline: dict[str, np.ndarray]) -> tuple[int | None, bool]:
    """Periods of data at the first FAIL (None: none), and whether the last judgement was inconclusive.

    With the scenario's own judge, each look is `judge_step`'s, as a rollout's (its requests per
    period under REQUESTS of each side)."""
    verdict = None
    for k in s.looks:
        if s.judge is not None:
            can_k = {n: v[:k] for n, v in canary.items() if n != REQUESTS}
            base_k = {n: v[:k] for n, v in baseline.items() if n != REQUESTS}
            verdict = judge_step(s.judge, can_k, base_k, period_s=s.period_s, bake_s=s.bake_periods * s.period_s,
                                 canary_requests=canary[REQUESTS][:k], baseline_requests=baseline[REQUESTS][:k]).verdict
            if verdict is Verdict.FAIL:
                return k, False
            continue
        base: dict[str, Sequence[float]] = {n: v[:k].tolist() for n, v in baseline.items()}
        can: dict[str, Sequence[float]] = {n: v[:k].tolist() for n, v in canary.items()}
        verdict = judge_canary(base, can, configs).verdict
        if verdict is Verdict.FAIL:
            return k, False
    return None, verdict is Verdict.INCONCLUSIVE


def _as_floats(name: str, values: Sequence[float], low: float, high: float = math.inf) -> tuple[float, ...]:
    """Finite values in [low, high], none twice."""
    out = tuple(float(v) for v in values)
    if not out:
        raise ParameterError(f"{name}: give at least one value")
    bad = [v for v in out if not (math.isfinite(v) and low <= v <= high)]
    if bad:
        raise ParameterError(f"{name}: {bad[0]:g} is out of range ({low:g} to {high:g})")
    if len(set(out)) != len(out):
        raise ParameterError(f"{name}: a value is given twice")
    return out


def simulate_detectors(scenario: Scenario, *, replications: int = 200, seed: int | np.random.SeedSequence = 1,
                       defects: Sequence[float] = DEFAULT_DEFECTS, traffic_rpm: Sequence[float] = DEFAULT_TRAFFIC,
                       bake_s: float | None = None, judge_every_s: float = 300.0, latency: bool = False,
                       alpha: float = 0.05, pipeline: str | None = None) -> pd.DataFrame:
    """One row per (replication, defect size, traffic level, detector): caught, minutes to catch, inconclusive.

    See the module's docstring for what is drawn and how each detector decides.
    """
    if not isinstance(replications, (int, np.integer)) or isinstance(replications, bool) or replications < 1:
        raise ParameterError(f"replications must be a whole number of at least 1, got {replications!r}")
    defects = _as_floats("defect sizes", defects, 0.0, 1.0)
    traffic_rpm = _as_floats("traffic levels", traffic_rpm, 1e-9)
    s = setup(scenario, pipeline=pipeline, bake_s=bake_s, judge_every_s=judge_every_s, latency=latency, alpha=alpha)
    root = as_seed_sequence(seed)
    configs = s.judge_configs()
    minutes = s.period_s / 60.0
    if s.judge is not None:  # the judge's metrics (API, statistic as it says) and each side's requests
        judge_alarms = {m.label: as_alarm(m) for m in s.judge.metrics}
        judge_alarms[REQUESTS] = REQUESTS_ALARM
    else:
        judge_alarms = {m: MetricAlarm(name=m, metric=m, threshold=0.0) for m in s.judge_metrics}  # for `_observe`
    rows: list[dict[str, Any]] = []
    for rpm in traffic_rpm:
        model = _model(s, rpm)
        expected = {"canary": model.expected(s.canary, 0, s.bake_periods),
                    "baseline": model.expected(s.baseline, 0, s.bake_periods)}
        for defect in defects:
            for rep in range(int(replications)):
                can_m = _with_defect(expected["canary"], defect)
                base_m = _with_defect(expected["baseline"], 0.0)
                can_noise = _noise(root, rep, defect, rpm, "canary", s.canary)
                base_noise = _noise(root, rep, defect, rpm, "baseline", s.baseline)
                fired = _alarm_flags(s, model, can_m, can_noise)
                # The judge reads the same canary datapoints the alarm did (the window caches its noise).
                canary = {n: _observe(model, can_m, can_noise, a) for n, a in judge_alarms.items()}
                baseline = {n: _observe(model, base_m, base_noise, a) for n, a in judge_alarms.items()}
                k_fail, inconclusive = _judge(s, configs, canary, baseline)
                first = int(np.argmax(fired)) + 1 if fired.any() else None
                common = {"replication": rep, "defect_error_rate": defect, "traffic_rpm": rpm}
                rows.append({**common, "detector": "threshold", "caught": first is not None,
                             "minutes_to_catch": first * minutes if first is not None else math.nan,
                             "inconclusive": False})
                rows.append({**common, "detector": "judge", "caught": k_fail is not None,
                             "minutes_to_catch": k_fail * minutes if k_fail is not None else math.nan,
                             "inconclusive": inconclusive})
    frame = pd.DataFrame(rows, columns=list(OUTCOME_COLUMNS))
    frame.attrs["bake_minutes"] = s.bake_periods * minutes
    frame.attrs["looks_minutes"] = [k * minutes for k in s.looks]
    frame.attrs["alarms"] = list(s.alarm_names)
    frame.attrs["judge"] = s.judge_text
    return frame


def summarize(outcomes: pd.DataFrame) -> pd.DataFrame:
    """The tidy summary of `simulate_detectors`' outcomes (columns: `SUMMARY_COLUMNS`)."""
    bake = float(outcomes.attrs.get("bake_minutes", math.nan))
    rows: list[dict[str, Any]] = []
    for (defect, rpm), cell in outcomes.groupby(["defect_error_rate", "traffic_rpm"], sort=True):
        measure = "false_rollback_rate" if defect == 0 else "catch_rate"
        by = {d: cell[cell["detector"] == d].sort_values("replication") for d in DETECTORS}
        for d in DETECTORS:
            x = by[d]
            n, k = len(x), int(x["caught"].sum())
            low, high = proportion_ci(k, n)
            times = x.loc[x["caught"], "minutes_to_catch"]
            rows.append({"defect_error_rate": defect, "traffic_rpm": rpm, "detector": d, "measure": measure,
                         "replications": n, "caught": k, "rate": k / n, "ci_low": low, "ci_high": high,
                         "inconclusive_rate": float(x["inconclusive"].mean()) if d == "judge" else math.nan,
                         "median_minutes_to_catch": float(times.median()) if len(times) else math.nan,
                         "bake_minutes": bake})
        diff, low, high = paired_proportion_difference_ci(by["judge"]["caught"].to_numpy(float),
                                                          by["threshold"]["caught"].to_numpy(float))
        rows.append({"defect_error_rate": defect, "traffic_rpm": rpm, "detector": DIFFERENCE, "measure": "difference",
                     "replications": len(by["judge"]), "caught": math.nan, "rate": diff, "ci_low": low,
                     "ci_high": high, "inconclusive_rate": math.nan, "median_minutes_to_catch": math.nan,
                     "bake_minutes": bake})
    frame = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
    frame.attrs.update(outcomes.attrs)
    return frame


def compare_detectors(scenario: Scenario, *, replications: int = 200, seed: int | np.random.SeedSequence = 1,
                      defects: Sequence[float] = DEFAULT_DEFECTS, traffic_rpm: Sequence[float] = DEFAULT_TRAFFIC,
                      bake_s: float | None = None, judge_every_s: float = 300.0, latency: bool = False,
                      alpha: float = 0.05, pipeline: str | None = None) -> pd.DataFrame:
    """Catch and false-rollback rates of the threshold alarm and the judge, with 95% intervals and their
    paired difference: one row per (defect size, traffic level, detector); columns in `SUMMARY_COLUMNS`."""
    return summarize(simulate_detectors(
        scenario, replications=replications, seed=seed, defects=defects, traffic_rpm=traffic_rpm, bake_s=bake_s,
        judge_every_s=judge_every_s, latency=latency, alpha=alpha, pipeline=pipeline))


def format_table(summary: pd.DataFrame) -> str:
    """The summary as a plain-text table: rates in percent with their 95% intervals."""
    def pct(rate: float, low: float, high: float, signed: bool = False) -> str:
        if math.isnan(rate):
            return "-"
        sign = "+" if signed else ""
        return f"{rate * 100:{sign}.1f}% [{low * 100:{sign}.1f}, {high * 100:{sign}.1f}]"

    header = ("defect", "traffic rpm/host", "measure", "threshold", "judge", "judge - threshold", "judge inconcl.")
    lines = []
    for (defect, rpm), cell in summary.groupby(["defect_error_rate", "traffic_rpm"], sort=True):
        row = {r["detector"]: r for _, r in cell.iterrows()}
        t, j, d = row["threshold"], row["judge"], row[DIFFERENCE]
        lines.append((f"{defect * 100:g}%", f"{rpm:g}", "false rollback" if defect == 0 else "caught",
                      pct(t["rate"], t["ci_low"], t["ci_high"]), pct(j["rate"], j["ci_low"], j["ci_high"]),
                      pct(d["rate"], d["ci_low"], d["ci_high"], signed=True),
                      f"{j['inconclusive_rate'] * 100:.1f}%"))
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)), "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in lines]
    attrs = summary.attrs
    n = int(summary["replications"].max()) if len(summary) else 0
    out.append(f"{n} replications per cell; bake {attrs.get('bake_minutes', math.nan):g} min; judge looks at "
               f"{', '.join(f'{m:g}' for m in attrs.get('looks_minutes', []))} min; threshold alarms: "
               f"{', '.join(attrs.get('alarms', []))}; judge: {attrs.get('judge', 'Kayenta-style')}; "
               "95% intervals (Clopper-Pearson; the difference: exact paired)")
    return "\n".join(out)


def plot(summary: pd.DataFrame, path: Any) -> None:
    """ROC-style figure: catch rate vs defect size (% error rate) per detector, one panel per traffic level,
    with 95% bands; the false-rollback rate is the point at defect 0."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = sorted(summary["traffic_rpm"].unique())
    fig, axes = plt.subplots(1, len(levels), figsize=(4.2 * len(levels) + 0.6, 4.0), sharey=True, squeeze=False)
    colours = {"threshold": "tab:orange", "judge": "tab:blue"}
    labels = {"threshold": "threshold alarm (one-box)", "judge": "Kayenta-style judge"}
    for ax, rpm in zip(axes[0], levels, strict=True):
        for d in DETECTORS:
            x = summary[(summary["traffic_rpm"] == rpm) & (summary["detector"] == d)].sort_values("defect_error_rate")
            pct = x["defect_error_rate"] * 100
            ax.plot(pct, x["rate"], marker="o", color=colours[d], label=labels[d])
            ax.fill_between(pct, x["ci_low"], x["ci_high"], color=colours[d], alpha=0.2, linewidth=0)
        ax.set_title(f"{rpm:g} requests/min per host", fontsize=10)
        ax.set_xlabel("defect: extra error rate (%)")
        ax.set_ylim(-0.03, 1.03)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("P(caught within the bake)")
    axes[0][0].legend(loc="lower right", fontsize=8)
    bake = summary.attrs.get("bake_minutes", math.nan)
    n = int(summary["replications"].max()) if len(summary) else 0
    fig.suptitle(f"Catch rate at equal bake ({bake:g} min), {n} replications, 95% bands; at 0%: false rollbacks",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
