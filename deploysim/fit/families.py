"""The fitted families, each with a 95% interval and the posterior `monte_carlo(parameter_uncertainty=True)`
draws from (docs/fit.md, "What is fitted"):

- a probability (change failure rate, pre-production catch rate): Beta posterior from the Jeffreys
  prior Beta(1/2, 1/2), equal-tailed interval;
- a rate (changes per week, faults per month): Gamma posterior of a Poisson rate from the Jeffreys
  prior, equal-tailed interval;
- a duration: lognormal and exponential (the families a scenario can hold) and gamma and Weibull
  (for comparison), compared by AIC; the lognormal's median and sigma have exact intervals (t and
  chi-square), which are also the Bayesian intervals under the prior 1/sigma.
- a duration some of whose values are only known to be longer than a time (right-censored: people
  had not found a bad change when an alarm reverted it): maximum likelihood over both, with
  profile-likelihood intervals for the median and sigma.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

LEVEL = 0.95
Q_LOW, Q_HIGH = (1 - LEVEL) / 2, 1 - (1 - LEVEL) / 2
JEFFREYS = 0.5


@dataclass(frozen=True)
class Proportion:
    """k successes out of n trials: Beta(k + 1/2, n - k + 1/2)."""

    k: int
    n: int

    @property
    def a(self) -> float:
        return self.k + JEFFREYS

    @property
    def b(self) -> float:
        return self.n - self.k + JEFFREYS

    @property
    def value(self) -> float:
        """The posterior median."""
        return float(stats.beta.median(self.a, self.b))

    @property
    def interval(self) -> tuple[float, float]:
        return float(stats.beta.ppf(Q_LOW, self.a, self.b)), float(stats.beta.ppf(Q_HIGH, self.a, self.b))

    def posterior(self) -> dict[str, Any]:
        return {"beta": [round(self.a, 6), round(self.b, 6)]}


@dataclass(frozen=True)
class Rate:
    """k events over `exposure` units of time (weeks, months): Gamma(k + 1/2, exposure)."""

    k: int
    exposure: float

    @property
    def shape(self) -> float:
        return self.k + JEFFREYS

    @property
    def value(self) -> float:
        """The observed rate k / exposure (the posterior median when nothing was seen, which is not 0)."""
        return self.k / self.exposure if self.k else float(stats.gamma.median(self.shape, scale=1 / self.exposure))

    @property
    def interval(self) -> tuple[float, float]:
        return (float(stats.gamma.ppf(Q_LOW, self.shape, scale=1 / self.exposure)),
                float(stats.gamma.ppf(Q_HIGH, self.shape, scale=1 / self.exposure)))

    def posterior(self) -> dict[str, Any]:
        return {"gamma": [round(self.shape, 6), round(self.exposure, 9)]}


@dataclass(frozen=True)
class FamilyFit:
    """One family's maximum-likelihood fit: its scipy distribution (loc 0) and its AIC."""

    family: str  # "lognormal" | "exponential" | "gamma" | "weibull"
    dist: Any = field(repr=False)  # a frozen scipy.stats distribution
    aic: float


