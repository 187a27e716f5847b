"""Estimates with uncertainty over replications: means, quantiles, proportions and differences.

Choices (all 95% by default):
- mean: bias-corrected and accelerated (BCa) bootstrap, scipy.stats.bootstrap, 2,000 resamples,
  seeded so the same data give the same interval;
- median, p90, p99: the exact distribution-free interval from order statistics (binomial);
- a proportion (SLA breach probability): exact Clopper-Pearson (scipy.stats.binomtest);
- difference of means: paired (per-replication differences under common random numbers) or
  unpaired (independent resampling of both samples), both BCa bootstrap;
- difference of two proportions on the same replications (paired yes/no, e.g. SLA breach): exact,
  from Clopper-Pearson intervals for the share of discordant replications and, among those, the
  share where only the first breaches (Bonferroni-combined, so at least 95% coverage);
- difference of two independent proportions: Newcombe's hybrid score interval (Wilson-based).

No interval is narrower than the data support: a bootstrap of data without spread (every value
the same) cannot tell how far the mean could be, so it gives no interval (NaN) rather than a point;
yes/no figures use the exact intervals above, which stay wide when every replication agrees
(0 breaches in 20 months still allows a probability up to 0.168).
"""

from __future__ import annotations

import math
import warnings

import numpy as np


def _scipy_stats():
    """scipy.stats, imported when first needed: a pool worker imports this package to run
    replications, which need no statistics, and scipy.stats alone takes longer to import than
    numpy and pandas together."""
    from scipy import stats

    return stats

CONFIDENCE = 0.95
N_RESAMPLES = 2000
_SEED = 20261127  # fixed: intervals are a function of the data only


def _clean(values) -> np.ndarray:
    x = np.asarray(values, dtype=float)
    return x[np.isfinite(x)]


