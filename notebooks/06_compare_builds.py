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
# # 06 — Compare two torch builds
#
# *Is the patched build really better than the release?* This notebook runs the same scenarios as isolated
# trials under two interpreters (two venvs, two torch builds), **interleaved in blocks** so that drift in the
# machine falls on both, and reports per scenario: each side's failures with their exact 95% intervals,
# **Barnard's exact test** of the difference (two-sided), a verdict in words, and the throughput ratio b / a
# paired by interleaved round ("b is 1.18x faster [1.10x, 1.25x]", "not significant", or "too few rounds" when
# the rounds cannot support an exact interval: 6 at 95%, more when several scenarios share the 5%).
#
# The scenarios are one family: failure verdicts use Holm's rule and throughput intervals Bonferroni's level,
# so with both interpreters left empty (an **A/A check** on the current interpreter) any "significant" verdict
# of either kind shows up in at most 5% of runs. Methods and their exact checks: `docs/statistics.md`.

# %% tags=["parameters"]
device: str = "auto"  # auto | cpu | cuda | mps (the same for both sides)
data_dir: str = "../reports/interactive/data"  # where tidy CSV tables are written
figures_dir: str = "../reports/interactive/figures"  # where PNG/SVG figures are written
python_a: str = ""  # interpreter a, e.g. the release venv python; empty: the interpreter running this notebook
python_b: str = ""  # interpreter b, e.g. the patched build venv python; empty: the interpreter running this notebook
same_build_ok: bool = False  # allow two interpreters with the same torch build (always on for an A/A run)
scenarios: list = []  # scenario names; empty: the whole library that applies to the device
trials: int = 20  # isolated trials per scenario and side
block: int = 2  # trials per interleaved block (a, b, then b, a and so on); the throughput unit is the round
timeout: float = 60.0  # seconds before a trial counts as a hang
threads: int = 0  # threads per trial; 0 keeps each scenario's own
iterations: int = 0  # iterations per thread; 0 keeps each scenario's own
store: str = ""  # JSON-lines store to write and resume; empty: compare_trials.jsonl in data_dir
progress: bool = False  # print one line per block

# %% [markdown]
# ## Both environments
#
# Each interpreter is checked before any trial: it must exist and import torch. Two that report the same
# torch build are refused unless `same_build_ok` (an A/A check).

# %%
import os
import sys

import pandas as pd
from IPython.display import Markdown, display

from mpslab.studies.compare import compare_builds, environment_lines

a_path = python_a or sys.executable
b_path = python_b or sys.executable
aa = os.path.realpath(a_path) == os.path.realpath(b_path)
os.makedirs(data_dir, exist_ok=True)
os.makedirs(figures_dir, exist_ok=True)
store_path = store or os.path.join(data_dir, "compare_trials.jsonl")
pd.set_option("display.max_colwidth", 80)

# %% [markdown]
# ## Run: every scenario under a and b, interleaved

# %%
result = compare_builds(
    a_path,
    b_path,
    scenarios or None,
    trials=trials,
    block=block,
    timeout_s=timeout,
    device=device,
    store=store_path,
    same_build_ok=same_build_ok or aa,
    threads=threads or None,
    iterations=iterations or None,
    progress=print if progress else None,
)
print("\n".join(environment_lines(result.a) + environment_lines(result.b)))
result.rows.drop(columns=["stderr_tail", "hang_stacks"], errors="ignore").to_csv(
    os.path.join(data_dir, "compare_trials.csv"), index=False
)
result.table.to_csv(os.path.join(data_dir, "compare_table.csv"), index=False)
pd.DataFrame(
    [
        dict(side=s.label, **{k: v for k, v in s.info.items() if k != "build_flags"}, **s.info.get("build_flags", {}))
        for s in (result.a, result.b)
    ]
).to_csv(os.path.join(data_dir, "compare_environments.csv"), index=False)

# %% [markdown]
# ## The table
#
# `a` / `b`: failures of trials with exact (Clopper-Pearson) 95% intervals. *failures*: Barnard's exact test,
# two-sided, decided by Holm's rule over the scenarios at 5% family-wise (`p (Holm ...)`). *throughput*: median
# ops/s of b over a per interleaved round, Hodges-Lehmann ratio with the exact signed-rank interval at
# 1 - 0.05 / (number of scenarios); "too few rounds" where no interval at that level exists. Rounded for
# reading; `compare_table.csv` keeps every digit.

# %%
from mpslab.report.reader import compare_reader_table

compare_reader_table(result.table)

# %%
print(result.report())

# %% [markdown]
# ## Side by side

# %%
from mpslab.report.plots import plot_compare, save_figure

label = lambda s: (
    f"torch {s.info['torch']} ({os.path.basename(os.path.dirname(os.path.dirname(s.python))) or s.python})"
)
fig = plot_compare(result.table, label_a=label(result.a), label_b=label(result.b))
saved = save_figure(fig, "compare_builds", figures_dir)
fig

# %% [markdown]
# *Left: each scenario's failure rate under a (grey) and b (blue) with exact 95% whiskers; a star marks a
# significant difference (Barnard's test, Holm's rule over the scenarios at 5%). Right: throughput of b over a
# with its round-paired interval; right of the dashed line b is faster, a whisker crossing it is not
# significant, and a scenario with too few rounds has no point.*

# %% [markdown]
# ## What this comparison says

# %%
t = result.table
lines = [
    f"{len(t)} scenario(s) on `{result.device}`, {int(t['a_trials'].sum() + t['b_trials'].sum())} isolated "
    f"trials; a = torch {result.a.info['torch']}, b = torch {result.b.info['torch']}"
    + (" (A/A check: same interpreter)" if aa else "")
    + "."
]
for r in t.itertuples():
    lines.append(f"- **{r.scenario}**: failures — {r.verdict}; throughput — {r.throughput}")
for name, why in result.skipped.items():
    lines.append(f"- {name}: not applicable ({why})")
display(Markdown("\n".join(lines)))

# %% tags=["verdict"]
differ = t[t["significant"]]
print(
    f"{len(differ)} of {len(t)} scenarios differ in failure rate between a and b (Barnard, p < 0.05)"
    + (": " + ", ".join(differ["scenario"]) if len(differ) else "")
    + f"; a = torch {result.a.info['torch']}, b = torch {result.b.info['torch']}"
    + (" (A/A check: same interpreter)" if aa else "")
)

# %% [markdown]
# ## The kernel's own environment
#
# The notebook ran the comparison from this interpreter (the two builds ran in their own child processes).

# %%
from mpslab.run.environment import environment

pd.Series(environment("cpu"))
