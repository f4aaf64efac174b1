"""The edge-case runner: each case alone and beside working threads, then health and isolation.

What it is: ``run_case`` (one case on one backend: run alone, then while T background threads
compute checked matmuls; each run in a watched thread with a timeout; the canary after each;
``pass`` only if both runs met the expectation, the background threads stayed right and the
canary held), ``run_edges`` (every case, or those named, on one backend; ``not run`` rows when
it is absent) and ``edge_failures`` (the failed rows with their tracebacks).

What it is not: the cases and their expectations (``catalogue``) nor the health checks
themselves (``health``).
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Sequence
from typing import Any

import pandas as pd
import torch

from mpslab.run.backends import Backend, backend_named
from mpslab.studies.child import grace
from mpslab.studies.edges.catalogue import CASES, get_case
from mpslab.studies.edges.expect import FAIL, NOT_APPLICABLE, NOT_RUN, PASS, Attempt, CaseContext, EdgeCase
from mpslab.studies.edges.health import Background, canary

__all__ = ["edge_failures", "run_case", "run_edges"]


def _attempt(case: EdgeCase, ctx: CaseContext) -> Attempt:
    box: dict[str, Any] = {}

    def body() -> None:
        try:
            box["summary"] = case.action(ctx)
        except BaseException as exc:  # noqa: BLE001 - the row records it
            box["exc"] = exc
            box["tb"] = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))

    t = threading.Thread(target=body, name=f"mpslab-edge-{case.name}", daemon=True)
    t.start()
    t.join(ctx.timeout + grace(ctx.timeout))
    if t.is_alive():
        return Attempt("hang", f"no answer within {ctx.timeout + grace(ctx.timeout):.1f} s")
    if "exc" in box:
        exc = box["exc"]
        first = str(exc).splitlines()[0] if str(exc) else ""
        return Attempt("raised", f"{type(exc).__name__}: {first}", exc, box["tb"])
    return Attempt("completed", str(box.get("summary", "")))


_COLUMNS = [
    "case",
    "group",
    "backend",
    "device",
    "does",
    "expected",
    "observed",
    "observed_with_others",
    "expected_met_alone",
    "expected_met_with_others",
    "isolated",
    "healthy",
    "status",
    "detail",
    "traceback",
    "seconds",
]


def run_case(
    case: EdgeCase, backend: Backend, *, threads: int = 4, size: int = 64, timeout: float = 120.0, pause: float = 0.0
) -> dict[str, Any]:
    """One case on one backend: alone, then with ``threads`` background threads; one tidy row.

    ``pause``: seconds each background thread rests between its checked matmuls
    (0 = flat out; a little leaves CPU to child processes on small machines).
    """
    exp = case.expectation(backend)
    row: dict[str, Any] = {
        "case": case.name,
        "group": case.group,
        "backend": backend.kind,
        "device": str(backend.device),
        "does": case.does,
        "expected": exp.describe(),
    }
    if exp.outcome == "not applicable":
        row.update(
            observed="",
            observed_with_others="",
            expected_met_alone=None,
            expected_met_with_others=None,
            isolated=None,
            healthy=None,
            status=NOT_APPLICABLE,
            detail=exp.note,
            traceback="",
            seconds=0.0,
        )
        return row
    ctx = CaseContext(backend, threads, size, timeout, run_edges=run_edges)
    t0 = time.perf_counter()
    alone = _attempt(case, ctx)
    healthy_alone, health_alone = canary(backend)
    bg = Background(backend, threads, size, timeout, pause)
    with bg:
        together = _attempt(case, ctx)
    healthy_after, health_after = canary(backend)
    met_alone, met_together = exp.met_by(alone), exp.met_by(together)
    healthy = healthy_alone and healthy_after
    ok = met_alone and met_together and bg.ok and healthy
    problems = []
    for label, att, met in (("alone", alone, met_alone), ("with others", together, met_together)):
        if not met:
            problems.append(
                f"{label}: expected {exp.describe()}, observed {att.observed()}" + (f"\n{att.tb}" if att.tb else "")
            )
    if not bg.ok:
        problems.append(f"isolation: {bg.describe()}")
    if not healthy:
        problems.append(f"health: after alone: {health_alone}; after with others: {health_after}")
    row.update(
        observed=alone.observed(),
        observed_with_others=together.observed(),
        expected_met_alone=met_alone,
        expected_met_with_others=met_together,
        isolated=bg.ok,
        healthy=healthy,
        status=PASS if ok else FAIL,
        detail=f"{bg.describe()}; {health_alone} after the alone run, {health_after} after the other",
        traceback="\n\n".join(problems),
        seconds=time.perf_counter() - t0,
    )
    return row


def _check_params(threads: Any, size: Any, timeout: Any, pause: Any = 0.0) -> None:
    for name, value, minimum in (("threads", threads, 1), ("size", size, 8)):
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"{name}={value!r}: must be an integer >= {minimum}")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ValueError(f"timeout={timeout!r}: must be a number of seconds > 0")
    if isinstance(pause, bool) or not isinstance(pause, (int, float)) or not 0 <= pause <= 1:
        raise ValueError(f"pause={pause!r}: must be a number of seconds between 0 and 1")


def run_edges(
    device: str = "cpu",
    *,
    threads: int = 4,
    size: int = 64,
    timeout: float = 120.0,
    pause: float = 0.0,
    cases: Sequence[str] | None = None,
    backend: Backend | None = None,
) -> pd.DataFrame:
    """Every case (or those named) on one backend; a tidy frame, one row per case.

    A backend that is not available gives ``not run`` rows (``not applicable`` where
    the case does not exist on it).
    """
    _check_params(threads, size, timeout, pause)
    if isinstance(cases, str):
        cases = [cases]
    selected = list(CASES) if cases is None else [get_case(c) for c in cases]
    if backend is None:
        backend = backend_named(device)
    rows = []
    if not backend.is_available():
        for c in selected:
            exp = c.expectation(backend)
            na = exp.outcome == "not applicable"
            rows.append(
                {
                    "case": c.name,
                    "group": c.group,
                    "backend": backend.kind,
                    "device": None,
                    "does": c.does,
                    "expected": exp.describe(),
                    "status": NOT_APPLICABLE if na else NOT_RUN,
                    "detail": exp.note if na else f"the {backend.kind} backend is not available on this machine",
                }
            )
    else:
        rows = [run_case(c, backend, threads=threads, size=size, timeout=timeout, pause=pause) for c in selected]
    df = pd.DataFrame(rows)
    for col in _COLUMNS:
        if col not in df.columns:
            df[col] = None
    df = df[_COLUMNS]
    df["env_torch"] = torch.__version__
    return df


def edge_failures(df: pd.DataFrame) -> pd.DataFrame:
    """The failed rows with what went wrong (tracebacks included)."""
    return df.loc[
        df["status"] == FAIL,
        ["case", "backend", "expected", "observed", "observed_with_others", "isolated", "healthy", "traceback"],
    ].reset_index(drop=True)
