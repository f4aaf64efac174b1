"""Planted faults for the compare and shrink tests (loaded with ``plugins=(path,)``).

``planted-under-b``: thread 0 aborts (SIGABRT) at its first iteration, but only in
an interpreter started with ``-X mpslab_planted`` (the tests' "interpreter b" is a
wrapper script that adds it): a fault that fires under one interpreter only.

``planted-threshold``: aborts only when the run has at least 3 threads and 4
iterations (thread 2 at iteration 3): shrinking must stop exactly there. Its
step uses only torch and os, so ``mpslab shrink`` can write it out standalone.
"""

import os
import sys

import torch

from mpslab.run.workloads import register_workload

MIN_THREAD = 2  # fires in thread index 2: needs 3 threads
MIN_ITERATION = 3  # at iteration index 3: needs 4 iterations


def planted_under_b(ctx, i):
    a = torch.randn(8, 8, generator=ctx.generator, device=ctx.device, dtype=ctx.dtype)
    if ctx.thread == 0 and "mpslab_planted" in sys._xoptions:
        os.abort()
    return torch.matmul(a, a).sum()


def planted_threshold(ctx, i):
    a = torch.randn(ctx.size, ctx.size, generator=ctx.generator, device=ctx.device, dtype=ctx.dtype)
    if ctx.thread >= MIN_THREAD and i >= MIN_ITERATION:
        os.abort()
    return torch.matmul(a, a).sum()


register_workload(
    "planted-under-b",
    planted_under_b,
    kind="fault",
    description="aborts in thread 0 only under an interpreter started with -X mpslab_planted",
)
register_workload(
    "planted-threshold",
    planted_threshold,
    kind="fault",
    description="aborts only with >= 3 threads and >= 4 iterations",
)
