"""Scenario steps built from single kernels: arange/linspace, unary ops, nonzero, casts, copies, SDPA.

Each function here is a registered workload (its name is the scenario's; the
citation is in ``catalogue``). Every step returns its output tensor and draws
all randomness from ``ctx.generator`` (host-side data from a host generator
seeded from it), so the serial-replay oracle can recompute it. This module is
not the catalogue, nor the models (``models``) nor the process-level scenarios
(``lifecycle``).
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from mpslab.run.backends import get_backend
from mpslab.run.params import Param
from mpslab.run.workloads import WorkerContext, register_workload

__all__ = ["UNARY_OPS", "sync_device", "host_generator"]

_FIXED_DTYPE = "its dtypes are fixed by the scenario ({}); run it with dtype float32"


def _only_float32(fixed: str):
    def applies(kind: str, dtype: str) -> str | None:
        return None if dtype == "float32" else _FIXED_DTYPE.format(fixed)

    return applies


@functools.cache
def _backend(device: str):
    return get_backend(device)


def sync_device(ctx: WorkerContext) -> None:
    """Synchronise ``ctx.device`` from the calling thread (a no-op on the CPU)."""
    _backend(str(ctx.device)).synchronize()


def host_generator(ctx: WorkerContext, i: int) -> torch.Generator:
    """A CPU generator for iteration ``i``, seeded from the thread's generator seed: replayable."""
    base = ctx.generator.initial_seed() if ctx.generator is not None else 0
    return torch.Generator().manual_seed((base * 1_000_003 + i) % (2**63 - 1))


# --------------------------------------------------------------------------- threads-arange

_CYCLE = (torch.float32, torch.float16, torch.bfloat16)


@register_workload(
    "threads-arange",
    description="arange + linspace over growing lengths, dtype cycling "
    "float32/float16/bfloat16, host read of their sum (pytorch#197805)",
    applies=_only_float32("float32/float16/bfloat16 in turn"),
)
def threads_arange(ctx: WorkerContext, i: int) -> torch.Tensor:
    """pytorch/pytorch#197805: arange/linspace from 2 threads x 5 iterations crashed every run on MPS."""
    n = ctx.size + 7 * i + ctx.thread
    dt = _CYCLE[i % len(_CYCLE)]
    a = torch.arange(n, device=ctx.device, dtype=dt)
    b = torch.linspace(-1.0, 1.0, n, device=ctx.device, dtype=dt)
    float((a.float().sum() + b.float().sum()).item())  # the host read of the report
    return torch.cat([a.float() / n, b.float()])


# --------------------------------------------------------------------------- unary-burst

UNARY_OPS = (
    "tanh",
    "abs",
    "sin",
    "cos",
    "tan",
    "asin",
    "acos",
    "atan",
    "sqrt",
    "rsqrt",
    "neg",
    "exp2",
    "log10",
    "log2",
    "log",
)


@register_workload(
    "unary-burst",
    description="15 unary ops, one per thread, released at one barrier on "
    "in-domain values; cold process, no warm-up (pytorch#167541)",
    scale=lambda size: float(size),
)
def unary_burst(ctx: WorkerContext, i: int) -> torch.Tensor:
    """pytorch/pytorch#167541: concurrent first use of unary kernels raced in the shader cache."""
    op = getattr(torch, UNARY_OPS[ctx.thread % len(UNARY_OPS)])
    # values in (0.1, 0.9): inside the domain of log, sqrt, rsqrt, asin, acos (randn would give NaN)
    x = torch.rand(ctx.size, generator=ctx.generator, device=ctx.device, dtype=ctx.dtype) * 0.8 + 0.1
    return op(x)


# --------------------------------------------------------------------------- nonzero


@register_workload(
    "nonzero",
    description="torch.nonzero of a random mask from several threads (pytorch#100285, #108996)",
    scale=lambda size: float(size) ** 2,
)
def nonzero(ctx: WorkerContext, i: int) -> torch.Tensor:
    """pytorch/pytorch#100285, #108996: nonzero from several threads returned wrong results / crashed on MPS."""
    x = torch.randn(ctx.size, ctx.size, generator=ctx.generator, device=ctx.device, dtype=ctx.dtype)
    idx = torch.nonzero(x > 0.5)
    return idx.to(torch.float32)  # indices (< 2**24: exact in float32); the shape varies with the mask


