"""The throughput ratio of two builds, with the design's unit: one paired value per interleaved round.

``mpslab compare`` runs a block of trials under a, then one under b, and swaps the
order each round, so drift in the machine falls on both sides of a round. Trials of
one round share that drift and are not independent; rounds are the unit. Each round
gives d = log(median ops/s of b's clean trials / median of a's). The ratio is
exp(Hodges-Lehmann estimate of the d's), and its interval is the exact one that
inverts the Wilcoxon signed-rank test (order statistics of the Walsh averages):
it covers at no less than the level it names when the d's are independent and
symmetric about the true log ratio.

The smallest two-sided p-value of an exact paired test over R rounds is 2 / 2**R,
so an interval at confidence c exists only from ``min_rounds(c)`` rounds on
(6 at 95%; 4 rounds can never reach p < 0.125). Below that the words say
"too few rounds" (or "too few clean trials" when rounds ran but too few of them
have a clean trial on both sides): no ratio interval is invented.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal

import numpy as np

__all__ = ["min_rounds", "signed_rank_counts", "round_log_ratios", "throughput_ratio"]


def min_rounds(confidence: float) -> int:
    """The fewest rounds whose exact paired interval at ``confidence`` exists: 2 / 2**R <= 1 - confidence."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence={confidence!r}: must lie between 0 and 1")
    r = 1
    while 2.0 / 2.0**r > 1.0 - confidence:
        r += 1
    return r


def signed_rank_counts(n: int) -> np.ndarray:
    """``c[s]``: how many of the 2**n sign patterns give the signed-rank sum s (s = 0 .. n(n+1)/2)."""
    counts = np.zeros(n * (n + 1) // 2 + 1, dtype=object)  # exact integers
    counts[0] = 1
    for rank in range(1, n + 1):
        shifted = np.zeros_like(counts)
        shifted[rank:] = counts[:-rank]
        counts = counts + shifted
    return counts


def _walsh_interval(d: np.ndarray, confidence: float) -> tuple[float, float, float]:
    n = len(d)
    i, j = np.triu_indices(n)
    walsh = np.sort((d[i] + d[j]) / 2.0)
    centre = float(np.median(walsh))
    below = np.cumsum(signed_rank_counts(n))  # 2**n * P(T+ <= s), exact integers
    tail = (1.0 - confidence) / 2.0
    k = int(sum(1 for c in below if c <= tail * 2**n))  # the largest k with P(T+ <= k - 1) <= tail
    if k < 1:
        raise ValueError(f"{n} rounds give no exact interval at {confidence:g}: need {min_rounds(confidence)}")
    return centre, float(walsh[k - 1]), float(walsh[len(walsh) - k])


def round_log_ratios(
    ops_a: Sequence[float], ops_b: Sequence[float], rounds_a: Sequence[int], rounds_b: Sequence[int]
) -> tuple[np.ndarray, int]:
    """Per round with a clean trial on both sides, log(median b / median a); and how many rounds ran at all."""
    if len(ops_a) != len(rounds_a) or len(ops_b) != len(rounds_b):
        raise ValueError("throughput_ratio: each side needs one round number per measurement")

    def by_round(ops: Sequence[float], rounds: Sequence[int]) -> dict[int, list[float]]:
        out: dict[int, list[float]] = {}
        for v, r in zip(ops, rounds):
            out.setdefault(int(r), [])
            if v is not None and math.isfinite(v) and v > 0:
                out[int(r)].append(float(v))
        return out

    a, b = by_round(ops_a, rounds_a), by_round(ops_b, rounds_b)
    ran = len(set(a) | set(b))
    d = [math.log(np.median(b[r]) / np.median(a[r])) for r in sorted(set(a) & set(b)) if a[r] and b[r]]
    return np.asarray(d, dtype=float), ran


def throughput_ratio(
    ops_a: Sequence[float],
    ops_b: Sequence[float],
    rounds_a: Sequence[int],
    rounds_b: Sequence[int],
    *,
    confidence: float = 0.95,
) -> tuple[float, float, float, str]:
    """Median ops/s of b over a by rounds: (ratio, low, high, words in pyperf's style).

    ``rounds_a`` / ``rounds_b`` give the interleaved round of each measurement (``nan``
    ops/s or a failed trial's missing value leave it out). Too few usable rounds give
    ``nan`` and words that start with ``n/a``.
    """
    d, ran = round_log_ratios(ops_a, ops_b, rounds_a, rounds_b)
    need = min_rounds(confidence)
    level = f"{confidence * 100:.3g}%"
    nan = math.nan
    if len(d) < need:
        why = "too few rounds" if ran < need else "too few clean trials"
        return (
            nan,
            nan,
            nan,
            f"n/a: {why} ({len(d)} of {ran} rounds have a clean trial on both sides; "
            f"an exact paired {level} interval needs {need})",
        )
    centre, lo, hi = _walsh_interval(d, confidence)
    ratio, low, high = math.exp(centre), math.exp(lo), math.exp(hi)
    how = f"{len(d)} rounds, {level} signed-rank interval"
    if low <= 1.0 <= high:
        return ratio, low, high, f"not significant ({_x(ratio)} [{_x(low, 'down')}, {_x(high, 'up')}]; {how})"
    if ratio >= 1.0:
        return ratio, low, high, f"b is {_x(ratio)} faster [{_x(low, 'down')}, {_x(high, 'up')}] ({how})"
    return ratio, low, high, f"b is {_x(1 / ratio)} slower [{_x(1 / high, 'down')}, {_x(1 / low, 'up')}] ({how})"


def _x(value: float, direction: str = "nearest") -> str:
    """A ratio with two decimals; an interval's ends rounded outward (``down`` for the low end, ``up`` for the high)."""
    mode = {"up": ROUND_CEILING, "down": ROUND_FLOOR, "nearest": ROUND_HALF_EVEN}[direction]
    return f"{Decimal(repr(float(value))).quantize(Decimal('0.01'), rounding=mode)}x"
