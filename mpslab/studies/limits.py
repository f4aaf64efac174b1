"""A backend's memory limit as the studies use it: total memory, the default fraction, MiB text.

What it is: the few facts a probe or an edge case needs to set a per-process memory fraction and
put it back (``total_memory``, ``default_fraction``), and how bytes are written in their rows.
What it is not: the backend adapter itself (``mpslab.run.backends``) nor a memory monitor.
"""

from __future__ import annotations

import os

from mpslab.run.backends import Backend

__all__ = ["default_fraction", "fmt_bytes", "total_memory"]


def fmt_bytes(n: int | None) -> str:
    if n is None:
        return "n/a"
    return f"{n / 2**20:.1f} MiB"


def total_memory(backend: Backend) -> int:
    """The memory a fraction of 1.0 means (CUDA: the device's; MPS: the recommended maximum)."""
    if backend.kind == "cuda":
        return int(backend.api.get_device_properties(backend.index).total_memory)
    if backend.kind == "mps":
        return int(backend.api.recommended_max_memory())
    raise ValueError(f"backend={backend.kind!r}: has no memory limit")


def default_fraction(backend: Backend) -> float:
    """The fraction that restores the allocator's own default limit."""
    if backend.kind == "mps":  # torch's MPS default high watermark ratio is 1.7 unless the env var says
        try:
            return min(2.0, max(0.0, float(os.environ.get("PYTORCH_MPS_HIGH_WATERMARK_RATIO", "1.7"))))
        except ValueError:
            return 1.7
    return 1.0
