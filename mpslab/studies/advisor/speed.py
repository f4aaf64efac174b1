"""What a few throughput repeats can say: the median's interval at its exact level, and which speeds differ.

The advisor measures each configuration ``repeats`` times (3 by default). Both statements
below hold exactly for any continuous distribution of independent repeats, however few:

    interval   of k sorted repeats x(1) <= ... <= x(k), ``[x(j), x(k+1-j)]`` covers the true
               median with probability 1 - 2 P(Bin(k, 1/2) <= j - 1). The advisor shows the
               narrowest such interval whose coverage reaches 95%; below 6 repeats none does,
               and it shows the range ``[x(1), x(k)]`` named as such, with its exact coverage
               (3 repeats: 75%, 5 repeats: 93.75%). The name printed is always the level computed.
    separated  a configuration is "slower than the pick" only where an exact two-sided
               Mann-Whitney test on the repeats rejects at 5% after Holm over every such
               comparison in the table (the direction is chosen from the medians, so one-sided
               would overstate). With 3 vs 3 repeats the smallest possible p is 0.10: nothing
               separates, and the table says "tied with the pick within noise".

Among configurations whose speeds the data cannot tell apart the advisor keeps one rule:
it tests them in order of median speed (the best estimate, not a proven ranking) and
recommends the first whose failure bound qualifies.
Not here: running anything, the table (``decide``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from mpslab.trials.stats import format_percent

__all__ = [
    "SpeedInterval",
    "median_interval",
    "coverage",
    "interval_name",
    "repeats_for_confidence",
    "name_for_repeats",
    "smallest_p",
    "holm_separated",
    "round_outward",
    "SEPARATION_ALPHA",
    "TIED",
    "SLOWER",
]

SEPARATION_ALPHA = 0.05
TIED = "not tested: tied with the pick within noise"
SLOWER = "not tested: slower than the pick"


@dataclass(frozen=True)
class SpeedInterval:
    """``[low, high]`` = order statistics ``j`` and ``n + 1 - j`` of ``n`` repeats; ``level`` its exact coverage."""

    low: float
    high: float
    level: float  # probability that an interval built this way covers the true median
    n: int
    j: int

    @property
    def is_range(self) -> bool:
        return self.j == 1

    @property
    def name(self) -> str:
        return interval_name(self.n, self.level, self.j)


def round_outward(x: float, direction: str, digits: int | None = None) -> float:
    """``x`` rounded ``down`` (a lower bound) or ``up`` (an upper bound): to an integer, or to ``digits``
    significant digits. A printed bound never lies inside the interval it came from."""
    if not math.isfinite(x) or x == 0:
        return x
    step = 1.0 if digits is None else 10.0 ** (math.floor(math.log10(abs(x))) - digits + 1)
    units = math.floor(x / step) if direction == "down" else math.ceil(x / step)
    return units * step if step >= 1 else units / round(1 / step)


def coverage(n: int, j: int) -> float:
    """Exact coverage of ``[x(j), x(n+1-j)]`` for the median of a continuous distribution, n iid repeats."""
    if n < 2 or not 1 <= j <= n // 2:
        return math.nan
    tail = sum(math.comb(n, i) for i in range(j)) / 2.0**n
    return 1.0 - 2.0 * tail


def _pick_j(n: int, confidence: float) -> int:
    best = 1
    for j in range(1, n // 2 + 1):
        if coverage(n, j) >= confidence:
            best = j
    return best


def median_interval(values: Iterable[float], confidence: float = 0.95) -> SpeedInterval:
    """The narrowest order-statistic interval of the median with coverage >= ``confidence``, else the range.

    NaN and None are dropped; fewer than two values give NaN bounds (one run says nothing about spread).
    """
    x = np.sort(np.asarray([v for v in values if v is not None], dtype=float))
    x = x[np.isfinite(x)]
    n = int(x.size)
    if n < 2:
        return SpeedInterval(math.nan, math.nan, math.nan, n, 0)
    j = _pick_j(n, confidence)
    return SpeedInterval(float(x[j - 1]), float(x[n - j]), coverage(n, j), n, j)


def interval_name(n: int, level: float, j: int = 1) -> str:
    """What the interval is, in words that match it: ``range of 3 (75% interval)`` or ``96% CI``.

    The level is rounded down: a printed confidence never overstates the one computed.
    """
    if n < 2 or not math.isfinite(level):
        return "no interval (fewer than 2 repeats)"
    pct = format_percent(level, "down")
    if j == 1 and level < 0.95:
        return f"range of {n} ({pct} interval)"
    return f"{pct} CI"


def name_for_repeats(n: int, confidence: float = 0.95) -> str:
    """The name ``median_interval`` gives the interval of ``n`` repeats (no values needed)."""
    if n < 2:
        return interval_name(n, math.nan)
    j = _pick_j(n, confidence)
    return interval_name(n, coverage(n, j), j)


def repeats_for_confidence(confidence: float = 0.95) -> int:
    """The fewest repeats whose range covers the median with at least ``confidence`` (6 for 95%)."""
    n = 2
    while coverage(n, 1) < confidence:
        n += 1
    return n


def smallest_p(n1: int, n2: int) -> float:
    """The smallest exact two-sided Mann-Whitney p-value possible with n1 vs n2 repeats (3 vs 3: 0.10)."""
    if n1 < 1 or n2 < 1:
        return 1.0
    return min(1.0, 2.0 / math.comb(n1 + n2, n1))


def _p_value(a: Sequence[float], b: Sequence[float]) -> float:
    from scipy.stats import mannwhitneyu

    a = [float(v) for v in a if v is not None and math.isfinite(float(v))]
    b = [float(v) for v in b if v is not None and math.isfinite(float(v))]
    if not a or not b:
        return 1.0
    # exact null distribution: few repeats, and ties between float timings are rare (scipy's exact
    # method ignores ties, which only matters when two repeats read the same to the last bit)
    return float(mannwhitneyu(a, b, alternative="two-sided", method="exact").pvalue)


def holm_separated(
    pick: Sequence[float], others: dict[str, Sequence[float]], alpha: float = SEPARATION_ALPHA
) -> dict[str, tuple[bool, float]]:
    """For each other configuration: (separated from the pick?, its exact two-sided Mann-Whitney p).

    Holm's step-down rule over all of ``others`` keeps the chance of calling any tied
    configuration "slower" at most ``alpha`` together.
    """
    ps = {k: _p_value(pick, v) for k, v in others.items()}
    order = sorted(ps, key=lambda k: ps[k])
    m = len(order)
    out = {k: (False, p) for k, p in ps.items()}
    for i, k in enumerate(order):
        if ps[k] <= alpha / (m - i):
            out[k] = (True, ps[k])
        else:
            break
    return out
