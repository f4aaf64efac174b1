"""The edge-case catalogue: what should happen, what did, and whether the rest survived.

The seed's Attempt 2 was a table of error-handling patterns read in code. Here each
edge case is an action with an expected outcome per backend (an exception type
and message fragment, or "completes with the right result", or "not applicable"
with the reason). Every case runs twice: alone, and while other threads keep
computing checked matmuls. After each run a canary computation must give the
right answer (``healthy``), and the other threads must have finished with right
results (``isolated``).

Statuses: ``pass`` (the expected outcome in both runs, isolated and healthy),
``fail`` (anything else; the ``traceback`` column says what), ``not applicable``
(the case does not exist on that backend), ``not run`` (backend not present).
"""

from __future__ import annotations

import math
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import pandas as pd
import torch

from mpslab.run.backends import Backend, get_backend, resolve_device
from mpslab.run.config import ConfigError, StressConfig
from mpslab.studies.probes import BACKEND_KINDS, SHUTDOWN_SCRIPT, _default_fraction, _grace, run_child
from mpslab.run.runner import run_stress
from mpslab.run.workloads import register_workload, unregister_workload

__all__ = [
    "PASS", "FAIL", "NOT_APPLICABLE", "NOT_RUN", "EDGE_STATUSES",
    "Expect", "raises", "completes", "not_applicable",
    "EdgeCase", "CaseContext", "WrongResult", "ChildCrashed",
    "CASES", "list_cases", "get_case", "edge_catalogue", "canary",
    "run_case", "run_edges", "edge_failures",
]

PASS = "pass"
FAIL = "fail"
NOT_APPLICABLE = "not applicable"
NOT_RUN = "not run"
EDGE_STATUSES = (PASS, FAIL, NOT_APPLICABLE, NOT_RUN)


class WrongResult(AssertionError):
    """A case completed but its result was wrong."""


class ChildCrashed(Exception):
    """A child process died, hung or exited with an unexpected code."""


# --------------------------------------------------------------------------- expectations


@dataclass(frozen=True)
class Expect:
    """The expected outcome of a case on one backend."""

    outcome: str  # raises | completes | not applicable
    exception: type[BaseException] | tuple[type[BaseException], ...] | None = None  # any of these
    fragment: str = ""  # case-insensitive part of the message
    note: str = ""  # what this expectation means / why the backend differs

    def describe(self) -> str:
        if self.outcome == "raises":
            kinds = self.exception if isinstance(self.exception, tuple) else (self.exception,)
            text = "raises " + " or ".join(k.__name__ for k in kinds)  # type: ignore[union-attr]
            return text + (f" matching {self.fragment!r}" if self.fragment else "")
        if self.outcome == "completes":
            return "completes with the right result" + (f" ({self.note})" if self.note else "")
        return f"not applicable: {self.note}"

    def met_by(self, attempt: "_Attempt") -> bool:
        if self.outcome == "completes":
            return attempt.kind == "completed"
        if self.outcome == "raises":
            return (attempt.kind == "raised" and isinstance(attempt.exc, self.exception)  # type: ignore[arg-type]
                    and self.fragment.lower() in str(attempt.exc).lower())
        return False


def raises(exception: type[BaseException] | tuple[type[BaseException], ...], fragment: str = "",
           note: str = "") -> Expect:
    return Expect("raises", exception, fragment, note)


def completes(note: str = "") -> Expect:
    return Expect("completes", note=note)


def not_applicable(reason: str) -> Expect:
    return Expect("not applicable", note=reason)


@dataclass
class CaseContext:
    backend: Backend
    threads: int = 4
    size: int = 64
    timeout: float = 120.0

    @property
    def device(self) -> torch.device:
        return self.backend.device

    @property
    def kind(self) -> str:
        return self.backend.kind


ExpectSpec = Expect | Callable[[Backend], Expect]


@dataclass(frozen=True)
class EdgeCase:
    name: str
    group: str
    does: str
    action: Callable[[CaseContext], str]  # returns what happened; raises on error or WrongResult
    expect: Mapping[str, ExpectSpec]  # by backend kind; "*" for every other kind

    def expectation(self, backend: Backend | str) -> Expect:
        b = get_backend(backend) if isinstance(backend, str) else backend
        spec = self.expect.get(b.kind, self.expect.get("*"))
        if spec is None:
            return not_applicable(f"no expectation written for {b.kind}")
        return spec(b) if callable(spec) else spec


# --------------------------------------------------------------------------- canary and background


