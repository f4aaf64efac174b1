"""Concurrency regression tests with mpslab's pytest plugin: two known PyTorch bugs and one control.

Run it (it is outside the project's ``tests/``, so ``pytest`` alone does not collect it)::

    pytest examples/test_concurrency_example.py -v --mpslab-device cpu

Each marked test names a module-level step ``step(ctx, i) -> Tensor`` (and optionally a
``setup(ctx)`` run once, on the main thread, before the worker threads start). The plugin runs
it in isolated trials (one child process each) from ``threads`` threads at once, replays every
thread's steps serially to know the right answers, and passes on the failure rate's one-sided
bound. The known bugs are ``expect="fail"``: they pass while the bug is still there and start
failing the day a torch release fixes it (then drop ``expect`` and keep the test as a guard).
The steps draw their random inputs from ``ctx.generator`` so that the replay can recompute them.
"""

import sys

import pytest
import torch
import torch.fx

# ---------------------------------------------------------------- pytorch#112775 (open)
# torch.fx.symbolic_trace patches torch.nn.Module.__call__ for the whole process while it traces;
# a thread that calls an unrelated model during that window goes through the tracer and raises
# NameError("module is not installed as a submodule").


def _mlp(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 16)).eval()


def fx_setup(ctx):
    sys.setswitchinterval(1e-5)  # the trial's own process: switch threads often, so traces and calls overlap
    return {"served": _mlp(0), "traced": _mlp(1)}


def fx_trace_while_serving(ctx, i):
    x = torch.randn(4, 16, generator=ctx.generator)
    models = ctx.state
    with torch.no_grad():
        if (ctx.thread + i) % 2 == 0:  # half the threads trace a model at a time ...
            return torch.fx.symbolic_trace(models["traced"])(x)
        return models["served"](x)  # ... while the others serve another one


@pytest.mark.concurrent(
    step=fx_trace_while_serving, setup=fx_setup, threads=4, iterations=30, trials=5, expect="fail", fail_rate="10%"
)
def test_fx_symbolic_trace_breaks_other_threads_112775():
    pass


# ---------------------------------------------------------------- pytorch#186537 (open)
# torch._dynamo.config set on the main thread does not reach worker threads: a worker sees the
# default recompile limit (8), so compiling a 9th input shape with fullgraph=True fails there
# (FailOnRecompileLimitHit), while the main thread, with the limit it set, compiles them all.


def _double_plus_one(x):
    return x * 2 + 1


def dynamo_setup(ctx):
    torch._dynamo.config.recompile_limit = 64  # the main thread raises the limit ...
    return torch.compile(_double_plus_one, backend="eager", fullgraph=True, dynamic=False)


def dynamo_shapes_in_workers(ctx, i):
    n = 1 + (ctx.thread * 7 + i) % 12  # ... and the workers compile 12 shapes between them
    return ctx.state(torch.randn(n, generator=ctx.generator))


@pytest.mark.concurrent(
    step=dynamo_shapes_in_workers, setup=dynamo_setup, threads=2, iterations=12, trials=5, warmup=0, expect="fail"
)
def test_dynamo_config_not_seen_by_worker_threads_186537():
    pass


# ---------------------------------------------------------------- control: pytorch#115917 (fixed)
# torch.set_default_device called in a worker thread, after the main thread set one, raised in
# the releases of late 2023; fixed by pytorch#116014 (the default device is kept per thread). It
# must pass: each worker switches its own default to "meta" and back, and every tensor the others
# create meanwhile stays on the CPU (a leak would put a CPU generator's draw on "meta" and raise).


def default_device_setup(ctx):
    torch.set_default_device("cpu")


def default_device_per_thread(ctx, i):
    torch.set_default_device("meta")
    on_meta = torch.empty(2).device.type == "meta"
    torch.set_default_device("cpu")
    a = torch.randn(8, 8, generator=ctx.generator)
    return a @ a + (0.0 if on_meta else 1.0)


@pytest.mark.concurrent(
    step=default_device_per_thread, setup=default_device_setup, threads=4, iterations=50, trials=30, max_failure="10%"
)
def test_set_default_device_in_threads_115917():
    pass
