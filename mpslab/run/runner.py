"""The in-process stress runner.

``run_stress(config)`` starts ``config.threads`` workers together at a barrier;
each runs ``config.iterations`` steps of the workload, synchronising every
``sync_every`` steps. Every exception in any worker is captured (thread,
iteration, type, message, traceback) while the others carry on. Afterwards the
serial-replay oracle (``mpslab.run.oracle``) replays each thread's work with the
same generator seeds and compares every step's output (by its fingerprint, or in
full): a silently wrong answer is a ``mismatch``.

The per-iteration loop is the hot path: it stores one clock reading in a
per-thread ring of end-of-iteration time stamps (latencies are their
differences, computed afterwards) and hands the step's output to the thread's
``OutputLog`` (one device copy into its staging ring, fingerprinted in
batches on the device: no host-device sync). The clock
starts when the first worker starts its loop (or when this thread leaves the
start barrier, if earlier) and stops when every thread has reached the finish
barrier and the device is synchronised; the fingerprints still pending are gathered after that, like the
oracle's replay, outside the timed region.

torch keeps some settings per process, not per thread (``mpslab.run.globalstate``): the runner reads
them just before the workers start and again after they have ended; each one a worker changed is a
finding of its own (``StressResult.global_state_changes``) and is set back before the replay, which
runs in this thread and would otherwise compute under it. They are set back once more after the
replay, so the process leaves ``run_stress`` with the settings it brought.

This module is not the oracle: what a fingerprint is and what counts as a
mismatch live in ``mpslab.run.fingerprint`` and ``mpslab.run.oracle``; what a
run returns (``StressResult``) lives in ``mpslab.run.result``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from mpslab.run.backends import Backend, get_backend
from mpslab.run.config import ConfigError, StressConfig
from mpslab.run.environment import environment
from mpslab.run.globalstate import changes, restore, snapshot
from mpslab.run.oracle import (
    TOLERANCE,
    Fingerprinter,
    FingerprintLog,
    FullLog,
    Mismatch,
    check_thread,
    full_refusal,
    output_nbytes,
    replay,
    thread_seed,
)
from mpslab.run.progress import progress_bar
from mpslab.run.result import StressResult, ThreadError
from mpslab.run.workloads import WorkerContext, Workload, get_workload

__all__ = [
    "run_stress",
    "StressResult",
    "ThreadError",
    "Mismatch",
    "thread_seed",
    "replay",
    "latency_summary",
    "TOLERANCE",
]

LATENCY_CAPACITY = 1 << 16  # latency samples kept per thread (a ring: the last ones)
MAX_REPORTED = 50  # errors kept in full; all are counted


# --------------------------------------------------------------------------- helpers


def _generator(device: torch.device, seed: int) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


# --------------------------------------------------------------------------- the runner


class _Worker:
    """One worker thread's state and loop."""

    def __init__(self, t: int, run: _Run) -> None:
        self.t = t
        self.run = run
        self.done = 0
        self.t0 = 0
        self.latency = [0] * min(run.config.iterations, LATENCY_CAPACITY)  # end-of-iteration clock (ns), a ring
        self.log: FingerprintLog | FullLog | None = None
        self.errors: list[ThreadError] = []

    def latencies(self) -> np.ndarray:
        """Per-iteration times (ns) of the iterations kept in the ring, oldest first."""
        n, cap = self.done, len(self.latency)
        if n == 0:
            return np.zeros(0, dtype=np.int64)
        if n <= cap:
            return np.diff(np.array([self.t0] + self.latency[:n], dtype=np.int64))
        k = n % cap
        return np.diff(np.array(self.latency[k:] + self.latency[:k], dtype=np.int64))

    def __call__(self) -> None:
        run, cfg, t = self.run, self.run.config, self.t
        backend, device = run.backend, run.backend.device
        stream = None
        arrived = finished = False
        try:
            stream = backend.new_stream() if cfg.streams == "per-thread" else None
            with backend.use_stream(stream):
                ctx = WorkerContext(t, device, cfg.torch_dtype, cfg.size, None, run.state, cfg.params)
                if cfg.warmup:
                    ctx.generator = _generator(device, thread_seed(cfg.seed, t) ^ 0x5EED)
                    for i in range(cfg.warmup):
                        if run.semaphore is None:
                            run.workload.step(ctx, i)
                        else:
                            with run.semaphore:
                                run.workload.step(ctx, i)
                    backend.synchronize_stream(stream)
                ctx.generator = _generator(device, thread_seed(cfg.seed, t))
                if cfg.verify != "off" and run.workload.final_sync:
                    self.log = run.new_log(stream)
                arrived = True
                run.barrier.wait()
                self._loop(ctx, stream)
                finished = True
                run.finish.wait()  # the clock stops when every thread is here
                self._flush(stream)  # fingerprints gathered outside the timed region
        except Exception as exc:  # warm-up, set-up or stream failures
            self.errors.append(ThreadError.capture(t, -1, "warmup", exc))
        finally:
            if not arrived:
                run.barrier.wait()
            if not finished:
                run.finish.wait()

    def _flush(self, stream: Any) -> None:
        if self.log is None:
            return
        try:
            self.log.flush()
            self.run.backend.synchronize_stream(stream)
        except Exception as exc:
            self.errors.append(ThreadError.capture(self.t, self.done, "flush", exc))
            self.log = None

    def _loop(self, ctx: WorkerContext, stream: Any) -> None:
        cfg, run = self.run.config, self.run
        step = run.workload.step
        sync = run.backend.synchronize_stream
        sem = run.semaphore
        sync_every = cfg.sync_every
        stamps = self.latency  # a list: storing a Python int there is ~1 us cheaper than into numpy
        cap = len(stamps)
        log = self.log
        add = log.add if log is not None else None
        clock = time.perf_counter_ns
        i = 0
        try:
            self.t0 = clock()
            for i in range(cfg.iterations):
                if sem is None:
                    out = step(ctx, i)
                else:
                    with sem:
                        out = step(ctx, i)
                if add is not None:
                    add(out)
                if sync_every and (i + 1) % sync_every == 0:
                    sync(stream)
                stamps[i % cap] = clock()
            self.done = cfg.iterations
            if run.workload.final_sync:  # final_sync=False: the work stays queued (exit-after-work)
                sync(stream)
        except Exception as exc:
            self.done = i
            self.errors.append(ThreadError.capture(self.t, i, "run", exc))
            if log is not None:  # keep the outputs of the iterations that finished
                log.truncate(self.done)


