"""Classify one metric of a canary against its baseline, after Kayenta's Mann-Whitney classifier.

A metric is High (or Low) only when all three gates agree:

1. the Mann-Whitney U test rejects "same distribution" at the configured confidence (one-sided
   toward the metric's `direction`, two-sided for `either`);
2. the confidence interval of the location shift (canary minus baseline, around the Hodges-Lehmann
   estimate) lies wholly outside a tolerance band of +/- `tolerance` x |estimate|;
3. the effect size (canary mean / baseline mean, or the common-language effect size) is beyond the
   allowed increase (decrease). An undefined effect size (a zero mean) skips this gate.

Anything else is Pass; too little data is NoData, which is inconclusive and never a pass.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


class Direction(str, Enum):
    """Which change of the metric is a regression."""

    INCREASE = "increase"
    DECREASE = "decrease"
    EITHER = "either"


class NanStrategy(str, Enum):
    """What to do with NaN datapoints before comparing."""

    REMOVE = "remove"
    REPLACE = "replace"


class EffectMeasure(str, Enum):
    """How the size of a change is measured for the allowed increase/decrease gate."""

    MEAN_RATIO = "meanRatio"
    CLES = "cles"


class Classification(str, Enum):
    """The label of one metric, as Kayenta names them."""

    PASS = "Pass"
    HIGH = "High"
    LOW = "Low"
    NODATA = "NoData"
    NODATA_FAIL = "NodataFailMetric"
    ERROR = "Error"


_NEUTRAL_EFFECT = {EffectMeasure.MEAN_RATIO: 1.0, EffectMeasure.CLES: 0.5}
_ALTERNATIVE = {Direction.INCREASE: "greater", Direction.DECREASE: "less", Direction.EITHER: "two-sided"}


@dataclass(frozen=True)
class MetricConfig:
    """How one metric is compared. See docs/canary-judge.md for every field."""

    name: str
    direction: Direction = Direction.EITHER
    confidence: float = 0.95
    allowed_increase: float | None = None
    allowed_decrease: float | None = None
    tolerance: float = 0.25
    effect_measure: EffectMeasure = EffectMeasure.MEAN_RATIO
    nan_strategy: NanStrategy = NanStrategy.REMOVE
    min_samples: int = 3
    must_have_data: bool = False
    critical: bool = False
    group: str = "default"

    def __post_init__(self) -> None:
        if not 0.0 < self.confidence < 1.0:
            raise ValueError(f"{self.name}: confidence must be between 0 and 1, got {self.confidence}")
        if self.tolerance < 0.0:
            raise ValueError(f"{self.name}: tolerance must be >= 0, got {self.tolerance}")
        if self.min_samples < 1:
            raise ValueError(f"{self.name}: min_samples must be >= 1, got {self.min_samples}")

    @property
    def alpha(self) -> float:
        return 1.0 - self.confidence

    @property
    def increase_limit(self) -> float:
        neutral = _NEUTRAL_EFFECT[self.effect_measure]
        return neutral if self.allowed_increase is None else self.allowed_increase

    @property
    def decrease_limit(self) -> float:
        neutral = _NEUTRAL_EFFECT[self.effect_measure]
        return neutral if self.allowed_decrease is None else self.allowed_decrease


@dataclass(frozen=True)
class ShiftInterval:
    """Hodges-Lehmann estimate of canary minus baseline and its confidence interval."""

    estimate: float
    low: float
    high: float


@dataclass(frozen=True)
class MetricResult:
    """The classification of one metric and the numbers behind it."""

    name: str
    classification: Classification
    reason: str
    n_baseline: int
    n_canary: int
    u_statistic: float | None = None
    p_value: float | None = None
    effect_size: float | None = None
    shift: ShiftInterval | None = None
    critical: bool = False
    group: str = "default"


def clean(values: Sequence[float], strategy: NanStrategy) -> FloatArray:
    """Drop NaN datapoints (`remove`) or set them to 0.0 (`replace`)."""
    data = np.asarray(values, dtype=np.float64)
    nan = np.isnan(data)
    if strategy is NanStrategy.REMOVE:
        return data[~nan]
    return np.where(nan, 0.0, data)


def u_test(canary: FloatArray, baseline: FloatArray, direction: Direction) -> tuple[float, float]:
    """U statistic of the canary and the p-value for `direction` (scipy's Mann-Whitney U test)."""
    from scipy.stats import mannwhitneyu

    result = mannwhitneyu(canary, baseline, alternative=_ALTERNATIVE[direction])
    return float(result.statistic), float(result.pvalue)


def shift_interval(canary: FloatArray, baseline: FloatArray, confidence: float, direction: Direction) -> ShiftInterval:
    """Hodges-Lehmann shift and its distribution-free confidence interval from the ordered pairwise differences.

    The bounds are the k-th smallest and k-th largest of the n*m differences canary_i - baseline_j, with
    k from the normal approximation of U; one-sided directions keep only the bound that matters.
    """
    from scipy.stats import norm

    diffs = np.sort(np.subtract.outer(canary, baseline).ravel())
    n, m = len(canary), len(baseline)
    one_sided = direction is not Direction.EITHER
    z = float(norm.ppf(confidence if one_sided else 1.0 - (1.0 - confidence) / 2.0))
    k = math.floor(n * m / 2.0 - z * math.sqrt(n * m * (n + m + 1) / 12.0))
    low, high = (-math.inf, math.inf) if k < 1 else (float(diffs[k - 1]), float(diffs[n * m - k]))
    if direction is Direction.INCREASE:
        high = math.inf
    elif direction is Direction.DECREASE:
        low = -math.inf
    return ShiftInterval(estimate=float(np.median(diffs)), low=low, high=high)


def effect_size(canary: FloatArray, baseline: FloatArray, measure: EffectMeasure, u_statistic: float) -> float:
    """Canary mean / baseline mean (NaN when a mean is zero), or P(canary > baseline) + P(tie) / 2."""
    if measure is EffectMeasure.CLES:
        return u_statistic / (len(canary) * len(baseline))
    canary_mean, baseline_mean = float(np.mean(canary)), float(np.mean(baseline))
    if canary_mean == 0.0 or baseline_mean == 0.0:
        return math.nan
    return canary_mean / baseline_mean


def _result(config: MetricConfig, label: Classification, reason: str, canary: FloatArray, baseline: FloatArray, *,
            u_statistic: float | None = None, p_value: float | None = None, effect: float | None = None,
            shift: ShiftInterval | None = None) -> MetricResult:
    return MetricResult(name=config.name, classification=label, reason=f"{config.name}: {label.value} ({reason})",
                        n_baseline=len(baseline), n_canary=len(canary), u_statistic=u_statistic, p_value=p_value,
                        effect_size=effect, shift=shift, critical=config.critical, group=config.group)


def _too_few(config: MetricConfig, canary: FloatArray, baseline: FloatArray) -> MetricResult:
    label = Classification.NODATA_FAIL if config.must_have_data else Classification.NODATA
    reason = (f"{len(canary)} canary and {len(baseline)} baseline datapoints, "
              f"at least {config.min_samples} each are needed")
    return _result(config, label, reason, canary, baseline)


def _beyond_increase(config: MetricConfig, effect: float) -> bool:
    return math.isnan(effect) or effect > config.increase_limit


def _beyond_decrease(config: MetricConfig, effect: float) -> bool:
    return math.isnan(effect) or effect < config.decrease_limit


def _label(config: MetricConfig, p_value: float, shift: ShiftInterval, effect: float) -> tuple[Classification, str]:
    """Apply the three gates (significance, tolerance band, effect size) in Kayenta's order."""
    if not p_value < config.alpha:
        return Classification.PASS, f"not significant: p={p_value:.4g} >= alpha {config.alpha:.4g}"
    band = config.tolerance * abs(shift.estimate)
    up = config.direction in (Direction.INCREASE, Direction.EITHER)
    down = config.direction in (Direction.DECREASE, Direction.EITHER)
    if up and shift.low > band:
        if _beyond_increase(config, effect):
            return Classification.HIGH, (f"p={p_value:.4g}, shift CI low {shift.low:.4g} > band {band:.4g}, "
                                         f"effect {effect:.4g} > allowed {config.increase_limit:.4g}")
        return Classification.PASS, f"effect {effect:.4g} within allowed increase {config.increase_limit:.4g}"
    if down and shift.high < -band:
        if _beyond_decrease(config, effect):
            return Classification.LOW, (f"p={p_value:.4g}, shift CI high {shift.high:.4g} < band {-band:.4g}, "
                                        f"effect {effect:.4g} < allowed {config.decrease_limit:.4g}")
        return Classification.PASS, f"effect {effect:.4g} within allowed decrease {config.decrease_limit:.4g}"
    return Classification.PASS, (f"shift CI [{shift.low:.4g}, {shift.high:.4g}] not outside the tolerance band "
                                 f"+/-{band:.4g} in the watched direction")


def classify(baseline: Sequence[float], canary: Sequence[float], config: MetricConfig) -> MetricResult:
    """Classify the canary's datapoints of one metric against the baseline's."""
    base, can = clean(baseline, config.nan_strategy), clean(canary, config.nan_strategy)
    if len(base) < config.min_samples or len(can) < config.min_samples:
        return _too_few(config, can, base)
    if not (np.all(np.isfinite(base)) and np.all(np.isfinite(can))):
        return _result(config, Classification.ERROR, "infinite datapoints", can, base)
    if np.array_equal(np.sort(base), np.sort(can)) or np.unique(np.concatenate([base, can])).size == 1:
        return _result(config, Classification.PASS, "canary and baseline data are identical", can, base,
                       effect=_NEUTRAL_EFFECT[config.effect_measure])
    u_statistic, p_value = u_test(can, base, config.direction)
    shift = shift_interval(can, base, config.confidence, config.direction)
    effect = effect_size(can, base, config.effect_measure, u_statistic)
    label, reason = _label(config, p_value, shift, effect)
    return _result(config, label, reason, can, base, u_statistic=u_statistic, p_value=p_value,
                   effect=effect, shift=shift)