def canary(backend: Backend) -> tuple[bool, str]:
    """A small matmul whose exact answer is known; ``(ok, what happened)``."""
    try:
        a = torch.arange(64, dtype=torch.float32).reshape(8, 8) / 8
        want = a.double() @ a.double()
        got = a.to(backend.device) @ a.to(backend.device)
        backend.synchronize()
        got64 = got.to("cpu", torch.float64)
        if not torch.allclose(got64, want, rtol=1e-5, atol=1e-5):
            return False, f"canary wrong: max |diff| {(got64 - want).abs().max().item():.3g}"
        return True, "canary right"
    except Exception as exc:
        return False, f"canary raised {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


class _Background:
    """Threads that keep computing checked matmuls while a case runs."""

    def __init__(self, backend: Backend, n: int, size: int, timeout: float, pause: float = 0.0) -> None:
        self.backend, self.n, self.size, self.timeout, self.pause = backend, n, size, timeout, pause
        self.stop = threading.Event()
        self.iterations = [0] * n
        self.problems: list[str] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def _work(self, w: int) -> None:
        try:
            g = torch.Generator().manual_seed(7000 + w)
            x = torch.randn(self.size, self.size, generator=g) / math.sqrt(self.size)
            want = float((x.double() @ x.double()).sum())
            xd = x.to(self.backend.device)
            while not self.stop.is_set() or self.iterations[w] == 0:
                got = float((xd @ xd).sum().item())
                if not abs(got - want) <= 1e-3 * max(1.0, abs(want)):
                    with self._lock:
                        self.problems.append(f"worker {w}: sum {got!r}, expected {want!r}")
                    return
                self.iterations[w] += 1
                if self.pause:
                    time.sleep(self.pause)
        except Exception as exc:
            with self._lock:
                self.problems.append(f"worker {w}: {type(exc).__name__}: {exc}")

    def __enter__(self) -> "_Background":
        self._threads = [threading.Thread(target=self._work, args=(w,), name=f"mpslab-bg-{w}", daemon=True)
                         for w in range(self.n)]
        for t in self._threads:
            t.start()
        deadline = time.monotonic() + self.timeout
        while min(self.iterations) == 0 and not self.problems and time.monotonic() < deadline:
            time.sleep(0.002)  # the case starts once every worker is really working
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        deadline = time.monotonic() + self.timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        stuck = sum(t.is_alive() for t in self._threads)
        if stuck:
            self.problems.append(f"{stuck} background thread(s) did not finish within {self.timeout:.0f} s")

    @property
    def ok(self) -> bool:
        return not self.problems and all(i > 0 for i in self.iterations)

    def describe(self) -> str:
        if self.ok:
            return f"{self.n} background thread(s) finished {sum(self.iterations)} checked matmuls, all right"
        return "; ".join(self.problems) or "a background thread did no work"


# --------------------------------------------------------------------------- one attempt


@dataclass
class _Attempt:
    kind: str  # completed | raised | hang
    summary: str
    exc: BaseException | None = None
    tb: str = ""

    def observed(self) -> str:
        if self.kind == "completed":
            return f"completed: {self.summary}"
        if self.kind == "raised":
            return f"raised {self.summary}"
        return f"hang: {self.summary}"


def _attempt(case: EdgeCase, ctx: CaseContext) -> _Attempt:
    box: dict[str, Any] = {}

    def body() -> None:
        try:
            box["summary"] = case.action(ctx)
        except BaseException as exc:  # noqa: BLE001 - the row records it
            box["exc"] = exc
            box["tb"] = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))

    t = threading.Thread(target=body, name=f"mpslab-edge-{case.name}", daemon=True)
    t.start()
    t.join(ctx.timeout + _grace(ctx.timeout))
    if t.is_alive():
        return _Attempt("hang", f"no answer within {ctx.timeout + _grace(ctx.timeout):.1f} s")
    if "exc" in box:
        exc = box["exc"]
        first = str(exc).splitlines()[0] if str(exc) else ""
        return _Attempt("raised", f"{type(exc).__name__}: {first}", exc, box["tb"])
    return _Attempt("completed", str(box.get("summary", "")))


# --------------------------------------------------------------------------- the cases


def _sync(ctx: CaseContext) -> None:
    ctx.backend.synchronize()


def _matmul_shape_mismatch(ctx: CaseContext) -> str:
    out = torch.randn(3, 4, device=ctx.device) @ torch.randn(5, 6, device=ctx.device)
    _sync(ctx)
    return f"returned a {tuple(out.shape)} tensor"


def _two_devices(ctx: CaseContext) -> str:
    out = torch.mm(torch.randn(4, 4, device=ctx.device), torch.randn(4, 4, device="cpu"))
    _sync(ctx)
    return f"returned a tensor on {out.device}"