@dataclass
class _Run:
    config: StressConfig
    backend: Backend
    workload: Workload
    state: Any
    barrier: threading.Barrier
    finish: threading.Barrier
    semaphore: threading.BoundedSemaphore | None
    fp: Fingerprinter  # shared by the threads on the shared stream; a per-thread stream gets its own

    def new_log(self, stream: Any) -> FingerprintLog | FullLog:
        if self.config.verify == "full":
            return FullLog()
        fp = self.fp if stream is None else Fingerprinter(self.backend.device)
        stage = int(self.config.full_cap_mb * 2**20) // self.config.threads  # the oracle's memory, shared out
        return FingerprintLog(self.config.iterations, fp, stage)


REPLAY_PROGRESS_DELAY_S = 3.0  # a replay's progress bar appears once it has run this long


def run_stress(config: StressConfig, *, progress: bool = False) -> StressResult:
    """Run one in-process stress run of ``config`` and check it with the oracle.

    ``progress=True`` shows a progress bar (stderr, or a notebook widget) over the oracle's replay once
    it has run for ``REPLAY_PROGRESS_DELAY_S``; the run itself draws nothing (it is being timed).
    """
    if not isinstance(config, StressConfig):
        raise TypeError(f"run_stress needs a StressConfig, got {type(config).__name__}")
    t_call = time.perf_counter()
    backend = get_backend(config.device)
    workload = get_workload(config.workload)
    env = environment(config.device)
    device = backend.device

    state = None
    if workload.setup_fn is not None:
        try:
            state = workload.setup_fn(
                WorkerContext(-1, device, config.torch_dtype, config.size, None, params=config.params)
            )
            backend.synchronize()
        except Exception as exc:
            err = ThreadError.capture(-1, -1, "setup", exc)
            return StressResult(
                config, 0.0, 0, latency_summary([]), [err], 1, environment=env, total_seconds=_since(t_call)
            )
    if config.verify == "full":
        _refuse_full_above_cap(config, workload, state, device)

    run = _Run(
        config,
        backend,
        workload,
        state,
        threading.Barrier(config.threads + 1),
        threading.Barrier(config.threads + 1),
        threading.BoundedSemaphore(config.throttle) if config.throttle else None,
        Fingerprinter(device),
    )
    workers = [_Worker(t, run) for t in range(config.threads)]
    threads = [threading.Thread(target=w, name=f"mpslab-worker-{w.t}", daemon=True) for w in workers]
    settings = snapshot()  # after set-up (this thread's own choices stand for the replay too)
    for th in threads:
        th.start()
    run.barrier.wait()
    t_start = time.perf_counter()
    run.finish.wait()
    sync_error = None
    try:
        if workload.final_sync:
            backend.synchronize()
    except Exception as exc:
        sync_error = ThreadError.capture(-1, -1, "run", exc)
    t_end = time.perf_counter()
    for th in threads:
        th.join()
    # The clock started when the first worker did: released from the barrier, the workers may run for a
    # while before this thread is scheduled again (the GIL, a busy machine), and a start read here alone
    # would leave that work out (on a loaded machine a short run would read many times faster than it ran).
    starts = [w.t0 / 1e9 for w in workers if w.t0]  # perf_counter_ns and perf_counter share one clock
    seconds = t_end - min([t_start, *starts])
    errors = [e for w in workers for e in w.errors] + ([sync_error] if sync_error else [])

    after = snapshot()
    changed = changes(settings, after, unrestored=restore(settings))
    t_replay = time.perf_counter()
    mismatches: list[Mismatch] = []
    mismatch_count = verified = 0
    logs = [w for w in workers if w.log is not None and w.log.count > 0]
    bar = progress_bar(
        sum(w.log.count for w in logs),  # type: ignore[union-attr]
        desc="oracle replay",
        unit="step",
        enabled=progress,
        delay=REPLAY_PROGRESS_DELAY_S,
    )
    try:
        for w in logs:
            try:
                n, bad = check_thread(workload, state, config, w.t, w.log, mismatches, bar.update)
            except Exception as exc:
                errors.append(ThreadError.capture(w.t, -1, "replay", exc))
                continue
            verified += n
            mismatch_count += bad
            w.log = None  # free the kept outputs
    finally:
        bar.close()
        restore(settings)  # a step the replay ran may have changed them again, in this thread
    replay_seconds = _since(t_replay)

    samples = [w.latencies() for w in workers]
    return StressResult(
        config=config,
        seconds=seconds,
        completed=sum(w.done for w in workers),
        latency_ms=latency_summary(samples),
        errors=errors[:MAX_REPORTED],
        error_count=len(errors),
        mismatches=mismatches,
        mismatch_count=mismatch_count,
        verified=verified,
        environment=env,
        replay_seconds=replay_seconds,
        total_seconds=_since(t_call),
        global_state_changes=changed,
        global_state_checked=len(settings),
    )


