"""Fault workloads: built-in workloads that fail on purpose, to test the instrument.

Every fault does a little real tensor work (an 8 x 8 ``randn`` matmul drawn from
the thread's generator, so the serial-replay oracle can check it) and then, in
thread 0, fails in one of these ways:

===========  ===================================================  ==================
kind         what thread 0 does when the fault fires               isolated outcome
===========  ===================================================  ==================
segfault     reads address 0 through ctypes (SIGSEGV)              ``crash``
abort        ``os.abort()`` (SIGABRT, as a failed Metal assertion)  ``crash``
exit         ``os._exit(3)``: the process ends, no result          ``crash``
exception    raises ``RuntimeError`` (the other threads go on)     ``error``
hang         takes a lock and waits for it again, forever          ``hang``
wrong        adds 1000 to one output element from then on (silent) ``mismatch``
oom          allocates 2**60 bytes on the device                   ``error``
===========  ===================================================  ==================

Two registered workloads per kind; ``size`` is the trigger, since a fault's
tensor work does not need it:

``fault-<kind>``
    fires in every run, at thread 0's ``size``-th iteration (``size=1``: the
    first). A run with fewer iterations than ``size`` never fires.
``fault-<kind>-random``
    fires at thread 0's first iteration in a random one of every ``size`` runs
    (probability ``1/size``; ``size=1``: every run). The draw comes from the
    operating system's entropy, once per run, independent of ``seed``: like an
    intermittent bug, it is not reproducible by seed.

A fault fires only in worker threads: the oracle's serial replay (which runs in
the thread that called ``run_stress``) recomputes the true answers, which is how
``wrong`` shows up as a mismatch. ``wrong`` needs the oracle (``verify`` not ``"off"``) to be seen.
Warm-up iterations are worker iterations too (numbered from 0), so with
``size <= warmup`` the fault fires during warm-up. ``exception``, ``wrong`` and
``oom`` give the same outcome in process (``run_stress``).

The crash, abort, exit and hang faults take down or stall the process that runs
them: run them only in isolated trials (``mpslab.trials.isolate.run_trials``), never
with the in-process ``run_stress`` of a session you want to keep.
"""

from __future__ import annotations

import ctypes
import os
import random
import threading
from collections.abc import Callable

import torch

from mpslab.run.workloads import WorkerContext, register_workload

__all__ = ["FAULT_KINDS", "fault_names"]

_WORK_SIDE = 8  # side of the small matmul every fault does before it fires
_WRONG_OFFSET = 1000.0  # what the ``wrong`` fault adds to element [0, 0] of thread 0's outputs
_OOM_BYTES = 2**60  # beyond any device and any address space: refused at once


# A run's trigger is a plain dict made by the set-up step in the calling thread, and every step below is a
# module-level function that names only torch, the standard library, these constants and the helpers above
# it: ``mpslab shrink`` writes a fault's step out as standalone source, which a closure or an mpslab class
# would prevent.
#   at      iteration index at which (and, for ``wrong``, after which) thread 0 fires
#   armed   whether this run fires at all
#   caller  the thread that made the state: the replay runs there, and a fault never fires in it
#   lock    what the ``hang`` fault waits for


def _setup_at(ctx):
    return {"at": ctx.size - 1, "armed": True, "caller": threading.get_ident(), "lock": threading.Lock()}


def _setup_random(ctx):
    armed = random.SystemRandom().random() < 1.0 / ctx.size
    return {"at": 0, "armed": armed, "caller": threading.get_ident(), "lock": threading.Lock()}


def _work(ctx):
    a = torch.randn(_WORK_SIDE, _WORK_SIDE, generator=ctx.generator, device=ctx.device, dtype=ctx.dtype)
    return torch.matmul(a, a)


def _armed_here(ctx):
    """Thread 0 of an armed run, and not the thread that replays (the one that made the state)."""
    st = ctx.state
    return ctx.thread == 0 and st["armed"] and threading.get_ident() != st["caller"]


def _work_then(ctx, i, fault):
    """One step of a fault workload: the tensor work, then ``fault`` when it fires (thread 0, iteration ``at``)."""
    out = _work(ctx)
    if _armed_here(ctx) and i == ctx.state["at"]:
        fault(ctx, i)
    return out


def _segfault(ctx, i):
    ctypes.string_at(0)  # read from address 0: SIGSEGV


def _abort(ctx, i):
    os.abort()


def _exit(ctx, i):
    os._exit(3)


def _exception(ctx, i):
    raise RuntimeError(f"mpslab fault: injected exception in thread {ctx.thread} at iteration {i}")


def _hang(ctx, i):
    lock = ctx.state["lock"]
    lock.acquire()
    lock.acquire()  # never released: this thread waits forever


def _oom(ctx, i):
    torch.empty(_OOM_BYTES, dtype=torch.uint8, device=ctx.device)


def _step_segfault(ctx, i):
    return _work_then(ctx, i, _segfault)


def _step_abort(ctx, i):
    return _work_then(ctx, i, _abort)


def _step_exit(ctx, i):
    return _work_then(ctx, i, _exit)


def _step_exception(ctx, i):
    return _work_then(ctx, i, _exception)


def _step_hang(ctx, i):
    return _work_then(ctx, i, _hang)


def _step_wrong(ctx, i):
    out = _work(ctx)
    if _armed_here(ctx) and i >= ctx.state["at"]:  # every iteration from the trigger on
        out[0, 0] += _WRONG_OFFSET
    return out


def _step_oom(ctx, i):
    return _work_then(ctx, i, _oom)


# kind -> (its step, what it does -> its isolated outcome)
_ACTIONS: dict[str, tuple[Callable[[WorkerContext, int], torch.Tensor], str]] = {
    "segfault": (_step_segfault, "SIGSEGV (ctypes reads address 0) -> crash"),
    "abort": (_step_abort, "SIGABRT through os.abort(), like a failed Metal assertion -> crash"),
    "exit": (_step_exit, "os._exit(3), no result -> crash"),
    "exception": (_step_exception, "RuntimeError in thread 0, the others go on -> error"),
    "hang": (_step_hang, "thread 0 waits forever for a lock it holds -> hang"),
    "wrong": (_step_wrong, "thread 0's outputs silently +1000 in one element from then on (needs verify) -> mismatch"),
    "oom": (_step_oom, "allocates 2**60 bytes on the device: out of memory -> error"),
}

FAULT_KINDS: tuple[str, ...] = tuple(_ACTIONS)


def fault_names() -> list[str]:
    """Every registered fault workload name, ``fault-<kind>`` and ``fault-<kind>-random``."""
    return [f"fault-{k}{suffix}" for k in FAULT_KINDS for suffix in ("", "-random")]


def _scale(size: int) -> float:
    return float(_WORK_SIDE) ** 1.5


def _register() -> None:
    for kind, (step, description) in _ACTIONS.items():
        register_workload(
            f"fault-{kind}",
            step,
            setup=_setup_at,
            kind="fault",
            description=f"fault at thread 0's iteration number `size` (1 = at once): {description}",
            scale=_scale,
        )
        register_workload(
            f"fault-{kind}-random",
            step,
            setup=_setup_random,
            kind="fault",
            description=f"fault in a random 1 of every `size` runs, at once: {description}",
            scale=_scale,
        )


_register()
