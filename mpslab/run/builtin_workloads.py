"""The three built-in workloads: ``seed`` (randn -> matmul per step: the ultimate stress), ``mlp``
(shared-model inference) and ``racy`` (a planted race, the oracle's self-test).

Imported by the registry (``mpslab.run.workloads``) the first time it is used, not by ``import mpslab``.
"""

from __future__ import annotations

import time

import torch

from mpslab.run.workloads import WorkerContext, register_workload


def _randn(ctx: WorkerContext, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=ctx.generator, device=ctx.device, dtype=ctx.dtype)


def _seed_batched(ctx: WorkerContext, i: int, batch: int) -> torch.Tensor:
    a = _randn(ctx, batch, ctx.size, ctx.size)
    return torch.bmm(a, a).sum()


@register_workload(
    "seed",
    description="randn(size, size) -> matmul: the 64x200 ultimate stress's step (the oracle checks every output)",
    # ||A @ A||_2 for a standard-normal size x size A is about size**1.5
    scale=lambda size: float(size) ** 1.5,
    batched=_seed_batched,
)
def _seed(ctx: WorkerContext, i: int) -> torch.Tensor:
    a = _randn(ctx, ctx.size, ctx.size)
    return torch.matmul(a, a)


def _mlp_setup(ctx: WorkerContext) -> torch.nn.Module:
    g = torch.Generator().manual_seed(0)
    n = ctx.size
    model = torch.nn.Sequential(torch.nn.Linear(n, 4 * n), torch.nn.GELU(), torch.nn.Linear(4 * n, n))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) / (p.shape[-1] ** 0.5))
    return model.to(ctx.device, ctx.dtype).eval()


def _mlp_batched(ctx: WorkerContext, i: int, batch: int) -> torch.Tensor:
    with torch.no_grad():
        return ctx.state(_randn(ctx, 8 * batch, ctx.size)).sum()


@register_workload(
    "mlp",
    description="inference: a shared 2-layer MLP (size -> 4*size -> size), batch of 8, under no_grad",
    setup=_mlp_setup,
    scale=lambda size: float(size) ** 0.5 * 8,
    batched=_mlp_batched,
)
def _mlp(ctx: WorkerContext, i: int) -> torch.Tensor:
    with torch.no_grad():
        return ctx.state(_randn(ctx, 8, ctx.size))


def _shared_buffer(ctx: WorkerContext) -> torch.Tensor:
    return torch.zeros(ctx.size, ctx.size, device=ctx.device, dtype=ctx.dtype)


@register_workload(
    "racy",
    description="self-test: every thread writes one shared buffer, then reads it back (the oracle must flag it)",
    setup=_shared_buffer,
    scale=lambda size: float(size),
    kind="fault",
)
def _racy(ctx: WorkerContext, i: int) -> torch.Tensor:
    buf = ctx.state
    buf.copy_(_randn(ctx, ctx.size, ctx.size))
    time.sleep(0)  # let another thread in between the write and the read
    return buf.clone()  # the read
