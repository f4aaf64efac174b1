"""Bounds are printed outward, always; --until-bound says its target; a run stopped at a failure gets a valid interval.

``format_percent`` is checked against exact decimal arithmetic (``decimal.Decimal``), over many values, trial
counts and targets (hypothesis), and the interval after a stop at the first failure against its exact
miss probability.
"""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mpslab.trials.sequential import (
    ZeroFailurePlan,
    first_failure_bound,
    parse_target,
    planned_trials,
    run_until_bound,
    target_text,
)
from mpslab.trials.stats import failure_rate, format_percent


def _value(text: str) -> Decimal:
    return Decimal(text.rstrip("%"))


def _exact(x: float) -> Decimal:
    return Decimal(repr(x)) * 100


def test_no_tolerance_turns_a_bound_just_above_a_step_into_the_step():
    # e74d8a7 subtracted 1e-9 before rounding up: 5.8000000001% printed as "5.8%"
    assert format_percent(0.058000000001, "up") == "5.9%"
    assert format_percent(0.057999999999, "down") == "5.7%"
    assert format_percent(1 - 0.05 ** (1 / 50), "up") == "5.9%"  # 0 of 50: 5.8155%
    assert format_percent(1 - 0.05 ** (1 / 100), "up") == "3.0%"  # 0 of 100: 2.9513%


@settings(max_examples=600, deadline=None)
@given(st.floats(min_value=1e-9, max_value=1.0, exclude_max=True), st.integers(min_value=1, max_value=5))
def test_upper_never_below_lower_never_above(x, digits):
    up, down = format_percent(x, "up", digits), format_percent(x, "down", digits)
    assert _value(up) >= _exact(x) >= _value(down)
    near = format_percent(x, "nearest", digits)
    assert _value(down) <= _value(near) <= _value(up)


@settings(max_examples=300, deadline=None)
@given(
    st.integers(min_value=1, max_value=3000),
    st.floats(min_value=0.0, max_value=1.0),
    st.sampled_from([0.8, 0.9, 0.95, 0.99, 0.999]),
)
def test_every_interval_printed_contains_the_computed_one(n, share, confidence):
    r = failure_rate((round(share * n), n), confidence=confidence)
    numbers = [_value(m) for m in re.findall(r"([0-9.]+)%", r.interval_text())]
    if r.sided == "upper":
        assert numbers[0] >= _exact(r.high)
    elif r.sided == "lower":
        assert numbers[0] <= _exact(r.low)
    else:
        assert numbers[0] <= _exact(r.low) and numbers[1] >= _exact(r.high)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.decimals(min_value="0.01", max_value="99.99", places=2).map(lambda d: f"{d}%"),
        st.floats(min_value=1e-4, max_value=0.9999).map(repr),
    ),
    st.sampled_from([0.9, 0.95, 0.99]),
)
def test_until_bound_target_text_is_never_below_what_the_plan_supports(raw, confidence):
    target = parse_target(raw)
    text = target_text(target, confidence)
    after_n = 1.0 - (1.0 - confidence) ** (1.0 / planned_trials(target, confidence))
    assert _value(text) >= _exact(after_n)  # the claim printed is one the planned n clean trials support
    if raw.endswith("%"):
        assert _value(text) == Decimal(raw[:-1])  # a target typed with two decimals prints as typed


def test_until_bound_1_25_percent_says_1_25_not_1_2():
    lines = []
    plan = ZeroFailurePlan(parse_target("1.25%"))
    run = run_until_bound(lambda k: ["ok"] * k, plan, announce=lines.append)
    assert "'failure rate below 1.25%'" in lines[0]
    assert run.met and "failure rate below 1.25% (95% one-sided" in run.verdict()


def test_a_run_stopped_at_its_first_failure_prints_the_inverse_sampling_bound():
    plan = ZeroFailurePlan(0.05)
    outcomes = iter(["ok"] * 11 + ["crash"] + ["ok"] * 100)
    run = run_until_bound(lambda k: [next(outcomes) for _ in range(k)], plan, stop_on_failure=True)
    assert run.stopped_by == "failure" and run.rate() is None
    text = run.verdict()
    bound = format_percent(1 - 0.05 ** (1 / 11), "up")
    assert f"first failure at trial 12: failure rate below {bound} (95% one-sided" in text
    assert "CI" not in text  # no fixed-n Clopper-Pearson interval (e74d8a7 printed one)


def _miss(p: float, n: int, bound_at_failure) -> float:
    """P(what the run prints misses p): stopped at a failure at trial k <= n, or all n clean ("below target")."""
    miss = sum(
        (1 - p) ** (k - 1) * p for k in range(1, n + 1) if not bound_at_failure(k)[0] <= p <= bound_at_failure(k)[1]
    )
    target_bound = 1 - 0.05 ** (1 / n)
    return miss + ((1 - p) ** n if p >= target_bound else 0.0)


@pytest.mark.parametrize("n", [59, 299])
def test_what_a_stop_on_failure_run_prints_is_wrong_at_most_5_percent_exactly(n):
    rates = [0.0005, 0.001, 0.005, 0.0099, 0.01, 0.02, 0.03, 0.0495, 0.05, 0.08, 0.15, 0.3, 0.6]
    for p in rates:
        assert _miss(p, n, lambda k: (0.0, first_failure_bound(k))) <= 0.05 + 1e-12, p


def test_fixed_n_intervals_would_be_wrong_about_10_percent_at_a_5_percent_target():
    # why no fixed-n interval is printed: two-sided Clopper-Pearson on (1 failure, k trials) + the target claim
    def clopper_pearson(k):
        r = failure_rate((1, k))
        return r.low, r.high

    assert _miss(0.05, 59, clopper_pearson) > 0.09


def test_first_failure_bound_refuses_bad_input():
    with pytest.raises(ValueError, match="integer >= 1"):
        first_failure_bound(0)
