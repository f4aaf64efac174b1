"""The advisor's words match what it measured (issue 18, point 2 and the advisor's bounds of point 3).

Fast: tables built from made-up measurements, nothing run. Truths computed here exactly and
independently of the code under test: an order-statistic interval's coverage by enumerating every
below/above pattern of k repeats, the Mann-Whitney p by enumerating every split of the ranks,
Clopper-Pearson at zero failures in closed form.
"""

import itertools
import math
import re

import matplotlib
import pandas as pd
import pytest

from mpslab.report.advisor_plots import plot_advisor_throughput
from mpslab.report.tables import advisor_table
from mpslab.studies.advisor.budget import Calibration, format_target, make_plan
from mpslab.studies.advisor.decide import RECOMMENDED, build_table, format_table, recommendation
from mpslab.studies.advisor.grid import Candidate
from mpslab.studies.advisor.speed import SLOWER, TIED, median_interval

matplotlib.use("Agg")

GRID = [Candidate("threaded", t, None, 0, "shared") for t in (1, 2, 4, 8)] + [
    Candidate("batched", 1, None, 0, "shared", 8)
]


def _plan(repeats, budget_s=600.0, max_failure=0.05):
    cal = Calibration(per_request_s=1e-4, run_overhead_s=0.01, trial_s=0.5, trial_requests=16, elapsed_s=2.0)
    return make_plan(GRID, 8, cal, budget_s=budget_s, repeats=repeats, max_failure=max_failure)


def _rows(speeds):
    """Throughput rows: ``speeds`` maps a label to its repeats' requests/s."""
    return pd.DataFrame(
        [
            {
                "label": k,
                "repeat": i,
                "requests_per_s": v,
                "outcome": "ok",
                "latency_p50_ms": 1.0,
                "latency_p99_ms": 2.0,
            }
            for k, vs in speeds.items()
            for i, v in enumerate(vs)
        ]
    )


def _exact_coverage(k, j):
    """P(x(j) <= median <= x(k+1-j)): each repeat falls below the median with probability 1/2."""
    hits = 0
    for below in itertools.product((0, 1), repeat=k):
        n_below = sum(below)
        hits += n_below >= j and k - n_below >= j
    return hits / 2**k


def _named_level(text):
    """The confidence a printed name claims: ``range of 3 (75% interval)`` -> 0.75, ``96% CI`` -> 0.96."""
    m = re.search(r"(\d+(?:\.\d+)?)% (?:interval|CI)", text)
    return float(m.group(1)) / 100 if m else None


@pytest.mark.parametrize("k", range(2, 13))
def test_the_interval_is_named_by_its_exact_coverage(k):
    values = [1000.0 + 37.0 * ((7 * i) % k) for i in range(k)]
    _, table = _table(k, [v + 5000.0 for v in values], lambda i: [v + i for v in values])
    header = format_table(table).splitlines()[0]
    claimed = _named_level(header)
    assert claimed is not None and claimed <= _exact_coverage(k, 1) + 1e-12  # the table's name vs the truth
    ci = median_interval(values)
    xs = sorted(values)
    assert (ci.low, ci.high) == (xs[ci.j - 1], xs[k - ci.j])
    truth = _exact_coverage(k, ci.j)
    assert ci.level == pytest.approx(truth, abs=1e-12)
    assert truth == pytest.approx(1 - 2 * sum(math.comb(k, i) for i in range(ci.j)) / 2**k)
    claimed = _named_level(ci.name)
    assert claimed is not None and claimed <= truth + 1e-12  # never named above what it covers
    assert ("CI" in ci.name) == (truth >= 0.95)  # called a 95%-or-better CI only when it is one
    if k <= 5:
        assert ci.name.startswith(f"range of {k}")  # [min, max] of k: 1 - 2 * 0.5**k
        assert truth == pytest.approx(1 - 2 * 0.5**k)


