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
# # 05 — What to run: the advisor
#
# People who serve a model from several threads ask: *how should I run this here — how many threads, with a
# lock or a semaphore, syncing how often, streams or not, or should I batch instead — and how sure can I be
# that it will not crash?* This notebook answers it with evidence, on this machine: the advisor
# (`mpslab.studies.advisor`) plans a grid of ways to serve one workload that fits a time budget, measures
# requests/s in process (repeats: the median, with an interval named by the level it has — the range of 3
# repeats covers the median 75% of the time, 6 repeats reach 95%), runs isolated trials for the configurations
# it may recommend, corrects for picking the best of several (Bonferroni), and recommends the configuration with
# the highest median speed whose failure bound is below `max_failure` — or says that none qualified and what it
# would take. A configuration is called slower than the pick only where an exact test on the repeats separates
# them; otherwise it is "tied with the pick within noise". A request is one workload step; a batched call of
# size B serves B requests.

# %% tags=["parameters"]
device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
data_dir: str = "../reports/interactive/data"  # where tidy CSV tables are written
figures_dir: str = "../reports/interactive/figures"  # where PNG/SVG figures are written
workload: str = "mlp"  # registered workload to serve (python -m mpslab workloads)
budget: str = "2m"  # time budget for the whole advice, e.g. 90s, 10m
max_failure: float = 0.05  # the failure-rate bound (95%, one-sided) a recommendation must show
threads: str = ""  # threads axis such as 1,2,4,8 (empty: the backend default)
throttle: str = ""  # controls none (no limit), 1 (global lock), k (semaphore of k); empty: default
sync: str = ""  # sync patterns every, K (every K iterations), end (empty: default)
batch_sizes: str = ""  # batched-call sizes such as 8,32 (empty: default)
size: int = 256  # problem size
repeats: int = 3  # in-process throughput repeats per configuration (3: a 75% interval; 6 or more: 95%)
progress: bool = True  # show a progress bar

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
env = environment(resolved_device)
pd.Series(env)

# %% [markdown]
# ## Plan, measure, decide
#
# The plan and its ETA are printed before any measurement; every record goes to `data_dir/advisor/`, so running
# the notebook again with the same parameters resumes instead of starting over.

# %%
from mpslab.studies.advisor import advise
from mpslab.studies.advisor.budget import BudgetError


def run_advisor(budget_text):
    return advise(
        workload,
        resolved_device,
        budget_text,
        max_failure,
        threads=threads or None,
        throttle=throttle or None,
        sync=sync or None,
        batch_sizes=batch_sizes or None,
        size=size,
        repeats=repeats,
        out=os.path.join(data_dir, "advisor"),
        progress=progress,
    )


try:
    result = run_advisor(budget)
except BudgetError as exc:  # a busy machine made calibration slower than the budget allows: say so, go on
    if exc.need_s is None:
        raise
    display(
        Markdown(
            f"*The budget of {budget} was too small on this machine just now ({exc}); "
            f"running again with {1.5 * exc.need_s + 5:.0f} s.*"
        )
    )
    result = run_advisor(f"{1.5 * exc.need_s + 5:.0f}s")
table = result.table
table.to_csv(os.path.join(data_dir, "advisor_table.csv"), index=False)
result.rows.to_csv(os.path.join(data_dir, "advisor_throughput.csv"), index=False)

# %% [markdown]
# ## The table
#
# One row per configuration: requests/s (median of the repeats, with an order-statistic interval whose exact
# level the column name gives), latency per request, isolated trials and failures, the failure rate's one-sided
# upper bound (Bonferroni-corrected across the configurations the plan set aside trials for; rounded up) and
# the verdict.

# %%
from mpslab.report.tables import advisor_table

advisor_table(table)

# %% [markdown]
# ## Throughput against threads, one line per control

# %%
from mpslab.report.advisor_plots import plot_advisor_frontier, plot_advisor_throughput
from mpslab.report.plots import save_figure

fig = plot_advisor_throughput(
    table, max_failure=max_failure, title=f"Advisor: {workload} on {env.get('device_name')}, torch {env.get('torch')}"
)
saved = save_figure(fig, "advisor_throughput", figures_dir)
fig

# %% [markdown]
# *Each line is one way of limiting concurrency (no limit, a global lock, a semaphore of k) at one sync pattern;
# the band is the interval named on the axis (with 3 repeats, their range: a 75% interval). Dashed lines are one thread doing batched calls. Ringed points
# showed a failure bound below `max_failure`; a cross marks a configuration that failed in its trials.*

# %%
fig = plot_advisor_frontier(table, title=f"Advisor: requests/s against p99 latency ({workload})")
saved += save_figure(fig, "advisor_frontier", figures_dir)
fig

# %% [markdown]
# *Labelled points are not dominated: no other configuration is both faster and has a lower p99 latency. Pick
# among them by which of the two matters more to you; the recommendation below weighs safety first.*

# %% [markdown]
# ## The recommendation (written from this run's data)

# %%
display(Markdown(result.text))
assert (table["requests_per_s"] > 0).all(), "every configuration measured a positive throughput"
assert result.text.startswith("Recommended:") == result.recommended, "the paragraph agrees with the decision"
assert ("95% CI" in result.text) <= (table["repeats"].min() >= 6), "a 95% interval is named only where it is one"

# %% [markdown]
# ## Verdict
#
# One line for the report's index: the recommendation with its bound, or why nothing qualified.

# %% tags=["verdict"]
print(result.text.split("\n")[0].split(". ")[0].rstrip(".") + ".")  # its first sentence