@dataclass(frozen=True)
class DurationFit:
    """Durations in seconds: every family's fit, the one a scenario holds, and its intervals."""

    values_s: np.ndarray = field(repr=False)
    families: tuple[FamilyFit, ...]
    chosen: str  # "lognormal", "exponential" or "fixed" (all values equal)
    replaced_zeros: int = 0  # values <= 0 raised to the smallest positive one (delays recorded as 0)
    censored_s: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)  # known only to be longer
    # Censored lognormal, by maximum likelihood: (mu, sigma, standard error of mu, standard error of log sigma)
    # and the profile-likelihood 95% intervals of mu and of sigma.
    mle: tuple[float, float, float, float] | None = None
    profile: tuple[tuple[float, float], tuple[float, float]] | None = None

    @property
    def n(self) -> int:
        return int(self.values_s.size)

    @property
    def best(self) -> FamilyFit:
        return min(self.families, key=lambda f: f.aic)

    @property
    def log_mean(self) -> float:
        return self.mle[0] if self.mle else float(np.mean(np.log(self.values_s)))

    @property
    def log_sd(self) -> float:
        if self.mle:
            return self.mle[1]
        return float(np.std(np.log(self.values_s), ddof=1)) if self.n > 1 else 0.0

    @property
    def median_s(self) -> float:
        """The chosen family's median (lognormal: exp of the mean log)."""
        if self.chosen == "fixed":
            return float(self.values_s[0])
        if self.chosen == "exponential":
            return float(np.mean(self.values_s) * math.log(2))
        return math.exp(self.log_mean)

    @property
    def mean_s(self) -> float:
        """The exponential's mean: total time over the values observed (censored ones add their time)."""
        return float((np.sum(self.values_s) + np.sum(self.censored_s)) / self.n)

    @property
    def median_interval(self) -> tuple[float, float]:
        if self.chosen == "fixed":
            return self.median_s, self.median_s
        if self.chosen == "exponential":
            lo, hi = self.mean_interval
            return lo * math.log(2), hi * math.log(2)
        if self.profile:
            return math.exp(self.profile[0][0]), math.exp(self.profile[0][1])
        half = stats.t.ppf(Q_HIGH, self.n - 1) * self.log_sd / math.sqrt(self.n)
        return math.exp(self.log_mean - half), math.exp(self.log_mean + half)

    @property
    def mean_interval(self) -> tuple[float, float]:
        """Exponential mean: 2 sum / chi-square(2n)."""
        total = float(np.sum(self.values_s) + np.sum(self.censored_s))
        return 2 * total / stats.chi2.ppf(Q_HIGH, 2 * self.n), 2 * total / stats.chi2.ppf(Q_LOW, 2 * self.n)

    @property
    def sigma_interval(self) -> tuple[float, float]:
        if self.chosen != "lognormal":
            return 0.0, 0.0
        if self.profile:
            return self.profile[1]
        df = self.n - 1
        s = self.log_sd
        return s * math.sqrt(df / stats.chi2.ppf(Q_HIGH, df)), s * math.sqrt(df / stats.chi2.ppf(Q_LOW, df))

    def scenario_value(self) -> dict[str, Any]:
        """The distribution as a scenario file holds it (seconds)."""
        if self.chosen == "fixed":
            return {"dist": "fixed", "value": float(self.values_s[0])}
        if self.chosen == "exponential":
            return {"dist": "exponential", "mean": self.mean_s}
        return {"dist": "lognormal", "median": self.median_s, "sigma": self.log_sd}

    def posterior(self) -> dict[str, Any] | None:
        if self.chosen == "lognormal":
            # Censored: the sample size whose uncensored posterior has the same spread of the mean log.
            n = max(2, round((self.log_sd / self.mle[2]) ** 2)) if self.mle else self.n
            return {"lognormal": {"n": n, "mean_log": round(self.log_mean, 9), "sd_log": round(self.log_sd, 9)}}
        if self.chosen == "exponential":
            total = float(np.sum(self.values_s) + np.sum(self.censored_s))
            return {"exponential": {"n": self.n, "total_s": round(total, 6)}}
        return None

    def cdf(self, x: np.ndarray) -> np.ndarray:
        """The chosen family's CDF at x seconds."""
        if self.chosen == "fixed":
            return (x >= self.values_s[0]).astype(float)
        if self.chosen == "exponential":
            return stats.expon.cdf(x, scale=self.mean_s)
        return stats.lognorm.cdf(x, self.log_sd, scale=self.median_s)

    def ppf(self, q: np.ndarray) -> np.ndarray:
        if self.chosen == "fixed":
            return np.full_like(q, self.values_s[0], dtype=float)
        if self.chosen == "exponential":
            return stats.expon.ppf(q, scale=self.mean_s)
        return stats.lognorm.ppf(q, self.log_sd, scale=self.median_s)


SCENARIO_FAMILIES = ("lognormal", "exponential")


