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
# # 07 — The casebook: real torch concurrency bugs across releases
#
# *Does the instrument find bugs that someone else reported, and in which release did each appear?* The
# casebook holds real, public, cited concurrency bugs of released PyTorch (pytorch/pytorch issues and downstream
# projects that hit them), each reduced to a workload, plus **controls**: fixed bugs that must stay fixed.
# This notebook lists the cases with their citations, runs them as isolated trials under one or more
# interpreters (torch builds, oldest first) **interleaved in blocks**, and shows the failure rate per
# (case, build) with its exact 95% interval. Between adjacent builds it names a case's **first failing build**
# with the two-sample test of `mpslab.studies.compare` and Holm's correction over all cases x adjacent pairs.
#
# With `pythons` left empty it runs under the interpreter running this notebook (one build: rates only).

# %% tags=["parameters"]
device: str = "auto"  # auto | cpu | cuda | mps (the same for every build)
data_dir: str = "../reports/interactive/data"  # where tidy CSV tables are written
figures_dir: str = "../reports/interactive/figures"  # where PNG/SVG figures are written
pythons: list = []  # interpreters (torch builds), oldest first; empty: the interpreter running this notebook
cases: list = []  # case names; empty: every case that applies to the device
trials: int = 10  # isolated trials per case and build
block: int = 5  # trials per interleaved block (the build order rotates each round)
timeout: float = 0.0  # seconds before a trial counts as a hang; 0: each case's own
store: str = ""  # JSON-lines store to write and resume; empty: matrix_trials.jsonl in data_dir
progress: bool = False  # print one line per block

# %% [markdown]
# ## The cases and their citations
#
# `expected`: the outcome class of an isolated trial under an affected build (`ok` for a control). `versions`:
# affected and fixed versions as reported. CUDA cases need a CUDA machine and the MPS case Apple silicon: on
# another device they are listed but not run.

# %%
import os
import sys

import pandas as pd
from IPython.display import display

from mpslab.report.matrix_plots import plot_matrix
from mpslab.report.style import save_figure
from mpslab.run.environment import environment
from mpslab.studies.casebook import casebook_listing
from mpslab.studies.matrix import run_matrix

os.makedirs(data_dir, exist_ok=True)
os.makedirs(figures_dir, exist_ok=True)
pd.set_option("display.max_colwidth", 120)
listing = casebook_listing()
listing.to_csv(os.path.join(data_dir, "casebook_cases.csv"), index=False)
listing[["name", "kind", "platform", "expected", "versions", "links"]].set_index("name")

# %% [markdown]
# ## This machine

# %%
env = environment("cpu" if device == "auto" else device)
print({k: env[k] for k in ("host", "platform", "python", "torch", "torch_git", "device_name", "cpu_count")})

# %% [markdown]
# ## Run: every case under every build, interleaved
#
# Each interpreter is probed first (it must exist and import torch) and every named case must apply to the
# device: bad input stops here, before any trial. A re-run with the same store resumes it.

# %%
result = run_matrix(
    pythons or [sys.executable],
    cases or None,
    trials=trials,
    block=block,
    timeout_s=timeout or None,
    device=device,
    store=store or os.path.join(data_dir, "matrix_trials.jsonl"),
    progress=print if progress else None,
)
result.rows.drop(columns=["stderr_tail", "hang_stacks"], errors="ignore").to_csv(
    os.path.join(data_dir, "matrix_trials.csv"), index=False
)
result.table.to_csv(os.path.join(data_dir, "matrix_table.csv"), index=False)
result.tests.to_csv(os.path.join(data_dir, "matrix_tests.csv"), index=False)
print(result.report())

# %% [markdown]
# ## Failure rate per case and build
#
# `interval`: exact (Clopper-Pearson) 95% interval of the failure rate. `outcomes`: the failed trials by class.

# %%
result.table[["case", "build", "failures", "trials", "interval", "outcomes"]].set_index(["case", "build"])

# %%
labels = [b.label for b in result.builds]
first = {r.case: r.first_failing_build for r in result.tests.itertuples() if r.first_failing_build}
fig = plot_matrix(result.table, labels, first)
save_figure(fig, "matrix", figures_dir)
display(fig)
import matplotlib.pyplot as plt  # noqa: E402

plt.close(fig)

# %% [markdown]
# ## Where each case turns
#
# One row per case and adjacent pair of builds: the two-sample test's p-value and its Holm-adjusted value (one
# family: all cases x adjacent pairs, family-wise 5%). `first_failing_build`: the later build of the first pair
# whose adjusted p is below 5% with more failures there. Empty with a single build.

# %%
result.tests

# %% [markdown]
# ## Verdict
#
# One line for the report's index: how many cases failed on some build, and where a case turned (Holm over
# cases x adjacent pairs).

# %% tags=["verdict"]
failing = result.table[result.table["failures"] > 0]["case"].nunique()
turns = "; ".join(f"{c} first fails on {b}" for c, b in first.items()) or "no case turned between adjacent builds"
print(f"{failing} of {result.table['case'].nunique()} cases failed on some build; {turns}")
