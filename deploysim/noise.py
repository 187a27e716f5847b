"""Keyed metric noise: each datapoint's noise is a pure function of (seed, scope, kind, period).

An alarm's datapoint in period k of a scope is its mean plus sampling noise. The noise is drawn
from one uniform per (scope, noise kind, period), read from a counter-based generator (Philox)
keyed by the run's noise seed, the scope and the kind, at the counter position of period k. So
a datapoint has one value however often, and in whatever order, it is asked for, and two runs on
one seed see the same uniforms wherever they ask for the same scope.

The uniform is turned into the period's noise by the inverse CDF of its distribution with the
period's mean (Poisson error counts, lognormal latency factor, normal resource jitter). The same
uniform therefore gives the healthy value and the value with a bad change running: a defect
changes a datapoint only through its mean (common random numbers down to the datapoint).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtri, pdtr

# Noise kinds: what a uniform is for. Part of the generator's key, so renaming one changes the noise.
ERRORS = "errors"  # failed requests of one API (errors, error_rate and log_errors share them)
LATENCY = "latency"  # one factor per period for all latency percentiles
RESOURCE = "resource"  # CPU, memory or disk jitter, per (metric, statistic)
LATENCY_SAMPLE = "latency_sample"  # where a percentile of the period's requests falls, per percentile

_OUTPUTS_PER_BLOCK = 4  # Philox4x64 gives four 64-bit outputs per counter value
_U52 = 2.0 ** -52
SMALL_MEAN = 10.0  # below this, Poisson inversion searches up from 0; above, from a normal-approximation guess


def errors_kind(api: str | None) -> str:
    """Noise kind of an API's failed requests (None and "All" are the whole service)."""
    return f"{ERRORS}:{api or 'All'}"


def latency_sample_kind(percentile: str) -> str:
    """Noise kind of the order statistic a latency percentile (p50, p90, p99) of a period's requests is."""
    return f"{LATENCY_SAMPLE}:{percentile}"


def resource_kind(metric: str, statistic: str) -> str:
    """Noise kind of a resource metric's statistic (e.g. cpu_pct, maximum)."""
    return f"{RESOURCE}:{metric}:{statistic}"


def scope_id(hosts: np.ndarray) -> bytes:
    """Stable identity of a scope (a set of host indices), the same in every process and platform.

    A blake2b digest of the sorted indices, never Python's `hash()` (salted per process for strings).
    """
    canonical = np.unique(np.asarray(hosts, dtype=np.int64)).astype("<i8")
    return hashlib.blake2b(canonical.tobytes(), digest_size=16, person=b"deploysim-scope").digest()


def philox_key(root: bytes, scope: bytes, kind: str) -> np.ndarray:
    """The Philox key (two 64-bit words) of one (scope, kind) noise sequence below `root`."""
    h = hashlib.blake2b(digest_size=16, person=b"deploysim-noise")
    for part in (root, scope, kind.encode()):
        h.update(len(part).to_bytes(4, "little"))  # length-prefixed: no two tuples share a byte string
        h.update(part)
    return np.frombuffer(h.digest(), dtype="<u8").astype(np.uint64)


def keyed_uniforms(key: np.ndarray, k0: int, k1: int) -> np.ndarray:
    """Uniforms in (0, 1) for periods [k0, k1): period k's is the k-th 64-bit output of Philox(key).

    The generator is advanced to the block holding period k0 (no draws before it are made), so
    the cost is that of the periods asked for, and any slice equals the same slice of a full draw.
    """
    n = max(int(k1) - int(k0), 0)
    if n == 0:
        return np.empty(0)
    block, offset = divmod(int(k0), _OUTPUTS_PER_BLOCK)
    gen = np.random.Philox(key=key)
    if block:
        gen.advance(block)
    raw = gen.random_raw(offset + n)[offset:]
    # The top 52 bits, centred in their interval: never exactly 0 or 1, so every inverse CDF is finite.
    raw >>= np.uint64(12)
    u = raw.astype(np.float64)
    u += 0.5
    u *= _U52
    return u


class NoiseStreams:
    """The noise of one run: keyed uniforms below the run's noise seed (see `deploysim.seeds`)."""

    def __init__(self, seed_seq: np.random.SeedSequence):
        self._root = seed_seq.generate_state(4, np.uint64).astype("<u8").tobytes()

    def scope(self, hosts: np.ndarray) -> ScopeNoise:
        return ScopeNoise(self._root, scope_id(hosts))


@dataclass(frozen=True)
class ScopeNoise:
    """Noise of one scope: uniforms per (kind, period), the same whoever asks and when."""

    root: bytes
    scope: bytes

    def uniforms(self, kind: str, k0: int, k1: int) -> np.ndarray:
        return keyed_uniforms(philox_key(self.root, self.scope, kind), k0, k1)


# ------------------------------------------------------------ inverse CDFs


def normal(u: np.ndarray, sd: float) -> np.ndarray:
    """Normal noise with mean 0 and standard deviation `sd` (in the metric's unit)."""
    return sd * ndtri(u)