def _float64(ctx: CaseContext) -> str:
    t = torch.ones(4, dtype=torch.float64, device=ctx.device)
    total = float(t.sum().item())
    if total != 4.0:
        raise WrongResult(f"sum of four float64 ones is {total!r}")
    return "float64 tensor created on the device; its sum is 4.0"


def _negative_size(ctx: CaseContext) -> str:
    t = torch.empty(-1, device=ctx.device)
    return f"returned a tensor of shape {tuple(t.shape)}"


def _bad_view(ctx: CaseContext) -> str:
    t = torch.ones(6, device=ctx.device).view(7)
    return f"returned a view of shape {tuple(t.shape)}"


_MPS_ELAPSED_SCRIPT = """
import sys, torch
a = torch.mps.event.Event(enable_timing=True)
b = torch.mps.event.Event(enable_timing=True)
try:
    ms = a.elapsed_time(b)
except Exception as exc:
    print("RAISED", type(exc).__name__, (str(exc).splitlines() or [""])[0], flush=True)
    sys.exit(0)
print("RETURNED", ms, flush=True)
"""


def _elapsed_before_record(ctx: CaseContext) -> str:
    if ctx.kind == "mps":
        # In a child: reading torch's MPS event pool, elapsed_time waits for a completion
        # notification that an event never recorded does not get, so it may never return.
        res = run_child(_MPS_ELAPSED_SCRIPT, [], timeout=min(ctx.timeout, 60.0))
        if res.timed_out:
            raise ChildCrashed(f"elapsed_time on unrecorded MPS events gave no answer: {res.describe()}")
        for line in res.stdout.splitlines():
            if line.startswith("RAISED "):
                _, name, *msg = line.split(" ", 2)
                kind = {"RuntimeError": RuntimeError, "ValueError": ValueError, "TypeError": TypeError}.get(name)
                if kind is None:
                    raise ChildCrashed(f"child raised {name}: {' '.join(msg)}")
                raise kind(" ".join(msg))
            if line.startswith("RETURNED "):
                return f"returned {line.split(' ', 1)[1]} ms for events never recorded"
        raise ChildCrashed(f"child gave no answer: {res.describe()}")
    start, end = ctx.backend.new_event(enable_timing=True), ctx.backend.new_event(enable_timing=True)
    ms = start.elapsed_time(end)
    return f"returned {ms!r} ms for events never recorded"


def _oom_then_recovery(ctx: CaseContext) -> str:
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
        total = (b.api.get_device_properties(b.index).total_memory if ctx.kind == "cuda"
                 else b.api.recommended_max_memory())
        b.set_memory_fraction(min(1.0, limit / total))
        try:
            try:
                big = torch.empty(4 * headroom, dtype=torch.uint8, device=ctx.device)
                b.synchronize()
                del big
            except RuntimeError as exc:
                oom = exc
        finally:
            b.set_memory_fraction(_default_fraction(b))
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


def _worker_exception(ctx: CaseContext) -> str:
    threads, iters, bad = max(2, ctx.threads), 6, 2

    def step(w: Any, i: int) -> torch.Tensor:
        if w.thread == 0 and i == bad:
            a = torch.ones(3, 4, device=w.device, dtype=w.dtype)
            return a @ a  # shapes do not multiply: raises in worker 0, mid-run
        x = torch.randn(w.size, w.size, generator=w.generator, device=w.device, dtype=w.dtype)
        return (x @ x).sum()

    register_workload(_RAISE_WORKLOAD, step, description="edge case: worker 0 raises at iteration 2",
                      scale=lambda s: float(s) ** 1.5, kind="fault")
    try:
        res = run_stress(StressConfig(threads=threads, iterations=iters, sync_every=2, workload=_RAISE_WORKLOAD,
                                      size=ctx.size, device=str(ctx.device), warmup=0))
    finally:
        unregister_workload(_RAISE_WORKLOAD)
    good = (threads - 1) * iters + bad
    e = res.errors[0] if res.errors else None
    if not (res.error_count == 1 and e is not None and e.thread == 0 and e.iteration == bad
            and e.type == "RuntimeError" and "cannot be multiplied" in e.message):
        raise WrongResult(f"expected one RuntimeError from thread 0 at iteration {bad}; got "
                          f"{res.error_count} error(s): {[(x.thread, x.iteration, x.type) for x in res.errors[:3]]}")
    if res.mismatch_count or res.completed != good or res.verified != good:
        raise WrongResult(f"the other threads: {res.completed} iterations completed, {res.verified} verified, "
                          f"{res.mismatch_count} mismatches (expected {good}, {good}, 0)")
    return (f"thread 0's RuntimeError at iteration {bad} was captured; {threads - 1} other thread(s) "
            f"finished, {res.verified} checksums verified, 0 mismatches")


