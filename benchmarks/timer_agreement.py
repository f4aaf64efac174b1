"""Timer agreement: ``mpslab.run.timing.measure`` against ``torch.utils.benchmark.Timer`` on the same op.

Both time the same callable in one process, interleaved round by round (the
order alternates), so clocks, caches and load fall on both alike:

  torch     ``Timer("fn()", globals=..., num_threads=torch.get_num_threads()).blocked_autorange()``:
            torch picks a block size ``n`` (it grows n tenfold until the timer's
            own cost, two device synchronisations, is <= 0.01% of the block or
            the block passes ``min_run_time``), then times blocks of n calls
            between two synchronisations for ``min_run_time`` s; per-call time =
            block time / n. GC is off during a block (``timeit`` does that).
  mpslab/1  ``measure(fn, device, number=1)``: every call between two
            synchronisations, so each sample carries one synchronisation round trip
            and the device idles between calls.
  mpslab/n  ``measure(fn, device, number=n)`` with torch's n of the same round.

Figures: the median per-call time of each, and the ratios mpslab/torch (median
over rounds, with min..max). The ops: the ``seed`` workload's step (randn ->
matmul -> sum) at ``--size`` and a plain matmul at ``--matmul-size``. Also the
bare cost of one synchronised empty sample (what mpslab/1 adds per call).

    python benchmarks/timer_agreement.py                  # cpu
    python benchmarks/timer_agreement.py --device cuda --rounds 7
    python benchmarks/timer_agreement.py --tiny
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402
from _common import bad_arg, load_average, machine_line  # noqa: E402
from torch.utils.benchmark import Timer  # noqa: E402

from mpslab.run.backends import get_backend  # noqa: E402
from mpslab.run.timing import SyncTimer, measure  # noqa: E402
from mpslab.run.workloads import WorkerContext, get_workload  # noqa: E402

AGREE = 0.05


def ops(device: torch.device, size: int, matmul_size: int) -> dict[str, callable]:
    ctx = WorkerContext(0, device, torch.float32, size, torch.Generator(device=device).manual_seed(1))
    step = get_workload("seed").step
    a = torch.randn(matmul_size, matmul_size, device=device)
    b = torch.randn(matmul_size, matmul_size, device=device)
    return {f"seed step, size {size}": lambda: step(ctx, 0), f"matmul {matmul_size}": lambda: torch.matmul(a, b)}


def one_round(fn, backend, min_run_time: float, repeats: int, torch_first: bool) -> dict[str, float]:
    out: dict[str, float] = {}

    def run_torch() -> None:
        m = Timer("fn()", globals={"fn": fn}, num_threads=torch.get_num_threads()).blocked_autorange(
            min_run_time=min_run_time
        )
        out["torch"], out["n"] = m.median, m.number_per_run

    def run_mpslab() -> None:
        out["mpslab/1"] = measure(fn, backend, warmup=3, repeats=repeats).median
        n = int(out.get("n", 1))
        out["mpslab/n"] = measure(fn, backend, warmup=1, repeats=max(3, repeats // 4), number=n).median

    if torch_first:
        run_torch()
        run_mpslab()
    else:  # mpslab/n needs torch's n: take it from a quick torch estimate first
        out["n"] = (
            Timer("fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())
            .blocked_autorange(min_run_time=min_run_time / 4)
            .number_per_run
        )
        run_mpslab()
        run_torch()
    return out


def sync_cost(backend, repeats: int = 200) -> float:
    samples = []
    for _ in range(repeats):
        with SyncTimer(backend) as t:
            pass
        samples.append(t.seconds)
    return statistics.median(samples)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu", help="cpu | cuda | mps (default cpu)")
    p.add_argument("--size", type=int, default=256, help="seed-step size (default 256)")
    p.add_argument("--matmul-size", type=int, default=1024, help="plain matmul size (default 1024)")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    p.add_argument("--repeats", type=int, default=40, help="mpslab samples per round (default 40)")
    p.add_argument("--min-run-time", type=float, default=0.2, help="torch's min_run_time, s (default 0.2)")
    p.add_argument("--tiny", action="store_true", help="a few seconds: sizes 16/32, 2 rounds, short runs")
    args = p.parse_args(argv)
    if args.tiny:
        args.size, args.matmul_size, args.rounds, args.repeats, args.min_run_time = 16, 32, 2, 8, 0.02
    for name, value in (
        ("--size", args.size),
        ("--matmul-size", args.matmul_size),
        ("--rounds", args.rounds),
        ("--repeats", args.repeats),
    ):
        if value < 1:
            return bad_arg("timer_agreement", f"{name}={value}: must be >= 1")
    try:
        backend = get_backend(args.device)
    except Exception as exc:
        return bad_arg("timer_agreement", f"--device={args.device!r}: {exc}")

    print(f"timer agreement: {machine_line(args.device)}")
    print(
        f"{args.rounds} interleaved rounds (order alternates); torch Timer.blocked_autorange(min_run_time="
        f"{args.min_run_time}), num_threads={torch.get_num_threads()}; mpslab measure: {args.repeats} samples of 1 "
        f"call, and {max(3, args.repeats // 4)} samples of torch's block size n"
    )
    print(f"one synchronised empty sample (SyncTimer around nothing): {sync_cost(backend) * 1e6:.1f} us")
    print(
        f"{'op':<22} {'n':>7} {'torch us':>9} {'mpslab/1 us':>11} {'/1 vs torch':>18} {'mpslab/n us':>11} "
        f"{'/n vs torch':>18}  within {AGREE:.0%}"
    )
    worst = 0.0
    for label, fn in ops(backend.device, args.size, args.matmul_size).items():
        for _ in range(3):
            fn()
        backend.synchronize()
        rounds = [one_round(fn, backend, args.min_run_time, args.repeats, k % 2 == 0) for k in range(args.rounds)]
        med = {k: statistics.median(r[k] for r in rounds) for k in ("torch", "mpslab/1", "mpslab/n")}
        cells = []
        for k in ("mpslab/1", "mpslab/n"):
            ratios = [r[k] / r["torch"] for r in rounds]
            cells.append(f"{statistics.median(ratios):.3f} [{min(ratios):.3f}..{max(ratios):.3f}]")
        ratio_n = statistics.median(r["mpslab/n"] / r["torch"] for r in rounds)
        worst = max(worst, abs(ratio_n - 1))
        ns = sorted({int(r["n"]) for r in rounds})
        print(
            f"{label:<22} {'/'.join(map(str, ns)):>7} {med['torch'] * 1e6:>9.2f} {med['mpslab/1'] * 1e6:>11.2f} "
            f"{cells[0]:>18} {med['mpslab/n'] * 1e6:>11.2f} {cells[1]:>18}  {'yes' if abs(ratio_n - 1) <= AGREE else 'NO'}",  # noqa: E501
            flush=True,
        )
    print(
        f"largest |mpslab/n / torch - 1| = {worst:.3f} -> same block size agrees within {AGREE:.0%}: "
        f"{'yes' if worst <= AGREE else 'NO'}"
    )
    print(
        "mpslab/1 times one call with a synchronisation round trip (latency); torch and mpslab/n time calls "
        "back to back (throughput). Where they differ the op is short next to a synchronisation."
    )
    print(f"load average after: {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
