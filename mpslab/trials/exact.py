"""The two-sample failure test, and its exact size: one test for every comparison of failure rates.

Two sets of trials, ``fa`` of ``na`` and ``fb`` of ``nb`` failed, with the trial counts
fixed by the design: two independent binomials. ``failure_test`` gives the two-sided
p-value of **Barnard's exact test**, the unconditional test of that model: the
statistic is the pooled Wald z (as in ``scipy.stats.barnard_exact``, whose two
samples are the *columns* of ``[[fa, fb], [na - fa, nb - fb]]``), and the p-value is
the largest, over the unknown common rate r, of P_r(|z| >= |z observed|).

That largest value is computed here rather than by scipy: scipy finds it with
``shgo`` from a few Sobol points, which can miss the peak (at 38 per side, 14 vs 23
failures, scipy gives p = 0.0471 where the sup, at r = 0.5, is 0.0505), and the
test's size then exceeds 5% (0.0505 at 38 per side). Here the tail probability
is evaluated on a grid of ``GRID`` rates for every rate at once (two small matrix
products), and every grid peak within 5% of the highest is refined by a bounded
scalar search. Near-ties of |z| (equal in exact arithmetic, apart by rounding)
count as ties, which can only raise p.

``failure_test`` asks in one canonical form (sides and failures/oks swapped to the
smallest tuple), so the p-value is exactly symmetric and ``pvalue_matrix`` computes
each distinct table once.

``exact_size(pvalue_matrix(na, nb))`` is the size of the test as implemented: the
probability, under a common true rate, that it calls a difference significant,
maximised over the rate. It is the sum of binomial probabilities of every rejecting
table, computed on a grid of rates and bounded from above between grid points (each
binomial term is bounded on an interval by its largest factors), so the sup lies in
``[grid_max, upper]`` with no gap left unchecked.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numpy as np

__all__ = [
    "GRID",
    "ExactSize",
    "failure_test",
    "pvalue_matrix",
    "exact_size",
    "monotone_violations",
]

GRID = 2001
_PEAKS = 4  # grid peaks refined per table (the highest, if within 5% of the top)
_TIE = 1e-9  # relative: |z| values this close are one value (exact ties differ only by rounding)


def _check(fa: int, na: int, fb: int, nb: int) -> None:
    for name, v in (("fa", fa), ("na", na), ("fb", fb), ("nb", nb)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"failure_test: {name}={v!r} must be an integer")
    if na < 1 or nb < 1:
        raise ValueError(f"failure_test: na={na}, nb={nb}: each side needs at least one trial")
    if not (0 <= fa <= na and 0 <= fb <= nb):
        raise ValueError(f"failure_test: failures {fa}/{na}, {fb}/{nb} must lie between 0 and the trials")


@functools.lru_cache(maxsize=64)
def _setup(na: int, nb: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """|z| of every table, the rate grid, and both sides' binomial probabilities on it."""
    x1, x2 = np.arange(na + 1)[:, None], np.arange(nb + 1)[None, :]
    p1, p2 = x1 / na, x2 / nb
    pooled = (x1 + x2) / (na + nb)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.abs((p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1 / na + 1 / nb)))
    z[p1 == p2] = 0.0
    rates = np.linspace(0.0, 1.0, GRID)
    return z, rates, _pmf(na, rates), _pmf(nb, rates)


def _pmf(n: int, rates: np.ndarray) -> np.ndarray:
    """Binomial probabilities of 0..n at each rate in ``rates`` (rows), in logs for large n."""
    i = np.arange(n + 1)[None, :]
    r = np.asarray(rates, dtype=float)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        log = _log_binom_coef(n)[None, :] + np.where(i > 0, i * np.log(r), 0.0)
        log = log + np.where(n - i > 0, (n - i) * np.log1p(-r), 0.0)
    return np.exp(log)


@functools.lru_cache(maxsize=65536)
def _canonical_p(na: int, fa: int, nb: int, fb: int) -> float:
    z, rates, pa, pb = _setup(na, nb)
    region = (z >= z[fa, fb] * (1.0 - _TIE)).astype(float)

    def tail(r: np.ndarray) -> np.ndarray:
        return np.einsum("ki,ij,kj->k", _pmf(na, r), region, _pmf(nb, r))

    on_grid = np.einsum("gi,gi->g", pa @ region, pb)
    best = float(on_grid.max())
    left = np.concatenate(([True], on_grid[1:] >= on_grid[:-1]))
    right = np.concatenate((on_grid[:-1] >= on_grid[1:], [True]))
    peaks = np.flatnonzero(left & right & (on_grid >= 0.95 * best))
    peaks = peaks[np.argsort(on_grid[peaks])[::-1][:_PEAKS]]
    lo = rates[np.maximum(peaks - 1, 0)]
    hi = rates[np.minimum(peaks + 1, len(rates) - 1)]
    golden = (math.sqrt(5.0) - 1.0) / 2.0
    for _ in range(40):  # golden-section search on every bracket at once: width 0.618**40 (4e-9) of two grid steps
        x1, x2 = hi - golden * (hi - lo), lo + golden * (hi - lo)
        both = tail(np.concatenate((x1, x2)))
        up = both[: len(x1)] < both[len(x1) :]
        lo, hi = np.where(up, x1, lo), np.where(up, hi, x2)
    best = max(best, float(tail((lo + hi) / 2.0).max()))
    return min(1.0, best)


