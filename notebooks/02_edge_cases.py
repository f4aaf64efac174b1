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
# # 02 — Edge cases
#
# The verification round's *Attempt 2* was a table of error-handling patterns — `TORCH_CHECK` for user-facing
# errors, `TORCH_INTERNAL_ASSERT` for invariants, `@try/@catch` for Metal exceptions, `try/catch` for C++
# exceptions, `nullptr` returns during shutdown — judged safe by **reading code**. A pattern in the source
# says nothing about what a user sees, or whether the *other* threads of a process survive it.
#
# This notebook runs an **edge-case catalogue** (`mpslab.studies.edges`) instead. Each case has an expected
# outcome written per backend (an exception type and message fragment, or "completes with the right
# result", or *not applicable* with the reason — one answer is not pretended to fit every backend). Each
# case runs twice: **alone**, and **while other threads keep computing** checked matmuls. After each run
# a **canary** computation must give the right answer (*healthy*) and the other threads must have
# finished with right results (*isolated*). Cases that can kill a process run in a child process whose
# exit code and stderr are checked.

# %% tags=["parameters"]
device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
data_dir: str = "../reports/interactive/data"  # where tidy CSV tables are written
figures_dir: str = "../reports/interactive/figures"  # where PNG/SVG figures are written
progress: bool = True  # progress bars (widgets in JupyterLab); the pipeline sets False for headless runs
threads: int = 8  # threads inside the multi-threaded cases, and background threads in the "with others" run
size: int = 64  # matrix side of the cases' and background threads' matmuls
timeout_s: float = 120.0  # a case (or child process) with no answer after this is recorded as a hang
background_pause_s: float = 0.0  # seconds each background thread rests between its matmuls; 0 means flat out
include_cpu: bool = True  # also run the catalogue on the CPU when device is cuda or mps
known_failures: list = ["exit_while_threads_in_ops"]  # cases allowed to fail without failing the notebook (see below)

# %% [markdown]
# ## Environment

# %%
import os

import pandas as pd
from IPython.display import Markdown, display

from mpslab.run.backends import get_backend, resolve_device
from mpslab.run.environment import environment

resolved_device = resolve_device(device)
os.makedirs(data_dir, exist_ok=True)
os.makedirs(figures_dir, exist_ok=True)
pd.set_option("display.max_colwidth", 160)
pd.Series(environment(resolved_device))

# %% [markdown]
# ## How a case is judged
#
# | column | meaning |
# |---|---|
# | `expected` | the outcome written for this backend |
# | `observed`, `observed_with_others` | what happened alone, and with `threads` background threads working |
# | `isolated` | every background thread finished, each of its matmuls right |
# | `healthy` | the canary matmul was right after both runs |
# | `status` | **pass** (expected outcome both times, isolated, healthy), **fail** (anything else), **not applicable** (the case does not exist on this backend), **not run** (backend absent) |
#
# ## The catalogue: what each case expects, per backend

# %%
from mpslab.report.plots import plot_edge_matrix, save_figure
from mpslab.studies.edges import (
    EDGE_STATUSES,
    FAIL,
    NOT_APPLICABLE,
    NOT_RUN,
    PASS,
    edge_catalogue,
    edge_failures,
    run_edges,
)

expectations = edge_catalogue()
expectations.to_csv(os.path.join(data_dir, "edge_catalogue.csv"), index=False)
expectations.set_index("case")

# %% [markdown]
# ## Running the catalogue
#
# Every case on the resolved device (and on the CPU when `include_cpu`), alone and then with other
# threads working. Child-process cases take a few seconds each: the child imports torch.

# %%
devices = [resolved_device]
if include_cpu and get_backend(resolved_device).kind != "cpu":
    devices.append("cpu")
edges = pd.concat(
    [run_edges(d, threads=threads, size=size, timeout=timeout_s, pause=background_pause_s) for d in devices],
    ignore_index=True,
)
edges.to_csv(os.path.join(data_dir, "edge_cases.csv"), index=False)
edges[["case", "backend", "expected", "observed", "isolated", "healthy", "status"]]

# %% [markdown]
# ## The edge-case matrix
#
# Per case: the expected outcome alone, the expected outcome with other threads working, isolation,
# health, and the overall status.

# %%
fig = plot_edge_matrix(edges)
saved = save_figure(fig, "edge_matrix", figures_dir)
fig

# %% [markdown]
# *Figure 1 — edge-case matrix.* Read it by row: a case passes only when all its checks are green; a red *isolated* or *healthy* cell means the case harmed the other threads or left the device broken, which matters more than the case's own error.

