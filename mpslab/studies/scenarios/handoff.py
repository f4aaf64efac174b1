"""The ``handoff`` scenario: a tensor produced in one thread and consumed in another, synchronised correctly.

Each step hands the production to a producer thread (one per worker, kept for
the run) and consumes the result in the worker's own thread. The hand-off is
synchronised the way each backend documents it:

cuda  the producer works on its own stream and records an event; the consumer's
      stream waits on it (``Stream.wait_event``) and the tensor is marked as used
      there (``Tensor.record_stream``), so the allocator does not reuse it early;
mps   the producer records a ``torch.mps.Event`` and the consumer waits on it
      (builds without ``torch.mps.Event``: not applicable);
cpu   ops finish before they return: the thread join is the synchronisation.

It is a control: a correct program, which the oracle must accept every time.
This module is not the catalogue (``catalogue``) nor the other scenarios.
"""

from __future__ import annotations

import threading
from typing import Any

import torch

from mpslab.run.workloads import WorkerContext, register_workload

__all__ = ["handoff", "mps_event_class"]


def mps_event_class() -> Any:
    """``torch.mps.Event`` (or ``torch.mps.event.Event``) where this build has it, else ``None``."""
    mps = getattr(torch, "mps", None)
    cls = getattr(mps, "Event", None)
    if cls is None:
        cls = getattr(getattr(mps, "event", None), "Event", None)
    return cls


def _applies(kind: str, dtype: str) -> str | None:
    if kind == "mps" and mps_event_class() is None:
        return f"this torch build ({torch.__version__}) has no torch.mps.Event to order the hand-off"
    return None


class _Producers:
    """Per-worker producer streams (cuda), created once; a lock guards the first creation."""

    def __init__(self, weight: torch.Tensor) -> None:
        self.weight = weight
        self.streams: dict[int, Any] = {}
        self.lock = threading.Lock()

    def stream(self, ctx: WorkerContext) -> Any:
        with self.lock:
            if ctx.thread not in self.streams:
                self.streams[ctx.thread] = torch.cuda.Stream(device=ctx.device)
            return self.streams[ctx.thread]


def _setup(ctx: WorkerContext) -> _Producers:
    g = torch.Generator().manual_seed(0)
    w = torch.randn(ctx.size, ctx.size, generator=g) / ctx.size**0.5
    return _Producers(w.to(ctx.device, ctx.dtype))


def _produce(ctx: WorkerContext, box: dict[str, Any]) -> None:
    try:
        state: _Producers = ctx.state
        kind = ctx.device.type
        if kind == "cuda":
            stream = state.stream(ctx)
            with torch.cuda.stream(stream):
                x = torch.randn(ctx.size, ctx.size, generator=ctx.generator, device=ctx.device, dtype=ctx.dtype)
                y = torch.tanh(x @ state.weight)
                event = torch.cuda.Event()
                event.record(stream)
        else:
            x = torch.randn(ctx.size, ctx.size, generator=ctx.generator, device=ctx.device, dtype=ctx.dtype)
            y = torch.tanh(x @ state.weight)
            event = None
            if kind == "mps":
                event = mps_event_class()()
                event.record()
        box["y"], box["event"] = y, event
    except BaseException as exc:  # re-raised in the consumer's thread
        box["error"] = exc


@register_workload(
    "handoff",
    description="a tensor produced in one thread, consumed in another, synchronised "
    "correctly (events / wait_stream / record_stream); a control",
    setup=_setup,
    applies=_applies,
    scale=lambda size: float(size),
)
def handoff(ctx: WorkerContext, i: int) -> torch.Tensor:
    """mpslab control: correct cross-thread hand-off; the oracle must accept it in every trial."""
    box: dict[str, Any] = {}
    producer = threading.Thread(target=_produce, args=(ctx, box), name=f"mpslab-producer-{ctx.thread}")
    producer.start()
    producer.join()
    if "error" in box:
        raise box["error"]
    y, event = box["y"], box["event"]
    if ctx.device.type == "cuda":
        consumer = torch.cuda.current_stream(ctx.device)
        consumer.wait_event(event)
        y.record_stream(consumer)
    elif event is not None:
        event.wait()
    return y * 2.0 + 1.0