def _since(t: float) -> float:
    return time.perf_counter() - t


def _refuse_full_above_cap(config: StressConfig, workload: Workload, state: Any, device: torch.device) -> None:
    """``verify="full"``: one ConfigError line, before any timed work, when the kept outputs exceed the cap."""
    nbytes = output_nbytes(workload, config)
    if nbytes is None:  # the meta device could not run the step: one untimed step here tells its size
        try:
            ctx = WorkerContext(
                0,
                device,
                config.torch_dtype,
                config.size,
                torch.Generator(device=device).manual_seed(thread_seed(config.seed, 0) ^ 0x5EED),
                state,
                config.params,
            )
            out = workload.step(ctx, 0)
            nbytes = out.numel() * out.element_size() if isinstance(out, torch.Tensor) else 0
        except Exception:
            return  # the workers will meet (and report) the same failure
    refusal = full_refusal(config, nbytes)
    if refusal:
        raise ConfigError(refusal)


def latency_summary(samples: list[np.ndarray]) -> dict[str, float]:
    """p50, p90, p99 and max in milliseconds of per-iteration samples in nanoseconds (NaN when empty)."""
    flat = np.concatenate(samples) if samples else np.zeros(0, dtype=np.int64)
    if flat.size == 0:
        return {"p50": float("nan"), "p90": float("nan"), "p99": float("nan"), "max": float("nan")}
    p50, p90, p99 = np.percentile(flat, [50, 90, 99]) / 1e6
    return {"p50": float(p50), "p90": float(p90), "p99": float(p99), "max": float(flat.max()) / 1e6}