def _bootstrap(data: tuple[np.ndarray, ...], statistic, paired: bool, confidence: float) -> tuple[float, float]:
    if any(d.size < 2 for d in data):
        return (math.nan, math.nan)
    if all(np.ptp(d) == 0 for d in data):  # no spread: resampling cannot tell how far the mean could be
        return (math.nan, math.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # degenerate resamples: BCa falls back, result still sound
        result = _scipy_stats().bootstrap(data, statistic, paired=paired, vectorized=True, n_resamples=N_RESAMPLES,
                                 confidence_level=confidence, method="BCa",
                                 random_state=np.random.default_rng(_SEED))
    low, high = result.confidence_interval
    if not (math.isfinite(low) and math.isfinite(high)):  # BCa undefined (e.g. one outlier): percentile
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = _scipy_stats().bootstrap(data, statistic, paired=paired, vectorized=True, n_resamples=N_RESAMPLES,
                                     confidence_level=confidence, method="percentile",
                                     random_state=np.random.default_rng(_SEED))
        low, high = result.confidence_interval
    return (float(low), float(high))


def mean_ci(values, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Confidence interval of the mean (BCa bootstrap); NaN with fewer than two values or without spread."""
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
    lo_rank = int(_scipy_stats().binom.ppf(alpha / 2, n, q))  # 0-based index of the lower order statistic
    hi_rank = int(_scipy_stats().binom.ppf(1 - alpha / 2, n, q))
    low = float(x[lo_rank - 1]) if lo_rank >= 1 else math.nan
    high = float(x[hi_rank]) if hi_rank < n else math.nan
    return (low, high)


def proportion_ci(successes: int, trials: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Exact Clopper-Pearson interval for a probability; NaN without trials."""
    if trials <= 0:
        return (math.nan, math.nan)
    test = _scipy_stats().binomtest(int(successes), int(trials))
    ci = test.proportion_ci(confidence_level=confidence, method="exact")
    return (float(ci.low), float(ci.high))


def wilson_ci(successes: int, trials: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval for a probability; NaN without trials."""
    if trials <= 0:
        return (math.nan, math.nan)
    test = _scipy_stats().binomtest(int(successes), int(trials))
    ci = test.proportion_ci(confidence_level=confidence, method="wilson")
    return (float(ci.low), float(ci.high))


def paired_proportion_difference_ci(b, a, confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """P(b) − P(a) for yes/no outcomes observed on the same replications, with an exact interval.

    Only discordant replications (one yes, the other no) carry information on the difference:
    with ψ the probability that a replication is discordant and π the probability that a discordant
    one is a yes for b, the difference is ψ(2π − 1). ψ and π get Clopper-Pearson intervals at
    1 − α/2 each (Bonferroni), and the difference's interval is the range of ψ(2π − 1) over both;
    with no discordant replication, π is unknown and the interval is ±(upper bound of ψ at 1 − α).
    """
    b, a = np.asarray(b, dtype=float), np.asarray(a, dtype=float)
    both = np.isfinite(a) & np.isfinite(b)
    b, a = b[both] != 0, a[both] != 0
    n = int(b.size)
    if n == 0:
        return (math.nan, math.nan, math.nan)
    only_b, only_a = int(np.sum(b & ~a)), int(np.sum(a & ~b))
    discordant = only_b + only_a
    diff = (only_b - only_a) / n
    if discordant == 0:
        _, psi_high = proportion_ci(0, n, confidence)
        return (diff, -psi_high, psi_high)
    half = 1.0 - (1.0 - confidence) / 2.0
    psi_low, psi_high = proportion_ci(discordant, n, half)
    pi_low, pi_high = proportion_ci(only_b, discordant, half)
    low = min(psi_low * (2 * pi_low - 1), psi_high * (2 * pi_low - 1))
    high = max(psi_low * (2 * pi_high - 1), psi_high * (2 * pi_high - 1))
    return (diff, float(low), float(high))


def unpaired_proportion_difference_ci(b, a, confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """P(b) − P(a) for yes/no outcomes of independent samples: Newcombe's hybrid score interval."""
    b, a = _clean(b) != 0, _clean(a) != 0
    if a.size == 0 or b.size == 0:
        return (math.nan, math.nan, math.nan)
    p1, p2 = float(b.mean()), float(a.mean())
    l1, u1 = wilson_ci(int(b.sum()), int(b.size), confidence)
    l2, u2 = wilson_ci(int(a.sum()), int(a.size), confidence)
    diff = p1 - p2
    low = diff - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = diff + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return (diff, low, high)


def paired_difference_ci(b, a, confidence: float = CONFIDENCE, binary: bool = False) -> tuple[float, float, float]:
    """Mean of b − a over replications where both are known, and its interval (paired bootstrap, or
    the exact paired-proportion interval when `binary`). NaN bounds when the differences have no spread."""
    if binary:
        return paired_proportion_difference_ci(b, a, confidence)
    b, a = np.asarray(b, dtype=float), np.asarray(a, dtype=float)
    both = np.isfinite(a) & np.isfinite(b)
    d = b[both] - a[both]
    if d.size == 0:
        return (math.nan, math.nan, math.nan)
    low, high = _bootstrap((d,), lambda x, axis=-1: np.mean(x, axis=axis), paired=False, confidence=confidence)
    return (float(d.mean()), low, high)


def unpaired_difference_ci(b, a, confidence: float = CONFIDENCE, binary: bool = False) -> tuple[float, float, float]:
    """Difference of means b − a treating the samples as independent (no common random numbers);
    Newcombe's interval when `binary`."""
    if binary:
        return unpaired_proportion_difference_ci(b, a, confidence)
    b, a = _clean(b), _clean(a)
    if a.size == 0 or b.size == 0:
        return (math.nan, math.nan, math.nan)
    low, high = _bootstrap((b, a), lambda x, y, axis=-1: np.mean(x, axis=axis) - np.mean(y, axis=axis),
                           paired=False, confidence=confidence)
    return (float(b.mean() - a.mean()), low, high)


def replications_to_show_below(rate: float, bound: float, confidence: float = CONFIDENCE,
                               limit: int = 10_000_000) -> int | None:
    """Fewest replications whose Clopper-Pearson upper bound falls to `bound` or below if the observed
    breach rate stays `rate` (rate × n breaches, read continuously); None when no number up to `limit`
    can (the rate is not below the bound)."""
    if not (math.isfinite(rate) and 0.0 <= rate < bound < 1.0):
        return None
    q = 1.0 - (1.0 - confidence) / 2.0

    def upper(n: int) -> float:
        k = rate * n
        return float(_scipy_stats().beta.ppf(q, k + 1.0, n - k))

    if upper(limit) > bound:
        return None
    low, high = 0, limit  # upper(low) > bound (or low = 0), upper(high) <= bound; the bound falls with n
    while high - low > 1:
        mid = (low + high) // 2
        if upper(mid) <= bound:
            high = mid
        else:
            low = mid
    return high
