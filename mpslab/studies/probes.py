"""The coverage walkthrough: backend paths, each driven by a probe, with evidence.

The seed "verified" a list of MPSStream and MPSAllocator functions by reading
code. Here every path in that list (and its CUDA and CPU counterpart, where one
exists) is a ``Probe``: a Python action that drives the path through torch's
public API, run once alone and once from T threads at once, whose results are
checked, and around which evidence is collected that the path was really taken.

Statuses (``STATUSES``; ``STATUS_MEANING`` says the same in words):

covered         ran alone and from T threads, results right, and the evidence
                this backend can give (``Need``) was collected in this run
exercised       ran alone and from T threads, results right, but no evidence is
                available on this backend, or the evidence named was not seen
                (the ``evidence`` column says which)
not applicable  the concept does not exist on this backend; nothing ran
not run         the backend is not on this machine (or was not asked for)
failed          the probe raised, hung, or a result was wrong (``error`` column)

Evidence comes from three places, all read during the probe: ``torch.profiler``
(op names on CPU and MPS; CUDA runtime calls such as ``cudaStreamWaitEvent``),
allocator counters (``torch.cuda.memory_stats`` deltas; ``torch.mps`` memory
counters sampled by the probe) and the probe's own observations (an event that
was pending before ``synchronize`` and complete after it; a child process that
exited with device work still queued).
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

import pandas as pd
import torch

from mpslab.run.backends import Backend, get_backend, resolve_device

__all__ = [
    "COVERED", "EXERCISED", "NOT_APPLICABLE", "NOT_RUN", "FAILED",
    "STATUSES", "STATUS_MEANING", "BACKEND_KINDS",
    "Need", "Plan", "Probe", "ProbeContext", "ProbeOutcome", "ProbeFailure", "Evidence",
    "PROBES", "list_probes", "get_probe", "probe_catalogue",
    "run_probe", "run_probes", "coverage_matrix", "coverage_table",
    "ChildResult", "run_child", "SHUTDOWN_SCRIPT", "CRASH_MARKERS",
]

COVERED = "covered"
EXERCISED = "exercised"
NOT_APPLICABLE = "not applicable"
NOT_RUN = "not run"
FAILED = "failed"
STATUSES = (COVERED, EXERCISED, NOT_APPLICABLE, NOT_RUN, FAILED)
STATUS_MEANING = {
    COVERED: "ran alone and from T threads at once, results right, and the evidence this backend "
             "can give was collected in this run",
    EXERCISED: "ran alone and from T threads at once, results right, but no evidence is available on "
               "this backend (or the evidence named was not seen; the evidence column says which)",
    NOT_APPLICABLE: "the concept does not exist on this backend; nothing was run",
    NOT_RUN: "the backend is not present on this machine (or was not asked for); nothing was run",
    FAILED: "the probe raised, hung or produced a wrong result (the error column has the traceback)",
}
BACKEND_KINDS = ("cpu", "cuda", "mps")

# memory_stats counters whose increase during a probe is evidence (cumulative counters only).
CUDA_STAT_KEYS = (
    "allocation.all.allocated", "allocation.all.freed", "segment.all.allocated", "segment.all.freed",
    "num_alloc_retries", "num_ooms", "num_sync_all_streams", "num_device_alloc", "num_device_free",
)
# stderr text that means the process crashed rather than exited.
CRASH_MARKERS = ("Segmentation fault", "Fatal Python error", "terminate called", "core dumped",
                 "Aborted", "Bus error", "SIGSEGV", "SIGABRT")


class ProbeFailure(AssertionError):
    """A probe's result was wrong (raised by the probe; the row becomes ``failed``)."""


# --------------------------------------------------------------------------- evidence


@dataclass
class Evidence:
    """What was collected around one run of a probe (one mode)."""

    calls: dict[str, list[Any]] = field(default_factory=dict)  # name -> [count, set of thread ids]
    stats: dict[str, int] = field(default_factory=dict)  # counter increases
    facts: list[str] = field(default_factory=list)  # the probe's own observations
    notes: list[str] = field(default_factory=list)  # e.g. profiler unavailable

    def merge(self, other: "Evidence") -> "Evidence":
        out = Evidence({k: [v[0], set(v[1])] for k, v in self.calls.items()}, dict(self.stats),
                       list(self.facts), list(self.notes))
        for k, (n, threads) in other.calls.items():
            cur = out.calls.setdefault(k, [0, set()])
            cur[0] += n
            cur[1] |= threads
        for k, v in other.stats.items():
            out.stats[k] = out.stats.get(k, 0) + v
        out.facts += [f for f in other.facts if f not in out.facts]
        out.notes += [n for n in other.notes if n not in out.notes]
        return out


@dataclass(frozen=True)
class Need:
    """The evidence that makes a row ``covered`` on one backend.

    calls  groups of names; from each group at least one must be recorded by torch.profiler
    stats  (counter, minimum increase) pairs
    facts  the probe itself must report at least one observation
    """

    calls: tuple[tuple[str, ...], ...] = ()
    stats: tuple[tuple[str, int], ...] = ()
    facts: bool = False

    def missing(self, ev: Evidence) -> list[str]:
        out = []
        for group in self.calls:
            if not any(name in ev.calls for name in group):
                out.append(" or ".join(group) + " not recorded")
        for key, minimum in self.stats:
            if ev.stats.get(key, 0) < minimum:
                out.append(f"{key} rose by {ev.stats.get(key, 0)} (needed >= {minimum})")
        if self.facts and not ev.facts:
            out.append("the probe observed nothing that shows the path")
        return out

    def names(self) -> set[str]:
        return {n for group in self.calls for n in group}

    def describe(self) -> str:
        parts = [" or ".join(g) for g in self.calls]
        parts += [f"{k} +{m}" for k, m in self.stats]
        if self.facts:
            parts.append("the probe's own observation")
        return "; ".join(parts)