def _zero_size(ctx: CaseContext) -> str:
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


def _non_contiguous(ctx: CaseContext) -> str:
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


def _nan_inf(ctx: CaseContext) -> str:
    g = torch.Generator().manual_seed(5)
    x = torch.randn(8, 8, generator=g)
    x[0, 0], x[1, 1], x[2, 2] = float("nan"), float("inf"), float("-inf")
    want = x.double() @ x.double()
    xd = x.to(ctx.device)
    got = (xd @ xd).to("cpu", torch.float64)
    if not torch.equal(got.isnan(), want.isnan()):
        raise WrongResult("matmul: the NaN pattern differs from IEEE float64 on the CPU")
    if not torch.equal(got.isinf() & (got > 0), want.isinf() & (want > 0)) or \
            not torch.equal(got.isinf() & (got < 0), want.isinf() & (want < 0)):
        raise WrongResult("matmul: the +Inf / -Inf pattern differs from IEEE float64 on the CPU")
    finite = want.isfinite()
    if not torch.allclose(got[finite], want[finite], rtol=1e-3, atol=1e-3):
        raise WrongResult("matmul: finite entries differ from the reference")
    if not math.isnan(float(xd.sum().item())) or not math.isnan(float(xd.max().item())):
        raise WrongResult("sum / max of a tensor holding NaN is not NaN")
    cleaned = xd.nan_to_num(nan=0.0, posinf=1e4, neginf=-1e4)
    if not bool(cleaned.isfinite().all().item()):
        raise WrongResult("nan_to_num left non-finite values")
    return (f"matmul kept the IEEE NaN/Inf pattern ({int(want.isnan().sum())} NaN, {int(want.isinf().sum())} Inf "
            "entries); sum and max propagate NaN; nan_to_num cleans")


def _empty_cache_race(ctx: CaseContext) -> str:
    b = ctx.backend
    threads, rounds, elems = max(2, ctx.threads), 20, 1 << 20
    stop = threading.Event()
    releases = [0]
    problems: list[str] = []

    def allocate(i: int) -> None:
        try:
            for _ in range(rounds):
                t = torch.full((elems,), float(i + 1), device=ctx.device)
                total = float(t.sum().item())
                if abs(total - float(i + 1) * elems) > 1e-5 * float(i + 1) * elems:
                    problems.append(f"thread {i}: a fresh buffer sums to {total!r}")
                    return
                del t
        except Exception as exc:
            problems.append(f"thread {i}: {type(exc).__name__}: {exc}")

    def release() -> None:
        try:
            while not stop.is_set():
                b.empty_cache()
                releases[0] += 1
        except Exception as exc:
            problems.append(f"empty_cache: {type(exc).__name__}: {exc}")

    releaser = threading.Thread(target=release, daemon=True)
    workers = [threading.Thread(target=allocate, args=(i,), daemon=True) for i in range(threads)]
    releaser.start()
    for w in workers:
        w.start()
    for w in workers:
        w.join(ctx.timeout)
    stop.set()
    releaser.join(ctx.timeout)
    if any(w.is_alive() for w in workers) or releaser.is_alive():
        raise WrongResult(f"threads still running after {ctx.timeout:.0f} s")
    if problems:
        raise WrongResult("; ".join(problems[:3]))
    return f"{threads} thread(s) x {rounds} fresh 4 MiB buffers held their values while empty_cache() ran {releases[0]} times"


def _sync_nothing_pending(ctx: CaseContext) -> str:
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


def _child_checked(res: Any, *, want_rc: int, stderr_has: str = "", stdout_has: str = "") -> str:
    if res.timed_out:
        raise ChildCrashed(f"child {res.describe()}")
    crash = res.crash_text()
    if crash or res.returncode != want_rc:
        tail = "\n".join(res.stderr.strip().splitlines()[-8:])
        raise ChildCrashed(f"child {res.describe()}" + (f" (crash text: {', '.join(crash)})" if crash else "")
                           + f"; expected exit {want_rc}" + (f"\nchild stderr (last lines):\n{tail}" if tail else ""))
    if stderr_has and stderr_has not in res.stderr:
        raise WrongResult(f"child exit {res.returncode} but stderr lacks {stderr_has!r}")
    if stdout_has and stdout_has not in res.stdout:
        raise WrongResult(f"child exit {res.returncode} but stdout lacks {stdout_has!r}: {res.stdout.strip()[-200:]!r}")
    return f"child exit {res.returncode}, no crash text; stdout: {' | '.join(res.stdout.strip().splitlines()[-2:])}"


