"""The serial-replay oracle: each step's output fingerprinted on the device, replayed, compared.

A step returns its output tensor; the runner hands it to an ``OutputLog``. In
``verify="fingerprint"`` mode (the default) the log keeps, per iteration, a
fingerprint computed on the device with no host synchronisation: the output is
flattened (logical row-major order) and cast to the accumulation dtype (float64;
float32 on MPS, which has no float64); its non-finite entries are split off into
a code vector (0 finite, 1 NaN, 2 +Inf, 3 -Inf) and zeroed in the value vector;
both vectors are multiplied by a weight matrix ``W`` of ``K + 1`` rows: ``K``
rows of fixed pseudo-random weights (magnitude uniform in [0.5, 1.5), random
sign, generated on the device from a seed that depends only on the numel, cached
per numel) and one row of ones (the plain sum of the finite values, so a row
is still readable as a checksum). The shape and dtype of each output are recorded on the host (one
entry per change, so nothing per iteration). In ``verify="full"`` mode the log
keeps a device copy of every output instead (bounded by ``full_cap_mb``).

After the timed region the thread's work is replayed serially with the same
generator seed and compared (``check_thread``):

* shape or dtype differ: mismatch;
* any code row differs by more than 0.25 (a single moved, added or removed NaN or
  Inf changes every code row by at least 0.5): mismatch — so NaN or Inf is
  accepted only at the same positions as in the replay;
* a value row differs by more than ``rtol * max(||expected||_2, scale)``
  (``rtol`` from ``TOLERANCE`` for the output's and the config's dtype, the
  looser; integer and bool outputs: exact up to the accumulation's rounding;
  ``scale`` the workload's typical output norm; the plain-sum row also allows
  ``rtol * |expected sum|``): mismatch.

``full`` compares element by element: ``|got - expected| <= rtol * (|expected| +
ref)`` with ``ref`` the expected output's RMS (or ``scale / sqrt(numel)``,
the larger), NaN only where the replay has NaN, Inf only where it has the same Inf.

This module is not the runner (``mpslab.run.runner`` owns threads, timing and
errors) and does not record outputs during the run (``mpslab.run.fingerprint``
does): it replays, compares and says what a mismatch is.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from mpslab.run.fingerprint import Fingerprinter, FingerprintLog, FullLog, K, accumulation_dtype, check_output
from mpslab.run.workloads import WorkerContext, Workload

__all__ = [
    "VERIFY_MODES",
    "TOLERANCE",
    "K",
    "Mismatch",
    "Fingerprinter",
    "FingerprintLog",
    "FullLog",
    "verify_mode",
    "thread_seed",
    "replay",
    "check_thread",
    "compare",
    "detects",
    "output_nbytes",
    "full_refusal",
    "rtol_for",
]

VERIFY_MODES = ("fingerprint", "full", "off")
CODE_TOL = 0.25  # every code row moves by >= 0.5 when one NaN/Inf appears, vanishes or changes kind
MAX_REPORTED = 50  # mismatches kept in full; all are counted

# Relative tolerance per dtype, applied to max(||expected||_2, workload scale).
# Same device, same kernels: differences come only from reduction order, far below these.
TOLERANCE = {"float64": 1e-9, "float32": 1e-4, "float16": 1e-2, "bfloat16": 5e-2}
_EXACT = {torch.float64: 1e-12, torch.float32: 1e-6}  # integer/bool outputs: the accumulation's rounding only


def verify_mode(value: Any) -> str | None:
    """``"fingerprint"``, ``"full"`` or ``"off"`` for a valid ``verify`` value (True/False are aliases), else None."""
    if value is True:
        return "fingerprint"
    if value is False:
        return "off"
    return value if isinstance(value, str) and value in VERIFY_MODES else None


def thread_seed(seed: int, thread: int) -> int:
    """The generator seed of ``thread`` in a run with base ``seed`` (stable across processes)."""
    return (seed * 1_000_003 + thread * 7_919 + 1) % (2**63 - 1)


@dataclass
class Mismatch:
    thread: int
    iteration: int
    expected: float  # plain sum of the finite values of the replay's output
    got: float  # the same of the concurrent run's output
    what: str = "values"  # values | non-finite | shape | dtype
    detail: str = ""


def rtol_for(out_dtype: torch.dtype, config_dtype: str, acc: torch.dtype) -> float:
    if not (out_dtype.is_floating_point or out_dtype.is_complex):
        return _EXACT[acc]
    return max(TOLERANCE.get(str(out_dtype).removeprefix("torch."), 0.0), TOLERANCE[config_dtype])


# --------------------------------------------------------------------------- replay and comparison


def replay(
    workload: Workload,
    state: Any,
    config: Any,
    thread: int,
    iterations: int,
    each: Callable[[int, torch.Tensor], None],
    tick: Callable[[], Any] | None = None,
) -> None:
    """Thread ``thread``'s steps recomputed serially on the default stream; ``each(i, output)`` per step.

    It computes under the process-wide torch settings as they are when it is called: the runner sets back
    the ones the run changed first (``mpslab.run.globalstate``). ``tick()``, if given, after each step.
    """
    device = torch.device(config.device)
    ctx = WorkerContext(
        thread,
        device,
        config.torch_dtype,
        config.size,
        torch.Generator(device=device).manual_seed(thread_seed(config.seed, thread)),
        state,
        config.params,
    )
    for i in range(iterations):
        each(i, check_output(workload.step(ctx, i)))
        if tick is not None:
            tick()


def _sig_table(sigs: list[tuple[int, tuple[int, ...], torch.dtype]], n: int) -> list[tuple[int, int, tuple, Any]]:
    """Runs ``(first, end, shape, dtype)`` covering iterations ``0..n-1``."""
    ends = [s[0] for s in sigs[1:]] + [n]
    return [(a, min(b, n), shape, dtype) for (a, shape, dtype), b in zip(sigs, ends) if a < n]


def _per_iteration(table: list[tuple[int, int, tuple, Any]], n: int) -> list[tuple[tuple, Any]]:
    out: list[tuple[tuple, Any]] = [((), None)] * n
    for a, b, shape, dtype in table:
        out[a:b] = [(shape, dtype)] * (b - a)
    return out


def check_thread(
    workload: Workload,
    state: Any,
    config: Any,
    thread: int,
    log: Any,
    out: list[Mismatch],
    tick: Callable[[], Any] | None = None,
) -> tuple[int, int]:
    """Replay ``thread`` and compare with its log; append mismatches to ``out``. Returns (verified, mismatched).

    ``tick()``, if given, after each replayed step (a progress bar's update).
    """
    n = log.count
    if n == 0:
        return 0, 0
    scale = float(workload.scale(config.size))

    def replayed(each: Callable[[int, torch.Tensor], None]) -> None:
        replay(workload, state, config, thread, n, each, tick)

    if isinstance(log, FullLog):
        return n, _full_mismatches(log, replayed, config, scale, thread, out)
    fp = log.fp  # the run is over and synchronised: its weights are safe to read on the default stream
    exp_fp = torch.empty(n, 2 * (K + 1), device=fp.device, dtype=fp.acc)
    exp_norm = torch.empty(n, device=fp.device, dtype=fp.acc)
    exp_sig: list[tuple[tuple, Any]] = []

    def each(i: int, o: torch.Tensor) -> None:
        exp_fp[i] = fp.row(o)
        exp_norm[i] = fp.norm(o)
        exp_sig.append((tuple(o.shape), o.dtype))

    replayed(each)
    e = exp_fp.to("cpu", torch.float64).numpy()
    en = exp_norm.to("cpu", torch.float64).numpy()
    rtol = np.array([rtol_for(d, config.dtype, fp.acc) for _, d in exp_sig])
    g = log.host()
    found = compare(e, en, exp_sig, g, _per_iteration(_sig_table(log.sigs, n), n), rtol, scale)
    for i, what, detail in found[: max(0, MAX_REPORTED - len(out))]:
        out.append(Mismatch(thread, i, float(e[i, K]), float(g[i, K]), what, detail))
    return n, len(found)


def compare(
    e: np.ndarray,
    en: np.ndarray,
    exp_sig: list[tuple[tuple, Any]],
    g: np.ndarray,
    got_sig: list[tuple[tuple, Any]],
    rtol: np.ndarray,
    scale: float,
) -> list[tuple[int, str, str]]:
    """Expected fingerprints ``e`` (with norms ``en``) against observed ``g``: ``(iteration, what, detail)`` each."""
    ev, ec, gv, gc = e[:, : K + 1], e[:, K + 1 :], g[:, : K + 1], g[:, K + 1 :]
    ref = np.maximum(en, scale)
    tol = (rtol * ref)[:, None] * np.ones((1, K + 1))
    tol[:, K] = rtol * np.maximum(ref, np.abs(ev[:, K]))  # the plain sum: also relative to itself
    with np.errstate(invalid="ignore", divide="ignore"):
        dev_v = np.abs(gv - ev)
        bad_v = ~((dev_v <= tol) | (gv == ev))  # equal infinities (an overflowed sum) are equal
        bad_c = ~(np.abs(gc - ec) <= CODE_TOL)
        ratio = np.where(np.isfinite(dev_v), dev_v / tol, np.inf)
    found = []
    for i in range(len(e)):
        (es, ed), (gs, gd) = exp_sig[i], got_sig[i]
        if es != gs:
            found.append((i, "shape", f"shape {gs} where the replay gave {es}"))
        elif ed != gd:
            found.append((i, "dtype", f"dtype {gd} where the replay gave {ed}"))
        elif bad_c[i].any():
            found.append(
                (
                    i,
                    "non-finite",
                    f"NaN/Inf at other positions than the replay (code sum {gc[i, K]:g} "
                    f"vs {ec[i, K]:g}; NaN=1, +Inf=2, -Inf=3 each)",
                )
            )
        elif bad_v[i].any():
            found.append(
                (i, "values", f"fingerprint off by {float(np.nanmax(ratio[i])):.3g}x its tolerance (rtol {rtol[i]:g})")
            )
    return found


def detects(
    expected: torch.Tensor, got: torch.Tensor, config_dtype: str = "float32", scale: float = 0.0
) -> tuple[str, str] | None:
    """Whether the fingerprint tells ``got`` from ``expected``: ``(what, detail)``, or None when it cannot."""
    fp = Fingerprinter(expected.device)
    e = fp.row(expected).to("cpu", torch.float64).numpy()[None]
    g = fp.row(got).to("cpu", torch.float64).numpy()[None]
    en = np.array([float(fp.norm(expected))])
    rtol = np.array([rtol_for(expected.dtype, config_dtype, fp.acc)])
    found = compare(e, en, [(tuple(expected.shape), expected.dtype)], g, [(tuple(got.shape), got.dtype)], rtol, scale)
    return found[0][1:] if found else None


def _full_mismatches(
    log: FullLog, replayed: Callable, config: Any, scale: float, thread: int, out: list[Mismatch]
) -> int:
    """``verify="full"``: every kept output against its replay, element by element; returns how many differ."""
    acc = accumulation_dtype(log.outs[0].device)
    bad: list[int] = []

    def each(i: int, e: torch.Tensor) -> None:
        g = log.outs[i]
        what = detail = ""
        if tuple(e.shape) != tuple(g.shape):
            what, detail = "shape", f"shape {tuple(g.shape)} where the replay gave {tuple(e.shape)}"
        elif e.dtype != g.dtype:
            what, detail = "dtype", f"dtype {g.dtype} where the replay gave {e.dtype}"
        else:
            ea, ga = e.to(acc), g.to(acc)
            rtol = rtol_for(e.dtype, config.dtype, acc)
            fin = torch.nan_to_num(ea, nan=0.0, posinf=0.0, neginf=0.0)
            rms = float(torch.linalg.vector_norm(fin)) / math.sqrt(max(1, fin.numel()))
            ref = max(rms, scale / math.sqrt(max(1, fin.numel())))
            close = torch.isclose(ga, ea, rtol=rtol, atol=rtol * ref, equal_nan=True)
            wrong = int((~close).sum())
            if wrong:
                k = int((~close).reshape(-1).nonzero()[0])
                idx = tuple(int(v) for v in np.unravel_index(k, tuple(e.shape))) if e.dim() else ()
                nonfinite = ~close & ~(torch.isfinite(ga) & torch.isfinite(ea))
                what = "non-finite" if bool(nonfinite.any()) else "values"
                detail = (
                    f"{wrong} of {e.numel()} elements differ; first at {idx}: expected "
                    f"{float(ea.reshape(-1)[k])!r}, got {float(ga.reshape(-1)[k])!r}"
                )
        if what:
            bad.append(i)
            if len(out) < MAX_REPORTED:
                ef = float(torch.nan_to_num(e.to(acc), nan=0.0, posinf=0.0, neginf=0.0).sum())
                gf = float(torch.nan_to_num(g.to(acc), nan=0.0, posinf=0.0, neginf=0.0).sum())
                out.append(Mismatch(thread, i, ef, gf, what, detail))

    replayed(each)
    return len(bad)


def full_refusal(config: Any, nbytes: int) -> str | None:
    """The one-line refusal of ``verify="full"`` when threads x iterations x output bytes exceed ``full_cap_mb``."""
    kept = config.threads * config.iterations * nbytes
    if kept <= config.full_cap_mb * 2**20:
        return None
    return (
        f"verify='full': would keep {kept / 2**20:.1f} MiB of outputs ({config.threads} threads x "
        f"{config.iterations} iterations x {nbytes} bytes), above full_cap_mb={config.full_cap_mb:g}; "
        "use verify='fingerprint' or raise full_cap_mb"
    )


def output_nbytes(workload: Workload, config: Any) -> int | None:
    """Bytes of one step's output, found by running set-up and one step on the ``meta`` device.

    None when the workload cannot run there (data-dependent shapes, host reads...).
    """
    meta = torch.device("meta")
    try:
        state = None
        if workload.setup_fn is not None:
            state = workload.setup_fn(
                WorkerContext(-1, meta, config.torch_dtype, config.size, None, None, config.params)
            )
        o = workload.step(WorkerContext(0, meta, config.torch_dtype, config.size, None, state, config.params), 0)
        return int(o.numel()) * int(o.element_size()) if isinstance(o, torch.Tensor) else None
    except Exception:
        return None