def _table(repeats, pick_speeds, other_speeds, pick_trials=59):
    plan = _plan(repeats)
    labels = [c.label for c in plan.candidates]
    pick = GRID[-1].label  # the batched one is the pick
    speeds = {lab: other_speeds(i) for i, lab in enumerate(labels) if lab != pick}
    speeds[pick] = pick_speeds
    trials = {pick: pd.DataFrame({"outcome": ["ok"] * pick_trials})}
    return plan, build_table(plan, _rows(speeds), trials, pick)


def test_three_repeats_name_a_range_and_no_pair_is_called_slower():
    plan, table = _table(3, [9000.0, 9100.0, 9200.0], lambda i: [1000.0 + i, 1100.0 + i, 1200.0 + i])
    text = format_table(table)
    header = text.splitlines()[0]
    claimed = _named_level(header)
    assert claimed is not None and claimed <= _exact_coverage(3, 1) == 0.75
    assert "95% CI" not in header and "range of 3" in header
    untested = table[table["trials"] == 0]
    assert len(untested) and (untested["verdict"] == TIED).all()  # 3 vs 3: the smallest exact p is 0.10
    ok, para = recommendation(plan, table, 1.0)
    assert ok and "95% CI" not in para and "range of 3 (75% interval)" in para
    assert "Tied with the pick within noise" in para and "slower than the pick" not in para.lower()
    assert "range of 3" in plan.describe() and "tied with the pick within noise" in plan.describe()


def _exact_mw_p(a, b):
    """Two-sided exact Mann-Whitney p by enumerating every way to split the pooled ranks."""
    pooled = sorted(a + b)
    rank = {v: i + 1 for i, v in enumerate(pooled)}  # no ties in these data
    n1, n2 = len(a), len(b)
    centre = n1 * n2 / 2
    u_obs = sum(rank[v] for v in a) - n1 * (n1 + 1) / 2
    hits = total = 0
    for chosen in itertools.combinations(range(1, n1 + n2 + 1), n1):
        u = sum(chosen) - n1 * (n1 + 1) / 2
        hits += abs(u - centre) >= abs(u_obs - centre) - 1e-9
        total += 1
    return min(1.0, hits / total)


def test_slower_only_where_an_exact_test_separates_after_holm():
    k = 7
    pick = [5000.0 + 10 * i for i in range(k)]

    def others(i):
        if i == 0:  # every repeat below the pick's: separates
            return [1000.0 + 10 * r for r in range(k)]
        return [4985.0 + 10 * r + 0.5 * i for r in range(k)]  # interleaved with the pick's: tied

    plan, table = _table(k, pick, others)
    untested = table[table["trials"] == 0]
    ps = {
        r.configuration: _exact_mw_p(pick, _rows_for(table, r.configuration, others, plan))
        for r in untested.itertuples()
    }
    m = len(ps)
    expect, still = {}, True
    for i, (lab, p) in enumerate(sorted(ps.items(), key=lambda kv: kv[1])):
        still = still and p <= 0.05 / (m - i)
        expect[lab] = SLOWER if still else TIED
    for r in untested.itertuples():
        assert r.verdict == expect[r.configuration]
        assert r.speed_p == pytest.approx(ps[r.configuration], rel=1e-9)
    assert (untested["verdict"] == SLOWER).sum() == 1 and (untested["verdict"] == TIED).sum() == m - 1


def _rows_for(table, label, others, plan):
    labels = [c.label for c in plan.candidates]
    return others(labels.index(label))


def test_the_bonferroni_words_match_the_table():
    plan, table = _table(3, [9000.0, 9100.0, 9200.0], lambda i: [1000.0 + i, 1100.0 + i, 1200.0 + i], 59)
    assert plan.tested > 1  # the plan set trials aside for several; only the pick got them
    ok, para = recommendation(plan, table, 1.0)
    got = int((table["trials"] > 0).sum())
    m = re.search(r"Bonferroni over the (\d+) configurations the plan set aside trials for.*?; (\d+) of them got", para)
    assert m, para
    assert int(m.group(1)) == plan.tested and int(m.group(2)) == got == 1
    pick = table[table["verdict"] == RECOMMENDED].iloc[0]
    exact = 1 - (0.05 / plan.tested) ** (1 / pick.trials)  # Clopper-Pearson, 0 failures, at 1 - 0.05/m
    assert pick.upper_bound == pytest.approx(exact, rel=1e-9)


