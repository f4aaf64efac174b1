"""The edge cases about mpslab's own inputs: refused configurations and runner parameters.

What it is: the actions of the "harness inputs" group. ``config_case(changes)`` builds a
``StressConfig`` with the rest valid; the others hand ``StressConfig.from_dict``,
``run_stress``, ``run_probes`` and ``run_edges`` something they must refuse with one line
naming what was wrong. ``streams_expect`` is the one expectation that depends on the backend
instance (whether this torch gives it streams).

What it is not: the list of refused values and their expectations (``catalogue``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from mpslab.run.backends import Backend
from mpslab.run.config import ConfigError, StressConfig
from mpslab.run.runner import run_stress
from mpslab.studies.edges.expect import CaseContext, Expect, completes, raises

__all__ = [
    "config_case",
    "from_dict_unknown",
    "run_edges_bad",
    "run_probes_bad",
    "run_stress_not_config",
    "streams_expect",
]


def config_case(changes: Mapping[str, Any]) -> Callable[[CaseContext], str]:
    def action(ctx: CaseContext) -> str:
        params: dict[str, Any] = {"threads": 2, "iterations": 2, "size": 8, "device": str(ctx.device)}
        params.update(changes)
        cfg = StressConfig(**params)
        return f"config accepted ({', '.join(f'{k}={getattr(cfg, k)!r}' for k in changes)})"

    return action


def from_dict_unknown(ctx: CaseContext) -> str:
    StressConfig.from_dict({"thread": 4, "device": str(ctx.device)})
    return "config accepted"


def run_stress_not_config(ctx: CaseContext) -> str:
    run_stress({"threads": 2})  # type: ignore[arg-type]
    return "run_stress accepted a dict"


def run_probes_bad(ctx: CaseContext) -> str:
    from mpslab.studies.probes.runner import run_probes

    run_probes(str(ctx.device), threads=0)
    return "run_probes accepted threads=0"


def run_edges_bad(ctx: CaseContext) -> str:
    if ctx.run_edges is None:
        raise RuntimeError("run_edges_bad needs the runner in its context (CaseContext.run_edges)")
    ctx.run_edges(str(ctx.device), threads=0)
    return "run_edges accepted threads=0"


def streams_expect(b: Backend) -> Expect:
    if b.has_streams:
        return completes(f"the {b.kind} backend has streams in this torch")
    return raises(ConfigError, "streams='per-thread'", note=f"the {b.kind} backend has no streams in this torch")