def _exit_with_device_work(ctx: CaseContext) -> str:
    res = run_child(SHUTDOWN_SCRIPT, [str(ctx.device), max(2, ctx.threads), max(ctx.size, 1024), 200],
                    timeout=ctx.timeout)
    return _child_checked(res, want_rc=0, stdout_has="exiting")


_DAEMON_EXIT_SCRIPT = """
import sys, threading, time, torch
device, T, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
started = threading.Barrier(T + 1)
def work():
    x = torch.randn(n, n, device=device) / n ** 0.5
    started.wait()
    while True:
        x = torch.tanh(x @ x)
for _ in range(T):
    threading.Thread(target=work, daemon=True).start()
started.wait()
time.sleep(0.2)
print("exiting with", threading.active_count() - 1, "daemon threads inside their op loops", flush=True)
"""


def _exit_while_threads_in_ops(ctx: CaseContext) -> str:
    res = run_child(_DAEMON_EXIT_SCRIPT, [str(ctx.device), max(2, ctx.threads), 128], timeout=ctx.timeout)
    return _child_checked(res, want_rc=0, stdout_has="exiting")


_KI_WORKER_SCRIPT = """
import sys, threading, torch
device, T, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ok = {}
def work(i):
    g = torch.Generator().manual_seed(i)
    x = torch.randn(n, n, generator=g) / n ** 0.5
    want = x.double() @ x.double()
    xd = x.to(device)
    for k in range(10):
        if i == 0 and k == 3:
            raise KeyboardInterrupt("worker 0 interrupted mid-run")
        y = xd @ xd
    ok[i] = bool(torch.allclose(y.cpu().double(), want, rtol=1e-2, atol=1e-2))
threads = [threading.Thread(target=work, args=(i,)) for i in range(T)]
for t in threads:
    t.start()
for t in threads:
    t.join()
good = sorted(ok) == list(range(1, T)) and all(ok.values())
print("others finished", sorted(ok), "correct", good, flush=True)
sys.exit(0 if good else 3)
"""


def _keyboard_interrupt_in_worker(ctx: CaseContext) -> str:
    res = run_child(_KI_WORKER_SCRIPT, [str(ctx.device), max(2, ctx.threads), ctx.size], timeout=ctx.timeout)
    return _child_checked(res, want_rc=0, stderr_has="KeyboardInterrupt", stdout_has="correct True")


_KI_MAIN_SCRIPT = """
import os, signal, sys, threading, torch
device, T, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
stop = threading.Event()
done = {}
def work(i):
    x = torch.randn(n, n, device=device) / n ** 0.5
    k = 0
    while not stop.is_set():
        x = torch.tanh(x @ x)
        k += 1
    done[i] = k
threads = [threading.Thread(target=work, args=(i,)) for i in range(T)]
for t in threads:
    t.start()
x = torch.randn(n, n, device=device) / n ** 0.5
code = 4
try:
    for k in range(1000000):
        x = torch.tanh(x @ x)
        if k == 20:
            os.kill(os.getpid(), signal.SIGINT)
    print("never interrupted", flush=True)
except KeyboardInterrupt:
    print("interrupted at main iteration", k, flush=True)
    code = 130
finally:
    stop.set()
    for t in threads:
        t.join()
a = torch.arange(16.0, device=device).reshape(4, 4)
print("canary", float((a @ a).sum().item()) == 3920.0, "workers stopped", sorted(done), flush=True)
sys.exit(code)
"""


def _keyboard_interrupt_main(ctx: CaseContext) -> str:
    res = run_child(_KI_MAIN_SCRIPT, [str(ctx.device), max(2, ctx.threads), ctx.size], timeout=ctx.timeout)
    return _child_checked(res, want_rc=130, stdout_has="canary True")


# ----- the harness's own refused inputs


def _config_case(changes: Mapping[str, Any]) -> Callable[[CaseContext], str]:
    def action(ctx: CaseContext) -> str:
        params: dict[str, Any] = {"threads": 2, "iterations": 2, "size": 8, "device": str(ctx.device)}
        params.update(changes)
        cfg = StressConfig(**params)
        return f"config accepted ({', '.join(f'{k}={getattr(cfg, k)!r}' for k in changes)})"
    return action


def _from_dict_unknown(ctx: CaseContext) -> str:
    StressConfig.from_dict({"thread": 4, "device": str(ctx.device)})
    return "config accepted"


def _run_stress_not_config(ctx: CaseContext) -> str:
    run_stress({"threads": 2})  # type: ignore[arg-type]
    return "run_stress accepted a dict"


