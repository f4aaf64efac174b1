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
# # 04 — The scenario library
#
# The verification round's stress op (randn → matmul → sum) is a probe, not the work people run. This notebook runs the
# **scenario library** (`mpslab.studies.scenarios`): workloads reduced from public MPS bug reports, so that
# *"does this build still fail the way users reported?"* is one call, plus real inference (an MLP of the
# origin shape, a transformer encoder layer, a channels_last CNN) shared by every thread.
#
# Every scenario runs as **isolated trials** (`mpslab.run_trials`): each trial a fresh child process, its
# outcome classified (ok / error / mismatch / crash / hang), checked by the serial-replay oracle. The result is
# one table — failure rate with its interval per scenario — and one figure. A scenario that cannot run on the
# chosen device or dtype says **not applicable** and why; it is never counted as a pass.

# %% tags=["parameters"]
device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
data_dir: str = "../reports/interactive/data"  # where tidy CSV tables are written
figures_dir: str = "../reports/interactive/figures"  # where PNG/SVG figures are written
scenarios: list = []  # scenario names to run; [] runs the whole library (see `python -m mpslab scenarios`)
trials: int = 10  # isolated trials per scenario (each a fresh child process)
timeout_s: float = 120.0  # seconds before a trial counts as a hang
threads: int = 0  # threads per trial; 0 keeps each scenario's own (from its report)
iterations: int = 0  # iterations per thread; 0 keeps each scenario's own
progress: bool = False  # show a progress bar per scenario
store: str = ""  # JSON-lines store that a re-run resumes; empty: scenario_trials.jsonl in data_dir
scheduler: "Optional[str]" = None  # tcp://HOST:8786: run the trials on that Dask scheduler's workers; None: here

# %% [markdown]
# ## Environment

# %%
import os

import pandas as pd
from IPython.display import Markdown, display

from mpslab.run.backends import resolve_device
from mpslab.run.environment import environment

resolved_device = resolve_device(device)
os.makedirs(data_dir, exist_ok=True)
os.makedirs(figures_dir, exist_ok=True)
pd.set_option("display.max_colwidth", 120)
pd.Series(environment(resolved_device))

# %% [markdown]
# ## The library: what each scenario does, where it comes from, where it applies
#
# `cold` marks a scenario whose bug shows only in a fresh process (it runs with no warm-up: `unary-burst`);
# `launch` = `spawn` marks one whose measurement is the interpreter's own exit (`exit-after-work`).

# %%
from mpslab.report.reader import scenario_reader_table, wrapped
from mpslab.studies.scenarios import run_library, scenario_listing

listing = scenario_listing()
listing.to_csv(os.path.join(data_dir, "scenario_catalogue.csv"), index=False)
wrapped(listing.set_index("name"))

# %% [markdown]
# ## Run every scenario as isolated trials
#
# Unknown names, or a scenario named explicitly that does not apply to this device, are refused in one line
# before any trial runs. With the whole library selected, the ones that do not apply are listed with why.
# Each trial is appended to a JSON-lines store as it ends; a re-run with the same store runs only the trials
# still missing (so a long run can be split across sessions, or its trials spread over Dask workers).

# %%
client = None
if scheduler:
    from mpslab.trials.executors import connect

    client = connect(scheduler)
store_path = store or os.path.join(data_dir, "scenario_trials.jsonl")
rows, table = run_library(
    scenarios or None,
    resolved_device,
    trials=trials,
    timeout_s=timeout_s,
    threads=threads or None,
    iterations=iterations or None,
    progress=progress,
    store=store_path,
    client=client,
)
rows.to_csv(os.path.join(data_dir, "scenario_trials.csv"), index=False)
table.to_csv(os.path.join(data_dir, "scenario_table.csv"), index=False)
scenario_reader_table(table)

# %% [markdown]
# *failure rate* is the share of trials that did not end `ok`; the interval beside it is its exact
# (Clopper–Pearson) 95% interval: with zero failures in n trials the true rate can still be as high as
# its upper end. *throughput* is the median over trials of completed iterations per second. The table
# is rounded for reading; `scenario_table.csv` keeps every digit.

# %%
from mpslab.report.plots import plot_scenario_rates, save_figure

fig = plot_scenario_rates(table, context=rows)
saved = save_figure(fig, "scenario_failure_rates", figures_dir)
fig

# %% [markdown]
# *Each bar is one scenario's failure rate on this device; the whisker is its exact 95% interval. A bar at zero with a long whisker means "no failure seen, but too few trials to rule out a rate up to the whisker's end".*

# %% [markdown]
# ## What this run says

# %%
from mpslab.report.reader import interval_text, rate_text

ran = table[table["status"] == "ran"]
failing = ran[ran["failures"] > 0]
lines = [
    f"{len(ran)} scenario(s) ran on `{resolved_device}`, {int(ran['trials'].sum())} isolated trials in all; "
    f"{len(table) - len(ran)} not applicable here."
]
for r in failing.itertuples():
    lines.append(
        f"- **{r.scenario}** failed {r.failures}/{r.trials} trials "
        f"({rate_text(r.failure_rate)}, 95% CI {interval_text(r.rate_low, r.rate_high)}); source: {r.citation}"
    )
if failing.empty:
    lines.append("No scenario failed here. This is not evidence about Apple MPS unless the device above is `mps`.")
display(Markdown("\n".join(lines)))

# %% tags=["verdict"]
print(
    f"{len(failing)} of {len(ran)} scenarios failed on {resolved_device}"
    + (": " + ", ".join(f"{r.scenario} {r.failures}/{r.trials}" for r in failing.itertuples()) if len(failing) else "")
    + f" ({int(ran['trials'].sum())} isolated trials; {len(table) - len(ran)} not applicable here)"
)