# --------------------------------------------------------------------------- casts and copies


def _pixlstash_pattern(name: str, description: str, *, fixed: str):
    """Registers one of the PixlStash project's cast / copy patterns: its dtypes are fixed (``fixed`` says
    which), so it runs under float32 only, and its work grows with the side of its square tensors."""
    return register_workload(name, description=description, applies=_only_float32(fixed), scale=float)


@_pixlstash_pattern(
    "cast-sync",
    "float16 -> float32 casts with a per-thread synchronize (PixlStash notes: 10/10 runs failed on M1 Pro)",
    fixed="float16 -> float32",
)
def cast_sync(ctx: WorkerContext, i: int) -> torch.Tensor:
    """PixlStash project notes (M1 Pro, torch 2.13.0 and 2.14): 10/10 runs failed."""
    x = torch.randn(ctx.size, ctx.size, generator=ctx.generator, device=ctx.device, dtype=torch.float16)
    y = x.to(torch.float32)
    sync_device(ctx)
    return y


def _copy(ctx: WorkerContext, i: int) -> torch.Tensor:
    h = torch.randn(ctx.size, ctx.size, generator=host_generator(ctx, i), dtype=torch.float32)
    return h.to(ctx.device)


@_pixlstash_pattern(
    "copy-sync",
    "host -> device copies then a per-thread synchronize (control; PixlStash notes: 4-6/10 runs failed)",
    fixed="float32 host tensors",
)
def copy_sync(ctx: WorkerContext, i: int) -> torch.Tensor:
    """PixlStash project notes (M1 Pro, torch 2.13.0 and 2.14): 4-6/10 runs failed."""
    d = _copy(ctx, i)
    sync_device(ctx)
    return d


@_pixlstash_pattern(
    "copy-nosync",
    "host -> device copies, no synchronize (control; PixlStash notes: 0/10 runs failed)",
    fixed="float32 host tensors",
)
def copy_nosync(ctx: WorkerContext, i: int) -> torch.Tensor:
    """PixlStash project notes (M1 Pro, torch 2.13.0 and 2.14): 0/10 runs failed."""
    return _copy(ctx, i)


# --------------------------------------------------------------------------- sdpa-contiguous

_ATTN = {
    "batch": Param(int, 2, "sequences per step", minimum=1),
    "seq": Param(int, 16, "tokens per sequence", minimum=1),
    "d_model": Param(int, 64, "model width", minimum=1),
    "heads": Param(int, 4, "attention heads (must divide d_model)", minimum=1),
}


def _heads_divide(p) -> str | None:
    return None if p["d_model"] % p["heads"] == 0 else f"heads={p['heads']} must divide d_model={p['d_model']}"


def _sdpa_setup(ctx: WorkerContext) -> torch.nn.Module:
    d = ctx.params["d_model"]
    g = torch.Generator().manual_seed(0)
    lin = torch.nn.Linear(d, 3 * d)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(lin.weight.shape, generator=g) / d**0.5)
        lin.bias.copy_(torch.randn(lin.bias.shape, generator=g) * 0.1)
    return lin.to(ctx.device, ctx.dtype).eval()


@register_workload(
    "sdpa-contiguous",
    description="linear -> unflatten -> transpose -> contiguous -> "
    "scaled_dot_product_attention on shared weights (dropbox/dML metal_mps_parallel)",
    setup=_sdpa_setup,
    params=_ATTN,
    check_params=_heads_divide,
    scale=lambda size: 8.0,
)
def sdpa_contiguous(ctx: WorkerContext, i: int) -> torch.Tensor:
    """dropbox/dML metal_mps_parallel, tests/minimal_mps_contiguous_race.py: 8 threads x 30 iterations."""
    p = ctx.params
    b, s, d, h = p["batch"], p["seq"], p["d_model"], p["heads"]
    with torch.inference_mode():
        x = torch.randn(b, s, d, generator=ctx.generator, device=ctx.device, dtype=ctx.dtype)
        qkv = ctx.state(x).unflatten(-1, (3, h, d // h))  # (b, s, 3, h, d/h)
        q, k, v = (t.transpose(1, 2).contiguous() for t in qkv.unbind(2))  # (b, h, s, d/h) each
        return F.scaled_dot_product_attention(q, k, v)
