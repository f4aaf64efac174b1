"""Properties of failure-rate intervals (hypothesis), checked against formulas written out here.

The interval ends are recomputed from the beta quantiles (Clopper-Pearson) with
``scipy.special.betaincinv`` and from the closed form (Wilson), not through the
``binomtest(...).proportion_ci`` call that ``mpslab.trials.stats`` makes.
"""

import math

from hypothesis import assume, given
from hypothesis import strategies as st
from scipy.special import betaincinv, ndtri

from mpslab.trials.stats import failure_rate

counts = st.integers(min_value=1, max_value=400).flatmap(
    lambda n: st.tuples(st.integers(min_value=0, max_value=n), st.just(n))
)
confidences = st.sampled_from([0.8, 0.9, 0.95, 0.99])
methods = st.sampled_from(["exact", "wilson"])


def _clopper_pearson(k: int, n: int, conf: float) -> tuple[float, float]:
    if k == 0:  # one-sided upper bound
        return 0.0, float(betaincinv(1, n, conf))
    if k == n:  # one-sided lower bound
        return float(betaincinv(n, 1, 1 - conf)), 1.0
    a = 1 - conf
    return float(betaincinv(k, n - k + 1, a / 2)), float(betaincinv(k + 1, n - k, 1 - a / 2))


def _wilson(k: int, n: int, conf: float) -> tuple[float, float]:
    one_sided = k in (0, n)
    z = float(ndtri(conf if one_sided else 1 - (1 - conf) / 2))
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    low, high = centre - half, centre + half
    if k == 0:
        return 0.0, high
    if k == n:
        return low, 1.0
    return low, high


@given(counts, confidences, methods)
def test_the_interval_contains_its_estimate(kn, conf, method):
    k, n = kn
    r = failure_rate((k, n), confidence=conf, method=method)
    assert r.low <= r.rate <= r.high
    assert 0.0 <= r.low and r.high <= 1.0
    assert r.rate == k / n


@given(counts, confidences, methods, st.integers(min_value=2, max_value=8))
def test_for_a_fixed_proportion_the_interval_does_not_widen_with_more_trials(kn, conf, method, m):
    k, n = kn
    small = failure_rate((k, n), confidence=conf, method=method)
    large = failure_rate((k * m, n * m), confidence=conf, method=method)
    assert large.high - large.low <= small.high - small.low + 1e-12


@given(counts, confidences)
def test_clopper_pearson_ends_are_the_beta_quantiles(kn, conf):
    k, n = kn
    r = failure_rate((k, n), confidence=conf, method="exact")
    low, high = _clopper_pearson(k, n, conf)
    assert math.isclose(r.low, low, rel_tol=1e-9, abs_tol=1e-12)
    assert math.isclose(r.high, high, rel_tol=1e-9, abs_tol=1e-12)


@given(counts, confidences)
def test_wilson_ends_are_the_closed_form(kn, conf):
    k, n = kn
    r = failure_rate((k, n), confidence=conf, method="wilson")
    low, high = _wilson(k, n, conf)
    assert math.isclose(r.low, max(low, 0.0), rel_tol=1e-9, abs_tol=1e-12)
    assert math.isclose(r.high, min(high, 1.0), rel_tol=1e-9, abs_tol=1e-12)


@given(st.integers(min_value=1, max_value=3000), st.sampled_from([0.9, 0.95, 0.99]))
def test_zero_failures_gives_the_rule_of_n_bound(n, conf):
    # with no failure in n trials the exact upper bound is 1 - (1 - conf)^(1/n)
    r = failure_rate((0, n), confidence=conf)
    assume(r.sided == "upper")
    assert math.isclose(r.high, 1 - (1 - conf) ** (1 / n), rel_tol=1e-9)
