"""Real-inference scenarios: one model shared by every thread, run under ``torch.inference_mode()``.

``mlp-origin``   the verification round's model shape, 512 -> 1024 -> 1024 -> 512 (``batch`` a parameter);
                 the ``mlp`` workload (size -> 4*size -> size) is another shape under its own name, so
                 committed records that name it keep their meaning;
``transformer``  an ``nn.TransformerEncoderLayer`` (``d_model``, ``heads``, ``seq``, ``batch``);
``convnet``      a small CNN whose weights and inputs are channels_last (``batch``, ``image``).

Weights come from a fixed CPU generator (seed 0), inputs from ``ctx.generator``, so
the serial replay recomputes every output. Not the catalogue, not the runner.
"""

from __future__ import annotations

import torch
from torch import nn

from mpslab.run.params import Param, Params
from mpslab.run.workloads import WorkerContext, register_workload

__all__ = ["ORIGIN_SHAPE", "build_mlp_origin", "build_transformer", "build_convnet"]

ORIGIN_SHAPE = (512, 1024, 1024, 512)


def _init(model: nn.Module) -> nn.Module:
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            fan_in = p.shape[1:].numel() if p.dim() > 1 else p.shape[0]
            p.copy_(torch.randn(p.shape, generator=g) / fan_in**0.5)
    return model.eval()


def _randn(ctx: WorkerContext, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=ctx.generator, device=ctx.device, dtype=ctx.dtype)


# --------------------------------------------------------------------------- mlp-origin


def build_mlp_origin() -> nn.Module:
    a, b, c, d = ORIGIN_SHAPE
    return _init(nn.Sequential(nn.Linear(a, b), nn.ReLU(), nn.Linear(b, c), nn.ReLU(), nn.Linear(c, d)))


@register_workload(
    "mlp-origin",
    description="inference: the origin MLP 512 -> 1024 -> 1024 -> 512, shared, under inference_mode (param batch)",
    setup=lambda ctx: build_mlp_origin().to(ctx.device, ctx.dtype),
    params={"batch": Param(int, 8, "rows per forward", minimum=1)},
    scale=lambda size: 8.0,
)
def mlp_origin(ctx: WorkerContext, i: int) -> torch.Tensor:
    """The verification round's model shape (512 -> 1024 -> 1024 -> 512), one model shared by all threads."""
    with torch.inference_mode():
        return ctx.state(_randn(ctx, ctx.params["batch"], ORIGIN_SHAPE[0]))


# --------------------------------------------------------------------------- transformer

_TRANSFORMER = {
    "d_model": Param(int, 64, "model width", minimum=1),
    "heads": Param(int, 4, "attention heads (must divide d_model)", minimum=1),
    "seq": Param(int, 16, "tokens per sequence", minimum=1),
    "batch": Param(int, 2, "sequences per step", minimum=1),
}


def _heads_divide(p: Params) -> str | None:
    return None if p["d_model"] % p["heads"] == 0 else f"heads={p['heads']} must divide d_model={p['d_model']}"


def build_transformer(d_model: int, heads: int) -> nn.Module:
    layer = nn.TransformerEncoderLayer(d_model, heads, dim_feedforward=4 * d_model, dropout=0.0, batch_first=True)
    return _init(layer)


@register_workload(
    "transformer",
    description="inference: a shared nn.TransformerEncoderLayer under "
    "inference_mode (params d_model, heads, seq, batch)",
    setup=lambda ctx: build_transformer(ctx.params["d_model"], ctx.params["heads"]).to(ctx.device, ctx.dtype),
    params=_TRANSFORMER,
    check_params=_heads_divide,
    scale=lambda size: 8.0,
)
def transformer(ctx: WorkerContext, i: int) -> torch.Tensor:
    """nn.TransformerEncoderLayer inference (eval + inference_mode takes its fused fast path)."""
    p = ctx.params
    with torch.inference_mode():
        return ctx.state(_randn(ctx, p["batch"], p["seq"], p["d_model"]))


# --------------------------------------------------------------------------- convnet


def build_convnet() -> nn.Module:
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(32, 32, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(32, 10),
    )
    return _init(model).to(memory_format=torch.channels_last)


@register_workload(
    "convnet",
    description="inference: a small shared CNN in channels_last under inference_mode (params batch, image)",
    setup=lambda ctx: build_convnet().to(ctx.device, ctx.dtype),
    params={
        "batch": Param(int, 2, "images per step", minimum=1),
        "image": Param(int, 32, "image side in pixels", minimum=4),
    },
    scale=lambda size: 4.0,
)
def convnet(ctx: WorkerContext, i: int) -> torch.Tensor:
    """channels_last convolution inference with shared weights."""
    p = ctx.params
    with torch.inference_mode():
        x = _randn(ctx, p["batch"], 3, p["image"], p["image"]).contiguous(memory_format=torch.channels_last)
        return ctx.state(x)
