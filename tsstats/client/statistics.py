"""The statistics of a study, standard library only (the client side loads no NumPy): each command's mean,
standard deviation and 95 % confidence interval (Student's t), the ratio of two means with its interval and a
verdict (Welch's t-test at the 5 % level), and the warnings a reviewer would raise (outliers, a slow first trial,
a wide spread).

Student's t distribution is computed from the regularized incomplete beta function (a continued fraction, as in
Numerical Recipes §6.4); its quantiles by bisection. The ratio's interval is the delta method on the log of the
ratio with Welch-Satterthwaite degrees of freedom: asymmetric, always positive, exact enough from 3 trials up.
"""

from __future__ import annotations

import functools
import math
import statistics
from dataclasses import dataclass

LEVEL = 0.95  # the confidence of every interval
ALPHA = 0.05  # the significance level of every verdict
OUTLIER_Z = 3.5  # modified Z-score (Iglewicz and Hoaglin) beyond which a trial is an outlier
SLOW_FIRST = 1.5  # a first trial more than this times the median of the others is "much slower"
WIDE_SPREAD = 0.10  # σ above this share of the mean is a warning


def _betacf(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        even = m * (b - m) * x / ((qam + m2) * (a + m2))
        odd = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        for numerator in (even, odd):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-14:
            break
    return h


def incomplete_beta(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_two_sided_p(t: float, df: float) -> float:
    """P(|T| >= |t|) for Student's t with ``df`` degrees of freedom."""
    if math.isnan(t) or df <= 0:
        return math.nan
    if math.isinf(t):
        return 0.0
    return incomplete_beta(df / 2.0, 0.5, df / (df + t * t))


@functools.lru_cache(maxsize=1024)
def t_quantile(probability: float, df: float) -> float:
    """The ``probability`` quantile of Student's t (0.5 < probability < 1), by bisection of the two-sided tail;
    kept for the last 1,024 (probability, df) asked (a models table asks the same few degrees of freedom for
    every model and figure: 63 incomplete beta functions each)."""
    tail = 2.0 * (1.0 - probability)
    low, high = 0.0, 1.0
    while t_two_sided_p(high, df) > tail:
        high *= 2.0
    for _ in range(60):  # to about 1e-17 of the bracket
        middle = (low + high) / 2.0
        if t_two_sided_p(middle, df) > tail:
            low = middle
        else:
            high = middle
    return (low + high) / 2.0


@dataclass(frozen=True)
class Description:
    """n values: mean, standard deviation (n - 1), the mean's 95 % interval, min and max."""

    n: int
    mean: float
    stdev: float
    ci_low: float
    ci_high: float
    minimum: float
    maximum: float

    @property
    def relative_spread(self) -> float:
        return self.stdev / abs(self.mean) if self.mean else math.nan


def half_width(n: int, stdev: float) -> float:
    """Half the width of the 95 % interval of the mean of ``n`` values of standard deviation ``stdev``
    (Student's t with n - 1 degrees of freedom; n >= 2)."""
    return t_quantile(0.5 + LEVEL / 2.0, n - 1) * stdev / math.sqrt(n)


def describe(values: list[float]) -> Description:
    if not values:
        return Description(0, math.nan, math.nan, math.nan, math.nan, math.nan, math.nan)
    mean = statistics.fmean(values)
    if len(values) < 2:
        return Description(1, mean, math.nan, math.nan, math.nan, values[0], values[0])
    stdev = statistics.stdev(values)
    half = half_width(len(values), stdev)
    return Description(len(values), mean, stdev, mean - half, mean + half, min(values), max(values))


@dataclass(frozen=True)
class Ratio:
    """``other`` over ``base``: the ratio of their means, its spread (σ propagated, as hyperfine gives it), its 95 %
    interval, and Welch's t-test of the difference of the means (``p``, ``significant`` at the 5 % level)."""

    value: float
    spread: float
    ci_low: float
    ci_high: float
    p: float
    significant: bool

    @property
    def relative_half_width(self) -> float:
        """Half the interval's width over the ratio: what ``--target-ci`` compares."""
        return (self.ci_high - self.ci_low) / 2.0 / self.value if self.value else math.inf


def welch(base: list[float], other: list[float]) -> tuple[float, float]:
    """(t, degrees of freedom) of Welch's t-test of mean(other) - mean(base)."""
    a, b = describe(base), describe(other)
    if a.n < 2 or b.n < 2:
        return math.nan, math.nan
    va, vb = a.stdev ** 2 / a.n, b.stdev ** 2 / b.n
    if va + vb == 0:
        return (0.0 if a.mean == b.mean else math.copysign(math.inf, b.mean - a.mean)), float(a.n + b.n - 2)
    df = (va + vb) ** 2 / ((va ** 2 / (a.n - 1) if va else 0.0) + (vb ** 2 / (b.n - 1) if vb else 0.0))
    return (b.mean - a.mean) / math.sqrt(va + vb), df


def ratio(base: list[float], other: list[float]) -> Ratio:
    a, b = describe(base), describe(other)
    if a.n < 2 or b.n < 2 or a.mean <= 0 or b.mean <= 0:
        value = b.mean / a.mean if a.n and b.n and a.mean else math.nan
        return Ratio(value, math.nan, math.nan, math.nan, math.nan, False)
    value = b.mean / a.mean
    spread = value * math.sqrt((a.stdev / a.mean) ** 2 + (b.stdev / b.mean) ** 2)
    t, df = welch(base, other)
    p = t_two_sided_p(t, df)
    log_se = math.sqrt(a.stdev ** 2 / (a.n * a.mean ** 2) + b.stdev ** 2 / (b.n * b.mean ** 2))
    if log_se == 0:
        return Ratio(value, spread, value, value, p, p < ALPHA)
    ra, rb = (a.stdev / a.mean) ** 2 / a.n, (b.stdev / b.mean) ** 2 / b.n
    log_df = (ra + rb) ** 2 / ((ra ** 2 / (a.n - 1) if ra else 0.0) + (rb ** 2 / (b.n - 1) if rb else 0.0))
    half = t_quantile(0.5 + LEVEL / 2.0, log_df) * log_se
    return Ratio(value, spread, value * math.exp(-half), value * math.exp(half), p, p < ALPHA)


def outliers(values: list[float]) -> list[int]:
    """Indexes of the values whose modified Z-score, 0.6745 |x - median| / MAD, exceeds 3.5 (from 5 values)."""
    if len(values) < 5:
        return []
    median = statistics.median(values)
    mad = statistics.median([abs(value - median) for value in values])
    if mad == 0:
        return []
    return [index for index, value in enumerate(values) if 0.6745 * abs(value - median) / mad > OUTLIER_Z]


def slow_first(values: list[float]) -> bool:
    """Whether the first value is more than ``SLOW_FIRST`` times the median of the others (caches filled by it)."""
    return len(values) >= 3 and values[0] > SLOW_FIRST * statistics.median(values[1:])
