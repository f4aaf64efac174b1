"""The edge cases that run in this process: user-facing errors, memory, threads, odd inputs.

What it is: one action per case. Each takes a ``CaseContext``, does the one thing its case
names on the context's backend, checks what it can (raising ``WrongResult`` for a wrong
result) and returns what happened in a line, or lets the library's exception through (the
runner compares it with the expectation). ``empty_cache_race`` is the body of the case of
that name as a plain function (backend, threads, timeout) that other catalogues can call.

What it is not: the expectations per backend (``catalogue``), the cases that need a child
process (``process``) or the harness's own refused inputs (``harness``).
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any

import torch

from mpslab.run.backends import Backend
from mpslab.run.config import StressConfig
from mpslab.run.runner import run_stress
from mpslab.run.workloads import register_workload, unregister_workload
from mpslab.studies.edges.expect import CaseContext, WrongResult
from mpslab.studies.limits import default_fraction

__all__ = [
    "bad_view",
    "empty_cache_race",
    "empty_cache_race_case",
    "float64",
    "matmul_shape_mismatch",
    "nan_inf",
    "negative_size",
    "non_contiguous",
    "oom_then_recovery",
    "sync_nothing_pending",
    "two_devices",
    "worker_exception",
    "zero_size",
]


def _sync(ctx: CaseContext) -> None:
    ctx.backend.synchronize()


def matmul_shape_mismatch(ctx: CaseContext) -> str:
    out = torch.randn(3, 4, device=ctx.device) @ torch.randn(5, 6, device=ctx.device)
    _sync(ctx)
    return f"returned a {tuple(out.shape)} tensor"


def two_devices(ctx: CaseContext) -> str:
    out = torch.mm(torch.randn(4, 4, device=ctx.device), torch.randn(4, 4, device="cpu"))
    _sync(ctx)
    return f"returned a tensor on {out.device}"


def float64(ctx: CaseContext) -> str:
    t = torch.ones(4, dtype=torch.float64, device=ctx.device)
    total = float(t.sum().item())
    if total != 4.0:
        raise WrongResult(f"sum of four float64 ones is {total!r}")
    return "float64 tensor created on the device; its sum is 4.0"


def negative_size(ctx: CaseContext) -> str:
    t = torch.empty(-1, device=ctx.device)
    return f"returned a tensor of shape {tuple(t.shape)}"


def bad_view(ctx: CaseContext) -> str:
    t = torch.ones(6, device=ctx.device).view(7)
    return f"returned a view of shape {tuple(t.shape)}"


def oom_then_recovery(ctx: CaseContext) -> str:
    b = ctx.backend
    headroom = 256 << 20
    oom: BaseException | None = None
    if ctx.kind == "cpu":  # no memory fraction on the CPU: ask for more than any address space instead
        try:
            torch.empty(2**60, dtype=torch.uint8)
        except RuntimeError as exc:
            oom = exc
        else:
            return "an allocation of 2**60 bytes succeeded"
    else:
        b.synchronize()
        b.empty_cache()
        limit = b.memory().reserved + headroom
        total = (
            b.api.get_device_properties(b.index).total_memory if ctx.kind == "cuda" else b.api.recommended_max_memory()
        )
        b.set_memory_fraction(min(1.0, limit / total))
        try:
            try:
                big = torch.empty(4 * headroom, dtype=torch.uint8, device=ctx.device)
                b.synchronize()
                del big
            except RuntimeError as exc:
                oom = exc
        finally:
            b.set_memory_fraction(default_fraction(b))
            b.empty_cache()
        if oom is None:
            return f"an allocation of {4 * headroom >> 20} MiB succeeded under a {headroom >> 20} MiB headroom"
    n = (headroom // 4) // 4  # recovery: a 64 MiB float32 tensor, filled and checked
    t = torch.full((n,), 2.0, device=ctx.device)
    if abs(float(t.sum().item()) - 2.0 * n) > 1e-5 * 2.0 * n:
        raise WrongResult("the allocation after the out-of-memory error holds the wrong values")
    del t
    raise oom  # the observed outcome: the out-of-memory error, raised after recovery was checked


_RAISE_WORKLOAD = "mpslab-edge-raise-mid-run"


def worker_exception(ctx: CaseContext) -> str:
    threads, iters, bad = max(2, ctx.threads), 6, 2

    def step(w: Any, i: int) -> torch.Tensor:
        if w.thread == 0 and i == bad:
            a = torch.ones(3, 4, device=w.device, dtype=w.dtype)
            return a @ a  # shapes do not multiply: raises in worker 0, mid-run
        x = torch.randn(w.size, w.size, generator=w.generator, device=w.device, dtype=w.dtype)
        return (x @ x).sum()

    register_workload(
        _RAISE_WORKLOAD,
        step,
        description="edge case: worker 0 raises at iteration 2",
        scale=lambda s: float(s) ** 1.5,
        kind="fault",
    )
    try:
        res = run_stress(
            StressConfig(
                threads=threads,
                iterations=iters,
                sync_every=2,
                workload=_RAISE_WORKLOAD,
                size=ctx.size,
                device=str(ctx.device),
                warmup=0,
            )
        )
    finally:
        unregister_workload(_RAISE_WORKLOAD)
    good = (threads - 1) * iters + bad
    e = res.errors[0] if res.errors else None
    if not (
        res.error_count == 1
        and e is not None
        and e.thread == 0
        and e.iteration == bad
        and e.type == "RuntimeError"
        and "cannot be multiplied" in e.message
    ):
        raise WrongResult(
            f"expected one RuntimeError from thread 0 at iteration {bad}; got "
            f"{res.error_count} error(s): {[(x.thread, x.iteration, x.type) for x in res.errors[:3]]}"
        )
    if res.mismatch_count or res.completed != good or res.verified != good:
        raise WrongResult(
            f"the other threads: {res.completed} iterations completed, {res.verified} verified, "
            f"{res.mismatch_count} mismatches (expected {good}, {good}, 0)"
        )
    return (
        f"thread 0's RuntimeError at iteration {bad} was captured; {threads - 1} other thread(s) "
        f"finished, {res.verified} checksums verified, 0 mismatches"
    )


def zero_size(ctx: CaseContext) -> str:
    d = ctx.device
    r1 = torch.randn(0, 8, device=d) @ torch.randn(8, 5, device=d)
    r2 = torch.randn(4, 0, device=d) @ torch.randn(0, 3, device=d)
    r3 = torch.empty(0, device=d).sum()
    if tuple(r1.shape) != (0, 5):
        raise WrongResult(f"(0x8) @ (8x5) has shape {tuple(r1.shape)}")
    if tuple(r2.shape) != (4, 3) or bool((r2.cpu() != 0).any()):
        raise WrongResult("(4x0) @ (0x3) is not a 4x3 zero matrix")
    if float(r3.item()) != 0.0:
        raise WrongResult(f"the sum of an empty tensor is {float(r3.item())!r}")
    return "(0x8)@(8x5) -> 0x5, (4x0)@(0x3) -> 4x3 zeros, sum(empty) -> 0"


def non_contiguous(ctx: CaseContext) -> str:
    n = ctx.size
    g = torch.Generator().manual_seed(11)
    x = torch.randn(n, 2 * n, generator=g) / math.sqrt(n)
    y = torch.randn(2 * n, n, generator=g) / math.sqrt(n)
    v = torch.randn(n, generator=g)
    xd, yd, vd = x.to(ctx.device), y.to(ctx.device), v.to(ctx.device)
    views = {
        "strided slices": (xd[:, ::2], yd[::2, :], x.double()[:, ::2] @ y.double()[::2, :]),
        "transposes": (yd.t(), xd.t(), y.double().t() @ x.double().t()),
        "expanded (stride 0)": (vd.expand(n, n), yd[:n], v.double().expand(n, n) @ y.double()[:n]),
    }
    for name, (a, b, want) in views.items():
        if a.is_contiguous() and b.is_contiguous():
            raise WrongResult(f"{name}: the inputs are contiguous, the case tests nothing")
        got = (a @ b).to("cpu", torch.float64)
        if not torch.allclose(got, want, rtol=1e-3, atol=1e-3):
            raise WrongResult(f"{name}: max |diff| {(got - want).abs().max().item():.3g} from the float64 reference")
    return "strided slices, transposes and an expanded input: matmul matched the float64 reference"


def nan_inf(ctx: CaseContext) -> str:
    g = torch.Generator().manual_seed(5)
    x = torch.randn(8, 8, generator=g)
    x[0, 0], x[1, 1], x[2, 2] = float("nan"), float("inf"), float("-inf")
    want = x.double() @ x.double()
    xd = x.to(ctx.device)
    got = (xd @ xd).to("cpu", torch.float64)
    if not torch.equal(got.isnan(), want.isnan()):
        raise WrongResult("matmul: the NaN pattern differs from IEEE float64 on the CPU")
    if not torch.equal(got.isinf() & (got > 0), want.isinf() & (want > 0)) or not torch.equal(
        got.isinf() & (got < 0), want.isinf() & (want < 0)
    ):
        raise WrongResult("matmul: the +Inf / -Inf pattern differs from IEEE float64 on the CPU")
    finite = want.isfinite()
    if not torch.allclose(got[finite], want[finite], rtol=1e-3, atol=1e-3):
        raise WrongResult("matmul: finite entries differ from the reference")
    if not math.isnan(float(xd.sum().item())) or not math.isnan(float(xd.max().item())):
        raise WrongResult("sum / max of a tensor holding NaN is not NaN")
    cleaned = xd.nan_to_num(nan=0.0, posinf=1e4, neginf=-1e4)
    if not bool(cleaned.isfinite().all().item()):
        raise WrongResult("nan_to_num left non-finite values")
    return (
        f"matmul kept the IEEE NaN/Inf pattern ({int(want.isnan().sum())} NaN, {int(want.isinf().sum())} Inf "
        "entries); sum and max propagate NaN; nan_to_num cleans"
    )


def empty_cache_race(backend: Backend, *, threads: int, timeout: float, rounds: int = 20, elems: int = 1 << 20) -> str:
    """``empty_cache()`` in a loop while ``max(2, threads)`` threads allocate, fill and check buffers.

    The release loop is the scenario library's (``empty_cache_while``, also behind the scenario
    ``empty-cache-under-load``): one implementation reached from both catalogues. Returns what
    happened; raises ``WrongResult`` when a fresh buffer held the wrong values, a thread raised,
    or a thread was still running after ``timeout`` seconds.
    """
    from mpslab.studies.scenarios.lifecycle import empty_cache_while

    threads = max(2, threads)

    def allocate(i: int) -> None:
        for _ in range(rounds):
            t = torch.full((elems,), float(i + 1), device=backend.device)
            total = float(t.sum().item())
            if abs(total - float(i + 1) * elems) > 1e-5 * float(i + 1) * elems:
                raise WrongResult(f"a fresh buffer sums to {total!r}")
            del t

    report = empty_cache_while(backend, allocate, threads, timeout)
    if report.still_running:
        raise WrongResult(f"threads still running after {timeout:.0f} s")
    if report.problems:
        raise WrongResult("; ".join(report.problems[:3]))
    return (
        f"{threads} thread(s) x {rounds} fresh {elems * 4 / 2**20:g} MiB buffers held their values while "
        f"empty_cache() ran {report.releases} times"
    )


def empty_cache_race_case(ctx: CaseContext) -> str:
    return empty_cache_race(ctx.backend, threads=ctx.threads, timeout=ctx.timeout)


def sync_nothing_pending(ctx: CaseContext) -> str:
    b = ctx.backend
    b.synchronize()
    threads, calls = max(2, ctx.threads), 20
    barrier = threading.Barrier(threads, timeout=ctx.timeout)
    problems: list[str] = []
    worst = [0.0]

    def hammer(i: int) -> None:
        try:
            barrier.wait()
            for _ in range(calls):
                t0 = time.perf_counter()
                b.synchronize()
                worst[0] = max(worst[0], time.perf_counter() - t0)
        except Exception as exc:
            problems.append(f"thread {i}: {type(exc).__name__}: {exc}")

    ts = [threading.Thread(target=hammer, args=(i,), daemon=True) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(ctx.timeout)
    if any(t.is_alive() for t in ts):
        raise WrongResult(f"synchronize() did not return within {ctx.timeout:.0f} s")
    if problems:
        raise WrongResult("; ".join(problems[:3]))
    return f"{threads} thread(s) x {calls} synchronize() with nothing queued; slowest call {worst[0] * 1e3:.2f} ms"