def _run_probes_bad(ctx: CaseContext) -> str:
    from mpslab.studies.probes import run_probes

    run_probes(str(ctx.device), threads=0)
    return "run_probes accepted threads=0"


def _run_edges_bad(ctx: CaseContext) -> str:
    run_edges(str(ctx.device), threads=0)
    return "run_edges accepted threads=0"


_CONFIG_REFUSALS: tuple[tuple[str, Any], ...] = (
    ("threads", 0), ("threads", True), ("iterations", 0), ("sync_every", -1), ("size", 0), ("seed", -1),
    ("warmup", -1), ("throttle", 0), ("verify", "yes"), ("workload", "no-such-workload"),
    ("streams", "sideways"), ("dtype", "int8"), ("device", "tpu"), ("device", "cuda:99"),
    ("plugins", [1]), ("plugins", ["mpslab_no_such_plugin_module"]),
)


def _streams_expect(b: Backend) -> Expect:
    if b.has_streams:
        return completes(f"the {b.kind} backend has streams in this torch")
    return raises(ConfigError, "streams='per-thread'", note=f"the {b.kind} backend has no streams in this torch")


def _harness_cases() -> list[EdgeCase]:
    cases = []
    for param, value in _CONFIG_REFUSALS:
        cases.append(EdgeCase(
            f"config {param}={value!r}", "harness inputs", f"StressConfig({param}={value!r}) with the rest valid",
            _config_case({param: value}), {"*": raises(ConfigError, f"{param}=")}))
    cases += [
        EdgeCase("config throttle > threads", "harness inputs", "StressConfig(threads=2, throttle=3)",
                 _config_case({"throttle": 3}), {"*": raises(ConfigError, "throttle=3")}),
        EdgeCase("config dtype='float64'", "harness inputs", "StressConfig(dtype='float64') on this backend",
                 _config_case({"dtype": "float64"}),
                 {"mps": raises(ConfigError, "dtype='float64'", note="MPS has no float64"),
                  "*": completes("float64 is allowed here")}),
        EdgeCase("config streams='per-thread'", "harness inputs", "StressConfig(streams='per-thread')",
                 _config_case({"streams": "per-thread"}), {"*": _streams_expect}),
        EdgeCase("config from_dict unknown key", "harness inputs", "StressConfig.from_dict({'thread': 4})",
                 _from_dict_unknown, {"*": raises(ConfigError, "unknown parameter")}),
        EdgeCase("run_stress(dict)", "harness inputs", "run_stress given a dict instead of a StressConfig",
                 _run_stress_not_config, {"*": raises(TypeError, "needs a StressConfig")}),
        EdgeCase("run_probes(threads=0)", "harness inputs", "the probe runner given threads=0",
                 _run_probes_bad, {"*": raises(ValueError, "threads=0")}),
        EdgeCase("run_edges(threads=0)", "harness inputs", "the edge-case runner given threads=0",
                 _run_edges_bad, {"*": raises(ValueError, "threads=0")}),
    ]
    return cases


_CPU_ONE_DEVICE = "the CPU backend is one device; there is no second device to mix with"
_CPU_NO_EVENTS = "the CPU backend has no device events (mpslab's HostEvent is a host-clock emulation, not torch)"
_CPU_NO_CACHE = "the CPU allocator keeps no cache: empty_cache does nothing there"
_CPU_NOTHING_QUEUED = "nothing is ever queued on the CPU backend: synchronize has nothing to wait for"
_CPU_NO_QUEUE_AT_EXIT = ("CPU ops finish before they return: no device work can be queued at exit "
                         "(see exit_while_threads_in_ops)")