def _cuda_stats(backend: Backend) -> dict[str, int]:
    if backend.kind != "cuda":
        return {}
    stats = backend.api.memory_stats(backend.index)
    return {k: int(stats[k]) for k in CUDA_STAT_KEYS if k in stats}


def _experimental_all_threads() -> Any:
    """A profiler config that records ops on every thread, where this torch has one."""
    try:
        from torch._C._profiler import _ExperimentalConfig

        return _ExperimentalConfig(profile_all_threads=True)
    except Exception:  # older torch: the profiler sees its own thread only
        return None


_PROFILER_WARM = 0  # activities the profiler was first started with in the calling thread


def _activities(backend: Backend) -> list[Any]:
    acts = [torch.profiler.ProfilerActivity.CPU]
    if backend.kind == "cuda" and torch.profiler.ProfilerActivity.CUDA in torch.profiler.supported_activities():
        acts.append(torch.profiler.ProfilerActivity.CUDA)
    return acts


def _warm_profiler(backend: Backend) -> None:
    """Start the profiler once in the calling thread: kineto wants its first start there."""
    global _PROFILER_WARM
    acts = _activities(backend)
    if _PROFILER_WARM >= len(acts):
        return
    _PROFILER_WARM = len(acts)
    try:
        with torch.profiler.profile(activities=acts):
            pass
    except Exception:  # the collector reports an unusable profiler itself
        pass


class _Collector:
    """Collects evidence around a block: profiler names, allocator counter increases."""

    def __init__(self, backend: Backend, profile: bool = True, all_threads: bool = True) -> None:
        self.backend = backend
        self.profile = profile
        self.all_threads = all_threads  # off: the profiler's own thread only, but with memory events
        self.evidence = Evidence()
        self._prof: Any = None
        self._before: dict[str, int] = {}

    def __enter__(self) -> "_Collector":
        try:
            self._before = _cuda_stats(self.backend)
        except Exception as exc:
            self.evidence.notes.append(f"memory_stats unavailable: {type(exc).__name__}: {exc}")
        if not self.profile:
            return self
        activities = _activities(self.backend)
        config = _experimental_all_threads() if self.all_threads else None
        if self.all_threads and config is None:
            self.evidence.notes.append("profiler records the probe's own thread only (no profile_all_threads)")
        try:
            kwargs: dict[str, Any] = {"activities": activities, "profile_memory": True}
            if config is not None:
                kwargs["experimental_config"] = config
            self._prof = torch.profiler.profile(**kwargs)
            self._prof.__enter__()
        except Exception as exc:
            self._prof = None
            self.evidence.notes.append(f"profiler unavailable: {type(exc).__name__}: {exc}")
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._prof is not None:
            try:
                self._prof.__exit__(None, None, None)
                self._read(self._prof.events())
            except Exception as e:
                self.evidence.notes.append(f"profiler failed: {type(e).__name__}: {e}")
        try:
            after = _cuda_stats(self.backend)
            for k, v in after.items():
                self.evidence.stats[k] = v - self._before.get(k, 0)
        except Exception as e:
            self.evidence.notes.append(f"memory_stats unavailable: {type(e).__name__}: {e}")

    def _read(self, events: Iterable[Any]) -> None:
        calls = self.evidence.calls
        allocs = frees = 0
        for e in events:
            name = e.name
            # an allocation made inside an op is that op's self memory; a free outside any op is a [memory] event
            prefix = "" if name == "[memory]" else "self_"
            usage = (getattr(e, prefix + "cpu_memory_usage", 0) or 0) + (getattr(e, prefix + "device_memory_usage", 0) or 0)
            if usage > 0:
                allocs += 1
            elif usage < 0:
                frees += 1
            cur = calls.setdefault(name, [0, set()])
            cur[0] += 1
            cur[1].add(getattr(e, "thread", 0))
        self.evidence.stats["profiler.memory_alloc_events"] = allocs
        self.evidence.stats["profiler.memory_free_events"] = frees


# --------------------------------------------------------------------------- probe types


@dataclass
class ProbeOutcome:
    """What a probe reports when its results were right."""

    check: str  # what was verified
    facts: list[str] = field(default_factory=list)  # observations that show the path was taken


class _NoBarrier:
    def wait(self) -> int:
        return 0

    def abort(self) -> None:
        return None


