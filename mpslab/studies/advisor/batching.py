"""A workload's batched form as a workload of its own, so the runner and isolated trials can run it.

The batched candidate is one thread serving B requests per call through the
workload's ``batched(ctx, i, B)`` form. Registered as ``<workload>@batch<B>``
(its step is one batched call), it runs under ``run_stress`` with the oracle and
under ``run_trials`` in child processes like any workload. Children learn about
it from a small plugin file (``plugin_file``) that the configuration lists in
``plugins``: the file holds two lines of code naming the base workload and B, and
nothing from any result file is ever executed.

Not here: how batched throughput is counted (``measure``: requests/s = calls/s x B).
"""

from __future__ import annotations

import math
import os

from mpslab.run.workloads import WorkerContext, get_workload, register_workload

__all__ = ["batched_name", "register_batched", "plugin_file"]


def batched_name(workload: str, batch: int) -> str:
    return f"{workload}@batch{batch}"


def register_batched(workload: str, batch: int) -> str:
    """Register ``<workload>@batch<B>`` (one step = one batched call of B requests); returns its name."""
    base = get_workload(workload)
    if base.batched is None:
        raise ValueError(f"workload {workload!r} declares no batched form")
    fn, b = base.batched, int(batch)

    def step(ctx: WorkerContext, i: int):
        return fn(ctx, i, b)

    name = batched_name(workload, b)
    register_workload(
        name,
        step,
        description=f"{workload}: one call serving {b} requests (its batched form)",
        setup=base.setup_fn,
        scale=lambda size: float(base.scale(size)) * math.sqrt(b),
        kind="workload",
        batched=None,
    )
    return name


def plugin_file(folder: str, workload: str, batch: int) -> str:
    """Write (once) the plugin that registers ``<workload>@batch<B>`` in a child; returns its path."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.abspath(os.path.join(folder, f"batched_{workload}_{int(batch)}.py"))
    text = (
        "# written by mpslab advise: registers the batched candidate for isolated trials\n"
        "from mpslab.studies.advisor.batching import register_batched\n"
        f"register_batched({workload!r}, {int(batch)})\n"
    )
    if not os.path.exists(path) or open(path).read() != text:
        with open(path, "w") as f:
            f.write(text)
    return path