CASES: tuple[EdgeCase, ...] = (
    EdgeCase("matmul_shape_mismatch", "user-facing errors", "(3x4) @ (5x6) on the device",
             _matmul_shape_mismatch, {"*": raises(RuntimeError, "cannot be multiplied")}),
    EdgeCase("tensors_on_two_devices", "user-facing errors", "torch.mm(device tensor, CPU tensor)",
             _two_devices, {"cpu": not_applicable(_CPU_ONE_DEVICE),
                            "cuda": raises(RuntimeError, "same device"),
                            "mps": raises(RuntimeError, "device", note="MPS wording not checked on hardware here")}),
    EdgeCase("float64_on_device", "user-facing errors", "torch.ones(4, dtype=float64) on the device, then sum",
             _float64, {"mps": raises(TypeError, "float64", note="MPS has no float64"),
                        "*": completes("float64 is supported")}),
    EdgeCase("negative_size", "user-facing errors", "torch.empty(-1) on the device",
             _negative_size, {"*": raises(RuntimeError, "negative dimension")}),
    EdgeCase("bad_view_size", "user-facing errors", "a 6-element tensor viewed as 7",
             _bad_view, {"*": raises(RuntimeError, "is invalid for input of size")}),
    EdgeCase("elapsed_time_before_record", "user-facing errors", "elapsed_time between two timing events never "
             "recorded (on MPS in a child process, with a timeout)",
             _elapsed_before_record, {"cpu": not_applicable(_CPU_NO_EVENTS),
                                      # torch 2.11 + CUDA 13 on an H100 raised ValueError
                                      # ("Both events must be recorded ..."); older builds RuntimeError
                                      "cuda": raises((RuntimeError, ValueError), "recorded"),
                                      "mps": raises(RuntimeError, note="an error, not a hang; MPS wording unchecked")}),
    EdgeCase("oom_then_recovery", "memory", "an allocation past a per-process memory fraction (CPU: 2**60 bytes, "
             "no fraction exists there), then cache release and a 64 MiB allocation that must work",
             _oom_then_recovery, {"cpu": raises(RuntimeError, "allocate memory", note="no memory fraction on CPU"),
                                  "cuda": raises(torch.OutOfMemoryError, "out of memory"),
                                  "mps": raises(RuntimeError, "out of memory")}),
    EdgeCase("empty_cache_race", "memory", "empty_cache() in a loop while T threads allocate, fill and check buffers",
             _empty_cache_race, {"cpu": not_applicable(_CPU_NO_CACHE), "*": completes()}),
    EdgeCase("worker_exception_mid_run", "threads", "run_stress where worker 0 raises at iteration 2 of 6",
             _worker_exception, {"*": completes("the error is captured for thread 0 only; the others verify")}),
    EdgeCase("synchronize_nothing_pending", "threads", "synchronize() x20 from T threads at once, nothing queued",
             _sync_nothing_pending, {"cpu": not_applicable(_CPU_NOTHING_QUEUED), "*": completes()}),
    EdgeCase("zero_size_inputs", "inputs", "matmul and sum with zero-size dimensions", _zero_size, {"*": completes()}),
    EdgeCase("non_contiguous_inputs", "inputs", "matmul of strided, transposed and expanded views",
             _non_contiguous, {"*": completes()}),
    EdgeCase("nan_inf_inputs", "inputs", "matmul, sum, max and nan_to_num with NaN and +/-Inf entries",
             _nan_inf, {"*": completes("IEEE NaN/Inf propagation")}),
    EdgeCase("exit_with_device_work_queued", "process", "child: T threads queue device work, no synchronize, "
             "interpreter exits", _exit_with_device_work,
             {"cpu": not_applicable(_CPU_NO_QUEUE_AT_EXIT), "*": completes("child exits 0, no crash text")}),
    EdgeCase("exit_while_threads_in_ops", "process", "child: daemon threads loop on matmuls; the main thread "
             "returns, so the interpreter exits while they are inside torch ops",
             _exit_while_threads_in_ops, {"*": completes("child exits 0, no crash text")}),
    EdgeCase("keyboard_interrupt_in_worker", "process", "child: worker 0 raises KeyboardInterrupt mid-run",
             _keyboard_interrupt_in_worker,
             {"*": completes("exit 0; KeyboardInterrupt reported on stderr; the other workers' results right")}),
    EdgeCase("keyboard_interrupt_main_mid_run", "process", "child: SIGINT while the main thread computes and "
             "workers run; main catches KeyboardInterrupt, stops and joins them",
             _keyboard_interrupt_main, {"*": completes("exit 130; workers stopped; canary right afterwards")}),
) + tuple(_harness_cases())


def list_cases() -> list[EdgeCase]:
    return list(CASES)


def get_case(name: str) -> EdgeCase:
    for c in CASES:
        if c.name == name:
            return c
    raise KeyError(f"case={name!r}: unknown; known: {', '.join(c.name for c in CASES)}")


def edge_catalogue() -> pd.DataFrame:
    """case x backend: what each case does and what is expected there (nothing runs)."""
    rows = []
    for c in CASES:
        row = {"case": c.name, "group": c.group, "does": c.does}
        for kind in BACKEND_KINDS:
            row[kind] = c.expectation(kind).describe()
        rows.append(row)
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- the runner


_COLUMNS = ["case", "group", "backend", "device", "does", "expected", "observed", "observed_with_others",
            "expected_met_alone", "expected_met_with_others", "isolated", "healthy", "status", "detail",
            "traceback", "seconds"]


