"""Sweeps, their summaries and the batched baseline: real tiny sweeps on the CPU."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

import mpslab.studies.sweep as sweep_mod
from mpslab import ConfigError, StressConfig, register_workload
from mpslab.run.runner import run_stress
from mpslab.run.workloads import get_workload
from mpslab.studies.sweep import batched_baseline, median_ci, summarize, sweep

TINY = StressConfig(threads=2, iterations=5, size=8, device="cpu")
RUN_COLUMNS = set(run_stress(TINY).to_row())


@pytest.fixture
def counted(monkeypatch):
    """Count the in-process runs a sweep starts."""
    calls = []
    real = sweep_mod.run_stress

    def counting(cfg):
        calls.append(cfg)
        return real(cfg)

    monkeypatch.setattr(sweep_mod, "run_stress", counting)
    return calls


# --------------------------------------------------------------------------- sweep


def test_one_row_per_run_with_the_runner_columns(counted):
    df = sweep(TINY, threads=[1, 2], size=[8, 16], repeats=2, progress=False, baseline=False)
    assert len(df) == 2 * 2 * 2 == len(counted)
    assert RUN_COLUMNS | {"mode", "repeat"} <= set(df.columns)
    assert set(df["mode"]) == {"in-process"}
    per_point = df.groupby(["threads", "size"])["repeat"].apply(sorted)
    assert per_point.to_dict() == {(t, s): [0, 1] for t in (1, 2) for s in (8, 16)}
    assert (df["outcome"] == "ok").all()
    assert (df["completed"] == df["threads"] * 5).all()
    # repeats are interleaved: every grid point runs once before any runs twice
    assert [c.threads for c in counted[:4]] == [1, 1, 2, 2] and [c.size for c in counted[:4]] == [8, 16, 8, 16]


def test_batched_baseline_rows_once_per_series_at_the_largest_thread_count():
    df = sweep(TINY, threads=[1, 2], size=[8, 16], repeats=2, progress=False)
    base = df[df["mode"] == "batched"]
    assert len(base) == 2 * 2  # two series (size 8, 16) x two repeats
    assert set(base["threads"]) == {2}
    assert sorted(base["size"]) == [8, 8, 16, 16]
    assert (base["outcome"] == "ok").all()
    assert (base["completed"] == 2 * 5).all() and (base["ops"] == 2 * 5).all()
    assert (base["ops_per_s"] > 0).all()
    assert np.allclose(base["ops_per_s"], base["completed"] / base["seconds"])


def test_a_single_value_is_a_fixed_override_and_numpy_values_are_accepted():
    df = sweep(TINY, threads=np.array([1, 2]), size=16, progress=False, baseline=False)
    assert list(df["threads"]) == [1, 2]
    assert set(df["size"]) == {16}


@pytest.mark.parametrize(
    "grid, names",
    [
        ({"threads": [1, 2], "thraeds": [1]}, "thraeds"),  # unknown field
        ({"threads": [1, 2, 0]}, "threads=0"),  # a bad value at the last grid point
        ({"threads": [1, 2], "throttle": [2]}, "throttle=2"),  # invalid at threads=1 only
        ({"threads": []}, "threads=[]"),
        ({"threads": [1, 1]}, "listed twice"),
        ({"plugins": ["x"]}, "plugins"),
        ({"streams": {"shared"}}, "as a list"),
        ({"threads": [1], "repeats": 0}, "repeats=0"),
        ({"threads": [1], "timeout_s": -1}, "timeout_s=-1"),
        ({"threads": [1], "store": "/no/such/dir/records.jsonl"}, "does not exist"),
    ],
)
def test_bad_input_is_refused_in_one_line_before_any_run(counted, grid, names):
    with pytest.raises(ConfigError) as info:
        sweep(TINY, progress=False, **grid)
    message = str(info.value)
    assert names in message and "\n" not in message
    assert counted == []


def test_racy_self_test_yields_mismatches_counted_in_the_summary():
    racy = StressConfig(threads=4, iterations=20, size=8, device="cpu", workload="racy")
    df = sweep(racy, threads=[1, 4], repeats=2, progress=False)
    s = summarize(df).set_index(["mode", "threads"])
    one, four = s.loc[("in-process", 1)], s.loc[("in-process", 4)]
    assert (one["ok"], one["mismatch"], one["failed"]) == (2, 0, 0)  # one thread cannot race
    runs = df[(df["mode"] == "in-process") & (df["threads"] == 4)]
    assert four["mismatch"] == (runs["outcome"] == "mismatch").sum() >= 1
    assert four["failed"] == four["n"] - four["ok"]
    # racy has no batched form: the baseline says so instead of making a number up
    base = df[df["mode"] == "batched"]
    assert set(base["outcome"]) == {"n/a"} and base["ops_per_s"].isna().all()
    assert base["note"].str.contains("no batched form").all()


def test_bad_grid_does_not_create_the_store(tmp_path):
    path = tmp_path / "runs.jsonl"
    with pytest.raises(ConfigError):
        sweep(TINY, threads=[0], store=str(path), progress=False)
    assert not path.exists()


def test_in_process_runs_are_stored_as_records(tmp_path):
    from mpslab.trials.records import load_records

    path = tmp_path / "runs.jsonl"
    df = sweep(TINY, threads=[1, 2], repeats=2, store=str(path), progress=False)
    back = load_records(str(path))
    assert len(back) == 4  # the in-process runs; baseline rows are not trials
    assert sorted(zip(back["threads"], back["trial"])) == [(1, 0), (1, 1), (2, 0), (2, 1)]
    assert set(back["mode"]) == {"in-process"} and back["batch"].nunique() == 2  # a batch per grid point
    runs = df[df["mode"] == "in-process"].sort_values(["threads", "repeat"])
    assert list(back.sort_values(["threads", "trial"])["ops_per_s"]) == pytest.approx(list(runs["ops_per_s"]))
    summary = summarize(back)
    assert list(summary["n"]) == [2, 2] and list(summary["ok"]) == [2, 2]


def test_isolated_sweep_rows(tmp_path):
    path = tmp_path / "trials.jsonl"
    df = sweep(TINY, threads=[1, 2], repeats=2, isolate=True, timeout_s=120, progress=False, store=str(path))
    iso = df[df["mode"] == "isolated"]
    assert len(iso) == 4 and len(df[df["mode"] == "batched"]) == 2
    assert RUN_COLUMNS | {"repeat", "trial", "exit_code"} <= set(iso.columns)
    assert (iso["outcome"] == "ok").all()
    assert sorted(zip(iso["threads"], iso["repeat"])) == [(1, 0), (1, 1), (2, 0), (2, 1)]
    s = summarize(df).set_index(["mode", "threads"])
    assert s.loc[("isolated", 1), "speedup"] == 1.0 and s.loc[("isolated", 2), "n"] == 2
    assert s.loc[("batched", 2), "speedup"] > 0  # compared with the isolated one-thread point
    from mpslab.trials.records import load_records

    assert len(load_records(str(path))) == 4  # run_trials stored every trial


# --------------------------------------------------------------------------- summarize


def test_summary_speedup_efficiency_ci_and_outcomes_on_a_real_sweep():
    df = sweep(TINY, threads=[1, 2], repeats=3, progress=False)
    s = summarize(df).set_index(["mode", "threads"])
    one, two, base = s.loc[("in-process", 1)], s.loc[("in-process", 2)], s.loc[("batched", 2)]
    assert one["speedup"] == 1.0 and one["efficiency"] == 1.0
    runs2 = df[(df["mode"] == "in-process") & (df["threads"] == 2)]["ops_per_s"]
    assert two["n"] == 3 and two["ok"] == 3
    assert two["ops_per_s_median"] == pytest.approx(runs2.median())
    assert two["speedup"] == pytest.approx(two["ops_per_s_median"] / one["ops_per_s_median"])
    assert two["efficiency"] == pytest.approx(two["speedup"] / 2)
    assert runs2.min() <= two["ci_low"] <= two["ops_per_s_median"] <= two["ci_high"] <= runs2.max()
    assert two["vs_batched"] == pytest.approx(two["ops_per_s_median"] / base["ops_per_s_median"])
    assert math.isnan(base["efficiency"])


def _rows(points):
    """A synthetic sweep frame: (mode, threads, streams, outcome, ops_per_s) per run."""
    return pd.DataFrame(
        [
            dict(
                mode=m,
                threads=t,
                streams=st,
                outcome=o,
                ops_per_s=v,
                latency_p50_ms=1.0 * t,
                latency_p99_ms=3.0 * t,
                repeat=i,
            )
            for i, (m, t, st, o, v) in enumerate(points)
        ]
    )


def test_summary_groups_by_series_and_counts_every_outcome():
    df = _rows(
        [
            ("in-process", 1, "shared", "ok", 100.0),
            ("in-process", 1, "shared", "ok", 120.0),
            ("in-process", 4, "shared", "ok", 300.0),
            ("in-process", 4, "shared", "crash", float("nan")),
            ("in-process", 4, "shared", "hang", float("nan")),
            ("in-process", 4, "shared", "error", 200.0),
            ("in-process", 1, "per-thread", "ok", 50.0),
            ("in-process", 4, "per-thread", "mismatch", 100.0),
            ("batched", 4, "shared", "ok", 1100.0),
        ]
    )
    s = summarize(df).set_index(["mode", "threads", "streams"])
    p = s.loc[("in-process", 4, "shared")]
    assert (p["n"], p["ok"], p["error"], p["crash"], p["hang"], p["mismatch"], p["failed"]) == (4, 1, 1, 1, 1, 0, 3)
    assert p["ops_per_s_median"] == 250.0  # NaN ops/s of crashed / hung runs are left out
    assert p["speedup"] == pytest.approx(250.0 / 110.0)  # against 1 thread of the same series
    assert p["vs_batched"] == pytest.approx(250.0 / 1100.0)
    q = s.loc[("in-process", 4, "per-thread")]
    assert q["speedup"] == 2.0 and q["mismatch"] == 1 and math.isnan(q["vs_batched"])
    assert math.isnan(q["ci_low"]) and math.isnan(q["ci_high"])  # one run: no interval
    b = s.loc[("batched", 4, "shared")]
    assert b["speedup"] == pytest.approx(1100.0 / 110.0)  # what batching gives over one thread


def test_summary_without_a_one_thread_point_has_no_speedup():
    s = summarize(_rows([("in-process", 2, "shared", "ok", 10.0), ("in-process", 4, "shared", "ok", 12.0)]))
    assert s["speedup"].isna().all() and s["efficiency"].isna().all()


def test_summary_refuses_a_frame_that_is_not_runs():
    with pytest.raises(KeyError, match="ops_per_s"):
        summarize(pd.DataFrame({"threads": [1]}))


def test_median_ci():
    assert all(math.isnan(v) for v in median_ci([5.0]))
    assert all(math.isnan(v) for v in median_ci([5.0, float("nan")]))
    assert median_ci([3.0, 3.0, 3.0]) == (3.0, 3.0)
    x = [10.0, 11.0, 12.0, 13.0, 30.0, 9.0, 10.5]
    lo, hi = median_ci(x)
    assert min(x) <= lo <= np.median(x) <= hi <= max(x)
    assert median_ci(x) == (lo, hi)  # seeded: the same values give the same interval
    assert median_ci(x, 0.5)[1] - median_ci(x, 0.5)[0] <= hi - lo


# --------------------------------------------------------------------------- batched baseline


def test_batched_baseline_uses_a_workloads_own_batched_form(workload):
    seen = []

    def step(ctx, i):
        return torch.ones(ctx.size, device=ctx.device).sum()

    def batched(ctx, i, batch):
        seen.append(batch)
        return torch.ones(batch, ctx.size, device=ctx.device).sum()

    wl = workload("tmp_batched", step)
    wl.batched = batched  # the hook a workload offers (Workload.batched)
    row = batched_baseline(
        StressConfig(threads=3, iterations=4, warmup=2, size=8, device="cpu", workload="tmp_batched")
    )
    assert seen == [3] * (2 + 4)  # warm-up steps, then the timed ones, each a batch of `threads`
    assert row["outcome"] == "ok" and row["mode"] == "batched"
    assert row["completed"] == 12 and row["ops_per_s"] == pytest.approx(12 / row["seconds"])
    assert RUN_COLUMNS <= set(row)


def test_batched_baseline_says_when_there_is_no_batched_form_or_it_fails(workload):
    workload("tmp_plain", lambda ctx, i: torch.zeros(1).sum())
    row = batched_baseline(TINY.replace(workload="tmp_plain"))
    assert row["outcome"] == "n/a" and math.isnan(row["ops_per_s"]) and "no batched form" in row["note"]

    wl = workload("tmp_broken", lambda ctx, i: torch.zeros(1).sum())

    def broken(ctx, i, batch):
        if i == 2:
            raise RuntimeError("boom\nsecond line")
        return torch.zeros(batch).sum()

    wl.batched = broken
    row = batched_baseline(TINY.replace(workload="tmp_broken", warmup=0))
    assert row["outcome"] == "error" and row["first_error"] == "RuntimeError: boom"
    assert row["completed"] == 2 * 2 and math.isnan(row["ops_per_s"])


def test_builtin_batched_form_is_dropped_when_the_name_is_re_registered():
    original = get_workload("seed")
    try:
        register_workload("seed", lambda ctx, i: torch.zeros(1).sum(), description="not the seed")
        assert batched_baseline(TINY)["outcome"] == "n/a"
    finally:
        import mpslab.run.workloads as w

        w._REGISTRY["seed"] = original
    assert batched_baseline(TINY)["outcome"] == "ok"


def test_seed_batched_form_does_threads_times_the_work_of_one_step():
    ctx = sweep_mod.WorkerContext(0, torch.device("cpu"), torch.float64, 8, torch.Generator().manual_seed(1))
    out = get_workload("seed").batched(ctx, 0, 3)
    a = torch.randn(3, 8, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    expected = sum(float((a[k] @ a[k]).sum()) for k in range(3))
    assert float(out) == pytest.approx(expected)


def test_median_ci_stays_inside_the_data_by_construction_and_still_moves_with_it():
    # values chosen so that percentile interpolation between resampled medians lands
    # on the largest value; the interval must never leave [min, max]
    rng = np.random.default_rng(7)
    for trial in range(200):
        x = rng.uniform(1e5, 2e5, size=int(rng.integers(2, 9)))
        lo, hi = median_ci(x, seed=trial)
        assert x.min() <= lo <= np.median(x) <= hi <= x.max()
    # and it is a real interval: shifting the data shifts it, widening the data widens it
    base = np.array([100.0, 101.0, 102.0, 103.0, 104.0])
    lo, hi = median_ci(base)
    lo2, hi2 = median_ci(base + 1000.0)
    assert (lo2, hi2) == pytest.approx((lo + 1000.0, hi + 1000.0))
    lo3, hi3 = median_ci(np.array([100.0, 101.0, 102.0, 103.0, 10_000.0]))
    assert hi3 >= hi and lo < hi
