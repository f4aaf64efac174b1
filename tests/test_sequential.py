"""--until-bound: the stopping rule is valid (simulated), the planned n, bad input, a tiny CLI run."""

from __future__ import annotations

import numpy as np
import pytest

from mpslab.cli import main
from mpslab.trials.sequential import (
    ZeroFailurePlan,
    naive_peeking_claims,
    parse_target,
    planned_trials,
    run_until_bound,
)


def test_planned_trials_matches_the_textbook_rule_of_three():
    assert planned_trials(0.01) == 299
    assert planned_trials(0.05) == 59
    assert planned_trials(0.01, 0.99) == 459


@pytest.mark.parametrize("bad", ["0", "0%", "100%", "1", "-1%", "1.5", "abc", "nan"])
def test_target_outside_0_1_is_refused(bad):
    with pytest.raises(ValueError):
        parse_target(bad)


def _simulate(rate, target, runs, seed, **kw):
    rng = np.random.default_rng(seed)
    plan = ZeroFailurePlan(target)
    claims = 0
    for _ in range(runs):
        chunk = lambda k: ["ok" if u >= rate else "crash" for u in rng.random(k)]
        claims += run_until_bound(chunk, plan, **kw).met
    return claims / runs


def test_the_rule_claims_below_target_at_most_alpha_of_the_time_at_the_target():
    runs = 4000
    frac = _simulate(0.05, 0.05, runs, seed=12)
    mc = 3 * (0.05 * 0.95 / runs) ** 0.5  # three standard errors of the Monte-Carlo estimate
    assert frac <= 0.05 + mc
    # with stop-on-failure the claim is made no more often
    assert _simulate(0.05, 0.05, runs, seed=13, stop_on_failure=True) <= 0.05 + mc


def test_the_check_has_power_the_naive_peeking_rule_fails_it():
    # the invalid rule (stop when the Clopper-Pearson bound first dips below) exceeds 5% clearly
    assert naive_peeking_claims(0.05, 0.05, runs=1500, max_trials=600, seed=3) > 0.08


def test_a_clean_process_meets_the_target_and_a_failing_one_does_not():
    plan = ZeroFailurePlan(0.2)
    assert run_until_bound(lambda k: ["ok"] * k, plan).met
    out = run_until_bound(lambda k: ["ok", "hang"][:k] + ["ok"] * max(0, k - 2), plan, stop_on_failure=True)
    assert not out.met and out.stopped_by == "failure" and out.failures == 1
    capped = run_until_bound(lambda k: ["ok"] * k, plan, max_trials=5)
    assert not capped.met and capped.trials == 5 and capped.stopped_by == "max-trials"


def test_cli_until_bound_tiny(capsys):
    code = main(
        ["trials", "--until-bound", "50%", "--threads", "2", "--iterations", "2", "--size", "8", "--timeout", "60"]
    )
    out = capsys.readouterr().out
    assert "needs 5 clean trials" in out and "ETA" in out
    assert code == 0 and "target met: 5 of 5" in out


def test_cli_until_bound_stops_on_failure(capsys):
    code = main(
        [
            "trials",
            "--until-bound",
            "10%",
            "--workload",
            "fault-exception",
            "--stop-on-failure",
            "--threads",
            "2",
            "--iterations",
            "2",
            "--size",
            "1",
            "--timeout",
            "60",
        ]
    )
    out = capsys.readouterr().out
    assert code == 1 and "target NOT met" in out and "stopped by failure" in out


def test_cli_until_bound_bad_target(capsys):
    assert main(["trials", "--until-bound", "0%"]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