@dataclass
class ProbeContext:
    """What a probe action sees: the backend, how many threads drive it, sizes, limits."""

    backend: Backend
    threads: int
    size: int = 64
    chunk_mb: int = 32
    timeout: float = 120.0
    mode: str = "alone"  # alone | threads

    @property
    def device(self) -> torch.device:
        return self.backend.device

    def matrix(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """A seeded ``size x size`` input on the device and its float64 ``x @ x`` on the CPU."""
        g = torch.Generator().manual_seed(1000 + i)
        x = torch.randn(self.size, self.size, generator=g) / math.sqrt(self.size)
        ref = x.double() @ x.double()
        return x.to(self.device), ref

    def run_threads(self, fn: Callable[[int, Any], Any]) -> list[Any]:
        """``fn(i, barrier)`` on ``threads`` threads started together (inline when 1).

        Every thread runs to its end; then the first error is raised, naming its thread.
        A thread that fails aborts the barrier so the others do not wait for it.
        """
        if self.threads == 1:
            return [fn(0, _NoBarrier())]
        barrier = threading.Barrier(self.threads, timeout=self.timeout)
        results: list[Any] = [None] * self.threads
        errors: list[tuple[int, BaseException]] = []

        def body(i: int) -> None:
            try:
                results[i] = fn(i, barrier)
            except BaseException as exc:  # noqa: BLE001 - reported below with its thread
                errors.append((i, exc))
                barrier.abort()

        workers = [threading.Thread(target=body, args=(i,), name=f"mpslab-probe-{i}", daemon=True)
                   for i in range(self.threads)]
        for w in workers:
            w.start()
        deadline = time.monotonic() + self.timeout
        for w in workers:
            w.join(max(0.0, deadline - time.monotonic()))
        if any(w.is_alive() for w in workers):
            barrier.abort()
            raise TimeoutError(f"{sum(w.is_alive() for w in workers)} of {self.threads} probe threads "
                               f"did not finish within {self.timeout:.0f} s")
        real = [(i, e) for i, e in errors if not isinstance(e, threading.BrokenBarrierError)] or errors
        if real:
            i, exc = sorted(real, key=lambda p: p[0])[0]
            if hasattr(exc, "add_note"):
                exc.add_note(f"(raised in probe thread {i} of {self.threads})")
            raise exc
        return results


@dataclass(frozen=True)
class Plan:
    """How one probe drives one backend.

    action          the probe (None: not applicable on this backend)
    targets         which backend functions the action drives (the mapping it aims at)
    need            evidence that makes it ``covered``; None: none is available
    reason          why not applicable, or why no evidence is available
    applicable      optional check on the backend instance; returns a reason when not applicable
    """

    action: Callable[[ProbeContext], ProbeOutcome] | None
    targets: str
    need: Need | None = None
    reason: str = ""
    applicable: Callable[[Backend], str | None] | None = None

    def not_applicable(self, backend: Backend | None) -> str | None:
        if self.action is None:
            return self.reason or "the concept does not exist on this backend"
        if self.applicable is not None and backend is not None:
            return self.applicable(backend)
        return None


@dataclass(frozen=True)
class Probe:
    path: str  # stable id
    title: str
    seed: str  # what the seed's Attempt 1 listed for it
    what: str  # what the path is, in a sentence or two
    plans: Mapping[str, Plan]

    def plan(self, kind: str) -> Plan:
        return self.plans.get(kind) or Plan(None, "", reason=f"no probe for the {kind} backend")


# --------------------------------------------------------------------------- helpers


def _grace(timeout: float) -> float:
    """Extra seconds a runner waits past ``timeout`` (inner timeouts fire first)."""
    return min(30.0, max(1.0, float(timeout)))


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


def _fmt_bytes(n: int | None) -> str:
    if n is None:
        return "n/a"
    return f"{n / 2**20:.1f} MiB"


def _total_memory(backend: Backend) -> int:
    if backend.kind == "cuda":
        return int(backend.api.get_device_properties(backend.index).total_memory)
    if backend.kind == "mps":
        return int(backend.api.recommended_max_memory())
    raise ProbeFailure(f"no memory limit on the {backend.kind} backend")


def _default_fraction(backend: Backend) -> float:
    """The fraction that restores the allocator's own default limit."""
    if backend.kind == "mps":  # torch's MPS default high watermark ratio is 1.7 unless the env var says
        try:
            return min(2.0, max(0.0, float(os.environ.get("PYTORCH_MPS_HIGH_WATERMARK_RATIO", "1.7"))))
        except ValueError:
            return 1.7
    return 1.0


# --------------------------------------------------------------------------- the probes


def _compute(ctx: ProbeContext) -> ProbeOutcome:
    def one(i: int, barrier: Any) -> None:
        x, ref = ctx.matrix(i)
        barrier.wait()
        for _ in range(3):
            y = x @ x
        _check_close(y, ref, f"matmul in thread {i}")

    ctx.run_threads(one)
    return ProbeOutcome(f"{ctx.threads} thread(s) x 3 matmuls ({ctx.size}x{ctx.size}) matched the float64 CPU reference")


def _event_record_wait(ctx: ProbeContext) -> ProbeOutcome:
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
    fact = (f"elapsed_time between the two events: {min(times):.3f}..{max(times):.3f} ms in {len(times)} thread(s); "
            "query() True after synchronize()")
    return ProbeOutcome(f"{ctx.threads} thread(s): the sum read after wait() matched the reference", [fact])


def _synchronize(ctx: ProbeContext) -> ProbeOutcome:
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
        facts.append(f"{sum(pending)} of {len(pending)} thread(s) saw their work pending (event.query() False) "
                     "before synchronize() and complete right after it")
    return ProbeOutcome(f"{ctx.threads} thread(s): results right after stream and device synchronize", facts)


def _current_stream(ctx: ProbeContext) -> ProbeOutcome:
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
    fact = (f"{len(ids)} thread(s) each saw its own current stream ({len(set(ids))} distinct) while all were "
            "inside their stream contexts at once, and its default stream again afterwards")
    return ProbeOutcome(f"{ctx.threads} thread(s): matmul on the thread's own stream matched the reference", [fact])


def _flush_coalescing(ctx: ProbeContext) -> ProbeOutcome:
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


def _completion_handlers(ctx: ProbeContext) -> ProbeOutcome:
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
    return ProbeOutcome(f"{ctx.threads} thread(s) x 16 ops with scalar operands, temporaries freed in flight: right result")


def _alloc_free(ctx: ProbeContext) -> ProbeOutcome:
    b = ctx.backend
    sizes = [1024 * (k + 1) for k in range(6)] + [1 << 20, 3 << 19]  # float32 elements: small and large pools
    requested = 4 * sum(sizes) * ctx.threads
    samples: dict[str, Any] = {}

    def sample(key: str) -> None:
        samples[key] = b.memory().allocated
        if b.kind == "cuda":
            samples[key + ".segments"] = _cuda_stats(b).get("segment.all.allocated")

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
        facts.append(f"allocated memory rose by {_fmt_bytes(alive - before)} (>= {_fmt_bytes(requested)} requested "
                     f"by {ctx.threads} thread(s)) while the buffers lived and fell by {_fmt_bytes(alive - freed)} "
                     "when they were freed")
    seg0, seg1 = samples.get("before1.segments"), samples.get("alive1.segments")
    if seg0 is not None and seg1 is not None and seg1 == seg0:
        facts.append("second round on the same streams: no new segment (segment.all.allocated +0), "
                     "every block came back from the cache")
    return ProbeOutcome(f"{ctx.threads} thread(s) x {len(sizes)} buffers x 2 rounds held the values written", facts)


def _empty_cache(ctx: ProbeContext) -> ProbeOutcome:
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
        facts.append(f"reserved memory fell from {_fmt_bytes(before)} to {_fmt_bytes(after)} when "
                     f"{ctx.threads} thread(s) called empty_cache() at once")
    return ProbeOutcome(f"{ctx.threads} thread(s): allocations after a concurrent empty_cache() were right", facts)


def _memory_pressure(ctx: ProbeContext) -> ProbeOutcome:
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
        raise ProbeFailure(f"cannot express a limit of {_fmt_bytes(limit)} as a memory fraction ({fraction:.3f})")
    b.set_memory_fraction(fraction)
    try:
        ctx.run_threads(big)
    finally:
        b.set_memory_fraction(_default_fraction(b))
        b.empty_cache()
    facts = []
    after = samples.get("after")
    wanted = ctx.threads * 2 * chunk
    if (None not in (base, cached, after) and cached - base >= wanted and after < cached + wanted
            and after <= limit):
        facts.append(f"with {_fmt_bytes(cached - base)} cached under a limit of {_fmt_bytes(limit)}, "
                     f"{ctx.threads} x {_fmt_bytes(2 * chunk)} allocations succeeded and reserved memory ended at "
                     f"{_fmt_bytes(after)}: cached blocks were released to make room")
    return ProbeOutcome(f"{ctx.threads} thread(s): 2-chunk allocations under a tight memory fraction held "
                        "the right values (no out-of-memory)", facts)


def _release_on_completion(ctx: ProbeContext) -> ProbeOutcome:
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
    return ProbeOutcome(f"{ctx.threads} thread(s): inputs freed while queued work still read them; "
                        "NaN-filled new allocations did not leak into the results")


# --------------------------------------------------------------------------- child processes


@dataclass
class ChildResult:
    returncode: int | None  # None: killed after the timeout
    stdout: str
    stderr: str
    seconds: float

    @property
    def timed_out(self) -> bool:
        return self.returncode is None

    def crash_text(self) -> list[str]:
        return [m for m in CRASH_MARKERS if m in self.stderr]

    def describe(self) -> str:
        if self.timed_out:
            return f"no exit within {self.seconds:.0f} s (killed)"
        rc = self.returncode
        how = f"exit {rc}" if rc >= 0 else f"killed by signal {-rc}"
        tail = self.stderr.strip().splitlines()[-1:] if self.stderr.strip() else []
        return how + (f"; stderr ends: {tail[0][:160]}" if tail else "; stderr empty")


def run_child(code: str, args: Sequence[str], timeout: float = 120.0) -> ChildResult:
    """Run ``python -c code args...`` (no shell) and capture its exit code and output."""
    cmd = [sys.executable, "-c", code, *[str(a) for a in args]]
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    t0 = time.perf_counter()
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False, env=env)
    except subprocess.TimeoutExpired as exc:
        def text(v: Any) -> str:
            return v.decode(errors="replace") if isinstance(v, bytes) else (v or "")
        return ChildResult(None, text(exc.stdout), text(exc.stderr), time.perf_counter() - t0)
    return ChildResult(out.returncode, out.stdout, out.stderr, time.perf_counter() - t0)