def lognormal_factor(u: np.ndarray, sigma: float) -> np.ndarray:
    """Multiplicative lognormal noise exp(sigma * Z): median 1, `sigma` the log-scale deviation."""
    return np.exp(sigma * ndtri(u))


def poisson(u: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Poisson counts by exact inversion: the smallest n with P(N <= n) >= u, N ~ Poisson(mean).

    Exact to the floating-point accuracy of the CDF, so the counts are Poisson distributed, and
    monotone in u and in the mean (a larger mean never gives fewer counts for the same u).
    Means below SMALL_MEAN search up from 0 along the probabilities (a few steps). Larger means
    take an asymptotic quantile, accepted where it is far from a step of the CDF by more than its
    error bound; the rest (well under 1% at means of 100 or more) are anchored by the exact CDF
    (`scipy.special.pdtr`) and walked to the answer. Returns floats.
    """
    u, mean = np.broadcast_arrays(np.asarray(u, dtype=np.float64), np.asarray(mean, dtype=np.float64))
    shape = u.shape
    u, mean = u.ravel(), np.maximum(mean.ravel(), 0.0)
    out = np.zeros(u.size)
    large = mean >= SMALL_MEAN
    if large.all():
        return _invert_large(u, mean).reshape(shape)
    small = np.flatnonzero((mean > 0) & ~large)
    if small.size:
        out[small] = _search_up(u[small], mean[small])
    large_idx = np.flatnonzero(large)
    if large_idx.size:
        out[large_idx] = _invert_large(u[large_idx], mean[large_idx])
    return out.reshape(shape)


# The asymptotic (Cornish-Fisher) quantile in `_invert_large` is within CF_ERROR / mean**1.5 of the
# exact continuous quantile for mean >= SMALL_MEAN and |z| <= CF_Z_MAX: measured against
# scipy.special.pdtrik on a grid of 2,000 means (10 to 1e7) x 801 z values, the error was at most
# 0.8 / mean**1.5; the bound keeps a factor of 2.5. Elements outside it are searched exactly.
CF_ERROR = 2.0
CF_Z_MAX = 3.0


def _search_up(u: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """Inversion by sequential search from 0 (means below SMALL_MEAN, so only a few steps)."""
    n = np.zeros(u.size)
    p = np.exp(-lam)
    cdf = p.copy()
    active = np.flatnonzero(cdf < u)
    while active.size:
        n[active] += 1.0
        p[active] *= lam[active] / n[active]
        cdf[active] += p[active]
        # Where the terms have underflowed the sum cannot grow; u is then within rounding of 1.
        active = active[(cdf[active] < u[active]) & (p[active] > 0.0)]
    return n


def _invert_large(u: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """Inversion for means >= SMALL_MEAN: the asymptotic answer where it is certain, else exact search.

    With x the continuous quantile (P(N <= x) = u, the CDF's steps interpolated by the
    regularised gamma function, as `scipy.special.pdtrik` solves it), the answer is ceil(x).
    The expansion q of x in powers of 1/sqrt(mean) is within CF_ERROR / mean**1.5 of it; where
    no integer lies that close to q, ceil(q) = ceil(x) and no CDF needs evaluating.
    """
    z = ndtri(u)
    z2 = z * z
    root = np.sqrt(lam)
    inv = 1.0 / root
    q = (lam + z * root + z2 / 6.0 - 2.0 / 3.0 - z * (1.0 / 36.0 + z2 / 72.0) * inv
         + (-8.0 / 405.0 + z2 * (7.0 / 810.0 + z2 / 270.0)) * inv * inv)
    n = np.maximum(np.ceil(q), 0.0)
    frac = q - np.floor(q)
    margin = CF_ERROR * inv * inv * inv
    unsure = np.flatnonzero((z2 > CF_Z_MAX * CF_Z_MAX) | (frac < margin) | (frac > 1.0 - margin))
    if unsure.size:
        n[unsure] = _search_from(u[unsure], lam[unsure], n[unsure])
    return n


def _search_from(u: np.ndarray, lam: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Exact inversion from a guess n: the exact CDF at n - 1 and n, then steps along the probabilities."""
    n = n.copy()
    cdf = pdtr(n, lam)  # P(N <= n)
    p = cdf - np.where(n > 0, pdtr(np.maximum(n - 1.0, 0.0), lam), 0.0)  # P(N = n), as exact as the CDF
    # Too low: step up while P(N <= n) < u.
    up = np.flatnonzero(cdf < u)
    while up.size:
        n[up] += 1.0
        p[up] *= lam[up] / n[up]
        cdf[up] += p[up]
        up = up[(cdf[up] < u[up]) & (p[up] > 0.0)]
    # Too high: step down while P(N <= n - 1) >= u.
    down = np.flatnonzero((n > 0) & (cdf - p >= u))
    while down.size:
        cdf[down] -= p[down]
        p[down] *= n[down] / lam[down]
        n[down] -= 1.0
        down = down[(n[down] > 0) & (cdf[down] - p[down] >= u[down])]
    return n
