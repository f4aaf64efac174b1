"""Failure rates and their intervals, checked against closed forms (not against scipy's own output)."""

from __future__ import annotations

import math
from statistics import NormalDist

import pandas as pd
import pytest

from mpslab.trials.stats import FailureRate, compare_rates, failure_rate, format_percent


def _binom_cdf(k: int, n: int, p: float) -> float:
    return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k + 1))


def _binom_pmf(k: int, n: int, p: float) -> float:
    return math.comb(n, k) * p**k * (1 - p) ** (n - k)


def _wilson(k: int, n: int, z: float) -> tuple[float, float]:
    phat = k / n
    centre = (phat + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(phat * (1 - phat) / n + z * z / (4 * n * n))
    return centre - half, centre + half


def test_zero_failures_gives_the_one_sided_clopper_pearson_upper_bound():
    r = failure_rate(pd.DataFrame({"outcome": ["ok"] * 200}))
    assert (r.failures, r.trials, r.rate, r.low) == (0, 200, 0.0, 0.0)
    assert r.sided == "upper"
    assert r.high == pytest.approx(1 - 0.05 ** (1 / 200), rel=1e-9)  # 1.4867%
    assert r.verdict == "0 of 200 trials failed: failure rate below 1.5% (95% one-sided upper bound, Clopper-Pearson)"
    assert str(r) == r.verdict


def test_zero_failures_wilson_upper_bound_matches_the_closed_form():
    z = NormalDist().inv_cdf(0.95)
    r = failure_rate((0, 200), method="wilson")
    assert r.high == pytest.approx(z * z / (200 + z * z), rel=1e-9)  # 1.33%
    assert "below 1.4%" in r.verdict and "Wilson" in r.verdict


def test_all_failed_gives_the_one_sided_lower_bound():
    r = failure_rate(["crash"] * 5)
    assert (r.failures, r.trials, r.high, r.sided) == (5, 5, 1.0, "lower")
    assert r.low == pytest.approx(0.05 ** (1 / 5), rel=1e-9)  # 54.9%
    assert r.verdict == "5 of 5 trials failed: failure rate above 54% (95% one-sided lower bound, Clopper-Pearson)"


def test_two_sided_clopper_pearson_bounds_satisfy_their_definition():
    k, n = 3, 200
    r = failure_rate((k, n))
    assert r.sided == "two-sided" and r.rate == pytest.approx(0.015)
    # Clopper-Pearson: P(X >= k | low) = 2.5% and P(X <= k | high) = 2.5%
    assert 1 - _binom_cdf(k - 1, n, r.low) == pytest.approx(0.025, abs=1e-7)
    assert _binom_cdf(k, n, r.high) == pytest.approx(0.025, abs=1e-7)
    assert "3 of 200 trials failed: failure rate 1.5% (95% CI 0.31%-4.4%, Clopper-Pearson)" == r.verdict


def test_two_sided_wilson_matches_the_closed_form():
    z = NormalDist().inv_cdf(0.975)
    r = failure_rate((7, 40), method="wilson")
    low, high = _wilson(7, 40, z)
    assert (r.low, r.high) == (pytest.approx(low, rel=1e-9), pytest.approx(high, rel=1e-9))


def test_every_outcome_but_ok_is_a_failure_and_is_counted_by_kind():
    df = pd.DataFrame({"outcome": ["ok"] * 6 + ["crash", "crash", "hang", "error", "mismatch"]})
    r = failure_rate(df)
    assert (r.failures, r.trials) == (5, 11)
    assert r.outcomes == {"crash": 2, "error": 1, "hang": 1, "mismatch": 1, "ok": 6}
    assert r.verdict.startswith("5 of 11 trials failed (crash 2, error 1, hang 1, mismatch 1): failure rate 45%")


def test_other_confidence_levels_are_named_in_the_verdict():
    r = failure_rate((0, 50), confidence=0.99)
    assert r.high == pytest.approx(1 - 0.01 ** (1 / 50), rel=1e-9)
    assert "99% one-sided upper bound" in r.verdict


@pytest.mark.parametrize("bad", [pd.DataFrame({"outcome": []}), pd.DataFrame({"x": [1]}), (3, 2)])
def test_refuses_empty_or_malformed_input(bad):
    with pytest.raises(ValueError):
        failure_rate(bad)


def test_refuses_unknown_method_and_confidence():
    with pytest.raises(ValueError, match="method"):
        failure_rate((0, 10), method="normal")
    with pytest.raises(ValueError, match="confidence"):
        failure_rate((0, 10), confidence=1.5)


def test_comparison_of_5_of_5_against_0_of_200_is_barnards():
    c = compare_rates(["crash"] * 5, (0, 200))
    # only the observed table and its mirror (0/5 vs 200/200) are as extreme: p = sup over r of
    # r**5 (1-r)**200 + (1-r)**5 r**200, at r = 5/205 (the mirror's term is below 1e-300 there)
    r = 5 / 205
    assert c.p_value == pytest.approx(r**5 * (1 - r) ** 200, rel=1e-9)
    assert c.significant
    assert c.verdict.startswith(
        "before 5/5 failed (above 54%) -> after 0/200 failed (below 1.5%): "
        "significant, after fails less often (Barnard exact p=6.2e-11"
    )
    assert isinstance(c.before, FailureRate) and str(c) == c.verdict


def test_comparison_not_significant_matches_the_unconditional_tail_sum():
    a, n1, b, n2 = 2, 20, 1, 20

    def z(x: int, y: int) -> float:
        pooled = (x + y) / (n1 + n2)
        return 0.0 if x == y else abs(x / n1 - y / n2) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))

    region = [(x, y) for x in range(n1 + 1) for y in range(n2 + 1) if z(x, y) >= z(a, b) - 1e-9]

    def tail(r: float) -> float:
        return sum(_binom_pmf(x, n1, r) * _binom_pmf(y, n2, r) for x, y in region)

    expected_p = max(tail(k / 2000) for k in range(2001))
    c = compare_rates((a, n1), (b, n2), labels=("torch 2.12", "patched"))
    assert c.p_value == pytest.approx(expected_p, rel=1e-6)
    assert not c.significant
    assert c.verdict.startswith(
        "torch 2.12 2/20 failed (1.2%-32%) -> patched 1/20 failed (0.12%-25%): difference not significant"
    )