# The child for "shutdown with work in flight": T threads queue device work without
# synchronising and finish; an event recorded after it is queried; the interpreter exits.
SHUTDOWN_SCRIPT = """
import sys, threading, torch
device, T, n, iters = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
xs = [torch.randn(n, n, device=device) / n ** 0.5 for _ in range(T)]
def enqueue(i):
    x = xs[i]
    for _ in range(iters):
        x = torch.tanh(x @ xs[i])
    xs[i] = x
threads = [threading.Thread(target=enqueue, args=(i,)) for i in range(T)]
for t in threads:
    t.start()
for t in threads:
    t.join()
event = None
if device.startswith("cuda"):
    event = torch.cuda.Event()
elif device == "mps":
    event = torch.mps.event.Event()
if event is not None:
    event.record()
    print("pending_at_exit", not event.query(), flush=True)
print("exiting", flush=True)
"""


def _shutdown(ctx: ProbeContext) -> ProbeOutcome:
    n = max(ctx.size, 1024)
    res = run_child(SHUTDOWN_SCRIPT, [str(ctx.device), ctx.threads, n, 200], timeout=ctx.timeout)
    if res.timed_out or res.returncode != 0 or res.crash_text() or "exiting" not in res.stdout:
        raise ProbeFailure(f"child with {ctx.threads} thread(s) of queued work: {res.describe()}")
    facts = []
    if "pending_at_exit True" in res.stdout:
        facts.append(f"child exited 0 with device work still pending (event.query() False just before exit), "
                     f"queued by {ctx.threads} thread(s)")
    return ProbeOutcome(f"child process with {ctx.threads} thread(s) of unsynchronised work exited 0, "
                        "no crash text on stderr", facts)


