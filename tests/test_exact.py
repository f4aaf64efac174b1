"""The failure test (Barnard's, two-sided): the table read the right way, its exact size, monotone verdicts.

Truth is computed here independently: the tail probability of every table summed on a fine grid of the
common rate (no optimiser), and binomial probabilities from ``math.comb``.
"""

from __future__ import annotations

import csv
import math
import os

import numpy as np
import pytest

from mpslab.studies.compare import failure_test
from mpslab.trials.exact import exact_size, monotone_violations, pvalue_matrix
from mpslab.trials.stats import compare_rates

TABLE = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "stats", "barnard_exact_size.csv"
)


def _pmf(k: int, n: int, r: float) -> float:
    return math.comb(n, k) * r**k * (1 - r) ** (n - k)


def _barnard_brute(fa: int, na: int, fb: int, nb: int, points: int = 40001) -> float:
    """sup over r of P_r(|z| >= |z_obs|), z the pooled Wald statistic, on a fine grid (a lower bound of the sup)."""
    x1, x2 = np.arange(na + 1)[:, None], np.arange(nb + 1)[None, :]
    pooled = (x1 + x2) / (na + nb)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.abs((x1 / na - x2 / nb) / np.sqrt(pooled * (1 - pooled) * (1 / na + 1 / nb)))
    z[x1 * nb == x2 * na] = 0
    region = z >= z[fa, fb] - 1e-9
    r = np.linspace(0, 1, points)[:, None]
    ca = np.array([math.comb(na, i) for i in range(na + 1)], dtype=float)
    cb = np.array([math.comb(nb, i) for i in range(nb + 1)], dtype=float)
    pa = ca * r ** np.arange(na + 1) * (1 - r) ** (na - np.arange(na + 1))
    pb = cb * r ** np.arange(nb + 1) * (1 - r) ** (nb - np.arange(nb + 1))
    return float(np.einsum("gi,ij,gj->g", pa, region.astype(float), pb).max())


@pytest.mark.parametrize(
    "fa, na, fb, nb",
    [(0, 20, 4, 20), (0, 20, 5, 20), (2, 20, 1, 20), (3, 30, 9, 30), (14, 38, 23, 38), (1, 10, 7, 25)],
)
def test_failure_test_is_barnards_p_with_the_samples_in_columns(fa, na, fb, nb):
    truth = _barnard_brute(fa, na, fb, nb)
    p = failure_test(fa, na, fb, nb)
    # the grid sup is a lower bound of the true sup; the refined one may lie a hair above it
    assert truth * (1 - 1e-9) <= p <= truth * (1 + 1e-6)


def test_one_more_failure_on_b_keeps_significance_0_of_20():
    # e74d8a7 read the table transposed: 0/20 vs 4/20 was p 0.0417, vs 5/20 p 0.0537
    assert failure_test(0, 20, 4, 20) == pytest.approx(0.03857, abs=5e-5)
    assert failure_test(0, 20, 5, 20) == pytest.approx(0.01671, abs=5e-5)


def test_power_at_20_per_side_0_against_20_percent():
    power = sum(_pmf(fb, 20, 0.2) for fb in range(21) if failure_test(0, 20, fb, 20) < 0.05)
    assert power == pytest.approx(0.589, abs=1e-3)  # e74d8a7: 0.414


@pytest.mark.parametrize("n", [12, 20])
def test_one_more_failure_never_turns_significant_into_not(n):
    for fa in range(n + 1):
        for fb in range(n):
            if fb * n >= fa * n and failure_test(fa, n, fb, n) < 0.05:
                assert failure_test(fa, n, fb + 1, n) < 0.05, (fa, fb)


def test_compare_rates_is_the_same_test():
    c = compare_rates((0, 20), (5, 20))
    assert c.p_value == failure_test(0, 20, 5, 20) and c.significant
    assert "Barnard exact" in c.verdict


def test_p_value_is_symmetric_in_sides_and_in_failures_and_oks():
    for fa, na, fb, nb in [(3, 17, 9, 23), (0, 12, 5, 30), (11, 20, 2, 20)]:
        p = failure_test(fa, na, fb, nb)
        assert failure_test(fb, nb, fa, na) == p
        assert failure_test(na - fa, na, nb - fb, nb) == p


def test_bad_counts_are_refused_in_one_line():
    with pytest.raises(ValueError, match="between 0 and the trials"):
        failure_test(11, 10, 0, 10)
    with pytest.raises(ValueError, match="at least one trial"):
        failure_test(0, 0, 0, 10)
    with pytest.raises(TypeError, match="integer"):
        failure_test(1.5, 10, 0, 10)


def _size_brute(p: np.ndarray, rates: np.ndarray) -> np.ndarray:
    na, nb = p.shape[0] - 1, p.shape[1] - 1
    rej = [(i, j) for i in range(na + 1) for j in range(nb + 1) if p[i, j] < 0.05]
    return np.array([sum(_pmf(i, na, r) * _pmf(j, nb, r) for i, j in rej) for r in rates])


@pytest.mark.parametrize("na, nb", [(10, 10), (13, 13), (10, 20)])
def test_exact_size_is_at_most_5_percent_and_bounds_the_sup(na, nb):
    p = pvalue_matrix(na, nb)
    size = exact_size(p, 0.05)
    assert size.grid_max <= size.upper <= 0.05
    assert monotone_violations(p) == []
    # the size at rates off the grid never exceeds the upper bound
    rates = np.random.default_rng(0).random(200)
    assert _size_brute(p, rates).max() <= size.upper
    assert _size_brute(p, np.array([size.worst_rate]))[0] == pytest.approx(size.grid_max, rel=1e-9)


def test_the_committed_size_table_covers_10_to_60_and_holds():
    with open(TABLE) as fh:
        rows = list(csv.DictReader(fh))
    pairs = {(int(r["na"]), int(r["nb"])) for r in rows}
    assert {(n, n) for n in range(10, 61)} <= pairs and len(pairs) > 51
    assert all(float(r["size_upper"]) <= 0.05 for r in rows)
    assert all(r["monotone_violations"] == "" for r in rows)
    fifty = next(r for r in rows if (r["na"], r["nb"]) == ("50", "50"))
    assert float(fifty["size_grid_max"]) == pytest.approx(0.0488, abs=5e-5)  # e74d8a7: 0.0536
    for r in rows:
        if (int(r["na"]), int(r["nb"])) in {(11, 11), (10, 20)}:
            p = pvalue_matrix(int(r["na"]), int(r["nb"]))
            size = exact_size(p, 0.05)
            assert f"{size.upper:.6f}" == r["size_upper"] and int((p < 0.05).sum()) == int(r["rejecting_tables"])