def run_case(case: EdgeCase, backend: Backend, *, threads: int = 4, size: int = 64,
             timeout: float = 120.0, pause: float = 0.0) -> dict[str, Any]:
    """One case on one backend: alone, then with ``threads`` background threads; one tidy row.

    ``pause``: seconds each background thread rests between its checked matmuls
    (0 = flat out; a little leaves CPU to child processes on small machines).
    """
    exp = case.expectation(backend)
    row: dict[str, Any] = {"case": case.name, "group": case.group, "backend": backend.kind,
                           "device": str(backend.device), "does": case.does, "expected": exp.describe()}
    if exp.outcome == "not applicable":
        row.update(observed="", observed_with_others="", expected_met_alone=None, expected_met_with_others=None,
                   isolated=None, healthy=None, status=NOT_APPLICABLE, detail=exp.note, traceback="", seconds=0.0)
        return row
    ctx = CaseContext(backend, threads, size, timeout)
    t0 = time.perf_counter()
    alone = _attempt(case, ctx)
    healthy_alone, health_alone = canary(backend)
    bg = _Background(backend, threads, size, timeout, pause)
    with bg:
        together = _attempt(case, ctx)
    healthy_after, health_after = canary(backend)
    met_alone, met_together = exp.met_by(alone), exp.met_by(together)
    healthy = healthy_alone and healthy_after
    ok = met_alone and met_together and bg.ok and healthy
    problems = []
    for label, att, met in (("alone", alone, met_alone), ("with others", together, met_together)):
        if not met:
            problems.append(f"{label}: expected {exp.describe()}, observed {att.observed()}"
                            + (f"\n{att.tb}" if att.tb else ""))
    if not bg.ok:
        problems.append(f"isolation: {bg.describe()}")
    if not healthy:
        problems.append(f"health: after alone: {health_alone}; after with others: {health_after}")
    row.update(observed=alone.observed(), observed_with_others=together.observed(),
               expected_met_alone=met_alone, expected_met_with_others=met_together, isolated=bg.ok,
               healthy=healthy, status=PASS if ok else FAIL,
               detail=f"{bg.describe()}; {health_alone} after the alone run, {health_after} after the other",
               traceback="\n\n".join(problems), seconds=time.perf_counter() - t0)
    return row


def _check_params(threads: Any, size: Any, timeout: Any, pause: Any = 0.0) -> None:
    for name, value, minimum in (("threads", threads, 1), ("size", size, 8)):
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"{name}={value!r}: must be an integer >= {minimum}")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ValueError(f"timeout={timeout!r}: must be a number of seconds > 0")
    if isinstance(pause, bool) or not isinstance(pause, (int, float)) or not 0 <= pause <= 1:
        raise ValueError(f"pause={pause!r}: must be a number of seconds between 0 and 1")


def run_edges(device: str = "cpu", *, threads: int = 4, size: int = 64, timeout: float = 120.0,
              pause: float = 0.0, cases: Sequence[str] | None = None,
              backend: Backend | None = None) -> pd.DataFrame:
    """Every case (or those named) on one backend; a tidy frame, one row per case.

    A backend that is not available gives ``not run`` rows (``not applicable`` where
    the case does not exist on it).
    """
    _check_params(threads, size, timeout, pause)
    if isinstance(cases, str):
        cases = [cases]
    selected = list(CASES) if cases is None else [get_case(c) for c in cases]
    if backend is None:
        if not isinstance(device, str):
            raise ValueError(f"device={device!r}: must be a string such as cpu, cuda, cuda:N, mps or auto")
        try:
            backend = get_backend(resolve_device(device.strip().lower()))
        except (RuntimeError, ValueError) as exc:
            raise ValueError(f"device={device!r}: {exc}") from None
    rows = []
    if not backend.is_available():
        for c in selected:
            exp = c.expectation(backend)
            na = exp.outcome == "not applicable"
            rows.append({"case": c.name, "group": c.group, "backend": backend.kind, "device": None, "does": c.does,
                         "expected": exp.describe(), "status": NOT_APPLICABLE if na else NOT_RUN,
                         "detail": exp.note if na else f"the {backend.kind} backend is not available on this machine"})
    else:
        rows = [run_case(c, backend, threads=threads, size=size, timeout=timeout, pause=pause) for c in selected]
    df = pd.DataFrame(rows)
    for col in _COLUMNS:
        if col not in df.columns:
            df[col] = None
    df = df[_COLUMNS]
    df["env_torch"] = torch.__version__
    return df


def edge_failures(df: pd.DataFrame) -> pd.DataFrame:
    """The failed rows with what went wrong (tracebacks included)."""
    return df.loc[df["status"] == FAIL, ["case", "backend", "expected", "observed", "observed_with_others",
                                         "isolated", "healthy", "traceback"]].reset_index(drop=True)
