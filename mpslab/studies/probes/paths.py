"""The probes: one action per backend path, driving it through torch's public API.

What it is: the functions a ``Plan`` names as its action. Each takes a ``ProbeContext``, runs
its work once per thread (``ctx.run_threads``; one thread in the alone run, T at once in the
other), checks every result against a float64 CPU reference or a known value (raising
``ProbeFailure`` when one is wrong) and returns a ``ProbeOutcome`` whose facts are its own
observations that the path was taken (an event pending before ``synchronize`` and complete
after it, reserved memory that fell, a child that exited with work still queued).

What it is not: which backend each probe applies to and what evidence makes it ``covered``
(``catalogue``, the data), nor how the evidence is collected (``evidence``) or judged (``runner``).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from mpslab.run.backends import Backend
from mpslab.studies.child import run_script
from mpslab.studies.limits import default_fraction, fmt_bytes, total_memory
from mpslab.studies.probes.evidence import cuda_stats
from mpslab.studies.probes.probe import ProbeContext, ProbeOutcome
from mpslab.studies.probes.status import ProbeFailure

__all__ = [
    "SHUTDOWN_SCRIPT",
    "alloc_free",
    "completion_handlers",
    "compute",
    "current_stream",
    "empty_cache",
    "event_record_wait",
    "flush_coalescing",
    "memory_pressure",
    "release_on_completion",
    "shutdown",
    "synchronize",
]

# The child for "shutdown with work in flight" (mpslab/studies/scripts/queued_work_exit.py):
# T threads queue device work without synchronising and finish; an event recorded after it
# is queried; the interpreter exits.
SHUTDOWN_SCRIPT = "queued_work_exit"


def _total_memory(backend: Backend) -> int:
    try:
        return total_memory(backend)
    except ValueError:
        raise ProbeFailure(f"no memory limit on the {backend.kind} backend") from None


def _check_close(got: torch.Tensor, ref: torch.Tensor, what: str, tol: float = 1e-2) -> None:
    g = got.detach().to("cpu", torch.float64)
    if g.shape != ref.shape:
        raise ProbeFailure(f"{what}: shape {tuple(g.shape)} != expected {tuple(ref.shape)}")
    if not torch.allclose(g, ref, rtol=tol, atol=tol):
        bad = (g - ref).abs().nan_to_num(float("inf")).max().item()
        raise ProbeFailure(f"{what}: result differs from the float64 CPU reference (max |diff| {bad:.3g})")


def _sum_is(t: torch.Tensor, want: float) -> bool:
    """``t.sum()`` equals ``want`` up to float32 rounding (large sums are not exact)."""
    return abs(float(t.sum().item()) - want) <= 1e-5 * abs(want)


def compute(ctx: ProbeContext) -> ProbeOutcome:
    def one(i: int, barrier: Any) -> None:
        x, ref = ctx.matrix(i)
        barrier.wait()
        for _ in range(3):
            y = x @ x
        _check_close(y, ref, f"matmul in thread {i}")

    ctx.run_threads(one)
    return ProbeOutcome(
        f"{ctx.threads} thread(s) x 3 matmuls ({ctx.size}x{ctx.size}) matched the float64 CPU reference"
    )


def event_record_wait(ctx: ProbeContext) -> ProbeOutcome:
    b = ctx.backend

    def one(i: int, barrier: Any) -> float:
        x, ref = ctx.matrix(i)
        start, end = b.new_event(enable_timing=True), b.new_event(enable_timing=True)
        producer = b.new_stream() if b.has_streams else None
        barrier.wait()
        with b.use_stream(producer):
            start.record()
            y = x @ x
            end.record()
        end.wait()  # the consumer (this thread's current stream) waits for the producer's signal
        total = y.sum()
        end.synchronize()
        ms = float(start.elapsed_time(end))
        done = bool(end.query())
        _check_close(total.reshape(1), ref.sum().reshape(1), f"sum after wait in thread {i}", tol=1e-2 * ctx.size)
        if not (math.isfinite(ms) and ms >= 0):
            raise ProbeFailure(f"thread {i}: elapsed_time returned {ms!r}")
        if not done:
            raise ProbeFailure(f"thread {i}: event.query() is False after event.synchronize()")
        return ms

    times = ctx.run_threads(one)
    fact = (
        f"elapsed_time between the two events: {min(times):.3f}..{max(times):.3f} ms in {len(times)} thread(s); "
        "query() True after synchronize()"
    )
    return ProbeOutcome(f"{ctx.threads} thread(s): the sum read after wait() matched the reference", [fact])


def synchronize(ctx: ProbeContext) -> ProbeOutcome:
    b = ctx.backend

    def one(i: int, barrier: Any) -> bool:
        x, ref = ctx.matrix(i)
        stream = b.new_stream() if b.has_streams else None
        marker = b.new_event(enable_timing=False)
        barrier.wait()
        with b.use_stream(stream):
            y = x @ x
            z = x
            for _ in range(8):  # more queued work, so that some is still pending at the marker
                z = torch.tanh(z @ z)
            marker.record()
        pending = not bool(marker.query())
        b.synchronize_stream(stream)
        b.synchronize()
        if not bool(marker.query()):
            raise ProbeFailure(f"thread {i}: work recorded before synchronize() still pending after it")
        _check_close(y, ref, f"result after synchronize in thread {i}")
        return pending

    pending = ctx.run_threads(one)
    facts = []
    if any(pending):
        facts.append(
            f"{sum(pending)} of {len(pending)} thread(s) saw their work pending (event.query() False) "
            "before synchronize() and complete right after it"
        )
    return ProbeOutcome(f"{ctx.threads} thread(s): results right after stream and device synchronize", facts)


def current_stream(ctx: ProbeContext) -> ProbeOutcome:
    b = ctx.backend

    def one(i: int, barrier: Any) -> Any:
        default = b.current_stream()
        own = b.new_stream()
        x, ref = ctx.matrix(i)
        with b.use_stream(own):
            barrier.wait()  # every thread is inside its own stream context now
            seen = b.current_stream()
            y = x @ x
            barrier.wait()  # the others entered theirs meanwhile: ours must be unchanged
            seen_after = b.current_stream()
        b.synchronize_stream(own)
        restored = b.current_stream()
        if not (seen == own and seen_after == own):
            raise ProbeFailure(f"thread {i}: current stream inside its context is not its own stream")
        if restored != default:
            raise ProbeFailure(f"thread {i}: current stream not restored to the thread's default")
        _check_close(y, ref, f"matmul on own stream in thread {i}")
        return getattr(own, "stream_id", None) or getattr(own, "cuda_stream", None) or id(own)

    ids = ctx.run_threads(one)
    fact = (
        f"{len(ids)} thread(s) each saw its own current stream ({len(set(ids))} distinct) while all were "
        "inside their stream contexts at once, and its default stream again afterwards"
    )
    return ProbeOutcome(f"{ctx.threads} thread(s): matmul on the thread's own stream matched the reference", [fact])


def flush_coalescing(ctx: ProbeContext) -> ProbeOutcome:
    b = ctx.backend

    def one(i: int, barrier: Any) -> None:
        x, ref = ctx.matrix(i)
        barrier.wait()
        y = x @ x  # compute work, coalesced into the open compute encoder
        z = torch.empty_like(y)
        z.copy_(y)  # a blit copy: the compute encoder must end first
        w = z * 2.0 + 1.0  # compute again
        b.synchronize()  # commit and wait
        _check_close(w, ref * 2.0 + 1.0, f"compute / copy / compute in thread {i}")

    ctx.run_threads(one)
    return ProbeOutcome(f"{ctx.threads} thread(s): compute -> copy -> compute -> synchronize gave the right result")


def completion_handlers(ctx: ProbeContext) -> ProbeOutcome:
    b = ctx.backend

    def one(i: int, barrier: Any) -> None:
        x, _ = ctx.matrix(i)
        expected = x.to("cpu", torch.float64)
        barrier.wait()
        acc = x
        for k in range(8):  # Python-scalar operands; every temporary freed as soon as it is replaced
            acc = acc * 0.5 + 0.25 * (k + 1)
            expected = expected * 0.5 + 0.25 * (k + 1)
        b.synchronize()
        _check_close(acc, expected, f"scalar chain in thread {i}", tol=1e-4)

    ctx.run_threads(one)
    return ProbeOutcome(
        f"{ctx.threads} thread(s) x 16 ops with scalar operands, temporaries freed in flight: right result"
    )


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
        for rnd in range(2):  # round 2 allocates the same sizes again on the same stream
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
        if not _sum_is(t, 3.0 * (elems // 4)):
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
        if float(t[-1].item()) != float(i + 1) or not _sum_is(t, float(i + 1) * (2 * chunk // 4)):
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
        _check_close(y, ref, f"result read from a freed input in thread {i}")
        del junk

    ctx.run_threads(one)
    return ProbeOutcome(
        f"{ctx.threads} thread(s): inputs freed while queued work still read them; "
        "NaN-filled new allocations did not leak into the results"
    )


def shutdown(ctx: ProbeContext) -> ProbeOutcome:
    n = max(ctx.size, 1024)
    res = run_script(SHUTDOWN_SCRIPT, [str(ctx.device), ctx.threads, n, 200], timeout=ctx.timeout)
    if res.timed_out or res.returncode != 0 or res.crash_text() or "exiting" not in res.stdout:
        raise ProbeFailure(f"child with {ctx.threads} thread(s) of queued work: {res.describe()}")
    facts = []
    if "pending_at_exit True" in res.stdout:
        facts.append(
            f"child exited 0 with device work still pending (event.query() False just before exit), "
            f"queued by {ctx.threads} thread(s)"
        )
    return ProbeOutcome(
        f"child process with {ctx.threads} thread(s) of unsynchronised work exited 0, no crash text on stderr", facts
    )