# --------------------------------------------------------------------------- the catalogue

_CPU_NO_QUEUE = ("a CPU op has finished when it returns: there is no device queue, so nothing to signal, "
                 "wait for or synchronise (torch.cpu.synchronize is a no-op; mpslab's HostEvent only reads the host clock)")
_NO_MPS_STREAM = ("this torch exposes no torch.mps.Stream: every op of every thread goes to the one default "
                  "MPS stream (getCurrentMPSStream returns it) and setCurrentStream is not reachable from Python")
_MPS_SILENT = "torch.mps reports nothing about this path; the probe checks its results only"
_LAUNCH = ("cudaLaunchKernel", "cudaLaunchKernelExC", "cuLaunchKernel", "cuLaunchKernelEx")
_EVENT_RECORD = ("cudaEventRecordWithFlags", "cudaEventRecord")


def _mps_streams(backend: Backend) -> str | None:
    return None if backend.has_streams else _NO_MPS_STREAM


PROBES: tuple[Probe, ...] = (
    Probe(
        "compute_from_threads", "compute from threads (randn -> matmul -> sum)",
        "(the seed's Attempt 3 operations)",
        "Every thread dispatches matmuls at once; each result is checked against a float64 CPU reference. "
        "The baseline under every other path.",
        {
            "cpu": Plan(_compute, "aten::mm on the CPU (BLAS), one call per thread", Need(calls=(("aten::mm",),))),
            "cuda": Plan(_compute, "aten::mm -> cuBLAS kernels launched on each thread's current stream",
                         Need(calls=(("aten::mm",), _LAUNCH))),
            "mps": Plan(_compute, "aten::mm -> MPS kernels encoded on the default MPSStream",
                        Need(calls=(("aten::mm",),)),
                        reason="the evidence is the op dispatch torch.profiler records, not the Metal encoding"),
        },
    ),
    Probe(
        "event_record_wait", "event record / wait / elapsed time", "encodeSignalEvent / encodeWaitForEvent",
        "A producer records an event after its work; a consumer waits on it before reading the result; "
        "the event is synchronised and timed.",
        {
            "cpu": Plan(None, "", reason=_CPU_NO_QUEUE),
            "cuda": Plan(_event_record_wait,
                         "Event.record -> cudaEventRecord(WithFlags) on the producer stream; Event.wait -> "
                         "cudaStreamWaitEvent on the consumer stream; synchronize -> cudaEventSynchronize",
                         Need(calls=(_EVENT_RECORD, ("cudaStreamWaitEvent",), ("cudaEventSynchronize",)), facts=True)),
            "mps": Plan(_event_record_wait,
                        "torch.mps.event.Event.record -> MPSEvent record: endKernelCoalescing + encodeSignalEvent; "
                        "wait -> encodeWaitForEvent (when not yet signalled); synchronize / elapsed_time -> "
                        "a shared-event listener notified on completion",
                        Need(facts=True)),
        },
    ),
    Probe(
        "synchronize", "synchronize (commit / commitAndWait)", "synchronize / commit / commitAndWait",
        "Work is queued, an event marks its end, then the stream and the device are synchronised: the event "
        "must be complete right after, and the result right.",
        {
            "cpu": Plan(None, "", reason=_CPU_NO_QUEUE),
            "cuda": Plan(_synchronize, "Stream.synchronize -> cudaStreamSynchronize; torch.cuda.synchronize -> "
                                       "cudaDeviceSynchronize",
                         Need(calls=(("cudaStreamSynchronize",), ("cudaDeviceSynchronize",)))),
            "mps": Plan(_synchronize, "torch.mps.synchronize -> MPSStream::synchronize(SyncType::COMMIT_AND_WAIT): "
                                      "end kernel coalescing, commit the command buffer, wait until completed",
                        Need(facts=True)),
        },
    ),
    Probe(
        "completion_handlers", "scheduled / completed handlers", "addScheduledHandler / addCompletedHandler",
        "Host code that runs when the device has scheduled or completed a command buffer.",
        {
            "cpu": Plan(None, "", reason=_CPU_NO_QUEUE),
            "cuda": Plan(None, "", reason="torch exposes no host callbacks on CUDA streams (cudaLaunchHostFunc is "
                                          "not reachable from Python); completion is learnt by polling events, "
                                          "see the event and release-on-completion rows"),
            "mps": Plan(_completion_handlers,
                        "ops with Python-scalar operands allocate scalar buffers whose free is deferred with "
                        "MPSStream::addCompletedHandler (MPSHeapAllocatorImpl::free, scalar pool); no public "
                        "torch.mps call is known to reach addScheduledHandler",
                        None, reason=_MPS_SILENT),
        },
    ),
    Probe(
        "current_stream_per_thread", "current stream per thread", "getCurrentStream / setCurrentStream",
        "Each thread makes its own stream current; while all are inside their stream contexts at once, each "
        "must still see its own, and its default again afterwards.",
        {
            "cpu": Plan(None, "", reason="the CPU backend has no streams (torch.cpu.Stream is a placeholder)"),
            "cuda": Plan(_current_stream, "torch.cuda.stream(s) sets the thread-local current stream; "
                                          "torch.cuda.current_stream reads it", Need(facts=True)),
            "mps": Plan(_current_stream, "torch.mps stream context (where the installed torch has one)",
                        Need(facts=True), applicable=_mps_streams),
        },
    ),
    Probe(
        "flush_coalescing", "flush / end kernel coalescing", "flush / endKernelCoalescing",
        "Compute kernels, then a copy, then compute again, then synchronize: the open encoder must be ended "
        "and the command buffer committed in order.",
        {
            "cpu": Plan(None, "", reason=_CPU_NO_QUEUE),
            "cuda": Plan(None, "", reason="CUDA has no command-buffer encoders: each kernel is submitted to its "
                                          "stream at launch, nothing is coalesced, ended or flushed"),
            "mps": Plan(_flush_coalescing, "compute kernels share one compute encoder; a blit copy (copy_) and "
                                           "torch.mps.synchronize end it (endKernelCoalescing) and commit",
                        None, reason=_MPS_SILENT),
        },
    ),
    Probe(
        "alloc_free", "buffer alloc / free", "alloc_buffer_block / free_buffer",
        "Every thread allocates buffers of small and large sizes, writes and reads them, frees them, and does "
        "it again on the same stream; the allocator's counters are read between the steps.",
        {
            "cpu": Plan(_alloc_free, "the c10 CPU allocator (no cache): memory comes from and returns to the "
                                     "system allocator",
                        Need(stats=(("profiler.memory_alloc_events", 8), ("profiler.memory_free_events", 8))),
                        reason="torch.profiler reports memory events of its own thread only: the alone run"),
            "cuda": Plan(_alloc_free, "CUDA caching allocator: malloc takes a block from the stream's pool "
                                      "(cudaMalloc only for a new segment); free returns it to that stream's pool",
                         Need(stats=(("allocation.all.allocated", 8), ("allocation.all.freed", 8)), facts=True)),
            "mps": Plan(_alloc_free, "MPSHeapAllocatorImpl::malloc -> alloc_buffer_block (a cached buffer, else a "
                                     "new one in a heap); a tensor's free -> free_buffer (back to its pool)",
                        Need(facts=True)),
        },
    ),
    Probe(
        "empty_cache", "release cached buffers (empty_cache)", "release_cached_buffers",
        "Buffers are freed into the cache, then every thread calls empty_cache() at once; reserved memory must "
        "fall and allocation must work afterwards.",
        {
            "cpu": Plan(None, "", reason="the CPU allocator keeps no cache that torch exposes; nothing to release"),
            "cuda": Plan(_empty_cache, "torch.cuda.empty_cache -> release of every unused cached segment (cudaFree)",
                         Need(stats=(("segment.all.freed", 1),), facts=True)),
            "mps": Plan(_empty_cache, "torch.mps.empty_cache -> MPSHeapAllocatorImpl::emptyCache -> "
                                      "release_cached_buffers (waits for the stream, then frees every pool's "
                                      "unused buffers and empty heaps)", Need(facts=True)),
        },
    ),
    Probe(
        "memory_pressure", "garbage collection / retry under memory pressure", "garbage_collect (memory pressure)",
        "The cache is filled up to a per-process memory fraction; then every thread asks for a block no cached "
        "one fits: the allocator must release cached blocks and retry instead of failing.",
        {
            "cpu": Plan(None, "", reason="the CPU backend has neither a memory fraction nor a cache"),
            "cuda": Plan(_memory_pressure, "set_per_process_memory_fraction; a request over the limit makes the "
                                           "caching allocator free its cached blocks and retry (num_alloc_retries)",
                         Need(stats=(("num_alloc_retries", 1),), facts=True)),
            "mps": Plan(_memory_pressure, "set_per_process_memory_fraction (high watermark); alloc_buffer_block fails "
                                          "the limit check, release_available_cached_buffers / release_cached_buffers "
                                          "free cached buffers and it retries (above the low watermark "
                                          "garbage_collect_cached_buffers runs first)", Need(facts=True)),
        },
    ),
    Probe(
        "release_on_completion", "release on completion", "release_buffer (completion handlers)",
        "An input is freed while queued work still reads it, and a NaN-filled allocation follows at once: the "
        "memory must not be handed out before that work has completed.",
        {
            "cpu": Plan(None, "", reason="a CPU buffer is freed after the op that used it has finished; "
                                         "nothing is in flight"),
            "cuda": Plan(_release_on_completion, "a tensor used on a side stream (record_stream) and freed: the "
                                                 "allocator records an event on that stream and reuses the block "
                                                 "only once the event has completed (polled with cudaEventQuery)",
                         Need(calls=(_EVENT_RECORD, ("cudaEventQuery",)))),
            "mps": Plan(_release_on_completion, "a buffer freed while a queued command buffer reads it: free_buffer "
                                                "returns it to its pool at once and Metal's hazard tracking of heap "
                                                "buffers must order the next writer after the queued reader; a busy "
                                                "buffer's release defers its heap update to a completion handler "
                                                "(release_buffer)",
                        None, reason=_MPS_SILENT),
        },
    ),
    Probe(
        "shutdown", "shutdown with work in flight (child process)", "shutdown (static destruction)",
        "A child process queues work from T threads without synchronising and exits: static destructors run "
        "while the device still works. The child must exit 0 with no crash text.",
        {
            "cpu": Plan(None, "", reason="nothing can be in flight at exit on the CPU backend: every op has "
                                         "finished when it returns (exiting while threads are inside ops is "
                                         "edge case exit_while_threads_in_ops)"),
            "cuda": Plan(_shutdown, "interpreter exit with kernels queued: the caching allocator and stream "
                                    "pools are destroyed while the device works", Need(facts=True)),
            "mps": Plan(_shutdown, "interpreter exit with command buffers in flight: MPSAllocator and MPSStream "
                                   "static destruction (the allocator's destructor empties the cache)",
                        Need(facts=True)),
        },
    ),
)


