"""The coverage runner: run the catalogue's probes on a backend and decide each row's status.

What it is: ``run_probe`` (one probe on one backend: alone, then from T threads, each run in a
watched thread with a timeout and wrapped in an evidence ``Collector``; then ``covered``,
``exercised`` or ``failed`` by the plan's ``Need``), ``run_probes`` (every probe on one
backend; ``not run`` rows when it is absent), ``coverage_matrix`` (every path x cpu, cuda, mps)
and ``coverage_table`` (the matrix as path x backend status text).

What it is not: the list of probes and what each needs (``catalogue``) nor the probe actions
(``paths``).
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import torch

from mpslab.run.backends import Backend, backend_named, get_backend, resolve_device
from mpslab.studies.child import grace
from mpslab.studies.probes.catalogue import PROBES, get_probe
from mpslab.studies.probes.evidence import Collector, warm_profiler
from mpslab.studies.probes.probe import Probe, ProbeContext
from mpslab.studies.probes.status import (
    BACKEND_KINDS,
    COVERED,
    EXERCISED,
    FAILED,
    NOT_APPLICABLE,
    NOT_RUN,
    Evidence,
    Need,
)

__all__ = ["coverage_matrix", "coverage_table", "run_probe", "run_probes"]


def _check_params(threads: Any, size: Any, chunk_mb: Any, timeout: Any) -> None:
    for name, value, minimum in (("threads", threads, 1), ("size", size, 8), ("chunk_mb", chunk_mb, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"{name}={value!r}: must be an integer >= {minimum}")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ValueError(f"timeout={timeout!r}: must be a number of seconds > 0")


def _select(probes: Sequence[str] | None) -> list[Probe]:
    if probes is None:
        return list(PROBES)
    if isinstance(probes, str):
        probes = [probes]
    return [get_probe(p) for p in probes]


def _base_row(probe: Probe, kind: str, device: str | None) -> dict[str, Any]:
    return {
        "path": probe.path,
        "title": probe.title,
        "seed": probe.seed,
        "what": probe.what,
        "backend": kind,
        "device": device,
    }


def _evidence_text(need: Need | None, ev: Evidence, by_mode: Mapping[str, Evidence]) -> str:
    shown = need.names() if need else set()
    parts = []
    for name in sorted(ev.calls):
        if name in shown or (name.startswith("cuda") or (name.startswith("cu") and name[2:3].isupper())):
            n, threads = ev.calls[name]
            parts.append(f"{name} x{n} on {len(threads)} thread(s)")
    needed_stats = {k for k, _ in need.stats} if need else set()
    for k, v in sorted(ev.stats.items()):
        if v and (not k.startswith("profiler.") or k in needed_stats):
            parts.append(f"{k} +{v}")
    for mode, e in by_mode.items():
        parts += [f"[{mode}] {f}" for f in e.facts]
    parts += [f"note: {n}" for n in ev.notes]
    return "; ".join(parts)


def run_probe(
    probe: Probe,
    backend: Backend,
    *,
    threads: int = 4,
    size: int = 64,
    chunk_mb: int = 32,
    timeout: float = 120.0,
    profile: bool = True,
) -> dict[str, Any]:
    """Run one probe on one backend, alone then from ``threads`` threads; one tidy row."""
    kind = backend.kind
    row = _base_row(probe, kind, str(backend.device))
    plan = probe.plan(kind)
    row.update({"targets": plan.targets, "threads": threads})
    reason = plan.not_applicable(backend)
    if reason is not None:
        row.update(
            status=NOT_APPLICABLE,
            evidence="",
            check="",
            error="",
            explanation=f"Not applicable on {kind}: {reason}.",
            seconds=0.0,
        )
        return row
    t0 = time.perf_counter()
    by_mode: dict[str, Evidence] = {}
    checks: list[str] = []
    error = ""
    for mode, n in (("alone", 1), ("threads", threads)):
        ctx = ProbeContext(backend, n, size, chunk_mb, timeout, mode)
        box: dict[str, Any] = {}

        def body() -> None:
            collector = Collector(backend, profile=profile, all_threads=n > 1)
            try:
                with collector:
                    box["outcome"] = plan.action(ctx)  # type: ignore[misc]
            except BaseException as exc:  # noqa: BLE001 - the row records it
                box["error"] = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
                box["error_line"] = f"{type(exc).__name__}: {exc}"
            box["evidence"] = collector.evidence

        runner = threading.Thread(target=body, name=f"mpslab-probe-{probe.path}-{mode}", daemon=True)
        runner.start()
        runner.join(timeout + grace(timeout))
        if runner.is_alive():
            error = f"[{mode}] hang: no answer within {timeout + grace(timeout):.1f} s"
            break
        ev = box.get("evidence", Evidence())
        if "outcome" in box:
            ev.facts = list(box["outcome"].facts) + ev.facts
            checks.append(f"[{mode}] {box['outcome'].check}")
        by_mode[mode] = ev
        if "error" in box:
            error = f"[{mode}] {box['error']}"
            row["error_line"] = f"[{mode}] {box['error_line']}"
            break
    merged = Evidence()
    for ev in by_mode.values():
        merged = merged.merge(ev)
    row.update(
        check=" ".join(checks),
        evidence=_evidence_text(plan.need, merged, by_mode),
        error=error,
        seconds=time.perf_counter() - t0,
    )
    if error:
        row["status"] = FAILED
        row["explanation"] = f"Failed: {row.get('error_line', error.splitlines()[0])}"
    elif plan.need is None:
        row["status"] = EXERCISED
        row["explanation"] = f"Targets: {plan.targets}. No evidence available: {plan.reason}."
    else:
        missing = plan.need.missing(merged)
        if missing:
            row["status"] = EXERCISED
            row["explanation"] = (
                f"Targets: {plan.targets}. Evidence named ({plan.need.describe()}) not complete: {'; '.join(missing)}."
            )
        else:
            row["status"] = COVERED
            row["explanation"] = (
                f"Targets: {plan.targets}. Evidence ({plan.need.describe()}) "
                "collected in this run." + (f" Note: {plan.reason}." if plan.reason else "")
            )
    row.pop("error_line", None)
    return row


def _not_run_rows(probes: list[Probe], kind: str, why: str) -> list[dict[str, Any]]:
    rows = []
    backend = get_backend(kind)
    for p in probes:
        row = _base_row(p, kind, None)
        plan = p.plan(kind)
        reason = plan.not_applicable(backend)
        status = NOT_APPLICABLE if reason is not None else NOT_RUN
        row.update(
            targets=plan.targets,
            threads=0,
            status=status,
            evidence="",
            check="",
            error="",
            seconds=0.0,
            explanation=(
                f"Not applicable on {kind}: {reason}."
                if reason is not None
                else f"Not run: {why}. Targets: {plan.targets}."
            ),
        )
        rows.append(row)
    return rows


def _frame(rows: list[dict[str, Any]], env: Mapping[str, Any] | None = None) -> pd.DataFrame:
    cols = [
        "path",
        "title",
        "seed",
        "backend",
        "device",
        "status",
        "evidence",
        "check",
        "explanation",
        "what",
        "targets",
        "threads",
        "seconds",
        "error",
    ]
    df = pd.DataFrame(rows)
    for c in cols:
        if c not in df.columns:
            df[c] = ""
    df = df[cols]
    df["env_torch"] = torch.__version__
    if env:
        for k, v in env.items():
            df[f"env_{k}"] = v
    return df


def run_probes(
    device: str = "cpu",
    *,
    threads: int = 4,
    size: int = 64,
    chunk_mb: int = 32,
    timeout: float = 120.0,
    probes: Sequence[str] | None = None,
    backend: Backend | None = None,
    profile: bool = True,
) -> pd.DataFrame:
    """Every probe (or those named) on one backend; a tidy frame, one row per path.

    ``backend`` injects an adapter (tests use an MPS adapter over a fake ``torch.mps``);
    otherwise ``device`` names it (``auto`` resolves to mps, else cuda, else cpu).
    A backend that is not available gives ``not run`` / ``not applicable`` rows.
    """
    _check_params(threads, size, chunk_mb, timeout)
    selected = _select(probes)
    if backend is None:
        backend = backend_named(device)
    if not backend.is_available():
        return _frame(
            _not_run_rows(selected, backend.kind, f"the {backend.kind} backend is not available on this machine")
        )
    if profile:
        warm_profiler(backend)
    rows = [
        run_probe(p, backend, threads=threads, size=size, chunk_mb=chunk_mb, timeout=timeout, profile=profile)
        for p in selected
    ]
    try:
        name = backend.device_name()
    except Exception:
        name = None
    return _frame(rows, {"device_name": name})


def coverage_matrix(
    devices: Sequence[str] = ("cpu",),
    *,
    threads: int = 4,
    size: int = 64,
    chunk_mb: int = 32,
    timeout: float = 120.0,
    probes: Sequence[str] | None = None,
    backends: Mapping[str, Backend] | None = None,
    profile: bool = True,
) -> pd.DataFrame:
    """The coverage matrix as a tidy frame: every path x every backend kind (cpu, cuda, mps).

    Kinds named in ``devices`` (or injected through ``backends``) are run; the others get
    ``not run`` rows (or ``not applicable`` where the concept does not exist there).
    """
    _check_params(threads, size, chunk_mb, timeout)
    if isinstance(devices, str):
        devices = [devices]
    selected = _select(probes)
    wanted: dict[str, Backend] = {}
    for d in devices:
        try:
            b = get_backend(resolve_device(str(d).strip().lower()))
        except (RuntimeError, ValueError) as exc:
            raise ValueError(f"devices: {d!r}: {exc}") from None
        wanted.setdefault(b.kind, b)
    wanted.update(dict(backends or {}))
    frames = []
    for kind in BACKEND_KINDS:
        b = wanted.get(kind)
        if b is None:
            why = (
                "not requested in this run"
                if get_backend(kind).is_available()
                else f"the {kind} backend is not available on this machine"
            )
            frames.append(_frame(_not_run_rows(selected, kind, why)))
        else:
            frames.append(
                run_probes(
                    threads=threads,
                    size=size,
                    chunk_mb=chunk_mb,
                    timeout=timeout,
                    probes=[p.path for p in selected],
                    backend=b,
                    profile=profile,
                )
            )
    return pd.concat(frames, ignore_index=True)


def coverage_table(df: pd.DataFrame) -> pd.DataFrame:
    """path x backend status table (the matrix as text), rows in catalogue order."""
    order = [p.path for p in PROBES if p.path in set(df["path"])]
    cols = [k for k in BACKEND_KINDS if k in set(df["backend"])]
    table = df.drop_duplicates(["path", "backend"], keep="last").pivot(index="path", columns="backend", values="status")
    return table.reindex(index=order, columns=cols)
