"""Whether a backend survived a case: the canary, and threads that keep working beside it.

What it is: ``canary`` (a small matmul whose exact answer is known: the ``healthy`` check after
each run of a case) and ``Background`` (threads that keep computing checked matmuls while a case
runs: the ``isolated`` check).

What it is not: the cases or the runner that calls these (``runner``).
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any

import torch

from mpslab.run.backends import Backend

__all__ = ["Background", "canary"]


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


class Background:
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

    def __enter__(self) -> Background:
        self._threads = [
            threading.Thread(target=self._work, args=(w,), name=f"mpslab-bg-{w}", daemon=True) for w in range(self.n)
        ]
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