def _bound_column(shown):
    return next(c for c in shown.columns if "bound" in c)


@pytest.mark.parametrize("n", [12, 59, 100, 101, 240, 299, 1000])
def test_the_advisor_table_never_prints_a_bound_below_its_value(n):
    plan, table = _table(3, [9000.0, 9100.0, 9200.0], lambda i: [1000.0 + i, 1100.0 + i, 1200.0 + i], n)
    shown = advisor_table(table)
    pick = table[table["verdict"] == RECOMMENDED].iloc[0]
    printed = shown.loc[pick.configuration, _bound_column(shown)]
    assert float(printed.rstrip("%")) / 100 >= pick.upper_bound
    lo, hi = shown.loc[pick.configuration].iloc[1].split(" – ")
    assert float(lo.replace(",", "")) <= pick.ci_low and float(hi.replace(",", "")) >= pick.ci_high
    assert "range of 3 (75% interval) (requests/s)" in shown.columns


def test_the_advisor_table_reads_2_9513_percent_as_no_less():
    table = pd.DataFrame(
        {
            "configuration": ["a"],
            "requests_per_s": [1000.0],
            "ci_low": [900.0],
            "ci_high": [1100.0],
            "repeats": [3],
            "latency_p50_ms": [1.0],
            "latency_p99_ms": [2.0],
            "trials": [100],
            "failures": [0],
            "upper_bound": [0.029513],
            "verdict": [RECOMMENDED],
        }
    )
    shown = advisor_table(table)
    printed = shown.loc["a", _bound_column(shown)]
    assert float(printed.rstrip("%")) >= 2.9513


@pytest.mark.parametrize(
    "target", [0.05, 0.1, 0.5, 0.0125, 0.00125, 0.025, 0.015, 0.333, 1 / 3, 0.07, 0.9995, 0.000012345678]
)
def test_the_target_is_printed_as_given_never_below(target):
    text = format_target(target)
    value = float(text.rstrip("%")) / 100
    assert value >= target - 1e-15 and value - target <= 1e-5 * target  # rounded up at 6 digits at most
    assert "e" not in text  # a percentage, not 1e+01%
    if target in (0.1, 0.0125, 0.00125, 0.015):
        assert text == f"{target * 100:g}%"  # as given: 1.25%, not 1% or 1.3%
    plan, table = _table(3, [9000.0, 9100.0, 9200.0], lambda i: [1000.0 + i, 1100.0 + i, 1200.0 + i])
    fig = plot_advisor_throughput(table, max_failure=target)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert f"failure bound < {text}" in labels
    assert "95%" not in fig.axes[0].get_ylabel() and "range of 3" in fig.axes[0].get_ylabel()
    matplotlib.pyplot.close(fig)


@pytest.mark.parametrize(
    "folder",
    [
        "data/reference/cpu-2026-11-24/advise-mlp",
        "data/reference/h100-2026-11-24/advise-mlp",
        "data/reference/h100-2026-11-24/advise-transformer",
    ],
)
def test_a_stored_advice_reread_gives_its_numbers_in_todays_words(folder):
    import json
    import os

    from mpslab.studies.advisor.reread import reread

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.path.join(root, folder)
    plan, table, ok, text = reread(path)
    old = pd.DataFrame(json.load(open(os.path.join(path, "result.json")))["table"]).set_index("configuration")
    new = table.set_index("configuration").loc[old.index]
    assert ok and list(new.index[new["verdict"] == RECOMMENDED]) == list(old.index[old["verdict"] == RECOMMENDED])
    for col in ("requests_per_s", "ci_low", "ci_high", "upper_bound"):  # 3 repeats: the old bootstrap gave the range
        assert new[col].fillna(-1).to_numpy() == pytest.approx(old[col].fillna(-1).to_numpy(), rel=1e-9)
    assert (new["trials"] == old["trials"]).all() and (new["failures"] == old["failures"]).all()
    assert "95% CI" not in text and "range of 3 (75% interval)" in text
