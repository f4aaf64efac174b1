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
# # 01 — Coverage walkthrough
#
# The verification round's *Attempt 1* listed MPSStream and MPSAllocator functions — event signal / wait,
# synchronize / commit / commitAndWait, scheduled and completed handlers, the thread's current stream,
# flush / endKernelCoalescing, buffer alloc / free, cache release and garbage collection, release on
# completion, shutdown — and called them "verified" after **reading the code**. Reading shows that a
# path exists; it does not show that the path runs, that it runs from many threads at once, or that
# the answers are right.
#
# This notebook **drives** each path instead. Every path is a probe (`mpslab.studies.probes`): a Python action
# that reaches the path through torch's public API, run once alone and once from `threads` threads
# started together, whose results are checked against a float64 CPU reference, and around which
# **evidence** is collected that the path was really taken (profiler records, allocator counters, the
# probe's own observations). The same concepts are probed on CUDA and on the CPU where they exist.
# Where a concept does not exist the matrix says *not applicable*; where a backend is not on this
# machine it says *not run*. Neither is ever counted as a pass.

# %% tags=["parameters"]
device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
data_dir: str = "../reports/interactive/data"  # where tidy CSV tables are written
figures_dir: str = "../reports/interactive/figures"  # where PNG/SVG figures are written
progress: bool = True  # progress bars (widgets in JupyterLab); the pipeline sets False for headless runs
threads: int = 8  # threads that drive each probe at once (the second run of every probe)
size: int = 64  # matrix side of the probes' matmuls
chunk_mb: int = 32  # buffer size of the cache and memory-pressure probes, in MiB
timeout_s: float = 120.0  # a probe with no answer after this is recorded as failed (hang)
include_cpu: bool = True  # also fill the CPU column when device is cuda or mps
known_failures: list = []  # probe paths allowed to fail without failing the notebook (documented below)

# %% [markdown]
# ## Environment
#
# Where this ran: the device the parameters resolved to, torch, the machine.

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
# ## The statuses
#
# A small fixed vocabulary. *covered* is the only status that claims the path was taken, and it needs
# evidence collected **in this run**: never a reading of the source, never a result from another machine.

# %%
from mpslab.report.plots import plot_coverage_matrix, save_figure
from mpslab.studies.probes import (
    COVERED,
    FAILED,
    NOT_APPLICABLE,
    NOT_RUN,
    STATUS_MEANING,
    STATUSES,
    coverage_matrix,
    coverage_table,
    list_probes,
    probe_catalogue,
)

pd.DataFrame({"status": list(STATUS_MEANING), "meaning": list(STATUS_MEANING.values())})

# %% [markdown]
# ## What each probe targets
#
# On **MPS** no Python call reaches an MPSStream or MPSAllocator function by name; each probe uses the
# `torch.mps` call that leads there. The mapping below is the one the probes aim at, as read in torch's
# MPS sources — it is *not* something observed here (no Mac ran this notebook unless the environment
# above says `mps`):
#
# | the round's function | probe | torch call used | what it reaches in torch's MPS backend |
# |---|---|---|---|
# | `encodeSignalEvent` / `encodeWaitForEvent` | `event_record_wait` | `torch.mps.event.Event.record` / `.wait` | the event's record ends kernel coalescing and encodes a signal on the command buffer; `wait` encodes a wait for it when not yet signalled |
# | `synchronize` / `commit` / `commitAndWait` | `synchronize` | `torch.mps.synchronize` | `MPSStream::synchronize(SyncType::COMMIT_AND_WAIT)` |
# | `addScheduledHandler` / `addCompletedHandler` | `completion_handlers` | ops with Python-scalar operands | scalar buffers freed through `addCompletedHandler`; no public call is known to reach `addScheduledHandler` |
# | `getCurrentStream` / `setCurrentStream` | `current_stream_per_thread` | none in torch ≤ 2.13 (no `torch.mps.Stream`) | every op takes the one default stream; *not applicable* |
# | `flush` / `endKernelCoalescing` | `flush_coalescing` | `copy_` between compute ops, then `torch.mps.synchronize` | the compute encoder is ended before a blit, then the buffer is committed |
# | `alloc_buffer_block` / `free_buffer` | `alloc_free` | tensor creation / deletion; `torch.mps.current_allocated_memory` | `MPSHeapAllocatorImpl::malloc` → `alloc_buffer_block`; a tensor's free → `free_buffer` |
# | `release_cached_buffers` / `garbage_collect` | `empty_cache`, `memory_pressure` | `torch.mps.empty_cache`; `set_per_process_memory_fraction` | `emptyCache` → `release_cached_buffers`; over the limit, `release_available_cached_buffers` / `release_cached_buffers` and a retry; above the low watermark `garbage_collect_cached_buffers` |
# | `release_buffer` | `release_on_completion` | free an input while queued work reads it | the buffer returns to its pool; a busy buffer's release defers its heap update to a completion handler |
# | `shutdown` | `shutdown` | a child process exits with work queued | static destruction of the allocator (its destructor empties the cache) and the stream |
#
# On **CUDA** the evidence is what `torch.profiler` records during the probe — runtime calls such as
# `cudaEventRecordWithFlags`, `cudaStreamWaitEvent`, `cudaEventSynchronize`, `cudaStreamSynchronize`,
# `cudaDeviceSynchronize`, `cudaEventQuery`, `cudaLaunchKernel` — and the increase of
# `torch.cuda.memory_stats` counters (`allocation.all.*`, `segment.all.freed`, `num_alloc_retries`, ...).
# On **MPS** it is the `torch.mps` memory counters sampled by the probe and event timings. On the
# **CPU** it is the op names and memory events `torch.profiler` records.
#
# The table below is the catalogue itself, for the backend this notebook runs on.

