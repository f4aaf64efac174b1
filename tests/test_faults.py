"""The instrument's self-test: every fault kind, run in isolated trials, lands in its outcome class."""

from __future__ import annotations

import sys

import pandas as pd
import pytest

from mpslab import StressConfig, list_workloads, run_stress
from mpslab.trials.faults import FAULT_KINDS, fault_names
from mpslab.trials.isolate import run_trials
from mpslab.trials.stats import failure_rate

# What each fault must be classified as. Written out here on purpose, not read from mpslab.
EXPECTED = {
    "segfault": "crash",
    "abort": "crash",
    "exit": "crash",
    "exception": "error",
    "hang": "hang",
    "wrong": "mismatch",
    "oom": "error",
}

MODES = ["spawn"] + (["forkserver"] if sys.platform.startswith("linux") else [])


def _cfg(workload: str, size: int = 1, **kw) -> StressConfig:
    base = dict(threads=2, iterations=3, sync_every=0, workload=workload, size=size, device="cpu")
    base.update(kw)
    return StressConfig(**base)


def test_every_fault_kind_is_registered_twice_as_a_self_test_workload():
    assert set(FAULT_KINDS) == set(EXPECTED)
    registered = {w.name: w.kind for w in list_workloads(kind="fault")}
    for name in fault_names():
        assert registered.get(name) == "fault", name
    assert len(fault_names()) == 2 * len(EXPECTED)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", list(EXPECTED))
def test_each_fault_kind_is_classified_correctly_in_isolated_trials(kind, mode):
    # the hang fires at once, so a short timeout still leaves it plenty of time to be stuck (in spawn
    # mode the timeout also covers the interpreter's start-up: only the forked child's stacks are
    # required to show the fault itself)
    hang = kind == "hang"
    timeout = (4.0 if mode == "forkserver" else 8.0) if hang else 300.0  # a forked child starts warm
    trials = 2 if mode == "forkserver" and not hang else 1
    df = run_trials(_cfg(f"fault-{kind}"), trials=trials, timeout_s=timeout, mode=mode, progress=False)
    assert df["outcome"].tolist() == [EXPECTED[kind]] * trials, df[["outcome", "first_error", "stderr_tail"]]
    row = df.iloc[0]
    assert row["launch"] == mode and row["workload"] == f"fault-{kind}"
    if kind == "segfault":
        assert (row["signal"], row["signal_number"]) == ("SIGSEGV", 11)
        assert "Segmentation fault" in row["stderr_tail"]
    elif kind == "abort":
        assert (row["signal"], row["signal_number"]) == ("SIGABRT", 6)
        assert "Aborted" in row["stderr_tail"]
    elif kind == "exit":
        assert row["exit_code"] == 3 and row["signal"] is None
        assert row["first_error"] == "exit code 3 without a result"
    elif kind == "exception":
        assert row["exit_code"] == 0 and row["error_count"] == 1
        assert "injected exception in thread 0 at iteration 0" in row["first_error"]
    elif kind == "hang":
        assert pd.isna(row["exit_code"]) and row["signal"] is None  # the SIGKILL was ours, not the cause
        assert "most recent call first" in row["hang_stacks"]
        if mode == "forkserver":  # started at once: it must be stuck in the fault itself
            assert "in _hang" in row["hang_stacks"]
        assert row["wall_s"] >= timeout  # by construction: a hang is declared only once its deadline has passed
    elif kind == "wrong":
        assert row["error_count"] == 0 and row["mismatch_count"] == 3  # every iteration from the 1st
    elif kind == "oom":
        assert "allocate" in row["first_error"]
    if EXPECTED[kind] in ("crash", "hang"):
        # no result: measurements NaN, config and environment filled in by the parent
        assert row["seconds"] != row["seconds"] and row["ops_per_s"] != row["ops_per_s"]
        assert row["threads"] == 2 and row["env_torch"] and row["env_executable"] == sys.executable


def test_random_faults_fire_at_the_configured_rate():
    # size=2: each run fires with probability 1/2. P(fewer than 6 or more than 34 of 40) < 1e-6.
    mode = MODES[-1]
    df = run_trials(_cfg("fault-exit-random", size=2), trials=40, timeout_s=300, mode=mode, progress=False)
    assert set(df["outcome"]) <= {"ok", "crash"}
    assert (df.loc[df["outcome"] == "crash", "exit_code"] == 3).all()
    crashed = int((df["outcome"] == "crash").sum())
    assert 6 <= crashed <= 34, crashed
    # Clopper-Pearson covers at least its nominal level: at 1 - 1e-6 it misses p = 1/2 less than once in 1e6
    r = failure_rate(df, confidence=1 - 1e-6)
    assert r.failures == crashed and r.trials == 40 and r.low < 0.5 < r.high


def test_random_fault_with_size_1_fires_every_time():
    df = run_trials(_cfg("fault-exception-random", size=1), trials=3, timeout_s=300, mode=MODES[-1], progress=False)
    assert df["outcome"].tolist() == ["error"] * 3


# The faults that do not take the process down can be checked in process, precisely.


def test_trigger_fires_at_the_size_th_iteration_of_thread_0_only():
    r = run_stress(_cfg("fault-exception", size=3, iterations=5, warmup=0))
    assert r.error_count == 1
    e = r.errors[0]
    assert (e.thread, e.iteration, e.phase) == (0, 2, "run")
    assert r.completed == 5 + 2  # thread 1 finished, thread 0 stopped at its 3rd iteration


def test_wrong_fault_corrupts_thread_0_from_the_trigger_on_and_only_the_oracle_sees_it():
    r = run_stress(_cfg("fault-wrong", size=3, iterations=5, warmup=0))
    assert r.error_count == 0 and r.outcome == "mismatch"
    assert r.mismatch_count == 3
    assert {m.thread for m in r.mismatches} == {0} and [m.iteration for m in r.mismatches] == [2, 3, 4]
    assert all(abs(m.got - m.expected - 1000.0) < 1e-2 for m in r.mismatches)
    unchecked = run_stress(_cfg("fault-wrong", size=3, iterations=5, warmup=0, verify=False))
    assert unchecked.outcome == "ok"  # without the oracle the wrong answers go unseen


def test_a_trigger_beyond_the_run_never_fires():
    assert run_stress(_cfg("fault-exception", size=10, iterations=5, warmup=0)).outcome == "ok"
    assert run_stress(_cfg("fault-oom", size=10, iterations=5, warmup=0)).outcome == "ok"


def test_oom_fault_is_an_error_in_process():
    r = run_stress(_cfg("fault-oom"))
    assert r.outcome == "error" and r.error_count == 1 and "allocate" in r.errors[0].message
