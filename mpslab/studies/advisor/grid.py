"""The advisor's candidates: the ways of serving one workload that it compares.

A candidate is one configuration a user could deploy:

    threaded   ``threads`` workers, each serving requests with the workload's step, under
               a control: ``throttle`` k (a semaphore of k around each step; k = 1 is the
               global lock, the fully serialised reference) or none; a sync pattern
               (``every`` iteration, every K, or only at the ``end``); shared or
               per-thread ``streams`` (only where the backend has streams);
    batched    one thread serving the same requests as batched calls of size B (only for
               workloads that declare a batched form).

A request is one step of the workload (for ``mlp``: one forward pass of its input
rows). Every candidate serves the same number of requests per measurement, so
requests/s compare fairly: a threaded run of T threads does N/T steps per thread, a
batched run does N/B calls of B requests each.

This module builds and checks the grid; it runs nothing. Refusals are one
``ConfigError`` line naming the option.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mpslab.run.backends import get_backend
from mpslab.run.config import ConfigError, StressConfig
from mpslab.run.workloads import get_workload, list_workloads

__all__ = ["Candidate", "build_grid", "default_axes", "parse_axis", "SYNC_WORDS"]

SYNC_WORDS = {"every": 1, "end": 0}


@dataclass(frozen=True)
class Candidate:
    """One configuration of the grid (see the module docstring)."""

    kind: str  # threaded | batched
    threads: int = 1
    throttle: int | None = None
    sync_every: int = 0  # 1 = every iteration, 0 = only at the end
    streams: str = "shared"
    batch: int = 1

    @property
    def label(self) -> str:
        if self.kind == "batched":
            return f"batched B={self.batch}, 1 thread"
        sync = {1: "sync every", 0: "sync at end"}.get(self.sync_every, f"sync every {self.sync_every}")
        streams = ", per-thread streams" if self.streams == "per-thread" else ""
        return f"{self.threads} thread{'' if self.threads == 1 else 's'}, {self.throttle_label}, {sync}{streams}"

    @property
    def control(self) -> str:
        """The concurrency control alone (one line per control in the figures)."""
        if self.kind == "batched":
            return f"batched B={self.batch}"
        return self.throttle_label + (" + per-thread streams" if self.streams == "per-thread" else "")

    @property
    def throttle_label(self) -> str:
        """The throttle in words: no limit, a global lock (1) or a semaphore of k."""
        if self.throttle is None:
            return "no limit"
        return "global lock" if self.throttle == 1 else f"semaphore {self.throttle}"

    @property
    def sync_label(self) -> str:
        return {1: "every", 0: "end"}.get(self.sync_every, str(self.sync_every))

    def per_request_steps(self) -> int:
        """Requests one step (one iteration of the runner) serves."""
        return self.batch if self.kind == "batched" else 1

    def iterations(self, requests: int) -> int:
        """Runner iterations per thread that serve ``requests`` requests in all."""
        per = self.batch if self.kind == "batched" else self.threads
        if requests % per:
            raise ValueError(f"requests={requests} is not a multiple of {per} ({self.label})")
        return requests // per

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "threads": self.threads,
            "throttle": self.throttle,
            "sync_every": self.sync_every,
            "streams": self.streams,
            "batch": self.batch,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Candidate:
        return cls(**{k: d[k] for k in ("kind", "threads", "throttle", "sync_every", "streams", "batch")})


def parse_axis(name: str, values: Any, kind: str) -> list[Any]:
    """One grid option as a list: ``"1,2,4"`` or ``[1, 2, 4]``; ``kind`` is threads|throttle|sync|streams|batch."""
    if isinstance(values, str):
        items: list[Any] = [v.strip() for v in values.split(",") if v.strip()]
    elif isinstance(values, (list, tuple)):
        items = list(values)
    else:
        raise ConfigError(param=name, value=values, why="give a comma-separated list")
    if not items:
        raise ConfigError(param=name, why="needs at least one value")
    out: list[Any] = []
    for v in items:
        text = str(v).strip().lower()
        if kind == "streams":
            if text not in ("shared", "per-thread"):
                raise ConfigError(param=name, value=v, why="must be shared or per-thread")
            val: Any = text
        elif kind == "throttle" and text in ("none", "off"):
            val = None
        elif kind == "sync" and text in SYNC_WORDS:
            val = SYNC_WORDS[text]
        else:
            try:
                val = int(text)
            except ValueError:
                allowed = {
                    "threads": "integers >= 1",
                    "batch": "integers >= 1",
                    "throttle": "none or integers >= 1",
                    "sync": "every, end or integers >= 1",
                }[kind]
                raise ConfigError(param=name, value=v, why=f"must be {allowed}") from None
            if val < 1:
                raise ConfigError(param=name, value=v, why="must be >= 1")
        if val in out:
            raise ConfigError(param=name, why=f"{v!r} is listed twice")
        out.append(val)
    return out


def default_axes(device: str, workload: str) -> dict[str, list[Any]]:
    """Per-backend defaults: streams only where the backend has them, batching where the workload can."""
    backend = get_backend(device)
    streams = ["shared", "per-thread"] if backend.has_streams else ["shared"]
    batch = [8, 32] if get_workload(workload).batched is not None else []
    return {"threads": [1, 2, 4, 8], "throttle": [None, 1, 2], "sync": [1, 20, 0], "streams": streams, "batch": batch}


def check_workload(name: str) -> None:
    names = [w.name for w in list_workloads() if w.kind == "workload" and "@" not in w.name]
    if name not in names:
        raise ConfigError(param="workload", value=name, why=f"unknown; registered: {', '.join(names)}")


def build_grid(
    device: str,
    workload: str,
    *,
    threads: Sequence[int],
    throttle: Sequence[int | None],
    sync: Sequence[int],
    streams: Sequence[str],
    batch: Sequence[int],
    batch_given: bool = False,
) -> list[Candidate]:
    """Every candidate of the grid, in a fixed order (threaded first, then batched).

    A throttle k >= threads is the same as no limit and is left out for that
    thread count (k = 1 at one thread too). Refused, one line each: per-thread
    streams on a backend without streams; batch sizes for a workload without a
    batched form (when asked for explicitly); a throttle larger than every thread count.
    """
    backend = get_backend(device)
    if "per-thread" in streams and not backend.has_streams:
        raise ConfigError(
            param="streams",
            value="per-thread",
            why=f"the {backend.kind} backend has no streams in this torch build; use shared",
        )
    wl = get_workload(workload)
    if batch and wl.batched is None:
        if batch_given:
            raise ConfigError(param="batch_sizes", why=f"workload {workload!r} declares no batched form; leave it out")
        batch = []
    limits = [k for k in throttle if k is not None]
    if limits and max(limits) >= max(threads) and max(threads) > 1:
        bad = [k for k in limits if k >= max(threads)]
        raise ConfigError(
            param="throttle",
            value=bad[0],
            why=f"not below the largest thread count ({max(threads)}), so it limits nothing",
        )
    grid: list[Candidate] = []
    for t in threads:
        for k in throttle:
            if k is not None and k >= t:
                continue
            for s in sync:
                for st in streams:
                    grid.append(Candidate("threaded", t, k, s, st))
    for b in batch:
        grid.append(Candidate("batched", 1, None, 0, "shared", b))
    if not grid:
        raise ConfigError("the grid is empty: give at least one thread count")
    return grid


def request_unit(grid: Sequence[Candidate]) -> int:
    """The smallest number of requests every candidate can serve evenly (lcm of threads and batch sizes)."""
    unit = 1
    for c in grid:
        unit = math.lcm(unit, c.batch if c.kind == "batched" else c.threads)
    return unit


def base_config(
    device: str, workload: str, size: int, dtype: str, params: dict[str, Any] | None, plugins: Sequence[str] = ()
) -> StressConfig:
    """The fields every candidate shares, validated now (``params`` only where StressConfig has it)."""
    extra: dict[str, Any] = {}
    if params:
        if "params" not in StressConfig.__dataclass_fields__:
            raise ConfigError(param="params", why="this mpslab's StressConfig has no workload parameters")
        extra["params"] = dict(params)
    return StressConfig(
        threads=1,
        iterations=1,
        sync_every=0,
        workload=workload,
        size=size,
        dtype=dtype,
        device=device,
        plugins=tuple(plugins),
        verify=True,
        warmup=1,
        **extra,
    )