# %% [markdown]
# ## Failures, with their tracebacks
#
# Every failed row: what was expected, what was observed, and the traceback (or the child process's
# stderr).

# %%
failures = edge_failures(edges)
failures.to_csv(os.path.join(data_dir, "edge_failures.csv"), index=False)
for r in failures.itertuples():
    print(f"=== {r.case} [{r.backend}]\nexpected: {r.expected}\nobserved: {r.observed}\n{r.traceback}\n")
print(f"{len(failures)} failed row(s)")

# %% [markdown]
# ### The known failure: `exit_while_threads_in_ops`
#
# The child starts daemon threads that loop on torch matmuls and lets the main thread return, so the
# interpreter exits while those threads are inside torch ops. The catalogue expects a clean exit (code 0,
# nothing on stderr that signals a crash). Where this case fails, the row above shows what was measured:
# the exit status (on the development machine: killed by signal 6) and the child's stderr (there:
# `terminate called without an active exception`).
#
# Our reading of the cause, not measured here: during interpreter finalization CPython ends a daemon
# thread that tries to take the GIL back with `pthread_exit`, and the forced unwinding through torch's
# C++ frames ends in `std::terminate`. What a user should take from it: **stop and join inference
# threads before the interpreter exits** — the cooperative version (`keyboard_interrupt_main_mid_run`,
# which stops and joins its workers) exits as expected. The case stays in the catalogue as a failure so
# that a torch or Python version that fixes it shows up as a pass (reported by the checks below).

# %% [markdown]
# ## Checks
#
# The notebook fails loudly if: a status is outside the vocabulary; a case failed that is not listed in
# `known_failures`; a backend that ran has a *not run* row; a *not applicable* row gives no reason; or a
# *pass* row lacks its isolation and health evidence.

# %%
assert set(edges["status"]) <= set(EDGE_STATUSES), set(edges["status"])
assert all(os.path.getsize(path) > 0 for path in saved)
failed = edges[edges["status"] == FAIL]
unexpected = failed[~failed["case"].isin(known_failures)]
assert unexpected.empty, "unexpected failures:\n" + "\n\n".join(
    f"{r.case} [{r.backend}]: {r.traceback}" for r in unexpected.itertuples()
)
assert not (edges["status"] == NOT_RUN).any(), "a backend that ran has rows marked not run"
na = edges[edges["status"] == NOT_APPLICABLE]
assert (na["detail"].str.len() > 0).all(), "a not-applicable row without its reason"
passed = edges[edges["status"] == PASS]
assert (passed["isolated"] == True).all() and (passed["healthy"] == True).all()  # noqa: E712
for case in sorted(set(known_failures) - set(failed["case"])):
    print(f"known failure {case!r} did not fail in this run: it passes here now")
edges.groupby(["backend", "status"]).size().unstack(fill_value=0)

# %% [markdown]
# ## Verdict
#
# One line: how many edge cases that apply here failed, and which (the report's index shows it).

# %% tags=["verdict"]
applicable = edges[~edges["status"].isin([NOT_RUN, NOT_APPLICABLE])]
print(
    f"{len(failed)} of {len(applicable)} edge cases failed"
    + (f": {', '.join(sorted(set(failed['case'])))}" if len(failed) else "")
    + f" ({', '.join(sorted(set(applicable['backend'])))}"
    + (f"; {len(na)} not applicable here)" if len(na) else ")")
)

# %% [markdown]
# ## What this does not show
#
# - One run alone and one with others per case: a case that fails rarely can pass here. Rates need
#   repeated isolated trials (notebook 03).
# - Expectations for backends not present here (MPS on this machine, usually) are written from torch's
#   documented behaviour and sources; their rows are *not run* until a machine with that backend runs
#   them. The MPS `elapsed_time_before_record` case runs in a child process with a timeout because, as
#   read in torch's MPS event pool, the call may wait forever for a notification an unrecorded event
#   never gets.
# - *healthy* is one canary matmul; it catches a poisoned device or allocator, not every kind of damage.

# %% [markdown]
# ## Versions

# %%
import importlib.metadata as md
import platform

import torch

versions = {"python": platform.python_version(), "torch": torch.__version__}
for pkg in ("mpslab", "numpy", "pandas", "matplotlib", "papermill"):
    try:
        versions[pkg] = md.version(pkg)
    except md.PackageNotFoundError:
        versions[pkg] = None
pd.Series({**environment(resolved_device), **{f"version_{k}": v for k, v in versions.items()}})
