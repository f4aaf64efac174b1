"""compare's statistics on made-up rows: throughput paired by round, Holm's rule over the scenarios.

The coverage of the round-paired interval is checked exactly: under an A/A null whose round log ratios are
symmetric about 0, every one of the 2**R sign patterns of fixed magnitudes is equally likely, so the share of
patterns whose interval excludes 1 is the exact false-verdict rate.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from mpslab.studies.compare import compare_table
from mpslab.trials.paired import min_rounds, signed_rank_counts, throughput_ratio
from mpslab.trials.stats import holm


def _rows(scenarios, trials=20, block=5, fail_b=None, ops=None, seed=0):
    """Trial rows as compare_builds makes them: ``trial``, ``round`` = trial // block, both sides."""
    rng = np.random.default_rng(seed)
    out = []
    for name in scenarios:
        for side in "ab":
            failed = (fail_b or {}).get(name, 0) if side == "b" else 0
            for t in range(trials):
                ok = t >= failed
                value = ops(name, side, t) if ops else float(np.exp(rng.normal(0, 0.1)) * 100)
                out.append(
                    {
                        "scenario": name,
                        "side": side,
                        "trial": t,
                        "round": t // block,
                        "outcome": "ok" if ok else "crash",
                        "ops_per_s": value if ok else math.nan,
                    }
                )
    return pd.DataFrame(out)


def test_four_rounds_give_no_throughput_verdict_at_the_defaults():
    # e74d8a7 resampled trials as independent and gave faster/slower verdicts here
    t = compare_table(_rows(["x"], trials=20, block=5, ops=lambda n, s, i: 100.0 if s == "a" else 130.0 + i))
    assert t.loc[0, "throughput"].startswith("n/a: too few rounds (4 of 4 rounds")
    assert math.isnan(t.loc[0, "speed_low"])


def test_enough_rounds_give_a_verdict_and_failures_leave_too_few_clean_trials():
    t = compare_table(_rows(["x"], trials=20, block=2, ops=lambda n, s, i: 100.0 if s == "a" else 130.0 + i))
    assert t.loc[0, "throughput"].startswith("b is 1.") and "faster" in t.loc[0, "throughput"]
    t = compare_table(_rows(["x"], trials=20, block=2, fail_b={"x": 12}))
    assert t.loc[0, "throughput"].startswith("n/a: too few clean trials (4 of 10 rounds")


@pytest.mark.parametrize("rounds, confidence", [(6, 0.95), (7, 0.95), (9, 0.95), (10, 1 - 0.05 / 13)])
def test_round_interval_misses_1_at_most_alpha_of_the_time_under_a_symmetric_null(rounds, confidence):
    magnitudes = np.linspace(0.05, 0.4, rounds) * np.exp(np.arange(rounds) % 3 / 10)
    misses = 0
    for signs in itertools.product((-1.0, 1.0), repeat=rounds):
        b = list(100.0 * np.exp(np.array(signs) * magnitudes))
        _, lo, hi, words = throughput_ratio([100.0] * rounds, b, range(rounds), range(rounds), confidence=confidence)
        assert not words.startswith("n/a")
        misses += not (lo <= 1.0 <= hi)
    assert misses / 2**rounds <= 1 - confidence


def test_min_rounds_and_the_signed_rank_distribution():
    assert [min_rounds(0.95), min_rounds(1 - 0.05 / 13)] == [6, 10]
    counts = signed_rank_counts(4)
    brute = [0] * 11
    for signs in itertools.product((0, 1), repeat=4):
        brute[sum(r for r, s in zip(range(1, 5), signs) if s)] += 1
    assert list(counts) == brute


def test_holm_matches_the_step_down_procedure():
    adjusted, sig = holm([0.01, 0.04, 0.03, 0.005], 0.05)
    assert adjusted == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert sig == [True, False, False, True]
    assert holm([], 0.05) == ([], [])


def test_one_raw_significant_scenario_of_13_is_not_significant_after_holm():
    # e74d8a7 called 0/20 vs 6/20 "b fails more" in a family of 13 scenarios
    names = [f"s{i}" for i in range(13)]
    t = compare_table(_rows(names, trials=20, block=2, fail_b={"s3": 6}))  # p = 0.0066 alone
    row = t.set_index("scenario").loc["s3"]
    assert row["p_value"] < 0.05 and row["p_holm"] == pytest.approx(min(1.0, 13 * row["p_value"]))
    assert not row["significant"] and row["verdict"].startswith("no significant difference")
    assert "Holm-adjusted over 13 scenarios" in row["verdict"]
    assert (t["family"] == 13).all() and t["speed_confidence"].tolist() == pytest.approx([1 - 0.05 / 13] * 13)
    strong = compare_table(_rows(names, trials=20, block=2, fail_b={"s3": 15})).set_index("scenario").loc["s3"]
    assert strong["significant"] and strong["verdict"].startswith("b fails more: 15/20 vs 0/20")


def test_rows_without_rounds_need_the_block():
    rows = _rows(["x"]).drop(columns="round")
    with pytest.raises(ValueError, match="block="):
        compare_table(rows)
    assert compare_table(rows, block=5).loc[0, "throughput"].startswith("n/a: too few rounds")
