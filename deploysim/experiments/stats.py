"""Estimates with uncertainty over replications: means, quantiles, proportions and differences.

Choices (all 95% by default):
- mean: bias-corrected and accelerated (BCa) bootstrap, scipy.stats.bootstrap, 2,000 resamples,
  seeded so the same data give the same interval;
- median, p90, p99: the exact distribution-free interval from order statistics (binomial);
- a proportion (SLA breach probability): exact Clopper-Pearson (scipy.stats.binomtest);
- difference of means: paired (per-replication differences under common random numbers) or
  unpaired (independent resampling of both samples), both BCa bootstrap.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
N_RESAMPLES = 2000
_SEED = 20261127  # fixed: intervals are a function of the data only


def _clean(values) -> np.ndarray:
    x = np.asarray(values, dtype=float)
    return x[np.isfinite(x)]


def _bootstrap(data: tuple[np.ndarray, ...], statistic, paired: bool, confidence: float) -> tuple[float, float]:
    if any(d.size < 2 for d in data):
        return (math.nan, math.nan)
    if all(np.ptp(d) == 0 for d in data):  # no spread: the interval is the point
        point = float(statistic(*data))
        return (point, point)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # degenerate resamples: BCa falls back, result still sound
        result = stats.bootstrap(data, statistic, paired=paired, vectorized=True, n_resamples=N_RESAMPLES,
                                 confidence_level=confidence, method="BCa",
                                 random_state=np.random.default_rng(_SEED))
    low, high = result.confidence_interval
    if not (math.isfinite(low) and math.isfinite(high)):  # BCa undefined (e.g. one outlier): percentile
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = stats.bootstrap(data, statistic, paired=paired, vectorized=True, n_resamples=N_RESAMPLES,
                                     confidence_level=confidence, method="percentile",
                                     random_state=np.random.default_rng(_SEED))
        low, high = result.confidence_interval
    return (float(low), float(high))


def mean_ci(values, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Confidence interval of the mean (BCa bootstrap); NaN with fewer than two values."""
    x = _clean(values)
    return _bootstrap((x,), lambda a, axis=-1: np.mean(a, axis=axis), paired=False, confidence=confidence)


def quantile_ci(values, q: float, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Distribution-free interval for the q-quantile (0 < q < 1) from order statistics.

    The number of values below the true quantile is Binomial(n, q); the interval runs between the
    order statistics that bracket the central `confidence` mass of that binomial. It is NaN at the
    ends that the sample is too small to bound (e.g. p99 from 100 values has no upper bound).
    """
    x = np.sort(_clean(values))
    n = x.size
    if n == 0:
        return (math.nan, math.nan)
    alpha = 1.0 - confidence
    lo_rank = int(stats.binom.ppf(alpha / 2, n, q))  # 0-based index of the lower order statistic
    hi_rank = int(stats.binom.ppf(1 - alpha / 2, n, q))
    low = float(x[lo_rank - 1]) if lo_rank >= 1 else math.nan
    high = float(x[hi_rank]) if hi_rank < n else math.nan
    return (low, high)


def proportion_ci(successes: int, trials: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Exact Clopper-Pearson interval for a probability; NaN without trials."""
    if trials <= 0:
        return (math.nan, math.nan)
    ci = stats.binomtest(int(successes), int(trials)).proportion_ci(confidence_level=confidence, method="exact")
    return (float(ci.low), float(ci.high))


def paired_difference_ci(b, a, confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """Mean of b − a over replications where both are known, and its interval (paired bootstrap)."""
    b, a = np.asarray(b, dtype=float), np.asarray(a, dtype=float)
    both = np.isfinite(a) & np.isfinite(b)
    d = b[both] - a[both]
    if d.size == 0:
        return (math.nan, math.nan, math.nan)
    low, high = _bootstrap((d,), lambda x, axis=-1: np.mean(x, axis=axis), paired=False, confidence=confidence)
    return (float(d.mean()), low, high)


def unpaired_difference_ci(b, a, confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """Difference of means b − a treating the samples as independent (no common random numbers)."""
    b, a = _clean(b), _clean(a)
    if a.size == 0 or b.size == 0:
        return (math.nan, math.nan, math.nan)
    low, high = _bootstrap((b, a), lambda x, y, axis=-1: np.mean(x, axis=axis) - np.mean(y, axis=axis),
                           paired=False, confidence=confidence)
    return (float(b.mean() - a.mean()), low, high)
