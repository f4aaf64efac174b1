"""The stream and event probes: one action per path of compute, events, streams, synchronisation and shutdown.

What it is: the functions a ``Plan`` names as its action. Each takes a ``ProbeContext``, runs
its work once per thread (``ctx.run_threads``; one thread in the alone run, T at once in the
other), checks every result against a float64 CPU reference or a known value (raising
``ProbeFailure`` when one is wrong) and returns a ``ProbeOutcome`` whose facts are its own
observations that the path was taken (an event pending before ``synchronize`` and complete
after it, a child that exited with work still queued).

What it is not: the allocator's paths (``memory_paths``), which backend each probe applies to and
what evidence makes it ``covered`` (``catalogue``, the data), nor how the evidence is collected
(``evidence``) or judged (``runner``).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from mpslab.studies.child import run_script
from mpslab.studies.probes.probe import ProbeContext, ProbeOutcome, check_close
from mpslab.studies.probes.status import ProbeFailure

__all__ = [
    "SHUTDOWN_SCRIPT",
    "completion_handlers",
    "compute",
    "current_stream",
    "event_record_wait",
    "flush_coalescing",
    "shutdown",
    "synchronize",
]

# The child for "shutdown with work in flight" (mpslab/studies/scripts/queued_work_exit.py):
# T threads queue device work without synchronising and finish; an event recorded after it
# is queried; the interpreter exits.
SHUTDOWN_SCRIPT = "queued_work_exit"


def compute(ctx: ProbeContext) -> ProbeOutcome:
    def one(i: int, barrier: Any) -> None:
        x, ref = ctx.matrix(i)
        barrier.wait()
        for _ in range(3):
            y = x @ x
        check_close(y, ref, f"matmul in thread {i}")

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
        check_close(total.reshape(1), ref.sum().reshape(1), f"sum after wait in thread {i}", tol=1e-2 * ctx.size)
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
        check_close(y, ref, f"result after synchronize in thread {i}")
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
        check_close(y, ref, f"matmul on own stream in thread {i}")
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
        check_close(w, ref * 2.0 + 1.0, f"compute / copy / compute in thread {i}")

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
        check_close(acc, expected, f"scalar chain in thread {i}", tol=1e-4)

    ctx.run_threads(one)
    return ProbeOutcome(
        f"{ctx.threads} thread(s) x 16 ops with scalar operands, temporaries freed in flight: right result"
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
