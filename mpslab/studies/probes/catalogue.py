"""The coverage catalogue (data): every backend path, and per backend how its probe drives it.

What it is: ``PROBES``, one ``Probe`` per path the verification round listed (11 paths), each with a
``Plan`` per backend kind (cpu, cuda, mps): the action from ``paths`` or ``memory_paths``, what it targets there,
the evidence that makes it ``covered`` (``Need``) or why none is available, or why the concept
does not exist there. ``list_probes``, ``get_probe`` and ``probe_catalogue`` read it.

What it is not: code that runs anything (``runner``) or the probe actions (``paths``).
To add a probe: write its action in ``paths`` or ``memory_paths`` and declare it here, once per backend.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from mpslab.run.backends import Backend, get_backend
from mpslab.studies.lookup import entry_named
from mpslab.studies.probes import memory_paths, paths
from mpslab.studies.probes.probe import Plan, Probe, ProbeContext, ProbeOutcome
from mpslab.studies.probes.status import BACKEND_KINDS, Need

__all__ = ["PROBES", "get_probe", "list_probes", "probe_catalogue"]

_CPU_NO_QUEUE = (
    "a CPU op has finished when it returns: there is no device queue, so nothing to signal, "
    "wait for or synchronise (torch.cpu.synchronize is a no-op; mpslab's HostEvent only reads the host clock)"
)
_NO_MPS_STREAM = (
    "this torch exposes no torch.mps.Stream: every op of every thread goes to the one default "
    "MPS stream (getCurrentMPSStream returns it) and setCurrentStream is not reachable from Python"
)
_MPS_SILENT = "torch.mps reports nothing about this path; the probe checks its results only"
_LAUNCH = ("cudaLaunchKernel", "cudaLaunchKernelExC", "cuLaunchKernel", "cuLaunchKernelEx")
_EVENT_RECORD = ("cudaEventRecordWithFlags", "cudaEventRecord")


def _mps_streams(backend: Backend) -> str | None:
    return None if backend.has_streams else _NO_MPS_STREAM


def _silent_on_mps(action: Callable[[ProbeContext], ProbeOutcome], targets: str) -> Plan:
    """An MPS plan with no evidence to find: torch.mps reports nothing on the path, so only results are checked."""
    return Plan(action, targets, None, reason=_MPS_SILENT)


PROBES: tuple[Probe, ...] = (
    Probe(
        "compute_from_threads",
        "compute from threads (randn -> matmul -> sum)",
        "(the verification round's Attempt 3 operations)",
        "Every thread dispatches matmuls at once; each result is checked against a float64 CPU reference. "
        "The baseline under every other path.",
        {
            "cpu": Plan(paths.compute, "aten::mm on the CPU (BLAS), one call per thread", Need(calls=(("aten::mm",),))),
            "cuda": Plan(
                paths.compute,
                "aten::mm -> cuBLAS kernels launched on each thread's current stream",
                Need(calls=(("aten::mm",), _LAUNCH)),
            ),
            "mps": Plan(
                paths.compute,
                "aten::mm -> MPS kernels encoded on the default MPSStream",
                Need(calls=(("aten::mm",),)),
                reason="the evidence is the op dispatch torch.profiler records, not the Metal encoding",
            ),
        },
    ),
    Probe(
        "event_record_wait",
        "event record / wait / elapsed time",
        "encodeSignalEvent / encodeWaitForEvent",
        "A producer records an event after its work; a consumer waits on it before reading the result; "
        "the event is synchronised and timed.",
        {
            "cpu": Plan.absent(_CPU_NO_QUEUE),
            "cuda": Plan(
                paths.event_record_wait,
                "Event.record -> cudaEventRecord(WithFlags) on the producer stream; Event.wait -> "
                "cudaStreamWaitEvent on the consumer stream; synchronize -> cudaEventSynchronize",
                Need(calls=(_EVENT_RECORD, ("cudaStreamWaitEvent",), ("cudaEventSynchronize",)), facts=True),
            ),
            "mps": Plan(
                paths.event_record_wait,
                "torch.mps.event.Event.record -> MPSEvent record: endKernelCoalescing + encodeSignalEvent; "
                "wait -> encodeWaitForEvent (when not yet signalled); synchronize / elapsed_time -> "
                "a shared-event listener notified on completion",
                Need(facts=True),
            ),
        },
    ),
    Probe(
        "synchronize",
        "synchronize (commit / commitAndWait)",
        "synchronize / commit / commitAndWait",
        "Work is queued, an event marks its end, then the stream and the device are synchronised: the event "
        "must be complete right after, and the result right.",
        {
            "cpu": Plan.absent(_CPU_NO_QUEUE),
            "cuda": Plan(
                paths.synchronize,
                "Stream.synchronize -> cudaStreamSynchronize; torch.cuda.synchronize -> cudaDeviceSynchronize",
                Need(calls=(("cudaStreamSynchronize",), ("cudaDeviceSynchronize",))),
            ),
            "mps": Plan(
                paths.synchronize,
                "torch.mps.synchronize -> MPSStream::synchronize(SyncType::COMMIT_AND_WAIT): "
                "end kernel coalescing, commit the command buffer, wait until completed",
                Need(facts=True),
            ),
        },
    ),
    Probe(
        "completion_handlers",
        "scheduled / completed handlers",
        "addScheduledHandler / addCompletedHandler",
        "Host code that runs when the device has scheduled or completed a command buffer.",
        {
            "cpu": Plan.absent(_CPU_NO_QUEUE),
            "cuda": Plan.absent(
                "torch exposes no host callbacks on CUDA streams (cudaLaunchHostFunc is "
                "not reachable from Python); completion is learnt by polling events, "
                "see the event and release-on-completion rows",
            ),
            "mps": _silent_on_mps(
                paths.completion_handlers,
                "ops with Python-scalar operands allocate scalar buffers whose free is deferred with "
                "MPSStream::addCompletedHandler (MPSHeapAllocatorImpl::free, scalar pool); no public "
                "torch.mps call is known to reach addScheduledHandler",
            ),
        },
    ),
    Probe(
        "current_stream_per_thread",
        "current stream per thread",
        "getCurrentStream / setCurrentStream",
        "Each thread makes its own stream current; while all are inside their stream contexts at once, each "
        "must still see its own, and its default again afterwards.",
        {
            "cpu": Plan.absent("the CPU backend has no streams (torch.cpu.Stream is a placeholder)"),
            "cuda": Plan(
                paths.current_stream,
                "torch.cuda.stream(s) sets the thread-local current stream; torch.cuda.current_stream reads it",
                Need(facts=True),
            ),
            "mps": Plan(
                paths.current_stream,
                "torch.mps stream context (where the installed torch has one)",
                Need(facts=True),
                applicable=_mps_streams,
            ),
        },
    ),
    Probe(
        "flush_coalescing",
        "flush / end kernel coalescing",
        "flush / endKernelCoalescing",
        "Compute kernels, then a copy, then compute again, then synchronize: the open encoder must be ended "
        "and the command buffer committed in order.",
        {
            "cpu": Plan.absent(_CPU_NO_QUEUE),
            "cuda": Plan.absent(
                "CUDA has no command-buffer encoders: each kernel is submitted to its "
                "stream at launch, nothing is coalesced, ended or flushed",
            ),
            "mps": _silent_on_mps(
                paths.flush_coalescing,
                "compute kernels share one compute encoder; a blit copy (copy_) and "
                "torch.mps.synchronize end it (endKernelCoalescing) and commit",
            ),
        },
    ),
    Probe(
        "alloc_free",
        "buffer alloc / free",
        "alloc_buffer_block / free_buffer",
        "Every thread allocates buffers of small and large sizes, writes and reads them, frees them, and does "
        "it again on the same stream; the allocator's counters are read between the steps.",
        {
            "cpu": Plan(
                memory_paths.alloc_free,
                "the c10 CPU allocator (no cache): memory comes from and returns to the system allocator",
                Need(stats=(("profiler.memory_alloc_events", 8), ("profiler.memory_free_events", 8))),
                reason="torch.profiler reports memory events of its own thread only: the alone run",
            ),
            "cuda": Plan(
                memory_paths.alloc_free,
                "CUDA caching allocator: malloc takes a block from the stream's pool "
                "(cudaMalloc only for a new segment); free returns it to that stream's pool",
                Need(stats=(("allocation.all.allocated", 8), ("allocation.all.freed", 8)), facts=True),
            ),
            "mps": Plan(
                memory_paths.alloc_free,
                "MPSHeapAllocatorImpl::malloc -> alloc_buffer_block (a cached buffer, else a "
                "new one in a heap); a tensor's free -> free_buffer (back to its pool)",
                Need(facts=True),
            ),
        },
    ),
    Probe(
        "empty_cache",
        "release cached buffers (empty_cache)",
        "release_cached_buffers",
        "Buffers are freed into the cache, then every thread calls empty_cache() at once; reserved memory must "
        "fall and allocation must work afterwards.",
        {
            "cpu": Plan.absent("the CPU allocator keeps no cache that torch exposes; nothing to release"),
            "cuda": Plan(
                memory_paths.empty_cache,
                "torch.cuda.empty_cache -> release of every unused cached segment (cudaFree)",
                Need(stats=(("segment.all.freed", 1),), facts=True),
            ),
            "mps": Plan(
                memory_paths.empty_cache,
                "torch.mps.empty_cache -> MPSHeapAllocatorImpl::emptyCache -> "
                "release_cached_buffers (waits for the stream, then frees every pool's "
                "unused buffers and empty heaps)",
                Need(facts=True),
            ),
        },
    ),
    Probe(
        "memory_pressure",
        "garbage collection / retry under memory pressure",
        "garbage_collect (memory pressure)",
        "The cache is filled up to a per-process memory fraction; then every thread asks for a block no cached "
        "one fits: the allocator must release cached blocks and retry instead of failing.",
        {
            "cpu": Plan.absent("the CPU backend has neither a memory fraction nor a cache"),
            "cuda": Plan(
                memory_paths.memory_pressure,
                "set_per_process_memory_fraction; a request over the limit makes the "
                "caching allocator free its cached blocks and retry (num_alloc_retries)",
                Need(stats=(("num_alloc_retries", 1),), facts=True),
            ),
            "mps": Plan(
                memory_paths.memory_pressure,
                "set_per_process_memory_fraction (high watermark); alloc_buffer_block fails "
                "the limit check, release_available_cached_buffers / release_cached_buffers "
                "free cached buffers and it retries (above the low watermark "
                "garbage_collect_cached_buffers runs first)",
                Need(facts=True),
            ),
        },
    ),
    Probe(
        "release_on_completion",
        "release on completion",
        "release_buffer (completion handlers)",
        "An input is freed while queued work still reads it, and a NaN-filled allocation follows at once: the "
        "memory must not be handed out before that work has completed.",
        {
            "cpu": Plan(
                None, "", reason="a CPU buffer is freed after the op that used it has finished; nothing is in flight"
            ),
            "cuda": Plan(
                memory_paths.release_on_completion,
                "a tensor used on a side stream (record_stream) and freed: the "
                "allocator records an event on that stream and reuses the block "
                "only once the event has completed (polled with cudaEventQuery)",
                Need(calls=(_EVENT_RECORD, ("cudaEventQuery",))),
            ),
            "mps": _silent_on_mps(
                memory_paths.release_on_completion,
                "a buffer freed while a queued command buffer reads it: free_buffer "
                "returns it to its pool at once and Metal's hazard tracking of heap "
                "buffers must order the next writer after the queued reader; a busy "
                "buffer's release defers its heap update to a completion handler "
                "(release_buffer)",
            ),
        },
    ),
    Probe(
        "shutdown",
        "shutdown with work in flight (child process)",
        "shutdown (static destruction)",
        "A child process queues work from T threads without synchronising and exits: static destructors run "
        "while the device still works. The child must exit 0 with no crash text.",
        {
            "cpu": Plan.absent(
                "nothing can be in flight at exit on the CPU backend: every op has "
                "finished when it returns (exiting while threads are inside ops is "
                "edge case exit_while_threads_in_ops)",
            ),
            "cuda": Plan(
                paths.shutdown,
                "interpreter exit with kernels queued: the caching allocator and stream "
                "pools are destroyed while the device works",
                Need(facts=True),
            ),
            "mps": Plan(
                paths.shutdown,
                "interpreter exit with command buffers in flight: MPSAllocator and MPSStream "
                "static destruction (the allocator's destructor empties the cache)",
                Need(facts=True),
            ),
        },
    ),
)


def list_probes() -> list[Probe]:
    return list(PROBES)


def get_probe(path: str) -> Probe:
    """The probe of ``path``; ``KeyError`` with one line listing the known paths."""
    return entry_named(PROBES, path, "probe", key="path")


def probe_catalogue() -> pd.DataFrame:
    """One row per (path, backend): what the probe targets, its evidence, or why not applicable."""
    rows = []
    for p in PROBES:
        for kind in BACKEND_KINDS:
            plan = p.plan(kind)
            reason = plan.not_applicable(get_backend(kind))
            rows.append(
                {
                    "path": p.path,
                    "title": p.title,
                    "seed": p.seed,
                    "backend": kind,
                    "targets": plan.targets if reason is None else "",
                    "evidence_needed": (plan.need.describe() if plan.need else "none available")
                    if reason is None
                    else "",
                    "not_applicable": reason or "",
                }
            )
    return pd.DataFrame(rows)