def fit_durations(values_s: np.ndarray | list[float], compare: bool = True,
                  censored_s: np.ndarray | list[float] | None = None) -> DurationFit:
    """Fit every family to durations (seconds); the scenario gets the better of lognormal and
    exponential by AIC (`fixed` when every value is the same). `compare=False` leaves out the gamma
    and Weibull fits, which only the report shows. `censored_s`: durations known only to be longer
    than these (fitted by maximum likelihood, lognormal against exponential)."""
    cens = np.asarray(censored_s if censored_s is not None else [], dtype=float)
    cens = cens[np.isfinite(cens) & (cens > 0)]
    if cens.size:
        return _fit_censored(np.asarray(values_s, dtype=float), cens)
    x = np.asarray(values_s, dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        raise ValueError("no durations to fit")
    positive = x[x > 0]
    zeros = int((x <= 0).sum())
    if zeros:
        x = np.where(x > 0, x, positive.min() if positive.size else 1.0)
    if np.ptp(x) == 0 or x.size < 2:
        return DurationFit(x, (), "fixed", zeros)
    logs = np.log(x)
    mu, sd0 = float(logs.mean()), float(logs.std(ddof=0))
    fits = [FamilyFit("lognormal", stats.lognorm(sd0, scale=math.exp(mu)),
                      _aic(stats.lognorm.logpdf(x, sd0, scale=math.exp(mu)), 2)),
            FamilyFit("exponential", stats.expon(scale=x.mean()), _aic(stats.expon.logpdf(x, scale=x.mean()), 1))]
    for family, dist in (("gamma", stats.gamma), ("weibull", stats.weibull_min)) if compare else ():
        try:
            shape, _, scale = dist.fit(x, floc=0)
        except (ValueError, RuntimeError, FloatingPointError):  # a family that cannot be fitted is left out
            continue
        fits.append(FamilyFit(family, dist(shape, scale=scale), _aic(dist.logpdf(x, shape, scale=scale), 2)))
    chosen = min((f for f in fits if f.family in SCENARIO_FAMILIES), key=lambda f: f.aic).family
    return DurationFit(x, tuple(fits), chosen, zeros)


def _aic(logpdf: np.ndarray, k: int) -> float:
    total = float(np.sum(logpdf))
    return 2 * k - 2 * total if math.isfinite(total) else math.inf


def _fit_censored(values_s: np.ndarray, censored_s: np.ndarray) -> DurationFit:
    """Lognormal and exponential by maximum likelihood over observed and right-censored durations."""
    from scipy import optimize

    x = values_s[np.isfinite(values_s)]
    x = np.where(x > 0, x, x[x > 0].min() if (x > 0).any() else 1.0)
    logs, log_c = np.log(x), np.log(censored_s)

    def nll(theta: np.ndarray) -> float:
        mu, log_sigma = float(theta[0]), float(theta[1])
        sigma = math.exp(log_sigma)
        return -float(np.sum(stats.norm.logpdf(logs, mu, sigma) - logs) + np.sum(stats.norm.logsf(log_c, mu, sigma)))

    start = np.array([logs.mean(), math.log(max(logs.std(ddof=1), 0.05))])
    best = optimize.minimize(nll, start, method="Nelder-Mead", options={"xatol": 1e-8, "fatol": 1e-10,
                                                                        "maxiter": 4000})
    mu, log_sigma = (float(v) for v in best.x)
    cov = np.linalg.inv(_hessian(nll, best.x))
    se_mu, se_log_sigma = math.sqrt(max(cov[0, 0], 0.0)), math.sqrt(max(cov[1, 1], 0.0))
    mean = (x.sum() + censored_s.sum()) / x.size
    exp_ll = float(np.sum(stats.expon.logpdf(x, scale=mean)) + np.sum(stats.expon.logsf(censored_s, scale=mean)))
    fits = (FamilyFit("lognormal", stats.lognorm(math.exp(log_sigma), scale=math.exp(mu)), 2 * 2 + 2 * best.fun),
            FamilyFit("exponential", stats.expon(scale=mean), 2 * 1 - 2 * exp_ll))
    chosen = min(fits, key=lambda f: f.aic).family
    if chosen != "lognormal":
        return DurationFit(x, fits, chosen, 0, censored_s)
    mu_interval = _profile_interval(nll, best.x, best.fun, 0, se_mu)
    log_sigma_interval = _profile_interval(nll, best.x, best.fun, 1, se_log_sigma)
    return DurationFit(x, fits, chosen, 0, censored_s, (mu, math.exp(log_sigma), se_mu, se_log_sigma),
                       (mu_interval, (math.exp(log_sigma_interval[0]), math.exp(log_sigma_interval[1]))))


def _profile_interval(nll: Any, at: np.ndarray, minimum: float, index: int, se: float) -> tuple[float, float]:
    """Where the profile negative log-likelihood of parameter `index` rises by half the 95% chi-square
    quantile (one degree of freedom) above its minimum, on each side of the estimate."""
    from scipy import optimize

    rise = stats.chi2.ppf(LEVEL, 1) / 2
    other = 1 - index
    guess = [float(at[other])]

    def excess(value: float) -> float:
        def with_other(v: float) -> float:
            theta = np.empty(2)
            theta[index], theta[other] = value, v
            return nll(theta)
        found = optimize.minimize_scalar(with_other, bracket=(guess[0] - 0.5, guess[0] + 0.5))
        guess[0] = float(found.x)
        return float(found.fun) - minimum - rise

    ends = []
    for sign in (-1.0, 1.0):
        guess[0] = float(at[other])
        step = max(se, 1e-3)
        far = float(at[index]) + sign * 2 * step
        while excess(far) < 0 and abs(far - at[index]) < 50 * step:
            far += sign * 2 * step
        guess[0] = float(at[other])
        ends.append(optimize.brentq(excess, float(at[index]), far) if excess(far) > 0 else far)
    return ends[0], ends[1]


def _hessian(f: Any, at: np.ndarray, step: float = 1e-4) -> np.ndarray:
    """The matrix of second derivatives of f at `at`, by central differences."""
    k = at.size
    out = np.empty((k, k))
    for i in range(k):
        for j in range(k):
            e_i, e_j = np.eye(k)[i] * step, np.eye(k)[j] * step
            corners = f(at + e_i + e_j) - f(at + e_i - e_j) - f(at - e_i + e_j) + f(at - e_i - e_j)
            out[i, j] = corners / (4 * step ** 2)
    return out