def failure_test(fa: int, na: int, fb: int, nb: int) -> float:
    """Two-sided p-value of Barnard's exact test that a (``fa`` of ``na``) and b fail at the same rate."""
    _check(fa, na, fb, nb)
    fa, na, fb, nb = int(fa), int(na), int(fb), int(nb)
    if fa + fb == 0 or fa + fb == na + nb:
        return 1.0  # no failure (or nothing but failures) on either side: no evidence of a difference
    forms = (
        (na, fa, nb, fb),
        (na, na - fa, nb, nb - fb),
        (nb, fb, na, fa),
        (nb, nb - fb, na, na - fa),
    )
    return _canonical_p(*min(forms))


def pvalue_matrix(na: int, nb: int) -> np.ndarray:
    """``P[fa, fb]``: ``failure_test(fa, na, fb, nb)`` for every table, each distinct one computed once."""
    out = np.empty((na + 1, nb + 1))
    for fa in range(na + 1):
        for fb in range(nb + 1):
            out[fa, fb] = failure_test(fa, na, fb, nb)
    return out


class ExactSize(NamedTuple):
    """The sup over the common rate of P(reject) lies in ``[grid_max, upper]``; ``worst_rate`` attains ``grid_max``."""

    grid_max: float
    upper: float
    worst_rate: float


@functools.lru_cache(maxsize=256)
def _log_binom_coef(n: int) -> np.ndarray:
    out = np.array([math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) for i in range(n + 1)])
    out.setflags(write=False)  # shared by every caller through the cache
    return out


def _size_on(reject: np.ndarray, rates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """P(reject) at each rate, and its upper bound on each interval between consecutive rates."""
    na, nb = reject.shape[0] - 1, reject.shape[1] - 1
    at = np.einsum("gi,gi->g", _pmf(na, rates) @ reject, _pmf(nb, rates))
    lo, hi = rates[:-1, None], rates[1:, None]

    def bound(n: int) -> np.ndarray:  # C(n, f) hi**f (1 - lo)**(n - f): each factor at its largest
        i = np.arange(n + 1)[None, :]
        with np.errstate(divide="ignore", invalid="ignore"):
            log = _log_binom_coef(n)[None, :] + np.where(i > 0, i * np.log(hi), 0.0)
            log = log + np.where(n - i > 0, (n - i) * np.log1p(-lo), 0.0)
        return np.exp(log)

    between = np.einsum("gi,gi->g", bound(na) @ reject, bound(nb))
    return at, between


def exact_size(pvalues: np.ndarray, alpha: float = 0.05, *, grid: int = 20000, refine: int = 100) -> ExactSize:
    """The size of "significant when p < ``alpha``" for the tables of ``pvalues`` (``pvalue_matrix``).

    Under a common true rate r, P(reject) = sum over rejecting tables of
    Binom(fa; na, r) * Binom(fb; nb, r). It is computed at r = k / ``grid``; on each
    interval [r_k, r_k+1] every term is at most C(n, f) r_k+1^f (1 - r_k)^(n - f) per side,
    which bounds the sup between grid points from above. Intervals whose bound exceeds
    the largest value found are cut into ``refine`` pieces and bounded again.
    """
    reject = (pvalues < alpha).astype(float)
    rates = np.linspace(0.0, 1.0, grid + 1)
    at, between = _size_on(reject, rates)
    k = int(np.argmax(at))
    best, best_rate = float(at[k]), float(rates[k])
    upper = best
    for j in np.flatnonzero(between > best):
        fine = np.linspace(rates[j], rates[j + 1], refine + 1)
        fine_at, fine_between = _size_on(reject, fine)
        if fine_at.max() > best:
            best, best_rate = float(fine_at.max()), float(fine[np.argmax(fine_at)])
        upper = max(upper, float(fine_between.max()))
    return ExactSize(best, max(upper, best), best_rate)


def monotone_violations(pvalues: np.ndarray, alpha: float = 0.05) -> list[tuple[int, int, str]]:
    """Tables where one more failure on the side that already fails at least as often loses significance.

    Returns ``(fa, fb, side)``: the table ``fa, fb`` is significant and the one with one
    more failure on ``side`` (``a`` or ``b``) is not.
    """
    na, nb = pvalues.shape[0] - 1, pvalues.shape[1] - 1
    sig = pvalues < alpha
    out = []
    for fa in range(na + 1):
        for fb in range(nb + 1):
            if not sig[fa, fb]:
                continue
            if fb < nb and fb * na >= fa * nb and not sig[fa, fb + 1]:
                out.append((fa, fb, "b"))
            if fa < na and fa * nb >= fb * na and not sig[fa + 1, fb]:
                out.append((fa, fb, "a"))
    return out
