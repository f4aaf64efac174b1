"""Recording outputs during a run: each step's output staged by one device copy and fingerprinted in batches.

``Fingerprinter`` turns outputs into rows of ``2 (K + 1)`` on the device (weighted sums of their finite
values, then of their non-finite codes; the weights are a pure function of device type, accumulation dtype
and numel). ``FingerprintLog`` keeps one thread's fingerprints: on the hot path it only copies the output
into a preallocated staging slot (one device copy, no host synchronisation); the staged outputs are
fingerprinted together when an output finds the staging ring full (inside the timed region) or when the run is over
(outside it), so a run whose outputs fit in the staging budget pays one copy per step and nothing else.
``FullLog`` keeps complete copies (``verify="full"``). The method and why it catches moved, added or
removed values is in ``mpslab.run.oracle``'s docstring and ``docs/oracle.md``.

This module does not compare anything: the replay and the mismatch rules live in ``mpslab.run.oracle``.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import torch

__all__ = [
    "K",
    "STAGE_BYTES",
    "Fingerprinter",
    "FingerprintLog",
    "FullLog",
    "accumulation_dtype",
    "check_output",
]

K = 4  # pseudo-random weight rows; row K is all ones (the plain sum)
_WEIGHT_SEED = 0x0F1A6E5
_WEIGHT_CACHE_BYTES = 256 << 20  # a fingerprinter drops its cached weights beyond this
STAGE_BYTES = 256 << 20  # a log's staging budget when none is given (the runner gives full_cap_mb / threads)
_BATCH_ELEMENTS = 1 << 22  # elements fingerprinted per device call: bounds the accumulation-dtype temporaries


# Staging rings on the CPU are recycled across runs in this process. torch's CPU allocator hands a large block
# back to the OS when it is freed, so a fresh ring pays one page fault per 4 KiB page on its first copy, inside
# the timed region: tens of times the cost of the same copy into a reused ring (a clone for verify="full" reuses
# the C heap's pages). CUDA and MPS keep freed blocks in their caching allocators already.
_POOL_BYTES = 512 << 20  # the most the CPU pool keeps between runs
_pool: list[torch.Tensor] = []  # free uint8 rings
_pool_lock = threading.Lock()


def _take_ring(nbytes: int, device: torch.device) -> torch.Tensor:
    """A 1-D uint8 tensor of at least ``nbytes`` on ``device`` (from the pool on the CPU)."""
    if device.type == "cpu":
        with _pool_lock:
            fits = [i for i, b in enumerate(_pool) if b.numel() >= nbytes]  # largest first: the last fits best
            if fits:
                return _pool.pop(fits[-1])
    return torch.empty(nbytes, device=device, dtype=torch.uint8)


def _give_ring(ring: torch.Tensor) -> None:
    if ring.device.type != "cpu":
        return
    with _pool_lock:
        _pool.append(ring)
        _pool.sort(key=lambda b: -b.numel())
        while sum(b.numel() for b in _pool) > _POOL_BYTES:
            _pool.pop(0 if _pool[0].numel() > _POOL_BYTES else -1)


def accumulation_dtype(device: torch.device) -> torch.dtype:
    return torch.float32 if device.type == "mps" else torch.float64


class Fingerprinter:
    """Fingerprints outputs on one device; caches its weight matrices per numel.

    Not shared across streams: the runner gives each per-thread stream its own
    (weights made on one stream and read on another would race). The weights are
    a pure function of (device type, accumulation dtype, numel), so every
    fingerprinter of a run computes the same fingerprint of the same output.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.acc = accumulation_dtype(device)
        self._weights: dict[int, torch.Tensor] = {}
        self._bytes = 0

    def weights(self, n: int) -> torch.Tensor:
        w = self._weights.get(n)
        if w is None:
            g = torch.Generator(device=self.device).manual_seed(_WEIGHT_SEED + n)
            u = torch.rand(2 * K, n, generator=g, device=self.device, dtype=self.acc)
            signed = torch.where(u[K:] < 0.5, -1.0, 1.0).to(self.acc) * (u[:K] + 0.5)
            w = torch.cat((signed, torch.ones(1, n, device=self.device, dtype=self.acc)))
            if self._bytes + w.numel() * w.element_size() > _WEIGHT_CACHE_BYTES:
                self._weights.clear()
                self._bytes = 0
            self._weights[n] = w
            self._bytes += w.numel() * w.element_size()
        return w

    def rows(self, x: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """Fingerprints of the rows of ``x`` (``R x n``, any dtype, row-major order): ``R x 2 (K + 1)``.

        Columns ``0..K`` are the weighted sums of the finite values, ``K+1..2K+1`` those of the codes
        (0 finite, 1 NaN, 2 +Inf, 3 -Inf). On the CPU, where reading a result costs no synchronisation,
        a batch whose value sums are all finite has only finite inputs (a NaN or Inf in an input makes
        its row's sums non-finite), so its codes are zero and the code pass is skipped.
        """
        r, n = x.shape
        if out is None:
            out = torch.empty(r, 2 * (K + 1), device=x.device, dtype=self.acc)
        w = self.weights(n)
        step = max(1, _BATCH_ELEMENTS // max(1, n))
        for a in range(0, r, step):
            self._rows(x[a : a + step], w, out[a : a + step])
        return out

    def _rows(self, x: torch.Tensor, w: torch.Tensor, out: torch.Tensor) -> None:
        if x.dtype != self.acc:
            x = x.to(self.acc)
        if x.shape[0] == 1:  # a small mm from a worker thread costs ~10x a mv on the CPU (thread-pool set-up)
            prod = lambda m: torch.mv(w, m[0])[None]  # noqa: E731
        else:
            prod = lambda m: m @ w.T  # noqa: E731
        if x.device.type == "cpu":
            v = prod(x)
            if bool(torch.isfinite(v).all()):
                out[:, : K + 1] = v
                out[:, K + 1 :] = 0.0
                return
        z = torch.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
        code = torch.nan_to_num(x - z, nan=1.0, posinf=2.0, neginf=3.0)
        out[:, : K + 1] = prod(z)
        out[:, K + 1 :] = prod(code)

    def row(self, out: torch.Tensor) -> torch.Tensor:
        """The fingerprint of one output as one row of ``2 (K + 1)``: values then codes."""
        return self.rows(out.detach().reshape(1, -1))[0]

    def __call__(self, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The fingerprint of one output as two vectors of ``K + 1``: the values', the codes'."""
        r = self.row(out)
        return r[: K + 1], r[K + 1 :]

    def norm(self, out: torch.Tensor) -> torch.Tensor:
        """L2 norm of the finite values (the replay's scale for the tolerance)."""
        x = out.reshape(-1).to(self.acc)
        return torch.linalg.vector_norm(torch.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0))


def check_output(out: Any) -> torch.Tensor:
    if not isinstance(out, torch.Tensor):
        raise TypeError(
            f"workload step must return a tensor for verify, got {type(out).__name__} "
            "(return the output tensor, or use verify='off')"
        )
    return out


class FingerprintLog:
    """One thread's fingerprints: outputs staged by one copy each, fingerprinted in batches on the device.

    ``buf`` holds the fingerprints of iterations ``0..start-1``; the staging ring holds the outputs of
    iterations ``start..start+staged-1`` (all of one shape and dtype). The ring has room for
    ``min(iterations left, stage_bytes // output bytes)`` outputs (at least one); it is fingerprinted when
    an output arrives and finds it full, when the output's shape or dtype changes, and at ``flush`` (after
    the timed region): a ring that holds every output of the run is fingerprinted only at ``flush``.
    Everything runs in stream order on the thread's stream: a slot is overwritten only after the batch
    that read it was queued, so no host synchronisation is needed anywhere on the hot path.
    """

    __slots__ = (
        "fp",
        "buf",
        "start",
        "sigs",
        "n",
        "stage_bytes",
        "_shape",
        "_dtype",
        "_ring",
        "_stage",
        "_slots",
        "_j",
    )

    def __init__(self, n: int, fp: Fingerprinter, stage_bytes: int = STAGE_BYTES) -> None:
        self.fp = fp
        self.n = n
        self.stage_bytes = int(stage_bytes)
        self.buf = torch.empty(n, 2 * (K + 1), device=fp.device, dtype=fp.acc)
        self.start = 0
        self.sigs: list[tuple[int, tuple[int, ...], torch.dtype]] = []  # (first iteration, shape, dtype)
        self._shape: Any = None
        self._dtype: Any = None
        self._ring: torch.Tensor | None = None  # uint8, viewed as the output's dtype in _stage
        self._stage: torch.Tensor | None = None
        self._slots: tuple[torch.Tensor, ...] = ()
        self._j = 0  # outputs staged

    def add(self, out: Any) -> None:
        if not isinstance(out, torch.Tensor):
            check_output(out)
        if out.shape != self._shape or out.dtype != self._dtype:
            self._restage(out)
        elif self._j == len(self._slots):  # full: only now, so a ring that holds the whole run never drains in it
            self._drain()
        if out.requires_grad:
            out = out.detach()
        j = self._j
        self._slots[j].copy_(out)
        self._j = j + 1

    def _restage(self, out: torch.Tensor) -> None:
        """A new shape or dtype (or the first output): fingerprint what is staged, size a ring for this one."""
        self._drain()
        shape, dtype = out.shape, out.dtype
        self._shape, self._dtype = shape, dtype
        self.sigs.append((self.start, tuple(shape), dtype))
        size = out.element_size()
        slots = max(1, min(self.n - self.start, self.stage_bytes // max(1, out.numel() * size)))
        need = -(-slots * out.numel() * size // 16) * 16  # whole 16-byte words: the bytes can be viewed as any dtype
        if self._ring is None or self._ring.numel() < need:
            if self._ring is not None:
                _give_ring(self._ring)
            self._ring = _take_ring(need, self.fp.device)
        self._stage = self._ring[:need].view(dtype)
        self._slots = self._stage[: slots * out.numel()].view(slots, *shape).unbind(0)

    def _drain(self) -> None:
        j = self._j
        if j:
            m = self._slots[0].numel()
            staged = self._stage[: j * m].view(j, m)
            self.fp.rows(staged, self.buf[self.start : self.start + j])
            self.start += j
            self._j = 0

    def flush(self) -> None:
        """Fingerprint what is staged and free the staging memory (called after the timed region)."""
        self._drain()
        if self._ring is not None:
            _give_ring(self._ring)
        self._ring = self._stage = None
        self._slots = ()
        self._shape = self._dtype = None

    def truncate(self, n: int) -> None:
        """Keep the first ``n`` iterations (those that finished)."""
        self._j = min(self._j, max(0, n - self.start))
        self.start = min(self.start, n)
        self.sigs = [s for s in self.sigs if s[0] < n]

    @property
    def count(self) -> int:
        return self.start + self._j

    def host(self) -> np.ndarray:
        return self.buf[: self.start].detach().to("cpu", torch.float64).numpy()


class FullLog:
    """One thread's complete outputs, copied on the device (``verify="full"``)."""

    __slots__ = ("outs",)

    def __init__(self) -> None:
        self.outs: list[torch.Tensor] = []

    def add(self, out: Any) -> None:
        self.outs.append(check_output(out).detach().clone())

    def flush(self) -> None:
        pass

    def truncate(self, n: int) -> None:
        del self.outs[n:]

    @property
    def count(self) -> int:
        return len(self.outs)