def test_no_verdict_ever_says_proven():
    texts = [failure_rate((k, 30)).verdict for k in range(31)]
    texts += [compare_rates((k, 30), (0, 30)).verdict for k in range(0, 31, 5)]
    assert all("proven" not in t.lower() for t in texts)


@pytest.mark.parametrize(
    "x, up, down, nearest",
    [
        (0.014867, "1.5%", "1.4%", "1.5%"),
        (0.5493, "55%", "54%", "55%"),
        (0.00031, "0.031%", "0.031%", "0.031%"),
        (0.999, "99.9%", "99%", "99.9%"),
        (0.0, "0%", "0%", "0%"),
        (1.0, "100%", "100%", "100%"),
    ],
)
def test_percentages_are_rounded_in_the_safe_direction(x, up, down, nearest):
    assert (format_percent(x, "up"), format_percent(x, "down"), format_percent(x)) == (up, down, nearest)


def test_failure_rate_keeps_environments_apart_unless_pooling_is_asked_for():
    import pandas as pd

    from mpslab.trials.stats import MixedEnvironmentsError, failure_rates

    df = pd.DataFrame(
        {
            "outcome": ["ok"] * 10 + ["crash"] * 2 + ["ok"] * 8 + ["lost"],
            "env_host": ["mac1"] * 12 + ["mac2"] * 8 + [None],
            "env_torch": ["2.5"] * 12 + ["2.6"] * 8 + [None],
            "env_device": ["mps"] * 21,
        }
    )
    with pytest.raises(MixedEnvironmentsError, match="2 environments"):
        failure_rate(df)
    per = failure_rates(df)
    assert per[["env_host", "failures", "trials"]].values.tolist() == [["mac1", 2, 12], ["mac2", 0, 8]]
    pooled = failure_rate(df, pool=True)
    assert (pooled.failures, pooled.trials) == (2, 20)  # the lost trial is no evidence
    assert failure_rate(df[df["env_host"] == "mac1"]).trials == 12
    assert failure_rates(df, pool=True)["trials"].tolist() == [20]
