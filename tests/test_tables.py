"""Reader tables: the columns a reader needs, units in the headers, rounded, the frame left whole."""

import math

import numpy as np
import pandas as pd
import pytest

from mpslab.report.tables import MISSING, fmt_number, sweep_table, trials_table
from mpslab.run.config import StressConfig
from mpslab.studies.sweep import summarize, sweep


@pytest.fixture(scope="module")
def small_sweep():
    cfg = StressConfig(threads=1, iterations=3, sync_every=0, size=8, device="cpu")
    return sweep(cfg, threads=[1, 2], repeats=2, progress=False)


def _value(text: str) -> float:
    return float(text.replace(",", ""))


def test_fmt_number_keeps_three_significant_digits():
    rng = np.random.default_rng(7)
    for x in np.concatenate([10.0 ** rng.uniform(-6, 9, 300), -(10.0 ** rng.uniform(-3, 5, 50))]):
        shown = fmt_number(x)
        assert math.isclose(_value(shown), x, rel_tol=5e-3), (x, shown)
        digits = shown.split("e")[0].replace(",", "").replace("-", "").replace(".", "").lstrip("0")
        assert len(digits.rstrip("0")) <= 3, (x, shown)
    assert fmt_number(0) == "0" and fmt_number(float("nan")) == MISSING and fmt_number(None) == MISSING


def test_sweep_table_shows_few_columns_with_units_and_no_nan(small_sweep):
    summary = summarize(small_sweep)
    before = summary.copy()
    table = sweep_table(summary)
    pd.testing.assert_frame_equal(summary, before)  # display only: the frame for the CSV is untouched
    assert len(table) == len(summary) and len(table.columns) < len(summary.columns) // 2
    assert list(table["mode"]) == list(summary["mode"]) and list(table["threads"]) == list(summary["threads"])
    for col in ("size", "dtype", "device", "workload", "iterations"):
        assert col not in table.columns  # the same in every row: stated once by the notebook
    measured = [c for c in table.columns if c not in ("mode", "threads", "failed/runs")]
    assert all("(" in c and c.endswith(")") for c in measured), measured  # a unit in every header
    assert not table.astype(str).apply(lambda s: s.str.contains("nan", case=False)).any().any()
    for shown, x in zip(table["median (ops/s)"], summary["ops_per_s_median"]):
        assert shown == fmt_number(x)
    batched = table[table["mode"] == "batched"]
    assert len(batched) == 1 and batched["efficiency (%)"].iloc[0] == MISSING
    one = table[(table["mode"] == "in-process") & (table["threads"] == 1)]
    assert one["speedup vs 1 thread (×)"].iloc[0] == "1" and one["efficiency (%)"].iloc[0] == "100"
    assert list(table["failed/runs"]) == [f"{f}/{n}" for f, n in zip(summary["failed"], summary["n"])]


def test_sweep_table_names_the_grid_columns_that_vary(small_sweep):
    two_sizes = pd.concat([summarize(small_sweep), summarize(small_sweep).assign(size=16)], ignore_index=True)
    assert "size" in sweep_table(two_sizes).columns


def test_trials_table_reads_a_trials_frame():
    frame = pd.DataFrame(
        {
            "trial": [0, 1],
            "outcome": ["ok", "crash"],
            "exit_code": [0, np.nan],
            "signal": [None, "SIGSEGV"],
            "seconds": [0.01234, 2.5],
            "ops_per_s": [1234.5, np.nan],
            "error_count": [0, np.nan],
            "mismatch_count": [0, np.nan],
            "first_error": ["", None],
        }
    )
    table = trials_table(frame)
    assert list(table.columns) == [
        "outcome",
        "exit code",
        "signal",
        "time (s)",
        "throughput (ops/s)",
        "errors",
        "mismatches",
    ]  # no "first error": no trial has one
    assert table.loc[1].tolist() == ["crash", MISSING, "SIGSEGV", "2.5", MISSING, MISSING, MISSING]
    assert table.loc[0, "throughput (ops/s)"] == "1,230" and table.loc[0, "exit code"] == "0"
    assert "first error" in trials_table(frame.assign(first_error=["", "RuntimeError: boom"])).columns
    with pytest.raises(KeyError, match="trials_table: column 'ops_per_s' missing"):
        trials_table(frame.drop(columns="ops_per_s"))
