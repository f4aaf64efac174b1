"""The casebook's Linux-CPU workloads: five reported bugs and four controls, one workload each.

Every step and set-up here is a plain module-level function that uses torch only (the
shrinker writes them out as standalone source), draws its randomness from
``ctx.generator`` (the serial-replay oracle recomputes it), and returns an output
tensor. Where a report's symptom is silent (settings ignored), the step raises when it
sees it, so that an isolated trial counts it as an ``error``. Registered under the
case names of ``catalogue``. Not here: the CUDA and MPS cases (``device_cases``).
"""

from __future__ import annotations

import warnings

import torch

from mpslab.run.workloads import WorkerContext, register_workload

__all__ = ["seeded_mlp"]

RAISED_LIMIT = 64  # the recompile limit the "main thread" asks for; dynamo's default is 8
SHAPES = 12  # distinct input shapes a worker compiles: more than the default limit


def _cpu_only(kind: str, dtype: str) -> str | None:
    if kind != "cpu":
        return "a Linux-CPU case (its tensors live on the CPU): run it with device cpu"
    return None if dtype == "float32" else "the case builds float32 tensors"


def seeded_mlp(n: int, generator: torch.Generator) -> torch.nn.Module:
    """Linear(n, n) -> ReLU -> Linear(n, n) in eval mode, every weight drawn from ``generator`` (scaled by
    1/sqrt(n), so outputs stay near unit size): the same generator state gives the same model, which is
    what lets the serial-replay oracle rebuild a thread's model, or every thread share one."""
    model = torch.nn.Sequential(torch.nn.Linear(n, n), torch.nn.ReLU(), torch.nn.Linear(n, n))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=generator) / n**0.5)
    return model.eval()


def _mlp(ctx: WorkerContext) -> torch.nn.Module:
    """A model of the thread's own, from the thread's generator."""
    return seeded_mlp(ctx.size, ctx.generator)


def _shared_mlp(ctx: WorkerContext) -> torch.nn.Module:
    """The one model every thread shares (seed 0)."""
    return seeded_mlp(ctx.size, torch.Generator().manual_seed(0))


# --------------------------------------------------------------------------- torch.fx (pytorch#112775)


def _fx_trace_per_thread(ctx: WorkerContext, i: int) -> torch.Tensor:
    traced = torch.fx.symbolic_trace(_mlp(ctx))
    x = torch.randn(4, ctx.size, generator=ctx.generator)
    with torch.no_grad():
        return traced(x)


def _fx_trace_while_serving(ctx: WorkerContext, i: int) -> torch.Tensor:
    x = torch.randn(4, ctx.size, generator=ctx.generator)
    with torch.no_grad():
        if ctx.thread == 0:  # the tracer: a fresh model each step
            return torch.fx.symbolic_trace(_mlp(ctx))(x)
        return ctx.state(x)  # the servers: one shared, untraced model


# --------------------------------------------------------------------------- dynamo settings (pytorch#186537)


def _double(x: torch.Tensor) -> torch.Tensor:
    return x * 2.0 + 1.0


def _sgd_update(p: torch.Tensor, g: torch.Tensor, lr: float) -> torch.Tensor:
    return p - lr * g


def _raise_limit(ctx: WorkerContext) -> None:
    import torch._dynamo

    torch._dynamo.config.recompile_limit = RAISED_LIMIT  # in the thread that runs set-up: the main thread


def _compiled_double(ctx: WorkerContext):
    _raise_limit(ctx)
    return torch.compile(_double, backend="eager", fullgraph=True, dynamic=False)


def _compiled_update(ctx: WorkerContext):
    _raise_limit(ctx)
    return torch.compile(_sgd_update, backend="eager", fullgraph=True, dynamic=False)


def _dynamo_config_thread(ctx: WorkerContext, i: int) -> torch.Tensor:
    # one new shape per step: step i compiles shape i + 1 (a 9th compile passes only under the raised limit)
    return ctx.state(torch.randn(i + 1, generator=ctx.generator))


def _compiled_update_thread(ctx: WorkerContext, i: int) -> torch.Tensor:
    outs = []
    for k in range(SHAPES):  # one parameter per shape, as an optimizer over a model's parameters
        p = torch.randn(k + 1, ctx.size, generator=ctx.generator)
        g = torch.randn(k + 1, ctx.size, generator=ctx.generator)
        outs.append(ctx.state(p, g, 0.1).flatten())
    return torch.cat(outs)


def _startup_settings(ctx: WorkerContext) -> dict:
    """Settings assigned at import time on the main thread, as mstar's engine module does."""
    import torch._dynamo

    wanted = {"recompile_limit": 84, "specialize_int": False, "allow_unspec_int_on_nn_module": True}
    for key, value in wanted.items():
        setattr(torch._dynamo.config, key, value)
    return wanted


