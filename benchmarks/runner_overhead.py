"""Runner overhead, paired: ``run_stress`` against a bare loop doing the same work, with intervals.

Target: with the oracle off, the stress runner keeps at least 97% of a bare loop's ops/s.

The bare loop does exactly the workload steps the runner does, per thread: same
thread count, same generator seeds, same warm-up, the same barrier start, the
same synchronisation every ``sync_every`` steps and at the end, the same clock
(the first worker's start, or the barrier release if earlier -> every thread done ->
device synchronised). It has none of
the runner's bookkeeping: no per-iteration clock readings, no latency ring, no
checksums, no error capture.

Design: PAIRS. Each runner repeat is paired with a bare repeat run right before
it (even pairs) or right after it (odd pairs), so slow drift on a shared
machine falls on both halves of a pair alike and cancels in the pair's
difference. Every run does the same total work, ``--ops`` steps split over the
threads. Per pair: overhead = (runner seconds - bare seconds) / ops, in
microseconds per step, and ratio = bare seconds / runner seconds (= runner
ops/s / bare ops/s). The statistics are the MEDIANS over the pairs (a pair that
another process on the machine hit does not carry the figure); their 95%
intervals come from scipy.stats.bootstrap (paired resampling of whole pairs,
percentile method, 9,999 resamples).

Decision rule (oracle off): the target is KEPT when the ratio interval's lower
end is >= 0.97, MISSED when its upper end is < 0.97, and NOT RESOLVED otherwise
(the pairs this run could afford leave the interval wider than the question);
then the per-step overhead in microseconds is the figure to read. With the
oracle on, the ratio covers the timed region only (the runner's own
``ops_per_s``); the serial replay after it is reported separately as
"replay ms" (whole call minus timed region, median over the pairs).

    python benchmarks/runner_overhead.py                    # cpu, size 64, 1/8/64 threads, 20 pairs
    python benchmarks/runner_overhead.py --device cuda --size 256 --ops 12800 --pairs 30
    python benchmarks/runner_overhead.py --tiny             # seconds: does it run
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from _common import bad_arg, load_average, machine_line  # noqa: E402
from scipy import stats  # noqa: E402

from mpslab.run.backends import get_backend  # noqa: E402
from mpslab.run.config import ConfigError, StressConfig  # noqa: E402
from mpslab.run.runner import run_stress, thread_seed  # noqa: E402
from mpslab.run.workloads import WorkerContext, get_workload  # noqa: E402

TARGET = 0.97
CONFIDENCE = 0.95
RESAMPLES = 9999


def bare_loop(config: StressConfig) -> float:
    """ops/s of the workload steps alone, threaded and synchronised as the runner does."""
    backend = get_backend(config.device)
    workload = get_workload(config.workload)
    device = backend.device
    state = None
    if workload.setup_fn is not None:
        state = workload.setup_fn(WorkerContext(-1, device, config.torch_dtype, config.size, None))
        backend.synchronize()
    barrier = threading.Barrier(config.threads + 1)
    semaphore = threading.BoundedSemaphore(config.throttle) if config.throttle else None
    step = workload.step
    sync_every, iterations = config.sync_every, config.iterations

    def worker(t: int) -> None:
        stream = backend.new_stream() if config.streams == "per-thread" else None
        with backend.use_stream(stream):
            ctx = WorkerContext(t, device, config.torch_dtype, config.size, None, state)
            if config.warmup:
                ctx.generator = torch.Generator(device=device).manual_seed(thread_seed(config.seed, t) ^ 0x5EED)
                for i in range(config.warmup):
                    step(ctx, i)
                backend.synchronize_stream(stream)
            ctx.generator = torch.Generator(device=device).manual_seed(thread_seed(config.seed, t))
            sync = backend.synchronize_stream
            barrier.wait()
            starts[t] = time.perf_counter()
            for i in range(iterations):
                if semaphore is None:
                    step(ctx, i)
                else:
                    with semaphore:
                        step(ctx, i)
                if sync_every and (i + 1) % sync_every == 0:
                    sync(stream)
            sync(stream)

    starts = [0.0] * config.threads  # each worker's own start: the clock starts with the first (as the runner's)
    threads = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(config.threads)]
    for th in threads:
        th.start()
    barrier.wait()
    t0 = time.perf_counter()
    for th in threads:
        th.join()
    backend.synchronize()
    return config.ops / (time.perf_counter() - min([t0, *(s for s in starts if s)]))


def runner(config: StressConfig) -> tuple[float, float]:
    """(timed-region seconds, whole-call seconds) of one ``run_stress`` call."""
    t0 = time.perf_counter()
    result = run_stress(config)
    wall = time.perf_counter() - t0
    if result.outcome != "ok":
        raise SystemExit(f"runner_overhead: the runner's outcome was {result.outcome}, not ok:\n{result.summary()}")
    return result.seconds, wall


def pairs(config: StressConfig, n: int) -> dict[str, np.ndarray]:
    """``n`` pairs of (bare, runner) seconds; the order inside a pair alternates."""
    bare_loop(config)  # one untimed round of each: first-call costs (allocator, kernels) land nowhere
    runner(config)
    out: dict[str, list[float]] = {"bare": [], "runner": [], "wall": []}
    for k in range(n):
        for which in ("bare", "runner") if k % 2 == 0 else ("runner", "bare"):
            gc.collect()
            if which == "bare":
                out["bare"].append(config.ops / bare_loop(config))
            else:
                timed, wall = runner(config)
                out["runner"].append(timed)
                out["wall"].append(wall)
    return {k: np.asarray(v) for k, v in out.items()}


def _interval(data: tuple[np.ndarray, ...], statistic) -> tuple[float, float]:
    if len(data[0]) < 3:
        return float("nan"), float("nan")
    res = stats.bootstrap(
        data,
        statistic,
        paired=True,
        vectorized=False,
        n_resamples=RESAMPLES,
        confidence_level=CONFIDENCE,
        method="percentile",
        random_state=np.random.default_rng(0),
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def summarise(s: dict[str, np.ndarray], ops: int) -> dict[str, float]:
    """Ratio and per-step overhead with their bootstrap intervals."""
    bare, run = s["bare"], s["runner"]

    def ratio(b, r):
        return float(np.median(np.asarray(b) / np.asarray(r)))

    def overhead_us(b, r):
        return float(np.median(np.asarray(r) - np.asarray(b)) / ops * 1e6)

    lo, hi = _interval((bare, run), ratio)
    olo, ohi = _interval((bare, run), overhead_us)
    return {
        "ratio": ratio(bare, run),
        "lo": lo,
        "hi": hi,
        "us": overhead_us(bare, run),
        "us_lo": olo,
        "us_hi": ohi,
        "bare_us": float(np.mean(bare)) / ops * 1e6,
        "bare_ops": ops / float(np.median(bare)),
        "runner_ops": ops / float(np.median(run)),
        "replay_ms": float(np.median(s["wall"] - run)) * 1e3,
        "single_min": float(np.min(bare / run)),
        "single_max": float(np.max(bare / run)),
    }


def verdict(r: dict[str, float]) -> str:
    if r["lo"] >= TARGET:
        return "KEPT"
    if r["hi"] < TARGET:
        return "MISSED"
    return f"not resolved (overhead {r['us']:+.2f} us/step [{r['us_lo']:+.2f}, {r['us_hi']:+.2f}])"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N | mps (default cpu)")
    p.add_argument("--size", type=int, default=64, help="workload size (default 64)")
    p.add_argument("--threads", default="1,8,64", help="thread counts with the oracle off (default 1,8,64)")
    p.add_argument("--oracle-threads", type=int, default=8, help="thread count of the oracle-on row (0: none)")
    p.add_argument(
        "--ops",
        type=int,
        default=6400,
        help="steps per run, split over the threads: iterations = ops / threads (default 6400)",
    )
    p.add_argument("--pairs", type=int, default=20, help="(bare, runner) pairs per row (default 20)")
    p.add_argument("--sync-every", type=int, default=20, help="synchronise every k iterations (default 20)")
    p.add_argument("--workload", default="seed", help="workload name (default seed)")
    p.add_argument("--tiny", action="store_true", help="a few seconds: size 8, 1 and 2 threads, 64 ops, 4 pairs")
    args = p.parse_args(argv)
    if args.tiny:
        args.size, args.threads, args.oracle_threads, args.ops, args.pairs = 8, "1,2", 2, 64, 4
    try:
        thread_counts = [int(t) for t in args.threads.split(",") if t.strip()]
    except ValueError:
        return bad_arg("runner_overhead", f"--threads={args.threads!r}: must be integers separated by commas")
    for name, value in (("--pairs", args.pairs), ("--ops", args.ops)):
        if value < 1:
            return bad_arg("runner_overhead", f"{name}={value}: must be >= 1")
    rows = [(t, False) for t in thread_counts] + ([(args.oracle_threads, True)] if args.oracle_threads else [])
    if not thread_counts or any(args.ops % t for t, _ in rows):
        return bad_arg(
            "runner_overhead",
            f"--ops={args.ops} must split evenly over every thread count ({', '.join(str(t) for t, _ in rows)})",
        )
    try:
        configs = [
            (
                StressConfig(
                    threads=t,
                    iterations=args.ops // t,
                    sync_every=args.sync_every,
                    workload=args.workload,
                    size=args.size,
                    device=args.device,
                    verify=v,
                ),
                v,
            )
            for t, v in rows
        ]
    except ConfigError as exc:
        return bad_arg("runner_overhead", str(exc))

    device = configs[0][0].device
    print(f"runner overhead, paired: {machine_line(device)}")
    print(
        f"workload {args.workload!r} size {args.size}, {args.ops} steps per run (threads x iterations), sync every "
        f"{args.sync_every}; {args.pairs} pairs per row, bare before runner in even pairs and after it in odd ones"
    )
    print(
        f"ratio = median over pairs of bare s/runner s (= runner ops/s over bare ops/s); overhead = median of "
        f"(runner s - bare s)/steps; "
        f"{CONFIDENCE:.0%} paired bootstrap intervals ({RESAMPLES} resamples, percentile)"
    )
    print(
        f"decision (oracle off): KEPT if ratio interval low >= {TARGET}, MISSED if high < {TARGET}, else not resolved"
    )
    print(
        f"{'thr':>4} {'oracle':>6} {'iter':>6} {'bare ops/s':>11} {'runner ops/s':>12} {'ratio':>6} "
        f"{'[95% interval]':>16} {'pairs min..max':>15} {'bare us/step':>12} {'+us/step':>8} {'[95% interval]':>18} "
        f"{'replay ms':>9}  verdict"
    )
    for cfg, oracle in configs:
        r = summarise(pairs(cfg, args.pairs), cfg.ops)
        ratio_ci = f"[{r['lo']:.3f}, {r['hi']:.3f}]"
        span = f"{r['single_min']:.2f}..{r['single_max']:.2f}"
        us_ci = f"[{r['us_lo']:+.2f}, {r['us_hi']:+.2f}]"
        note = "(oracle on: timed region only)" if oracle else verdict(r)
        print(
            f"{cfg.threads:>4} {'on' if oracle else 'off':>6} {cfg.iterations:>6} {r['bare_ops']:>11.1f} "
            f"{r['runner_ops']:>12.1f} {r['ratio']:>6.3f} {ratio_ci:>16} {span:>15} {r['bare_us']:>12.2f} "
            f"{r['us']:>+8.2f} {us_ci:>18} {r['replay_ms'] if oracle else 0.0:>9.1f}  {note}",
            flush=True,
        )
    print(f"load average after: {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
