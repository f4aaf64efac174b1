"""One parser per kind of value (run/values.py), the one zero-failure n, and errors that name the parameter."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mpslab.pytest_plugin import MarkerError, check_marker, failing_trials_needed
from mpslab.pytest_plugin import trials_needed as plugin_trials_needed
from mpslab.run.errors import ConfigError
from mpslab.run.values import check_int, parse_assignment, parse_duration, parse_proportion, zero_failure_trials
from mpslab.studies.advisor.budget import parse_budget
from mpslab.studies.advisor.budget import trials_needed as budget_trials_needed
from mpslab.trials.sequential import parse_target, planned_trials

open_unit = st.fractions(min_value=Fraction(1, 1000), max_value=Fraction(999, 1000), max_denominator=1000)


def _smallest_n(q: Fraction, alpha: Fraction) -> int:
    """The definition, by counting in exact rationals: the smallest n >= 1 with q**n < alpha."""
    n, power = 1, q
    while power >= alpha:
        n, power = n + 1, power * q
    return n


@given(rate=open_unit, confidence=st.fractions(min_value=Fraction(1, 2), max_value=Fraction(99, 100)))
def test_zero_failure_n_is_the_smallest_n_whose_clean_run_is_rarer_than_alpha(rate, confidence):
    n = zero_failure_trials(rate, confidence)
    assert n == _smallest_n(1 - rate, 1 - confidence)


@given(rate=st.floats(min_value=0.01, max_value=0.99), confidence=st.sampled_from([0.8, 0.9, 0.95, 0.99]))
def test_zero_failure_n_is_exact_for_the_floats_as_given(rate, confidence):
    q, alpha = 1 - Fraction(rate), 1 - Fraction(confidence)
    assert zero_failure_trials(rate, confidence) == _smallest_n(q, alpha)


def test_zero_failure_n_at_an_exact_tie_and_the_textbook_values():
    # (1/2)**2 == 1/4 exactly: two clean trials leave the bound AT 50%, not below it, so three are needed
    assert zero_failure_trials(Fraction(1, 2), Fraction(3, 4)) == 3 == zero_failure_trials(0.5, 0.75)
    assert (
        zero_failure_trials(0.01) == 299 and zero_failure_trials(0.05) == 59 and zero_failure_trials(0.01, 0.99) == 459
    )


@given(rate=st.floats(min_value=0.001, max_value=0.5), confidence=st.sampled_from([0.9, 0.95, 0.99]))
def test_every_caller_counts_with_the_one_function(rate, confidence):
    n = zero_failure_trials(rate, confidence)
    assert planned_trials(rate, confidence) == budget_trials_needed(rate, confidence) == n
    assert plugin_trials_needed(rate, confidence) == n


@given(fail_rate=open_unit, confidence=st.sampled_from([Fraction(9, 10), Fraction(19, 20)]))
def test_all_failing_n_is_the_smallest_n_with_fail_rate_to_the_n_below_alpha(fail_rate, confidence):
    assert failing_trials_needed(fail_rate, confidence) == _smallest_n(fail_rate, 1 - confidence)


@pytest.mark.parametrize("bad", [0, 1, 1.5, -0.1, True, float("nan")])
def test_zero_failure_n_refuses_a_rate_outside_0_1_naming_it(bad):
    with pytest.raises(ConfigError) as info:
        zero_failure_trials(bad)
    assert info.value.param == "rate" and str(info.value).startswith("rate=")


@pytest.mark.parametrize(
    "text, seconds",
    [("90s", 90), ("10m", 600), ("1h", 3600), ("1m30s", 90), ("30", 30), (" 2.5M ", 150), (45, 45), (0.5, 0.5)],
)
def test_durations(text, seconds):
    assert parse_duration(text, "max_time") == seconds


@pytest.mark.parametrize("bad", ["soon", "", "0", "0s", "-5", "1x", "h", True, float("inf"), -1])
def test_a_bad_duration_names_the_parameter_it_was_given_for(bad):
    with pytest.raises(ConfigError) as info:
        parse_duration(bad, "budget")
    assert info.value.param == "budget" and str(info.value).startswith(f"budget={bad!r}: ")
    assert "\n" not in str(info.value)


def test_the_budget_and_max_time_read_durations_alike():
    for text in ("90s", "1m30s", "2h", "45"):
        assert parse_budget(text) == parse_duration(text, "budget")
    assert str(pytest.raises(ConfigError, parse_budget, "1s").value).startswith("budget='1s': too small")


@given(st.floats(min_value=0, max_value=1, exclude_min=True, exclude_max=True))
def test_a_proportion_reads_back_as_itself_as_number_or_text(x):
    assert parse_proportion(x, "max_failure") == x == parse_proportion(repr(x), "max_failure")


@given(st.decimals(min_value="0.001", max_value="99.999", places=3))
def test_a_percentage_is_divided_in_decimal(d):
    assert parse_proportion(f"{d}%", "until_bound") == float(d / 100)


def test_proportions_the_same_everywhere():
    assert parse_target("33.3%") == 0.333 == parse_proportion("33.3%", "max_failure")
    assert parse_proportion("0%", "fail_rate", zero_ok=True) == 0.0
    for bad in ("0", "0%", "100%", "1", "-1%", "1.5", "abc", "nan", True):
        with pytest.raises(ConfigError) as info:
            parse_target(bad)
        assert str(info.value).startswith(f"until_bound={bad!r}: ")


def test_marker_rates_and_ints_use_the_same_parsers():
    spec = check_marker({"step": test_durations, "max_failure": "12.5%"})
    assert spec.max_failure == parse_proportion("12.5%", "max_failure")
    with pytest.raises(MarkerError, match=r"^max_failure=2: must be a rate in \(0, 1\)"):
        check_marker({"step": test_durations, "max_failure": 2})
    with pytest.raises(ConfigError, match=r"^threads=0: must be an integer >= 1$"):
        check_int(0, "threads", 1)


def test_assignments():
    assert parse_assignment("batch=16", "params") == ("batch", 16)
    assert parse_assignment(" sizes = [1, 2]", "params") == ("sizes", [1, 2])
    for bad in ("batch", "=3", "x=[1,"):
        with pytest.raises(ConfigError) as info:
            parse_assignment(bad, "params")
        assert str(info.value).startswith(f"params={bad!r}: ")


def test_an_error_is_worded_as_the_flag_only_where_the_caller_has_one():
    exc = ConfigError(param="max_failure", value="0.5", why="must be below 0.4")
    assert (exc.param, exc.value, exc.why) == ("max_failure", "0.5", "must be below 0.4")
    assert str(exc) == "max_failure='0.5': must be below 0.4"
    assert exc.worded({"max_failure": "--max-failure"}) == "--max-failure='0.5': must be below 0.4"
    assert exc.worded({}) == str(exc)
    # a ready message that begins name= or name: names its parameter too
    assert ConfigError("threads=0: must be >= 1").worded({"threads": "--threads"}) == "--threads=0: must be >= 1"
    assert ConfigError("the grid is empty").worded({"the": "--the"}) == "the grid is empty"
    assert ConfigError(param="python", why="not with --scheduler").worded({"python": "--python"}) == (
        "--python: not with --scheduler"
    )
