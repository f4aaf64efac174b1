"""The allocator probes: allocate and free, empty the cache, allocate under a memory limit, free while in use.

Each action takes a ``ProbeContext``, runs its work once per thread (``ctx.run_threads``), checks
every value it wrote (raising ``ProbeFailure`` when one is wrong) and returns a ``ProbeOutcome``
whose facts are the allocator's own counters moving as the path says they should (allocated
memory that rose and fell, reserved memory released under pressure, no new segment on reuse).
What it is not: the stream and event paths (``paths``), nor which backend each probe applies to
(``catalogue``).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from mpslab.run.backends import Backend
from mpslab.studies.limits import default_fraction, fmt_bytes, total_memory
from mpslab.studies.probes.evidence import cuda_stats
from mpslab.studies.probes.probe import ProbeContext, ProbeOutcome, check_close, sum_is
from mpslab.studies.probes.status import ProbeFailure

__all__ = ["alloc_free", "empty_cache", "memory_pressure", "release_on_completion"]


def _total_memory(backend: Backend) -> int:
    try:
        return total_memory(backend)
    except ValueError:
        raise ProbeFailure(f"no memory limit on the {backend.kind} backend") from None


def alloc_free(ctx: ProbeContext) -> ProbeOutcome:
    b = ctx.backend
    sizes = [1024 * (k + 1) for k in range(6)] + [1 << 20, 3 << 19]  # float32 elements: small and large pools
    requested = 4 * sum(sizes) * ctx.threads
    samples: dict[str, Any] = {}

    def sample(key: str) -> None:
        samples[key] = b.memory().allocated
        if b.kind == "cuda":
            samples[key + ".segments"] = cuda_stats(b).get("segment.all.allocated")

    def one(i: int, barrier: Any) -> None:
        stream = b.new_stream() if b.has_streams else None
        for rnd in range(2):  # the second pass allocates the same sizes again on the same stream
            barrier.wait()
            if i == 0:
                sample(f"before{rnd}")
            barrier.wait()
            with b.use_stream(stream):
                ts = [torch.full((n,), float(i + k + 1), device=ctx.device) for k, n in enumerate(sizes)]
            b.synchronize_stream(stream)
            barrier.wait()
            if i == 0:
                sample(f"alive{rnd}")
            barrier.wait()
            for k, (t, n) in enumerate(zip(ts, sizes)):
                got = float(t[-1].item()), float(t.sum().item())
                want = float(i + k + 1), float(n * (i + k + 1))
                if got[0] != want[0] or abs(got[1] - want[1]) > 1e-5 * want[1]:
                    raise ProbeFailure(f"thread {i}: buffer {k} holds {got}, expected {want}")
            with b.use_stream(stream):
                del ts, t
            b.synchronize_stream(stream)
            barrier.wait()
            if i == 0:
                sample(f"freed{rnd}")

    ctx.run_threads(one)
    facts = []
    before, alive, freed = samples.get("before0"), samples.get("alive0"), samples.get("freed0")
    if None not in (before, alive, freed) and alive - before >= requested and alive - freed >= requested:
        facts.append(
            f"allocated memory rose by {fmt_bytes(alive - before)} (>= {fmt_bytes(requested)} requested "
            f"by {ctx.threads} thread(s)) while the buffers lived and fell by {fmt_bytes(alive - freed)} "
            "when they were freed"
        )
    seg0, seg1 = samples.get("before1.segments"), samples.get("alive1.segments")
    if seg0 is not None and seg1 is not None and seg1 == seg0:
        facts.append(
            "second round on the same streams: no new segment (segment.all.allocated +0), "
            "every block came back from the cache"
        )
    return ProbeOutcome(f"{ctx.threads} thread(s) x {len(sizes)} buffers x 2 rounds held the values written", facts)


def empty_cache(ctx: ProbeContext) -> ProbeOutcome:
    b = ctx.backend
    elems = (ctx.chunk_mb << 20) // 4
    samples: dict[str, Any] = {}

    def one(i: int, barrier: Any) -> None:
        ts = [torch.ones(elems, device=ctx.device) for _ in range(2)]
        del ts  # now cached, not in use
        b.synchronize()
        barrier.wait()
        if i == 0:
            samples["before"] = b.memory().reserved
        barrier.wait()
        b.empty_cache()  # from every thread at once
        barrier.wait()
        if i == 0:
            samples["after"] = b.memory().reserved
        barrier.wait()
        t = torch.full((elems // 4,), 3.0, device=ctx.device)
        if not sum_is(t, 3.0 * (elems // 4)):
            raise ProbeFailure(f"thread {i}: allocation after empty_cache holds the wrong values")

    ctx.run_threads(one)
    facts = []
    before, after = samples.get("before"), samples.get("after")
    if before is not None and after is not None and after < before:
        facts.append(
            f"reserved memory fell from {fmt_bytes(before)} to {fmt_bytes(after)} when "
            f"{ctx.threads} thread(s) called empty_cache() at once"
        )
    return ProbeOutcome(f"{ctx.threads} thread(s): allocations after a concurrent empty_cache() were right", facts)


def memory_pressure(ctx: ProbeContext) -> ProbeOutcome:
    b = ctx.backend
    chunk = ctx.chunk_mb << 20
    samples: dict[str, Any] = {}
    b.synchronize()
    b.empty_cache()
    base = b.memory().reserved

    def fill_cache(i: int, barrier: Any) -> None:
        a = torch.full((chunk // 4,), 1.0, device=ctx.device)
        c = torch.full((chunk // 4,), 2.0, device=ctx.device)
        barrier.wait()
        del a, c  # two chunks per thread, now cached

    def big(i: int, barrier: Any) -> None:
        t = torch.full((2 * chunk // 4,), float(i + 1), device=ctx.device)  # fits no cached block
        if float(t[-1].item()) != float(i + 1) or not sum_is(t, float(i + 1) * (2 * chunk // 4)):
            raise ProbeFailure(f"thread {i}: the 2-chunk allocation holds the wrong values")
        barrier.wait()
        if i == 0:
            samples["after"] = b.memory().reserved
        barrier.wait()

    ctx.run_threads(fill_cache)
    b.synchronize()
    cached = b.memory().reserved
    limit = cached + chunk  # the cache fills the limit: a 2-chunk request fits only once it is released
    fraction = limit / _total_memory(b)
    if not 0.0 < fraction <= 1.0:
        raise ProbeFailure(f"cannot express a limit of {fmt_bytes(limit)} as a memory fraction ({fraction:.3f})")
    b.set_memory_fraction(fraction)
    try:
        ctx.run_threads(big)
    finally:
        b.set_memory_fraction(default_fraction(b))
        b.empty_cache()
    facts = []
    after = samples.get("after")
    wanted = ctx.threads * 2 * chunk
    if None not in (base, cached, after) and cached - base >= wanted and after < cached + wanted and after <= limit:
        facts.append(
            f"with {fmt_bytes(cached - base)} cached under a limit of {fmt_bytes(limit)}, "
            f"{ctx.threads} x {fmt_bytes(2 * chunk)} allocations succeeded and reserved memory ended at "
            f"{fmt_bytes(after)}: cached blocks were released to make room"
        )
    return ProbeOutcome(
        f"{ctx.threads} thread(s): 2-chunk allocations under a tight memory fraction held "
        "the right values (no out-of-memory)",
        facts,
    )


def release_on_completion(ctx: ProbeContext) -> ProbeOutcome:
    b = ctx.backend

    def one(i: int, barrier: Any) -> None:
        x, ref = ctx.matrix(i)
        side = b.new_stream() if b.has_streams else None
        busy = torch.randn(4 * ctx.size, 4 * ctx.size, device=ctx.device) / (2 * math.sqrt(ctx.size))
        barrier.wait()
        if side is not None:
            side.wait_stream(b.current_stream())
            busy.record_stream(side)
            with b.use_stream(side):
                for _ in range(4):
                    busy = torch.tanh(busy @ busy)  # keep the side stream busy
                y = x @ x
            x.record_stream(side)
        else:
            for _ in range(4):
                busy = torch.tanh(busy @ busy)
            y = x @ x
        del x  # freed while the kernel that reads it may still be queued
        junk = torch.full((ctx.size, ctx.size), float("nan"), device=ctx.device)  # may reuse x's memory
        b.synchronize_stream(side)
        b.synchronize()
        check_close(y, ref, f"result read from a freed input in thread {i}")
        del junk

    ctx.run_threads(one)
    return ProbeOutcome(
        f"{ctx.threads} thread(s): inputs freed while queued work still read them; "
        "NaN-filled new allocations did not leak into the results"
    )
