"""Isolated-trial rate: tiny trials per second with the fork server and with plain spawn.

Each repeat is one ``run_trials`` call of N tiny trials (2 threads x 5 iterations
of the ``seed`` workload, size 8, on the CPU), timed from the call to its return;
the rate is N / seconds, and the figure printed is the median over the repeats.
The fork server is started once before its repeats (its start-up, which is one
``import torch``, is timed separately: it is paid once per process, not per
trial). Run it on an otherwise idle machine; the load average is printed with
the figures::

    .venv/bin/python benchmarks/trial_rate.py
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

from mpslab import StressConfig  # noqa: E402
from mpslab.trials.isolate import run_trials, shutdown_server  # noqa: E402

TINY = StressConfig(threads=2, iterations=5, sync_every=0, workload="seed", size=8, device="cpu")


def _rate(mode: str, trials: int, repeats: int) -> list[float]:
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        df = run_trials(TINY, trials=trials, timeout_s=120, mode=mode, progress=False)
        seconds = time.perf_counter() - start
        bad = df[df["outcome"] != "ok"]
        if len(bad):
            raise SystemExit(f"{mode}: {len(bad)} tiny trials did not end ok: {bad['first_error'].tolist()}")
        rates.append(trials / seconds)
    return rates


def _server_start(repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        shutdown_server()
        start = time.perf_counter()
        run_trials(TINY, trials=1, timeout_s=120, mode="forkserver", progress=False)
        times.append(time.perf_counter() - start)
    return times


def _load() -> str:
    """The 1-minute load average (other work on the machine skews the figures)."""
    return f"{os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else "n/a"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5, help="repeats per mode (default %(default)s)")
    ap.add_argument("--trials", type=int, default=20, help="fork-server trials per repeat (default %(default)s)")
    ap.add_argument("--spawn-trials", type=int, default=5, help="spawn trials per repeat (default %(default)s)")
    ap.add_argument("--spawn-repeats", type=int, default=3, help="repeats for spawn (default %(default)s)")
    args = ap.parse_args()

    print(
        f"isolated-trial rate: tiny trials ({TINY.threads} threads x {TINY.iterations} iterations of "
        f"{TINY.workload!r}, size {TINY.size}, {TINY.device})"
    )
    print(
        f"machine: {platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, "
        f"python {platform.python_version()}, torch {torch.__version__}, load average before: {_load()}"
    )

    results: dict[str, tuple[float, int]] = {}
    if sys.platform.startswith("linux"):
        starts = _server_start(3)
        _rate("forkserver", 2, 1)  # warm: the server is up, the page cache is hot
        fork = _rate("forkserver", args.trials, args.repeats)
        results["forkserver"] = (statistics.median(fork), args.trials)
    spawn = _rate("spawn", args.spawn_trials, args.spawn_repeats)
    results["spawn"] = (statistics.median(spawn), args.spawn_trials)
    repeats = {"forkserver": args.repeats, "spawn": args.spawn_repeats}

    print(f"{'mode':<12}{'trials/s':>10}{'per trial':>12}   repeats")
    for mode, (rate, n) in results.items():
        per = 1.0 / rate
        per_text = f"{per * 1e3:.0f} ms" if per < 1 else f"{per:.2f} s"
        print(f"{mode:<12}{rate:>10.2f}{per_text:>12}   median of {repeats[mode]} x {n} trials")
    if "forkserver" in results:
        print(f"ratio forkserver / spawn: {results['forkserver'][0] / results['spawn'][0]:.1f}x")
        print(
            f"fork server start-up (once per process, first call): {statistics.median(starts):.2f} s "
            f"(median of {len(starts)}, including 1 trial)"
        )
    print(f"load average after: {_load()}")
    shutdown_server()


if __name__ == "__main__":
    main()
