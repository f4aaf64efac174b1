"""Recording outputs during a run: the on-device fingerprint of each step's output, or a full copy of it.

``Fingerprinter`` turns an output into two vectors of ``K + 1`` on the device (weighted sums of its finite
values and of its non-finite codes; the weights are a pure function of device type, accumulation dtype and
numel); ``FingerprintLog`` keeps one thread's fingerprints without a host synchronisation (flushed to a
preallocated device buffer every ``_CHUNK`` steps); ``FullLog`` keeps complete copies (``verify="full"``).
The method and why it catches moved, added or removed values is in ``mpslab.run.oracle``'s docstring.

This module does not compare anything: the replay and the mismatch rules live in ``mpslab.run.oracle``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["K", "Fingerprinter", "FingerprintLog", "FullLog", "accumulation_dtype", "check_output"]

K = 4  # pseudo-random weight rows; row K is all ones (the plain sum)
_WEIGHT_SEED = 0x0F1A6E5
_WEIGHT_CACHE_BYTES = 256 << 20  # a fingerprinter drops its cached weights beyond this
_CHUNK = 256  # fingerprints held per thread before a device-side flush into the preallocated buffer


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

    def __call__(self, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Two vectors of ``K + 1`` on the device: the weighted sums of the finite values, of the codes.

        Two matrix-vector products rather than one matrix product: on the CPU a small
        ``mm`` called from a worker thread costs ~10x a ``mv`` (thread-pool set-up).
        """
        x = out.reshape(-1)
        if x.dtype != self.acc:
            x = x.to(self.acc)
        z = torch.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
        code = torch.nan_to_num(x - z, nan=1.0, posinf=2.0, neginf=3.0)
        w = self.weights(x.numel())
        return torch.mv(w, z), torch.mv(w, code)

    def row(self, out: torch.Tensor) -> torch.Tensor:
        """The fingerprint as one row of ``2 (K + 1)``: values then codes."""
        return torch.cat(self(out))

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
    """One thread's fingerprints, on the device: a list flushed to a preallocated buffer every ``_CHUNK``."""

    __slots__ = ("fp", "buf", "pending", "start", "sigs", "_last")

    def __init__(self, n: int, fp: Fingerprinter) -> None:
        self.fp = fp
        self.buf = torch.empty(n, 2 * (K + 1), device=fp.device, dtype=fp.acc)
        self.pending: list[torch.Tensor] = []
        self.start = 0
        self.sigs: list[tuple[int, tuple[int, ...], torch.dtype]] = []  # (first iteration, shape, dtype)
        self._last: tuple[Any, Any] = (None, None)

    def add(self, out: Any) -> None:
        if not isinstance(out, torch.Tensor):
            check_output(out)
        shape, dtype = out.shape, out.dtype
        if shape != self._last[0] or dtype != self._last[1]:
            self._last = (shape, dtype)
            self.sigs.append((self.count, tuple(shape), dtype))
        self.pending.extend(self.fp(out))
        if len(self.pending) == 2 * _CHUNK:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            k = len(self.pending) // 2
            self.buf[self.start : self.start + k].copy_(torch.stack(self.pending).reshape(k, 2 * (K + 1)))
            self.start += k
            self.pending.clear()

    def truncate(self, n: int) -> None:
        """Keep the first ``n`` iterations (those that finished)."""
        del self.pending[2 * max(0, n - self.start) :]
        self.sigs = [s for s in self.sigs if s[0] < n]

    @property
    def count(self) -> int:
        return self.start + len(self.pending) // 2

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
