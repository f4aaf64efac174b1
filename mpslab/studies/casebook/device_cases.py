"""The casebook's CUDA and MPS workloads: reported bugs that need a GPU (not applicable on a CPU).

CUDA cases are for a CUDA machine (the H100): the first ``torch.inverse`` from several
threads in a fresh process (pytorch#90613 and MONAI#5696 downstream), compiled models
with CUDA graphs from several threads (pytorch#123177), and a fullgraph-compiled function
run by autograd's device threads in backward (unsloth#7019). The MPS case is the
two-thread crash of pytorch#197805. Each says where it cannot run through ``applies``.
Registered under the case names of ``catalogue``. Not here: the CPU cases (``cpu_cases``).
"""

from __future__ import annotations

import torch

from mpslab.run.workloads import WorkerContext, register_workload
from mpslab.studies.casebook.cpu_cases import seeded_mlp

__all__: list[str] = []

RAISED_LIMIT = 64
SHAPES = 12


def _cuda_only(kind: str, dtype: str) -> str | None:
    if kind != "cuda":
        return "a CUDA case: needs a CUDA device (H100 runs: see docs/casebook.md)"
    return None if dtype == "float32" else "the case builds float32 tensors"


def _mps_only(kind: str, dtype: str) -> str | None:
    if kind != "mps":
        return "an MPS case: needs Apple silicon with the MPS backend"
    return None if dtype == "float32" else "the case builds float32 tensors"


def _inverse_first_call(ctx: WorkerContext, i: int) -> torch.Tensor:
    a = torch.randn(ctx.size, ctx.size, generator=ctx.generator, device=ctx.device)
    return torch.inverse(a @ a.T + ctx.size * torch.eye(ctx.size, device=ctx.device))


def _affine_inverse(ctx: WorkerContext, i: int) -> torch.Tensor:
    batch = torch.randn(8, 3, 3, generator=ctx.generator, device=ctx.device) * 0.1
    affine = torch.eye(4, device=ctx.device).repeat(8, 1, 1)
    affine[:, :3, :3] += batch
    return torch.linalg.inv(affine)


def _cudagraph_model(ctx: WorkerContext):
    model = seeded_mlp(ctx.size, torch.Generator().manual_seed(0))  # the CPU cases' shared model
    return torch.compile(model.to(ctx.device), mode="reduce-overhead")


def _cudagraph_step(ctx: WorkerContext, i: int) -> torch.Tensor:
    x = torch.randn(8, ctx.size, generator=ctx.generator, device=ctx.device)
    with torch.no_grad():
        return ctx.state(x).clone()


def _double(x: torch.Tensor) -> torch.Tensor:
    return x * 2.0 + 1.0


def _compiled_in_backward(ctx: WorkerContext):
    import torch._dynamo

    torch._dynamo.config.recompile_limit = RAISED_LIMIT
    fn = torch.compile(_double, backend="eager", fullgraph=True, dynamic=False)

    class Recompute(torch.autograd.Function):  # gradient checkpointing's pattern: compiled code in backward
        @staticmethod
        def forward(c, x):
            return _double(x)

        @staticmethod
        def backward(c, grad):
            return fn(grad) - grad - 1.0

    return Recompute


def _backward_step(ctx: WorkerContext, i: int) -> torch.Tensor:
    grads = []
    for k in range(SHAPES):  # the device backward compiles one shape each: more than the default limit
        x = torch.randn(k + 1, generator=ctx.generator, device=ctx.device).requires_grad_()
        ctx.state.apply(x).sum().backward()
        grads.append(x.grad)
    return torch.cat(grads)


def _shared_weight(ctx: WorkerContext) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return (torch.rand(ctx.size, ctx.size, generator=g) + 0.5).to(ctx.device)


def _cublas_chain(ctx: WorkerContext, i: int) -> torch.Tensor:
    x = torch.rand(ctx.size, ctx.size, generator=ctx.generator, device=ctx.device)
    for _ in range(4):  # the gemm and the in-place div_ must stay ordered on this thread's stream
        x = torch.mm(x, ctx.state)
        x.div_(float(ctx.size))
    return x


def _conv_kernel(ctx: WorkerContext) -> torch.Tensor:
    return torch.full((1, 1, 2, 2), 1.0, device=ctx.device)


def _cudnn_chain(ctx: WorkerContext, i: int) -> torch.Tensor:
    with torch.backends.cudnn.flags(enabled=True):
        x = torch.rand(1, 1, ctx.size, ctx.size, generator=ctx.generator, device=ctx.device)
        for _ in range(8):
            x = torch.nn.functional.conv2d(x, ctx.state)
            x.div_(4.0)
    return x


def _mps_two_threads(ctx: WorkerContext, i: int) -> torch.Tensor:
    n = ctx.size + i
    a = torch.arange(n, device=ctx.device, dtype=torch.float32)
    b = torch.linspace(0.0, 1.0, n, device=ctx.device)
    return torch.tanh(a * b).cpu()


_CASES = (
    # name, step, set-up (None: the step keeps no state), scale (size -> work per step), where it runs,
    # description
    (
        "pt90613-inverse-first-call-threads",
        _inverse_first_call,
        None,
        lambda size: 1.0,
        _cuda_only,
        "casebook pytorch#90613: torch.inverse first called from several threads (cold process)",
    ),
    (
        "monai5696-inverse-batch-infer",
        _affine_inverse,
        None,
        lambda size: 8.0,
        _cuda_only,
        "casebook MONAI#5696: affine matrices inverted on the GPU from a thread pool",
    ),
    (
        "pt123177-compile-cudagraphs-threads",
        _cudagraph_step,
        _cudagraph_model,
        lambda size: 8.0 * size**0.5,
        _cuda_only,
        "casebook pytorch#123177: a reduce-overhead (CUDA graphs) compiled MLP from several threads",
    ),
    (
        "unsloth7019-backward-thread-config",
        _backward_step,
        _compiled_in_backward,
        lambda size: float(SHAPES),
        _cuda_only,
        "casebook unsloth#7019: limit raised in set-up; fullgraph compiled code runs in a CUDA backward",
    ),
    (
        "pt-test-cuda-cublas-threads",
        _cublas_chain,
        _shared_weight,
        float,
        _cuda_only,
        "casebook control: test_cuda.py's cuBLAS multi-thread test, reduced (per-thread streams)",
    ),
    (
        "pt-test-cuda-cudnn-threads",
        _cudnn_chain,
        _conv_kernel,
        lambda size: float(size) * 0.5,
        _cuda_only,
        "casebook control: test_cuda.py's cuDNN multi-thread test, reduced (per-thread streams)",
    ),
    (
        "pt197805-mps-two-threads",
        _mps_two_threads,
        None,
        lambda size: float(size) ** 0.5,
        _mps_only,
        "casebook pytorch#197805: arange/linspace/tanh from two threads on MPS",
    ),
)
for _name, _step, _setup, _scale, _applies, _description in _CASES:
    register_workload(_name, _step, description=_description, setup=_setup, scale=_scale, applies=_applies)
