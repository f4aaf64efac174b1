"""Evidence collected around one run of a probe: torch.profiler names and allocator counters.

What it is: ``Collector``, a context manager that starts ``torch.profiler`` (on every thread
where this torch can) and reads ``torch.cuda.memory_stats`` before and after, turning both into
an ``Evidence``; ``warm_profiler`` (kineto wants its first start in the calling thread) and
``cuda_stats`` (the cumulative counters that count as evidence). Kineto's start/stop chatter
on stderr is filtered out here, where the profiler starts (``quiet``).

What it is not: the judgement of what evidence is enough (``status.Need``) nor the probes'
own observations (their ``ProbeOutcome.facts``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from mpslab.run.backends import Backend
from mpslab.studies.probes.quiet import kineto_quiet
from mpslab.studies.probes.status import Evidence

__all__ = ["CUDA_STAT_KEYS", "Collector", "cuda_stats", "warm_profiler"]

# memory_stats counters whose increase during a probe is evidence (cumulative counters only).
CUDA_STAT_KEYS = (
    "allocation.all.allocated",
    "allocation.all.freed",
    "segment.all.allocated",
    "segment.all.freed",
    "num_alloc_retries",
    "num_ooms",
    "num_sync_all_streams",
    "num_device_alloc",
    "num_device_free",
)


def cuda_stats(backend: Backend) -> dict[str, int]:
    if backend.kind != "cuda":
        return {}
    stats = backend.api.memory_stats(backend.index)
    return {k: int(stats[k]) for k in CUDA_STAT_KEYS if k in stats}


def _experimental_all_threads() -> Any:
    """A profiler config that records ops on every thread, where this torch has one."""
    try:
        from torch._C._profiler import _ExperimentalConfig

        return _ExperimentalConfig(profile_all_threads=True)
    except Exception:  # older torch: the profiler sees its own thread only
        return None


_PROFILER_WARM = 0  # activities the profiler was first started with in the calling thread


def _activities(backend: Backend) -> list[Any]:
    acts = [torch.profiler.ProfilerActivity.CPU]
    if backend.kind == "cuda" and torch.profiler.ProfilerActivity.CUDA in torch.profiler.supported_activities():
        acts.append(torch.profiler.ProfilerActivity.CUDA)
    return acts


def warm_profiler(backend: Backend) -> None:
    """Start the profiler once in the calling thread: kineto wants its first start there."""
    global _PROFILER_WARM
    acts = _activities(backend)
    if _PROFILER_WARM >= len(acts):
        return
    _PROFILER_WARM = len(acts)
    try:
        prof = torch.profiler.profile(activities=acts)
        with kineto_quiet():
            prof.__enter__()
        with kineto_quiet():
            prof.__exit__(None, None, None)
    except Exception:  # the collector reports an unusable profiler itself
        pass


class Collector:
    """Collects evidence around a block: profiler names, allocator counter increases."""

    def __init__(self, backend: Backend, profile: bool = True, all_threads: bool = True) -> None:
        self.backend = backend
        self.profile = profile
        self.all_threads = all_threads  # off: the profiler's own thread only, but with memory events
        self.evidence = Evidence()
        self._prof: Any = None
        self._before: dict[str, int] = {}

    def __enter__(self) -> Collector:
        try:
            self._before = cuda_stats(self.backend)
        except Exception as exc:
            self.evidence.notes.append(f"memory_stats unavailable: {type(exc).__name__}: {exc}")
        if not self.profile:
            return self
        activities = _activities(self.backend)
        config = _experimental_all_threads() if self.all_threads else None
        if self.all_threads and config is None:
            self.evidence.notes.append("profiler records the probe's own thread only (no profile_all_threads)")
        try:
            kwargs: dict[str, Any] = {"activities": activities, "profile_memory": True}
            if config is not None:
                kwargs["experimental_config"] = config
            self._prof = torch.profiler.profile(**kwargs)
            with kineto_quiet():
                self._prof.__enter__()
        except Exception as exc:
            self._prof = None
            self.evidence.notes.append(f"profiler unavailable: {type(exc).__name__}: {exc}")
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._prof is not None:
            try:
                with kineto_quiet():
                    self._prof.__exit__(None, None, None)
                self._read(self._prof.events())
            except Exception as e:
                self.evidence.notes.append(f"profiler failed: {type(e).__name__}: {e}")
        try:
            after = cuda_stats(self.backend)
            for k, v in after.items():
                self.evidence.stats[k] = v - self._before.get(k, 0)
        except Exception as e:
            self.evidence.notes.append(f"memory_stats unavailable: {type(e).__name__}: {e}")

    def _read(self, events: Iterable[Any]) -> None:
        calls = self.evidence.calls
        allocs = frees = 0
        for e in events:
            name = e.name
            # an allocation made inside an op is that op's self memory; a free outside any op is a [memory] event
            prefix = "" if name == "[memory]" else "self_"
            usage = (getattr(e, prefix + "cpu_memory_usage", 0) or 0) + (
                getattr(e, prefix + "device_memory_usage", 0) or 0
            )
            if usage > 0:
                allocs += 1
            elif usage < 0:
                frees += 1
            cur = calls.setdefault(name, [0, set()])
            cur[0] += 1
            cur[1].add(getattr(e, "thread", 0))
        self.evidence.stats["profiler.memory_alloc_events"] = allocs
        self.evidence.stats["profiler.memory_free_events"] = frees