def _settings_read_in_worker(ctx: WorkerContext, i: int) -> torch.Tensor:
    import torch._dynamo

    seen = {key: getattr(torch._dynamo.config, key) for key in ctx.state}
    lost = {key: value for key, value in seen.items() if value != ctx.state[key]}
    if lost:
        raise RuntimeError(f"dynamo settings made on the main thread not seen in this thread: {lost} (set {ctx.state})")
    return torch.randn(ctx.size, generator=ctx.generator)


# --------------------------------------------------------------------------- controls (fixed bugs)


def _default_device_in_thread(ctx: WorkerContext, i: int) -> torch.Tensor:
    torch.set_default_device("meta")
    try:
        inside = torch.empty(1).device.type
    finally:
        torch.set_default_device(None)
    if inside != "meta":
        raise RuntimeError(f"set_default_device('meta') in this thread gave a {inside} tensor")
    return torch.randn(ctx.size, ctx.size, generator=ctx.generator, device=ctx.device)


def _backward_in_thread(ctx: WorkerContext, i: int) -> torch.Tensor:
    w = torch.randn(ctx.size, ctx.size, generator=ctx.generator, requires_grad=True)
    (w @ w).tanh().sum().backward()
    return w.grad


with warnings.catch_warnings():  # script_method is deprecated (2.13): the control still checks the 2019 fix
    warnings.simplefilter("ignore", DeprecationWarning)

    class _AddOnes(torch.jit.ScriptModule):
        @torch.jit.script_method
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.ones_like(x) + x


def _scriptmodule_in_thread(ctx: WorkerContext, i: int) -> torch.Tensor:
    return _AddOnes()(torch.randn(ctx.size, ctx.size, generator=ctx.generator))


def _weighted_sum(a: torch.Tensor, alpha: float, b: torch.Tensor, beta: float) -> torch.Tensor:
    return a * alpha + b * beta


def _scripted_weighted_sum(ctx: WorkerContext):
    return torch.jit.script(_weighted_sum)


def _jit_function_threads(ctx: WorkerContext, i: int) -> torch.Tensor:
    a = torch.randn(ctx.size, generator=ctx.generator)
    b = torch.randn(ctx.size, generator=ctx.generator)
    return ctx.state(a, 0.5, b, 2.0)


_CASES = (
    # name, step, set-up (None: the step keeps no state), scale (size -> work per step), description
    (
        "pt112775-fx-trace-per-thread",
        _fx_trace_per_thread,
        None,
        lambda size: 2.0 * size**0.5,
        "casebook pytorch#112775: every thread fx-traces its own MLP and runs the GraphModule",
    ),
    (
        "chemgraph110-fx-trace-while-serving",
        _fx_trace_while_serving,
        _shared_mlp,
        lambda size: 2.0 * size**0.5,
        "casebook ChemGraph#110: thread 0 fx-traces fresh models, the others run a shared MLP",
    ),
    (
        "pt186537-dynamo-config-thread",
        _dynamo_config_thread,
        _compiled_double,
        float,
        "casebook pytorch#186537: limit raised in set-up; a worker compiles 12 shapes (fullgraph)",
    ),
    (
        "onetrainer1495-compiled-update-thread",
        _compiled_update_thread,
        _compiled_update,
        lambda size: float(size) * SHAPES,
        "casebook OneTrainer#1495: a compiled update over 12 parameter shapes in a worker thread",
    ),
    (
        "mstar167-dynamo-config-ignored",
        _settings_read_in_worker,
        _startup_settings,
        lambda size: float(size) ** 0.5,
        "casebook mstar#167: dynamo settings made in set-up, read back in the worker threads",
    ),
    (
        "pt115917-default-device-thread",
        _default_device_in_thread,
        None,
        float,
        "casebook control pytorch#115917: set_default_device set and reset in worker threads",
    ),
    (
        "pt1868-autograd-threads",
        _backward_in_thread,
        None,
        float,
        "casebook control pytorch#1868: backward of independent graphs from several threads",
    ),
    (
        "pt17896-scriptmodule-in-thread",
        _scriptmodule_in_thread,
        None,
        float,
        "casebook control pytorch#17896: a ScriptModule subclass created and run in a worker thread",
    ),
    (
        "pt73789-jit-function-threads",
        _jit_function_threads,
        _scripted_weighted_sum,
        lambda size: float(size) ** 0.5 * 2,
        "casebook control pytorch#73789: one scripted function called from several threads",
    ),
)
for _name, _step, _setup, _scale, _description in _CASES:
    register_workload(_name, _step, description=_description, setup=_setup, scale=_scale, applies=_cpu_only)
