"""Process- and allocator-level scenarios: ``empty-cache-under-load`` and ``exit-after-work``.

Both are also edge cases (``empty_cache_race``, ``exit_with_device_work_queued``
in ``mpslab.studies.edges``): the implementations are here, once, and the edge
catalogue reaches them through ``empty_cache_while(...)`` and
``exit_after_work_trial(...)``.

``empty-cache-under-load``  thread 0 empties the backend's allocator cache every
    step while the other threads run a shared MLP forward.
``exit-after-work``  a runner mode (``final_sync=False``): each thread queues
    matmuls, nothing synchronises at the end and there is no replay; the child
    process's exit is the measurement (classified like any trial outcome). It is
    run with ``spawn`` children so that the interpreter's full shut-down happens
    (a fork-server child leaves by ``os._exit``).

On the CPU neither applies: the CPU allocator keeps no cache and CPU ops finish
before they return, so no work can be queued at exit. Not the runner itself.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from mpslab.run.backends import get_backend
from mpslab.run.workloads import WorkerContext, register_workload

__all__ = ["empty_cache_while", "EmptyCacheReport", "exit_after_work_trial", "CPU_NO_CACHE", "CPU_NO_QUEUE"]

CPU_NO_CACHE = "the CPU allocator keeps no cache: empty_cache does nothing there"
CPU_NO_QUEUE = "CPU ops finish before they return: no device work can be queued at exit"


def _not_on_cpu(reason: str) -> Callable[[str, str], str | None]:
    return lambda kind, dtype: reason if kind == "cpu" else None


# --------------------------------------------------------------------------- empty-cache-under-load


@dataclass
class EmptyCacheReport:
    releases: int  # empty_cache() calls made while the workers ran
    problems: list[str]  # "thread i: ..." for each worker or releaser failure
    still_running: bool  # a thread was still alive after the timeout


def empty_cache_while(backend: Any, work: Callable[[int], None], threads: int, timeout_s: float) -> EmptyCacheReport:
    """Run ``work(i)`` in ``threads`` threads while one more thread loops on ``backend.empty_cache()``.

    ``work`` raises to report a problem (its message is kept). What the edge case
    ``empty_cache_race`` should call, with its allocate-fill-check ``work``.
    """
    stop = threading.Event()
    releases = [0]
    problems: list[str] = []

    def run(i: int) -> None:
        try:
            work(i)
        except Exception as exc:
            problems.append(f"thread {i}: {type(exc).__name__}: {exc}")

    def release() -> None:
        try:
            while not stop.is_set():
                backend.empty_cache()
                releases[0] += 1
        except Exception as exc:
            problems.append(f"empty_cache: {type(exc).__name__}: {exc}")

    releaser = threading.Thread(target=release, daemon=True, name="mpslab-empty-cache")
    workers = [threading.Thread(target=run, args=(i,), daemon=True, name=f"mpslab-alloc-{i}") for i in range(threads)]
    releaser.start()
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout_s)
    stop.set()
    releaser.join(timeout_s)
    alive = any(w.is_alive() for w in workers) or releaser.is_alive()
    return EmptyCacheReport(releases[0], problems, alive)


def _mlp_setup(ctx: WorkerContext) -> dict[str, Any]:
    n = ctx.size
    g = torch.Generator().manual_seed(0)
    model = nn.Sequential(nn.Linear(n, 2 * n), nn.GELU(), nn.Linear(2 * n, n))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) / p.shape[-1] ** 0.5)
    return {"model": model.to(ctx.device, ctx.dtype).eval(), "backend": get_backend(ctx.device)}


@register_workload(
    "empty-cache-under-load",
    description="thread 0 empties the allocator cache every step while the other threads run a shared MLP",
    setup=_mlp_setup,
    applies=_not_on_cpu(CPU_NO_CACHE),
    scale=lambda size: float(size) ** 0.5,
)
def empty_cache_under_load(ctx: WorkerContext, i: int) -> torch.Tensor:
    """mpslab edge case empty_cache_race: allocator-cache release while other threads allocate and compute."""
    if ctx.thread == 0:
        ctx.state["backend"].empty_cache()
    with torch.inference_mode():
        x = torch.randn(8, ctx.size, generator=ctx.generator, device=ctx.device, dtype=ctx.dtype)
        return ctx.state["model"](x)


# --------------------------------------------------------------------------- exit-after-work


@register_workload(
    "exit-after-work",
    description="threads queue matmuls, no final synchronize, no replay: "
    "the process exit is the measurement (pytorch#188812)",
    applies=_not_on_cpu(CPU_NO_QUEUE),
    final_sync=False,
    scale=lambda size: float(size) ** 1.5,
)
def exit_after_work(ctx: WorkerContext, i: int) -> torch.Tensor:
    """pytorch/pytorch#188812: a process exiting with device work still queued."""
    a = torch.randn(ctx.size, ctx.size, generator=ctx.generator, device=ctx.device, dtype=ctx.dtype)
    return torch.tanh(a @ a)


def exit_after_work_trial(device: str, threads: int, size: int, iterations: int, timeout_s: float) -> dict[str, Any]:
    """One isolated ``spawn`` trial of ``exit-after-work``: its row (``outcome``, ``exit_code``, ``signal``,
    ``stderr_tail`` ...). What the edge case ``exit_with_device_work_queued`` should call; ``ok`` means the
    child queued its work, wrote its result and exited 0 through the interpreter's full shut-down."""
    from mpslab.run.config import StressConfig
    from mpslab.trials.isolate import run_trials

    config = StressConfig(
        workload="exit-after-work",
        device=device,
        threads=threads,
        size=size,
        iterations=iterations,
        sync_every=0,
        warmup=0,
        verify=False,
    )
    df = run_trials(config, trials=1, timeout_s=timeout_s, mode="spawn", progress=False)
    return df.iloc[0].to_dict()
