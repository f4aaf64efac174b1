# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 03 — Ultimate stress, measured honestly
#
# A common check runs **64 threads × 200 iterations** of `randn → matmul → sum`, synchronising every 20
# iterations, counts Python exceptions, prints *"Total errors: 0"* once and calls the work *proven correct*.
# One clean run says little: a concurrency bug that kills the process takes the counter with it, a hang
# never prints, and a silently wrong number is not an exception at all.
#
# This notebook runs the same configuration three ways:
#
# 1. **in process**, checked by the *serial-replay oracle* (each thread's work replayed alone with the same
#    random seeds; per-iteration checksums must agree), so silent wrong answers count as failures;
# 2. as **isolated trials**, one child process each, so crashes (SIGSEGV, SIGABRT from a Metal assertion) and
#    hangs are classified instead of ending the notebook, and the result is a **failure rate with its 95% interval**;
# 3. as a **sweep over thread counts**, to draw throughput versus threads next to the batched baseline: one
#    thread doing the same total work as batched operations, which is what concurrent inference has to beat.
#
# All logic lives in `mpslab`; this notebook narrates and calls. Parameters below default to the round's
# configuration; `python -m mpslab run --profile quick|seed|full` runs it headlessly.

# %% tags=["parameters"]
device: str = "auto"  # auto | cpu | cuda | cuda:N | mps; auto picks mps, else cuda, else cpu
data_dir: str = "../reports/interactive/data"  # where tidy tables, CSV and JSON lines, are written
figures_dir: str = "../reports/interactive/figures"  # where PNG and SVG figures are written
progress: bool = True  # progress bars (widgets in JupyterLab); the pipeline sets False for headless runs
threads: int = 64  # worker threads of the ultimate stress; the verification round: 64
iterations: int = 200  # iterations per thread; the verification round: 200
sync_every: int = 20  # synchronise the device every k iterations, 0 for only at the end; the verification round: 20
workload: str = "seed"  # registry name; seed is randn -> matmul -> sum
size: int = 256  # matrix side; the verification round did not record it
dtype: str = "float32"  # float32 | float16 | bfloat16 | float64, which mps lacks
trials: int = 20  # isolated trials of the same configuration, one child process each
trial_timeout_s: float = 300.0  # a trial with no result after this many seconds is a hang
scheduler: "Optional[str]" = None  # tcp://HOST:8786: run the trials on the workers of that Dask scheduler; None: here
pool: bool = False  # pool trials of different environments (hosts, torch builds, devices) into one rate
sweep_threads: list = [1, 2, 4, 8, 16, 32, 64]  # thread counts of the throughput sweep
sweep_streams: list = ["shared"]  # stream modes to compare; per-thread needs a backend with streams
sweep_iterations: int = 50  # iterations per thread at each sweep point
repeats: int = 3  # runs per sweep point: the median and its CI are over these
isolate_sweep: bool = False  # run every sweep point in child processes: slower, survives crashes
require_ok: bool = False  # fail this notebook if any run or trial failed: CI on a known-good backend

# %% [markdown]
# ## Set-up and environment
#
# The configuration is validated before anything runs: a bad value stops here with one line naming it.

# %%
import os

import pandas as pd

import mpslab
from mpslab import StressConfig, failure_rate, plots, run_stress, run_trials
from mpslab.report.tables import sweep_table, trials_table
from mpslab.run.environment import environment
from mpslab.studies.sweep import summarize, sweep
from mpslab.trials.outcomes import OUTCOMES, Outcome

os.makedirs(data_dir, exist_ok=True)
os.makedirs(figures_dir, exist_ok=True)
config = StressConfig(
    threads=threads,
    iterations=iterations,
    sync_every=sync_every,
    workload=workload,
    size=size,
    dtype=dtype,
    device=device,
)
env = environment(config.device)
pd.Series(env, name="value").to_frame()

# %% [markdown]
# ## 1. The round's run, in process, with the oracle
#
# The block below reproduces the round's lines (completed in, total operations, throughput, total errors) and adds
# what the round did not look at: how many of the per-iteration checksums disagree with a serial replay, and the
# latency distribution of one iteration.

# %%
result = run_stress(config)
print(result.summary())
pd.DataFrame([result.to_row()]).to_csv(os.path.join(data_dir, "ultimate_stress_inprocess.csv"), index=False)

# %% [markdown]
# ## 2. The same configuration as isolated trials
#
# Each trial is a fresh child process running the configuration above. A crash or a hang is one outcome among
# others, not the end of the notebook. Trials are appended to a JSON-lines store as they finish; re-running
# this cell with the same store resumes instead of starting over.

# %%
client = None
if scheduler:
    from mpslab.trials.executors import connect

    client = connect(scheduler)
