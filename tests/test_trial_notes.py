"""What summaries and the trials table say beyond the counts (issue 19): thread affinity, how Python ran,
what a mismatch or a message-less error was."""

from __future__ import annotations

import pandas as pd

from mpslab.report.tables import trials_table
from mpslab.studies.summary import AFFINITY_NOTE, summarize, trial_notes


def _rows(specs):
    """One trials row per (threads, outcome, interpreter)."""
    return pd.DataFrame(
        [
            {
                "trial": k,
                "outcome": outcome,
                "threads": threads,
                "ops_per_s": 100.0 if outcome == "ok" else float("nan"),
                "env_torch": "2.13.0",
                "env_interpreter": interp,
            }
            for k, (threads, outcome, interp) in enumerate(specs)
        ]
    )


STD = "3.12.3 standard build"
OFF = "3.13.1 free-threaded, GIL off"
ON = "3.13.1 free-threaded, GIL on"


def test_a_failure_with_one_worker_thread_is_called_thread_affinity_not_a_race():
    df = _rows([(1, "crash", STD), (1, "ok", STD), (4, "crash", STD)])
    assert trial_notes(df) == [f"{AFFINITY_NOTE} (1 of 2 one-thread trials failed)"]
    s = summarize(df).set_index("threads")
    assert s.loc[1, "note"] == f"{AFFINITY_NOTE} (1 of 2 one-thread runs failed)"
    assert s.loc[4, "note"] == ""  # four threads failing says nothing about affinity
    assert trial_notes(_rows([(1, "ok", STD), (2, "crash", STD)])) == []


def test_summaries_keep_gil_on_and_gil_off_apart_and_say_free_threaded_gil_off():
    df = _rows([(2, "ok", OFF), (2, "crash", OFF), (2, "ok", ON), (2, "ok", ON)])
    s = summarize(df).set_index("env_interpreter")
    assert sorted(s.index) == [OFF, ON]  # two series: never pooled as one
    assert (s.loc[OFF, "n"], s.loc[OFF, "crash"], s.loc[ON, "n"], s.loc[ON, "crash"]) == (2, 1, 2, 0)
    assert s.loc[OFF, "note"] == f"{OFF} (2 of 2 runs)"
    assert f"{OFF} (2 of 4 trials)" in trial_notes(df)
    assert trial_notes(_rows([(2, "ok", STD)])) == []  # a standard build is the default: nothing to say


def test_trials_table_gives_a_mismatch_row_without_text_what_the_replay_found():
    df = pd.DataFrame(
        {
            "trial": [0, 1, 2],
            "outcome": ["ok", "mismatch", "error"],
            "seconds": [0.1, 0.1, 0.1],
            "ops_per_s": [10.0, 10.0, 10.0],
            "mismatch_count": [0, 3, 0],
            "verified": [6, 6, 6],
            "first_error": [None, None, "AssertionError: "],
        }
    )
    detail = trials_table(df)["first error"].tolist()
    assert detail == [
        "–",
        "mismatch: 3 of 6 outputs differ from a serial replay of the same work",
        "AssertionError (empty message; where it was raised was not recorded)",
    ]


def test_the_trials_command_prints_the_affinity_note():
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "mpslab", "trials", "--workload", "fault-exception", "--size", "1", "--threads", "1",
         "--iterations", "2", "--trials", "2", "--device", "cpu", "--no-progress"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "note: fails with a single worker thread: thread affinity, not a race" in proc.stdout


def test_gil_on_and_off_are_two_environments_for_the_failure_rate():
    import pytest

    from mpslab.trials.stats import MixedEnvironmentsError, failure_rate, failure_rates

    df = _rows([(2, "ok", OFF), (2, "crash", OFF), (2, "ok", "3.13.1 free-threaded, GIL on")])
    df["env_host"], df["env_torch_build"], df["env_device"] = "vm", "cpu", "cpu"
    with pytest.raises(MixedEnvironmentsError):
        failure_rate(df)
    per_env = failure_rates(df)
    assert sorted(per_env["env_interpreter"]) == ["3.13.1 free-threaded, GIL off", "3.13.1 free-threaded, GIL on"]