# %%
from mpslab.report.reader import wrapped

catalogue = probe_catalogue()
catalogue.to_csv(os.path.join(data_dir, "coverage_catalogue.csv"), index=False)
wrapped(
    catalogue[catalogue["backend"] == get_backend(resolved_device).kind].set_index("path")[
        ["seed", "targets", "evidence_needed", "not_applicable"]
    ]
)

# %% [markdown]
# ## Running the probes
#
# For each backend present (the resolved device, plus the CPU when `include_cpu`): every probe runs
# **alone**, then from **`threads` threads** released together by a barrier. Each run is wrapped in an
# evidence collector (the profiler, recording every thread where this torch allows it; CUDA's
# `memory_stats` before and after). A run that raises, returns a wrong result or does not answer within
# `timeout_s` makes the row *failed*. Kinds not present here get *not run* rows.

# %%
devices = [resolved_device]
if include_cpu and get_backend(resolved_device).kind != "cpu":
    devices.append("cpu")
ran_kinds = {get_backend(d).kind for d in devices}

coverage = coverage_matrix(devices, threads=threads, size=size, chunk_mb=chunk_mb, timeout=timeout_s)
coverage.to_csv(os.path.join(data_dir, "coverage_matrix.csv"), index=False)
coverage_table(coverage)

# %% [markdown]
# ## The coverage matrix
#
# Green: covered with evidence from this run. Light green: exercised, results right, no evidence
# available. Grey: the concept does not exist on that backend. Near-white: the backend is not on this
# machine. Red: failed.

# %%
fig = plot_coverage_matrix(coverage)
saved = save_figure(fig, "coverage_matrix", figures_dir)
fig

# %% [markdown]
# *Figure 1 — coverage matrix.* Read it by row: a path counts as taken only where its cell is dark green (*covered*, evidence from this run); grey (*not applicable*) and near-white (*not run*) cells are never passes.

# %% [markdown]
# ## Per path: what it is and what the evidence shows
#
# For every path: what it is, then per backend the status, what the probe targets, the evidence
# collected (or why there is none) and what was checked.

# %%
for probe in list_probes():
    rows = coverage[coverage["path"] == probe.path]
    lines = [f"### {probe.title}", f"*The round's Attempt 1:* `{probe.seed}`. {probe.what}", ""]
    for r in rows.itertuples():
        lines.append(f"- **{r.backend} — {r.status}.** {r.explanation}")
        if r.evidence:
            lines.append(f"  - *evidence:* {r.evidence}")
        if r.check:
            lines.append(f"  - *checked:* {r.check}")
    display(Markdown("\n".join(lines)))

# %% [markdown]
# ## Checks
#
# The notebook fails loudly if its own results do not hold: every status is one of the vocabulary;
# no probe failed unless it is listed in `known_failures`; every backend that ran has no *not run*
# row; backends that did not run have only *not run* or *not applicable* rows (never a pass);
# *covered* rows carry evidence; *not applicable* rows say why.

# %%
assert set(coverage["status"]) <= set(STATUSES), set(coverage["status"])
assert all(os.path.getsize(path) > 0 for path in saved)
failed = coverage[coverage["status"] == FAILED]
unexpected = failed[~failed["path"].isin(known_failures)]
assert unexpected.empty, "probes failed:\n" + "\n\n".join(
    f"{r.path} [{r.backend}]: {r.error}" for r in unexpected.itertuples()
)
ran = coverage[coverage["backend"].isin(ran_kinds)]
assert not (ran["status"] == NOT_RUN).any(), "a backend that ran has rows marked not run"
absent = coverage[~coverage["backend"].isin(ran_kinds)]
assert set(absent["status"]) <= {NOT_RUN, NOT_APPLICABLE}, set(absent["status"])
covered = coverage[coverage["status"] == COVERED]
assert (covered["evidence"].str.len() > 0).all(), "a covered row without evidence"
na = coverage[coverage["status"] == NOT_APPLICABLE]
assert na["explanation"].str.startswith("Not applicable").all()
for p in set(known_failures) - set(failed["path"]):
    print(f"known failure {p!r} did not fail in this run")
coverage.groupby(["backend", "status"]).size().unstack(fill_value=0)

# %% [markdown]
# ## Verdict
#
# One line: what the probes found on the backends that ran (the report's index shows it).

# %% tags=["verdict"]
ran_rows = coverage[coverage["backend"].isin(ran_kinds)]
counts = ran_rows["status"].value_counts()
print(
    f"{len(ran_rows)} path probes on {', '.join(sorted(ran_kinds))}: "
    + ", ".join(f"{int(counts[s])} {s}" for s in STATUSES if counts.get(s, 0))
    + (f"; failed: {', '.join(sorted(set(failed['path'])))}" if len(failed) else "")
)

# %% [markdown]
# ## What this does not show
#
# - A *covered* row shows the path was taken and gave right answers in **this** run, alone and from
#   `threads` threads; it does not show the path is free of races (that needs repeated, isolated trials
#   and a failure-rate bound: notebook 03).
# - *exercised* rows ran with right results, but the backend offers nothing that shows the targeted
#   function itself was reached (most MPS rows: `torch.mps` reports no stream or handler activity).
# - The MPS mapping is what torch's sources say the calls reach; on a machine without MPS the MPS column
#   is *not run*, and its probe logic is tested only against an injected fake `torch.mps`.
# - The profiler's op and runtime-call names depend on the torch version; a name missing in a new torch
#   turns a row into *exercised* with the missing name listed, never into a silent pass.

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
