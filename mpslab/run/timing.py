"""Device-synchronised timing: warm-up, repeated measurement, median and IQR.

The habits are torch.utils.benchmark's (raw samples kept, summaries computed
from them, the result carries its own spread warning), with one difference
that matters here: the clock is read only after the device has been
synchronised, on MPS as on CUDA (torch.utils.benchmark's default timer does
not synchronise MPS, so it times only the dispatch there).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mpslab.run.backends import Backend, get_backend

__all__ = ["SyncTimer", "Measurement", "measure", "IQR_WARN", "IQR_GROSS_WARN"]

IQR_WARN = 0.10  # IQR / median above this: the measurement is noisy
IQR_GROSS_WARN = 0.25  # above this: do not trust it


def _backend(device: str | Backend) -> Backend:
    return device if isinstance(device, Backend) else get_backend(device)


class SyncTimer:
    """``with SyncTimer("cuda") as t: ...`` then ``t.seconds``.

    Synchronises the device on entry (so earlier work is not billed to the block)
    and again before reading the clock on exit.
    """

    def __init__(self, device: str | Backend = "cpu") -> None:
        self.backend = _backend(device)
        self.seconds = float("nan")
        self._t0 = 0.0

    def __enter__(self) -> SyncTimer:
        self.backend.synchronize()
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.backend.synchronize()
        self.seconds = time.perf_counter() - self._t0


@dataclass
class Measurement:
    """Raw per-repeat times (seconds per call) and the summaries computed from them."""

    samples: list[float]
    label: str = ""
    number: int = 1  # calls per sample
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def median(self) -> float:
        return float(np.median(self.samples))

    @property
    def mean(self) -> float:
        return float(np.mean(self.samples))

    @property
    def iqr(self) -> float:
        q1, q3 = np.percentile(self.samples, [25, 75])
        return float(q3 - q1)

    @property
    def spread(self) -> float:
        """IQR relative to the median."""
        return self.iqr / self.median if self.median > 0 else float("inf")

    @property
    def warnings(self) -> list[str]:
        if len(self.samples) < 4:
            return [f"only {len(self.samples)} samples: spread not estimated"]
        if self.spread > IQR_GROSS_WARN:
            return [f"IQR is {self.spread:.0%} of the median: this measurement is not trustworthy"]
        if self.spread > IQR_WARN:
            return [f"IQR is {self.spread:.0%} of the median: the machine may be noisy"]
        return []

    def __str__(self) -> str:
        text = f"{self.label or 'measurement'}: median {self.median * 1e3:.3f} ms, IQR {self.iqr * 1e3:.3f} ms ({len(self.samples)} samples of {self.number})"  # noqa: E501
        return text + "".join(f"\n  WARNING: {w}" for w in self.warnings)


def measure(
    fn: Callable[[], Any],
    device: str | Backend = "cpu",
    *,
    warmup: int = 3,
    repeats: int = 20,
    number: int = 1,
    label: str = "",
) -> Measurement:
    """Time ``fn``: ``warmup`` untimed calls, then ``repeats`` samples of ``number`` calls each.

    Each sample is bracketed by device synchronisation; the sample is the time per call.
    """
    for name, value, low in (("warmup", warmup, 0), ("repeats", repeats, 1), ("number", number, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name}={value!r}: must be an integer >= {low}")
    backend = _backend(device)
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        with SyncTimer(backend) as t:
            for _ in range(number):
                fn()
        samples.append(t.seconds / number)
    return Measurement(samples, label=label, number=number, meta={"device": str(backend.device)})