trials_df = run_trials(
    config,
    trials=trials,
    timeout_s=trial_timeout_s,
    store=os.path.join(data_dir, "ultimate_stress_trials.jsonl"),
    client=client,
    progress=progress,
)
trials_df.to_csv(os.path.join(data_dir, "ultimate_stress_trials.csv"), index=False)
rate = failure_rate(trials_df, pool=pool)
print(rate)
trials_table(trials_df)

# %% [markdown]
# The line above is the verdict this notebook can support: failures out of trials, with a 95% interval.
# Zero failures gives an upper bound on the failure rate, never a proof of correctness; more trials narrow it.

# %% [markdown]
# ## 3. Throughput versus threads, next to the batched baseline
#
# Each grid point is run `repeats` times; the summary gives the median throughput with a confidence interval over
# the repeats, speedup and parallel efficiency against one thread, latency percentiles and outcome counts.
#
# The table shows what to compare; `throughput_summary.csv` (one row per grid point, every column) and `throughput_sweep.csv` (one row per run) hold the rest. On the *batched* row, `threads` is the batch size; `–` marks a value that does not exist (an interval from a single run, the efficiency of a batched run).

# %%
sweep_df = sweep(
    config.replace(iterations=sweep_iterations),
    threads=sweep_threads,
    streams=sweep_streams,
    repeats=repeats,
    isolate=isolate_sweep,
    progress=progress,
)
summary = summarize(sweep_df)
sweep_df.to_csv(os.path.join(data_dir, "throughput_sweep.csv"), index=False)
summary.to_csv(os.path.join(data_dir, "throughput_summary.csv"), index=False)
sweep_table(summary)

# %%
fig = plots.plot_throughput(sweep_df)
saved = plots.save_figure(fig, "throughput_vs_threads", figures_dir)
fig

# %% [markdown]
# *Figure 1 — throughput versus threads.* Where the solid median line rises, more threads add throughput; where it stays under the dashed batched baseline, one thread running batched operations does the same work faster. The band is the confidence interval of the median over the repeats; a red X marks a point where a run failed.

# %%
fig = plots.plot_latency(sweep_df)
saved += plots.save_figure(fig, "latency_vs_threads", figures_dir)
fig

# %% [markdown]
# *Figure 2 — latency per iteration.* The gap between p50 (solid) and p99 (dashed) is the tail: a p99 that climbs faster than the p50 as threads are added means contention shows up as stalls of a few iterations.

# %%
fig = plots.plot_outcome_matrix(pd.concat([sweep_df, trials_df.assign(mode="isolated trials")], ignore_index=True))
saved += plots.save_figure(fig, "outcome_matrix", figures_dir)
fig

# %% [markdown]
# *Figure 3 — outcomes per grid point.* Every count outside the green *ok* column is a failed run (an error, a checksum that disagrees with the serial replay, a crash or a hang); the *isolated trials* row is section 2's configuration run in separate processes.

# %% [markdown]
# ## Checks on this notebook's own results
#
# The notebook fails loudly if the instrument did not do what it claims: every trial classified, every sweep
# point measured, every figure written. With `require_ok=True` (the CI profile on the CPU, where nothing should
# fail) any failed run fails the notebook too.

# %%
assert result.completed <= config.ops and result.outcome in OUTCOMES
assert len(trials_df) == trials and set(trials_df["outcome"]) <= set(OUTCOMES)
assert rate.trials == trials and 0.0 <= rate.low <= rate.high <= 1.0
assert set(sweep_df["threads"]) == set(sweep_threads)
assert all(os.path.getsize(path) > 0 for path in saved)
if require_ok:
    assert result.outcome == Outcome.OK, result.summary()
    assert rate.failures == 0, str(rate)
    assert (sweep_df["outcome"] == Outcome.OK).all(), sweep_df[sweep_df["outcome"] != Outcome.OK]
print("checks passed:", "require_ok" if require_ok else "instrument only")

# %% [markdown]
# ## Verdict
#
# One line for the report's index: the in-process run, the isolated trials' failure rate with its interval,
# and the sweep.

# %% tags=["verdict"]
sweep_failed = int((sweep_df["outcome"] != Outcome.OK).sum())
print(
    f"in process: {result.outcome}; isolated trials: {rate.failures} of {rate.trials} failed, "
    f"failure rate {rate.interval_text()} ({rate.confidence:.0%}); "
    f"sweep: {sweep_failed} of {len(sweep_df)} runs failed"
)

# %% [markdown]
# ## Environment at the end

# %%
print(
    f"mpslab {mpslab.__version__} ({env['mpslab_commit']}), torch {env['torch']} [{env['torch_build']}], "
    f"python {env['python']}, device {config.device}: {env['device_name']}"
)