def list_probes() -> list[Probe]:
    return list(PROBES)


def get_probe(path: str) -> Probe:
    for p in PROBES:
        if p.path == path:
            return p
    raise KeyError(f"probe={path!r}: unknown; known: {', '.join(p.path for p in PROBES)}")


def probe_catalogue() -> pd.DataFrame:
    """One row per (path, backend): what the probe targets, its evidence, or why not applicable."""
    rows = []
    for p in PROBES:
        for kind in BACKEND_KINDS:
            plan = p.plan(kind)
            reason = plan.not_applicable(get_backend(kind))
            rows.append({
                "path": p.path, "title": p.title, "seed": p.seed, "backend": kind,
                "targets": plan.targets if reason is None else "",
                "evidence_needed": (plan.need.describe() if plan.need else "none available") if reason is None else "",
                "not_applicable": reason or "",
            })
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- the runner


def _check_params(threads: Any, size: Any, chunk_mb: Any, timeout: Any) -> None:
    for name, value, minimum in (("threads", threads, 1), ("size", size, 8), ("chunk_mb", chunk_mb, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"{name}={value!r}: must be an integer >= {minimum}")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ValueError(f"timeout={timeout!r}: must be a number of seconds > 0")


def _select(probes: Sequence[str] | None) -> list[Probe]:
    if probes is None:
        return list(PROBES)
    if isinstance(probes, str):
        probes = [probes]
    return [get_probe(p) for p in probes]


def _base_row(probe: Probe, kind: str, device: str | None) -> dict[str, Any]:
    return {"path": probe.path, "title": probe.title, "seed": probe.seed, "what": probe.what, "backend": kind,
            "device": device}


def _evidence_text(need: Need | None, ev: Evidence, by_mode: Mapping[str, Evidence]) -> str:
    shown = need.names() if need else set()
    parts = []
    for name in sorted(ev.calls):
        if name in shown or (name.startswith("cuda") or (name.startswith("cu") and name[2:3].isupper())):
            n, threads = ev.calls[name]
            parts.append(f"{name} x{n} on {len(threads)} thread(s)")
    needed_stats = {k for k, _ in need.stats} if need else set()
    for k, v in sorted(ev.stats.items()):
        if v and (not k.startswith("profiler.") or k in needed_stats):
            parts.append(f"{k} +{v}")
    for mode, e in by_mode.items():
        parts += [f"[{mode}] {f}" for f in e.facts]
    parts += [f"note: {n}" for n in ev.notes]
    return "; ".join(parts)


def run_probe(probe: Probe, backend: Backend, *, threads: int = 4, size: int = 64, chunk_mb: int = 32,
              timeout: float = 120.0, profile: bool = True) -> dict[str, Any]:
    """Run one probe on one backend, alone then from ``threads`` threads; one tidy row."""
    kind = backend.kind
    row = _base_row(probe, kind, str(backend.device))
    plan = probe.plan(kind)
    row.update({"targets": plan.targets, "threads": threads})
    reason = plan.not_applicable(backend)
    if reason is not None:
        row.update(status=NOT_APPLICABLE, evidence="", check="", error="",
                   explanation=f"Not applicable on {kind}: {reason}.", seconds=0.0)
        return row
    t0 = time.perf_counter()
    by_mode: dict[str, Evidence] = {}
    checks: list[str] = []
    error = ""
    for mode, n in (("alone", 1), ("threads", threads)):
        ctx = ProbeContext(backend, n, size, chunk_mb, timeout, mode)
        box: dict[str, Any] = {}

        def body() -> None:
            collector = _Collector(backend, profile=profile, all_threads=n > 1)
            try:
                with collector:
                    box["outcome"] = plan.action(ctx)  # type: ignore[misc]
            except BaseException as exc:  # noqa: BLE001 - the row records it
                box["error"] = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
                box["error_line"] = f"{type(exc).__name__}: {exc}"
            box["evidence"] = collector.evidence

        runner = threading.Thread(target=body, name=f"mpslab-probe-{probe.path}-{mode}", daemon=True)
        runner.start()
        runner.join(timeout + _grace(timeout))
        if runner.is_alive():
            error = f"[{mode}] hang: no answer within {timeout + _grace(timeout):.1f} s"
            break
        ev = box.get("evidence", Evidence())
        if "outcome" in box:
            ev.facts = list(box["outcome"].facts) + ev.facts
            checks.append(f"[{mode}] {box['outcome'].check}")
        by_mode[mode] = ev
        if "error" in box:
            error = f"[{mode}] {box['error']}"
            row["error_line"] = f"[{mode}] {box['error_line']}"
            break
    merged = Evidence()
    for ev in by_mode.values():
        merged = merged.merge(ev)
    row.update(check=" ".join(checks), evidence=_evidence_text(plan.need, merged, by_mode), error=error,
               seconds=time.perf_counter() - t0)
    if error:
        row["status"] = FAILED
        row["explanation"] = f"Failed: {row.get('error_line', error.splitlines()[0])}"
    elif plan.need is None:
        row["status"] = EXERCISED
        row["explanation"] = f"Targets: {plan.targets}. No evidence available: {plan.reason}."
    else:
        missing = plan.need.missing(merged)
        if missing:
            row["status"] = EXERCISED
            row["explanation"] = (f"Targets: {plan.targets}. Evidence named ({plan.need.describe()}) "
                                  f"not complete: {'; '.join(missing)}.")
        else:
            row["status"] = COVERED
            row["explanation"] = (f"Targets: {plan.targets}. Evidence ({plan.need.describe()}) "
                                  "collected in this run." + (f" Note: {plan.reason}." if plan.reason else ""))
    row.pop("error_line", None)
    return row


def _not_run_rows(probes: list[Probe], kind: str, why: str) -> list[dict[str, Any]]:
    rows = []
    backend = get_backend(kind)
    for p in probes:
        row = _base_row(p, kind, None)
        plan = p.plan(kind)
        reason = plan.not_applicable(backend)
        status = NOT_APPLICABLE if reason is not None else NOT_RUN
        row.update(targets=plan.targets, threads=0, status=status, evidence="", check="", error="", seconds=0.0,
                   explanation=(f"Not applicable on {kind}: {reason}." if reason is not None
                                else f"Not run: {why}. Targets: {plan.targets}."))
        rows.append(row)
    return rows


def _frame(rows: list[dict[str, Any]], env: Mapping[str, Any] | None = None) -> pd.DataFrame:
    cols = ["path", "title", "seed", "backend", "device", "status", "evidence", "check", "explanation",
            "what", "targets", "threads", "seconds", "error"]
    df = pd.DataFrame(rows)
    for c in cols:
        if c not in df.columns:
            df[c] = ""
    df = df[cols]
    df["env_torch"] = torch.__version__
    if env:
        for k, v in env.items():
            df[f"env_{k}"] = v
    return df


def run_probes(device: str = "cpu", *, threads: int = 4, size: int = 64, chunk_mb: int = 32,
               timeout: float = 120.0, probes: Sequence[str] | None = None, backend: Backend | None = None,
               profile: bool = True) -> pd.DataFrame:
    """Every probe (or those named) on one backend; a tidy frame, one row per path.

    ``backend`` injects an adapter (tests use an MPS adapter over a fake ``torch.mps``);
    otherwise ``device`` names it (``auto`` resolves to mps, else cuda, else cpu).
    A backend that is not available gives ``not run`` / ``not applicable`` rows.
    """
    _check_params(threads, size, chunk_mb, timeout)
    selected = _select(probes)
    if backend is None:
        if not isinstance(device, str):
            raise ValueError(f"device={device!r}: must be a string such as cpu, cuda, cuda:N, mps or auto")
        try:
            backend = get_backend(resolve_device(device.strip().lower()))
        except (RuntimeError, ValueError) as exc:
            raise ValueError(f"device={device!r}: {exc}") from None
    if not backend.is_available():
        return _frame(_not_run_rows(selected, backend.kind,
                                    f"the {backend.kind} backend is not available on this machine"))
    if profile:
        _warm_profiler(backend)
    rows = [run_probe(p, backend, threads=threads, size=size, chunk_mb=chunk_mb, timeout=timeout, profile=profile)
            for p in selected]
    try:
        name = backend.device_name()
    except Exception:
        name = None
    return _frame(rows, {"device_name": name})


def coverage_matrix(devices: Sequence[str] = ("cpu",), *, threads: int = 4, size: int = 64, chunk_mb: int = 32,
                    timeout: float = 120.0, probes: Sequence[str] | None = None,
                    backends: Mapping[str, Backend] | None = None, profile: bool = True) -> pd.DataFrame:
    """The coverage matrix as a tidy frame: every path x every backend kind (cpu, cuda, mps).

    Kinds named in ``devices`` (or injected through ``backends``) are run; the others get
    ``not run`` rows (or ``not applicable`` where the concept does not exist there).
    """
    _check_params(threads, size, chunk_mb, timeout)
    if isinstance(devices, str):
        devices = [devices]
    selected = _select(probes)
    wanted: dict[str, Backend] = {}
    for d in devices:
        try:
            b = get_backend(resolve_device(str(d).strip().lower()))
        except (RuntimeError, ValueError) as exc:
            raise ValueError(f"devices: {d!r}: {exc}") from None
        wanted.setdefault(b.kind, b)
    wanted.update(dict(backends or {}))
    frames = []
    for kind in BACKEND_KINDS:
        b = wanted.get(kind)
        if b is None:
            why = ("not requested in this run" if get_backend(kind).is_available()
                   else f"the {kind} backend is not available on this machine")
            frames.append(_frame(_not_run_rows(selected, kind, why)))
        else:
            frames.append(run_probes(threads=threads, size=size, chunk_mb=chunk_mb, timeout=timeout,
                                     probes=[p.path for p in selected], backend=b, profile=profile))
    return pd.concat(frames, ignore_index=True)


def coverage_table(df: pd.DataFrame) -> pd.DataFrame:
    """path x backend status table (the matrix as text), rows in catalogue order."""
    order = [p.path for p in PROBES if p.path in set(df["path"])]
    cols = [k for k in BACKEND_KINDS if k in set(df["backend"])]
    table = df.drop_duplicates(["path", "backend"], keep="last").pivot(index="path", columns="backend", values="status")
    return table.reindex(index=order, columns=cols)
