"""What a probe is: its per-backend plans, the context its action sees, what it reports.

What it is: ``Probe`` (one backend path: id, title, the verification round's words for it, a ``Plan`` per
backend kind), ``Plan`` (the action, what it targets, the evidence ``Need`` or why none exists,
or why the path is not applicable), ``ProbeContext`` (backend, thread count, sizes, seeded
inputs, and ``run_threads`` that starts T threads together) and ``ProbeOutcome``.

What it is not: the probes themselves (``paths``), the list of them (``catalogue``) or the
code that runs them and decides a status (``runner``).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from mpslab.run.backends import Backend
from mpslab.studies.probes.status import Need, ProbeFailure

__all__ = ["Plan", "Probe", "ProbeContext", "ProbeOutcome", "check_close", "sum_is"]


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

        workers = [
            threading.Thread(target=body, args=(i,), name=f"mpslab-probe-{i}", daemon=True) for i in range(self.threads)
        ]
        for w in workers:
            w.start()
        deadline = time.monotonic() + self.timeout
        for w in workers:
            w.join(max(0.0, deadline - time.monotonic()))
        if any(w.is_alive() for w in workers):
            barrier.abort()
            raise TimeoutError(
                f"{sum(w.is_alive() for w in workers)} of {self.threads} probe threads "
                f"did not finish within {self.timeout:.0f} s"
            )
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

    @classmethod
    def absent(cls, reason: str) -> Plan:
        """The plan of a backend where the concept does not exist: no action, nothing targeted, ``reason`` why."""
        return cls(None, "", reason=reason)

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
    seed: str  # the verification round's words for this path (docs/background.md): the claim being checked
    what: str  # what the path is, in a sentence or two
    plans: Mapping[str, Plan]

    def plan(self, kind: str) -> Plan:
        return self.plans.get(kind) or Plan.absent(f"no probe for the {kind} backend")


def check_close(got: torch.Tensor, ref: torch.Tensor, what: str, tol: float = 1e-2) -> None:
    """A ``ProbeFailure`` naming ``what`` unless ``got`` has the shape of ``ref`` (a float64 CPU reference) and
    matches it within ``tol``: the one way every probe judges a computed result."""
    g = got.detach().to("cpu", torch.float64)
    if g.shape != ref.shape:
        raise ProbeFailure(f"{what}: shape {tuple(g.shape)} != expected {tuple(ref.shape)}")
    if not torch.allclose(g, ref, rtol=tol, atol=tol):
        bad = (g - ref).abs().nan_to_num(float("inf")).max().item()
        raise ProbeFailure(f"{what}: result differs from the float64 CPU reference (max |diff| {bad:.3g})")


def sum_is(t: torch.Tensor, want: float) -> bool:
    """``t.sum()`` equals ``want`` up to float32 rounding (large sums are not exact)."""
    return abs(float(t.sum().item()) - want) <= 1e-5 * abs(want)
