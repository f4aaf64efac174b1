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
from dataclasses import dataclass, field

import torch

from mpslab.run.workloads import WorkerContext, register_workload

__all__ = ["FAULT_KINDS", "fault_names"]

_WORK_SIDE = 8  # side of the small matmul every fault does before it fires
_WRONG_OFFSET = 1000.0  # what the ``wrong`` fault adds to element [0, 0] of thread 0's outputs
_OOM_BYTES = 2**60  # beyond any device and any address space: refused at once


@dataclass
class _FaultState:
    """One run's trigger, made once by the set-up step in the calling thread."""

    at: int  # iteration index at which (and, for ``wrong``, after which) thread 0 fires
    armed: bool  # whether this run fires at all
    caller: int = field(default_factory=threading.get_ident)  # the replay runs here: never fire
    lock: threading.Lock = field(default_factory=threading.Lock)


def _segfault(ctx: WorkerContext, i: int) -> None:
    ctypes.string_at(0)  # read from address 0: SIGSEGV


def _abort(ctx: WorkerContext, i: int) -> None:
    os.abort()


def _exit(ctx: WorkerContext, i: int) -> None:
    os._exit(3)


def _exception(ctx: WorkerContext, i: int) -> None:
    raise RuntimeError(f"mpslab fault: injected exception in thread {ctx.thread} at iteration {i}")


def _hang(ctx: WorkerContext, i: int) -> None:
    lock = ctx.state.lock
    lock.acquire()
    lock.acquire()  # never released: this thread waits forever


def _oom(ctx: WorkerContext, i: int) -> None:
    torch.empty(_OOM_BYTES, dtype=torch.uint8, device=ctx.device)


# kind -> (action when fired, what it does -> its isolated outcome). ``wrong`` acts in the step itself.
_ACTIONS: dict[str, tuple[Callable[[WorkerContext, int], None] | None, str]] = {
    "segfault": (_segfault, "SIGSEGV (ctypes reads address 0) -> crash"),
    "abort": (_abort, "SIGABRT through os.abort(), like a failed Metal assertion -> crash"),
    "exit": (_exit, "os._exit(3), no result -> crash"),
    "exception": (_exception, "RuntimeError in thread 0, the others go on -> error"),
    "hang": (_hang, "thread 0 waits forever for a lock it holds -> hang"),
    "wrong": (None, "thread 0's outputs silently +1000 in one element from then on (needs verify) -> mismatch"),
    "oom": (_oom, "allocates 2**60 bytes on the device: out of memory -> error"),
}

FAULT_KINDS: tuple[str, ...] = tuple(_ACTIONS)


def fault_names() -> list[str]:
    """Every registered fault workload name, ``fault-<kind>`` and ``fault-<kind>-random``."""
    return [f"fault-{k}{suffix}" for k in FAULT_KINDS for suffix in ("", "-random")]


def _make_step(kind: str) -> Callable[[WorkerContext, int], torch.Tensor]:
    action = _ACTIONS[kind][0]

    def step(ctx: WorkerContext, i: int) -> torch.Tensor:
        a = torch.randn(_WORK_SIDE, _WORK_SIDE, generator=ctx.generator, device=ctx.device, dtype=ctx.dtype)
        out = torch.matmul(a, a)
        st: _FaultState = ctx.state
        if ctx.thread != 0 or not st.armed or threading.get_ident() == st.caller:
            return out
        if action is None:  # wrong: every iteration from the trigger on
            if i >= st.at:
                out[0, 0] += _WRONG_OFFSET
            return out
        if i == st.at:
            action(ctx, i)
        return out

    return step


def _setup_at(ctx: WorkerContext) -> _FaultState:
    return _FaultState(at=ctx.size - 1, armed=True)


def _setup_random(ctx: WorkerContext) -> _FaultState:
    return _FaultState(at=0, armed=random.SystemRandom().random() < 1.0 / ctx.size)


def _register() -> None:
    for kind, (_, description) in _ACTIONS.items():
        step = _make_step(kind)
        register_workload(
            f"fault-{kind}",
            step,
            setup=_setup_at,
            kind="fault",
            description=f"fault at thread 0's iteration number `size` (1 = at once): {description}",
            scale=lambda size: float(_WORK_SIDE) ** 1.5,
        )
        register_workload(
            f"fault-{kind}-random",
            step,
            setup=_setup_random,
            kind="fault",
            description=f"fault in a random 1 of every `size` runs, at once: {description}",
            scale=lambda size: float(_WORK_SIDE) ** 1.5,
        )


_register()
